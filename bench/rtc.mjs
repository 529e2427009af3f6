// rtc.mjs - WebRTC data-channel benchmark: libecholink's C peer (two
// el_peer_tool processes) against libwebrtc (@roamhq/wrtc, two node
// processes), measured the same way. Run through bench/rtc.sh, which puts
// everything in one network namespace (tests/harness/netns.sh).
//
//   node bench/rtc.mjs                 the benchmark (driver)
//   node bench/rtc.mjs --wrtc-peer     one libwebrtc peer speaking
//                                      el_peer_tool's JSON-lines protocol
//
// Both pairs are driven by the same code (tests/js/lib/peertool.mjs): the
// driver spawns two peer processes, forwards the offer/answer and trickled
// candidates (held until the receiver has its remote description) and
// measures:
//   setup   create_offer sent -> both channels open on both sides (median of
//           BENCH_RTC_SETUPS fresh pairs; process start-up excluded)
//   bulk    BENCH_RTC_MIB MiB of random bytes in 16 KiB (and 64 KiB) binary
//           messages, sender-side backpressure (buffered < 4 MiB, resume at
//           1 MiB), receiver hashes (SHA-256) and the driver polls its byte
//           count every 5 ms; both sides hash, both sides use the same code;
//           CPU per MiB = utime+stime of both peer processes (all threads,
//           /proc/<pid>/stat) over the transfer window, divided by the MiB
//   rtt     BENCH_RTC_PINGS sequential ping-pongs of a 16-byte text message:
//           driver -> A stdin -> A sends -> B echoes -> A -> stdout -> driver
//           (so each figure includes two node<->peer pipe hops)
// Knobs: BENCH_RTC_SETUPS=5 BENCH_RTC_MIB=64 BENCH_RTC_PINGS=1000
//        BENCH_RTC_JSON=path (raw results)
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

if (process.argv.includes('--wrtc-peer')) {
  await wrtcPeer();
} else {
  await main();
}

/* ------------------------------------------------------------------ */
/* libwebrtc peer: the subset of el_peer_tool's protocol the bench uses */

