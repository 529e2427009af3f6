// outage.test.mjs - what happens to messages when the network or the
// server goes away: a 10 s link outage, a killed echolinkd, a peer that is
// offline when the message is sent.
//
//   tests/harness/netns.sh run node --test tests/client/outage.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';

import { NETNS, SKIP, sleep, startCluster } from './lib/cluster.mjs';

/** Drops (or lets through again) every UDP datagram into the peer namespace:
 *  signaling (TCP) works, a direct WebRTC path cannot. */
function blockUdp(on) {
  const nft = (...a) => execFileSync('ip', ['netns', 'exec', NETNS.peerNs, 'nft', ...a], { stdio: 'pipe' });
  if (on) {
    nft('add', 'table', 'inet', 'eltest');
    nft('add', 'chain', 'inet', 'eltest', 'in', '{ type filter hook input priority 0 ; }');
    nft('add', 'rule', 'inet', 'eltest', 'in', 'meta', 'l4proto', 'udp', 'drop');
  } else {
    try { nft('delete', 'table', 'inet', 'eltest'); } catch { /* not there */ }
  }
}

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
    blockUdp(false);
    await c?.cleanup();
  });

  it('an outage longer than ICE failure detection is repaired by an ICE restart: same connection', async () => {
    const stats = async (x) => JSON.parse(await x.ok(['stats', '--json'])).stats.links;
    const before = [await stats(alice), await stats(bob)];
    const a0 = alice.events.length;
    const b0 = bob.events.length;
    c.linkDown();
    try {
      await alice.ok(['send', bob.id, 'across a short outage']);
      // el_peer calls a path disconnected after 6 s of silence
      await sleep(12000);
    } finally {
      c.linkUp();
    }
    await bob.waitEvent((e) => e.event === 'message' && e.text === 'across a short outage', 30000, b0);
    const after = [await stats(alice), await stats(bob)];
    const restarts = after[0].ice_restarts + after[1].ice_restarts - before[0].ice_restarts - before[1].ice_restarts;
    assert.ok(restarts >= 1, `ICE restarts: ${restarts}`);
    for (let i = 0; i < 2; i++) {
      assert.equal(after[i].connects, before[i].connects, 'no new connection was negotiated');
      assert.equal(after[i].failures, before[i].failures, 'the connection was not torn down');
    }
    for (const [x, from] of [[alice, a0], [bob, b0]]) {
      assert.equal(x.all((e) => e.event === 'link' && e.state === 'idle' && e.at >= x.events[from]?.at).length, 0);
    }
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

  it('a peer online but unreachable directly (UDP blocked) gets messages through the offline queue', async () => {
    await bob.stop();
    await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && !e.online, 60000);
    blockUdp(true);
    try {
      const b0 = bob.events.length;
      const a0 = alice.events.length;
      await bob.listen();
      await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && e.online, 20000, a0);
      const id = await alice.ok(['send', bob.id, 'no direct path']);
      const m = await bob.waitEvent((e) => e.event === 'message' && e.id === id, 60000, b0);
      assert.equal(m.offline, true, 'it came through the server queue');
      // bob's receipt finds the same way back
      await alice.waitEvent((e) => e.event === 'status' && e.id === id && e.status === 'delivered', 60000, a0);
    } finally {
      blockUdp(false);
    }
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
