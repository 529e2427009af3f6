// hostile.test.mjs - malformed, oversized and abusive input (docs/PROTOCOL.md
// §1, §1.1, §7). Every case runs while two other logged-in clients (B, C)
// keep working: after each one, B still relays an offer to C and /healthz
// answers 200.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { startServer } from './lib/server.mjs';
import { connectClient, makeContacts, makeIdentity, closeAll, sleep, withTimeout } from './lib/client.mjs';
import { RawWs, RawPolling, healthz } from './lib/raw.mjs';

describe('hostile input', () => {
  let srv, b, c;
  const clients = [];
  const raws = [];
  let healthyRuns = 0;

  async function assertOthersWork() {
    assert.ok(srv.running(), `echolinkd died:\n${srv.tail()}`);
    const m = c.mark();
    const sdp = `v=0\r\nhealthy ${++healthyRuns}\r\n`;
    const ack = await b.emitAck('offer', { to: c.peerId, sdp });
    assert.deepEqual(ack, { ok: true }, 'B can still relay');
    const got = await c.waitFor('offer', (o) => o.sdp === sdp, { since: m });
    assert.equal(got.from, b.peerId);
    const h = await healthz(srv.port);
    assert.equal(h.status, 200, '/healthz');
    assert.equal(b.connected && c.connected, true, 'B and C stay connected');
  }

  async function hostileClient(opts = {}) {
    const h = await connectClient(srv.url, { label: 'H', io: { reconnection: false }, ...opts });
    clients.push(h);
    return h;
  }

  async function rawWs() {
    const r = await RawWs.open(srv.port);
    raws.push(r);
    await r.connect();
    return r;
  }

  before(async () => {
    srv = await startServer();
    b = await connectClient(srv.url, { label: 'B' });
    c = await connectClient(srv.url, { label: 'C', transports: ['websocket'] });
    await makeContacts(b, c);
    await assertOthersWork();
  });
  after(async () => {
    closeAll(clients, b, c);
    for (const r of raws) r.close();
    await srv?.cleanup();
  });

  test('an event larger than --max-event-size (64 KiB): too_large; the connection stays', async () => {
    for (const transports of [['websocket'], ['polling']]) {
      const h = await hostileClient({ transports });
      await makeContacts(h, c);
      const ack = await h.emitAck('offer', { to: c.peerId, sdp: 'a'.repeat(70 * 1024) });
      assert.equal(ack.ok, false);
      assert.equal(ack.error, 'too_large', transports[0]);
      // just under the limit still works
      const small = await h.emitAck('offer', { to: c.peerId, sdp: 'a'.repeat(60 * 1024) });
      assert.deepEqual(small, { ok: true }, transports[0]);
      assert.equal(h.connected, true);
      h.close();
    }
    await assertOthersWork();
  });

  test('a WebSocket message over 1 MiB closes that connection (1009)', async () => {
    const r = await rawWs();
    r.send(`42["offer",{"x":"${'y'.repeat(1100 * 1024)}"}]`);
    const closed = await r.waitClosed(5000);
    assert.ok(closed, 'closed');
    assert.equal(closed.code, 1009);
    await assertOthersWork();
  });

  for (const bad of ['4abc', '42{}', '4', '49', '42', '4x["offer",{}]', '7', 'z', '2probe', '43[']) {
    test(`raw WebSocket packet ${JSON.stringify(bad)}: the server closes that connection`, async () => {
      const r = await rawWs();
      r.send(bad);
      const closed = await r.waitClosed(3000);
      assert.ok(closed, `connection not closed after ${JSON.stringify(bad)}; frames: ${JSON.stringify(r.frames.map((f) => f.text))}`);
      await assertOthersWork();
    });
  }

  test('raw 42["x" (invalid JSON in a well-framed event): error event invalid_json; the connection stays', async () => {
    const r = await rawWs();
    r.send('42["x"');
    const err = await r.waitEvent('error');
    assert.equal(err.error, 'invalid_json');
    assert.equal(typeof err.message, 'string');
    // with an ack id it is an error ack
    r.send('427["offer",{"to":]');
    const ack = await r.waitAck(7);
    assert.equal(ack.ok, false);
    assert.equal(ack.error, 'invalid_json');
    // non-strict JSON (what JSON.parse would reject)
    let n = 10;
    for (const text of ["['x']", '["x",{a:1}]', '["x",{"a":01}]', '["x",{"a":1,}]', '["x",NaN]', '["x"]]', '["x",{"a":"\t"}]', '["x","\\x41"]']) {
      r.send(`42${n}${text}`);
      const a2 = await r.waitAck(n);
      assert.equal(a2.error, 'invalid_json', text);
      n++;
    }
    assert.equal(r.closeInfo, null, 'still open');
    const who = await makeIdentity();
    assert.equal((await r.login(who.identity)).ok, true, 'the connection still logs in');
    await assertOthersWork();
  });

  test('invalid UTF-8 inside an event, as a WebSocket text frame: invalid_json or a close; the server survives', async (t) => {
    const r = await rawWs();
    const bytes = Buffer.concat([Buffer.from('421["offer",{"to":"x","s":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('"}]')]);
    r.send(bytes, { binary: false });
    const outcome = await Promise.race([
      r.waitAck(1, 3000).then((ack) => ({ ack })),
      r.closed.then((cl) => ({ closed: cl })),
    ]).catch((e) => ({ error: e }));
    t.diagnostic(`observed over WebSocket: ${JSON.stringify(outcome)}`);
    assert.ok(!outcome.error, String(outcome.error));
    if (outcome.ack) assert.equal(outcome.ack.error, 'invalid_json');
    else assert.ok(outcome.closed, 'closed');
    // Socket.IO event names are checked too
    if (!outcome.closed) {
      r.send(Buffer.concat([Buffer.from('42["'), Buffer.from([0xc0, 0xaf]), Buffer.from('",{}]')]), { binary: false });
      const err = await Promise.race([r.waitEvent('error', 3000), r.closed.then(() => null)]);
      if (err) assert.equal(err.error, 'invalid_json');
    }
    await assertOthersWork();
  });

  test('invalid UTF-8 inside an event, in a long-polling POST: invalid_json; the session stays', async (t) => {
    const p = await RawPolling.open(srv.port);
    assert.equal((await p.post('40')).status, 200);
    await p.pollFor((x) => x.startsWith('42["challenge"'));
    const body = Buffer.concat([Buffer.from('421["offer",{"to":"x","s":"'), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from('"}]')]);
    const post = await p.post(body);
    t.diagnostic(`POST with invalid UTF-8: HTTP ${post.status} ${post.body}`);
    const got = await p.pollFor((x) => x.startsWith('431['));
    t.diagnostic(`reply: ${JSON.stringify(got.packet)} (closed: ${!!got.closed})`);
    assert.equal(post.status, 200);
    assert.ok(got.packet, `no ack; seen ${JSON.stringify(got.seen)}`);
    assert.equal(JSON.parse(got.packet.slice(3))[0].error, 'invalid_json');
    // the session still answers
    assert.equal((await p.post('422["get_contacts",{}]')).status, 200);
    const again = await p.pollFor((x) => x.startsWith('432['));
    assert.equal(JSON.parse(again.packet.slice(3))[0].error, 'not_logged_in');
    await p.post('1');
    await assertOthersWork();
  });

  test('JSON nested 100 deep: invalid_json; nesting within the limit works', async () => {
    const h = await hostileClient();
    await makeContacts(h, c);
    let deep = 'bottom';
    for (let i = 0; i < 100; i++) deep = i % 2 ? { d: deep } : [deep];
    const ack = await h.emitAck('offer', { to: c.peerId, deep });
    assert.equal(ack.ok, false);
    assert.equal(ack.error, 'invalid_json');
    let ok = 'bottom';
    for (let i = 0; i < 20; i++) ok = [ok];
    assert.deepEqual(await h.emitAck('offer', { to: c.peerId, ok }), { ok: true });
    // a raw deep array (no object) and unbalanced brackets
    const r = await rawWs();
    r.send(`421["offer",${'['.repeat(5000)}${']'.repeat(5000)}]`);
    assert.equal((await r.waitAck(1)).error, 'invalid_json');
    r.send(`422["offer",${'['.repeat(5000)}]`);
    assert.equal((await r.waitAck(2)).error, 'invalid_json');
    h.close();
    await assertOthersWork();
  });

  test('binary attachments: binary_unsupported; the connection stays', async () => {
    for (const transports of [['websocket'], ['polling']]) {
      const h = await hostileClient({ transports });
      await makeContacts(h, c);
      const m = c.mark();
      const ack = await h.emitAck('offer', { to: c.peerId, blob: Buffer.from([1, 2, 3, 0, 255]) });
      assert.equal(ack.ok, false);
      assert.equal(ack.error, 'binary_unsupported', transports[0]);
      await c.expectNone('offer', (o) => o.from === h.peerId, { ms: 200, since: m });
      assert.equal(h.connected, true);
      assert.deepEqual(await h.emitAck('offer', { to: c.peerId, sdp: 'after binary' }), { ok: true });
      // without an ack: the error event
      const mh = h.mark();
      h.socket.emit('answer', { to: c.peerId, blob: new Uint8Array([9, 9]) });
      const err = await h.waitFor('error', () => true, { since: mh });
      assert.equal(err.error, 'binary_unsupported');
      h.close();
    }
    await assertOthersWork();
  });

  test('binary attachments are not held: 8 connections announcing 16 MiB each leave the server small', async () => {
    // a server of its own whose sanitizer (if any) returns freed memory at
    // once, so that its size shows what it holds
    const own = await startServer({
      env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0'].filter(Boolean).join(':') },
    });
    try {
      const rssKB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${own.proc.pid}/status`, 'utf8'))[1]);
      const before = rssKB();
      const rs = [];
      for (let i = 0; i < 8; i++) {
        const r = await RawWs.open(own.port); // not logged in: no login is needed to send these
        raws.push(r);
        await r.connect();
        r.send('4516-["x",{"_placeholder":true,"num":0}]');
        rs.push(r);
      }
      const mib = Buffer.alloc(1 << 20, 0x5a);
      for (let k = 0; k < 15; k++) for (const r of rs) r.send(mib, { binary: true });
      // 120 MiB in flight: give the server time to read it, watching its size
      let peak = before;
      for (let t = 0; t < 30; t++) {
        peak = Math.max(peak, rssKB());
        await sleep(100);
      }
      assert.ok(peak - before < 40 * 1024,
        `server grew ${((peak - before) / 1024).toFixed(1)} MiB while attachments came in`);
      // the 16th attachment completes each packet: refused, the connection stays
      for (const r of rs) r.send(Buffer.alloc(16, 1), { binary: true });
      for (const r of rs) {
        const err = await r.waitEvent('error');
        assert.equal(err.error, 'binary_unsupported');
        assert.equal(r.closeInfo, null);
      }
      for (const r of rs) r.close();
    } finally {
      await own.cleanup();
    }
  });

  test('an unknown event: unknown_event (ack, or error event naming it)', async () => {
    const h = await hostileClient();
    const ack = await h.emitAck('no_such_event', {});
    assert.equal(ack.error, 'unknown_event');
    const m = h.mark();
    h.socket.emit('no_such_event_either', {});
    const err = await h.waitFor('error', () => true, { since: m });
    assert.equal(err.error, 'unknown_event');
    assert.equal(err.event, 'no_such_event_either');
    assert.equal(h.connected, true);
    h.close();
    await assertOthersWork();
  });

  test('an unknown event whose name is cut inside a multi-byte character: error event, connection stays', async () => {
    const h = await hostileClient();
    // 39 ASCII bytes, then 'é' (2 bytes): a cut at 40 bytes splits it
    const long = 'a'.repeat(39) + 'é' + 'b'.repeat(20);
    const ack = await h.emitAck(long, {});
    assert.equal(ack.error, 'unknown_event', 'with an ack id');
    const m = h.mark();
    h.socket.emit(long, {});
    const got = await Promise.race([
      h.waitFor('error', () => true, { since: m, timeout: 3000 }).then((e) => ({ error: e })),
      h.waitFor('$disconnect', () => true, { since: m, timeout: 3000 }).then((r) => ({ disconnect: r })),
    ]).catch((e) => ({ nothing: String(e) }));
    assert.ok(got.error, `expected an 'error' event, got ${JSON.stringify(got)}`);
    assert.equal(got.error.error, 'unknown_event');
    assert.equal(h.connected, true, 'the connection stays');
    h.close();
    await assertOthersWork();
  });

  test('a burst of 150 events: the excess gets rate_limited acks; the connection stays', async () => {
    const h = await hostileClient({ transports: ['websocket'] });
    const acks = await Promise.all(Array.from({ length: 150 }, () => h.emitAck('get_ice_servers', {}, 10000)
      .catch((e) => ({ client_error: String(e) }))));
    const ok = acks.filter((a) => a.ok).length;
    const limited = acks.filter((a) => a.error === 'rate_limited').length;
    assert.equal(ok + limited, 150, `every event answered: ${JSON.stringify(acks.find((a) => !a.ok && a.error !== 'rate_limited'))}`);
    assert.ok(ok >= 95 && ok < 150, `about the burst of 100 accepted (${ok}; the login took a token)`);
    assert.ok(limited > 0, 'some rate_limited');
    assert.equal(h.connected, true);
    await sleep(1100); // refill
    assert.equal((await h.emitAck('get_ice_servers', {})).ok, true);
    h.close();
    await assertOthersWork();
  });

  test('a flood of 2000 events: rate_limited acks, then session_closed flood', async () => {
    const h = await hostileClient({ transports: ['websocket'] });
    const acks = [];
    const sent = 2000;
    for (let i = 0; i < sent; i++) {
      h.socket.timeout(15000).emit('get_ice_servers', {}, (err, ack) => acks.push(err ? { client_error: String(err) } : ack));
    }
    const closed = await h.waitFor('session_closed', () => true, { timeout: 8000 }).catch((e) => ({ nothing: String(e) }));
    // let the remaining acks / the disconnect arrive
    await withTimeout((async () => { while (h.connected) await sleep(50); })(), 5000, 'flood client disconnected').catch(() => {});
    const ok = acks.filter((a) => a.ok).length;
    const limited = acks.filter((a) => a.error === 'rate_limited').length;
    const summary = `acks: ${ok} ok, ${limited} rate_limited, ${acks.length - ok - limited} other ` +
      `(${JSON.stringify(acks.find((a) => !a.ok && a.error !== 'rate_limited'))}); disconnects: ${JSON.stringify(h.disconnects)}`;
    assert.deepEqual(closed, { reason: 'flood' }, `session_closed {reason:'flood'}; ${summary}`);
    assert.ok(limited > 0, `some rate_limited acks; ${summary}`);
    assert.ok(ok >= 90 && ok <= 200, `about a burst of events accepted; ${summary}`);
    assert.equal(h.connected, false, 'the flooding connection is closed');
    assert.equal(h.disconnects[0], 'io server disconnect', 'a Socket.IO DISCONNECT ends it');
    h.close();
    await assertOthersWork();
  });

  test('the server still exits cleanly (exit 0, no sanitizer report)', async () => {
    await assertOthersWork();
    closeAll(clients, b, c);
    const res = await srv.stop();
    assert.equal(res.code, 0, `exit ${JSON.stringify(res)}\n${srv.tail(60)}`);
    assert.doesNotMatch(srv.stderr, /AddressSanitizer|LeakSanitizer|runtime error/);
  });
});
