// abuse.test.mjs - floods and connection abuse against echolinkd on
// loopback (docs/PROTOCOL.md §7): login and presence floods, relay floods
// toward one peer, many connections from one address, half-open and
// slow-loris connections. The limits must answer (a clear error or a
// close) and the other users must not notice: while every attack runs, a
// probe relays an offer from B to C every 100 ms and the test asserts that
// each arrives, within PROBE_BOUND_MS.
//
// Attackers bind their own 127.x.y.z source addresses (Linux routes all of
// 127/8 to lo), so the per-address limits see them apart from B and C.
// Figures (rates, latencies) are printed as "# figure ..." diagnostics.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startServer } from './lib/server.mjs';
import { connectClient, makeContacts, makeIdentity, closeAll, sleep, withTimeout } from './lib/client.mjs';
import { RawWs, healthz, httpRequest } from './lib/raw.mjs';

const PROBE_BOUND_MS = 2000;
const ADDR_B = '127.0.0.2';
const ADDR_C = '127.0.0.3';

function figure(what, value) {
  console.log(`# figure ${what}: ${value}`);
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * Relays an offer from b to c every `every` ms until stop(); stop() resolves
 * {sent, lost, max, p50, p99} (ms). A probe not received within
 * PROBE_BOUND_MS counts as lost.
 */
function startProbe(b, c, every = 100) {
  const lat = [];
  let lost = 0, sent = 0, running = true, n = 0;
  const failures = [];
  const hardStop = Date.now() + 120000; // a test that throws before stop()
  const loop = (async () => {
    while (running && Date.now() < hardStop) {
      const sdp = `probe ${++n} ${Date.now()}`;
      const t0 = Date.now();
      sent++;
      try {
        const m = c.mark();
        const ack = await b.emitAck('offer', { to: c.peerId, sdp }, PROBE_BOUND_MS);
        if (!ack.ok) throw new Error(`ack ${JSON.stringify(ack)}`);
        await c.waitFor('offer', (o) => o.sdp === sdp, { since: m, timeout: Math.max(1, PROBE_BOUND_MS - (Date.now() - t0)) });
        lat.push(Date.now() - t0);
      } catch (e) {
        lost++;
        if (failures.length < 5) failures.push(String(e.message || e).slice(0, 200));
      }
      await sleep(every);
    }
  })();
  return async () => {
    running = false;
    await loop;
    lat.sort((x, y) => x - y);
    return { sent, lost, failures, max: lat.length ? lat[lat.length - 1] : NaN, p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
  };
}

function assertProbe(r, what) {
  figure(`${what}: B->C relay probe`, `${r.sent} sent, ${r.lost} lost, p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms`);
  assert.equal(r.lost, 0, `${what}: probes lost: ${JSON.stringify(r.failures)}`);
  assert.ok(r.max < PROBE_BOUND_MS, `${what}: probe latency ${r.max} ms`);
}

/** A RawWs from `addr` that has logged in as `who` (identity), or {error}. */
async function rawLogin(port, addr, who, raws) {
  let r;
  try {
    r = await RawWs.open(port, undefined, undefined, { localAddress: addr });
  } catch (e) {
    return { error: String(e.message || e) };
  }
  raws.push(r);
  try {
    // a refused WebSocket is closed before the Engine.IO open: fail fast
    const closed = r.closed.then((info) => { throw new Error(`closed before login (${info.code})`); });
    closed.catch(() => {});
    await Promise.race([r.connect(), closed]);
    const ack = await Promise.race([r.login(who.identity), closed]);
    return { r, ack };
  } catch (e) {
    return { r, error: String(e.message || e) };
  }
}

/** A refusal by the connection limits: HTTP 503 at the handshake, or a
 *  WebSocket accepted and closed before the Engine.IO open. */
const REFUSED = /503|closed before login|closed before open/;

/** Opens a RawWs from addr; resolves {r} once the Engine.IO open arrived,
 *  or {refused: why}. */
async function rawOpen(port, addr, raws) {
  let r;
  try {
    r = await RawWs.open(port, undefined, undefined, { localAddress: addr });
  } catch (e) {
    return { refused: String(e.message || e) };
  }
  raws.push(r);
  const closed = r.closed.then((info) => ({ refused: `closed before open (${info.code})` }));
  const opened = r.waitFrame((f) => f.text && f.text.startsWith('0{'), 5000, 'Engine.IO open').then(() => ({ r }));
  return Promise.race([opened, closed]).catch((e) => ({ error: String(e.message || e) }));
}

/** Polls cond() every 50 ms until it holds or ms passed; resolves whether it held. */
async function until(cond, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** The numeric value of a Prometheus line `name ...` in /metrics, or null. */
async function metric(port, name) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

describe('abuse: floods and connection limits', () => {
  let srv, b, c;
  const clients = [];
  const raws = [];

  before(async () => {
    srv = await startServer({ args: ['--max-conns-per-ip', '32', '--max-new-ids-per-ip', '100'] });
    b = await connectClient(srv.url, { label: 'B', transports: ['websocket'], io: { localAddress: ADDR_B } });
    c = await connectClient(srv.url, { label: 'C', transports: ['websocket'], io: { localAddress: ADDR_C } });
    clients.push(b, c);
    await makeContacts(b, c);
  });
  after(async () => {
    closeAll(clients);
    for (const r of raws) r.close();
    await srv?.cleanup();
  });

  test('login flood: 400 new identities from one address in waves; beyond --max-conns-per-ip: HTTP 503, beyond --max-new-ids-per-ip: rate_limited; others unaffected', async () => {
    const ADDR = '127.0.0.10';
    const ids = await Promise.all(Array.from({ length: 400 }, () => makeIdentity()));
    const stop = startProbe(b, c);
    const t0 = Date.now();
    let ok = 0, refused = 0, quota = 0, other = [];
    // waves of 50 simultaneous logins: 32 fit under the per-address limit,
    // the rest must be refused at the handshake (503), never half-served
    for (let w = 0; w < ids.length; w += 50) {
      const wave = ids.slice(w, w + 50);
      const res = await Promise.all(wave.map((who) => rawLogin(srv.port, ADDR, who, raws)));
      for (const x of res) {
        if (x.ack && x.ack.ok) ok++;
        else if (x.error && REFUSED.test(x.error)) refused++;
        else if (x.ack && x.ack.error === 'rate_limited' && /new identities/.test(x.ack.message)) quota++;
        else other.push(x.error || JSON.stringify(x.ack));
      }
      for (const x of res) x.r?.close();
      // the server notices the closes; then the address has room again
      // the server notices the closes before the next wave
      await sleep(100);
    }
    const ms = Date.now() - t0;
    const r = await stop();
    figure('login flood from one address', `${ok} logged in, ${refused} refused by the per-address connection limit, ` +
      `${quota} by the new-identity quota, ${other.length} other, in ${ms} ms (${Math.round((ok + quota) * 1000 / ms)} logins/s)`);
    assert.deepEqual(other, [], 'every attempt either logs in or is refused');
    assert.ok(refused > 0, 'the per-address limit refused some');
    assert.equal(ok, 100, 'exactly the hour\'s 100 new identities log in');
    assert.ok(quota > 0, 'the new-identity quota refused the rest');
    assertProbe(r, 'login flood');
    assert.ok(srv.running(), srv.tail());
  });

  test('presence flood: a contact of B logs in and out 60 times; B sees every transition in order, the final state is right', async () => {
    const d = await makeIdentity();
    const dc = await connectClient(srv.url, { label: 'D', who: d, transports: ['websocket'], io: { localAddress: '127.0.0.11', reconnection: false } });
    await makeContacts(b, dc);
    dc.close();
    await b.waitFor('user_disconnected', (x) => x.peer_id === d.peerId, { timeout: 5000 });
    const stop = startProbe(b, c);
    const since = b.mark();
    const ROUNDS = 60;
    const t0 = Date.now();
    let refused = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const x = await rawLogin(srv.port, '127.0.0.11', d, raws);
      if (!x.ack || !x.ack.ok) {
        refused++;
        continue;
      }
      x.r.close();
    }
    const ms = Date.now() - t0;
    // the last logout reaches B, then nothing more
    await until(() => {
      const ev = b.events.slice(since).filter((e) => (e.name === 'user_connected' || e.name === 'user_disconnected') &&
        e.arg.peer_id === d.peerId);
      return ev.length && ev[ev.length - 1].name === 'user_disconnected' &&
        ev.filter((e) => e.name === 'user_disconnected').length >= ROUNDS - refused;
    }, 10000);
    const r = await stop();
    const seq = b.events.slice(since).filter((e) => (e.name === 'user_connected' || e.name === 'user_disconnected') &&
      e.arg.peer_id === d.peerId).map((e) => (e.name === 'user_connected' ? '+' : '-')).join('');
    figure('presence churn', `${ROUNDS} login/logout rounds of one contact in ${ms} ms, ${refused} refused; B saw ${seq.length} transitions`);
    assert.equal(refused, 0, 'a churning client is not refused (each round is one connection)');
    assert.match(seq, /^(\+-)+$/, `B sees strictly alternating online/offline: ${seq}`);
    assert.equal(seq.length, 2 * ROUNDS, 'every transition, none dropped or doubled');
    const contacts = await b.emitAck('get_contacts', {});
    const dEntry = contacts.contacts.find((p) => p.peer_id === d.peerId);
    assert.equal(dEntry.online, false, 'D is offline in B\'s contacts after the churn');
    assertProbe(r, 'presence churn');
  });

  test('same identity on many parallel connections: each login replaces the previous one (session_closed replaced); one stays online', async () => {
    const d = await makeIdentity();
    const dc = await connectClient(srv.url, { label: 'E', who: d, transports: ['websocket'], io: { localAddress: '127.0.0.12' } });
    clients.push(dc);
    await makeContacts(c, dc);
    const stop = startProbe(b, c);
    const res = await Promise.all(Array.from({ length: 20 }, () => rawLogin(srv.port, '127.0.0.12', d, raws)));
    const okRaws = res.filter((x) => x.ack && x.ack.ok).map((x) => x.r);
    // every replaced one was told so
    await sleep(500);
    const replaced = okRaws.filter((r) => r.frames.some((f) => f.text && f.text.startsWith('42["session_closed"') && f.text.includes('replaced')));
    const r = await stop();
    figure('parallel logins of one identity', `${okRaws.length} logged in, ${replaced.length} told replaced`);
    assert.equal(okRaws.length, 20, 'every login succeeds');
    assert.ok(replaced.length >= 19, `all but the last are replaced (${replaced.length})`);
    // C sees E online (the last session) and can relay to it
    const contacts = await c.emitAck('get_contacts', {});
    assert.equal(contacts.contacts.find((p) => p.peer_id === d.peerId).online, true, 'E online for C');
    assertProbe(r, 'parallel logins');
    for (const x of okRaws) x.close();
  });

  test('relay flood: non-contacts get not_allowed, and rate_limited once over --rate', async () => {
    const atk = await connectClient(srv.url, { label: 'X', transports: ['websocket'], io: { localAddress: '127.0.0.20', reconnection: false } });
    clients.push(atk);
    const m = c.mark();
    const acks = await Promise.all(Array.from({ length: 150 }, (_, i) => atk.emitAck('offer', { to: c.peerId, sdp: `x${i}` }, 10000)
      .catch((e) => ({ client_error: String(e) }))));
    const na = acks.filter((a) => a.error === 'not_allowed').length;
    const rl = acks.filter((a) => a.error === 'rate_limited').length;
    figure('relay flood from a non-contact', `150 offers: ${na} not_allowed, ${rl} rate_limited`);
    assert.equal(na + rl, 150, JSON.stringify(acks.find((a) => a.error !== 'not_allowed' && a.error !== 'rate_limited')));
    assert.ok(rl > 0 && na > 0);
    await c.expectNone('offer', (o) => o.from === atk.peerId, { ms: 200, since: m });
    atk.close();
  });

  test('relay flood toward one peer: 4 contact-attackers send 60 KiB offers and candidates as fast as they can; the victim stays connected and still talks to B', async () => {
    const ATTACKERS = 4;
    const victim = c;
    const atks = [];
    for (let i = 0; i < ATTACKERS; i++) {
      const a = await connectClient(srv.url, { label: `A${i}`, transports: ['websocket'], io: { localAddress: `127.0.0.${30 + i}`, reconnection: false } });
      clients.push(a);
      await makeContacts(a, victim);
      atks.push(a);
    }
    const since = victim.mark();
    const stop = startProbe(b, c);
    const big = 'a'.repeat(60 * 1024);
    const counts = { ok: 0, rate_limited: 0, other: 0, flood: 0, cut: 0 };
    const DURATION = 4000;
    const t0 = Date.now();
    await Promise.all(atks.map(async (a) => {
      a.socket.on('session_closed', () => { counts.flood++; });
      while (Date.now() - t0 < DURATION && a.connected) {
        // a wave of 40 (offers and candidates), then the acks
        const wave = Array.from({ length: 40 }, (_, k) => (k % 2
          ? a.emitAck('offer', { to: victim.peerId, sdp: big }, 10000)
          : a.emitAck('ice_candidate', { to: victim.peerId, candidate: `candidate:${k} 1 udp 1 10.77.0.1 9 typ host` }, 10000))
          .catch((e) => ({ client_error: String(e) })));
        for (const x of await Promise.all(wave)) {
          if (x.ok) counts.ok++;
          else if (x.error === 'rate_limited') counts.rate_limited++;
          else if (x.client_error && !a.connected) counts.cut++; // kicked for flood
          else counts.other++;
        }
      }
    }));
    const ms = Date.now() - t0;
    await sleep(500); // the last relayed events reach the victim
    const r = await stop();
    const got = victim.events.slice(since).filter((e) => (e.name === 'offer' || e.name === 'ice_candidate') && e.arg.from !== b.peerId);
    const bytes = got.reduce((n, e) => n + (e.arg.sdp ? e.arg.sdp.length : 100), 0);
    figure('relay flood toward one peer', `${ATTACKERS} attackers, ${ms} ms: ${counts.ok} relayed, ${counts.rate_limited} rate_limited, ` +
      `${counts.other} other, ${counts.cut} unanswered after ${counts.flood} attackers were closed for flood; victim received ${got.length} events ` +
      `(${Math.round(got.length * 1000 / ms)}/s, ${(bytes / 1048576 / (ms / 1000)).toFixed(1)} MiB/s)`);
    assert.ok(victim.connected, 'the victim stays connected');
    assert.ok(counts.rate_limited > 0, 'the attackers get rate_limited');
    assert.equal(counts.other, 0, 'nothing but ok, rate_limited, or no answer after a flood close');
    // bounded traffic: at most burst + rate x time per attacker
    const bound = ATTACKERS * (100 + 50 * (ms / 1000 + 1));
    assert.ok(got.length <= bound, `the victim received ${got.length} events, bound ${Math.round(bound)}`);
    assert.equal(got.length, counts.ok, 'every acked relay arrived');
    assertProbe(r, 'relay flood');
    const h = await healthz(srv.port);
    assert.equal(h.status, 200);
    for (const a of atks) a.close();
  });

  test('relay flood toward a victim that stops reading: it is not disconnected by others\' traffic; senders get rate_limited', async () => {
    const vwho = await makeIdentity();
    const v = await rawLogin(srv.port, '127.0.0.40', vwho, raws);
    assert.equal(v.ack.ok, true);
    const atks = [];
    for (let i = 0; i < 3; i++) {
      const a = await connectClient(srv.url, { label: `S${i}`, transports: ['websocket'], io: { localAddress: `127.0.0.${41 + i}`, reconnection: false } });
      clients.push(a);
      atks.push(a);
    }
    // contacts by hand: the raw victim accepts each request
    let ackId = 100;
    for (const a of atks) {
      assert.deepEqual(await a.emitAck('contact_request', { to: vwho.peerId }), { ok: true });
      await v.r.waitEvent('contact_request');
      v.r.send(`42${ackId}${JSON.stringify(['contact_respond', { peer_id: a.peerId, accept: true }])}`);
      assert.equal((await v.r.waitAck(ackId)).ok, true);
      ackId++;
      await a.waitFor('contact_added', (p) => p.peer_id === vwho.peerId);
    }
    // the victim stops reading: its socket buffers fill, the server queues
    v.r.ws._socket.pause();
    const stop = startProbe(b, c);
    const big = 'v'.repeat(60 * 1024);
    const counts = { ok: 0, rate_limited: 0, offline: 0, other: [] };
    const t0 = Date.now();
    // each sender stays within its own --rate (4 per 100 ms = 40/s), so a
    // rate_limited can only come from the victim's side
    await Promise.all(atks.map(async (a) => {
      while (Date.now() - t0 < 4000 && a.connected) {
        const wave = Array.from({ length: 4 }, () => a.emitAck('offer', { to: vwho.peerId, sdp: big }, 10000)
          .catch((e) => ({ client_error: String(e) })));
        for (const x of await Promise.all(wave)) {
          if (x.ok) counts.ok++;
          else if (x.error === 'rate_limited' && /not reading/.test(x.message)) counts.rate_limited++;
          else if (x.error === 'offline') counts.offline++;
          else counts.other.push(x);
        }
        await sleep(100);
      }
    }));
    const r = await stop();
    const closedBefore = v.r.closeInfo;
    v.r.ws._socket.resume();
    await sleep(300);
    figure('relay flood toward a paused reader', `relayed ${counts.ok} x 60 KiB (${(counts.ok * 60 / 1024).toFixed(1)} MiB), ` +
      `${counts.rate_limited} rate_limited, ${counts.offline} offline; victim closed: ${JSON.stringify(closedBefore || v.r.closeInfo)}`);
    assert.equal(counts.other.length, 0, JSON.stringify(counts.other.slice(0, 3)));
    assert.equal(counts.offline, 0, 'the victim was never dropped (offline)');
    assert.equal(v.r.closeInfo, null, 'the victim\'s connection is still open');
    assert.ok(counts.rate_limited > 0, 'senders to a backed-up peer are told rate_limited (the peer is not reading)');
    assert.ok(counts.ok * 60 * 1024 < 8 * 1048576, 'the server held less than its per-connection queue limit for the victim');
    assertProbe(r, 'paused-reader flood');
    // once it reads again it still works: a relay from an attacker arrives
    const sdp = 'after the flood';
    assert.deepEqual(await withTimeout((async () => {
      for (let i = 0; i < 50; i++) {
        const a = await atks[0].emitAck('offer', { to: vwho.peerId, sdp }, 5000);
        if (a.ok) return a;
        await sleep(200);
      }
      return null;
    })(), 15000, 'relay to the recovered victim'), { ok: true });
    await v.r.waitFrame((f) => f.text && f.text.includes(sdp), 10000, 'the relayed offer');
    v.r.close();
    for (const a of atks) a.close();
  });

  test('many connections from one address: beyond --max-conns-per-ip (32) HTTP 503, another address still connects', async () => {
    const ADDR = '127.0.0.50';
    const stop = startProbe(b, c);
    const res = await Promise.all(Array.from({ length: 60 }, () => rawOpen(srv.port, ADDR, raws)));
    const opened = res.filter((x) => x.r).map((x) => x.r);
    const refusals = res.filter((x) => x.refused).map((x) => x.refused);
    const errors = res.filter((x) => x.error).map((x) => x.error);
    const kinds = {};
    for (const x of refusals) kinds[x] = (kinds[x] || 0) + 1;
    figure('60 WebSocket connections from one address', `${opened.length} open, ${refusals.length} refused ${JSON.stringify(kinds)}, ${errors.length} other`);
    assert.equal(opened.length, 32, 'exactly the limit is admitted');
    assert.equal(refusals.length, 28, `the rest are refused: ${JSON.stringify(errors.slice(0, 3))}`);
    // a long-polling handshake over the limit: HTTP 503
    const poll = await httpRequest(srv.port, '/socket.io/?EIO=4&transport=polling', { localAddress: ADDR });
    figure('long-polling handshake over the per-address limit', `HTTP ${poll.status} ${poll.body.toString('utf8').slice(0, 80)}`);
    assert.equal(poll.status, 503);
    // from another address: a full login works
    const other = await connectClient(srv.url, { label: 'O', transports: ['websocket'], io: { localAddress: '127.0.0.51' } });
    clients.push(other);
    assert.equal(other.connected, true);
    // the slots come back once the connections are gone
    for (const x of opened) x.close();
    await sleep(300);
    const again = await RawWs.open(srv.port, undefined, undefined, { localAddress: ADDR });
    raws.push(again);
    await again.connect();
    again.close();
    assertProbe(await stop(), 'per-address limit');
  });

  test('half-open and slow-loris connections: others are served meanwhile; the server drops them', async () => {
    const ADDR = '127.0.0.60';
    const socks = [];
    const closedAt = [];
    const t0 = Date.now();
    const open = (i) => new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: srv.port, localAddress: ADDR });
      socks.push(s);
      s.on('error', () => {});
      s.on('close', () => { closedAt.push(Date.now() - t0); });
      s.on('connect', () => {
        if (i % 2) s.write('GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n');
        resolve();
      });
      setTimeout(resolve, 2000);
    });
    // 100 half-open (nothing sent) + 100 slow-loris (one header line, then a trickle)
    await Promise.all(Array.from({ length: 200 }, (_, i) => open(i)));
    const trickle = setInterval(() => {
      for (let i = 1; i < socks.length; i += 2) if (!socks[i].destroyed) socks[i].write(`X-Slow-${Date.now()}: 1\r\n`);
    }, 2000);
    try {
      const stop = startProbe(b, c);
      // a new user from another address connects and logs in meanwhile
      const n0 = Date.now();
      const other = await connectClient(srv.url, { label: 'N', transports: ['websocket'], io: { localAddress: '127.0.0.61' } });
      const connectMs = Date.now() - n0;
      clients.push(other);
      const h = await healthz(srv.port);
      assert.equal(h.status, 200, 'healthz');
      figure('200 half-open/slow-loris connections', `a new client connected and logged in in ${connectMs} ms`);
      assert.ok(connectMs < PROBE_BOUND_MS, `new login took ${connectMs} ms`);
      // the server times them out (lws timeout_secs 30 s)
      await until(() => closedAt.length >= socks.length, 45000);
      assertProbe(await stop(), 'half-open connections');
      closedAt.sort((x, y) => x - y);
      // beyond 2 x 32 + 8 = 72 TCP connections from ADDR the server closes them at the accept (server.c tcp_cap)
      const atOnce = closedAt.filter((t) => t < 1000).length;
      figure('half-open/slow-loris connections closed by the server', `${closedAt.length} of ${socks.length}: ` +
        `${atOnce} at once (over the per-address TCP limit), the others after ${closedAt[atOnce] ?? '-'} to ${closedAt[closedAt.length - 1]} ms`);
      assert.equal(closedAt.length, socks.length, 'the server closes every one of them');
    } finally {
      clearInterval(trickle);
      for (const s of socks) s.destroy();
    }
  });

  test('the server exits cleanly (exit 0, no sanitizer report)', async () => {
    const rl = await metric(srv.port, 'echolink_rejected_total').catch(() => null);
    if (rl !== null) figure('rejections counted in /metrics (first series)', rl);
    closeAll(clients);
    for (const r of raws) r.close();
    const res = await srv.stop();
    assert.equal(res.code, 0, `exit ${JSON.stringify(res)}\n${srv.tail(60)}`);
    assert.doesNotMatch(srv.stderr, /AddressSanitizer|LeakSanitizer|runtime error/);
  });
});

