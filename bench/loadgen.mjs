// loadgen.mjs - load generator for bench/run.sh. One client implementation
// for both servers (bench/lib/sio.mjs, shared with bench/soak.mjs): a raw
// `ws` WebSocket speaking the minimum of Engine.IO v4 / Socket.IO v5 and
// EchoLink's login.
//
//   node bench/loadgen.mjs mem   --port P --pid PID --n 10000 [--warmup 50] [--idle S] [--hold S]
//   node bench/loadgen.mjs relay --port P --pid PID --pairs 200 --window 4
//                                [--size 1024] [--warm 2] [--duration 10]
//   node bench/loadgen.mjs relay --ports P1,P2,.. --pids PID1,PID2,.. [--other-pids PIDS] ...
//
// Several nodes (bench/cluster.sh): with --ports, sender i logs in on node
// i mod k and its receiver on node (i + 1) mod k, so with k > 1 every relayed
// event crosses nodes; server CPU is summed over --pids, and the CPU of
// --other-pids (redis-server) is reported apart. Without --ports the
// behaviour is the single-server one of bench/run.sh.
//
// Prints progress on stderr and one line "RESULT {json}" on stdout. Every
// wait is bounded; a watchdog ends the process if a phase hangs.
import { performance } from 'node:perf_hooks';
import { makeIdentities, connectAll as sioConnectAll, pct, sdpOfSize, urlOf } from './lib/sio.mjs';
import { rssKB, cpuS as procCpuS, kernelS as procKernelS, machineBusyS as procMachineBusyS } from './lib/proc.mjs';

const mode = process.argv[2];
const args = process.argv.slice(3);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const list = (name, dflt) => String(opt(name, dflt)).split(',').filter((x) => x !== '').map(Number);
const PORTS = list('--ports', opt('--port', '0'));
const PIDS = list('--pids', opt('--pid', '0'));
const OTHER_PIDS = list('--other-pids', '');
const PORT = PORTS[0];
const PID = PIDS[0];
const CLK_TCK = Number(opt('--clk-tck', '100'));
const WATCHDOG_S = Number(opt('--watchdog', '100'));
const URL_ = urlOf(PORT);
if (!PORT || !PID || PORTS.some((p) => !p) || PIDS.some((p) => !p) || OTHER_PIDS.some((p) => !p) ||
    (mode !== 'mem' && mode !== 'relay') || (mode === 'mem' && PORTS.length > 1)) {
  console.error('usage: loadgen.mjs mem|relay --port P --pid PID [options]');
  process.exit(2);
}
setTimeout(() => { console.error(`loadgen: watchdog (${WATCHDOG_S} s) expired`); process.exit(3); },
  WATCHDOG_S * 1000).unref();

