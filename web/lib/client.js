// client.js - the messenger core of the web client: the browser's
// src/client/session.c (+ session_file.c, session_group.c) and
// apps/echolink/app.c, so that browser and terminal users interoperate
// byte for byte (docs/PROTOCOL.md §12). The contract with the UI is
// /work/tmp/web-api.md, summed up:
//
//   const client = await Client.open({ server: location.origin, dbName: 'echolink' });
//   if (client.needsSetup) await client.setup({ name: 'alice' });
//   client.on((ev) => ...);            // the JSON events of src/client/session.h
//   await client.start();              // signaling + login
//   await client.request({ cmd: 'send', to: 'p:<peer>', text: 'hi' });  // app.c's commands
//   client.close();
//
// - Every message the user sends is written to the outbox (db.js) together
//   with its history row, before anything goes on the wire, and stays there
//   until the recipient's DELIVERY_RECEIPT; a ready connection sends the
//   whole outbox in order (again every RETRANSMIT_MS while rows remain, and
//   on every new connection). Receivers de-duplicate by (author, id) and
//   receipt duplicates again: each message is seen exactly once.
// - A recipient the server reports offline (or an online one no direct
//   connection works to) gets each pending message once as a sealed
//   envelope through the server's offline queue.
// - Connections (link.js) are made on demand and rebuilt with ICE restart,
//   then renegotiation with backoff; an open one keeps working while the
//   server is away, and signal.js logs in again by itself.
// - Files travel on channels of their own in 64 KiB chunks, each read from
//   the Blob (Blob.slice) only when the channel's buffer has room, so a
//   file is never in memory whole. The receiver writes each chunk at its
//   offset into a file of the Origin Private File System (filestore.js)
//   where the browser has one: memory stays bounded, a reload resumes from
//   the file's length, and file_blob hands out that file itself. Without
//   OPFS the chunks go to IndexedDB by offset (a reload resumes from them)
//   and become one Blob at the end. Either way the SHA-256 is computed
//   incrementally (@noble/hashes) and checked before the file completes.
// - Groups: the admin-signed state of §11.1, messages fanned out by the
//   sender, one copy per member.
//
// Concurrency: handlers of incoming messages and the requests that change
// the database run one at a time (#serial), and each database change with
// its "seen" record is one IndexedDB transaction, so a message is either
// applied and receipted, or neither (and the sender sends it again).

import { DB, prefixRange } from './db.js';
import { Signal } from './signal.js';
import { Link } from './link.js';
import { b64urlDecode, b64urlEncode, bundleOf, exportIdentity as exportSeeds, generateIdentity,
  importIdentity as importSeeds, isValidPeerId, peerIdFromIk, peerIdOf } from './identity.js';
import { exportIdentity as exportBackup, importIdentity as importBackup } from './backup.js';
import { seal, open as openSeal, MAX_PLAINTEXT as SEAL_MAX } from './seal.js';
import { TrustStore } from './trust.js';
import { formatSafetyNumber, safetyNumber } from './safety.js';
import { isAdmin, isMember } from './group.js';
import * as M from './msg.js';
import { sha256 } from '../vendor/noble-hashes/sha256.js';
import { FileStore } from './filestore.js';

