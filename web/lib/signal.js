// signal.js - the signaling client of the web client (docs/PROTOCOL.md
// §1-§7), the browser's src/client/signal.c: socket.io-client (the real
// one, served by echolinkd from web/vendor) over WebSocket only, the §3
// challenge/login, acks with timeouts, and reconnection with backoff.
//
//   const sig = new Signal({ url, identity, bundle, name, onState, onLogin });
//   (url may be a list: tried in turn, like the C client's repeated --server;
//   an attempt that fails before its login moves on to the next one)
//   sig.on('online_users', (arg) => ...);
//   sig.start();
//   const ack = await sig.emit('get_contacts', {});   // {ok, ...} or {ok:false, error}
//
// States (onState({state, reason?, retry_ms?}) reports every change), as
// signal.h: 'connecting' -> 'connected' (Socket.IO CONNECT) -> 'online'
// (logged in); any failure -> 'offline' with the delay before the next try;
// 'stopped' after stop() or a session_closed "replaced" (this identity
// logged in elsewhere: socket.io-client does not reconnect then, and we do
// not either). Other server DISCONNECTs (login_timeout, flood) and failed
// logins reconnect with backoff, like transport losses.
//
// Events emitted while not logged in wait in a queue (at most QUEUE_MAX)
// and go, in order, right after the next login. Every emit resolves exactly
// once: the server's ack, or {ok:false, error:'timeout'} (ACK_TIMEOUT_MS
// after the emit, queued time included), 'disconnected' (sent, and the
// connection died before the ack) or 'cancelled' (stop()).

import { io } from '../vendor/socket.io-client/socket.io.esm.min.js';
import { signLogin } from './identity.js';

export const ACK_TIMEOUT_MS = 20000;
export const QUEUE_MAX = 1024;
export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 30000;

export class Signal {
  #opts;
  #socket = null;
  #handlers = new Map();   // event -> Set<fn>
  #queue = [];             // {event, arg, settle} waiting for a login
  #pending = new Set();    // settle functions of sent events awaiting an ack
  #fails = 0;              // failed attempts since the last login
  #retry = null;
  #stopped = false;
  #urls = [];
  #urlIdx = 0;
  #rotate = false;         // the last attempt failed before its login
  state = 'idle';
  loggedIn = false;

  /** opts: {url (http(s):// or ws(s)://, or a list of them), identity,
   *  bundle ({ik,sk,sk_sig}), name?, onState(info), onLogin(ack),
   *  ackTimeoutMs?, log?} */
  constructor(opts) {
    this.#opts = { ackTimeoutMs: ACK_TIMEOUT_MS, log: () => {}, ...opts };
    this.#urls = (Array.isArray(opts.url) ? opts.url : [opts.url]).filter((u) => typeof u === 'string' && u);
    if (!this.#urls.length) throw new Error('Signal: no server URL');
  }

  /** The server URL in use (or tried next). */
  get url() {
    return this.#urls[this.#urlIdx];
  }

  #setState(state, extra = {}) {
    if (state !== 'online') this.loggedIn = false;
    if (this.state === state && state !== 'offline') return;
    this.state = state;
    this.#opts.onState?.({ state, ...extra });
  }

