// chromium.test.mjs - libecholink's C data channels (el_peer_tool) against
// headless Chromium (playwright-core, /usr/bin/chromium), C as offerer and as
// answerer: text, binary, 10 MiB each way verified by SHA-256, and a tampered
// DTLS fingerprint that the C side must refuse.
//
// Run inside a network namespace (netns.sh gives it a default route, without
// which Chromium gathers no candidate at all):
//   tests/harness/netns.sh run node --test --test-reporter=spec tests/interop/chromium.test.mjs
// EL_PEER_TOOL names the tool, CHROMIUM the browser (default /usr/bin/chromium).
//
// The page is about:blank; all signaling goes through page.evaluate (node ->
// page) and an exposed binding (page -> node), so no server is involved.
// about:blank opened by Playwright is NOT a secure context (isSecureContext
// false, crypto.subtle undefined; checked in the first test), so the page
// hashes with a small streaming SHA-256 of its own, itself checked against
// node:crypto on test vectors first. crypto.getRandomValues works there.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import {
  EventQueue, NETNS_ADDR, candidateAddress, candidatePort, fromB64, killAllPeerTools, sleep, startPeerTool,
  toB64, udpDrops, withTimeout,
} from '../js/lib/peertool.mjs';

const SKIP = NETNS_ADDR ? false : 'not inside a test network namespace (run through tests/harness/netns.sh)';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--disable-quic'];

const KiB = 1024;
const MiB = 1024 * KiB;
const BULK = 10 * MiB;
const CHUNK = 64 * KiB;

const timings = [];
function timing(what, value) {
  timings.push(`${what}: ${value}`);
  console.log(`# timing ${what}: ${value}`);
}

/* ---- the page side: installed into about:blank with page.evaluate ---------- */

