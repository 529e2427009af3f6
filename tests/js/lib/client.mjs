// client.mjs - real socket.io-client connections that log in to echolinkd.
//
// connectClient() opens a socket.io-client Socket (its own Manager), answers
// EVERY `challenge` (so a reconnection logs in again by itself), and records
// every event the server sends, so a test can wait for an event that already
// arrived (e.g. `online_users`, sent right after the login ack).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { io } from 'socket.io-client';

import { startServer } from './server.mjs';

import * as id from '../../../web/lib/identity.js';

export { id };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Races `promise` against a timer; rejects with `what` on timeout. */
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** A fresh identity with its bundle and peer ID. */
export async function makeIdentity() {
  const identity = await id.generateIdentity();
  return { identity, bundle: await id.bundleOf(identity), peerId: await id.peerIdOf(identity) };
}

export class Client {
  constructor(socket, who, opts) {
    this.socket = socket;
    this.identity = who.identity;
    this.bundle = who.bundle;
    this.peerId = who.peerId;
    this.label = opts.label || who.peerId.slice(0, 8);
    this.autoLogin = opts.login !== false;
    this.name = opts.name;
    this.events = [];      // {name, arg, args, at, consumed}
    this.waiters = [];     // {name, pred, resolve, reject, timer}
    this.challenges = [];
    this.logins = [];      // login acks, in order
    this.loginWaiters = [];
    this.connects = 0;
    this.disconnects = []; // reasons
    this.openTransports = []; // Engine.IO transport at each (re)open
    socket.io.on('open', () => this.openTransports.push(socket.io.engine.transport.name));
    socket.onAny((name, ...args) => this._push(name, args));
    socket.on('connect', () => { this.connects++; this._push('$connect', [socket.id]); });
    socket.on('disconnect', (reason, details) => {
      this.disconnects.push(reason);
      this._push('$disconnect', [reason, details]);
    });
    socket.on('connect_error', (err) => this._push('$connect_error', [err && err.message]));
    socket.on('challenge', (ch) => {
      this.challenges.push(ch);
      if (this.autoLogin) this.login(ch).catch(() => { /* recorded in this.logins */ });
    });
  }