async function wrtcPeer() {
  const { RTCPeerConnection } = (await import('@roamhq/wrtc')).default;
  const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const pc = new RTCPeerConnection({ iceServers: [] });
  const chans = new Map();
  let echo = false;
  let mid = '0';
  pc.onicecandidate = (e) => emit({ ev: 'candidate', candidate: e.candidate ? e.candidate.candidate : null, mid });
  pc.onconnectionstatechange = () => emit({ ev: 'state', state: pc.connectionState });
  const setup = (dc, remote) => {
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = 1024 * 1024;
    const st = { dc, md: null, bytes: 0, messages: 0, blastLeft: 0 };
    chans.set(dc.label, st);
    const opened = () => emit({ ev: remote ? 'channel' : 'open', label: dc.label, id: dc.id });
    if (dc.readyState === 'open') opened();
    else dc.onopen = opened;
    dc.onmessage = (ev) => {
      const d = ev.data;
      if (st.md) {
        const b = Buffer.from(d);
        st.md.update(b);
        st.bytes += b.length;
        st.messages++;
        return;
      }
      if (echo) {
        dc.send(d);
        return;
      }
      if (typeof d === 'string') emit({ ev: 'message', label: dc.label, binary: false, text: d });
      else emit({ ev: 'message', label: dc.label, binary: true, b64: Buffer.from(d).toString('base64url') });
    };
    dc.onbufferedamountlow = () => blastMore(st);
    dc.onclose = () => emit({ ev: 'close', label: dc.label });
  };
  pc.ondatachannel = (e) => setup(e.channel, true);
  let buf = null;
  const blastMore = (st) => {
    const { dc } = st;
    while (st.blastLeft > 0 && dc.bufferedAmount < 4 * 1024 * 1024) {
      const n = Math.min(st.blastLeft, st.chunk);
      if (!buf || buf.length !== n) buf = Buffer.alloc(n);
      randomFillSync(buf);
      dc.send(buf);
      st.blastMd.update(buf);
      st.blastLeft -= n;
    }
    // @roamhq/wrtc 0.10.0 never fires bufferedamountlow (the blast stalls
    // after the first 4 MiB), so poll bufferedAmount every 1 ms as well
    if (st.blastLeft > 0 && !st.poll) {
      st.poll = setTimeout(() => { st.poll = null; blastMore(st); }, 1);
    }
    if (st.blastLeft === 0 && st.blastMd) {
      emit({ ev: 'blasted', label: dc.label, bytes: st.blastTotal, sha256: st.blastMd.digest('hex') });
      st.blastMd = null;
    }
  };
  const handle = async (o) => {
    switch (o.op) {
      case 'create_offer': {
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        const m = /^a=mid:(\S+)/m.exec(offer.sdp);
        if (m) mid = m[1];
        emit({ ev: 'offer', sdp: pc.localDescription.sdp });
        break;
      }
      case 'set_remote': {
        await pc.setRemoteDescription({ type: o.type, sdp: o.sdp });
        const m = /^a=mid:(\S+)/m.exec(o.sdp);
        if (m) mid = m[1];
        if (o.type === 'offer') {
          await pc.setLocalDescription(await pc.createAnswer());
          emit({ ev: 'answer', sdp: pc.localDescription.sdp });
        }
        break;
      }
      case 'candidate':
        if (o.candidate) await pc.addIceCandidate({ candidate: o.candidate.replace(/^a=/, ''), sdpMid: mid });
        break;
      case 'channel': {
        const opts = { ordered: o.ordered !== false };
        setup(pc.createDataChannel(o.label, opts), false);
        break;
      }
      case 'echo':
        echo = !!o.on;
        break;
      case 'send': {
        const st = chans.get(o.label);
        if (o.text !== undefined) st.dc.send(o.text);
        else st.dc.send(Buffer.from(o.b64 || '', 'base64url'));
        break;
      }
      case 'digest': {
        const st = chans.get(o.label);
        if (!st.md) st.md = createHash('sha256');
        else emit({ ev: 'digest', label: o.label, bytes: st.bytes, messages: st.messages, sha256: st.md.copy().digest('hex') });
        break;
      }
      case 'blast': {
        const st = chans.get(o.label);
        st.blastTotal = st.blastLeft = o.bytes;
        st.chunk = o.chunk || 16384;
        st.blastMd = createHash('sha256');
        blastMore(st);
        break;
      }
      case 'quit':
        pc.close();
        process.exit(0);
        break;
      default:
        emit({ ev: 'error', message: `unknown op ${o.op}` });
    }
  };
  // ops run strictly in order (a candidate must not overtake set_remote)
  let chain = Promise.resolve();
  createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', (line) => {
    if (!line.trim()) return;
    const o = JSON.parse(line);
    chain = chain.then(() => handle(o)).catch((e) => emit({ ev: 'error', message: String(e && e.message) }));
  }).on('close', () => process.exit(0));
  emit({ ev: 'ready' });
}

/* ------------------------------------------------------------------ */
/* driver */

