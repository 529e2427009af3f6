// client.mjs - the issue-5 client benchmark: encrypted files disk to disk
// between two `echolink` processes against the raw data channel between two
// el_peer_tool processes, and chat round trips while a big file flows.
// Run through bench/client.sh, which builds the release binaries and puts
// this in the pair of network namespaces of tests/harness/netns.sh: in every
// part one process runs in the first namespace and the other in the peer
// namespace, so the traffic crosses the veth.
//
//   raw     two el_peer_tool processes (DTLS/SCTP only, no E2EE, no disk):
//           BENCH_CLIENT_MIB MiB of random bytes in 64 KiB binary messages
//           with sender-side backpressure; the receiver hashes (SHA-256);
//           the driver polls its byte count every 5 ms. MiB/s, and the CPU
//           (utime+stime, all threads, /proc/<pid>/stat) of both processes
//           over the window, per MiB.
//   file    echolinkd + alice (first namespace) + bob (peer namespace), both
//           `echolink listen --json --accept-files`, release binaries. alice
//           is asked through her control socket to send a BENCH_CLIENT_MIB
//           MiB file of random bytes (written under $TMPDIR, /tmp by default,
//           and synced before the clock starts); time from writing the
//           send_file request to bob's file_complete (the file is on bob's
//           disk and its SHA-256 verified by bob). This includes alice
//           hashing the file for FILE_META and the file channel's opening.
//           Ratio to raw, and CPU ms/MiB of both echolink processes.
//   rtt     BENCH_CLIENT_PINGS chat messages alice -> bob, one after another
//           (50 ms apart), each timed from writing {"cmd":"send"} on alice's
//           control socket to the "status" "delivered" event for its msg_id
//           on the same (subscribed) connection: message out, delivery
//           receipt back, through both processes' SQLite outboxes/histories,
//           and bob's receipts are coalesced for SESS_RECEIPT_DELAY_MS (50 ms,
//           src/client/session_int.h), a fixed part of every round trip.
//           So also one way: the same write to bob's "message" event on his
//           subscribed control socket (one clock: both seen by this process).
//           Baseline with nothing else running, then while alice sends a
//           BENCH_CLIENT_GIB_MIB MiB file (pings start once bob has 8 MiB;
//           only pings answered before bob's file_complete count). Also: one
//           message written on the socket right behind the send_file request
//           (it waits while alice hashes the file on her main loop).
// Every wait has a timeout and every loop a count and a deadline.
// Knobs: BENCH_CLIENT_MIB=256 BENCH_CLIENT_GIB_MIB=1024 BENCH_CLIENT_PINGS=50
//        BENCH_CLIENT_JSON=path (raw results)
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { NETNS, SKIP, sleep, startCluster } from '../tests/client/lib/cluster.mjs';
import { PeerTool, negotiate, trickleBetween, withTimeout } from '../tests/js/lib/peertool.mjs';

const MiB = 1024 * 1024;
const MIB = Number(process.env.BENCH_CLIENT_MIB || 256);
const BIG_MIB = Number(process.env.BENCH_CLIENT_GIB_MIB || 1024);
const PINGS = Number(process.env.BENCH_CLIENT_PINGS || 50);
const WARM_PINGS = 5;
const GAP_MS = 50;
const TOOL = process.env.EL_PEER_TOOL;

const log = (s) => process.stderr.write(`bench-client: ${s}\n`);

/* ---- CPU of a process -------------------------------------------------- */

let tickMs = 10;
try { tickMs = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()); } catch { /* 100 Hz */ }

/** utime+stime in ms of pid, all threads (fields 14 and 15 of /proc/<pid>/stat). */
function cpuMs(pid) {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * tickMs;
}
const cpuSum = (pids) => pids.reduce((a, p) => a + cpuMs(p), 0);

/** The spawned pid must be the program itself: ip netns exec and setpriv exec, not fork. */
function checkComm(pid, want) {
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (!want.startsWith(comm)) throw new Error(`pid ${pid} is ${comm}, not ${want}: the CPU figures would be wrong`);
}

