// loadgen.mjs - load generator for bench/run.sh. One client implementation
// for both servers: a raw `ws` WebSocket speaking the minimum of Engine.IO v4
// / Socket.IO v5 (open, ping -> "3", "40" CONNECT, events with ack ids, acks)
// and EchoLink's login (challenge -> login signed with web/lib/identity.js).
// 10,000 socket.io-client instances would cost the generator far more than
// the servers; this costs a few KB each.
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
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { generateIdentity, bundleOf, signLogin } from '../web/lib/identity.js';

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
const urlOf = (port) => `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;
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

// ---- /proc of the server ----

function rssKB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
/** utime + stime of the whole process (all threads), in seconds. */
function cpuS(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
const cpuSumS = (pids) => pids.reduce((a, p) => a + cpuS(p), 0);

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusyS() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is inside user)
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK;
}

// ---- a minimal Engine.IO v4 / Socket.IO v5 client ----

class Client {
  constructor(ident, bundle, url = URL_) {
    this.url = url;
    this.ident = ident;
    this.bundle = bundle;
    this.ws = null;
    this.peerId = null;
    this.nextAck = 0;
    this.acks = new Map(); // ack id -> callback(arg)
    this.onEvent = null;   // (name, arg, raw) after login
    this.closed = false;
  }

  /** Connects, answers the challenge, logs in; resolves with the peer id. */
  login(timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('login timeout')), timeoutMs);
      const fail = (e) => { clearTimeout(timer); this.close(); reject(e); };
      const ws = new WebSocket(this.url, { perMessageDeflate: false });
      this.ws = ws;
      ws.on('error', (e) => fail(e));
      ws.on('close', () => { this.closed = true; if (!this.peerId) fail(new Error('closed before login')); });
      ws.on('message', (data) => {
        const s = data.toString();
        const t = s.charCodeAt(0);
        if (t === 0x32 /* 2 ping */) { ws.send('3'); return; }
        if (t === 0x30 /* 0 open */) { ws.send('40'); return; }
        if (t !== 0x34 /* 4 message */) return;
        const k = s.charCodeAt(1);
        if (k === 0x32 /* 2 EVENT */ || k === 0x33 /* 3 ACK */) {
          let i = 2;
          while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
          const id = i > 2 ? Number(s.slice(2, i)) : -1;
          const body = JSON.parse(s.slice(i));
          if (k === 0x33) {
            const cb = this.acks.get(id);
            if (cb) { this.acks.delete(id); cb(body[0]); }
          } else if (body[0] === 'challenge' && !this.peerId) {
            signLogin(this.ident, body[1].nonce, body[1].sid).then((sig) => {
              this.emit('login', { ...this.bundle, sig }, (ack) => {
                if (!ack || ack.ok !== true) return fail(new Error(`login refused: ${JSON.stringify(ack)}`));
                clearTimeout(timer);
                this.peerId = ack.peer_id;
                resolve(ack.peer_id);
              });
            }, fail);
          } else if (this.onEvent) {
            this.onEvent(body[0], body[1]);
          }
        } else if (k === 0x34 /* CONNECT_ERROR */ || k === 0x31 /* DISCONNECT */) {
          if (!this.peerId) fail(new Error(`refused: ${s}`));
        }
      });
    });
  }

  emit(event, arg, cb) {
    const id = this.nextAck++;
    this.acks.set(id, cb);
    this.ws.send(`42${id}${JSON.stringify([event, arg])}`);
  }

  /** Like emit, for an already-serialized argument. */
  emitRaw(event, json, cb) {
    const id = this.nextAck++;
    this.acks.set(id, cb);
    this.ws.send(`42${id}["${event}",${json}]`);
  }

  close() {
    if (this.ws && !this.closed) { this.closed = true; this.ws.terminate(); }
  }
}

// Identities: WebCrypto Ed25519/X25519, as the web client makes them.
async function makeIdentities(n) {
  const out = [];
  for (let i = 0; i < n; i += 256) {
    const batch = await Promise.all(Array.from({ length: Math.min(256, n - i) }, async () => {
      const ident = await generateIdentity();
      return { ident, bundle: await bundleOf(ident) };
    }));
    out.push(...batch);
  }
  return out;
}

/** Logs in every identity, at most `par` handshakes in flight. */
async function connectAll(ids, par = 100, urlAt = () => URL_) {
  const clients = ids.map(({ ident, bundle }, i) => new Client(ident, bundle, urlAt(i)));
  let next = 0, failed = 0, firstErr = null;
  const worker = async () => {
    while (next < clients.length) {
      const c = clients[next++];
      try { await c.login(); } catch (e) { failed++; firstErr ??= e; }
    }
  };
  await Promise.all(Array.from({ length: par }, worker));
  if (failed) throw new Error(`${failed} of ${clients.length} logins failed; first: ${firstErr?.message}`);
  return clients;
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

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

function sdpOfSize(bytes) {
  // Looks like SDP (CRLF lines, which JSON escapes as \r\n); `bytes` long as JSON text.
  const lines = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    'a=group:BUNDLE 0', 'a=msid-semantic: WMS', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0', 'a=ice-ufrag:EsAw', 'a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y',
    'a=fingerprint:sha-256 DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09:00:11:22:33:44:55:66:77:88:99:AA:BB',
    'a=setup:actpass', 'a=mid:0', 'a=sctp-port:5000', 'a=max-message-size:262144'];
  let s = lines.join('\r\n') + '\r\n';
  while (JSON.stringify(s).length < bytes) s += 'a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host\r\n';
  while (JSON.stringify(s).length > bytes) s = s.slice(0, -1);
  return s;
}

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
  const cpu0 = cpuSumS(PIDS), nodes0 = PIDS.map(cpuS), oth0 = cpuSumS(OTHER_PIDS), gen0 = process.cpuUsage(), m0 = machineBusyS(), t0 = performance.now(), rec0 = received;
  await sleep(durS * 1000);
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
