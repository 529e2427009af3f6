// soak.mjs - the load side of scripts/soak.sh: N signaling clients logged in
// to one echolinkd for SOAK_MINUTES with steady relay traffic, sampled every
// few seconds, then judged. Method and bounds: scripts/soak.sh's header.
//
//   node bench/soak.mjs --port P --pid PID [--n 10000] [--per-addr 50]
//        [--pairs 200] [--rate 500] [--size 1024] [--minutes 10] [--sample 10]
//        [--rss-pct 10] [--rss-floor-mb 4] [--lat-ratio 2] [--lat-floor-ms 1]
//        [--clk-tck 100] [--watchdog S] [--json PATH]
//
// Client i binds the source address 127.0.x.y of block floor(i / per-addr),
// so the server's per-address limit (--max-conns-per-ip) stays on and is
// merely not reached. Pairs: client i (a sender) and client pairs + i (its
// receiver) become contacts (PROTOCOL.md §4: both ask, the second request is
// an acceptance) because without --open-presence an `offer` needs a visible
// target, and --open-presence would make 10k logins an O(n^2) presence storm
// (docs/PERFORMANCE.md, finding 5). The senders emit `offer` events at a
// fixed total rate, round robin, whatever the acks do (an open loop: a
// slowing server shows as latency, not as a lower rate).
//
// Prints progress on stderr, a table on stdout, the results as JSON to
// --json; exits 0 when every check passes, 1 when one fails, 2 on bad usage,
// 3 when the watchdog fires.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { makeIdentities, connectAll, pct, sdpOfSize, urlOf } from './lib/sio.mjs';
import { rssKB, cpuS, machineBusyS, fdCount } from './lib/proc.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return Number(i >= 0 && i + 1 < args.length ? args[i + 1] : dflt);
};
const optStr = (name) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : null;
};
const PORT = opt('--port', 0);
const PID = opt('--pid', 0);
const N = opt('--n', 10000);
const PER_ADDR = opt('--per-addr', 50);
const PAIRS = opt('--pairs', 200);
const RATE = opt('--rate', 500);          // offers per second, all senders together
const SIZE = opt('--size', 1024);         // bytes of one offer event on the wire
const MINUTES = opt('--minutes', 10);
const SAMPLE_S = opt('--sample', 10);
const RSS_PCT = opt('--rss-pct', 10);
const RSS_FLOOR_MB = opt('--rss-floor-mb', 4);
const LAT_RATIO = opt('--lat-ratio', 2);
const LAT_FLOOR_MS = opt('--lat-floor-ms', 1);
const CLK_TCK = opt('--clk-tck', 100);
const WATCHDOG_S = opt('--watchdog', MINUTES * 60 + 300);
const JSON_PATH = optStr('--json');
const WARM = 50;                          // warm-up clients, before the baseline
const LOGIN_PAR = 100;                    // handshakes in flight

if (!PORT || !PID || !(N >= 2 * PAIRS) || !(PAIRS >= 1) || !(PER_ADDR >= 1) || !(RATE > 0) ||
    !(MINUTES > 0) || !(SAMPLE_S >= 1) || 60 % SAMPLE_S !== 0 || N / PER_ADDR > 250 * 250) {
  console.error('usage: soak.mjs --port P --pid PID [--n N >= 2*pairs] [--pairs P] [--per-addr K]' +
    ' [--rate R] [--minutes M] [--sample S dividing 60] ...');
  process.exit(2);
}
setTimeout(() => { console.error(`soak: watchdog (${WATCHDOG_S} s) expired`); process.exit(3); },
  WATCHDOG_S * 1000).unref();

const log = (...a) => console.error('  [soak]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const URL_ = urlOf(PORT);

/** Source address of client i: 127.0.x.y, x and y in 1..250, K clients
 *  each; the warm-up clients (i < 0) use 127.0.251.1 apart. */
function addrOf(i) {
  if (i < 0) return '127.0.251.1';
  const a = Math.floor(i / PER_ADDR);
  return `127.0.${1 + Math.floor(a / 250)}.${1 + (a % 250)}`;
}

// ---- the server's own counters (/metrics), for cross-checks ----

function metrics() {
  return new Promise((resolve, reject) => {
    // agent:false + Connection: close, so that no kept-alive socket stays
    // in the server's descriptor count.
    const req = http.get({ host: '127.0.0.1', port: PORT, path: '/metrics', agent: false,
      headers: { Connection: 'close' }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const m = {};
        for (const line of body.split('\n')) {
          const r = /^(echolink_[a-z_]+)(\{[^}]*\})? (\d+)$/.exec(line);
          if (r) m[r[1] + (r[2] || '')] = Number(r[3]);
        }
        resolve(m);
      });
    });
    req.on('timeout', () => req.destroy(new Error('/metrics: no answer in 5 s')));
    req.on('error', reject);
  });
}
const rejectedTotal = (m) => Object.entries(m)
  .filter(([k]) => k.startsWith('echolink_rejected_total')).reduce((a, [, v]) => a + v, 0);