// Keys cost nothing to make, and a new key's first login makes a user row:
// each address gets --max-new-ids-per-ip new identities an hour (a bucket
// that refills; server/idquota.h). Returning users never count.
describe('abuse: new identities per address', () => {
  let srv;
  const raws = [];
  before(async () => { srv = await startServer({ args: ['--max-new-ids-per-ip', '3'] }); });
  after(async () => {
    for (const r of raws) r.close();
    await srv?.cleanup();
  });

  test('3 new identities an hour from one address: the 4th is refused with a clear error; returning users and other addresses are not', async () => {
    const ADDR = '127.0.0.80';
    const ids = await Promise.all(Array.from({ length: 4 }, () => makeIdentity()));
    for (const who of ids.slice(0, 3)) {
      const x = await rawLogin(srv.port, ADDR, who, raws);
      assert.equal(x.ack?.ok, true, JSON.stringify(x));
      x.r.close();
    }
    const fourth = await rawLogin(srv.port, ADDR, ids[3], raws);
    assert.equal(fourth.ack?.ok, false, JSON.stringify(fourth));
    assert.equal(fourth.ack.error, 'rate_limited');
    assert.match(fourth.ack.message, /too many new identities from this address \(3 an hour\); try again in \d+ s/);
    figure('the 4th new identity from one address', fourth.ack.message);
    fourth.r.close();
    // a returning identity from the same address logs in, again and again;
    // the refused one is no user: a contact request to it finds nobody
    for (let i = 0; i < 5; i++) {
      const x = await rawLogin(srv.port, ADDR, ids[0], raws);
      assert.equal(x.ack?.ok, true, `returning user, try ${i}: ${JSON.stringify(x)}`);
      if (i === 0) {
        x.r.send(`42901${JSON.stringify(['contact_request', { to: ids[3].peerId }])}`);
        const ack = await x.r.waitAck(901);
        assert.equal(ack.error, 'unknown_peer', JSON.stringify(ack));
      }
      x.r.close();
    }
    // the refused identity from another address: its own budget
    const other = await rawLogin(srv.port, '127.0.0.81', ids[3], raws);
    assert.equal(other.ack?.ok, true, JSON.stringify(other));
    other.r.close();
    const m = await httpRequest(srv.port, '/metrics');
    assert.match(m.body.toString('utf8'), /echolink_rejected_total\{reason="rate_limited"\} 1\b/);
  });
});