// Runs in the page. `signal` is the exposed binding (page -> node).
function pageLib() {
  // Streaming SHA-256 (FIPS 180-4), for pages without crypto.subtle.
  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  class Sha256 {
    constructor() {
      this.h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
      this.w = new Int32Array(64);
      this.buf = new Uint8Array(64);
      this.fill = 0;
      this.length = 0;
    }

    block(p, o) {
      const w = this.w;
      const h = this.h;
      for (let j = 0; j < 16; j++, o += 4) w[j] = (p[o] << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3];
      for (let j = 16; j < 64; j++) {
        const x = w[j - 15];
        const y = w[j - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[j] = (w[j - 16] + s0 + w[j - 7] + s1) | 0;
      }
      let a = h[0]; let b = h[1]; let c = h[2]; let d = h[3];
      let e = h[4]; let f = h[5]; let g = h[6]; let k = h[7];
      for (let j = 0; j < 64; j++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[j] + w[j]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0;
        d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    }

    update(data) {
      let i = 0;
      const n = data.length;
      this.length += n;
      if (this.fill) {
        const take = Math.min(64 - this.fill, n);
        this.buf.set(data.subarray(0, take), this.fill);
        this.fill += take;
        i = take;
        if (this.fill < 64) return this;
        this.block(this.buf, 0);
        this.fill = 0;
      }
      for (; i + 64 <= n; i += 64) this.block(data, i);
      if (i < n) {
        this.buf.set(data.subarray(i), 0);
        this.fill = n - i;
      }
      return this;
    }

    hex() {
      const bits = this.length * 8;
      const pad = new Uint8Array(((this.fill < 56 ? 56 : 120) - this.fill) + 8);
      pad[0] = 0x80;
      const v = new DataView(pad.buffer);
      v.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
      v.setUint32(pad.length - 4, bits >>> 0);
      const len = this.length;
      this.update(pad);
      this.length = len;
      return Array.from(this.h, (x) => (x >>> 0).toString(16).padStart(8, '0')).join('');
    }
  }

  const b64 = (u8) => {
    let s = '';
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const unb64 = (s) => {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return u8;
  };

  const chans = new Map(); // label -> {dc, sink}
  let pc = null;

  function track(dc) {
    dc.binaryType = 'arraybuffer';
    const entry = { dc, sink: null };
    chans.set(dc.label, entry);
    const opened = () => signal({ ev: 'open', label: dc.label, id: dc.id });
    if (dc.readyState === 'open') opened();
    else dc.onopen = opened;
    dc.onclose = () => signal({ ev: 'close', label: dc.label });
    dc.onmessage = (m) => {
      const s = entry.sink;
      if (s && typeof m.data !== 'string') {
        const u8 = new Uint8Array(m.data);
        if (!s.t0) s.t0 = performance.now();
        s.hash.update(u8);
        s.bytes += u8.length;
        s.messages++;
        if (s.bytes >= s.want) {
          entry.sink = null;
          s.done({ bytes: s.bytes, messages: s.messages, sha256: s.hash.hex(), ms: performance.now() - s.t0 });
        }
        return;
      }
      if (typeof m.data === 'string') signal({ ev: 'message', label: dc.label, binary: false, text: m.data });
      else signal({ ev: 'message', label: dc.label, binary: true, b64: b64(new Uint8Array(m.data)) });
    };
    return entry;
  }

  window.EL = {
    Sha256,
    secure: () => ({ isSecureContext: window.isSecureContext, subtle: !!(window.crypto && window.crypto.subtle) }),
    sha256hex(chunksB64) {
      const h = new Sha256();
      for (const c of chunksB64) h.update(unb64(c));
      return h.hex();
    },
    newPeer() {
      pc = new RTCPeerConnection({ iceServers: [] });
      pc.onicecandidate = (e) => signal({ ev: 'candidate', candidate: e.candidate ? e.candidate.candidate : null,
        mid: e.candidate ? e.candidate.sdpMid : null });
      pc.ondatachannel = (e) => {
        track(e.channel);
        signal({ ev: 'channel', label: e.channel.label, id: e.channel.id });
      };
      pc.onconnectionstatechange = () => signal({ ev: 'state', state: pc.connectionState });
    },
    channel(label) {
      track(pc.createDataChannel(label));
    },
    async offer() {
      await pc.setLocalDescription(await pc.createOffer());
      return pc.localDescription.sdp;
    },
    async answer(sdp) {
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      return pc.localDescription.sdp;
    },
    async setAnswer(sdp) {
      await pc.setRemoteDescription({ type: 'answer', sdp });
    },
    async candidate(candidate, mid) {
      await pc.addIceCandidate({ candidate, sdpMid: mid });
    },
    send(label, msg) {
      const { dc } = chans.get(label);
      dc.send(msg.text !== undefined ? msg.text : unb64(msg.b64));
    },
    close(label) {
      chans.get(label).dc.close();
    },
    // Hashes the next `want` bytes of binary messages on label instead of
    // reporting them; resolves {bytes, messages, sha256, ms}.
    sink(label, want) {
      const entry = chans.get(label);
      return new Promise((done) => {
        entry.sink = { want, bytes: 0, messages: 0, hash: new Sha256(), t0: 0, done };
      });
    },
    // Sends `total` random bytes in `chunk`-byte binary messages, keeping
    // bufferedAmount under `high` (bufferedAmountLowThreshold = high / 4).
    async blast(label, total, chunk, high) {
      const { dc } = chans.get(label);
      dc.bufferedAmountLowThreshold = high / 4;
      const h = new Sha256();
      const t0 = performance.now();
      let sent = 0;
      let waits = 0;
      while (sent < total) {
        if (dc.bufferedAmount > high) {
          waits++;
          await new Promise((r) => { dc.onbufferedamountlow = () => { dc.onbufferedamountlow = null; r(); }; });
          continue;
        }
        const n = Math.min(chunk, total - sent);
        const u8 = crypto.getRandomValues(new Uint8Array(n));
        h.update(u8);
        dc.send(u8);
        sent += n;
      }
      const queuedMs = performance.now() - t0;
      while (dc.bufferedAmount > 0) await new Promise((r) => setTimeout(r, 5));
      return { bytes: sent, sha256: h.hex(), queuedMs, drainedMs: performance.now() - t0, waits };
    },
    async dtls() {
      const out = {};
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'transport') {
          Object.assign(out, { dtlsState: r.dtlsState, tlsVersion: r.tlsVersion, cipher: r.dtlsCipher,
            role: r.dtlsRole, selectedCandidatePairId: r.selectedCandidatePairId });
        }
      });
      out.maxMessageSize = pc.sctp ? pc.sctp.maxMessageSize : null;
      return out;
    },
    state: () => (pc ? { connection: pc.connectionState, ice: pc.iceConnectionState } : null),
    closePeer() {
      if (pc) pc.close();
      pc = null;
    },
  };
}