const log = (...a) => console.error('  [loadgen]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cpuS = (pid) => procCpuS(pid, CLK_TCK);
const cpuSumS = (pids) => pids.reduce((a, p) => a + cpuS(p), 0);
const kernelSumS = (pids) => pids.reduce((a, p) => a + procKernelS(p, CLK_TCK), 0);
const machineBusyS = () => procMachineBusyS(CLK_TCK);
const connectAll = (ids, par = 100, urlAt = () => URL_) => sioConnectAll(ids, par, urlAt);

// ---- phase: memory per idle connection ----

async function memPhase() {
  const n = Number(opt('--n', '10000'));
  const warm = Number(opt('--warmup', '50'));
  let t = performance.now();
  const ids = await makeIdentities(n + warm);
  log(`${n + warm} identities in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // Warm-up: page in the server's code paths and one-time allocations
  // (TLS/crypto tables, JIT, SQLite cache) so they are not charged per client.
  const w = await connectAll(ids.slice(n));
  w.forEach((c) => c.close());
  await sleep(1500);

  const rss0 = rssKB(PID), cpu0 = cpuS(PID);
  t = performance.now();
  const clients = await connectAll(ids.slice(0, n));
  const connectS = (performance.now() - t) / 1000;
  const connectCpuS = cpuS(PID) - cpu0;
  log(`${n} clients connected and logged in in ${connectS.toFixed(1)} s`);
  await sleep(2000); // let the server settle (GC, deferred frees)
  const rss1 = rssKB(PID);
  const alive = clients.filter((c) => !c.closed).length;
  if (alive !== n) throw new Error(`only ${alive} of ${n} connections still open`);
  // Optional: server CPU while the N connections just sit there (pings every
  // pingInterval = 25 s, answered by the clients); S >= 25 covers one round.
  const idleS = Number(opt('--idle', '0'));
  let idleCpuPct = null;
  if (idleS > 0) {
    const c0 = cpuS(PID), t0 = performance.now();
    await sleep(idleS * 1000);
    idleCpuPct = ((cpuS(PID) - c0) / ((performance.now() - t0) / 1000)) * 100;
    log(`server CPU while idle for ${idleS} s: ${idleCpuPct.toFixed(1)} % of a core`);
  }
  const hold = Number(opt('--hold', '0')); // keep them open (for profiling)
  if (hold > 0) { log(`holding ${n} connections for ${hold} s`); await sleep(hold * 1000); }
  const result = {
    mode: 'mem', n, rss_before_kb: rss0, rss_after_kb: rss1,
    kb_per_conn: (rss1 - rss0) / n, connect_s: connectS,
    server_cpu_us_per_login: (connectCpuS * 1e6) / n, idle_s: idleS, idle_cpu_pct: idleCpuPct,
  };
  clients.forEach((c) => c.close());
  return result;
}

// ---- phase: relay throughput, latency and server CPU per event ----

async function relayPhase() {
  const pairs = Number(opt('--pairs', '200'));
  const window = Number(opt('--window', '4'));
  const size = Number(opt('--size', '1024'));
  const warmS = Number(opt('--warm', '2'));
  const durS = Number(opt('--duration', '10'));

  const ids = await makeIdentities(2 * pairs);
  // sender i on node i mod k, its receiver (client pairs + i) on the next node
  const k = PORTS.length;
  const clients = await connectAll(ids, 50, (j) => urlOf(PORTS[((j % pairs) + (j >= pairs ? 1 : 0)) % k]));
  log(`${2 * pairs} clients logged in on ${k} node(s)`);
  // presence notifications (user_connected ...) drain; with several nodes
  // the Redis presence channel must also have reached every node's mirror
  await sleep(k > 1 ? 2000 : 1000);

  const sdp = sdpOfSize(size - 105); // the rest of the event is ~105 bytes
  let phase = 'warm';               // warm -> measure -> drain
  let sent = 0, acked = 0, errors = 0, firstError = null, received = 0;
  const lat = [], rtt = [];         // ms, only for events inside the window
  let inWin = 0, wireBytes = 0;

  const senders = clients.slice(0, pairs), receivers = clients.slice(pairs);
  for (const r of receivers) {
    r.onEvent = (name, arg) => {
      if (name !== 'offer') return;
      received++;
      if (phase === 'measure' && arg.w === 1) { lat.push(performance.now() - arg.t); inWin++; }
    };
  }
  const pump = (i) => {
    const c = senders[i];
    const to = receivers[i].peerId;
    const send = () => {
      if (phase === 'drain' || c.closed) return;
      const t0 = performance.now();
      const w = phase === 'measure' ? 1 : 0;
      const json = `{"to":"${to}","type":"offer","seq":${sent},"w":${w},"t":${t0},"sdp":${JSON.stringify(sdp)}}`;
      if (!wireBytes) wireBytes = json.length + 12;
      sent++;
      c.emitRaw('offer', json, (ack) => {
        acked++;
        if (!ack || ack.ok !== true) { errors++; firstError ??= ack; }
        else if (w === 1 && phase === 'measure') rtt.push(performance.now() - t0);
        send();
      });
    };
    for (let k = 0; k < window; k++) send();
  };
  senders.forEach((_, i) => pump(i));

  await sleep(warmS * 1000);
  phase = 'measure';
  const k0 = kernelSumS(PIDS);
  const cpu0 = cpuSumS(PIDS), nodes0 = PIDS.map(cpuS), oth0 = cpuSumS(OTHER_PIDS), gen0 = process.cpuUsage(), m0 = machineBusyS(), t0 = performance.now(), rec0 = received;
  await sleep(durS * 1000);
  const k1 = kernelSumS(PIDS);
  const cpu1 = cpuSumS(PIDS), nodes1 = PIDS.map(cpuS), oth1 = cpuSumS(OTHER_PIDS), gen1 = process.cpuUsage(), m1 = machineBusyS(), t1 = performance.now(), rec1 = received;
  phase = 'drain';
  const rss = PIDS.reduce((a, p) => a + rssKB(p), 0);
  const drainEnd = performance.now() + 3000;
  while (acked < sent && performance.now() < drainEnd) await sleep(50);
  const secs = (t1 - t0) / 1000;
  const events = rec1 - rec0;
  lat.sort((a, b) => a - b);
  rtt.sort((a, b) => a - b);
  const genCpu = ((gen1.user - gen0.user) + (gen1.system - gen0.system)) / 1e6;
  const result = {
    mode: 'relay', pairs, window, event_bytes: wireBytes, seconds: secs,
    events, events_per_s: events / secs,
    lat_p50_ms: pct(lat, 50), lat_p99_ms: pct(lat, 99),
    ack_p50_ms: pct(rtt, 50), ack_p99_ms: pct(rtt, 99),
    server_cpu_s: cpu1 - cpu0, server_us_per_event: ((cpu1 - cpu0) * 1e6) / events,
    // the kernel's share (stime): the loopback TCP work any relay pays
    server_kernel_us_per_event: ((k1 - k0) * 1e6) / events,
    server_cpu_pct: ((cpu1 - cpu0) / secs) * 100, loadgen_cpu_pct: (genCpu / secs) * 100,
    // everything else the machine did meanwhile (other processes, ksoftirqd):
    // when this is large, the figures are disturbed
    other_cpu_pct: ((m1 - m0 - (cpu1 - cpu0) - (oth1 - oth0) - genCpu) / secs) * 100,
    rss_kb: rss, errors, first_error: firstError, unacked: sent - acked,
  };
  if (k > 1 || OTHER_PIDS.length) {
    Object.assign(result, {
      nodes: k, node_cpu_s: nodes1.map((c, i) => c - nodes0[i]),
      other_pids_cpu_s: oth1 - oth0, other_pids_us_per_event: ((oth1 - oth0) * 1e6) / events,
      other_pids_cpu_pct: ((oth1 - oth0) / secs) * 100,
    });
  }
  clients.forEach((c) => c.close());
  if (errors) log(`WARNING: ${errors} error acks, first: ${JSON.stringify(firstError)}`);
  return result;
}

try {
  const r = mode === 'mem' ? await memPhase() : await relayPhase();
  console.log('RESULT ' + JSON.stringify(r));
  process.exit(0);
} catch (e) {
  console.error('loadgen: ' + (e?.stack || e));
  process.exit(1);
}