  #backoff() {
    const n = Math.max(0, this.#fails - 1);
    const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(n, 16));
    return Math.min(BACKOFF_MAX_MS, Math.round(ms * (0.7 + 0.6 * Math.random())));
  }

  /** Connects (and keeps reconnecting) until stop(). */
  start() {
    if (this.#socket || this.#stopped) return;
    this.#open();
    this.#connect();
  }

  /** A socket for the current URL (socket.io binds one to its URL). */
  #open() {
    const url = this.url.replace(/^http/, 'ws');
    // our own reconnection (signal.h's rules) instead of the Manager's:
    // it also covers server DISCONNECTs and failed logins
    const s = io(url, { transports: ['websocket'], reconnection: false, timeout: 20000, autoConnect: false, forceNew: true });
    this.#socket = s;
    s.on('connect', () => this.#setState('connected'));
    s.on('connect_error', (e) => this.#lost(`cannot connect: ${e.message}`));
    s.on('disconnect', (reason) => this.#lost(reason));
    s.on('challenge', (c) => this.#login(c));
    s.on('session_closed', (arg) => {
      if (arg && arg.reason === 'replaced') this.#stop('replaced: this identity logged in elsewhere');
    });
    s.onAny((event, arg) => {
      for (const fn of this.#handlers.get(event) || []) {
        try {
          fn(arg, event);
        } catch (e) {
          this.#opts.log(`signal: handler of ${event} failed: ${e.stack || e}`);
        }
      }
    });
  }

  #connect() {
    this.#retry = null;
    if (this.#stopped) return;
    if (this.#rotate && this.#urls.length > 1) {
      // this server did not work out: the next one, on a socket of its own
      const old = this.#socket;
      old.removeAllListeners();
      old.offAny();
      old.disconnect();
      this.#urlIdx = (this.#urlIdx + 1) % this.#urls.length;
      this.#open();
    }
    this.#rotate = false;
    this.#setState('connecting', { url: this.url });
    this.#socket.connect();
  }

  #lost(reason) {
    if (this.#stopped) return;
    for (const settle of [...this.#pending]) settle({ ok: false, error: 'disconnected' });
    if (this.#retry) return;
    this.#rotate = !this.loggedIn;
    this.#fails++;
    const retryMs = this.#backoff();
    this.#retry = setTimeout(() => this.#connect(), retryMs);
    if (this.#socket.connected) this.#socket.disconnect();
    this.#setState('offline', { reason: String(reason), retry_ms: retryMs });
  }

  async #login(challenge) {
    const s = this.#socket;
    let sig;
    try {
      sig = await signLogin(this.#opts.identity, challenge.nonce, challenge.sid ?? s.id);
    } catch (e) {
      this.#lost(`bad challenge: ${e.message}`);
      return;
    }
    const arg = { ...this.#opts.bundle, sig };
    if (this.#opts.name) arg.name = this.#opts.name;
    s.timeout(this.#opts.ackTimeoutMs).emit('login', arg, (err, ack) => {
      if (err || !ack || ack.ok !== true) {
        this.#lost(`login failed: ${err ? 'no answer' : ack?.message || ack?.error || 'no ack'}`);
        return;
      }
      this.#fails = 0;
      this.loggedIn = true;
      this.#setState('online');
      this.#opts.onLogin?.(ack);
      for (const q of this.#queue.splice(0)) this.#send(q.event, q.arg, q.settle);
    });
  }

  #send(event, arg, settle) {
    this.#pending.add(settle);
    this.#socket.emit(event, arg, (ack) => settle(ack && typeof ack === 'object' ? ack : { ok: false, error: 'bad_ack' }));
  }

  /** Registers fn(arg, event) for a server event; returns an unsubscribe. */
  on(event, fn) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(fn);
    return () => this.#handlers.get(event)?.delete(fn);
  }

  /** Emits one event with its ack; resolves with the ack object (see the
   *  top of this file). timeoutMs overrides the ack timeout. */
  emit(event, arg, { timeoutMs } = {}) {
    return new Promise((resolve) => {
      let done = false;
      let timer = null;
      const entry = { event, arg };
      const settle = (ack) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#pending.delete(settle);
        const i = this.#queue.indexOf(entry);
        if (i >= 0) this.#queue.splice(i, 1);
        resolve(ack);
      };
      entry.settle = settle;
      if (this.#stopped) {
        settle({ ok: false, error: 'cancelled' });
        return;
      }
      timer = setTimeout(() => settle({ ok: false, error: 'timeout' }), timeoutMs ?? this.#opts.ackTimeoutMs);
      if (this.loggedIn && this.#socket?.connected) {
        this.#send(event, arg, settle);
      } else if (this.#queue.length >= QUEUE_MAX) {
        settle({ ok: false, error: 'quota', message: 'too many events waiting for the server' });
      } else {
        this.#queue.push(entry);
      }
    });
  }

  #stop(reason) {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#retry = null;
    for (const settle of [...this.#pending]) settle({ ok: false, error: 'cancelled' });
    for (const q of this.#queue.splice(0)) q.settle({ ok: false, error: 'cancelled' });
    this.#socket?.disconnect();
    this.#setState('stopped', reason ? { reason } : {});
  }

  /** Disconnects for good; pending emits resolve 'cancelled'. */
  stop() {
    this.#stop(null);
  }
}
