// envelope.test.mjs - offline envelopes (docs/PROTOCOL.md §3.5, §6).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { connectClient, makeContacts, closeAll, strangerPeerId, id, sleep, useServer } from './lib/client.mjs';

const blob = (text) => id.b64urlEncode(new TextEncoder().encode(text));

describe('offline envelopes', () => {
  const { client } = useServer();

  test('sent while the contact is offline, delivered once at login, gone after envelope_ack', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await makeContacts(a, b);
    const m = a.mark();
    b.close();
    await a.waitFor('user_disconnected', (x) => x.peer_id === b.peerId, { since: m });

    const payload = blob('sealed box ' + 'z'.repeat(1000) + ' 😀');
    const sent = await a.emitAck('envelope_send', { to: b.peerId, envelope: payload });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    assert.equal(typeof sent.id, 'string');
    assert.match(sent.id, /^[A-Za-z0-9_-]{1,64}$/);

    const b2 = await client({ who: b, label: 'B2' });
    const env = await b2.waitFor('envelope');
    assert.equal(env.id, sent.id);
    assert.equal(env.from, a.peerId);
    assert.equal(env.envelope, payload);
    assert.equal(typeof env.at, 'number');
    // order after login: online_users before the envelope
    const names = b2.events.map((e) => e.name).filter((n) => n === 'online_users' || n === 'envelope');
    assert.deepEqual(names.slice(0, 2), ['online_users', 'envelope']);
    await sleep(300);
    assert.equal(b2.all('envelope').length, 1, 'delivered exactly once');

    const ack = await b2.emitAck('envelope_ack', { ids: [env.id] });
    assert.deepEqual(ack, { ok: true, deleted: 1 });
    const again = await b2.emitAck('envelope_ack', { ids: [env.id] });
    assert.deepEqual(again, { ok: true, deleted: 0 });

    b2.close();
    const b3 = await client({ who: b, label: 'B3' });
    await b3.waitFor('online_users');
    await b3.expectNone('envelope', () => true, { ms: 500, since: 0 });
    b3.close();
    a.close();
  });

  test('an unacknowledged envelope is delivered again at the next login', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await makeContacts(a, b);
    b.close();
    const payload = blob('again');
    const sent = await a.emitAck('envelope_send', { to: b.peerId, envelope: payload });
    assert.equal(sent.ok, true);
    const b2 = await client({ who: b });
    assert.equal((await b2.waitFor('envelope')).id, sent.id);
    b2.close();
    const b3 = await client({ who: b });
    const env = await b3.waitFor('envelope');
    assert.equal(env.id, sent.id);
    assert.equal(env.envelope, payload);
    assert.deepEqual(await b3.emitAck('envelope_ack', { ids: [sent.id] }), { ok: true, deleted: 1 });
    b3.close();
    a.close();
  });

  test('to an online contact: stored and delivered live', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await makeContacts(a, b);
    const m = b.mark();
    const payload = blob('live');
    const sent = await a.emitAck('envelope_send', { to: b.peerId, envelope: payload });
    assert.equal(sent.ok, true);
    const env = await b.waitFor('envelope', () => true, { since: m });
    assert.deepEqual({ id: env.id, from: env.from, envelope: env.envelope }, { id: sent.id, from: a.peerId, envelope: payload });
    a.close();
    b.close();
  });

  test('refusals: bad_request, unknown_peer, not_allowed', async () => {
    const a = await client({ label: 'A' });
    const stranger = await client({ label: 'S' });
    const b = await client({ label: 'B' });
    await makeContacts(a, b);
    const bad = [
      {}, { to: b.peerId }, { to: b.peerId, envelope: '' }, { to: b.peerId, envelope: 'not base64!' },
      { to: b.peerId, envelope: 'QQ=' }, { to: b.peerId, envelope: 'QR' } /* non-canonical */,
      { to: b.peerId, envelope: 'x'.repeat(49156) } /* canonical, over 49152 chars */, { to: b.peerId, envelope: blob('x'), ttl: -1 },
      { to: b.peerId, envelope: blob('x'), ttl: 'soon' }, { to: 'abc', envelope: blob('x') },
      { to: a.peerId, envelope: blob('x') },
    ];
    for (const arg of bad) {
      const ack = await a.emitAck('envelope_send', arg);
      assert.equal(ack.error, 'bad_request', JSON.stringify(arg).slice(0, 120));
    }
    const max = await a.emitAck('envelope_send', { to: b.peerId, envelope: 'x'.repeat(49152) });
    assert.equal(max.ok, true, `49152 characters are allowed: ${JSON.stringify(max)}`);
    assert.equal((await a.emitAck('envelope_send', { to: await strangerPeerId(), envelope: blob('x') })).error, 'unknown_peer');
    assert.equal((await a.emitAck('envelope_send', { to: stranger.peerId, envelope: blob('x') })).error, 'not_allowed');
    for (const arg of [{}, { ids: [] }, { ids: 'x' }, { ids: ['bad id!'] }, { ids: [1] }]) {
      assert.equal((await a.emitAck('envelope_ack', arg)).error, 'bad_request', JSON.stringify(arg));
    }
    // acking someone else's envelope deletes nothing
    b.close();
    const sent = await a.emitAck('envelope_send', { to: b.peerId, envelope: blob('mine') });
    assert.deepEqual(await stranger.emitAck('envelope_ack', { ids: [sent.id] }), { ok: true, deleted: 0 });
    assert.deepEqual(await a.emitAck('envelope_ack', { ids: [sent.id] }), { ok: true, deleted: 0 });
    const b2 = await client({ who: b });
    assert.equal((await b2.waitFor('envelope', (e) => e.id === sent.id)).envelope, blob('mine'));
    closeAll(a, stranger, b2);
  });
});

