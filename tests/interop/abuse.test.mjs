// abuse.test.mjs - a hostile WebRTC peer against our C peer: libwebrtc
// (@roamhq/wrtc) is the attacker, el_peer_tool (libecholink's el_peer) the
// victim. Thousands of data channels, messages larger than our
// a=max-message-size, an endless stream of messages. The victim must keep
// its limits (EL_SCTP_MAX_CHANNELS, EL_SCTP_MAX_MESSAGE_SIZE, its SCTP
// receive window), keep its memory bounded, stay responsive, and keep the
// channels it already had working.
//
//   tests/harness/netns.sh run node --test --test-reporter=spec tests/interop/abuse.test.mjs
//
// Outside a namespace (no EL_NETNS_ADDR) every test is skipped: WebRTC
// traffic must never touch the host's interfaces. The victim's RSS (read
// by el_peer_tool from /proc/self/statm) is printed as "# figure ..."
// diagnostics; in a sanitizer build it includes ASan's shadow and
// quarantine, so the bounds asserted here are on growth, and generous.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import {
  NETNS_ADDR, killAllPeerTools, sleep, startPeerTool, trickleBetween, withTimeout,
} from '../js/lib/peertool.mjs';

const SKIP = NETNS_ADDR ? false : 'not inside a test network namespace (run through tests/harness/netns.sh)';
const wrtc = SKIP ? null : (await import('@roamhq/wrtc')).default;

const MAX_CHANNELS = 1024;           // EL_SCTP_MAX_CHANNELS (src/rtc/sctp.h)
const MAX_MESSAGE = 262144;          // EL_SCTP_MAX_MESSAGE_SIZE, our a=max-message-size
const MiB = 1024 * 1024;

function figure(what, value) {
  console.log(`# figure ${what}: ${value}`);
}

/** A wrtc data channel's events as promises. */
function watch(dc) {
  dc.binaryType = 'arraybuffer';
  const w = { dc, queue: [], waiters: [] };
  // libwebrtc reports a DCEP channel open at once when the association is
  // up (before our ACK), and then fires no open event
  w.opened = dc.readyState === 'open' ? Promise.resolve() : new Promise((resolve) => { dc.onopen = () => resolve(); });
  w.closed = new Promise((resolve) => { dc.onclose = () => resolve(); });
  dc.onmessage = (m) => {
    const f = w.waiters.shift();
    if (f) f(m.data);
    else w.queue.push(m.data);
  };
  w.next = (ms = 10000) => {
    if (w.queue.length) return Promise.resolve(w.queue.shift());
    return withTimeout(new Promise((resolve) => w.waiters.push(resolve)), ms, `a message on '${dc.label}'`);
  };
  return w;
}

/**
 * The attacker (wrtc) offers with channel "chat"; the victim (el_peer_tool)
 * answers. mungeAnswer(sdp) may rewrite the victim's answer before wrtc sees
 * it (a lying attacker). Resolves {tool, pc, chat}.
 */
async function connect(name, { mungeAnswer = (s) => s } = {}) {
  const tool = await startPeerTool({ name, env: VICTIM_ENV });
  tool.send({ op: 'quiet', on: true });
  const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
  try {
    let toolRemote = false;
    const early = [];
    pc.onicecandidate = (e) => {
      const op = { op: 'candidate', candidate: e.candidate ? e.candidate.candidate : null };
      if (toolRemote) tool.send(op);
      else early.push(op);
    };
    let haveRemote;
    const wrtcRemote = new Promise((r) => { haveRemote = r; });
    tool.subscribe('candidate', (e) => {
      if (!e.candidate) return;
      wrtcRemote.then(() => pc.addIceCandidate({ candidate: e.candidate, sdpMid: e.mid })).catch(() => {});
    });
    const chat = watch(pc.createDataChannel('chat'));
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    tool.send({ op: 'set_remote', type: 'offer', sdp: pc.localDescription.sdp });
    toolRemote = true;
    for (const op of early.splice(0)) tool.send(op);
    const answer = await tool.waitFor('answer');
    await pc.setRemoteDescription({ type: 'answer', sdp: mungeAnswer(answer.sdp) });
    haveRemote();
    await withTimeout(chat.opened, 15000, 'wrtc "chat" open');
    return { tool, pc, chat };
  } catch (e) {
    pc.close();
    tool.kill();
    throw e;
  }
}

/** Polls cond() every 100 ms until it holds or ms passed; resolves whether it held. */
async function until(cond, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(100);
  }
  return cond();
}