/* ---- node side --------------------------------------------------------------- */

/** SIGKILLs the process groups of this process's chromium children (the safety net). */
function killChromiumChildren() {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      const pgid = Number(f[2]);
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (ppid === process.pid && /chrom/.test(comm)) {
        try { process.kill(-pgid, 'SIGKILL'); } catch { process.kill(Number(d), 'SIGKILL'); }
      }
    } catch { /* gone */ }
  }
}

/** A fresh page with the library installed and its events in an EventQueue. */
async function newPage(browser, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const q = new EventQueue(name);
  page.on('console', (m) => { if (m.type() === 'error') console.log(`# [${name} console] ${m.text()}`); });
  page.on('pageerror', (e) => q.push({ ev: 'error', message: `page error: ${e.message}` }));
  page.on('crash', () => q.fail(new Error(`${name}: the page crashed`)));
  await page.exposeBinding('signal', (_src, e) => { q.push(e); });
  await page.evaluate(`(${pageLib.toString()})()`);
  return { context, page, q };
}

/** Replaces the first sha-256 fingerprint byte of an SDP with a different value. */
function tamperFingerprint(sdp) {
  const out = sdp.replace(/^(a=fingerprint:sha-256 )([0-9A-Fa-f]{2})/m,
    (_, p, byte) => p + ((parseInt(byte, 16) ^ 0xff).toString(16).padStart(2, '0').toUpperCase()));
  assert.notEqual(out, sdp, 'the SDP had a sha-256 fingerprint to tamper with');
  return out;
}

/**
 * Connects a fresh el_peer_tool with a fresh RTCPeerConnection in a fresh
 * page. cRole 'offerer': C creates "chat" and offers; 'answerer': Chromium
 * does. opts.tamper: alter Chromium's fingerprint in what the C side gets;
 * then this returns once the C side has failed (no open is awaited).
 */
async function connect(browser, cRole, opts = {}) {
  const tool = await startPeerTool({ name: `C(${cRole})` });
  let pg;
  try {
    pg = await newPage(browser, `chromium(${cRole === 'offerer' ? 'answerer' : 'offerer'})`);
  } catch (e) {
    tool.kill();
    throw e;
  }
  const { page, q } = pg;
  const res = { tool, ...pg, cCandidates: [], pCandidates: [] };
  try {
    await page.evaluate(() => window.EL.newPeer());
    let toolHasRemote = false;
    const toTool = [];
    q.subscribe('candidate', (e) => {
      if (e.candidate) res.pCandidates.push(e.candidate);
      const op = { op: 'candidate', candidate: e.candidate };
      if (toolHasRemote) tool.send(op);
      else toTool.push(op);
    });
    let pageHasRemote;
    const pageRemote = new Promise((r) => { pageHasRemote = r; });
    tool.subscribe('candidate', (e) => {
      if (!e.candidate) return;
      res.cCandidates.push(e.candidate);
      pageRemote.then(() => page.evaluate(([c, m]) => window.EL.candidate(c, m), [e.candidate, e.mid]))
        .catch((err) => { if (!page.isClosed()) console.log(`# addIceCandidate(${e.candidate}): ${err.message}`); });
    });
    const toolRemoteSet = () => {
      toolHasRemote = true;
      for (const op of toTool.splice(0)) tool.send(op);
    };
    const forC = (sdp) => (opts.tamper ? tamperFingerprint(sdp) : sdp);

    const t0 = Date.now();
    if (cRole === 'offerer') {
      tool.send({ op: 'channel', label: 'chat' });
      tool.send({ op: 'create_offer' });
      res.offer = (await tool.waitFor('offer')).sdp;
      res.answer = await page.evaluate((sdp) => window.EL.answer(sdp), res.offer);
      pageHasRemote();
      tool.send({ op: 'set_remote', type: 'answer', sdp: forC(res.answer) });
      toolRemoteSet();
    } else {
      await page.evaluate(() => window.EL.channel('chat'));
      res.offer = await page.evaluate(() => window.EL.offer());
      tool.send({ op: 'set_remote', type: 'offer', sdp: forC(res.offer) });
      toolRemoteSet();
      res.answer = (await tool.waitFor('answer')).sdp;
      await page.evaluate((sdp) => window.EL.setAnswer(sdp), res.answer);
      pageHasRemote();
    }
    if (opts.tamper) {
      res.failed = await tool.waitState('failed', 20000);
      res.failMs = Date.now() - t0;
      return res;
    }
    if (cRole === 'offerer') await q.waitFor('channel', (e) => e.label === 'chat', 15000);
    else await tool.waitFor('channel', (e) => e.label === 'chat', 15000);
    await Promise.all([
      tool.waitFor('open', (e) => e.label === 'chat', 15000),
      q.waitFor('open', (e) => e.label === 'chat', 15000),
    ]);
    res.setupMs = Date.now() - t0;
    return res;
  } catch (e) {
    await teardown(res);
    throw e;
  }
}