describe('offline envelope quota (--queue-max 3)', () => {
  let srv;
  const clients = [];
  before(async () => { srv = await startServer({ args: ['--queue-max', '3'] }); });
  after(async () => {
    closeAll(clients);
    await srv?.cleanup();
  });

  test('the 4th queued envelope for one recipient is quota_exceeded; acking frees room', async () => {
    const a = await connectClient(srv.url, { label: 'A' });
    const b = await connectClient(srv.url, { label: 'B' });
    const c = await connectClient(srv.url, { label: 'C' });
    clients.push(a, b, c);
    await makeContacts(a, b);
    await makeContacts(c, b);
    b.close();
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const ack = await a.emitAck('envelope_send', { to: b.peerId, envelope: blob(`n${i}`) });
      assert.equal(ack.ok, true, `#${i + 1}: ${JSON.stringify(ack)}`);
      ids.push(ack.id);
    }
    const fourth = await a.emitAck('envelope_send', { to: b.peerId, envelope: blob('n3') });
    assert.equal(fourth.ok, false);
    assert.equal(fourth.error, 'quota_exceeded');
    // the quota is the recipient's, whoever sends
    assert.equal((await c.emitAck('envelope_send', { to: b.peerId, envelope: blob('c') })).error, 'quota_exceeded');
    // ... and other recipients are not affected
    assert.equal((await c.emitAck('envelope_send', { to: a.peerId, envelope: blob('to a') })).error, 'not_allowed',
      'a and c are not contacts');
    await makeContacts(a, c);
    assert.equal((await c.emitAck('envelope_send', { to: a.peerId, envelope: blob('to a') })).ok, true,
      'another recipient has its own quota');
    const b2 = await connectClient(srv.url, { who: b, label: 'B2' });
    clients.push(b2);
    for (let i = 0; i < 3; i++) await b2.waitFor('envelope');
    await sleep(200);
    assert.deepEqual(b2.all('envelope').map((e) => e.id).sort(), [...ids].sort());
    assert.deepEqual(await b2.emitAck('envelope_ack', { ids: [ids[0]] }), { ok: true, deleted: 1 });
    const m = b2.mark();
    const fifth = await a.emitAck('envelope_send', { to: b.peerId, envelope: blob('n4') });
    assert.equal(fifth.ok, true, JSON.stringify(fifth));
    await b2.waitFor('envelope', (e) => e.id === fifth.id, { since: m });
  });
});

// A full queue of large envelopes must not keep the recipient from logging
// in: they go out a send queue's worth at a time as the client acknowledges.
describe('a recipient with 200 large envelopes waiting', () => {
  const { client } = useServer({ args: ['--rate', '1000', '--burst', '1000'] });

  test('logs in, and gets each of them once as it acknowledges', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await makeContacts(a, b);
    b.close();
    const big = (i) => blob(`${i}:`.padEnd(36864, 'q')); // 49152 b64url chars, the most allowed
    const ids = new Set();
    for (let i = 0; i < 200; i++) {
      const sent = await a.emitAck('envelope_send', { to: b.peerId, envelope: big(i) });
      assert.equal(sent.ok, true, JSON.stringify(sent));
      ids.add(sent.id);
    }
    assert.equal(big(0).length, 49152);
    const b2 = await client({ who: b, label: 'B2' }); // ~9.6 MB waiting: more than one send queue
    const got = new Set();
    while (got.size < 200) {
      const env = await b2.waitFor('envelope', () => true, { timeout: 10000 });
      assert.ok(!got.has(env.id), `envelope ${env.id} came twice`);
      got.add(env.id);
      await b2.emitAck('envelope_ack', { ids: [env.id] });
    }
    assert.deepEqual([...got].sort(), [...ids].sort());
    await sleep(300);
    assert.equal(b2.all('envelope').length, 200, 'each delivered exactly once');
    assert.equal(b2.connected, true);
    closeAll(a, b2);
  });
});
