// rtc.mjs - WebRTC data-channel benchmark: libecholink's C peer (two
// el_peer_tool processes) against libwebrtc and libdatachannel (two node
// processes each), measured the same way. Run through bench/rtc.sh, which puts
// everything in one network namespace (tests/harness/netns.sh).
//
//   node bench/rtc.mjs                 the benchmark (driver)
//   node bench/rtc.mjs --wrtc-peer     one libwebrtc peer speaking
//                                      el_peer_tool's JSON-lines protocol
//   node bench/rtc.mjs --ndc-peer      the same with libdatachannel
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
//   rtt     BENCH_RTC_PINGS sequential ping-pongs of a 16-byte text message,
//           each sent when the previous echo is back, timed inside peer A
//           (el_peer_tool in C; process.hrtime in the node peers)
// Reference peers: libwebrtc (@roamhq/wrtc) and libdatachannel
// (node-datachannel's native API), each as two node processes running
// nodePeer() below.
// Rounds: every stack runs once per round, in a rotating order; figures
// are medians over the rounds (round trips pooled), so that a slow spell
// of the machine does not land on one stack only.
// Knobs: BENCH_RTC_ROUNDS=3 BENCH_RTC_SETUPS=6 (over all rounds)
//        BENCH_RTC_MIB=64 BENCH_RTC_PINGS=1000 (per round)
//        BENCH_RTC_JSON=path (raw results) BENCH_RTC_IMPLS=echolink,...
//        (a subset) BENCH_RTC_RTT_DUMP=prefix (every round trip, in µs)
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

if (process.argv.includes('--wrtc-peer')) {
  await nodePeer(await wrtcStack());
} else if (process.argv.includes('--ndc-peer')) {
  await nodePeer(await ndcStack());
} else {
  await main();
}

/* ------------------------------------------------------------------ */
/* reference peers: the subset of el_peer_tool's protocol the bench uses,
 * over one of two stacks. A stack is {createOffer(), setRemote(type, sdp)
 * -> answer sdp or null, addCandidate(line), createChannel(label, ordered),
 * onChannel(cb), onCandidate(cb), onState(cb), close(), pollsLow}; a channel
 * is {label, id, open, send(string|Buffer), buffered(), onOpen(cb),
 * onMessage(cb(string|Buffer)), onLow(cb), onClose(cb)}. */

const midOf = (sdp) => (/^a=mid:(\S+)/m.exec(sdp) || [])[1];

/** libwebrtc through @roamhq/wrtc's RTCPeerConnection. */
async function wrtcStack() {
  const { RTCPeerConnection } = (await import('@roamhq/wrtc')).default;
  const pc = new RTCPeerConnection({ iceServers: [] });
  let mid = '0';
  const wrap = (dc) => {
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = 1024 * 1024;
    return {
      label: dc.label,
      get id() { return dc.id; },
      get open() { return dc.readyState === 'open'; },
      send: (d) => dc.send(d),
      buffered: () => dc.bufferedAmount,
      onOpen: (cb) => { dc.onopen = cb; },
      onMessage: (cb) => { dc.onmessage = (ev) => cb(typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data)); },
      onLow: (cb) => { dc.onbufferedamountlow = cb; },
      onClose: (cb) => { dc.onclose = cb; },
    };
  };
  return {
    // @roamhq/wrtc 0.10.0 never fires bufferedamountlow (a blast stalls
    // after the first 4 MiB): its sender polls bufferedAmount as well
    pollsLow: true,
    async createOffer() {
      await pc.setLocalDescription(await pc.createOffer());
      mid = midOf(pc.localDescription.sdp) || mid;
      return pc.localDescription.sdp;
    },
    async setRemote(type, sdp) {
      await pc.setRemoteDescription({ type, sdp });
      mid = midOf(sdp) || mid;
      if (type !== 'offer') return null;
      await pc.setLocalDescription(await pc.createAnswer());
      return pc.localDescription.sdp;
    },
    addCandidate: (c) => pc.addIceCandidate({ candidate: c.replace(/^a=/, ''), sdpMid: mid }),
    createChannel: (label, ordered) => wrap(pc.createDataChannel(label, { ordered })),
    onChannel: (cb) => { pc.ondatachannel = (e) => cb(wrap(e.channel)); },
    onCandidate: (cb) => { pc.onicecandidate = (e) => cb(e.candidate ? e.candidate.candidate : null); },
    onState: (cb) => { pc.onconnectionstatechange = () => cb(pc.connectionState); },
    close: () => pc.close(),
  };
}

/** libdatachannel through node-datachannel's own API (not its polyfill):
 * C++ all the way to the message callback. */