const pct = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/* ---- raw data channel: two el_peer_tool processes ---------------------- */

const tools = new Set();
process.on('exit', () => {
  for (const p of tools) try { p.kill('SIGKILL'); } catch { /* gone */ }
});

async function startTool(name, remote) {
  const base = ['setpriv', '--pdeathsig', 'KILL', TOOL, '--addr', remote ? NETNS.peerAddr : NETNS.addr];
  const argv = remote ? ['ip', 'netns', 'exec', NETNS.peerNs, ...base] : base;
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
  tools.add(proc);
  proc.on('exit', () => tools.delete(proc));
  proc.stdin.on('error', () => {});
  const t = new PeerTool(proc, name);
  await t.waitFor('ready', () => true, 15000);
  t.pid = proc.pid;
  checkComm(t.pid, 'el_peer_tool');
  return t;
}

async function raw() {
  const a = await startTool('raw-A', false);
  const b = await startTool('raw-B', true);
  try {
    const remoteSet = trickleBetween(a, b);
    a.subscribe('state', () => {});
    b.subscribe('state', () => {});
    a.send({ op: 'channel', label: 'bulk' });
    await withTimeout(negotiate(a, b, remoteSet), 30000, 'raw negotiation');
    await a.waitFor('open', (e) => e.label === 'bulk', 20000);
    await b.waitFor('channel', (e) => e.label === 'bulk', 20000);
    b.send({ op: 'digest', label: 'bulk' }); // B hashes from now on
    await sleep(100);
    const bytes = MIB * MiB;
    const c0 = cpuSum([a.pid, b.pid]);
    const t0 = performance.now();
    a.send({ op: 'blast', label: 'bulk', bytes, chunk: 65536 });
    const deadline = Date.now() + 300000;
    let d;
    for (;;) {
      b.send({ op: 'digest', label: 'bulk' });
      d = await b.waitFor('digest', () => true, 10000);
      if (d.bytes >= bytes) break;
      if (Date.now() > deadline) throw new Error(`raw: ${d.bytes} of ${bytes} bytes in 300 s`);
      await sleep(5);
    }
    const s = (performance.now() - t0) / 1000;
    const cpu = cpuSum([a.pid, b.pid]) - c0;
    const sent = await a.waitFor('blasted', () => true, 10000);
    if (sent.sha256 !== d.sha256) throw new Error('raw: SHA-256 mismatch');
    return { mibs: MIB / s, seconds: s, cpuPerMiB: cpu / MIB };
  } finally {
    await a.quit();
    await b.quit();
  }
}

/* ---- echolink: the control socket -------------------------------------- */

/** One connection to a listen process's control socket, subscribed to its events. */
class Ctl {
  constructor(sockPath, name) {
    this.name = name;
    this.sock = net.createConnection(sockPath);
    this.next = 1;
    this.replies = new Map(); // id -> resolve
    this.events = [];         // {ev, t} (t: performance.now() at arrival)
    this.waiters = [];
    let buf = '';
    this.sock.setEncoding('utf8');
    this.sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) this._line(JSON.parse(line), performance.now());
      }
    });
    this.closed = new Promise((resolve) => this.sock.on('close', resolve));
    this.sock.on('error', (e) => { this.error = e; });
  }

  _line(o, t) {
    if (o.event !== undefined) {
      const e = { ev: o.event, t };
      this.events.push(e);
      for (const w of this.waiters.splice(0)) {
        if (w.pred(e.ev)) w.resolve(e);
        else this.waiters.push(w);
      }
      return;
    }
    const r = this.replies.get(o.id);
    if (r) {
      this.replies.delete(o.id);
      r({ ...o, t });
    }
  }

  /** Writes one request; returns {id, t0, reply: promise of the reply (with .t)}. */
  request(obj, ms = 60000) {
    const id = this.next++;
    const reply = withTimeout(new Promise((resolve) => this.replies.set(id, resolve)), ms, `${this.name} reply to ${obj.cmd}`);
    const t0 = performance.now();
    this.sock.write(`${JSON.stringify({ id, ...obj })}\n`);
    return { id, t0, reply };
  }

  async call(obj, ms) {
    const r = await this.request(obj, ms).reply;
    if (!r.ok) throw new Error(`${this.name}: ${obj.cmd}: ${r.error}`);
    return r;
  }

  /** The first event from index `from` matching pred: {ev, t}. */
  wait(pred, ms, from = 0) {
    for (let i = from; i < this.events.length; i++) if (pred(this.events[i].ev)) return Promise.resolve(this.events[i]);
    let w;
    const p = new Promise((resolve) => { w = { pred, resolve }; this.waiters.push(w); });
    return withTimeout(p, ms, `${this.name} event`).catch((err) => {
      this.waiters = this.waiters.filter((x) => x !== w);
      err.message += `; last events: ${this.events.slice(-5).map((e) => JSON.stringify(e.ev)).join(' ')}`;
      throw err;
    });
  }

  close() {
    this.sock.end();
  }
}

