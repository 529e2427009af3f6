// cluster.test.mjs - real `echolink` clients on different echolinkd nodes of
// one cluster (--redis, a real redis-server, one shared store): they see
// each other, connect peer to peer through signaling relayed across nodes,
// and chat; when a node is killed, its client moves to the next server of
// its list and no message is lost or shown twice.
//
//   tests/harness/netns.sh run node --test tests/client/cluster.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startCluster } from './lib/cluster.mjs';

describe('echolink: clients on different nodes of a cluster', { skip: SKIP }, () => {
  let c, alice, bob;
  before(async () => {
    c = await startCluster({ nodes: 3 });
    alice = await c.client('alice', { nodes: [0, 2] });
    bob = await c.client('bob', { remote: true, nodes: [1, 2] });
    await c.befriend(alice, bob);
    await alice.listen();
    await bob.listen();
  });
  after(async () => {
    await c?.cleanup();
  });

  it('peers on different nodes see each other, connect and chat', async () => {
    await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && e.online, 20000);
    const id = await alice.ok(['send', bob.id, 'across nodes']);
    const m = await bob.waitEvent((e) => e.event === 'message' && e.id === id, 30000);
    assert.equal(m.offline, false, 'it came over the data channel');
    const back = await bob.ok(['send', alice.id, 'right back']);
    await alice.waitEvent((e) => e.event === 'message' && e.id === back, 30000);
  });

  it('a killed node moves its client to the next server, and no message is lost or doubled', async () => {
    const b0 = bob.events.length;
    await c.servers[1].kill('SIGKILL');
    await bob.waitEvent((e) => e.event === 'signal' && e.state === 'offline', 30000, b0);
    const texts = [];
    for (let i = 0; i < 4; i++) {
      texts.push(`while bob moves ${i}`);
      await alice.ok(['send', bob.id, texts[i]]);
      await sleep(700);
    }
    // bob logs in again, on node 2 this time; to alice he never left (a
    // move between nodes is not a presence change), and the server agrees
    await bob.waitEvent((e) => e.event === 'login', 60000, b0);
    const peers = JSON.parse(await alice.ok(['peers', '--json']));
    assert.equal(peers.contacts.find((p) => p.peer_id === bob.id)?.online, true);
    texts.push('after the move');
    await alice.ok(['send', bob.id, texts.at(-1)]);
    await bob.waitEvent((e) => e.event === 'message' && e.text === texts.at(-1), 60000, b0);
    await sleep(1500); // duplicates, if any, would arrive now
    const got = bob.events.slice(b0).filter((e) => e.event === 'message').map((e) => e.text);
    assert.deepEqual(got, texts);
  });
});
