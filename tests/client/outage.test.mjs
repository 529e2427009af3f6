// outage.test.mjs - what happens to messages when the network or the
// server goes away: a 10 s link outage, a killed echolinkd, a peer that is
// offline when the message is sent.
//
//   tests/harness/netns.sh run node --test tests/client/outage.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startCluster } from './lib/cluster.mjs';

describe('echolink: outages', { skip: SKIP }, () => {
  let c, alice, bob;
  before(async () => {
    c = await startCluster();
    alice = await c.client('alice');
    bob = await c.client('bob', { remote: true });
    await c.befriend(alice, bob);
    await alice.listen();
    await bob.listen();
    await alice.ok(['send', bob.id, 'warm-up']);
    await bob.waitEvent((e) => e.event === 'message' && e.text === 'warm-up');
  });
  after(async () => {
    try { c?.linkUp(); } catch { /* already up */ }
    await c?.cleanup();
  });

  it('the link goes down for 10 s while messages are sent: each arrives once, in order', async () => {
    const from = bob.events.length;
    c.linkDown();
    const texts = [];
    try {
      for (let i = 0; i < 6; i++) {
        texts.push(`during outage ${i}`);
        await alice.ok(['send', bob.id, texts[i]]);
        await sleep(1500);
      }
      await sleep(1000);
    } finally {
      c.linkUp();
    }
    await bob.waitEvent((e) => e.event === 'message' && e.text === texts.at(-1), 90000, from);
    await sleep(2000); // duplicates, if any, would arrive now
    const got = bob.events.slice(from).filter((e) => e.event === 'message').map((e) => e.text);
    assert.deepEqual(got, texts);
    for (const t of texts) {
      const hist = JSON.parse(await alice.ok(['history', bob.id, '--json', '--limit', '20']));
      assert.equal(hist.messages.find((m) => m.text === t).status, 'delivered', t);
    }
  });

  it('echolinkd is killed while two clients chat: the chat goes on, and both log in again', async () => {
    const a0 = alice.events.length;
    const b0 = bob.events.length;
    await c.server.kill('SIGKILL');
    await alice.waitEvent((e) => e.event === 'signal' && e.state === 'offline', 20000, a0);
    await bob.waitEvent((e) => e.event === 'signal' && e.state === 'offline', 20000, b0);
    for (let i = 0; i < 3; i++) {
      await alice.ok(['send', bob.id, `no server ${i}`]);
      await bob.ok(['send', alice.id, `still here ${i}`]);
    }
    for (let i = 0; i < 3; i++) {
      await bob.waitEvent((e) => e.event === 'message' && e.text === `no server ${i}`, 10000, b0);
      await alice.waitEvent((e) => e.event === 'message' && e.text === `still here ${i}`, 10000, a0);
    }
    assert.ok(!c.server.running());
    await c.server.restart();
    await alice.waitEvent((e) => e.event === 'login', 60000, a0);
    await bob.waitEvent((e) => e.event === 'login', 60000, b0);
    await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && e.online, 30000, a0);
  });

  it('a message to an offline peer is delivered when it comes online', async () => {
    await bob.stop();
    await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && !e.online, 60000);
    const a0 = alice.events.length;
    const id = await alice.ok(['send', bob.id, 'while you were away']);
    await alice.waitEvent((e) => e.event === 'status' && e.id === id && e.status === 'sent' && e.via === 'envelope', 20000, a0);
    const b0 = bob.events.length;
    await bob.listen();
    const m = await bob.waitEvent((e) => e.event === 'message' && e.text === 'while you were away', 30000, b0);
    assert.equal(m.id, id);
    await alice.waitEvent((e) => e.event === 'status' && e.id === id && e.status === 'delivered', 30000, a0);
    await sleep(1500);
    assert.equal(bob.all((e) => e.event === 'message' && e.id === id).length, 1, 'shown exactly once');
  });
});