async function connectCtl(client) {
  const ctl = new Ctl(path.join(client.home, 'default', 'control.sock'), client.name);
  await ctl.call({ cmd: 'subscribe' }, 10000);
  return ctl;
}

/** Writes `mib` MiB of random bytes (fresh randomness per MiB); returns the SHA-256. */
async function makeFile(file, mib) {
  const buf = Buffer.alloc(MiB);
  const h = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    for (let i = 0; i < mib; i++) {
      randomFillSync(buf);
      h.update(buf);
      await fh.write(buf);
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** One chat round trip: send on alice's socket -> "delivered" status for its
 *  msg_id; also when bob's "message" event for it arrived (one way, same clock). */
async function ping(actl, bctl, to, text) {
  const from = actl.events.length;
  const bfrom = bctl.events.length;
  const { t0, reply } = actl.request({ cmd: 'send', to, text }, 10000);
  const r = await reply;
  if (!r.ok) throw new Error(`send: ${r.error}`);
  const st = await actl.wait((e) => e.event === 'status' && e.id === r.msg_id && e.status === 'delivered', 10000, from);
  const m = await bctl.wait((e) => e.event === 'message' && e.text === text, 10000, bfrom);
  return { ms: st.t - t0, oneway: m.t - t0, at: st.t };
}

/** Up to n sequential pings (GAP_MS apart) while more() holds, within ms. */
async function pings(actl, bctl, to, n, tag, ms, more = () => true) {
  const out = [];
  const deadline = Date.now() + ms;
  for (let i = 0; i < n && more() && Date.now() < deadline; i++) {
    out.push(await ping(actl, bctl, to, `${tag} ${i}`));
    await sleep(GAP_MS);
  }
  return out;
}

async function ours() {
  const c = await startCluster();
  try {
    let fsType = '?';
    try { fsType = execFileSync('stat', ['-f', '-c', '%T', c.dir], { encoding: 'utf8' }).trim(); } catch { /* unknown */ }
    log(`files under ${c.dir} (${fsType})`);
    const alice = await c.client('alice');
    const bob = await c.client('bob', { remote: true });
    await c.befriend(alice, bob);
    await alice.listen();
    await bob.listen();
    const pids = [alice.proc.pid, bob.proc.pid];
    for (const p of pids) checkComm(p, 'echolink');
    const actl = await connectCtl(alice);
    const bctl = await connectCtl(bob);

    const small = path.join(c.dir, 'file.bin');
    const big = path.join(c.dir, 'big.bin');
    log(`writing ${MIB} + ${BIG_MIB} MiB of random data`);
    const smallSum = await makeFile(small, MIB);
    const bigSum = await makeFile(big, BIG_MIB);
    execFileSync('sync'); // no writeback of these files during the measurements

    // the first message makes the connection (on demand): warm-up, not counted
    log('baseline chat round trips');
    await pings(actl, bctl, bob.id, WARM_PINGS, 'warm-up', 60000);
    const base = await pings(actl, bctl, bob.id, PINGS, 'baseline', 120000);
    if (base.length < PINGS) throw new Error(`baseline: only ${base.length} of ${PINGS} pings in 120 s`);

    log(`file: ${MIB} MiB`);
    const file = await sendFile(actl, bctl, bob.id, small, smallSum, MIB, pids);

    execFileSync('sync'); // bob's copy is written back before the next part
    log(`chat during a ${BIG_MIB} MiB file`);
    const bfrom = bctl.events.length;
    const afrom = actl.events.length;
    const sf = actl.request({ cmd: 'send_file', to: bob.id, path: big }, 120000);
    // right behind it on the same socket: waits while alice hashes the file
    const behind = actl.request({ cmd: 'send', to: bob.id, text: 'right behind send_file' }, 120000);
    const fid = (await sf.reply).file_id;
    if (!fid) throw new Error('send_file (big) failed');
    const br = await behind.reply;
    const behindSt = await actl.wait((e) => e.event === 'status' && e.id === br.msg_id && e.status === 'delivered', 120000, afrom);
    const behindMs = behindSt.t - behind.t0;
    await bctl.wait((e) => e.event === 'file_progress' && e.file_id === fid && e.direction === 'in' && e.bytes >= 8 * MiB, 120000, bfrom);
    let doneAt = null;
    const donePromise = bctl.wait((e) => e.event === 'file_complete' && e.file_id === fid && e.direction === 'in', 900000, bfrom)
      .then((e) => { doneAt = e.t; return e; });
    donePromise.catch(() => {});
    const during = await pings(actl, bctl, bob.id, PINGS, 'during', 600000, () => doneAt === null);
    const done = await donePromise;
    if (done.ev.sha256 !== bigSum) throw new Error('big file: SHA-256 mismatch');
    const inFlightP = during.filter((p) => p.at < doneAt);
    const inFlight = inFlightP.map((p) => p.ms);
    const inFlight1 = inFlightP.map((p) => p.oneway);
    if (inFlight.length < Math.min(PINGS, 10)) {
      throw new Error(`only ${inFlight.length} pings while the ${BIG_MIB} MiB file flowed: make it bigger`);
    }
    const bigMibs = BIG_MIB / ((done.t - sf.t0) / 1000);
    actl.close();
    bctl.close();
    const b = base.map((p) => p.ms);
    const b1 = base.map((p) => p.oneway);
    return {
      file,
      rtt: {
        baseP50: pct(b, 50), baseP99: pct(b, 99), baseN: b.length,
        duringP50: pct(inFlight, 50), duringP99: pct(inFlight, 99), duringMax: Math.max(...inFlight),
        duringN: inFlight.length,
        baseOneP50: pct(b1, 50), baseOneP99: pct(b1, 99),
        duringOneP50: pct(inFlight1, 50), duringOneP99: pct(inFlight1, 99), behindSendFileMs: behindMs, sendFileReplyMs: (await sf.reply).t - sf.t0,
        bigMib: BIG_MIB, bigMibs,
      },
      tmp: { dir: path.dirname(c.dir), fs: fsType },
    };
  } finally {
    await c.cleanup();
  }
}

async function sendFile(actl, bctl, to, file, sum, mib, pids) {
  const bfrom = bctl.events.length;
  const c0 = cpuSum(pids);
  const req = actl.request({ cmd: 'send_file', to, path: file }, 120000);
  const r = await req.reply;
  if (!r.ok) throw new Error(`send_file: ${r.error}`);
  const done = await bctl.wait((e) => e.event === 'file_complete' && e.file_id === r.file_id && e.direction === 'in', 600000, bfrom);
  const cpu = cpuSum(pids) - c0;
  if (done.ev.sha256 !== sum) throw new Error(`file: SHA-256 ${done.ev.sha256}, want ${sum}`);
  const first = bctl.events.slice(bfrom).find((e) => e.ev.event === 'file_offer' && e.ev.file_id === r.file_id);
  const s = (done.t - req.t0) / 1000;
  return {
    mibs: mib / s, seconds: s, cpuPerMiB: cpu / mib,
    replyMs: r.t - req.t0, offerMs: first ? first.t - req.t0 : null,
  };
}

async function main() {
  if (SKIP) throw new Error(SKIP);
  if (!TOOL) throw new Error('EL_PEER_TOOL not set (run through bench/client.sh)');
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));
  log(`raw data channel: ${MIB} MiB`);
  const r = await raw();
  log(`raw: ${JSON.stringify(r)}`);
  const o = await ours();
  log(`ours: ${JSON.stringify(o)}`);
  const f = o.file;
  const q = o.rtt;
  const fx = (x, dp) => (x === null || x === undefined ? '-' : x.toFixed(dp));
  const lines = [
    '| metric | echolink | reference (same run) | ratio |',
    '|---|---:|---:|---:|',
    `| file ${MIB} MiB, encrypted, disk to disk vs raw data channel (64 KiB messages) | ${fx(f.mibs, 1)} MiB/s | ${fx(r.mibs, 1)} MiB/s | ${fx(f.mibs / r.mibs, 2)} |`,
    `| CPU ms per MiB, both processes | ${fx(f.cpuPerMiB, 2)} ms | ${fx(r.cpuPerMiB, 2)} ms | ${fx(f.cpuPerMiB / r.cpuPerMiB, 2)} |`,
    `| chat round trip p50 during a ${q.bigMib} MiB file vs idle (${q.duringN} / ${q.baseN} messages) | ${fx(q.duringP50, 2)} ms | ${fx(q.baseP50, 2)} ms | ${fx(q.duringP50 / q.baseP50, 2)} |`,
    `| chat round trip p99 during a ${q.bigMib} MiB file vs idle | ${fx(q.duringP99, 2)} ms | ${fx(q.baseP99, 2)} ms | ${fx(q.duringP99 / q.baseP99, 2)} |`,
    `| chat one way (alice's send -> bob's message event) p50 during vs idle | ${fx(q.duringOneP50, 2)} ms | ${fx(q.baseOneP50, 2)} ms | ${fx(q.duringOneP50 / q.baseOneP50, 2)} |`,
    `| chat one way p99 during vs idle | ${fx(q.duringOneP99, 2)} ms | ${fx(q.baseOneP99, 2)} ms | ${fx(q.duringOneP99 / q.baseOneP99, 2)} |`,
    `| file ${q.bigMib} MiB with the chat running vs raw data channel | ${fx(q.bigMibs, 1)} MiB/s | ${fx(r.mibs, 1)} MiB/s | ${fx(q.bigMibs / r.mibs, 2)} |`,
  ];
  console.log(lines.join('\n'));
  console.log(`send_file request -> reply (alice hashes the file): ${fx(f.replyMs, 0)} ms for ${MIB} MiB, ` +
    `${fx(q.sendFileReplyMs, 0)} ms for ${q.bigMib} MiB; -> bob's file_offer: ${fx(f.offerMs, 0)} ms; ` +
    `a chat message written right behind the ${q.bigMib} MiB send_file: ${fx(q.behindSendFileMs, 0)} ms to delivered; ` +
    `slowest round trip during the transfer ${fx(q.duringMax, 1)} ms; files in ${o.tmp.dir} (${o.tmp.fs})`);
  if (process.env.BENCH_CLIENT_JSON) {
    writeFileSync(process.env.BENCH_CLIENT_JSON, JSON.stringify({ mib: MIB, pings: PINGS, raw: r, ours: o }, null, 1));
  }
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`bench-client: ${e.stack || e}\n`);
  process.exit(1);
});
