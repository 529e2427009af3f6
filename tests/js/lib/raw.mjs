// raw.mjs - hand-made Engine.IO / Socket.IO traffic and plain HTTP, for the
// tests that must send bytes socket.io-client never would.
import http from 'node:http';
import WebSocket from 'ws';

import * as id from '../../../web/lib/identity.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One HTTP request with the path sent exactly as given (no normalisation).
 *  localAddress: the source address (127.x.y.z). Resolves {status, headers, body: Buffer}. */
export function httpRequest(port, path, { method = 'GET', headers = {}, body, timeout = 5000, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`HTTP ${method} ${path}: timeout after ${timeout} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export async function healthz(port) {
  const r = await httpRequest(port, '/healthz');
  return { status: r.status, body: r.body.toString('utf8') };
}

/** A raw WebSocket speaking Engine.IO v4 by hand. Answers pings. */
export class RawWs {
  /** opts.localAddress: the source address (a 127.x.y.z, so that
   *  per-address limits see distinct clients). */
  static open(port, query = 'EIO=4&transport=websocket', path = '/socket.io/', opts = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?${query}`,
        opts.localAddress ? { localAddress: opts.localAddress } : undefined);
      const raw = new RawWs(ws);
      const timer = setTimeout(() => { ws.terminate(); reject(new Error('raw ws: open timeout')); }, 5000);
      ws.once('open', () => { clearTimeout(timer); resolve(raw); });
      ws.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.frames = []; // {text, binary, consumed}
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => { /* reported through close */ });
    ws.on('message', (data, isBinary) => {
      const f = { text: isBinary ? null : data.toString('utf8'), data, binary: isBinary, consumed: false };
      if (f.text === '2') this.send('3');
      this.frames.push(f);
      for (const w of [...this.waiters]) {
        if (!f.consumed && w.pred(f)) {
          f.consumed = true;
          clearTimeout(w.timer);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    });
  }

  send(data, opts) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, opts);
  }

  /** The first unconsumed frame matching pred (text frames: f.text). */
  waitFrame(pred, timeout = 5000, what = 'frame') {
    const hit = this.frames.find((f) => !f.consumed && pred(f));
    if (hit) {
      hit.consumed = true;
      return Promise.resolve(hit);
    }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`raw ws: no ${what} within ${timeout} ms (frames: ${JSON.stringify(this.frames.map((f) => f.text)).slice(0, 800)})`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  /** Waits for the Socket.IO event `name` (42["name",...]); resolves its argument. */
  async waitEvent(name, timeout = 5000) {
    const prefix = `42["${name}"`;
    const f = await this.waitFrame((x) => x.text && x.text.startsWith(prefix), timeout, `event ${name}`);
    return JSON.parse(f.text.slice(2))[1];
  }

  /** Waits for the ack with id n (43n[...]); resolves its first argument. */
  async waitAck(n, timeout = 5000) {
    const prefix = `43${n}[`;
    const f = await this.waitFrame((x) => x.text && x.text.startsWith(prefix), timeout, `ack ${n}`);
    return JSON.parse(f.text.slice(prefix.length - 1))[0];
  }

  /** Engine.IO open, Socket.IO CONNECT to "/", and the challenge. */
  async connect() {
    await this.waitFrame((f) => f.text && f.text.startsWith('0{'), 5000, 'Engine.IO open');
    this.send('40');
    const c = await this.waitFrame((f) => f.text && f.text.startsWith('40{'), 5000, 'CONNECT reply');
    this.sid = JSON.parse(c.text.slice(2)).sid;
    this.challenge = await this.waitEvent('challenge');
    return this.challenge;
  }

  /** Logs in with identity (answering the challenge); resolves the ack. */
  async login(identity, ackId = 900) {
    const bundle = await id.bundleOf(identity);
    const sig = await id.signLogin(identity, this.challenge.nonce, this.challenge.sid);
    this.send(`42${ackId}${JSON.stringify(['login', { ...bundle, sig }])}`);
    return this.waitAck(ackId);
  }

  /** Resolves {code, reason} once closed, or null after `timeout` ms. */
  async waitClosed(timeout = 5000) {
    return Promise.race([this.closed, sleep(timeout).then(() => null)]);
  }

  close() {
    try { this.ws.terminate(); } catch { /* ignore */ }
  }
}

/** Engine.IO long-polling by hand. */
export class RawPolling {
  static async open(port) {
    const r = await httpRequest(port, '/socket.io/?EIO=4&transport=polling');
    if (r.status !== 200) throw new Error(`polling handshake: HTTP ${r.status} ${r.body}`);
    const open = JSON.parse(r.body.toString('utf8').slice(1));
    const p = new RawPolling(port, open.sid);
    p.open = open;
    return p;
  }

  constructor(port, sid) {
    this.port = port;
    this.sid = sid;
  }

  get path() {
    return `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(this.sid)}`;
  }

  /** POSTs a payload (string or Buffer); resolves {status, body}. */
  async post(body) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const r = await httpRequest(this.port, this.path, {
      method: 'POST', body: buf,
      headers: { 'content-type': 'text/plain;charset=UTF-8', 'content-length': buf.length },
    });
    return { status: r.status, body: r.body.toString('utf8') };
  }

  /** One GET poll; resolves {status, packets: [string]}. */
  async poll(timeout = 5000) {
    const r = await httpRequest(this.port, this.path, { timeout });
    return { status: r.status, packets: r.status === 200 ? r.body.toString('utf8').split('\x1e') : [], body: r.body.toString('utf8') };
  }

  /** Polls until a packet matching pred arrives (answering pings). */
  async pollFor(pred, timeout = 5000) {
    const deadline = Date.now() + timeout;
    const seen = [];
    while (Date.now() < deadline) {
      const r = await this.poll(Math.max(500, deadline - Date.now()));
      if (r.status !== 200) return { status: r.status, packet: null, seen };
      for (const p of r.packets) {
        seen.push(p);
        if (p === '2') await this.post('3');
        if (pred(p)) return { status: 200, packet: p, seen };
        if (p === '1') return { status: 200, packet: null, closed: true, seen };
      }
    }
    throw new Error(`polling: nothing matching within ${timeout} ms (seen ${JSON.stringify(seen).slice(0, 500)})`);
  }
}