const rejectedNonZero = (m) => Object.fromEntries(Object.entries(m)
  .filter(([k, v]) => k.startsWith('echolink_rejected_total') && v > 0)
  .map(([k, v]) => [k.replace(/.*reason="([^"]*)".*/, '$1'), v]));

/** Polls until the server has no session and its descriptors are back to
 *  `want` (or timeoutMs passes); returns the last reading. */
async function settle(want, timeoutMs) {
  const end = performance.now() + timeoutMs;
  let fds, m;
  for (;;) {
    m = await metrics();
    fds = fdCount(PID); // after the /metrics socket is closed on our side
    const idle = m['echolink_connections{transport="any"}'] === 0 && m.echolink_peers_online === 0;
    if ((idle && (want === null || fds === want)) || performance.now() > end) return { fds, m, idle };
    await sleep(250);
  }
}

// ---- pairs: contacts, then the relay pump ----

async function makeContacts(senders, receivers) {
  for (let i = 0; i < senders.length; i += 50) {
    await Promise.all(senders.slice(i, i + 50).map(async (s, j) => {
      const r = receivers[i + j];
      const a = await s.request('contact_request', { to: r.peerId });
      const b = await r.request('contact_request', { to: s.peerId });
      if (a?.ok !== true || b?.ok !== true)
        throw new Error(`contact setup refused: ${JSON.stringify(a)} ${JSON.stringify(b)}`);
    }));
  }
}

/** The traffic state: counters plus latencies by sample window. */
function makeTraffic(senders, receivers) {
  const t = {
    sent: 0, acked: 0, received: 0, errors: 0, firstError: null, outOfOrder: 0, badFrom: 0,
    maxOutstanding: 0, behind: 0, lat: [], t0: 0, on: false,
    lastSeq: new Array(senders.length).fill(-1), seq: new Array(senders.length).fill(0),
  };
  receivers.forEach((r, i) => {
    const from = senders[i].peerId;
    r.onEvent = (name, arg) => {
      if (name !== 'offer') return;
      const now = performance.now();
      t.received++;
      if (arg.from !== from) t.badFrom++;
      if (arg.seq !== t.lastSeq[i] + 1) t.outOfOrder++; // lost, duplicated or reordered
      t.lastSeq[i] = arg.seq;
      const w = Math.floor((arg.t - t.t0) / (SAMPLE_S * 1000));
      (t.lat[w] ??= []).push(now - arg.t);
    };
  });
  return t;
}

function sendOne(t, senders, receivers, sdpJson) {
  const i = t.sent % senders.length;
  const s = senders[i];
  const now = performance.now();
  const json = `{"to":"${receivers[i].peerId}","type":"offer","seq":${t.seq[i]++},"t":${now},"sdp":${sdpJson}}`;
  t.sent++;
  s.emitRaw('offer', json, (ack) => {
    t.acked++;
    if (!ack || ack.ok !== true) { t.errors++; t.firstError ??= ack; }
  });
  t.maxOutstanding = Math.max(t.maxOutstanding, t.sent - t.acked);
}

/** Starts the open-loop pump: every 10 ms, send what the fixed rate says is
 *  due. After a stall of the generator itself at most one second's worth
 *  goes out at once; the rest is counted in `behind` (reported). */
function startPump(t, senders, receivers) {
  const sdpJson = JSON.stringify(sdpOfSize(SIZE - 110)); // the rest of the event is ~110 bytes
  t.t0 = performance.now();
  t.on = true;
  let base = 0; // events given up after a stall
  const timer = setInterval(() => {
    if (!t.on) return;
    const due = Math.floor((RATE * (performance.now() - t.t0)) / 1000) - base;
    let n = due - t.sent;
    if (n > RATE) { t.behind += n - RATE; base += n - RATE; n = RATE; }
    for (let k = 0; k < n; k++) sendOne(t, senders, receivers, sdpJson);
  }, 10);
  return () => { t.on = false; clearInterval(timer); };
}

// ---- judging ----

function latStats(arrays) {
  const all = [].concat(...arrays.filter(Boolean)).sort((a, b) => a - b);
  return { n: all.length, p50: pct(all, 50), p99: pct(all, 99), max: all.length ? all[all.length - 1] : NaN };
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');

function printTable(samples, res) {
  const out = [];
  out.push(`soak: ${res.n} clients (${res.per_addr} per source address, ${res.addresses} addresses), ` +
    `${res.pairs} pairs, ${res.rate} offers/s of ${res.size} B, ${res.minutes} min, sample every ${SAMPLE_S} s`);
  out.push('');
  out.push('|   t s | RSS MB | fds   | sessions | sent/s | recv/s | p50 ms | p99 ms | max ms | server CPU % | other CPU % |');
  out.push('|------:|-------:|------:|---------:|-------:|-------:|-------:|-------:|-------:|-------------:|------------:|');
  for (const s of samples) {
    out.push(`| ${String(s.t_s).padStart(5)} | ${f1(s.rss_kb / 1024).padStart(6)} | ${String(s.fds).padStart(5)} | ` +
      `${String(s.sessions).padStart(8)} | ${f1(s.sent_per_s).padStart(6)} | ${f1(s.recv_per_s).padStart(6)} | ` +
      `${f2(s.lat_p50_ms).padStart(6)} | ${f2(s.lat_p99_ms).padStart(6)} | ${f1(s.lat_max_ms).padStart(6)} | ` +
      `${f1(s.server_cpu_pct).padStart(12)} | ${f1(s.other_cpu_pct).padStart(11)} |`);
  }
  out.push('');
  out.push(`logins: ${res.n} in ${f1(res.login_s)} s (${f1(res.n / res.login_s)}/s); ` +
    `fds: ${res.fds_before} before login, ${res.fds_peak} with everyone on, ${res.fds_after} after everyone left`);
  out.push(`RSS: ${f1(res.rss_before_kb / 1024)} MB before login, ${f1(res.rss_ref_kb / 1024)} MB at ${res.rss_ref_t_s} s, ` +
    `${f1(res.rss_end_kb / 1024)} MB at the end (growth ${f1(res.rss_growth_kb / 1024)} MB, bound ${f1(res.rss_bound_kb / 1024)} MB), ` +
    `${f1(res.rss_after_kb / 1024)} MB after everyone left`);
  out.push(`relay: ${res.sent} sent, ${res.received} received, ${res.errors} error acks, ${res.unacked} unacked, ` +
    `${res.out_of_order} out of sequence, max ${res.max_outstanding} outstanding, ${res.behind} behind schedule`);
  out.push(`latency: first minute p50 ${f2(res.first.p50)} p99 ${f2(res.first.p99)} ms (n=${res.first.n}); ` +
    `last minute p50 ${f2(res.last.p50)} p99 ${f2(res.last.p99)} ms (n=${res.last.n}); bound ${f2(res.lat_bound_ms)} ms`);
  out.push(`disconnects: ${res.lost}; pings answered: ${res.pings}; server rejects: ${JSON.stringify(res.rejected)}`);
  out.push('');
  for (const c of res.checks) out.push(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  console.log(out.join('\n'));
}

async function main() {
  let t = performance.now();
  const ids = await makeIdentities(N + WARM);
  log(`${N + WARM} identities in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // Warm-up: one-time allocations (SQLite pages and its WAL descriptors,
  // lws pools, code paging) happen before the baseline, not inside it.
  const warm = await connectAll(ids.slice(N), 50, () => URL_, () => addrOf(-1));
  await makeContacts(warm.slice(0, 5), warm.slice(5, 10));
  await Promise.all(warm.map((c) => c.end()));
  const base = await settle(null, 10000);
  if (!base.idle) throw new Error('the warm-up clients did not leave the server within 10 s');
  await sleep(1000);
  const fdsBefore = fdCount(PID), rssBefore = rssKB(PID);
  const m0 = await metrics();
  log(`baseline: ${fdsBefore} fds, RSS ${(rssBefore / 1024).toFixed(1)} MB`);

  t = performance.now();
  const clients = await connectAll(ids.slice(0, N), LOGIN_PAR, () => URL_, addrOf);
  const loginS = (performance.now() - t) / 1000;
  log(`${N} clients logged in in ${loginS.toFixed(1)} s from ${Math.ceil(N / PER_ADDR)} addresses`);
  let lost = 0, firstLost = null;
  clients.forEach((c, i) => { c.onLost = (why) => { lost++; firstLost ??= `client ${i}: ${why}`; }; });

  const senders = clients.slice(0, PAIRS), receivers = clients.slice(PAIRS, 2 * PAIRS);
  await makeContacts(senders, receivers);
  log(`${PAIRS} pairs are contacts`);
  await sleep(1000); // contact_added notices drain
  const fdsPeak = fdCount(PID);

  const tr = makeTraffic(senders, receivers);
  const stop = startPump(tr, senders, receivers);
  const samples = [];
  const nSamples = (MINUTES * 60) / SAMPLE_S;
  let prev = { cpu: cpuS(PID, CLK_TCK), busy: machineBusyS(CLK_TCK), gen: process.cpuUsage(),
    at: performance.now(), sent: 0, received: 0 };
  for (let k = 1; k <= nSamples; k++) {
    const due = tr.t0 + k * SAMPLE_S * 1000;
    await sleep(Math.max(0, due - performance.now()));
    const now = performance.now(), cpu = cpuS(PID, CLK_TCK), busy = machineBusyS(CLK_TCK);
    const gen = process.cpuUsage(), secs = (now - prev.at) / 1000;
    const genS = (gen.user - prev.gen.user + gen.system - prev.gen.system) / 1e6;
    const s = {
      t_s: k * SAMPLE_S, rss_kb: rssKB(PID), fds: fdCount(PID), sent: tr.sent, received: tr.received,
      sent_per_s: (tr.sent - prev.sent) / secs, recv_per_s: (tr.received - prev.received) / secs,
      server_cpu_pct: ((cpu - prev.cpu) / secs) * 100, loadgen_cpu_pct: (genS / secs) * 100,
      // everything else the machine did meanwhile (other engineers' builds
      // and tests): a latency spike beside a large figure here is noise
      other_cpu_pct: ((busy - prev.busy - (cpu - prev.cpu) - genS) / secs) * 100,
      errors: tr.errors, lost,
    };
    const m = await metrics();
    s.sessions = m['echolink_connections{transport="any"}'];
    s.peers_online = m.echolink_peers_online;
    const l = latStats([tr.lat[k - 1]]);
    Object.assign(s, { lat_n: l.n, lat_p50_ms: l.p50, lat_p99_ms: l.p99, lat_max_ms: l.max });
    samples.push(s);
    log(`t=${s.t_s}s rss=${(s.rss_kb / 1024).toFixed(1)}MB fds=${s.fds} sessions=${s.sessions} ` +
      `sent/s=${s.sent_per_s.toFixed(0)} p99=${f2(s.lat_p99_ms)}ms errors=${tr.errors} lost=${lost}`);
    prev = { cpu, busy, gen, at: now, sent: tr.sent, received: tr.received };
  }
  stop();
  const drainEnd = performance.now() + 5000;
  while ((tr.acked < tr.sent || tr.received < tr.sent) && performance.now() < drainEnd) await sleep(50);
  const mEnd = await metrics();
  const pings = clients.reduce((a, c) => a + c.pings, 0);
  const lostDuringSoak = lost;

  // Everyone leaves: half with a close frame, half abruptly (a TCP close
  // with no WebSocket goodbye, as from a crashed client): both paths must
  // give back their descriptors.
  await Promise.all(clients.map((c, i) => (i % 2 ? c.end() : (c.close(), null))));
  const after = await settle(fdsBefore, 30000);
  const rssAfter = rssKB(PID);

  // Judge.
  const perWin = 60 / SAMPLE_S;
  const first = latStats(tr.lat.slice(0, perWin));
  const last = latStats(tr.lat.slice(nSamples - perWin, nSamples));
  // How busy the rest of the machine was in each compared minute: a p99
  // failure beside a large difference here is other people's load.
  const otherPct = (ss) => ss.reduce((a, x) => a + x.other_cpu_pct, 0) / ss.length;
  first.other_cpu_pct = otherPct(samples.slice(0, perWin));
  last.other_cpu_pct = otherPct(samples.slice(nSamples - perWin));
  // RSS reference: the end of minute 1 (allocator arenas, SQLite cache and
  // lws buffers have reached their working size by then); in a one-minute
  // run, the first sample.
  const ref = MINUTES >= 2 ? samples[perWin - 1] : samples[0];
  const rssEnd = samples[samples.length - 1].rss_kb;
  const rssBound = Math.max((ref.rss_kb * RSS_PCT) / 100, RSS_FLOOR_MB * 1024);
  const latBound = Math.max(LAT_RATIO * first.p99, LAT_FLOOR_MS);
  const rejected = rejectedNonZero(mEnd);
  const res = {
    n: N, per_addr: PER_ADDR, addresses: Math.ceil(N / PER_ADDR), pairs: PAIRS, rate: RATE, size: SIZE,
    minutes: MINUTES, sample_s: SAMPLE_S, login_s: loginS,
    fds_before: fdsBefore, fds_peak: fdsPeak, fds_after: after.fds,
    rss_before_kb: rssBefore, rss_ref_kb: ref.rss_kb, rss_ref_t_s: ref.t_s, rss_end_kb: rssEnd,
    rss_growth_kb: rssEnd - ref.rss_kb, rss_bound_kb: rssBound, rss_after_kb: rssAfter,
    rss_kb_per_client: (ref.rss_kb - rssBefore) / N,
    sent: tr.sent, received: tr.received, errors: tr.errors, first_error: tr.firstError,
    unacked: tr.sent - tr.acked, out_of_order: tr.outOfOrder, bad_from: tr.badFrom,
    max_outstanding: tr.maxOutstanding, behind: tr.behind,
    first, last, lat_bound_ms: latBound, lost: lostDuringSoak, first_lost: firstLost, pings,
    rejected, rejected_before_soak: rejectedTotal(m0),
    server_logins_ok: mEnd['echolink_logins_total{result="ok"}'] - m0['echolink_logins_total{result="ok"}'],
    sessions_after: after.m['echolink_connections{transport="any"}'], peers_after: after.m.echolink_peers_online,
    samples,
  };
  const check = (name, ok, detail) => ({ name, ok: Boolean(ok), detail });
  res.checks = [
    check('all logged in, none lost', lostDuringSoak === 0 && res.server_logins_ok === N,
      `${res.server_logins_ok} server-side logins for ${N} clients; ${lostDuringSoak} disconnects${firstLost ? ` (first: ${firstLost})` : ''}`),
    check('every offer acked ok and delivered once, in order',
      tr.errors === 0 && res.unacked === 0 && tr.received === tr.sent && tr.outOfOrder === 0 && tr.badFrom === 0,
      `${tr.sent} sent, ${tr.received} received, ${tr.errors} error acks${tr.firstError ? ` (first ${JSON.stringify(tr.firstError)})` : ''}, ` +
      `${res.unacked} unacked, ${tr.outOfOrder} out of sequence, ${tr.badFrom} with a wrong from`),
    check('no input rejected by the server', Object.keys(rejected).length === 0, JSON.stringify(rejected)),
    // A stall of the generator itself (a busy shared machine) is not the
    // server's fault, but more than 1 % of the load missing would make the
    // run a lighter one than asked for.
    check('rate held (>= 99 % of the scheduled offers sent)', tr.sent >= RATE * MINUTES * 60 * 0.99,
      `${tr.sent} of ${RATE * MINUTES * 60} scheduled, ${tr.behind} given up after generator stalls`),
    check(`RSS flat (growth after ${ref.t_s} s <= max(${RSS_PCT} %, ${RSS_FLOOR_MB} MB))`, res.rss_growth_kb <= rssBound,
      `${f1(res.rss_growth_kb / 1024)} MB of ${f1(rssBound / 1024)} MB`),
    check('no descriptor leak (fds after everyone left == before login)',
      after.fds === fdsBefore && after.idle, `${fdsBefore} -> ${after.fds}; sessions ${res.sessions_after}, peers ${res.peers_after}`),
    check(`p99 of the last minute <= max(${LAT_RATIO} x first, ${LAT_FLOOR_MS} ms)`,
      last.n > 0 && first.n > 0 && last.p99 <= latBound, `${f2(last.p99)} ms vs ${f2(first.p99)} ms (bound ${f2(latBound)} ms; other processes used ` +
      `${f1(first.other_cpu_pct)} % then ${f1(last.other_cpu_pct)} % of a core)`),
  ];
  res.ok = res.checks.every((c) => c.ok);
  printTable(samples, res);
  if (JSON_PATH) writeFileSync(JSON_PATH, JSON.stringify(res, null, 1) + '\n');
  return res.ok;
}

try {
  process.exit((await main()) ? 0 : 1);
} catch (e) {
  console.error('soak: ' + (e?.stack || e));
  process.exit(1);
}