async function teardown(res) {
  if (!res) return;
  try {
    if (!res.page.isClosed()) await withTimeout(res.page.evaluate(() => window.EL && window.EL.closePeer()), 5000, 'closePeer');
  } catch { /* the page is gone */ }
  await withTimeout(res.context.close(), 10000, 'context.close').catch(() => {});
  await res.tool.quit().catch(() => res.tool.kill());
}

/** Polls the tool's digest of label until `bytes` arrived; returns the report. */
async function digestWhen(tool, label, bytes, ms) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    tool.send({ op: 'digest', label });
    last = await tool.waitFor('digest', (e) => e.label === label, 5000);
    if (last.bytes >= bytes) return last;
    await sleep(20);
  }
  throw new Error(`C side digest of '${label}': ${last ? last.bytes : 0} of ${bytes} bytes after ${ms} ms`);
}

describe('C el_peer <-> headless Chromium', { skip: SKIP }, () => {
  let chromium;
  let browser;

  before(async () => {
    ({ chromium } = await import('playwright-core'));
    const t0 = Date.now();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
    timing(`Chromium ${browser.version()} launch`, `${Date.now() - t0} ms`);
  });

  after(async () => {
    if (browser) await withTimeout(browser.close(), 15000, 'browser.close').catch((e) => console.log(`# ${e.message}`));
    killChromiumChildren();
    killAllPeerTools();
    if (timings.length) console.log(`# timings:\n#   ${timings.join('\n#   ')}`);
  });

  it('the page: about:blank is not a secure context; its SHA-256 matches node:crypto', async () => {
    const { context, page } = await newPage(browser, 'sha-check');
    try {
      const sec = await page.evaluate(() => window.EL.secure());
      console.log(`# observed: about:blank isSecureContext=${sec.isSecureContext} crypto.subtle=${sec.subtle}`);
      const vectors = [Buffer.alloc(0), Buffer.from('abc'), Buffer.alloc(55, 1), Buffer.alloc(56, 2),
        Buffer.alloc(63, 3), Buffer.alloc(64, 4), Buffer.alloc(65, 5), randomBytes(200000)];
      for (const v of vectors) {
        // odd chunking to exercise the streaming buffer
        const chunks = [];
        for (let i = 0; i < v.length; i += 977) chunks.push(toB64(v.subarray(i, i + 977)));
        const got = await page.evaluate((c) => window.EL.sha256hex(c), chunks);
        assert.equal(got, createHash('sha256').update(v).digest('hex'), `${v.length} bytes`);
      }
    } finally {
      await context.close();
    }
  });

  for (const cRole of ['offerer', 'answerer']) {
    describe(`C as ${cRole}, Chromium as ${cRole === 'offerer' ? 'answerer' : 'offerer'}`, () => {
      let s;
      before(async () => {
        s = await connect(browser, cRole);
        timing(`Chromium, C ${cRole}: offer -> both "chat" open`, `${s.setupMs} ms`);
      });
      after(async () => { await teardown(s); });

      it('uses real namespace addresses, DTLS as negotiated', async () => {
        assert.ok(s.cCandidates.length > 0);
        for (const c of s.cCandidates) assert.equal(candidateAddress(c), NETNS_ADDR, c);
        assert.ok(s.pCandidates.length > 0, 'Chromium gathered candidates (needs the default route)');
        for (const c of s.pCandidates) {
          assert.doesNotMatch(candidateAddress(c), /\.local$/, 'mDNS candidates are off');
        }
        assert.ok(s.pCandidates.some((c) => candidateAddress(c) === NETNS_ADDR), s.pCandidates.join(' | '));
        const d = await s.page.evaluate(() => window.EL.dtls());
        console.log(`# observed: Chromium, C ${cRole}: ${JSON.stringify(d)}`);
        assert.equal(d.dtlsState, 'connected');
        assert.equal(d.role, cRole === 'offerer' ? 'client' : 'server', 'the answerer is the DTLS client');
        assert.equal(d.maxMessageSize, 256 * KiB, "Chromium took the C side's a=max-message-size");
      });

      it('text both ways: plain, UTF-8, empty and 64 KiB', { timeout: 30000 }, async () => {
        const texts = ['hello', 'h\u00e9llo \u2713 \ud83d\ude00', '', 'y'.repeat(64 * KiB)];
        for (const t of texts) s.tool.send({ op: 'send', label: 'chat', text: t });
        const got = await s.q.collect('message', texts.length, (e) => e.label === 'chat');
        assert.deepEqual(got.map((e) => [e.binary, e.text]), texts.map((t) => [false, t]));
        for (const t of texts) await s.page.evaluate(([x]) => window.EL.send('chat', { text: x }), [t]);
        const cgot = await s.tool.collect('message', texts.length, (e) => e.label === 'chat');
        assert.deepEqual(cgot.map((e) => [e.binary, e.text]), texts.map((t) => [false, t]));
      });

      it('binary both ways: empty, 1 B and 64 KiB', { timeout: 30000 }, async () => {
        const bufs = [0, 1, 64 * KiB].map((n) => randomBytes(n));
        for (const b of bufs) s.tool.send({ op: 'send', label: 'chat', b64: toB64(b) });
        const got = await s.q.collect('message', bufs.length, (e) => e.label === 'chat');
        for (let i = 0; i < bufs.length; i++) {
          assert.equal(got[i].binary, true, `C->Chromium #${i} binary`);
          assert.ok(fromB64(got[i].b64).equals(bufs[i]), `C->Chromium #${i}: ${fromB64(got[i].b64).length} of ${bufs[i].length} B`);
        }
        for (const b of bufs) await s.page.evaluate((x) => window.EL.send('chat', { b64: x }), toB64(b));
        const cgot = await s.tool.collect('message', bufs.length, (e) => e.label === 'chat');
        for (let i = 0; i < bufs.length; i++) {
          assert.equal(cgot[i].binary, true, `Chromium->C #${i} binary`);
          assert.ok(fromB64(cgot[i].b64).equals(bufs[i]), `Chromium->C #${i}`);
        }
      });

      it('10 MiB Chromium -> C in 64 KiB messages, SHA-256 verified', { timeout: 120000 }, async () => {
        s.tool.send({ op: 'digest', label: 'chat' }); // hash "chat" from now on
        const zero = await digestWhen(s.tool, 'chat', 0, 5000);
        assert.equal(zero.bytes, 0);
        const port = candidatePort(s.cCandidates[0]);
        const drops0 = udpDrops(port);
        const t0 = Date.now();
        const sent = await withTimeout(
          s.page.evaluate(([n, c, hw]) => window.EL.blast('chat', n, c, hw), [BULK, CHUNK, 4 * MiB]),
          90000, 'the page to send 10 MiB');
        const got = await digestWhen(s.tool, 'chat', BULK, 90000);
        const ms = Date.now() - t0;
        timing(`Chromium -> C, C ${cRole}: 10 MiB`, `${ms} ms = ${(BULK / MiB / (ms / 1000)).toFixed(1)} MiB/s ` +
          `(page queued in ${sent.queuedMs.toFixed(0)} ms, ${sent.waits} backpressure waits; ` +
          `C's UDP socket dropped ${udpDrops(port) - drops0} datagrams)`);
        assert.equal(got.bytes, BULK);
        assert.equal(got.messages, BULK / CHUNK, 'message boundaries kept');
        assert.equal(got.sha256, sent.sha256);
      });

      it('10 MiB C -> Chromium (blast), SHA-256 verified', { timeout: 120000 }, async () => {
        // "chat" at the C side is in digest mode now; blast still sends on it.
        const done = s.page.evaluate(([n]) => window.EL.sink('chat', n), [BULK]);
        await s.page.evaluate(() => 0); // the sink is installed before the first byte
        const t0 = Date.now();
        s.tool.send({ op: 'blast', label: 'chat', bytes: BULK, chunk: CHUNK });
        const blasted = await s.tool.waitFor('blasted', (e) => e.label === 'chat', 90000);
        const got = await withTimeout(done, 90000, 'the page to receive 10 MiB');
        const ms = Date.now() - t0;
        timing(`C -> Chromium, C ${cRole}: 10 MiB`, `${ms} ms = ${(BULK / MiB / (ms / 1000)).toFixed(1)} MiB/s ` +
          `(C queued all in ${blasted.t - t0} ms; page first->last message ${got.ms.toFixed(0)} ms)`);
        assert.equal(blasted.bytes, BULK);
        assert.equal(got.bytes, BULK);
        assert.equal(got.messages, BULK / CHUNK, 'message boundaries kept');
        assert.equal(got.sha256, blasted.sha256);
      });

      // The C side judges the path by what it hears (src/rtc/ice.h
      // silence_ms, 6 s): its SCTP heartbeats, answered by Chromium's SCTP,
      // keep an idle connection connected past that.
      it('an idle connection stays connected past the C side\'s silence limit', { skip: cRole !== 'offerer', timeout: 30000 }, async () => {
        const from = s.tool.events.length;
        await sleep(8000);
        const states = s.tool.events.slice(from).filter((e) => e.ev === 'state');
        assert.deepEqual(states, [], 'no state change while idle');
        assert.equal((await s.page.evaluate(() => window.EL.dtls())).dtlsState, 'connected');
        s.tool.send({ op: 'send', label: 'chat', text: 'after the pause' });
        const m = await s.q.waitFor('message', (e) => e.label === 'chat' && e.text === 'after the pause', 5000);
        assert.equal(m.text, 'after the pause');
      });

      it('closing "chat" at Chromium reaches C; a new channel from C still works', { timeout: 30000 }, async () => {
        await s.page.evaluate(() => window.EL.close('chat'));
        await s.tool.waitFor('close', (e) => e.label === 'chat', 10000);
        await s.q.waitFor('close', (e) => e.label === 'chat', 10000);
        s.tool.send({ op: 'channel', label: 'after' });
        await s.q.waitFor('channel', (e) => e.label === 'after', 10000);
        await s.tool.waitFor('open', (e) => e.label === 'after', 10000);
        s.tool.send({ op: 'send', label: 'after', text: 'still here' });
        const m = await s.q.waitFor('message', (e) => e.label === 'after', 10000);
        assert.equal(m.text, 'still here');
        s.tool.send({ op: 'close_channel', label: 'after' });
        await s.q.waitFor('close', (e) => e.label === 'after', 10000);
        await s.tool.waitFor('close', (e) => e.label === 'after', 10000);
      });
    });
  }

  for (const cRole of ['offerer', 'answerer']) {
    const what = cRole === 'offerer' ? 'answer' : 'offer';
    it(`a tampered fingerprint in Chromium's ${what} fails the C side with "fingerprint"`, { timeout: 40000 }, async () => {
      let s;
      try {
        s = await connect(browser, cRole, { tamper: true });
        timing(`Chromium tampered ${what}, C ${cRole}: offer -> C failed`, `${s.failMs} ms`);
        assert.match(s.failed.why || '', /fingerprint/i, `why: ${s.failed.why}`);
        console.log(`# observed: C state failed: ${s.failed.why}`);
        assert.equal(s.tool.peek('open').length, 0, 'no channel opened at the C side');
        // The C side sends close_notify when it refuses: Chromium's DTLS
        // transport must learn of it (its connectionState stays "connected":
        // Chromium does not fold a closed DTLS transport into it).
        const seen = [];
        const t0 = Date.now();
        let st;
        do {
          st = { ...(await s.page.evaluate(() => window.EL.state())), ...(await s.page.evaluate(() => window.EL.dtls())) };
          const k = `${st.connection}/${st.ice}/dtls ${st.dtlsState}`;
          if (!seen.length || seen[seen.length - 1].k !== k) seen.push({ k, ms: Date.now() - t0 });
          if (st.dtlsState === 'closed' || st.dtlsState === 'failed') break;
          await sleep(50);
        } while (Date.now() - t0 < 5000);
        console.log(`# observed: Chromium (connection/ice/dtls) after the C side refused: ${seen.map((x) => `+${x.ms}ms ${x.k}`).join(', ')}`);
        assert.match(st.dtlsState, /^(closed|failed)$/, "Chromium's DTLS transport saw the refusal");
        assert.equal(s.q.peek('open').length, 0, 'no channel opened in Chromium');
      } finally {
        await teardown(s);
      }
    });
  }
});