export const RECEIPT_DELAY_MS = 50;
export const RETRANSMIT_MS = 20000;
export const ENVELOPE_TTL_S = 7 * 24 * 3600;
export const CHUNK = 65536;
export const XOUT_HIGH = 1 << 20;         // file bytes queued on a channel at most
export const PROGRESS_STEP = 1 << 20;     // a progress event every MiB
export const SAVE_STEP = 8 << 20;         // the confirmed offset is stored every 8 MiB
export const HASH_STEP = 1 << 20;         // files are read back 1 MiB at a time
export const SEEN_KEEP_MS = 30 * 24 * 3600 * 1000;
const FINAL = new Set(['complete', 'cancelled', 'failed']);
const ID_RE = /^[0-9a-f]{32}$/;

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** A request that failed: {ok:false, error, code} (code as app.c's). */
class ReqError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
const fail = (code, message) => { throw new ReqError(code, message); };

/** Thrown inside a transaction: a message that cannot apply yet (a group
 *  update ahead of the one before it). Rolled back, not receipted. */
class Later extends Error {}

// MIME types by extension, for Blobs without a type (as xfer.c guesses).
const MIME = {
  txt: 'text/plain', md: 'text/markdown', html: 'text/html', json: 'application/json', pdf: 'application/pdf',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml',
  mp3: 'audio/mpeg', ogg: 'audio/ogg', opus: 'audio/opus', wav: 'audio/wav', m4a: 'audio/mp4', webm: 'audio/webm',
  mp4: 'video/mp4', zip: 'application/zip', gz: 'application/gzip',
};
function guessMime(name, type) {
  if (typeof type === 'string' && /^[\x21-\x7e]{1,127}$/.test(type.split(';')[0])) return type.split(';')[0];
  const ext = String(name).split('.').pop().toLowerCase();
  return MIME[ext] || 'application/octet-stream';
}

/** "p:<peer>" / "g:<group>" (a bare peer ID is "p:"): {conv, group, id}. */
function parseConv(conv) {
  if (typeof conv !== 'string') fail('invalid', 'no conversation given');
  let rest = conv, group = false;
  if (conv.startsWith('p:')) rest = conv.slice(2);
  else if (conv.startsWith('g:')) { rest = conv.slice(2); group = true; }
  if (group ? !ID_RE.test(rest) : !isValidPeerId(rest)) {
    fail('invalid', `"${conv}" is not a conversation (a peer ID, p:<peer ID> or g:<group id>)`);
  }
  return { conv: `${group ? 'g:' : 'p:'}${rest}`, group, id: rest };
}

// History rows: status of an outgoing message aggregated over recipients.
function statusOf(row) {
  if (!row.outgoing) return 'incoming';
  const r = Object.values(row.rcpt || {});
  if (r.length === 0 || r.some((x) => !x.delivered_at)) return 'pending';
  return r.every((x) => x.read_at) ? 'read' : 'delivered';
}

/** One remote peer we talk to. */
class Peer {
  constructor(id) {
    this.id = id;
    this.link = null;
    this.online = false;
    this.linkFailed = false;   // no direct path works: envelopes meanwhile
    this.bundle = null;        // announced by the server's peer objects
    this.name = null;
    this.flushedSeq = 0;       // outbox rows up to here went on this connection
    this.receipts = [];        // ids owed a DELIVERY_RECEIPT
    this.receiptTimer = null;
    this.retransmit = null;
    this.flushing = null;      // the running flush
    this.flushAgain = false;
    this.rx = Promise.resolve(); // incoming plaintexts, in order
  }
}

export class Client {
  #db;
  #identity = null;
  #bundle = null;
  #opts;
  #listeners = new Set();
  #callFns = new Set();
  #signal = null;
  #trust;
  #peers = new Map();
  #xouts = new Map();         // file_id -> outgoing stream
  #xins = new Map();          // file_id -> incoming transfer
  #xinOpening = new Map();    // file_id -> the transfer being opened
  #files = null;              // filestore.js (OPFS), null where there is none
  #hashJobs = new Set();
  #enveloping = new Set();    // outbox seqs handed to the server, not acked yet
  #chain = Promise.resolve();
  #iceServers = [];
  #closed = false;
  #receiver;
  peerId = null;
  name = null;
  needsSetup = false;
  loggedIn = false;
  stats = { sent: 0, received: 0, duplicates: 0, dropped: 0, envelopes_sent: 0, envelopes_received: 0,
    file_bytes_out: 0, file_bytes_in: 0, file_buffered: 0, file_buffered_max: 0, links_ready: 0 };

  constructor(db, opts) {
    this.#db = db;
    this.#opts = opts;
    this.#trust = new TrustStore(db.trustStorage());
    this.#receiver = new M.Receiver({ log: (m) => this.#log(m) });
  }

  /** Opens the database and loads the identity; needsSetup when none.
   *  opts: {server (URL of echolinkd, or a list tried in turn), dbName, autoAcceptFiles (default
   *  true up to maxAutoAccept), maxAutoAccept (bytes, default 4 GiB),
   *  log (fn)} */
  static async open(opts = {}) {
    const o = { server: globalThis.location?.origin, dbName: 'echolink', autoAcceptFiles: true,
      maxAutoAccept: 4 * 1024 ** 3, log: null, ...opts };
    const db = await DB.open(o.dbName);
    const c = new Client(db, o);
    try {
      c.#files = await FileStore.open(o.dbName);
    } catch (e) {
      c.#log(`no file system for received files (${e.message}): they stay in IndexedDB`);
    }
    const saved = await db.get('meta', 'identity');
    c.name = (await db.get('meta', 'name')) ?? null;
    if (saved) await c.#useIdentity(await importSeeds(saved));
    else c.needsSetup = true;
    return c;
  }

  async #useIdentity(identity) {
    this.#identity = identity;
    this.#bundle = await bundleOf(identity);
    this.peerId = await peerIdOf(identity);
    this.needsSetup = false;
  }

  /** First visit: creates the identity (kept in IndexedDB) and the name. */
  async setup({ name } = {}) {
    if (!this.needsSetup) throw new Error('this browser already has an identity');
    const identity = await generateIdentity();
    const seeds = await exportSeeds(identity);
    await this.#db.tx('meta', async (t) => {
      await t.put('meta', seeds, 'identity');
      if (name) await t.put('meta', String(name), 'name');
    });
    if (name) this.name = String(name);
    await this.#useIdentity(identity);
    return { peer_id: this.peerId };
  }

  /** Registers fn(event) for every event; returns the unsubscribe. */
  on(fn) {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(ev) {
    for (const fn of [...this.#listeners]) {
      try {
        fn(ev);
      } catch (e) {
        this.#log(`event listener failed: ${e.stack || e}`);
      }
    }
  }

  #log(msg) {
    if (this.#opts.log) this.#opts.log(msg);
  }

  #error(message) {
    this.#log(message);
    this.#emit({ event: 'error', message });
  }

  // One at a time: the handlers that read and then change the database.
  #serial(fn) {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  // ---- lifetime ---------------------------------------------------------------

  /** Connects to the server and logs in (and keeps doing so). */
  async start() {
    if (this.needsSetup) throw new Error('no identity yet: setup() first');
    if (this.#signal) return;
    const cutoff = Date.now() - SEEN_KEEP_MS;
    await this.#db.tx('seen', (t) => t.each('seen', { index: 'at', range: IDBKeyRange.upperBound(cutoff) },
      (v, cur) => { cur.delete(); }));
    const sig = new Signal({
      url: this.#opts.server, identity: this.#identity, bundle: this.#bundle, name: this.name || undefined,
      log: (m) => this.#log(m),
      onState: (info) => this.#onSignalState(info),
      onLogin: (ack) => this.#onLogin(ack),
    });
    this.#signal = sig;
    await this.#sweepFiles().catch((e) => this.#log(`cannot tidy the received files: ${e.message}`));
    sig.on('online_users', (a) => this.#onOnlineUsers(a));
    sig.on('user_connected', (a) => this.#onPresence(a, true));
    sig.on('user_disconnected', (a) => this.#onPresence(a, false));
    for (const ev of ['offer', 'answer', 'ice_candidate']) sig.on(ev, (a) => this.#onRelay(ev, a));
    sig.on('envelope', (a) => this.#serial(() => this.#onEnvelope(a)).catch((e) => this.#error(`envelope: ${e.message}`)));
    sig.on('session_closed', (a) => this.#error(`the server closed the session: ${a?.reason}`));
    for (const ev of ['contact_request', 'contact_added', 'contact_refused', 'contact_removed']) {
      sig.on(ev, (a) => this.#onContact(ev, a));
    }
    sig.start();
  }

  /** Stops everything; the database closes. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.stop();
    for (const p of this.#peers.values()) {
      clearTimeout(p.receiptTimer);
      clearInterval(p.retransmit);
      p.link?.close();
    }
    this.#xouts.clear();
    this.#xins.clear();
    this.#files?.close();
    this.#db.close();
  }

  #onSignalState(info) {
    if (info.state !== 'online') this.loggedIn = false;
    if (info.state === 'online') return; // reported with the login
    const ev = { event: 'signal', state: info.state };
    if (info.reason) ev.reason = info.reason;
    if (info.url) ev.url = info.url;
    if (info.state === 'offline') ev.retry_ms = info.retry_ms;
    this.#emit(ev);
  }

  #onLogin(ack) {
    this.#iceServers = (Array.isArray(ack.ice_servers) ? ack.ice_servers : []).map((s) => {
      const o = { urls: s.urls };
      if (s.username) o.username = s.username;
      if (s.credential) o.credential = s.credential;
      return o;
    });
    this.loggedIn = true;
    this.#emit({ event: 'signal', state: 'online' });
    const name = ack.profile?.name ?? null;
    this.#emit({ event: 'login', peer_id: this.peerId, name });
  }

  // ---- peers ------------------------------------------------------------------

  #peer(id) {
    if (!isValidPeerId(id) || id === this.peerId) return null;
    let p = this.#peers.get(id);
    if (p) return p;
    p = new Peer(id);
    p.link = new Link({
      identity: this.#identity, selfId: this.peerId, peerId: id, trust: this.#trust,
      iceServers: () => this.#iceServers, log: (m) => this.#log(m),
      callbacks: {
        signal: (event, arg) => this.#signal.emit(event, arg).then((ack) => {
          if (!ack.ok) this.#log(`the server did not relay ${event}: ${ack.error}`);
        }),
        want: () => this.loggedIn && p.online && p.hasWork,
        onState: (st, why) => this.#onLinkState(p, st, why),
        onKeyChanged: (pinned, presented) => this.#onKeyChanged(p, presented),
        onPlaintext: (ch, pt) => { p.rx = p.rx.then(() => this.#onPlain(p, ch, pt, false)).catch((e) => this.#error(e.message)); },
        onChannelOpen: (ch) => this.#fileChannelOpen(p, ch),
        onChannelClose: (ch) => this.#fileChannelClose(p, ch),
        onBufferedLow: (ch) => this.#fileLow(ch),
      },
    });
    this.#peers.set(id, p);
    return p;
  }

  async #hasWork(p) {
    const n = await this.#db.read(['outbox'], (t) => t.countByIndex('outbox', 'peer', prefixRange([p.id])));
    p.hasWork = p.receipts.length > 0 || n > 0 || (await this.#fileUnfinished(p.id));
    return p.hasWork;
  }

  // Takes in a peer object (§4): presence, name, announced bundle.
  async #peerUpdate(o, online) {
    const p = o && typeof o.peer_id === 'string' ? this.#peer(o.peer_id) : null;
    if (!p) return null;
    if (typeof o.name === 'string') p.name = o.name;
    if (typeof o.ik === 'string' && typeof o.sk === 'string' && typeof o.sk_sig === 'string') {
      try {
        if (await peerIdFromIk(o.ik) === p.id) p.bundle = { ik: o.ik, sk: o.sk, sk_sig: o.sk_sig };
      } catch { /* not a bundle */ }
    }
    if (online !== null) p.online = online;
    const prev = (await this.#db.get('peers', p.id)) || { peer_id: p.id, name: null, last_seen: 0 };
    if (typeof o.name === 'string') prev.name = o.name;
    if (online) prev.last_seen = Date.now();
    await this.#db.put('peers', prev);
    return p;
  }

  #emitPresence(p) {
    const ev = { event: 'presence', peer_id: p.id, online: p.online };
    if (p.name !== null) ev.name = p.name;
    this.#emit(ev);
  }

  async #onOnlineUsers(arg) {
    for (const p of this.#peers.values()) p.online = false;
    for (const o of Array.isArray(arg?.users) ? arg.users : []) {
      const p = await this.#peerUpdate(o, true);
      if (p) this.#emitPresence(p);
    }
    await this.#flushAll();
  }

  async #onPresence(arg, online) {
    const p = await this.#peerUpdate(arg, online);
    if (!p) return;
    this.#emitPresence(p);
    if (online || p.link.state !== 'ready') this.#flush(p);
  }

  #onRelay(event, arg) {
    if (arg && arg.call !== undefined) {
      for (const fn of this.#callFns) {
        try { fn(event, arg); } catch (e) { this.#log(`call handler: ${e.stack || e}`); }
      }
      return;
    }
    const p = typeof arg?.from === 'string' ? this.#peer(arg.from) : null;
    if (!p) return;
    p.online = true; // it just spoke through the server
    p.link.onSignal(event, arg);
  }

  async #onContact(event, arg) {
    const ev = { ...(arg && typeof arg === 'object' ? arg : {}) };
    if (event === 'contact_request') {
      await this.#peerUpdate(arg?.from, null);
      ev.from = arg?.from?.peer_id;
      ev.name = arg?.from?.name ?? null;
    } else if (event === 'contact_added') {
      await this.#peerUpdate(arg, arg?.online === true);
    } else if (event === 'contact_removed') {
      this.#peers.get(arg?.peer_id)?.link.reset('no longer a contact');
    }
    ev.event = event;
    this.#emit(ev);
  }

  // ---- the outbox ----------------------------------------------------------------

  #outboxRows(peer, after = 0) {
    return this.#db.read('outbox', (t) => t.allByIndex('outbox', 'peer', IDBKeyRange.bound([peer, after], [peer, Infinity], true)));
  }

  #status(peer, id, status, via) {
    const ev = { event: 'status', id, peer, status };
    if (via) ev.via = via;
    this.#emit(ev);
  }

  // Sends the rows the current connection has not carried yet, in order.
  async #flushLink(p) {
    for (const r of await this.#outboxRows(p.id, p.flushedSeq)) {
      if (!(await p.link.send(r.bytes))) break;
      p.flushedSeq = r.seq;
      this.#status(p.id, r.msg_id, 'sent', 'link');
    }
  }

  // The bundle an envelope to p is sealed to: the pinned one, else the one
  // the server announced (trust on first use); none while a change waits.
  async #sealBundle(p) {
    const rec = await this.#trust.get(p.id);
    if (rec) return rec.state === 'changed' ? null : rec.bundle;
    return p.bundle;
  }

  async #sendEnvelope(p, to, pt) {
    const env = await seal(this.#identity, to, pt);
    return this.#signal.emit('envelope_send', { to: p.id, envelope: b64urlEncode(env), ttl: ENVELOPE_TTL_S });
  }

  // Seals every row not yet in the server's offline queue.
  async #flushEnvelopes(p) {
    const to = await this.#sealBundle(p);
    if (!to) return;
    for (const r of await this.#outboxRows(p.id)) {
      if (r.enveloped || r.bytes.length > SEAL_MAX || this.#enveloping.has(r.seq)) continue;
      this.#enveloping.add(r.seq);
      let ack;
      try {
        ack = await this.#sendEnvelope(p, to, r.bytes);
      } catch (e) {
        this.#enveloping.delete(r.seq);
        this.#log(`cannot seal an envelope to ${p.id.slice(0, 8)}: ${e.message}`);
        break;
      }
      this.#enveloping.delete(r.seq);
      if (ack.ok) {
        await this.#db.tx('outbox', async (t) => {
          const row = await t.get('outbox', r.seq);
          if (row) { row.enveloped = true; await t.put('outbox', row); }
        });
        this.stats.envelopes_sent++;
        this.#status(p.id, r.msg_id, 'sent', 'envelope');
      } else {
        this.#log(`envelope to ${p.id.slice(0, 8)} not queued by the server: ${ack.error} (kept in the outbox)`);
        break;
      }
    }
  }

  /** Delivers what waits for p, one way or another (coalesced: a flush
   *  asked for while one runs runs once more after it). */
  #flush(p) {
    if (this.#closed) return Promise.resolve();
    if (p.flushing) {
      p.flushAgain = true;
      return p.flushing;
    }
    p.flushing = (async () => {
      do {
        p.flushAgain = false;
        try {
          await this.#flushOnce(p);
        } catch (e) {
          this.#log(`flush to ${p.id.slice(0, 8)} failed: ${e.stack || e}`);
        }
      } while (p.flushAgain && !this.#closed);
      p.flushing = null;
    })();
    return p.flushing;
  }

  async #flushOnce(p) {
    if (p.link.state === 'ready') {
      await this.#flushLink(p);
      await this.#sendReceipts(p);
      return;
    }
    if (!this.loggedIn) return; // the next login flushes
    const work = await this.#hasWork(p);
    if (p.online && !p.linkFailed) {
      if (work) p.link.connect();
    } else {
      if (p.online && work) p.link.connect(); // the retry waits for its backoff
      await this.#flushEnvelopes(p);
      await this.#sendReceipts(p);
    }
  }

  async #flushAll() {
    const ids = new Set(this.#peers.keys());
    await this.#db.read('outbox', (t) => t.each('outbox', {}, (r) => { ids.add(r.peer); }));
    for (const id of ids) {
      const p = this.#peer(id);
      if (p) this.#flush(p);
    }
  }

  // Adds the outbox rows of one message inside transaction t.
  static async #queueIn(t, to, msgId, pt) {
    for (const peer of to) {
      const dup = await t.byIndex('outbox', 'peer_msg', [peer, msgId]);
      if (!dup) await t.add('outbox', { peer, msg_id: msgId, bytes: pt, created_at: Date.now(), enveloped: false });
    }
  }

  // Queues a built message to every peer of `to` (its own transaction) and
  // flushes them.
  async #queue(to, m, extra) {
    const pt = M.encodeMessage(m);
    await this.#db.tx(['outbox', 'messages', 'reactions', 'files', 'groups'], async (t) => {
      await Client.#queueIn(t, to, m.id, pt);
      if (extra) await extra(t);
    });
    this.stats.sent++;
    for (const id of to) {
      const p = this.#peer(id);
      if (p) this.#flush(p);
    }
  }

  // ---- receipts ---------------------------------------------------------------

  async #sendReceipts(p) {
    if (p.receipts.length === 0) return;
    const ready = p.link.state === 'ready';
    const to = ready ? null : await this.#sealBundle(p);
    if (!ready && ((p.online && !p.linkFailed) || !to || !this.loggedIn)) return; // sent when ready
    while (p.receipts.length > 0) {
      const ids = p.receipts.splice(0, M.IDS_MAX);
      const pt = M.encodeMessage(M.buildDeliveryReceipt(ids));
      let ok;
      try {
        ok = ready ? await p.link.send(pt) : (await this.#sendEnvelope(p, to, pt)).ok;
      } catch {
        ok = false;
      }
      if (!ok) {
        p.receipts.unshift(...ids);
        return;
      }
    }
  }

  #oweReceipt(p, id) {
    if (p.receipts.length >= 4096) return; // the sender re-sends; receipted then
    p.receipts.push(id);
    if (!p.receiptTimer) {
      // the first receipt of a burst goes at once; those that follow within
      // the window travel together when it closes
      p.receiptTimer = setTimeout(() => { p.receiptTimer = null; this.#flush(p); }, RECEIPT_DELAY_MS);
      this.#flush(p);
    }
  }

  // ---- links ------------------------------------------------------------------

  #onLinkState(p, st, why) {
    const ev = { event: 'link', peer_id: p.id, state: st };
    if (why) ev.reason = why;
    this.#emit(ev);
    if (st === 'ready') {
      this.stats.links_ready++;
      p.linkFailed = false;
      p.flushedSeq = 0;
      if (!p.retransmit) {
        // a receiver may drop a message without a receipt (it could not store
        // it, or cannot apply it yet): what is still in the outbox goes again
        p.retransmit = setInterval(() => {
          if (p.link.state !== 'ready') { clearInterval(p.retransmit); p.retransmit = null; return; }
          p.flushedSeq = 0;
          this.#flush(p);
        }, RETRANSMIT_MS);
      }
      this.#flush(p);
      this.#fileOnReady(p).catch((e) => this.#error(`cannot resume files: ${e.message}`));
    } else if (st === 'idle') {
      this.#fileOnDown(p);
      // a connection that failed (not one replaced or reset) sends what
      // waits through the offline queue meanwhile
      if (why && !why.startsWith('replaced') && why !== 'no longer a contact' && why !== 'blocked') p.linkFailed = true;
      if (!p.online || p.linkFailed) this.#flush(p);
    }
  }

  async #onKeyChanged(p, presented) {
    const mine = this.#bundle.ik;
    let fmt = '';
    try { fmt = formatSafetyNumber(await safetyNumber(mine, undefined, presented.ik, undefined)); } catch { /* none */ }
    this.#emit({ event: 'key_changed', peer_id: p.id, safety: fmt });
  }

  // ---- receiving ------------------------------------------------------------------

  async #onPlain(p, ch, pt, offline) {
    const r = await this.#receiver.receive(pt);
    if (!r) { this.stats.dropped++; return; }
    if (r.kind === 'chunk') {
      if (!offline) this.#onChunk(p, ch, r);
      return;
    }
    await this.#serial(() => this.#handleMsg(p, r.msg, offline));
  }

  async #groupOk(p, m) {
    if (!m.group || m.t === 'GROUP_CREATED' || m.t === 'GROUP_UPDATE') return true;
    const g = await this.#db.get('groups', m.group);
    if (g && !g.left && isMember(g.state, p.id)) return true;
    this.#log(`dropping a ${m.t} for group ${m.group.slice(0, 8)} from ${p.id.slice(0, 8)}: not a member`);
    this.stats.dropped++;
    if (m.t !== 'TYPING_STATUS' && m.t !== 'DELIVERY_RECEIPT') this.#oweReceipt(p, m.id); // refused for good
    return false;
  }

  async #handleMsg(p, m, offline) {
    const conv = m.group ? `g:${m.group}` : `p:${p.id}`;
    if (!(await this.#groupOk(p, m))) return;
    if (m.t === 'TYPING_STATUS') {
      this.#emit({ event: 'typing', conv, from: p.id, typing: m.typing });
      return;
    }
    if (m.t === 'DELIVERY_RECEIPT') {
      await this.#onReceipt(p, m, false);
      return;
    }
    // what needs more than the database is worked out first
    const signer = m.t === 'GROUP_CREATED' || m.t === 'GROUP_UPDATE' ? await peerIdFromIk(m.by_ik) : null;
    const post = [];
    let fresh;
    try {
      await this.#db.tx(['seen', 'messages', 'reactions', 'files', 'groups', 'outbox', 'chunks'], async (t) => {
        fresh = !(await t.get('seen', [p.id, m.id]));
        if (!fresh) return;
        await t.put('seen', { from: p.id, id: m.id, at: Date.now() });
        switch (m.t) {
          case 'CHAT': await this.#onChat(t, p, m, conv, offline, post); break;
          case 'REACTION': await this.#onReaction(t, p, m, conv, post); break;
          case 'READ_RECEIPT': await this.#applyReceipt(t, p, m, true, post); break;
          case 'EDIT_MESSAGE': await this.#onEdit(t, p, m, conv, false, post); break;
          case 'DELETE_MESSAGE': await this.#onEdit(t, p, m, conv, true, post); break;
          case 'FILE_META': await this.#onFileMeta(t, p, m, conv, post); break;
          case 'FILE_ACCEPT': await this.#onFileAccept(t, p, m, post); break;
          case 'FILE_COMPLETE': await this.#onFileComplete(t, p, m, post); break;
          case 'FILE_CANCEL': await this.#onFileCancel(t, p, m, post); break;
          case 'GROUP_CREATED':
          case 'GROUP_UPDATE': await this.#onGroupState(t, p, m, signer, post); break;
          case 'GROUP_LEAVE': await this.#onGroupLeave(t, p, m, post); break;
          default: break;
        }
      });
    } catch (e) {
      if (e instanceof Later) return; // forgotten, not receipted: it comes again
      this.#error(`cannot store a ${m.t} from ${p.id.slice(0, 8)}: ${e.message}`);
      return; // no receipt: the sender sends it again
    }
    if (!fresh) this.stats.duplicates++;
    this.#oweReceipt(p, m.id);
    for (const fn of post) {
      try {
        await fn();
      } catch (e) {
        this.#error(`${m.t} from ${p.id.slice(0, 8)}: ${e.message}`);
      }
    }
  }

  async #onChat(t, p, m, conv, offline, post) {
    if (await t.byIndex('messages', 'author_id', [p.id, m.id])) return;
    const now = Date.now();
    await t.add('messages', { conv, id: m.id, author: p.id, outgoing: false, kind: 'chat', text: m.text,
      reply_to: m.reply_to ?? null, file_id: null, ts: m.ts, received_at: now, edited_at: 0, deleted: false, read_at: 0 });
    post.push(() => {
      this.stats.received++;
      const ev = { event: 'message', conv, id: m.id, from: p.id, ts: m.ts, text: m.text, offline };
      if (m.reply_to) ev.reply_to = m.reply_to;
      if (m.group) ev.group = m.group;
      this.#emit(ev);
    });
  }

  // A receipt from p for our messages (read: READ_RECEIPT, which implies
  // delivery). Delivery receipts also empty the outbox rows they name.
  async #applyReceipt(t, p, m, read, post) {
    const now = Date.now();
    for (const id of m.ids) {
      if (!read) {
        const row = await t.byIndex('outbox', 'peer_msg', [p.id, id]);
        if (row) await t.del('outbox', row.seq);
      }
      const msg = await t.byIndex('messages', 'author_id', [this.peerId, id]);
      const r = msg?.rcpt?.[p.id];
      if (!r) continue;
      let advanced = false;
      if (!r.delivered_at) { r.delivered_at = now; advanced = !read; }
      if (read && !r.read_at) { r.read_at = now; advanced = true; }
      if (advanced) {
        await t.put('messages', msg);
        post.push(() => this.#status(p.id, id, read ? 'read' : 'delivered'));
      }
    }
  }

  async #onReceipt(p, m, read) {
    const post = [];
    try {
      await this.#db.tx(['outbox', 'messages'], (t) => this.#applyReceipt(t, p, m, read, post));
    } catch (e) {
      this.#log(`a receipt from ${p.id.slice(0, 8)} not stored: ${e.message}`); // the sender asks again
      return;
    }
    for (const fn of post) fn();
  }

  async #onReaction(t, p, m, conv, post) {
    const remove = m.remove === true;
    if (remove) await t.del('reactions', [conv, m.target, p.id, m.emoji]);
    else await t.put('reactions', { conv, target: m.target, from: p.id, emoji: m.emoji, at: Date.now() });
    post.push(() => this.#emit({ event: 'reaction', conv, target: m.target, from: p.id, emoji: m.emoji, remove }));
  }

  // Applies an edit or a delete by `author` to its message `target`:
  // 1 applied, 0 stale or already so; throws ReqError for a refusal.
  static async #editRow(t, author, target, text, editedAt, conv) {
    const row = await t.byIndex('messages', 'author_id', [author, target]);
    if (!row) {
      const other = conv ? await t.byIndex('messages', 'conv_id', [conv, target]) : null;
      if (other) fail('denied', 'only the author of a message may change it');
      fail('not_found', `no message ${target} of yours`);
    }
    if (conv && row.conv !== conv) fail('denied', 'the message belongs to another conversation');
    if (text === null) {
      if (row.deleted) return 0;
      row.deleted = true;
      row.text = '';
      await t.put('messages', row);
      await t.each('reactions', { index: 'target', range: IDBKeyRange.only([row.conv, target]) }, (v, cur) => { cur.delete(); });
      return 1;
    }
    if (row.deleted) fail('state', 'a deleted message cannot be edited');
    if (row.edited_at && row.edited_at >= editedAt) return 0;
    row.text = text;
    row.edited_at = editedAt;
    await t.put('messages', row);
    return 1;
  }

  async #onEdit(t, p, m, conv, del, post) {
    let rc;
    try {
      // the edit must come through the target's own conversation
      rc = await Client.#editRow(t, p.id, m.target, del ? null : m.text, m.ts || Date.now(), conv);
    } catch (e) {
      if (!(e instanceof ReqError)) throw e;
      this.#log(`${del ? 'delete' : 'edit'} from ${p.id.slice(0, 8)} not applied: ${e.message}`);
      return; // refusals are final, receipted
    }
    if (rc === 1) {
      const ev = { event: del ? 'delete' : 'edit', conv, target: m.target, from: p.id };
      if (!del) ev.text = m.text;
      post.push(() => this.#emit(ev));
      const row = del ? await t.byIndex('messages', 'author_id', [p.id, m.target]) : null;
      if (row?.file_id) post.push(() => this.#fileDeleted(row.file_id));
    }
  }

  // ---- files: receiving -------------------------------------------------------------

  async #onFileMeta(t, p, m, conv, post) {
    if (m.group) { this.#log('group files are not supported; FILE_META dropped'); return; }
    if (await t.get('files', m.file_id)) return;
    const now = Date.now();
    const voiceMs = m.voice ? m.voice.duration_ms : 0;
    await t.add('messages', { conv, id: m.id, author: p.id, outgoing: false, kind: m.voice ? 'voice' : 'file',
      text: m.name, reply_to: null, file_id: m.file_id, ts: m.ts, received_at: now, edited_at: 0, deleted: false, read_at: 0 });
    await t.put('files', { file_id: m.file_id, conv, peer: p.id, outgoing: false, msg_id: m.id, name: m.name,
      size: m.size, mime: m.mime, sha256: m.sha256, voice_ms: voiceMs, offset: 0, state: 'offered', error: null,
      updated_at: now });
    post.push(async () => {
      const ev = { event: 'file_offer', conv, id: m.id, file_id: m.file_id, from: p.id, name: m.name, size: m.size, mime: m.mime };
      if (m.voice) ev.voice_ms = voiceMs;
      this.#emit(ev);
      if (this.#opts.autoAcceptFiles && (!this.#opts.maxAutoAccept || m.size <= this.#opts.maxAutoAccept)) {
        await this.#acceptFile(m.file_id).catch((e) => this.#error(`cannot accept ${m.name}: ${e.message}`));
      }
    });
  }

  async #fileUnfinished(peer) {
    const files = await this.#db.read('files', (t) => t.allByIndex('files', 'peer', IDBKeyRange.only(peer)));
    return files.some((f) => !FINAL.has(f.state) && (f.outgoing ? f.state === 'active' : f.state !== 'offered'));
  }

  // Opens (or finds) an accepted incoming transfer: its offset and hash
  // state are rebuilt from the bytes already stored (a reload resumes).
  // Callers at the same time share one opening (an OPFS file has one writer).
  #openXin(f) {
    const x = this.#xins.get(f.file_id);
    if (x) return Promise.resolve(x);
    let opening = this.#xinOpening.get(f.file_id);
    if (!opening) {
      opening = this.#loadXin(f).finally(() => this.#xinOpening.delete(f.file_id));
      this.#xinOpening.set(f.file_id, opening);
    }
    return opening;
  }

  async #loadXin(f) {
    const hasher = sha256.create();
    const disk = await this.#diskOf(f);
    let offset = 0;
    let sink = null;
    if (disk === 'opfs') {
      // the file's length is what arrived: hash it again, 1 MiB at a time
      const file = await this.#files.file(f.file_id);
      if (file && file.size <= f.size) {
        for (; offset < file.size; offset += HASH_STEP) {
          hasher.update(new Uint8Array(await file.slice(offset, offset + HASH_STEP).arrayBuffer()));
        }
        offset = file.size;
      }
      sink = await this.#files.sink(f.file_id, { at: offset }); // a longer file is not ours: cut
      const now = await this.#db.get('files', f.file_id);
      if (!now || FINAL.has(now.state)) {
        // cancelled while it opened: the file it made again goes
        await this.#files.remove(f.file_id);
        fail('state', `file ${f.file_id} is ${now ? now.state : 'gone'}`);
      }
    } else {
      const stale = [];
      await this.#db.read('chunks', (t) => t.each('chunks', { range: prefixRange([f.file_id]) }, (v) => {
        if (v.offset !== offset) { stale.push(v.offset); return; }
        const d = new Uint8Array(v.data);
        hasher.update(d);
        offset += d.length;
      }));
      if (stale.length) await this.#db.tx('chunks', async (t) => { for (const o of stale) await t.del('chunks', [f.file_id, o]); });
    }
    if (this.#closed) fail('state', 'the client is closed');
    const x = { fileId: f.file_id, conv: f.conv, peer: f.peer, size: f.size, sha256: f.sha256, mime: f.mime, name: f.name,
      offset, hasher, acceptedAt: -1, ch: null, writes: Promise.resolve(), lastProgress: offset, lastSaved: offset,
      finishing: false, sink };
    this.#xins.set(f.file_id, x);
    return x;
  }

  // Where the bytes of incoming transfer f go: 'opfs' or 'idb', chosen once
  // and kept in its row (a transfer begun in IndexedDB, say before OPFS was
  // used, goes on there; one begun in OPFS starts over when it is gone).
  async #diskOf(f) {
    let disk = f.disk;
    if (disk === 'opfs' && !this.#files) disk = 'idb';
    if (!disk) {
      const chunks = await this.#db.read('chunks', (t) => t.count('chunks', prefixRange([f.file_id])));
      disk = this.#files && chunks === 0 ? 'opfs' : 'idb';
    }
    if (disk !== f.disk) {
      await this.#setFile(f.file_id, { disk });
      f.disk = disk;
    }
    return disk;
  }

  // Removes what is stored of incoming file f's bytes (OPFS file, chunks,
  // assembled Blob); an outgoing file's source Blob too when `source`.
  async #removeBytes(f, { source = false } = {}) {
    if (f.outgoing) {
      if (source) await this.#db.del('blobs', f.file_id);
      return;
    }
    await this.#db.tx(['chunks', 'blobs'], async (t) => {
      await t.store('chunks').delete(prefixRange([f.file_id]));
      await t.del('blobs', f.file_id);
    });
    await this.#files?.remove(f.file_id);
  }

  // OPFS files no transfer needs any more (cancelled while this page was
  // closed, or whose row is gone) are removed.
  async #sweepFiles() {
    if (!this.#files) return;
    const names = await this.#files.names();
    if (names.length === 0) return;
    const rows = await this.#db.read('files', async (t) => {
      const out = new Map();
      for (const n of names) out.set(n, await t.get('files', n));
      return out;
    });
    for (const [name, f] of rows) {
      const keep = f && !f.outgoing && f.disk === 'opfs' && (f.state === 'complete' || !FINAL.has(f.state));
      if (!keep && !this.#xins.has(name) && !this.#xinOpening.has(name)) await this.#files.remove(name);
    }
  }

  // A file message was deleted: its transfer stops and its bytes go.
  async #fileDeleted(fileId) {
    const f = await this.#db.get('files', fileId);
    if (!f) return;
    if (!FINAL.has(f.state)) {
      await this.#cancelFile(fileId, 'the message was deleted').catch((e) => this.#log(`cannot cancel ${fileId}: ${e.message}`));
    }
    this.#dropStreams(fileId);
    await this.#removeBytes(f, { source: true });
  }

  async #sendAccept(x) {
    const p = this.#peer(x.peer);
    x.acceptedAt = x.offset;
    await p.link.send(M.encodeMessage(M.buildFileAccept(x.fileId, x.offset))); // not ready: again on the next ready
  }

  async #acceptFile(fileId) {
    const f = await this.#db.get('files', fileId);
    if (!f || f.outgoing) fail('not_found', `no incoming file ${fileId}`);
    if (FINAL.has(f.state)) fail('state', `file ${fileId} is already ${f.state}`);
    const p = this.#peer(f.peer);
    const x = await this.#openXin(f);
    if (f.state === 'offered') {
      await this.#db.tx('files', async (t) => {
        const r = await t.get('files', fileId);
        if (r && r.state === 'offered') { r.state = 'accepted'; r.updated_at = Date.now(); await t.put('files', r); }
      });
    }
    if (x.offset === x.size) {
      await this.#finish(x);
      return;
    }
    if (p.link.state === 'ready') await this.#sendAccept(x);
    else this.#flush(p); // connects; the accept goes out when ready
  }

  #onChunk(p, ch, c) {
    const x = this.#xins.get(c.fileId);
    if (!x || x.peer !== p.id || x.finishing) return;
    if (c.offset !== x.offset || x.offset + c.data.length > x.size) return; // stale after a resume
    const data = c.data.slice();
    x.hasher.update(data);
    x.offset += data.length;
    x.ch = ch;
    this.stats.file_bytes_in += data.length;
    const off = x.offset;
    // to disk at once (the sink takes the buffer), or to IndexedDB in turn
    if (x.sink) x.sink.write(off - data.length, data);
    else {
      x.writes = x.writes.then(() => this.#db.put('chunks', { file_id: x.fileId, offset: off - data.length, data: data.buffer }));
      x.writes.catch(() => {}); // reported by #finish
    }
    if (off - x.lastProgress >= PROGRESS_STEP || off === x.size) {
      x.lastProgress = off;
      this.#emit({ event: 'file_progress', conv: x.conv, file_id: x.fileId, direction: 'in', bytes: off, size: x.size });
    }
    if (off - x.lastSaved >= SAVE_STEP) {
      x.lastSaved = off;
      const sink = x.sink;
      x.writes = x.writes.then(() => sink?.flush()).then(() => this.#setFile(x.fileId, { offset: off, state: 'active' }));
      x.writes.catch(() => {}); // reported by #finish; a transfer dropped before it needs no report
    }
    if (off === x.size) this.#finish(x).catch((e) => this.#error(`cannot finish ${x.fileId}: ${e.message}`));
  }

  // Changes fields of a transfer unless it is final.
  #setFile(fileId, fields, t = null) {
    const apply = async (tx) => {
      const f = await tx.get('files', fileId);
      if (!f || FINAL.has(f.state)) return false;
      Object.assign(f, fields, { updated_at: Date.now() });
      await tx.put('files', f);
      return true;
    };
    return t ? apply(t) : this.#db.tx('files', apply);
  }

  async #finish(x) {
    if (x.finishing) return;
    x.finishing = true;
    try {
      await x.writes;
      await x.sink?.close();
    } catch (e) {
      // our storage, not the data: the bytes stay, the next connection's
      // FILE_ACCEPT tries again
      this.#xins.delete(x.fileId);
      throw e;
    }
    this.#xins.delete(x.fileId);
    const got = hex(x.hasher.digest());
    const range = prefixRange([x.fileId]);
    if (got !== x.sha256) {
      const error = 'SHA-256 mismatch';
      await this.#db.tx(['files', 'chunks'], async (t) => {
        await this.#setFile(x.fileId, { state: 'failed', error }, t);
        await t.store('chunks').delete(range);
      });
      if (x.sink) await this.#files.remove(x.fileId).catch((e) => this.#log(`cannot remove ${x.fileId}: ${e.message}`));
      await this.#queue([x.peer], M.buildFileCancel(x.fileId, { reason: error }));
      this.#emit({ event: 'file_failed', conv: x.conv, file_id: x.fileId, direction: 'in', error });
      return;
    }
    if (x.sink) {
      // the OPFS file is the file: file_blob hands it out as it is
      await this.#setFile(x.fileId, { state: 'complete', offset: x.size, error: null });
    } else {
      const parts = await this.#db.read('chunks', (t) => t.getAll('chunks', range));
      const blob = new Blob(parts.map((c) => c.data), { type: x.mime });
      await this.#db.tx(['files', 'chunks', 'blobs'], async (t) => {
        await t.put('blobs', { file_id: x.fileId, blob });
        await t.store('chunks').delete(range);
        await this.#setFile(x.fileId, { state: 'complete', offset: x.size, error: null }, t);
      });
    }
    await this.#queue([x.peer], M.buildFileComplete(x.fileId, x.sha256));
    this.#emit({ event: 'file_complete', conv: x.conv, file_id: x.fileId, direction: 'in', sha256: x.sha256 });
  }

  async #onFileCancel(t, p, m, post) {
    const f = await t.get('files', m.file_id);
    if (!f || f.peer !== p.id || FINAL.has(f.state)) return;
    const error = `cancelled by the peer${m.reason ? `: ${m.reason}` : ''}`;
    await this.#setFile(m.file_id, { state: 'cancelled', error }, t);
    if (!f.outgoing) await t.store('chunks').delete(prefixRange([m.file_id]));
    post.push(async () => {
      this.#dropStreams(m.file_id);
      if (!f.outgoing) await this.#removeBytes(f).catch((e) => this.#log(`cannot remove ${m.file_id}: ${e.message}`));
      this.#emit({ event: 'file_failed', conv: f.conv, file_id: m.file_id, direction: f.outgoing ? 'out' : 'in', error });
    });
  }

  #dropStreams(fileId) {
    const xo = this.#xouts.get(fileId);
    if (xo) { this.#xouts.delete(fileId); this.#peers.get(xo.peer)?.link.closeChannel(xo.ch); }
    const xi = this.#xins.get(fileId);
    if (xi) { xi.finishing = true; this.#xins.delete(fileId); }
  }

  // ---- files: sending -------------------------------------------------------------

  async #onFileAccept(t, p, m, post) {
    const f = await t.get('files', m.file_id);
    if (!f || !f.outgoing || f.peer !== p.id || FINAL.has(f.state) || m.offset > f.size) {
      this.#log(`FILE_ACCEPT for ${m.file_id.slice(0, 8)} from ${p.id.slice(0, 8)} ignored (unknown, finished or not theirs)`);
      return;
    }
    await this.#setFile(m.file_id, { state: 'active' }, t);
    post.push(() => this.#startStream(p, f, m.offset));
  }

  async #onFileComplete(t, p, m, post) {
    const f = await t.get('files', m.file_id);
    if (!f || !f.outgoing || f.peer !== p.id) return;
    if (!(await this.#setFile(m.file_id, { state: 'complete', offset: f.size }, t))) return;
    post.push(() => {
      this.#dropStreams(m.file_id);
      this.#emit({ event: 'file_complete', conv: f.conv, file_id: m.file_id, direction: 'out', sha256: m.sha256 });
    });
  }

  // The receiver asked for the bytes from `offset` on: a new channel,
  // replacing any running stream of that file.
  async #startStream(p, f, offset) {
    this.#dropStreams(f.file_id);
    const b = await this.#db.get('blobs', f.file_id);
    if (!b || b.blob.size !== f.size) {
      await this.#cancelFile(f.file_id, b ? 'the file changed since it was offered' : 'the sender cannot read the file');
      return;
    }
    const x = { fileId: f.file_id, conv: f.conv, peer: p.id, blob: b.blob, size: f.size, offset, ch: null, open: false,
      pumping: false, lastProgress: offset };
    this.#xouts.set(f.file_id, x);
    if (offset === f.size) return; // nothing left: the receiver completes on its side
    x.ch = p.link.openChannel();
    if (!x.ch) this.#log(`no channel for ${f.file_id.slice(0, 8)} yet`);
  }

  #xoutByChannel(ch) {
    for (const x of this.#xouts.values()) if (x.ch === ch) return x;
    return null;
  }

  async #pump(x) {
    if (x.pumping) return;
    x.pumping = true;
    const p = this.#peers.get(x.peer);
    try {
      while (x.open && x.offset < x.size && this.#xouts.get(x.fileId) === x && x.ch.dc.bufferedAmount < XOUT_HIGH) {
        const n = Math.min(CHUNK, x.size - x.offset);
        const data = new Uint8Array(await x.blob.slice(x.offset, x.offset + n).arrayBuffer());
        if (data.length !== n) {
          await this.#cancelFile(x.fileId, 'the file changed while it was being sent');
          return;
        }
        if (!x.open || this.#xouts.get(x.fileId) !== x) return;
        if (!(await p.link.send(M.encodeChunk(x.fileId, x.offset, data), x.ch))) break;
        x.offset += n;
        this.stats.file_bytes_out += n;
        const buffered = x.ch.dc.bufferedAmount;
        this.stats.file_buffered = buffered;
        if (buffered > this.stats.file_buffered_max) this.stats.file_buffered_max = buffered;
        if (x.offset - x.lastProgress >= PROGRESS_STEP || x.offset === x.size) {
          x.lastProgress = x.offset;
          this.#emit({ event: 'file_progress', conv: x.conv, file_id: x.fileId, direction: 'out', bytes: x.offset, size: x.size });
        }
      }
    } catch (e) {
      this.#error(`cannot send ${x.fileId}: ${e.message}`);
    } finally {
      x.pumping = false;
    }
  }

  #fileChannelOpen(p, ch) {
    const x = this.#xoutByChannel(ch);
    if (!x) return; // the remote's channels bring chunks to us
    x.open = true;
    this.#pump(x);
  }

  #fileChannelClose(p, ch) {
    const x = this.#xoutByChannel(ch);
    if (x) { x.ch = null; x.open = false; return; }
    // a channel bringing us a file closed while the connection lives on:
    // ask again from the bytes we have, only if it moved since our last ask
    if (p.link.state !== 'ready') return;
    for (const xi of this.#xins.values()) {
      if (xi.peer === p.id && xi.ch === ch && xi.offset !== xi.acceptedAt) this.#sendAccept(xi);
    }
  }

  #fileLow(ch) {
    const x = this.#xoutByChannel(ch);
    if (x) this.#pump(x);
  }

  #fileOnDown(p) {
    for (const [id, x] of this.#xouts) if (x.peer === p.id) this.#xouts.delete(id);
  }

  // A new connection: every accepted, unfinished incoming file asks again.
  async #fileOnReady(p) {
    const files = await this.#db.read('files', (t) => t.allByIndex('files', 'peer', IDBKeyRange.only(p.id)));
    for (const f of files) {
      if (!f.outgoing && !FINAL.has(f.state) && f.state !== 'offered') {
        await this.#acceptFile(f.file_id).catch((e) => this.#error(`cannot resume a file: ${e.message}`));
      }
    }
  }

  async #cancelFile(fileId, reason) {
    const f = await this.#db.get('files', fileId);
    if (!f) fail('not_found', `no file ${fileId}`);
    if (FINAL.has(f.state)) fail('state', `file ${fileId} is already ${f.state}`);
    this.#dropStreams(fileId);
    const why = `cancelled${reason ? `: ${reason}` : ''}`;
    await this.#db.tx(['files', 'chunks'], async (t) => {
      await this.#setFile(fileId, { state: 'cancelled', error: why }, t);
      if (!f.outgoing) await t.store('chunks').delete(prefixRange([fileId]));
    });
    if (!f.outgoing) await this.#removeBytes(f).catch((e) => this.#log(`cannot remove ${fileId}: ${e.message}`));
    await this.#queue([f.peer], M.buildFileCancel(fileId, reason ? { reason } : {}));
    this.#emit({ event: 'file_failed', conv: f.conv, file_id: fileId, direction: f.outgoing ? 'out' : 'in', error: why });
  }

  // Hashes the Blob (incrementally, 1 MiB at a time), then records the offer
  // (history row, transfer, source Blob, outbox) in one transaction.
  async #offerFile(job) {
    const h = sha256.create();
    const step = 1 << 20;
    for (let o = 0; o < job.blob.size; o += step) {
      h.update(new Uint8Array(await job.blob.slice(o, o + step).arrayBuffer()));
      if (this.#closed) return;
    }
    const digest = hex(h.digest());
    const m = M.buildFileMeta({ name: job.name, size: job.blob.size, mime: job.mime, sha256: digest, fileId: job.fileId,
      channel: `f:${job.fileId}`, voiceMs: job.voiceMs || undefined });
    const pt = M.encodeMessage(m);
    const now = Date.now();
    await this.#db.tx(['messages', 'files', 'blobs', 'outbox'], async (t) => {
      await t.add('messages', { conv: job.conv, id: m.id, author: this.peerId, outgoing: true, kind: job.voiceMs ? 'voice' : 'file',
        text: job.name, reply_to: null, file_id: job.fileId, ts: m.ts, received_at: now, edited_at: 0, deleted: false,
        read_at: 0, rcpt: { [job.peer]: { delivered_at: 0, read_at: 0 } } });
      await t.put('files', { file_id: job.fileId, conv: job.conv, peer: job.peer, outgoing: true, msg_id: m.id, name: job.name,
        size: job.blob.size, mime: job.mime, sha256: digest, voice_ms: job.voiceMs || 0, offset: 0, state: 'offered',
        error: null, updated_at: now });
      await t.put('blobs', { file_id: job.fileId, blob: job.blob });
      await Client.#queueIn(t, [job.peer], m.id, pt);
    });
    this.stats.sent++;
    this.#flush(this.#peer(job.peer));
  }

  // ---- groups ---------------------------------------------------------------------

  #groupEvent(g, by, change) {
    const st = g.state;
    const ev = { event: 'group', group_id: st.group_id, name: st.name, version: st.version, admins: st.admins,
      members: st.members, by, member: isMember(st, this.peerId) };
    if (change) ev.change = change;
    this.#emit(ev);
  }

  async #onGroupState(t, p, m, signer, post) {
    const st = m.state;
    const cur = await t.get('groups', st.group_id);
    let why = null;
    if (m.t === 'GROUP_CREATED') {
      if (cur) why = 'GROUP_CREATED for a group that exists';
      else if (!st.admins.includes(signer)) why = 'signer is not an admin of the new state';
      else if (!isMember(st, this.peerId)) why = 'we are not a member';
    } else if (!cur) {
      // a member added after the creation learns the group from its first
      // update: signed by an admin of that state, naming us
      if (!isMember(st, this.peerId)) why = 'an update of a group we are not in';
      else if (!st.admins.includes(signer)) why = 'signer is not an admin of the state';
    } else if (st.version > cur.version + 1) {
      throw new Later(`version ${st.version} arrived before ${cur.version + 1}`);
    } else if (st.version !== cur.version + 1) {
      why = `version ${st.version} is not ${cur.version + 1}`;
    } else if (!isAdmin(cur.state, signer)) {
      why = 'signer is not an admin of the current state';
    }
    if (why) {
      this.#log(`${m.t} for group ${st.group_id.slice(0, 8)} from ${p.id.slice(0, 8)} not applied: ${why}`);
      return;
    }
    const g = { group_id: st.group_id, version: st.version, name: st.name, state: st, by_ik: m.by_ik, sig: m.sig,
      dir: cur?.dir ?? null, left: !isMember(st, this.peerId) };
    await t.put('groups', g);
    post.push(() => this.#groupEvent(g, signer, m.change));
  }

  async #onGroupLeave(t, p, m, post) {
    const g = await t.get('groups', m.group_id);
    if (g && !g.left && isMember(g.state, p.id) && isAdmin(g.state, this.peerId)) {
      post.push(() => this.#changeGroup(m.group_id, 'remove', p.id, { quiet: true }));
    }
  }

  static #dropMember(st, peer) {
    const found = st.members.includes(peer);
    st.members = st.members.filter((x) => x !== peer);
    st.admins = st.admins.filter((x) => x !== peer);
    // the group keeps an admin: the first remaining member takes over
    if (st.admins.length === 0 && st.members.length > 0) st.admins = [st.members[0]];
    return found;
  }

  // Signs `next` (the current state, changed), stores it and sends it to
  // every old and new member.
  async #commitGroup(cur, next, change) {
    next.version = cur.version + 1;
    const m = await M.buildGroupUpdate(this.#identity, next, change);
    const to = [...new Set([...next.members, ...cur.state.members])].filter((x) => x !== this.peerId);
    const g = { group_id: next.group_id, version: next.version, name: next.name, state: next, by_ik: m.by_ik, sig: m.sig,
      dir: cur.dir, left: !isMember(next, this.peerId) };
    await this.#queue(to, m, async (t) => {
      const now = await t.get('groups', next.group_id);
      if (!now || now.version !== cur.version) fail('state', 'the group changed meanwhile: try again');
      await t.put('groups', g);
    });
    this.#groupEvent(g, this.peerId, change);
  }

  async #loadAdmin(gid) {
    const g = typeof gid === 'string' ? await this.#db.get('groups', gid) : null;
    if (!g) fail('not_found', `no group ${gid}`);
    if (g.left || !isAdmin(g.state, this.peerId)) fail('denied', `only an admin of ${g.state.name} may change it`);
    return g;
  }

  async #changeGroup(gid, what, arg, { quiet = false } = {}) {
    const cur = await this.#loadAdmin(gid);
    const next = structuredClone(cur.state);
    const dir = { group_id: cur.dir };
    if (what === 'add') {
      if (!isValidPeerId(arg)) fail('invalid', `"${arg}" is not a peer ID`);
      if (next.members.includes(arg)) fail('exists', `${arg} is already a member`);
      if (next.members.length >= 256) fail('quota', 'the group is full');
      next.members.push(arg);
      dir.add = [arg];
    } else if (what === 'remove') {
      if (!Client.#dropMember(next, arg)) fail('not_found', `${arg} is not a member`);
      dir.remove = [arg];
    } else if (what === 'rename') {
      const n = new TextEncoder().encode(String(arg ?? '')).length;
      if (n < 1 || n > 128) fail('invalid', 'a group name is 1..128 bytes');
      next.name = arg;
      dir.name = arg;
    } else if (what === 'admins') {
      if (!next.members.includes(arg)) fail('not_found', `${arg} is not a member`);
      next.admins = [arg];
      dir.admin = arg;
    }
    await this.#commitGroup(cur, next, what);
    if (cur.dir && !quiet) this.#signal.emit('group_update', dir);
  }

  async #groupRecipients(gid) {
    const g = await this.#db.get('groups', gid);
    if (!g || g.left || !isMember(g.state, this.peerId)) fail('not_found', `you are not a member of group ${gid}`);
    return g.state.members.filter((x) => x !== this.peerId);
  }

  // The recipients of a conversation: the peer, or the other group members.
  async #recipients(c) {
    if (!c.group) {
      if (c.id === this.peerId) fail('invalid', 'that is your own peer ID');
      return [c.id];
    }
    return this.#groupRecipients(c.id);
  }

  // ---- envelopes --------------------------------------------------------------------

  async #onEnvelope(arg) {
    let id = typeof arg?.id === 'string' || typeof arg?.id === 'number' ? arg.id : null;
    let opened = null;
    try {
      opened = await openSeal(this.#identity, b64urlDecode(String(arg?.envelope ?? '')));
    } catch (e) {
      this.stats.dropped++;
      this.#log(`dropping envelope ${id}: ${e.code || e.message}`);
    }
    const p = opened && opened.senderPeerId === arg.from ? this.#peer(opened.senderPeerId) : null;
    if (opened && !p) {
      this.stats.dropped++;
      this.#log(`dropping envelope ${id}: the sender is not who the server says`);
    } else if (p) {
      let rec;
      try {
        rec = await this.#trust.observe(p.id, opened.senderBundle);
      } catch {
        rec = { state: 'changed' };
      }
      if (rec.state === 'changed') {
        this.#error(`an offline message from ${p.id.slice(0, 8)} is held: its key changed (verify, then accept)`);
        id = null; // stays on the server until the user decides
      } else {
        this.stats.envelopes_received++;
        await this.#onPlainSerialized(p, opened.plaintext);
      }
    }
    if (id !== null) this.#signal.emit('envelope_ack', { ids: [id] });
  }

  // An envelope's plaintext, from inside #serial: parse, then handle.
  async #onPlainSerialized(p, pt) {
    const r = await this.#receiver.receive(pt);
    if (!r) { this.stats.dropped++; return; }
    if (r.kind === 'message') await this.#handleMsg(p, r.msg, true);
  }

  // ---- requests ---------------------------------------------------------------------

  /** One request of app.c's table (plus the browser's); resolves with the
   *  reply: {ok: true, ...} or {ok: false, error, code}. Never rejects. */
  async request(req) {
    const cmd = req && typeof req.cmd === 'string' ? req.cmd : null;
    const fn = cmd && Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : null;
    try {
      if (!fn) fail('invalid', `unknown command "${cmd ?? '(none)'}"`);
      if (this.needsSetup && !['import', 'whoami'].includes(cmd)) fail('state', 'no identity yet: setup() first');
      const r = await fn.call(this, req, this.#api);
      return { ok: true, ...(r || {}) };
    } catch (e) {
      if (e instanceof ReqError) return { ok: false, error: e.message, code: e.code };
      if (e instanceof M.MessageError) return { ok: false, error: e.message, code: 'invalid' };
      this.#log(`request ${cmd} failed: ${e.stack || e}`);
      return { ok: false, error: String(e.message || e), code: 'software' };
    }
  }

  // What the command table (outside the class) may use of the private parts.
  #api = {
    serial: (fn) => this.#serial(fn),
    db: () => this.#db,
    signal: () => this.#signal,
    identity: () => this.#identity,
    bundle: () => this.#bundle,
    trust: () => this.#trust,
    peers: () => this.#peers,
    peer: (id) => this.#peer(id),
    recipients: (c) => this.#recipients(c),
    queueIn: (t, to, id, pt) => Client.#queueIn(t, to, id, pt),
    queue: (to, m, extra) => this.#queue(to, m, extra),
    flush: (p) => this.#flush(p),
    editRow: (t, a, target, text, at) => Client.#editRow(t, a, target, text, at, null),
    acceptFile: (id) => this.#acceptFile(id),
    cancelFile: (id, reason) => this.#cancelFile(id, reason),
    fileDeleted: (id) => this.#fileDeleted(id),
    files: () => this.#files,
    offerFile: (job) => {
      this.#hashJobs.add(job);
      this.#offerFile(job).catch((e) => this.#emit({ event: 'file_failed', conv: job.conv, file_id: job.fileId,
        direction: 'out', error: e.message })).finally(() => this.#hashJobs.delete(job));
    },
    commitCreate: (g, m) => this.#commitCreate(g, m),
    changeGroup: (gid, what, arg) => this.#changeGroup(gid, what, arg),
    emit: (ev) => this.#emit(ev),
    useIdentity: (id) => this.#useIdentity(id),
    unsettled: () => this.#unsettled(),
    opts: () => this.#opts,
    typing: async (to, pt) => {
      for (const id of to) {
        const p = this.#peer(id);
        if (p && p.link.state === 'ready') await p.link.send(pt); // best effort: never stored
      }
    },
  };

  async #commitCreate(g, m) {
    const to = g.state.members.filter((x) => x !== this.peerId);
    await this.#queue(to, m, (t) => t.put('groups', g));
    this.#groupEvent(g, this.peerId, null);
  }

  async #unsettled() {
    let n = 0;
    await this.#db.read('outbox', (t) => t.each('outbox', {}, (r) => { if (!r.enveloped) n++; }));
    for (const p of this.#peers.values()) {
      n += p.receipts.length;
      if (await this.#fileUnfinished(p.id)) n++;
    }
    return n + this.#enveloping.size + this.#xouts.size + this.#xins.size + this.#hashJobs.size;
  }

  // ---- hooks for calls (web/lib/call.js) ---------------------------------------------

  /** A raw Socket.IO emit with ack (e.g. 'offer' {to, call: {...}}). */
  signalEmit(event, arg) {
    if (!this.#signal) return Promise.resolve({ ok: false, error: 'disconnected' });
    return this.#signal.emit(event, arg);
  }

  /** fn(event, payload) gets the offer/answer/ice_candidate events whose
   *  payload has a `call` member; returns the unsubscribe. */
  onCallSignal(fn) {
    this.#callFns.add(fn);
    return () => this.#callFns.delete(fn);
  }

  /** The ICE servers (STUN/TURN) the server gave at login: calls use them too. */
  get iceServers() {
    return this.#iceServers;
  }

  /** Signs a call SDP (PROTOCOL.md §13) with our identity key. Only inputs
   *  under the call label: the key never signs anything else this way. */
  async signCall(bytes) {
    const label = new TextEncoder().encode('echolink-v1-call\0');
    const b = new Uint8Array(bytes);
    if (b.length < label.length || label.some((x, i) => b[i] !== x)) throw new TypeError('not a call signature input');
    return new Uint8Array(await crypto.subtle.sign('Ed25519', this.#identity.ik.privateKey, b));
  }

  /** The peer's identity key (base64url) for checking its call signatures:
   *  the pinned one, else the one the server announced; null while a key
   *  change is pending or when none is known. */
  async peerIk(peerId) {
    const rec = await this.#trust.get(peerId);
    if (rec) return rec.state === 'changed' ? null : rec.bundle.ik;
    return this.#peers.get(peerId)?.bundle?.ik ?? null;
  }
}

// ---- the command table (app.c's, same names, members and replies) -------------------

const str = (a, k) => (typeof a[k] === 'string' ? a[k] : null);
function need(a, k) {
  const v = str(a, k);
  if (v === null) fail('invalid', `"${k}" (a string) is required`);
  return v;
}
function needPeer(a) {
  const p = need(a, 'peer');
  if (!isValidPeerId(p)) fail('invalid', `"${p}" is not a peer ID (32 characters of a-z and 2-7)`);
  return p;
}
// A conversation argument: a bare 32-character peer ID is "p:", other bare
// ids "g:" (as app.c's norm_conv).
function normConv(a, k = 'conv') {
  const c = need(a, k);
  if (c.startsWith('p:') || c.startsWith('g:')) return c;
  return `${isValidPeerId(c) ? 'p:' : 'g:'}${c}`;
}

async function server(api, op, arg) {
  const ack = await api.signal()?.emit(op, arg) ?? { ok: false, error: 'disconnected' };
  if (ack.ok === true) return ack;
  const code = ack.error || 'software';
  const message = ack.message || (code === 'timeout' || code === 'disconnected' ? 'the server did not answer' : code);
  throw new ReqError(code, message);
}

function msgJson(t, row) {
  return (async () => {
    const o = { row: row.row, conv: row.conv, id: row.id, from: row.author, outgoing: row.outgoing, kind: row.kind,
      text: row.text, reply_to: row.reply_to ?? null, ts: row.ts, edited: !!row.edited_at, deleted: !!row.deleted,
      status: statusOf(row), read_at: row.read_at || 0 };
    const rs = await t.allByIndex('reactions', 'target', IDBKeyRange.only([row.conv, row.id]));
    o.reactions = rs.sort((a, b) => a.at - b.at).map((r) => ({ from: r.from, emoji: r.emoji }));
    if (row.file_id) {
      const f = await t.get('files', row.file_id);
      if (f) o.file = fileJson(f);
    }
    return o;
  })();
}

function fileJson(f) {
  const o = { file_id: f.file_id, name: f.name, size: f.size, state: f.state, offset: f.state === 'complete' ? f.size : f.offset,
    sha256: f.sha256, voice_ms: f.voice_ms || 0, mime: f.mime };
  if (f.error) o.error = f.error;
  return o;
}

// Words of a text for search: lower case, diacritics removed.
const words = (s) => String(s).normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);

const COMMANDS = {
  async send(a, api) {
    const c = parseConv(need(a, 'to'));
    const text = need(a, 'text');
    const replyTo = str(a, 'reply_to') ?? undefined;
    return api.serial(async () => {
      const to = await api.recipients(c);
      const m = M.buildChat(text, { replyTo, group: c.group ? c.id : undefined });
      const pt = M.encodeMessage(m);
      const rcpt = Object.fromEntries(to.map((p) => [p, { delivered_at: 0, read_at: 0 }]));
      await api.db().tx(['messages', 'outbox'], async (t) => {
        await t.add('messages', { conv: c.conv, id: m.id, author: this.peerId, outgoing: true, kind: 'chat', text,
          reply_to: replyTo ?? null, file_id: null, ts: m.ts, received_at: m.ts, edited_at: 0, deleted: false, read_at: 0, rcpt });
        await api.queueIn(t, to, m.id, pt);
      });
      this.stats.sent++;
      for (const id of to) api.flush(api.peer(id));
      return { msg_id: m.id };
    });
  },

  async send_file(a, api) {
    const c = parseConv(need(a, 'to'));
    if (c.group) fail('invalid', 'files go to one peer at a time for now');
    if (c.id === this.peerId) fail('invalid', 'that is your own peer ID');
    const blob = a.file;
    if (!(blob instanceof Blob)) fail('invalid', '"file" (a File or Blob) is required');
    const name = str(a, 'name') || blob.name || 'file';
    const nlen = new TextEncoder().encode(name).length;
    if (nlen < 1 || nlen > 255 || /[/\\\u0000-\u001f\u007f-\u009f]/.test(name)) fail('invalid', 'a file name is 1..255 bytes without / \\ or control characters');
    const voiceMs = a.voice_ms === undefined || a.voice_ms === null ? 0 : a.voice_ms;
    if (!Number.isInteger(voiceMs) || voiceMs < 0 || voiceMs > 86400000) fail('invalid', 'voice_ms must be 0..86400000');
    const mime = guessMime(name, blob.type);
    if (voiceMs && !mime.startsWith('audio/')) fail('invalid', 'a voice message must be an audio file');
    const fileId = M.newId();
    api.offerFile({ fileId, conv: c.conv, peer: c.id, blob, name, mime, voiceMs });
    return { file_id: fileId };
  },

  async file_blob(a, api) {
    const id = need(a, 'file_id');
    const f = await api.db().get('files', id);
    if (!f) fail('not_found', `no file ${id}`);
    if (!f.outgoing && f.state !== 'complete') fail('state', `file ${id} is ${f.state}, not complete`);
    if (!f.outgoing && f.disk === 'opfs') {
      // the file on disk itself, not a copy in memory
      const file = await api.files()?.file(id);
      if (!file || file.size !== f.size) fail('not_found', `the bytes of ${id} are not here`);
      return { blob: file, name: f.name, mime: f.mime };
    }
    const b = await api.db().get('blobs', id);
    if (!b) fail('not_found', `the bytes of ${id} are not here`);
    return { blob: b.blob, name: f.name, mime: f.mime };
  },

  async react(a, api) {
    const c = parseConv(need(a, 'conv'));
    const target = need(a, 'target');
    const emoji = need(a, 'emoji');
    const remove = a.remove === true;
    return api.serial(async () => {
      const to = await api.recipients(c);
      const m = M.buildReaction(target, emoji, { remove: remove || undefined, group: c.group ? c.id : undefined });
      await api.queue(to, m, async (t) => {
        if (remove) await t.del('reactions', [c.conv, target, this.peerId, emoji]);
        else await t.put('reactions', { conv: c.conv, target, from: this.peerId, emoji, at: Date.now() });
      });
    });
  },

  async edit(a, api) {
    const c = parseConv(need(a, 'conv'));
    const target = need(a, 'target');
    const text = need(a, 'text');
    return api.serial(async () => {
      const to = await api.recipients(c);
      const m = M.buildEdit(target, text, { group: c.group ? c.id : undefined });
      // applied here first: only our own messages pass the author rule
      await api.queue(to, m, (t) => api.editRow(t, this.peerId, target, text, m.ts));
    });
  },

  async delete(a, api) {
    const c = parseConv(need(a, 'conv'));
    const target = need(a, 'target');
    return api.serial(async () => {
      const to = await api.recipients(c);
      const m = M.buildDelete(target, { group: c.group ? c.id : undefined });
      let fileId = null;
      await api.queue(to, m, async (t) => {
        if (await api.editRow(t, this.peerId, target, null, m.ts) === 1) {
          fileId = (await t.byIndex('messages', 'author_id', [this.peerId, target]))?.file_id ?? null;
        }
      });
      if (fileId) await api.fileDeleted(fileId);
    });
  },

  async read(a, api) {
    const c = parseConv(need(a, 'conv'));
    return api.serial(async () => {
      const now = Date.now();
      const byAuthor = new Map();
      let marked = 0;
      await api.db().tx('messages', (t) => t.each('messages', { index: 'conv_order', range: prefixRange([c.conv]) }, (row, cur) => {
        if (row.outgoing || row.read_at || row.received_at > now) return true;
        row.read_at = now;
        cur.update(row);
        if (row.deleted || row.kind === 'system') return true;
        marked++;
        if (!byAuthor.has(row.author)) byAuthor.set(row.author, []);
        byAuthor.get(row.author).push(row.id);
        return true;
      }));
      for (const [author, ids] of byAuthor) {
        for (let i = 0; i < ids.length; i += M.IDS_MAX) {
          await api.queue([author], M.buildReadReceipt(ids.slice(i, i + M.IDS_MAX)));
        }
      }
      return { marked };
    });
  },

  async typing(a, api) {
    const c = parseConv(need(a, 'conv'));
    const to = await api.recipients(c);
    await api.typing(to, M.encodeMessage(M.buildTyping(a.typing === true, { group: c.group ? c.id : undefined })));
  },

  async accept_file(a, api) {
    await api.acceptFile(need(a, 'file_id'));
  },

  async cancel_file(a, api) {
    await api.cancelFile(need(a, 'file_id'), str(a, 'reason') ?? undefined);
  },

  async add(a, api) {
    const p = needPeer(a);
    const arg = { to: p };
    if (str(a, 'message') !== null) arg.message = a.message;
    const { ok, ...rest } = await server(api, 'contact_request', arg);
    return rest;
  },
  async accept(a, api) { const { ok, ...r } = await server(api, 'contact_respond', { peer_id: needPeer(a), accept: true }); return r; },
  async refuse(a, api) { const { ok, ...r } = await server(api, 'contact_respond', { peer_id: needPeer(a), accept: false }); return r; },
  async remove(a, api) { const { ok, ...r } = await server(api, 'contact_remove', { peer_id: needPeer(a) }); return r; },
  async block(a, api) {
    const p = needPeer(a);
    const { ok, ...r } = await server(api, 'block', { peer_id: p });
    api.peers().get(p)?.link.reset('blocked');
    return r;
  },
  async unblock(a, api) { const { ok, ...r } = await server(api, 'unblock', { peer_id: needPeer(a) }); return r; },
  async peers(a, api) { const { ok, ...r } = await server(api, 'get_contacts', {}); return r; },

  async history(a, api) {
    const conv = normConv(a);
    const limit = Number.isInteger(a.limit) && a.limit > 0 && a.limit <= 10000 ? a.limit : 50;
    const before = Number.isInteger(a.before) ? a.before : 0;
    const messages = await api.db().read(['messages', 'reactions', 'files'], async (t) => {
      let upper = [conv, []];
      if (before > 0) {
        const b = await t.get('messages', before);
        if (!b || b.conv !== conv) return [];
        upper = [conv, b.ts, b.received_at, b.row];
      }
      const rows = [];
      await t.each('messages', { index: 'conv_order', range: IDBKeyRange.bound([conv], upper, false, true), dir: 'prev' }, (row) => {
        rows.push(row);
        return rows.length < limit;
      });
      rows.reverse();
      const out = [];
      for (const r of rows) out.push(await msgJson(t, r));
      return out;
    });
    return { messages };
  },

  async search(a, api) {
    const q = words(need(a, 'query'));
    if (q.length === 0) fail('invalid', 'the query has no words');
    const conv = typeof a.conv === 'string' ? normConv(a) : null;
    const limit = Number.isInteger(a.limit) && a.limit > 0 && a.limit <= 1000 ? a.limit : 50;
    const messages = await api.db().read(['messages', 'reactions', 'files'], async (t) => {
      const rows = [];
      const opts = conv ? { index: 'conv_order', range: prefixRange([conv]), dir: 'prev' } : { dir: 'prev' };
      await t.each('messages', opts, (row) => {
        if (row.deleted || !row.text) return true;
        const w = words(row.text);
        if (q.every((x) => w.some((y) => y.startsWith(x)))) rows.push(row);
        return rows.length < limit;
      });
      if (!conv) rows.sort((x, y) => y.ts - x.ts || y.received_at - x.received_at || y.row - x.row);
      const out = [];
      for (const r of rows) out.push(await msgJson(t, r));
      return out;
    });
    return { messages };
  },

  async conversations(a, api) {
    const list = await api.db().read(['messages', 'peers', 'groups'], async (t) => {
      const by = new Map();
      await t.each('messages', {}, (r) => {
        let c = by.get(r.conv);
        if (!c) { c = { conv: r.conv, name: null, last_ts: 0, unread: 0 }; by.set(r.conv, c); }
        if (r.ts > c.last_ts) c.last_ts = r.ts;
        if (!r.outgoing && !r.read_at && !r.deleted && r.kind !== 'system') c.unread++;
      });
      for (const c of by.values()) {
        if (c.conv.startsWith('p:')) c.name = (await t.get('peers', c.conv.slice(2)))?.name ?? null;
        else c.name = (await t.get('groups', c.conv.slice(2)))?.name ?? null;
      }
      return [...by.values()].sort((x, y) => y.last_ts - x.last_ts);
    });
    return { conversations: list };
  },

  async files(a, api) {
    const conv = normConv(a);
    const fs = await api.db().read('files', (t) => t.allByIndex('files', 'conv', IDBKeyRange.only(conv)));
    return { files: fs.map((f) => ({ ...fileJson(f), outgoing: f.outgoing, peer: f.peer })) };
  },

  async groups(a, api) {
    const gs = await api.db().read('groups', (t) => t.getAll('groups'));
    return { groups: gs.map((g) => ({ group_id: g.group_id, name: g.name, version: g.version, admins: g.state.admins,
      members: g.state.members, left: !!g.left })) };
  },

  async group_create(a, api) {
    const name = need(a, 'name');
    const members = Array.isArray(a.members) ? a.members : [];
    const n = new TextEncoder().encode(name).length;
    if (n < 1 || n > 128) fail('invalid', 'a group name is 1..128 bytes');
    if (members.length === 0 || members.length >= 256) fail('invalid', 'a group has 1..255 other members');
    for (const m of members) if (!isValidPeerId(m) || m === this.peerId) fail('invalid', `"${m}" is not another peer's ID`);
    const ack = await server(api, 'group_create', { name, members });
    const dir = ack.group?.group_id;
    if (typeof dir !== 'string') fail('software', 'the server sent no group id');
    return api.serial(async () => {
      const state = { group_id: M.newId(), version: 1, name, admins: [this.peerId], members: [this.peerId, ...new Set(members)] };
      const m = await M.buildGroupCreated(api.identity(), state);
      const g = { group_id: state.group_id, version: 1, name, state, by_ik: m.by_ik, sig: m.sig, dir, left: false };
      await api.commitCreate(g, m);
      const { ok, ...rest } = ack;
      return { ...rest, group_id: state.group_id };
    });
  },

  async group_add(a, api) { await api.serial(() => api.changeGroup(need(a, 'group_id'), 'add', need(a, 'peer'))); },
  async group_remove(a, api) {
    const gid = need(a, 'group_id');
    const peer = need(a, 'peer');
    if (peer === this.peerId) return COMMANDS.group_leave.call(this, { group_id: gid }, api);
    await api.serial(() => api.changeGroup(gid, 'remove', peer));
  },
  async group_admin(a, api) { await api.serial(() => api.changeGroup(need(a, 'group_id'), 'admins', need(a, 'peer'))); },
  async group_rename(a, api) { await api.serial(() => api.changeGroup(need(a, 'group_id'), 'rename', need(a, 'name'))); },

  async group_leave(a, api) {
    const gid = need(a, 'group_id');
    await api.serial(async () => {
      const g = await api.db().get('groups', gid);
      if (!g || g.left) fail('not_found', `you are not in group ${gid}`);
      if (isAdmin(g.state, this.peerId) && g.state.members.length > 1) {
        // an admin leaves by publishing the state without itself
        await api.changeGroup(gid, 'remove', this.peerId);
      } else {
        const to = g.state.members.filter((x) => x !== this.peerId);
        await api.queue(to, M.buildGroupLeave(gid), async (t) => {
          const now = await t.get('groups', gid);
          now.left = true;
          await t.put('groups', now);
        });
      }
      const now = await api.db().get('groups', gid);
      if (now && !now.left) { now.left = true; await api.db().put('groups', now); }
      if (g.dir) api.signal().emit('group_leave', { group_id: g.dir });
    });
  },

  async verify(a, api) {
    const p = needPeer(a);
    const rec = await api.trust().get(p);
    if (!rec) fail('not_found', `no key known for ${p} yet: connect to it once`);
    const num = formatSafetyNumber(await safetyNumber(api.bundle().ik, this.peerId, rec.bundle.ik, p));
    const confirm = a.confirm === true;
    if (confirm) {
      try {
        await api.trust().setVerified(p, true);
      } catch (e) {
        fail('state', e.message);
      }
    }
    return { safety: num, verified: confirm };
  },

  async accept_key(a, api) {
    const p = needPeer(a);
    const peer = api.peers().get(p);
    if (peer && peer.link.state === 'held') {
      await peer.link.acceptKeyChange();
      return {};
    }
    const rec = await api.trust().get(p);
    if (!rec || rec.state !== 'changed') fail('state', `no key change is pending for ${p}`);
    await api.trust().acceptChange(p);
    return {};
  },

  async stats(a, api) {
    const links = { connects: 0, ice_restarts: 0, failures: 0 };
    for (const p of api.peers().values()) {
      links.connects += p.link.stats.connects;
      links.ice_restarts += p.link.stats.restarts;
      links.failures += p.link.stats.failures;
    }
    return { stats: { ...this.stats, links, unsettled: await api.unsettled() } };
  },

  async whoami() {
    return { peer_id: this.peerId, name: this.name, online: this.loggedIn };
  },

  async export(a, api) {
    const pass = need(a, 'passphrase');
    if (!pass) fail('invalid', 'a backup needs a passphrase');
    const opts = Number.isInteger(a.n) ? { n: a.n } : {}; // tests use a smaller n
    return { backup: await exportBackup(api.identity(), pass, opts) };
  },

  async import(a, api) {
    const backup = need(a, 'backup');
    const pass = typeof a.passphrase === 'string' ? a.passphrase : fail('invalid', '"passphrase" (a string) is required');
    if (!this.needsSetup && a.force !== true) fail('exists', 'this browser already has an identity (force: true replaces it)');
    let identity;
    try {
      identity = await importBackup(backup, pass);
    } catch (e) {
      fail('invalid', e.message); // "bad passphrase or corrupted backup", or why it is not a backup
    }
    const seeds = await exportSeeds(identity);
    await api.db().put('meta', seeds, 'identity');
    await api.useIdentity(identity);
    return { peer_id: this.peerId, restart: !!api.signal() };
  },

  async set_name(a, api) {
    const name = need(a, 'name');
    if (new TextEncoder().encode(name).length > 64) fail('invalid', 'a name is at most 64 bytes');
    await api.db().put('meta', name, 'name');
    this.name = name;
    if (api.signal()) await server(api, 'profile_update', { name });
  },

  async invite(a, api) {
    let origin;
    try { origin = new URL(api.opts().server).origin; } catch { origin = globalThis.location?.origin ?? ''; }
    return { link: `${origin}/#/invite/${this.peerId}` };
  },
};
