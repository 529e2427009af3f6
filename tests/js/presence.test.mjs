// presence.test.mjs - login with socket.io-client over both transports, and
// who sees whom (docs/PROTOCOL.md §1, §3, §4).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { connectClient, makeContacts, assertPeerObject, closeAll, withTimeout } from './lib/client.mjs';

const MODES = [
  { name: 'default transports (polling, then upgrade to websocket)', transports: undefined, first: 'polling', expect: 'websocket' },
  { name: 'websocket only', transports: ['websocket'], first: 'websocket', expect: 'websocket' },
];

async function waitUpgraded(c) {
  if (c.transport === 'websocket') return;
  await withTimeout(new Promise((resolve) => c.socket.io.engine.once('upgrade', resolve)), 5000,
    `${c.label}: upgrade to websocket`);
}

describe('presence, contacts only (default)', () => {
  let srv;
  const clients = [];
  before(async () => { srv = await startServer(); });
  after(async () => {
    closeAll(clients);
    await srv?.cleanup();
  });

  for (const mode of MODES) {
    test(`${mode.name}: two users log in, see each other only once contacts`, async () => {
      const a = await connectClient(srv.url, { transports: mode.transports, label: 'A' });
      clients.push(a);
      const b = await connectClient(srv.url, { transports: mode.transports, label: 'B' });
      clients.push(b);
      await waitUpgraded(a);
      await waitUpgraded(b);
      assert.equal(a.openTransports[0], mode.first, 'first transport');
      assert.equal(b.openTransports[0], mode.first, 'first transport');
      assert.equal(a.transport, mode.expect);
      assert.equal(b.transport, mode.expect);

      // Strangers are invisible to each other.
      const onlineB = await b.waitFor('online_users');
      assert.ok(Array.isArray(onlineB.users));
      assert.ok(!onlineB.users.some((u) => u.peer_id === a.peerId), 'a stranger is not in online_users');
      await a.expectNone('user_connected', (p) => p.peer_id === b.peerId, { ms: 300, since: 0 });

      // Contacts: both see each other online, with the key bundle.
      await makeContacts(a, b);
      const added = a.all('contact_added', (p) => p.peer_id === b.peerId)[0];
      assertPeerObject(added, b, { online: true });
      const seenB = await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);
      assertPeerObject(seenB, b, { online: true });
      const seenA = await b.waitFor('user_connected', (p) => p.peer_id === a.peerId);
      assertPeerObject(seenA, a, { online: true });

      // B leaves: A is told; B comes back: A sees user_connected, B's
      // online_users lists A with its bundle.
      const m = a.mark();
      b.close();
      const gone = await a.waitFor('user_disconnected', (p) => p.peer_id === b.peerId, { since: m });
      assert.deepEqual(gone, { peer_id: b.peerId });
      const b2 = await connectClient(srv.url, { who: b, transports: mode.transports, label: 'B2' });
      clients.push(b2);
      await waitUpgraded(b2);
      assert.equal(b2.transport, mode.expect);
      const back = await a.waitFor('user_connected', (p) => p.peer_id === b.peerId, { since: m });
      assertPeerObject(back, b2, { online: true });
      const list = await b2.waitFor('online_users');
      const aInList = list.users.find((u) => u.peer_id === a.peerId);
      assertPeerObject(aInList, a, { online: true });
      assert.equal(list.users.length, 1, 'only the one contact is visible');
      a.close();
      b2.close();
    });
  }

  test('mixed transports: a polling+upgrade client and a websocket-only client', async () => {
    const a = await connectClient(srv.url, { label: 'A' });
    const b = await connectClient(srv.url, { transports: ['websocket'], label: 'B' });
    clients.push(a, b);
    await makeContacts(a, b);
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);
    await b.waitFor('user_connected', (p) => p.peer_id === a.peerId);
    await waitUpgraded(a);
    assert.equal(a.transport, 'websocket');
    a.close();
    b.close();
  });

  test('a polling-only client logs in and sees its contact', async () => {
    const a = await connectClient(srv.url, { transports: ['polling'], label: 'A' });
    const b = await connectClient(srv.url, { transports: ['polling'], label: 'B' });
    clients.push(a, b);
    assert.equal(a.transport, 'polling');
    await makeContacts(a, b);
    const p = await a.waitFor('user_connected', (x) => x.peer_id === b.peerId);
    assertPeerObject(p, b, { online: true });
    a.close();
    b.close();
  });
});

describe('presence with --open-presence', () => {
  let srv;
  const clients = [];
  before(async () => { srv = await startServer({ args: ['--open-presence'] }); });
  after(async () => {
    closeAll(clients);
    await srv?.cleanup();
  });

  for (const mode of MODES) {
    test(`${mode.name}: every logged-in user is visible without being a contact`, async () => {
      const a = await connectClient(srv.url, { transports: mode.transports, label: 'A' });
      clients.push(a);
      const b = await connectClient(srv.url, { transports: mode.transports, label: 'B' });
      clients.push(b);
      await waitUpgraded(a);
      await waitUpgraded(b);
      assert.equal(a.openTransports[0], mode.first, 'first transport');
      assert.equal(b.openTransports[0], mode.first, 'first transport');
      assert.equal(a.transport, mode.expect);
      assert.equal(b.transport, mode.expect);
      const seen = await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);
      assertPeerObject(seen, b, { online: true });
      const list = await b.waitFor('online_users');
      assertPeerObject(list.users.find((u) => u.peer_id === a.peerId), a, { online: true });
      const m = b.mark();
      a.close();
      await b.waitFor('user_disconnected', (p) => p.peer_id === a.peerId, { since: m });
      b.close();
    });
  }
});