describe('abuse: idle TCP connections against a small --max-conns', () => {
  const PER_IP = 8;
  // what one address may hold, whatever the connections are (server.c tcp_cap)
  const TCP_CAP = 2 * PER_IP + 8;
  const ADDR = '127.0.0.70';
  let srv;
  const clients = [];
  const raws = [];
  before(async () => { srv = await startServer({ args: ['--max-conns', '20', '--max-conns-per-ip', String(PER_IP)] }); });
  after(async () => {
    closeAll(clients);
    for (const r of raws) r.close();
    await srv?.cleanup();
  });

  // echolinkd counts the TCP connections of each address from the accept on
  // (not only once an Engine.IO session exists) and refuses those beyond
  // 2 x --max-conns-per-ip + 8 at once; lws's descriptor table has room for
  // twice what one address may hold beyond the sessions. Without that, idle
  // connections that never send a request filled the table (--max-conns +
  // 128) and a client from another address got no answer for over 8 s.
  test(`300 idle TCP connections from one address: ${TCP_CAP} held, the rest refused at once; another address logs in; the slots come back`, async () => {
    const socks = [];
    const closedAt = [];
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 300 }, () => new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: srv.port, localAddress: ADDR });
      socks.push(s);
      s.on('error', () => {});
      s.on('close', () => { closedAt.push(Date.now() - t0); resolve(); });
      s.on('connect', () => resolve());
      setTimeout(resolve, 2000);
    })));
    try {
      // the refused ones are closed by the server right after the accept
      await until(() => closedAt.length >= socks.length - TCP_CAP, 3000);
      await sleep(300);
      const held = socks.length - closedAt.length;
      figure(`300 idle TCP connections from one address, --max-conns 20 --max-conns-per-ip ${PER_IP}`,
        `${held} held, ${closedAt.length} refused, the last refusal ${Math.max(...closedAt)} ms after the first connect`);
      assert.equal(held, TCP_CAP, `one address holds exactly ${TCP_CAP} connections`);
      // meanwhile another address is served at once: /healthz, then a login
      const h0 = Date.now();
      const h = await httpRequest(srv.port, '/healthz', { localAddress: '127.0.0.71', timeout: 8000 });
      const healthMs = Date.now() - h0;
      assert.equal(h.status, 200);
      const l0 = Date.now();
      const c = await connectClient(srv.url, { label: 'L', transports: ['websocket'], io: { localAddress: '127.0.0.71', reconnection: false }, timeout: 8000 })
        .catch((e) => ({ error: String(e.message || e) }));
      const loginMs = Date.now() - l0;
      if (!c.error) clients.push(c);
      figure('while one address holds its limit, from another address', `/healthz in ${healthMs} ms, ` +
        (c.error ? `login FAILED (${c.error})` : `logged in in ${loginMs} ms`));
      assert.ok(!c.error, `locked out: ${c.error}\n${srv.tail(8)}`);
      assert.ok(healthMs < PROBE_BOUND_MS && loginMs < PROBE_BOUND_MS, `${healthMs} / ${loginMs} ms`);
      // the limit covers every kind of connection: /healthz from the full address is refused
      const full = await httpRequest(srv.port, '/healthz', { localAddress: ADDR, timeout: 3000 }).catch((e) => ({ error: String(e.message || e) }));
      assert.ok(full.error, `the full address got HTTP ${full.status}`);
      // the held ones are still closed by the server once idle (~10 s)
      const ok = await until(() => closedAt.length >= socks.length, 20000);
      closedAt.sort((x, y) => x - y);
      figure('idle connections held under the limit', `closed by the server after ${closedAt[closedAt.length - 1]} ms`);
      assert.ok(ok, `${socks.length - closedAt.length} idle connections still open after 20 s`);
    } finally {
      for (const s of socks) s.destroy();
    }
    // every close gives its slot back, whatever the connection was: more
    // sequential connections than the limit, of each kind, all served
    const N = TCP_CAP + 6;
    let http200 = 0, wsOpen = 0, polled = 0;
    const t1 = Date.now();
    for (let i = 0; i < N; i++) {
      if ((await httpRequest(srv.port, '/healthz', { localAddress: ADDR })).status === 200) http200++;
    }
    for (let i = 0; i < N; i++) {
      const x = await rawOpen(srv.port, ADDR, raws);
      if (x.r) {
        wsOpen++;
        x.r.close();
        await x.r.waitClosed(3000);
      }
    }
    for (let i = 0; i < N; i++) {
      const hs = await httpRequest(srv.port, '/socket.io/?EIO=4&transport=polling', { localAddress: ADDR });
      if (hs.status !== 200) continue;
      const sid = JSON.parse(hs.body.toString('utf8').slice(1)).sid;
      const bye = await httpRequest(srv.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
        method: 'POST', body: '1', headers: { 'content-type': 'text/plain;charset=UTF-8', 'content-length': 1 }, localAddress: ADDR,
      });
      if (bye.status === 200) polled++;
    }
    figure(`sequential connections from the address after its idle ones closed (${N} of each)`,
      `${http200} /healthz, ${wsOpen} WebSocket opens, ${polled} polling sessions opened and closed, in ${Date.now() - t1} ms`);
    assert.deepEqual({ http200, wsOpen, polled }, { http200: N, wsOpen: N, polled: N }, 'every close gave its slot back');
    assert.ok(srv.running(), srv.tail());
  });

  test('the server exits cleanly (exit 0, no sanitizer report)', async () => {
    closeAll(clients);
    for (const r of raws) r.close();
    const res = await srv.stop();
    assert.equal(res.code, 0, `exit ${JSON.stringify(res)}\n${srv.tail(60)}`);
    assert.doesNotMatch(srv.stderr, /AddressSanitizer|LeakSanitizer|runtime error/);
  });
});