async function stats(tool, ms = 5000) {
  tool.send({ op: 'stats' });
  return tool.waitFor('stats', () => true, ms);
}

/** The victim still answers on "chat": echo one message back. */
async function chatWorks(s, text) {
  s.tool.send({ op: 'echo', on: true });
  s.chat.dc.send(text);
  const got = await s.chat.next(10000);
  s.tool.send({ op: 'echo', on: false });
  return typeof got === 'string' ? got : Buffer.from(got).toString('utf8');
}

async function teardown(s) {
  if (!s) return;
  try { s.pc.close(); } catch { /* closed */ }
  await s.tool.quit().catch(() => s.tool.kill());
}

/** ASan keeps freed memory in a quarantine (256 MiB by default), which
 *  would read as growth; the victims run with a small one. */
const VICTIM_ENV = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : ''}quarantine_size_mb=4` };

/**
 * A C attacker (el_peer_tool, offerer, opens "chat") and the C victim
 * (answerer). mungeAnswer rewrites the victim's answer before the attacker
 * sees it. Resolves {attacker, victim}.
 */
async function connectC(name, { mungeAnswer = (s) => s } = {}) {
  const attacker = await startPeerTool({ name: `attacker(${name})` });
  const victim = await startPeerTool({ name: `victim(${name})`, env: VICTIM_ENV });
  try {
    const remoteSet = trickleBetween(attacker, victim);
    victim.send({ op: 'quiet', on: true });
    attacker.send({ op: 'channel', label: 'chat' });
    attacker.send({ op: 'create_offer' });
    const offer = await attacker.waitFor('offer');
    victim.send({ op: 'set_remote', type: 'offer', sdp: offer.sdp });
    remoteSet(victim);
    const answer = await victim.waitFor('answer');
    attacker.send({ op: 'set_remote', type: 'answer', sdp: mungeAnswer(answer.sdp) });
    remoteSet(attacker);
    await attacker.waitFor('open', (e) => e.label === 'chat', 15000);
    return { attacker, victim };
  } catch (e) {
    attacker.kill();
    victim.kill();
    throw e;
  }
}

/** The C victim still answers on "chat": it echoes one message back. */
async function chatWorksC(s, text) {
  s.victim.send({ op: 'echo', on: true });
  s.attacker.send({ op: 'send', label: 'chat', text });
  const got = await s.attacker.waitFor('message', (e) => e.label === 'chat', 10000);
  s.victim.send({ op: 'echo', on: false });
  return got.text;
}

async function teardownC(s) {
  if (!s) return;
  await s.attacker.quit().catch(() => s.attacker.kill());
  await s.victim.quit().catch(() => s.victim.kill());
}

describe('a hostile WebRTC peer (libwebrtc) against el_peer', { skip: SKIP }, () => {
  after(() => killAllPeerTools());

  it(`thousands of data channels: at most ${MAX_CHANNELS} are accepted, the rest refused and logged; chat keeps working; closing frees room`, async () => {
    // libwebrtc stops at 511 channels of its own, so the attacker is a C
    // peer: el_sctp adds streams on demand and opens as many as it is told
    const s = await connectC('channels');
    try {
      const before = await stats(s.victim);
      const N = 3000;
      const t0 = Date.now();
      for (let i = 0; i < N; i++) s.attacker.send({ op: 'channel', label: `flood${i}` });
      // each one either opens (ACKed) or is closed (our stream reset)
      const settled = () => s.attacker.peek('open').length + s.attacker.peek('close').length;
      await until(() => settled() >= N, 60000);
      const ms = Date.now() - t0;
      const opened = s.attacker.peek('open').filter((e) => e.label.startsWith('flood')).length;
      const refused = s.attacker.peek('close').filter((e) => e.label.startsWith('flood')).length;
      const mid = await stats(s.victim);
      const seen = mid.channels_seen - before.channels_seen;
      figure('channel flood (C attacker)', `${N} DCEP OPENs in ${ms} ms: ${opened} open, ${refused} refused; ` +
        `victim accepted ${seen} (+chat); victim RSS ${before.rss_kb} -> ${mid.rss_kb} KiB`);
      assert.equal(opened + refused, N, 'every OPEN is answered (ACK or stream reset)');
      assert.equal(seen, MAX_CHANNELS - 1, `the victim holds ${MAX_CHANNELS} channels with chat`);
      assert.equal(opened, MAX_CHANNELS - 1);
      assert.match(s.victim.stderr, /refused: \d+ channels open \(limit 1024\)/, 'the refusal is logged');
      const warnings = (s.victim.stderr.match(/channels open \(limit 1024\)/g) || []).length;
      figure('channel flood: victim log lines about the cap', warnings);
      assert.ok(warnings <= 9, `the log is not flooded (${warnings} lines)`);
      assert.equal(await chatWorksC(s, 'still here'), 'still here', 'chat works after the flood');
      // an accepted flood channel works
      s.victim.send({ op: 'echo', on: true });
      s.attacker.send({ op: 'send', label: 'flood1', text: 'on a flood channel' });
      const echo = await s.attacker.waitFor('message', (e) => e.label === 'flood1', 10000);
      assert.equal(echo.text, 'on a flood channel');
      s.victim.send({ op: 'echo', on: false });
      // closing 40 makes room for 40 new ones
      for (let i = 0; i < 40; i++) s.attacker.send({ op: 'close_channel', label: `flood${i}` });
      assert.ok(await until(() => s.attacker.peek('close').filter((e) => /^flood\d$|^flood[1-3]\d$/.test(e.label)).length >= 40, 20000),
        'the 40 closes');
      await sleep(300);
      for (let i = 0; i < 40; i++) s.attacker.send({ op: 'channel', label: `again${i}` });
      await until(() => s.attacker.peek('open').filter((e) => e.label.startsWith('again')).length +
        s.attacker.peek('close').filter((e) => e.label.startsWith('again')).length >= 40, 20000);
      const reopened = s.attacker.peek('open').filter((e) => e.label.startsWith('again')).length;
      figure('after closing 40', `${reopened} of 40 new channels open`);
      assert.equal(reopened, 40, 'room again after closes');
      const end = await stats(s.victim);
      figure('channel flood: victim RSS', `before ${before.rss_kb} KiB, after ${end.rss_kb} KiB (+${end.rss_kb - before.rss_kb} KiB)`);
      assert.ok(end.rss_kb - before.rss_kb < 64 * 1024, 'bounded');
    } finally {
      await teardownC(s);
    }
  });

  it('channel churn: 3000 channels opened and closed in turn; the victim keeps working and its memory stays bounded', async () => {
    const s = await connect('victim(churn)');
    try {
      await sleep(200);
      const before = await stats(s.tool);
      const t0 = Date.now();
      const ROUNDS = 15, PER = 200;
      for (let r = 0; r < ROUNDS; r++) {
        const ws = Array.from({ length: PER }, (_, i) => watch(s.pc.createDataChannel(`churn${r}-${i}-${'x'.repeat(1000)}`)));
        await withTimeout(Promise.all(ws.map((w) => w.opened)), 20000, `round ${r} open`);
        // libwebrtc says "open" before sending the OPEN; wait until the
        // victim has them all, so that the churn really reaches it
        assert.ok(await until(async () => (await stats(s.tool)).channels_seen - before.channels_seen >= (r + 1) * PER, 20000),
          `round ${r}: the victim sees the channels`);
        for (const w of ws) w.dc.close();
        await withTimeout(Promise.all(ws.map((w) => w.closed)), 20000, `round ${r} close`);
      }
      const ms = Date.now() - t0;
      await sleep(300);
      const end = await stats(s.tool);
      const grew = end.rss_kb - before.rss_kb;
      figure('channel churn', `${ROUNDS * PER} channels (1 KiB labels) opened and closed in ${ms} ms; victim saw ` +
        `${end.channels_seen - before.channels_seen}, closed ${end.channels_closed - before.channels_closed}; ` +
        `RSS ${before.rss_kb} -> ${end.rss_kb} KiB (+${grew} KiB, ${(grew * 1024 / (ROUNDS * PER)).toFixed(0)} B per channel)`);
      assert.equal(end.channels_seen - before.channels_seen, ROUNDS * PER);
      assert.equal(await chatWorks(s, 'after churn'), 'after churn');
      assert.ok(grew < 64 * 1024, `RSS grew by ${grew} KiB`);
    } finally {
      await teardown(s);
    }
  });

  it(`messages larger than our a=max-message-size (${MAX_MESSAGE}): the channel is closed, memory bounded, chat keeps working`, async () => {
    // libwebrtc will not send over 256 KiB whatever we advertise, so the
    // attacker is a C peer told that we take 1 MiB (el_sctp's own ceiling)
    const s = await connectC('huge', { mungeAnswer: (sdp) => sdp.replace(/a=max-message-size:\d+/, 'a=max-message-size:1048576') });
    try {
      s.victim.send({ op: 'sink', on: true });
      const before = await stats(s.victim);
      for (const size of [MAX_MESSAGE + 1, 512 * 1024, MiB]) {
        const label = `huge${size}`;
        s.attacker.send({ op: 'channel', label });
        await s.attacker.waitFor('open', (e) => e.label === label, 10000);
        const t1 = Date.now();
        s.attacker.send({ op: 'send', label, b64: Buffer.alloc(size, 3).toString('base64url') });
        await s.attacker.waitFor('close', (e) => e.label === label, 20000);
        const ms = Date.now() - t1;
        const st = await stats(s.victim);
        figure(`one message of ${size} bytes`, `channel closed by the victim after ${ms} ms; victim RSS ${st.rss_kb} KiB (+${st.rss_kb - before.rss_kb} KiB), messages delivered ${st.messages}`);
        assert.equal(st.messages, 0, 'nothing of it was delivered');
        assert.ok(st.rss_kb - before.rss_kb < 64 * 1024, `bounded memory (+${st.rss_kb - before.rss_kb} KiB)`);
      }
      assert.match(s.victim.stderr, /exceeds 262144 bytes; closing the channel/);
      // just at the limit is delivered
      s.attacker.send({ op: 'channel', label: 'atlimit' });
      await s.attacker.waitFor('open', (e) => e.label === 'atlimit', 10000);
      s.attacker.send({ op: 'send', label: 'atlimit', b64: Buffer.alloc(MAX_MESSAGE, 4).toString('base64url') });
      assert.ok(await until(async () => (await stats(s.victim)).messages >= 1, 10000), 'the message at the limit is delivered');
      s.victim.send({ op: 'sink', on: false });
      assert.equal(await chatWorksC(s, 'after huge'), 'after huge');
    } finally {
      await teardownC(s);
    }
  });

  it('an endless stream of messages: the victim\'s memory stays bounded (SCTP window), it answers within 1 s, and chat still works', async () => {
    const s = await connect('victim(endless)');
    try {
      const w = watch(s.pc.createDataChannel('endless'));
      await withTimeout(w.opened, 10000, '"endless" open');
      s.tool.send({ op: 'sink', on: true });
      await sleep(200);
      const before = await stats(s.tool);
      const chunk = Buffer.alloc(64 * 1024, 7);
      const DURATION = 6000;
      let sent = 0;
      const t0 = Date.now();
      const rss = [];
      let maxStatsMs = 0;
      let stop = false;
      // the sender: keep libwebrtc's buffer full, as fast as it drains
      w.dc.bufferedAmountLowThreshold = 4 * MiB;
      const pump = () => {
        while (!stop && w.dc.readyState === 'open' && w.dc.bufferedAmount < 8 * MiB) {
          w.dc.send(chunk);
          sent += chunk.length;
        }
      };
      w.dc.onbufferedamountlow = pump;
      pump();
      while (Date.now() - t0 < DURATION) {
        await sleep(500);
        const q = Date.now();
        const st = await stats(s.tool, 5000);
        maxStatsMs = Math.max(maxStatsMs, Date.now() - q);
        rss.push(st.rss_kb);
        pump();
      }
      stop = true;
      const end = await stats(s.tool);
      const secs = (Date.now() - t0) / 1000;
      const peak = Math.max(...rss);
      figure('endless messages', `${(sent / MiB).toFixed(0)} MiB queued by wrtc, ${(end.bytes / MiB).toFixed(0)} MiB received in ${secs.toFixed(1)} s ` +
        `(${(end.bytes / MiB / secs).toFixed(1)} MiB/s, ${end.messages} messages); victim RSS before ${before.rss_kb} KiB, peak ${peak} KiB ` +
        `(+${peak - before.rss_kb} KiB), samples ${rss.join(' ')}; slowest stats answer ${maxStatsMs} ms`);
      assert.ok(end.bytes > 0, 'data flowed');
      assert.ok(maxStatsMs < 1000, `the victim answers within 1 s under the flood (${maxStatsMs} ms)`);
      assert.ok(peak - before.rss_kb < 64 * 1024, `RSS growth bounded (+${peak - before.rss_kb} KiB)`);
      // the second half does not grow beyond the first half's peak + 8 MiB
      const half = rss.slice(0, Math.ceil(rss.length / 2));
      assert.ok(peak <= Math.max(...half) + 8 * 1024, `RSS flat: ${rss.join(' ')}`);
      s.tool.send({ op: 'sink', on: false });
      w.dc.close();
      assert.equal(await chatWorks(s, 'after the flood'), 'after the flood');
    } finally {
      await teardown(s);
    }
  });
});
