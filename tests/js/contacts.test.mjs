// contacts.test.mjs - contact requests, accept / refuse / remove, block
// (docs/PROTOCOL.md §3.5, §4, §5).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { makeContacts, assertPeerObject, closeAll, strangerPeerId, useServer } from './lib/client.mjs';

describe('contacts', () => {
  const { client } = useServer();

  test('a request reaches an online target at once, with the requester\'s peer object', async () => {
    const a = await client({ label: 'A', name: 'Alice' });
    const b = await client({ label: 'B' });
    const t0 = Date.now();
    assert.deepEqual(await a.emitAck('contact_request', { to: b.peerId, message: 'hi, it is Alice ✨' }), { ok: true });
    const req = await b.waitFor('contact_request');
    assertPeerObject(req.from, a, { online: true });
    assert.equal(req.from.name, 'Alice');
    assert.equal(req.message, 'hi, it is Alice ✨');
    assert.ok(Math.abs(req.at - t0) < 60000, 'at is unix ms');
    const ca = await a.emitAck('get_contacts', {});
    assert.deepEqual(ca.outgoing.map((r) => [r.from, r.to]), [[a.peerId, b.peerId]]);
    const cb = await b.emitAck('get_contacts', {});
    assert.deepEqual(cb.incoming.map((r) => [r.from, r.to, r.message]), [[a.peerId, b.peerId, 'hi, it is Alice ✨']]);
    assert.deepEqual(cb.contacts, []);
    // accept: contact_added (peer objects) on both sides, and presence
    assert.deepEqual(await b.emitAck('contact_respond', { peer_id: a.peerId, accept: true }), { ok: true });
    assertPeerObject(await a.waitFor('contact_added'), b, { online: true });
    assertPeerObject(await b.waitFor('contact_added'), a, { online: true });
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);
    await b.waitFor('user_connected', (p) => p.peer_id === a.peerId);
    const after = await a.emitAck('get_contacts', {});
    assert.deepEqual(after.contacts.map((p) => p.peer_id), [b.peerId]);
    assertPeerObject(after.contacts[0], b, { online: true });
    assert.deepEqual(after.outgoing, []);
    // a second request between contacts is a no-op
    assert.deepEqual(await a.emitAck('contact_request', { to: b.peerId }), { ok: true });
    closeAll(a, b);
  });

  test('a request to an offline user is delivered at its next login, after online_users', async () => {
    const c0 = await client({ label: 'C' });
    c0.close();
    const a = await client({ label: 'A' });
    assert.deepEqual(await a.emitAck('contact_request', { to: c0.peerId, message: 'while you were away' }), { ok: true });
    const c = await client({ who: c0, label: 'C2' });
    const req = await c.waitFor('contact_request');
    assertPeerObject(req.from, a, { online: true });
    assert.equal(req.message, 'while you were away');
    const order = c.events.map((e) => e.name).filter((n) => n === 'online_users' || n === 'contact_request');
    assert.deepEqual(order, ['online_users', 'contact_request']);
    closeAll(a, c);
  });

  test('refuse: the requester gets contact_refused; no contact', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await a.emitAck('contact_request', { to: b.peerId });
    await b.waitFor('contact_request');
    assert.deepEqual(await b.emitAck('contact_respond', { peer_id: a.peerId, accept: false }), { ok: true });
    assert.deepEqual(await a.waitFor('contact_refused'), { peer_id: b.peerId });
    assert.deepEqual((await a.emitAck('get_contacts', {})).contacts, []);
    assert.deepEqual((await b.emitAck('get_contacts', {})).incoming, []);
    // responding again: no pending request
    assert.equal((await b.emitAck('contact_respond', { peer_id: a.peerId, accept: true })).error, 'not_found');
    assert.equal((await a.emitAck('offer', { to: b.peerId })).error, 'not_allowed');
    closeAll(a, b);
  });

  test('a request to a peer who already asked you is an acceptance', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await a.emitAck('contact_request', { to: b.peerId });
    await b.waitFor('contact_request');
    assert.deepEqual(await b.emitAck('contact_request', { to: a.peerId }), { ok: true });
    assertPeerObject(await a.waitFor('contact_added'), b);
    assertPeerObject(await b.waitFor('contact_added'), a);
    closeAll(a, b);
  });

  test('bad requests: bad_request, unknown_peer, not_found', async () => {
    const a = await client({ label: 'A' });
    for (const arg of [{}, { to: 'x' }, { to: a.peerId }, { to: a.peerId.replace(/./, '1') }, { to: 5 }]) {
      assert.equal((await a.emitAck('contact_request', arg)).error, 'bad_request', JSON.stringify(arg));
    }
    const b = await client({ label: 'B' });
    assert.equal((await a.emitAck('contact_request', { to: b.peerId, message: 'm'.repeat(513) })).error, 'bad_request');
    assert.equal((await a.emitAck('contact_request', { to: b.peerId, message: 5 })).error, 'bad_request');
    assert.equal((await a.emitAck('contact_request', { to: await strangerPeerId() })).error, 'unknown_peer');
    assert.equal((await a.emitAck('contact_respond', { peer_id: b.peerId, accept: true })).error, 'not_found');
    assert.equal((await a.emitAck('contact_respond', { peer_id: b.peerId, accept: 'yes' })).error, 'bad_request');
    assert.equal((await a.emitAck('contact_remove', { peer_id: b.peerId })).error, 'not_found');
    closeAll(a, b);
  });

  test('remove: the other side gets contact_removed and user_disconnected; relay stops', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await makeContacts(a, b);
    const mb = b.mark();
    assert.deepEqual(await a.emitAck('contact_remove', { peer_id: b.peerId }), { ok: true });
    assert.deepEqual(await b.waitFor('contact_removed', () => true, { since: mb }), { peer_id: a.peerId });
    assert.deepEqual(await b.waitFor('user_disconnected', () => true, { since: mb }), { peer_id: a.peerId });
    assert.deepEqual((await b.emitAck('get_contacts', {})).contacts, []);
    assert.deepEqual((await a.emitAck('get_contacts', {})).contacts, []);
    assert.equal((await b.emitAck('offer', { to: a.peerId })).error, 'not_allowed');
    assert.equal((await a.emitAck('offer', { to: b.peerId })).error, 'not_allowed');
    closeAll(a, b);
  });

  describe('block', () => {
    test('blocking a contact removes it; the blocked side\'s relay gets offline; requests are discarded', async () => {
      const a = await client({ label: 'A' });
      const b = await client({ label: 'B' });
      await makeContacts(a, b);
      const ma = a.mark(), mb = b.mark();
      assert.deepEqual(await b.emitAck('block', { peer_id: a.peerId }), { ok: true });
      // A sees B go offline; nothing says "blocked"
      assert.deepEqual(await a.waitFor('user_disconnected', () => true, { since: ma }), { peer_id: b.peerId });
      const cb = await b.emitAck('get_contacts', {});
      assert.deepEqual(cb.contacts, []);
      assert.deepEqual(cb.blocked, [a.peerId]);
      // requests from A are accepted and silently discarded
      assert.deepEqual(await a.emitAck('contact_request', { to: b.peerId, message: 'let me in' }), { ok: true });
      await b.expectNone('contact_request', () => true, { ms: 300, since: mb });
      assert.deepEqual((await b.emitAck('get_contacts', {})).incoming, []);
      // B cannot ask A while blocking
      assert.equal((await b.emitAck('contact_request', { to: a.peerId })).error, 'not_allowed');
      // relay from A to B: 'offline' (the block is not revealed)
      for (const kind of ['offer', 'answer', 'ice_candidate']) {
        const ack = await a.emitAck(kind, { to: b.peerId, sdp: 'x' });
        assert.equal(ack.error, 'offline', `${kind} to a peer who blocked you: ${JSON.stringify(ack)}`);
      }
      await b.expectNone('offer', () => true, { ms: 200, since: mb });
      closeAll(a, b);
    });

    test('a group co-member who blocked you: relay offline, envelopes ok but discarded', async () => {
      const a = await client({ label: 'A' });
      const b = await client({ label: 'B' });
      const stranger = await client({ label: 'S' });
      // group members must be the creator's contacts
      assert.equal((await a.emitAck('group_create', { name: 'x', members: [stranger.peerId] })).error, 'not_allowed');
      await makeContacts(a, b);
      const g = await a.emitAck('group_create', { name: 'team', members: [b.peerId] });
      assert.equal(g.ok, true, JSON.stringify(g));
      assert.deepEqual([...g.group.members].sort(), [a.peerId, b.peerId].sort());
      // co-members relay to each other
      assert.deepEqual(await a.emitAck('offer', { to: b.peerId, sdp: 'before' }), { ok: true });
      await b.waitFor('offer');
      const mb = b.mark();
      assert.deepEqual(await b.emitAck('block', { peer_id: a.peerId }), { ok: true });
      assert.deepEqual((await b.emitAck('get_contacts', {})).contacts, [], 'block removed the contact');
      // still co-members, so still visible: the block itself answers 'offline'
      for (const kind of ['offer', 'answer', 'ice_candidate']) {
        assert.equal((await a.emitAck(kind, { to: b.peerId, sdp: 'x' })).error, 'offline', kind);
      }
      const env = await a.emitAck('envelope_send', { to: b.peerId, envelope: 'AAAA' });
      assert.equal(env.ok, true, JSON.stringify(env));
      await b.expectNone('envelope', () => true, { ms: 300, since: mb });
      await b.expectNone('offer', () => true, { ms: 1, since: mb });
      // B can still reach A
      assert.deepEqual(await b.emitAck('offer', { to: a.peerId, sdp: 'from b' }), { ok: true });
      // unblock: relay works again
      assert.deepEqual(await b.emitAck('unblock', { peer_id: a.peerId }), { ok: true });
      assert.deepEqual(await a.emitAck('offer', { to: b.peerId, sdp: 'after' }), { ok: true });
      assert.equal((await b.waitFor('offer', () => true, { since: mb })).sdp, 'after');
      assert.equal((await b.emitAck('unblock', { peer_id: a.peerId })).error, 'not_found');
      closeAll(a, b, stranger);
    });

    test('profile_get: yourself, contacts and whoever asks you; not whom you ask, a stranger, or who blocked you', async () => {
      const a = await client({ label: 'A', name: 'Ann' });
      const b = await client({ label: 'B', name: 'Bea' });
      const s = await client({ label: 'S', name: 'Sam' });
      const profile = async (who, peer) => who.emitAck('profile_get', { peer_id: peer.peerId });
      assert.equal((await profile(a, a)).profile.name, 'Ann');
      assert.equal((await profile(a, b)).error, 'not_allowed', 'a stranger');
      await makeContacts(a, b);
      assert.equal((await profile(a, b)).profile.name, 'Bea', 'a contact');
      assert.deepEqual(await s.emitAck('contact_request', { to: a.peerId }), { ok: true });
      await a.waitFor('contact_request');
      assert.equal((await profile(a, s)).profile.name, 'Sam', 'the one who asks, so that A can decide');
      assert.equal((await profile(s, a)).error, 'not_allowed', 'asking shows the asker nothing');
      // B blocks A: to A, B is now any stranger
      assert.deepEqual(await b.emitAck('block', { peer_id: a.peerId }), { ok: true });
      assert.equal((await profile(a, b)).error, 'not_allowed');
      const env = await a.emitAck('envelope_send', { to: b.peerId, envelope: 'AAAA' });
      assert.equal(env.error, 'not_allowed', `as to a stranger: ${JSON.stringify(env)}`);
      assert.deepEqual(await a.emitAck('contact_request', { to: b.peerId }), { ok: true }, 'as to a stranger');
      assert.equal((await profile(a, b)).error, 'not_allowed', 'and asking still shows nothing');
      closeAll(a, b, s);
    });

    test('a block hides the blocker from a group co-member: no presence, no profile; unblock shows it again', async () => {
      const x = await client({ label: 'X' });
      const b = await client({ label: 'B', name: 'Bea' });
      const c = await client({ label: 'C', name: 'Cal' });
      await makeContacts(x, b);
      await makeContacts(x, c);
      assert.deepEqual(await b.emitAck('block', { peer_id: c.peerId }), { ok: true });
      const mb = b.mark(), mc = c.mark();
      const g = await x.emitAck('group_create', { name: 'both', members: [b.peerId, c.peerId] });
      assert.equal(g.ok, true, JSON.stringify(g));
      await b.waitFor('user_connected', (p) => p.peer_id === c.peerId, { since: mb }); // the blocker sees
      await c.expectNone('user_connected', (p) => p.peer_id === b.peerId, { ms: 300, since: mc });
      assert.equal((await c.emitAck('profile_get', { peer_id: b.peerId })).error, 'not_allowed');
      assert.equal((await b.emitAck('profile_get', { peer_id: c.peerId })).profile.name, 'Cal');
      assert.equal((await c.emitAck('offer', { to: b.peerId, sdp: 'x' })).error, 'offline');
      // a new session of C: B is not in its online_users either
      c.close();
      await b.waitFor('user_disconnected', (p) => p.peer_id === c.peerId, { since: mb });
      const c2 = await client({ who: c, label: 'C2' });
      const list = await c2.waitFor('online_users');
      assert.ok(list.users.some((u) => u.peer_id === x.peerId), 'C2 sees X');
      assert.ok(!list.users.some((u) => u.peer_id === b.peerId), 'C2 does not see B');
      // unblock: C2 sees B come into view
      const m2 = c2.mark();
      assert.deepEqual(await b.emitAck('unblock', { peer_id: c.peerId }), { ok: true });
      await c2.waitFor('user_connected', (p) => p.peer_id === b.peerId, { since: m2 });
      assert.equal((await c2.emitAck('profile_get', { peer_id: b.peerId })).profile.name, 'Bea');
      closeAll(x, b, c2);
    });

    test('blocking removes a pending request; unblock allows new requests', async () => {
      const a = await client({ label: 'A' });
      const b = await client({ label: 'B' });
      await a.emitAck('contact_request', { to: b.peerId });
      await b.waitFor('contact_request');
      assert.deepEqual(await b.emitAck('block', { peer_id: a.peerId }), { ok: true });
      assert.deepEqual((await b.emitAck('get_contacts', {})).incoming, []);
      assert.deepEqual((await a.emitAck('get_contacts', {})).outgoing, []);
      assert.deepEqual(await b.emitAck('unblock', { peer_id: a.peerId }), { ok: true });
      assert.deepEqual((await b.emitAck('get_contacts', {})).blocked, []);
      await makeContacts(a, b);
      closeAll(a, b);
    });
  });
});