async function ndcStack() {
  const ndc = (await import('node-datachannel')).default;
  const pc = new ndc.PeerConnection('bench', { iceServers: [], disableAutoNegotiation: true });
  let mid = '0';
  let described = null;
  pc.onLocalDescription((sdp) => { if (described) described(sdp); });
  const localDescription = (type) => new Promise((resolve) => {
    described = (sdp) => { described = null; resolve(sdp); };
    pc.setLocalDescription(type);
  });
  const wrap = (dc, isOpen) => {
    let opened = isOpen;
    const ch = {
      label: dc.getLabel(),
      get id() { return dc.getId(); },
      get open() { return opened; },
      send: (d) => (typeof d === 'string' ? dc.sendMessage(d) : dc.sendMessageBinary(d)),
      buffered: () => dc.bufferedAmount(),
      onOpen: (cb) => dc.onOpen(() => { opened = true; cb(); }),
      onMessage: (cb) => dc.onMessage((m) => cb(typeof m === 'string' ? m : Buffer.from(m))),
      onLow: (cb) => dc.onBufferedAmountLow(cb),
      onClose: (cb) => dc.onClosed(cb),
    };
    dc.setBufferedAmountLowThreshold(1024 * 1024);
    return ch;
  };
  process.on('exit', () => { try { pc.close(); ndc.cleanup(); } catch { /* closing anyway */ } });
  return {
    pollsLow: false,
    async createOffer() {
      const sdp = await localDescription('offer');
      mid = midOf(sdp) || mid;
      return sdp;
    },
    async setRemote(type, sdp) {
      pc.setRemoteDescription(sdp, type);
      mid = midOf(sdp) || mid;
      return type === 'offer' ? localDescription('answer') : null;
    },
    addCandidate: (c) => pc.addRemoteCandidate(c.replace(/^a=/, ''), mid),
    createChannel: (label, ordered) => wrap(pc.createDataChannel(label, { unordered: !ordered }), false),
    // a channel the remote opened is announced open
    onChannel: (cb) => pc.onDataChannel((dc) => cb(wrap(dc, true))),
    onCandidate: (cb) => {
      pc.onLocalCandidate((c) => cb(c));
      pc.onGatheringStateChange((s) => { if (s === 'complete') cb(null); });
    },
    onState: (cb) => pc.onStateChange(cb),
    close: () => pc.close(),
  };
}

