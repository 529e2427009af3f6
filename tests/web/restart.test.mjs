// restart.test.mjs - echolinkd restarts during a conversation between two
// browser users: both are told (signal offline), their messages still flow
// peer to peer meanwhile, and both log in again by themselves when the
// server is back (socket.io-client's own reconnection).
//
//   tests/harness/netns.sh run node --test tests/web/restart.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SKIP, startWeb } from './lib/browser.mjs';

describe('web: the server restarts during a conversation', { skip: SKIP }, () => {
  let w, alice, bob;

  before(async () => {
    w = await startWeb();
    alice = await w.user('alice');
    bob = await w.user('bob');
    for (const u of [alice, bob]) await u.waitEvent((e) => e.event === 'login');
    await w.befriend(alice, bob);
    const s = await alice.ok({ cmd: 'send', to: bob.id, text: 'before' });
    await alice.waitEvent((e) => e.event === 'status' && e.id === s.msg_id && e.status === 'delivered', 30000);
  });

  after(async () => {
    await w?.close();
  });

  it('offline is reported, chat goes on peer to peer, both log in again', async () => {
    const a0 = alice.events.length;
    const b0 = bob.events.length;
    await w.cluster.server.kill('SIGKILL');
    await alice.waitEvent((e) => e.event === 'signal' && e.state === 'offline', 30000, a0);
    await bob.waitEvent((e) => e.event === 'signal' && e.state === 'offline', 30000, b0);
    for (let i = 0; i < 3; i++) {
      const s = await alice.ok({ cmd: 'send', to: bob.id, text: `no server ${i}` });
      const m = await bob.waitEvent((e) => e.event === 'message' && e.id === s.msg_id, 15000, b0);
      assert.equal(m.offline, false, 'it came over the data channel');
      const r = await bob.ok({ cmd: 'send', to: alice.id, text: `still here ${i}` });
      await alice.waitEvent((e) => e.event === 'message' && e.id === r.msg_id, 15000, a0);
    }
    assert.equal(w.cluster.server.running(), false);
    await w.cluster.server.restart();
    await alice.waitEvent((e) => e.event === 'login', 60000, a0);
    await bob.waitEvent((e) => e.event === 'login', 60000, b0);
    await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && e.online, 30000, a0);
    const after = await alice.ok({ cmd: 'send', to: bob.id, text: 'server is back' });
    await alice.waitEvent((e) => e.event === 'status' && e.id === after.msg_id && e.status === 'delivered', 30000);
  });
});
