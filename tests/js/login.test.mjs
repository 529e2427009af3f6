// login.test.mjs - the challenge / login handshake and session endings
// (src/server/handlers.c: login, session replacement, login deadline)
// (docs/PROTOCOL.md §2, §3, §7.1).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { connectClient, makeContacts, makeIdentity, closeAll, id, sleep, useServer } from './lib/client.mjs';

async function expectNotLoggedIn(c) {
  const ack = await c.emitAck('get_contacts', {});
  assert.equal(ack.ok, false);
  assert.equal(ack.error, 'not_logged_in', 'the socket must not be logged in');
}

describe('login', () => {
  const { client } = useServer();

  test('challenge: v 1, 32-byte nonce, sid equal to socket.id', async () => {
    const c = await client({ login: false });
    const ch = c.challenges[0];
    assert.equal(ch.v, 1);
    assert.equal(id.b64urlDecode(ch.nonce).length, 32);
    assert.equal(ch.sid, c.socket.id);
    c.close();
  });

  test('a good login: ack with peer_id, profile, ice_servers, ttl', async () => {
    const c = await client({ name: 'Alice' });
    const ack = c.logins[0];
    assert.equal(ack.ok, true);
    assert.equal(ack.peer_id, c.peerId);
    assert.deepEqual(ack.profile, { name: 'Alice', avatar: null });
    assert.ok(Array.isArray(ack.ice_servers));
    assert.equal(typeof ack.ttl, 'number');
    // A second login on a logged-in connection is bad_request.
    const again = await c.login();
    assert.equal(again.ok, false);
    assert.equal(again.error, 'bad_request');
    c.close();
  });

  test('wrong signature: bad_signature, and the socket stays logged out', async () => {
    const other = await makeIdentity();
    const cases = {
      'signed with another key': async (c, ch) => id.signLogin(other.identity, ch.nonce, ch.sid),
      'signed another nonce': async (c, ch) => id.signLogin(c.identity, id.b64urlEncode(new Uint8Array(32).fill(7)), ch.sid),
      'signed another sid': async (c, ch) => id.signLogin(c.identity, ch.nonce, ch.sid + 'x'),
      'valid encoding, random bytes': async () => id.b64urlEncode(crypto.getRandomValues(new Uint8Array(64))),
    };
    for (const [name, sign] of Object.entries(cases)) {
      const c = await client({ login: false, label: name });
      const ch = c.challenges[0];
      const sig = await sign(c, ch);
      const ack = await c.emitAck('login', { ...c.bundle, sig });
      assert.equal(ack.ok, false, name);
      assert.equal(ack.error, 'bad_signature', name);
      await expectNotLoggedIn(c);
      c.close();
    }
  });

  test('a replayed signature (another connection\'s challenge) is bad_signature', async () => {
    const first = await client({ login: false });
    const second = await client({ login: false, who: first });
    const ch = first.challenges[0];
    const sig = await id.signLogin(first.identity, ch.nonce, ch.sid);
    const ack = await second.emitAck('login', { ...second.bundle, sig });
    assert.equal(ack.error, 'bad_signature');
    await expectNotLoggedIn(second);
    first.close();
    second.close();
  });

  test('an sk_sig that does not verify: bad_signature', async () => {
    const other = await makeIdentity();
    const c = await client({ login: false });
    const ch = c.challenges[0];
    const sig = await id.signLogin(c.identity, ch.nonce, ch.sid);
    const ack = await c.emitAck('login', { ...c.bundle, sk_sig: other.bundle.sk_sig, sig });
    assert.equal(ack.ok, false);
    assert.equal(ack.error, 'bad_signature');
    await expectNotLoggedIn(c);
    c.close();
  });

  test('malformed keys or fields: bad_request', async () => {
    const c = await client({ login: false });
    const ch = c.challenges[0];
    const sig = await id.signLogin(c.identity, ch.nonce, ch.sid);
    const good = { ...c.bundle, sig };
    const short = id.b64urlEncode(new Uint8Array(31));
    const variants = {
      'ik not base64url': { ...good, ik: '!!!!' + good.ik.slice(4) },
      'ik 31 bytes': { ...good, ik: short },
      'ik padded base64': { ...good, ik: good.ik + '=' },
      'sk 31 bytes': { ...good, sk: short },
      'sk_sig 63 bytes': { ...good, sk_sig: id.b64urlEncode(new Uint8Array(63)) },
      'sig 63 bytes': { ...good, sig: id.b64urlEncode(new Uint8Array(63)) },
      'sig not a string': { ...good, sig: 12 },
      'ik missing': { sk: good.sk, sk_sig: good.sk_sig, sig },
      'sig missing': { ...c.bundle },
      'name too long': { ...good, name: 'n'.repeat(65) },
      'name not a string': { ...good, name: 5 },
      'ik with standard base64 characters': { ...good, ik: good.ik.replace(/-/g, '+').replace(/_/g, '/').replace(/^./, '+') },
    };
    for (const [name, arg] of Object.entries(variants)) {
      const ack = await c.emitAck('login', arg);
      assert.equal(ack.ok, false, name);
      assert.equal(ack.error, 'bad_request', `${name}: ${JSON.stringify(ack)}`);
    }
    for (const arg of ['x', 1, null, []]) {
      const ack = await c.emitAck('login', arg);
      assert.equal(ack.error, 'bad_request', `argument ${JSON.stringify(arg)}`);
    }
    await expectNotLoggedIn(c);
    // The connection still works: the right answer logs in.
    const ok = await c.emitAck('login', good);
    assert.equal(ok.ok, true, JSON.stringify(ok));
    c.close();
  });

  test('the same identity on a second connection replaces the first', async () => {
    const friend = await client({ label: 'friend' });
    const first = await client({ label: 'first' });
    await makeContacts(first, friend);
    const second = await client({ who: first, label: 'second' });
    const closed = await first.waitFor('session_closed');
    assert.deepEqual(closed, { reason: 'replaced' });
    const disc = await first.waitFor('$disconnect');
    assert.equal(disc, 'io server disconnect');
    // the second session works: it relays, and its friend sees it
    const m = friend.mark();
    assert.deepEqual(await second.emitAck('offer', { to: friend.peerId, sdp: 'x' }), { ok: true });
    const offer = await friend.waitFor('offer', () => true, { since: m });
    assert.equal(offer.from, first.peerId);
    // socket.io-client does not reconnect by itself after a server DISCONNECT
    await sleep(1500);
    assert.equal(first.connected, false);
    assert.equal(first.connects, 1);
    assert.equal(first.logins.length, 1);
    // ... and the friend still sees the peer as online
    const list = await friend.emitAck('get_contacts', {});
    assert.equal(list.contacts.find((p) => p.peer_id === first.peerId)?.online, true);
    second.close();
    friend.close();
  });

  test('events other than login need a login: not_logged_in', async () => {
    const c = await client({ login: false });
    for (const ev of ['get_contacts', 'contact_request', 'envelope_send', 'get_ice_servers', 'profile_update', 'group_list']) {
      const ack = await c.emitAck(ev, {});
      assert.equal(ack.error, 'not_logged_in', ev);
    }
    c.close();
  });
});