async function nodePeer(stack) {
  const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const chans = new Map();
  let echo = false;
  stack.onCandidate((candidate) => emit({ ev: 'candidate', candidate }));
  stack.onState((state) => emit({ ev: 'state', state }));
  const setup = (ch, remote) => {
    const st = { ch, md: null, bytes: 0, messages: 0, blastLeft: 0 };
    chans.set(ch.label, st);
    const opened = () => emit({ ev: remote ? 'channel' : 'open', label: ch.label, id: ch.id });
    if (ch.open) opened();
    else ch.onOpen(opened);
    ch.onMessage((d) => {
      if (st.pp) {
        pingBack(st, d);
        return;
      }
      if (st.md) {
        st.md.update(d);
        st.bytes += d.length;
        st.messages++;
        return;
      }
      if (echo) {
        ch.send(d);
        return;
      }
      if (typeof d === 'string') emit({ ev: 'message', label: ch.label, binary: false, text: d });
      else emit({ ev: 'message', label: ch.label, binary: true, b64: d.toString('base64url') });
    });
    ch.onLow(() => blastMore(st));
    ch.onClose(() => emit({ ev: 'close', label: ch.label }));
  };
  stack.onChannel((ch) => setup(ch, true));
  let buf = null;
  const blastMore = (st) => {
    const { ch } = st;
    while (st.blastLeft > 0 && ch.buffered() < 4 * 1024 * 1024) {
      const n = Math.min(st.blastLeft, st.chunk);
      if (!buf || buf.length !== n) buf = Buffer.alloc(n);
      randomFillSync(buf);
      ch.send(buf);
      st.blastMd.update(buf);
      st.blastLeft -= n;
    }
    if (stack.pollsLow && st.blastLeft > 0 && !st.poll) {
      st.poll = setTimeout(() => { st.poll = null; blastMore(st); }, 1);
    }
    if (st.blastLeft === 0 && st.blastMd) {
      emit({ ev: 'blasted', label: ch.label, bytes: st.blastTotal, sha256: st.blastMd.digest('hex') });
      st.blastMd = null;
    }
  };
  // pingpong: as el_peer_tool's, timed inside this process
  const pingNext = (st) => {
    st.pp.t0 = process.hrtime.bigint();
    st.ch.send(`ping-${String(st.pp.sent++).padStart(11, '0')}`);
  };
  const pingBack = (st, d) => {
    const { pp } = st;
    if (d !== `ping-${String(pp.sent - 1).padStart(11, '0')}`) {
      st.pp = null;
      emit({ ev: 'error', message: 'pingpong: echo out of order' });
      return;
    }
    pp.us.push(Number(process.hrtime.bigint() - pp.t0) / 1000);
    if (pp.sent < pp.count) {
      pingNext(st);
      return;
    }
    st.pp = null;
    emit({ ev: 'pingpong', label: st.ch.label, us: pp.us });
  };
  const handle = async (o) => {
    switch (o.op) {
      case 'pingpong': {
        const st = chans.get(o.label);
        st.pp = { count: o.count, sent: 0, us: [] };
        pingNext(st);
        break;
      }
      case 'create_offer':
        emit({ ev: 'offer', sdp: await stack.createOffer() });
        break;
      case 'set_remote': {
        const answer = await stack.setRemote(o.type, o.sdp);
        if (answer) emit({ ev: 'answer', sdp: answer });
        break;
      }
      case 'candidate':
        if (o.candidate) await stack.addCandidate(o.candidate);
        break;
      case 'channel':
        setup(stack.createChannel(o.label, o.ordered !== false), false);
        break;
      case 'echo':
        echo = !!o.on;
        break;
      case 'send': {
        const st = chans.get(o.label);
        st.ch.send(o.text !== undefined ? o.text : Buffer.from(o.b64 || '', 'base64url'));
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
        stack.close();
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
  const ROUNDS = Number(process.env.BENCH_RTC_ROUNDS || 3);
  const SETUPS_PER_ROUND = Math.max(1, Math.ceil(Number(process.env.BENCH_RTC_SETUPS || 6) / ROUNDS));
  const SETUPS = SETUPS_PER_ROUND * ROUNDS;
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
    libdatachannel: { cmd: process.execPath, args: [SELF, '--ndc-peer'] },
  };
  try {
    await import('node-datachannel');
  } catch (e) {
    // its prebuilt binary comes as an optional npm package for this
    // platform; without it the run still compares against libwebrtc
    process.stderr.write(`bench-rtc: libdatachannel skipped: node-datachannel does not load (${e.message})\n`);
    delete impls.libdatachannel;
  }
  if (process.env.BENCH_RTC_IMPLS) { // e.g. echolink,libdatachannel (profiling)
    const keep = new Set(process.env.BENCH_RTC_IMPLS.split(','));
    for (const k of Object.keys(impls)) if (!keep.has(k)) delete impls[k];
    if (!impls.echolink) throw new Error('BENCH_RTC_IMPLS must include echolink');
  }

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

  /* UDP datagrams the kernel dropped in this namespace (receive buffers
   * full): each is a loss that SCTP's congestion control answers */
  function udpDrops() {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const [head, vals] = lines.map((l) => l.trim().split(/\s+/));
    return Number(vals[head.indexOf('RcvbufErrors')]);
  }

  async function bulk(a, b, chunk, state) {
    const bytes = MIB * 1024 * 1024;
    const drops0 = udpDrops();
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
    return { mibs: MIB / s, cpuPerMiB: (user + sys) / MIB, sysShare: user + sys > 0 ? sys / (user + sys) : 0, drops: udpDrops() - drops0 };
  }

  async function rtt(a, b) {
    b.send({ op: 'echo', on: true });
    // the op reaches B over its stdin pipe, the first ping over the network:
    // give the op a head start, or B reports that ping instead of echoing it
    await new Promise((r) => setTimeout(r, 100));
    a.send({ op: 'pingpong', label: 'ping', count: PINGS + 20 });
    const r = await a.waitFor('pingpong', (e) => e.label === 'ping', 60000);
    const out = r.us.slice(20); // 20 warm-up round trips
    if (out.length < PINGS) throw new Error(`rtt: only ${out.length} of ${PINGS} round trips`);
    return out;
  }

  // Rounds: each round runs every stack in turn (the order rotating), so a
  // slow spell of this shared machine hits all of them rather than one;
  // per stack, a figure is the median over the rounds, and the round trips
  // of all rounds are pooled.
  const runs = Object.fromEntries(Object.keys(impls).map((k) => [k, { setups: [], bulks: [], rtts: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.keys(impls);
    for (let i = 0; i < round % order.length; i++) order.push(order.shift());
    for (const impl of order) {
      const run = runs[impl];
      process.stderr.write(`bench-rtc: round ${round + 1}/${ROUNDS}: ${impl}\n`);
      let last = null;
      for (let i = 0; i < SETUPS_PER_ROUND; i++) {
        if (last) { await last.a.quit(); await last.b.quit(); }
        last = await withTimeout(pair(impl), 30000, `${impl} pair ${i}`);
        run.setups.push(last.setupMs);
      }
      const { a, b } = last;
      b.send({ op: 'digest', label: 'bulk' }); // start hashing at B
      const state = { received: 0, first: true };
      const b16 = await bulk(a, b, 16384, state);
      const b64 = await bulk(a, b, 65536, state);
      run.bulks.push({ b16, b64 });
      run.rtts.push(...await rtt(a, b));
      await a.quit();
      await b.quit();
    }
  }
  const results = {};
  for (const [impl, run] of Object.entries(runs)) {
    const med = (f) => median(run.bulks.map(f));
    results[impl] = {
      setupMs: median(run.setups), setupMax: Math.max(...run.setups), setups: run.setups,
      bulk16: med((x) => x.b16.mibs), bulk64: med((x) => x.b64.mibs),
      cpu16: med((x) => x.b16.cpuPerMiB), cpu64: med((x) => x.b64.cpuPerMiB),
      sys16: med((x) => x.b16.sysShare), sys64: med((x) => x.b64.sysShare),
      drops16: run.bulks.reduce((n, x) => n + x.b16.drops, 0), drops64: run.bulks.reduce((n, x) => n + x.b64.drops, 0),
      rttP50: pct(run.rtts, 50) / 1000, rttP99: pct(run.rtts, 99) / 1000,
      rounds: run.bulks.map((x) => ({ bulk16: x.b16.mibs, bulk64: x.b64.mibs, cpu16: x.b16.cpuPerMiB, cpu64: x.b64.cpuPerMiB })),
    };
    if (process.env.BENCH_RTC_RTT_DUMP) writeFileSync(`${process.env.BENCH_RTC_RTT_DUMP}.${impl}`, run.rtts.join('\n'));
    process.stderr.write(`bench-rtc: ${impl}: ${JSON.stringify(results[impl])}\n`);
  }

  const refs = Object.keys(results).filter((k) => k !== 'echolink');
  const E = results.echolink;
  const rows = [
    ['setup, offer -> 2 channels open both sides (median of ' + SETUPS + ')', 'setupMs', 'ms', 1, 'lower'],
    ['setup, slowest of ' + SETUPS, 'setupMax', 'ms', 1, 'lower'],
    [`bulk ${MIB} MiB, 16 KiB messages (median of ${ROUNDS})`, 'bulk16', 'MiB/s', 1, 'higher'],
    [`bulk ${MIB} MiB, 64 KiB messages (median of ${ROUNDS})`, 'bulk64', 'MiB/s', 1, 'higher'],
    ['CPU ms per MiB, both peers, 16 KiB messages (median)', 'cpu16', 'ms', 1, 'lower'],
    ['CPU ms per MiB, both peers, 64 KiB messages (median)', 'cpu64', 'ms', 1, 'lower'],
    ['kernel (stime) share of that CPU, 16 KiB messages', 'sys16', '', 2, 'lower'],
    ['UDP datagrams dropped (receive buffer full), 16 KiB, all rounds', 'drops16', '', 0, 'lower'],
    ['UDP datagrams dropped (receive buffer full), 64 KiB, all rounds', 'drops64', '', 0, 'lower'],
    [`round trip p50 (${ROUNDS} x ${PINGS} pings, timed in the sending peer)`, 'rttP50', 'ms', 3, 'lower'],
    [`round trip p99 (${ROUNDS} x ${PINGS} pings, timed in the sending peer)`, 'rttP99', 'ms', 3, 'lower'],
  ];
  // the issue's targets are ratios to the best reference of the same run
  const best = (k, dir) => refs.reduce((b, r) => (b === null || (dir === 'higher' ? results[r][k] > b : results[r][k] < b) ? results[r][k] : b), null);
  results.bestRef = {};
  const lines = [`| metric | echolink C | ${refs.join(' | ')} | ratio C / best reference |`, `|---|---:|${refs.map(() => '---:|').join('')}---:|`];
  for (const [name, k, unit, dp, dir] of rows) {
    const b = best(k, dir);
    results.bestRef[k] = b;
    lines.push(`| ${name} | ${E[k].toFixed(dp)} ${unit} | ${refs.map((r) => `${results[r][k].toFixed(dp)} ${unit}`).join(' | ')} | ${(E[k] / b).toFixed(2)} |`);
  }
  console.log(lines.join('\n'));
  if (process.env.BENCH_RTC_JSON) writeFileSync(process.env.BENCH_RTC_JSON, JSON.stringify(results, null, 1));
  killAll();
  process.exit(0);
}