async function main() {
  const { PeerTool, killAllPeerTools, NETNS_ADDR, withTimeout, trickleBetween, negotiate } = await import('../tests/js/lib/peertool.mjs');
  if (!NETNS_ADDR) throw new Error('run through bench/rtc.sh (needs the network namespace of tests/harness/netns.sh)');
  const SETUPS = Number(process.env.BENCH_RTC_SETUPS || 5);
  const MIB = Number(process.env.BENCH_RTC_MIB || 64);
  const PINGS = Number(process.env.BENCH_RTC_PINGS || 1000);
  const TOOL = process.env.EL_PEER_TOOL;
  const SELF = fileURLToPath(import.meta.url);
  const procs = new Set();
  const killAll = () => {
    for (const p of procs) try { p.kill('SIGKILL'); } catch { /* gone */ }
    killAllPeerTools();
  };
  process.on('exit', killAll);
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

  const impls = {
    echolink: { cmd: TOOL, args: [] },
    libwebrtc: { cmd: process.execPath, args: [SELF, '--wrtc-peer'] },
  };

  async function start(impl, name) {
    const { cmd, args } = impls[impl];
    const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
    procs.add(proc);
    proc.on('exit', () => procs.delete(proc));
    proc.stdin.on('error', () => {});
    const t = new PeerTool(proc, `${impl}-${name}`);
    t.pid = proc.pid;
    await t.waitFor('ready', () => true, 15000);
    return t;
  }

  /* CPU time of a process, all its threads, in ms: fields 14 (utime) and
   * 15 (stime) of /proc/<pid>/stat, counted after the ")" that ends the
   * command name (which may contain spaces). Clock-tick resolution. */
  let tickMs = 10;
  try { tickMs = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()); } catch { /* 100 Hz */ }
  function cpuMs(pid) {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) * tickMs, sys: Number(f[12]) * tickMs };
  }
  function cpuPair(a, b) {
    const x = cpuMs(a.pid);
    const y = cpuMs(b.pid);
    return { user: x.user + y.user, sys: x.sys + y.sys };
  }

  /* candidates forwarded as a signaling client would; state events dropped */
  function trickle(a, b) {
    const remoteSet = trickleBetween(a, b);
    a.subscribe('state', () => {});
    b.subscribe('state', () => {});
    return remoteSet;
  }

  const LABELS = ['bulk', 'ping'];
  /** A fresh pair, connected; returns {a, b, setupMs}. */
  async function pair(impl) {
    const a = await start(impl, 'A');
    const b = await start(impl, 'B');
    const remoteSet = trickle(a, b);
    for (const label of LABELS) a.send({ op: 'channel', label });
    const t0 = Date.now();
    await negotiate(a, b, remoteSet);
    let end = 0;
    for (const label of LABELS) {
      const x = await a.waitFor('open', (e) => e.label === label, 20000);
      const y = await b.waitFor('channel', (e) => e.label === label, 20000);
      end = Math.max(end, x.t, y.t);
    }
    return { a, b, setupMs: end - t0 };
  }

  const median = (xs) => {
    const s = [...xs].sort((p, q) => p - q);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const pct = (xs, p) => {
    const s = [...xs].sort((x, y) => x - y);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  };

  async function bulk(a, b, chunk, state) {
    const bytes = MIB * 1024 * 1024;
    const c0 = cpuPair(a, b);
    const t0 = process.hrtime.bigint();
    a.send({ op: 'blast', label: 'bulk', bytes, chunk });
    const target = state.received + bytes;
    const deadline = Date.now() + 120000;
    let d;
    for (;;) {
      b.send({ op: 'digest', label: 'bulk' });
      d = await b.waitFor('digest', () => true, 10000);
      if (d.bytes >= target) break;
      if (Date.now() > deadline) throw new Error(`bulk ${chunk}: ${d.bytes - state.received} of ${bytes} bytes in 120 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const c1 = cpuPair(a, b);
    const sent = await a.waitFor('blasted', () => true, 10000);
    state.received = d.bytes;
    if (sent.bytes !== bytes) throw new Error('blast size mismatch');
    // the first blast on a channel can be checked against the sender's hash
    if (state.first && d.sha256 !== sent.sha256) throw new Error(`bulk ${chunk}: SHA-256 mismatch`);
    state.first = false;
    const user = c1.user - c0.user;
    const sys = c1.sys - c0.sys;
    return { mibs: MIB / s, cpuPerMiB: (user + sys) / MIB, sysShare: user + sys > 0 ? sys / (user + sys) : 0 };
  }

  async function rtt(a, b) {
    b.send({ op: 'echo', on: true });
    // the op reaches B over its stdin pipe, the first ping over the network:
    // give the op a head start, or B reports that ping instead of echoing it
    await new Promise((r) => setTimeout(r, 100));
    const out = [];
    const deadline = Date.now() + 60000;
    for (let i = 0; i < PINGS + 20 && Date.now() < deadline; i++) {
      const text = `ping-${String(i).padStart(11, '0')}`; // 16 bytes
      const t0 = process.hrtime.bigint();
      a.send({ op: 'send', label: 'ping', text });
      const m = await a.waitFor('message', (e) => e.label === 'ping', 5000);
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (m.text !== text) throw new Error(`rtt: got ${m.text}, want ${text}`);
      if (i >= 20) out.push(us); // 20 warm-up round trips
    }
    if (out.length < PINGS) throw new Error(`rtt: only ${out.length} of ${PINGS} round trips in 60 s`);
    return { p50: pct(out, 50) / 1000, p99: pct(out, 99) / 1000 };
  }

  const results = {};
  for (const impl of Object.keys(impls)) {
    process.stderr.write(`bench-rtc: ${impl}: ${SETUPS} setups\n`);
    const setups = [];
    let last = null;
    for (let i = 0; i < SETUPS; i++) {
      if (last) { await last.a.quit(); await last.b.quit(); }
      last = await withTimeout(pair(impl), 30000, `${impl} pair ${i}`);
      setups.push(last.setupMs);
    }
    const { a, b } = last;
    b.send({ op: 'digest', label: 'bulk' }); // start hashing at B
    const state = { received: 0, first: true };
    process.stderr.write(`bench-rtc: ${impl}: bulk\n`);
    const b16 = await bulk(a, b, 16384, state);
    const b64 = await bulk(a, b, 65536, state);
    process.stderr.write(`bench-rtc: ${impl}: rtt\n`);
    const r = await rtt(a, b);
    await a.quit();
    await b.quit();
    results[impl] = {
      setupMs: median(setups), setupMax: Math.max(...setups), setups,
      bulk16: b16.mibs, bulk64: b64.mibs,
      cpu16: b16.cpuPerMiB, cpu64: b64.cpuPerMiB, sys16: b16.sysShare, sys64: b64.sysShare,
      rttP50: r.p50, rttP99: r.p99,
    };
    process.stderr.write(`bench-rtc: ${impl}: ${JSON.stringify(results[impl])}\n`);
  }

  const E = results.echolink;
  const W = results.libwebrtc;
  const rows = [
    ['setup, offer -> 2 channels open both sides (median of ' + SETUPS + ')', 'setupMs', 'ms', 1, 'lower'],
    ['setup, slowest of ' + SETUPS, 'setupMax', 'ms', 1, 'lower'],
    [`bulk ${MIB} MiB, 16 KiB messages`, 'bulk16', 'MiB/s', 1, 'higher'],
    [`bulk ${MIB} MiB, 64 KiB messages`, 'bulk64', 'MiB/s', 1, 'higher'],
    ['CPU ms per MiB, both peers, 16 KiB messages', 'cpu16', 'ms', 1, 'lower'],
    ['CPU ms per MiB, both peers, 64 KiB messages', 'cpu64', 'ms', 1, 'lower'],
    ['kernel (stime) share of that CPU, 16 KiB messages', 'sys16', '', 2, 'lower'],
    [`round trip p50 (${PINGS} pings, via pipes)`, 'rttP50', 'ms', 3, 'lower'],
    [`round trip p99 (${PINGS} pings, via pipes)`, 'rttP99', 'ms', 3, 'lower'],
  ];
  const lines = ['| metric | echolink C | libwebrtc (wrtc) | ratio C/libwebrtc |', '|---|---:|---:|---:|'];
  for (const [name, k, unit, dp] of rows) {
    lines.push(`| ${name} | ${E[k].toFixed(dp)} ${unit} | ${W[k].toFixed(dp)} ${unit} | ${(E[k] / W[k]).toFixed(2)} |`);
  }
  console.log(lines.join('\n'));
  if (process.env.BENCH_RTC_JSON) writeFileSync(process.env.BENCH_RTC_JSON, JSON.stringify(results, null, 1));
  killAll();
  process.exit(0);
}