describe('login timeout', () => {
  let srv;
  const clients = [];
  before(async () => { srv = await startServer({ args: ['--login-timeout', '500'] }); });
  after(async () => {
    closeAll(clients);
    await srv?.cleanup();
  });

  for (const transports of [undefined, ['websocket']]) {
    test(`a connection that never logs in gets session_closed login_timeout (${transports ? 'websocket' : 'default transports'})`, async () => {
      const c = await connectClient(srv.url, { login: false, transports });
      clients.push(c);
      const t0 = Date.now();
      const closed = await c.waitFor('session_closed', () => true, { timeout: 5000 });
      assert.deepEqual(closed, { reason: 'login_timeout' });
      const disc = await c.waitFor('$disconnect', () => true, { timeout: 3000 });
      assert.equal(disc, 'io server disconnect');
      assert.ok(Date.now() - t0 < 3000, 'login timeout is 500 ms');
      await sleep(700);
      assert.equal(c.connects, 1, 'no automatic reconnection');
      c.close();
    });
  }

  test('a client that logs in in time is not closed', async () => {
    const c = await connectClient(srv.url);
    clients.push(c);
    await c.expectNone('session_closed', () => true, { ms: 1200, since: 0 });
    assert.equal(c.connected, true);
    c.close();
  });
});