// A store that cannot answer "is A blocked?" must refuse, not let A through
// (and the relay must not cache such an answer). The blocks table is renamed
// behind the server's back, through the database's own client.
describe('block checks fail closed', () => {
  const fx = useServer();

  function sql(stmt) {
    const db = fx.srv.db;
    if (db.startsWith('sqlite:'))
      execFileSync('sqlite3', ['-cmd', '.timeout 5000', db.slice('sqlite:'.length), stmt]);
    else
      execFileSync('psql', ['-v', 'ON_ERROR_STOP=1', '-q', db, '-c', stmt]);
  }

  test('with the blocks table gone: relay, envelope and request all answer internal; nothing arrives', async () => {
    const a = await fx.client({ label: 'A' });
    const b = await fx.client({ label: 'B' });
    await makeContacts(a, b);
    // co-members stay visible to each other after the block removes the contact
    const g = await a.emitAck('group_create', { name: 'g', members: [b.peerId] });
    assert.equal(g.ok, true, JSON.stringify(g));
    assert.deepEqual(await b.emitAck('block', { peer_id: a.peerId }), { ok: true });
    assert.equal((await a.emitAck('offer', { to: b.peerId, sdp: 'x' })).error, 'offline');
    const mb = b.mark();
    sql('ALTER TABLE blocks RENAME TO blocks_away');
    try {
      for (const kind of ['offer', 'answer', 'ice_candidate']) {
        const ack = await a.emitAck(kind, { to: b.peerId, sdp: 'leak?' });
        assert.equal(ack.error, 'internal', `${kind}: ${JSON.stringify(ack)}`);
      }
      const env = await a.emitAck('envelope_send', { to: b.peerId, envelope: 'AAAA' });
      assert.equal(env.error, 'internal', JSON.stringify(env));
      const req = await a.emitAck('contact_request', { to: b.peerId, message: 'let me in' });
      assert.equal(req.error, 'internal', JSON.stringify(req));
      assert.match(fx.srv.stderr, /store: block_is: /, 'the store logs why');
    } finally {
      sql('ALTER TABLE blocks_away RENAME TO blocks');
    }
    // the block holds again, and nothing got through meanwhile
    assert.equal((await a.emitAck('offer', { to: b.peerId, sdp: 'y' })).error, 'offline');
    for (const ev of ['offer', 'envelope', 'contact_request'])
      await b.expectNone(ev, () => true, { ms: ev === 'offer' ? 300 : 1, since: mb });
    closeAll(a, b);
  });

  test('with the users table gone: "is there such a user?" answers internal, not unknown_peer', async () => {
    const a = await fx.client({ label: 'A' });
    const b = await fx.client({ label: 'B' });
    await makeContacts(a, b);
    const m = a.mark();
    b.close(); // offline: the relay must ask the store whether B exists
    await a.waitFor('user_disconnected', (p) => p.peer_id === b.peerId, { since: m });
    sql('ALTER TABLE users RENAME TO users_away');
    try {
      assert.equal((await a.emitAck('offer', { to: b.peerId, sdp: 'x' })).error, 'internal');
      assert.equal((await a.emitAck('envelope_send', { to: b.peerId, envelope: 'AAAA' })).error, 'internal');
      assert.equal((await a.emitAck('contact_request', { to: b.peerId })).error, 'internal');
      assert.equal((await a.emitAck('profile_get', { peer_id: b.peerId })).error, 'internal');
    } finally {
      sql('ALTER TABLE users_away RENAME TO users');
    }
    assert.equal((await a.emitAck('offer', { to: b.peerId, sdp: 'x' })).error, 'offline');
    closeAll(a);
  });
});