  _push(name, args) {
    const e = { name, arg: args[0], args, at: Date.now(), consumed: false };
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (!e.consumed && w.name === name && w.pred(e.arg, e)) {
        e.consumed = true;
        this._dropWaiter(w);
        w.resolve(e.arg);
      }
    }
  }

  _dropWaiter(w) {
    clearTimeout(w.timer);
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  /** Index to pass as `since` to only consider later events. */
  mark() {
    return this.events.length;
  }

  /** The first not yet consumed event `name` (from index `since`) matching
   *  pred, now or within `timeout` ms; consumes it. Resolves its argument. */
  waitFor(name, pred = () => true, { timeout = 5000, since = 0 } = {}) {
    for (let i = since; i < this.events.length; i++) {
      const e = this.events[i];
      if (!e.consumed && e.name === name && pred(e.arg, e)) {
        e.consumed = true;
        return Promise.resolve(e.arg);
      }
    }
    return new Promise((resolve, reject) => {
      const w = { name, resolve, reject, pred: (arg, e) => this.events.indexOf(e) >= since && pred(arg, e) };
      w.timer = setTimeout(() => {
        this._dropWaiter(w);
        reject(new Error(`${this.label}: no '${name}' event within ${timeout} ms ` +
          `(got: ${this.events.slice(since).map((x) => x.name).join(', ') || 'nothing'})`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  /** All events `name` (consumed or not) since `since` that match pred. */
  all(name, pred = () => true, since = 0) {
    return this.events.slice(since).filter((e) => e.name === name && pred(e.arg, e)).map((e) => e.arg);
  }

  /** Waits `ms`, then asserts that no event `name` matching pred arrived
   *  since `since` (default: now). */
  async expectNone(name, pred = () => true, { ms = 400, since } = {}) {
    const from = since ?? this.mark();
    await sleep(ms);
    const got = this.all(name, pred, from);
    assert.equal(got.length, 0, `${this.label}: unexpected '${name}': ${JSON.stringify(got).slice(0, 500)}`);
  }

  /** Emits with an ack; resolves the ack (rejects after `timeout` ms). */
  emitAck(name, arg = {}, timeout = 5000) {
    return this.socket.timeout(timeout).emitWithAck(name, arg);
  }

  /** Answers challenge `ch` (default: the latest) with this identity. */
  async login(ch = this.challenges[this.challenges.length - 1], extra = {}) {
    const sig = await id.signLogin(this.identity, ch.nonce, ch.sid);
    const arg = { ...this.bundle, sig, ...extra };
    if (this.name !== undefined && !('name' in extra)) arg.name = this.name;
    let ack;
    try {
      ack = await this.emitAck('login', arg, 8000);
    } catch (e) {
      ack = { ok: false, error: 'client_timeout', message: String(e) };
    }
    this.logins.push(ack);
    for (const w of [...this.loginWaiters]) {
      if (this.logins.length >= w.n) {
        this.loginWaiters.splice(this.loginWaiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(this.logins[w.n - 1]);
      }
    }
    return ack;
  }

  /** Resolves the n-th login ack (1-based) once it exists. */
  waitLogin(n = 1, timeout = 8000) {
    if (this.logins.length >= n) return Promise.resolve(this.logins[n - 1]);
    return new Promise((resolve, reject) => {
      const w = { n, resolve };
      w.timer = setTimeout(() => {
        this.loginWaiters.splice(this.loginWaiters.indexOf(w), 1);
        reject(new Error(`${this.label}: login #${n} did not happen within ${timeout} ms ` +
          `(logins so far: ${JSON.stringify(this.logins)})`));
      }, timeout);
      this.loginWaiters.push(w);
    });
  }

  get connected() {
    return this.socket.connected;
  }

  get transport() {
    return this.socket.io.engine && this.socket.io.engine.transport && this.socket.io.engine.transport.name;
  }

  close() {
    for (const w of [...this.waiters]) {
      this._dropWaiter(w);
      w.reject(new Error(`${this.label}: closed`));
    }
    this.socket.disconnect();
    this.socket.io.engine?.close();
  }
}

/**
 * Connects to `url` and (unless login:false) logs in.
 * opts: who (from makeIdentity, default a new one), identity (raw identity),
 *       transports (e.g. ['websocket']), login, name, label,
 *       io (extra socket.io-client options), timeout.
 */
export async function connectClient(url, opts = {}) {
  let who = opts.who;
  if (!who && opts.identity) {
    who = { identity: opts.identity, bundle: await id.bundleOf(opts.identity), peerId: await id.peerIdOf(opts.identity) };
  }
  if (!who) who = await makeIdentity();
  const socket = io(url, {
    forceNew: true,
    transports: opts.transports,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: 5000,
    ...(opts.io || {}),
  });
  const c = new Client(socket, who, opts);
  const timeout = opts.timeout || 10000;
  try {
    await c.waitFor('challenge', () => true, { timeout });
    if (c.autoLogin) {
      const ack = await c.waitLogin(1, timeout);
      assert.equal(ack.ok, true, `${c.label}: login failed: ${JSON.stringify(ack)}`);
      assert.equal(ack.peer_id, c.peerId, 'login ack peer_id is the peer ID of ik');
    }
  } catch (e) {
    c.close();
    throw e;
  }
  return c;
}

/** Makes a and b contacts (a asks, b accepts) and waits for both sides. */
export async function makeContacts(a, b) {
  const sa = a.mark(), sb = b.mark();
  const r1 = await a.emitAck('contact_request', { to: b.peerId, message: 'hello' });
  assert.deepEqual(r1, { ok: true }, 'contact_request ack');
  await b.waitFor('contact_request', (r) => r.from && r.from.peer_id === a.peerId, { since: sb });
  const r2 = await b.emitAck('contact_respond', { peer_id: a.peerId, accept: true });
  assert.deepEqual(r2, { ok: true }, 'contact_respond ack');
  await a.waitFor('contact_added', (p) => p.peer_id === b.peerId, { since: sa });
  await b.waitFor('contact_added', (p) => p.peer_id === a.peerId, { since: sb });
}

/** Asserts that `p` is the peer object of client `c` (docs/PROTOCOL.md §4). */
export function assertPeerObject(p, c, { online } = {}) {
  assert.ok(p && typeof p === 'object', 'peer object');
  assert.equal(p.peer_id, c.peerId);
  assert.equal(p.ik, c.bundle.ik, 'ik');
  assert.equal(p.sk, c.bundle.sk, 'sk');
  assert.equal(p.sk_sig, c.bundle.sk_sig, 'sk_sig');
  assert.equal(typeof p.has_avatar, 'boolean', 'has_avatar');
  assert.ok('name' in p, 'name present (null when unset)');
  assert.equal(typeof p.online, 'boolean', 'online');
  if (online !== undefined) assert.equal(p.online, online, 'online');
}

/** Closes every client given, ignoring errors (for after hooks). */
export function closeAll(...clients) {
  for (const c of clients.flat()) {
    try { c && c.close(); } catch { /* ignore */ }
  }
}

/** A valid-looking peer ID of a user that never logged in. */
export async function strangerPeerId() {
  return (await makeIdentity()).peerId;
}

/**
 * Call inside a describe(): starts an echolinkd before its tests (with
 * serverOpts, as startServer takes them) and, after them, closes every client
 * made through fx.client() and stops the server. fx.srv is the server.
 */
export function useServer(serverOpts) {
  const fx = { srv: null, clients: [] };
  fx.client = async (opts = {}) => {
    const c = await connectClient(fx.srv.url, opts);
    fx.clients.push(c);
    return c;
  };
  before(async () => { fx.srv = await startServer(serverOpts); });
  after(async () => {
    closeAll(fx.clients);
    await fx.srv?.cleanup();
  });
  return fx;
}
