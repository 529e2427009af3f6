// db.js - the web client's local database: one IndexedDB database per
// origin (name chosen by the caller), the browser's history.db + trust.db
// (src/client/history.h, trust.h). The server keeps no history: this is the
// only copy of the user's messages, and of the identity keys.
//
// Object stores (one per table of history.h):
//   meta       key -> value: 'identity' (seeds, identity.js exportIdentity), 'name'
//   messages   rows by autoincrement `row`, unique by (author, id); outgoing
//              rows carry their recipients' delivery/read times in `rcpt`
//   reactions  (conv, target, from, emoji)
//   seen       (from, id) of protocol messages that are not rows (dedupe)
//   outbox     plaintexts still to deliver, per recipient, in one global
//              order `seq`; a row leaves only on the recipient's receipt
//   files      transfers both ways, with the confirmed offset
//   blobs      the bytes of a file: the source Blob of an outgoing one, the
//              assembled Blob of a complete incoming one
//   chunks     received chunks by (file_id, offset) until the file completes,
//              so a reload resumes from the bytes already here
//   groups     our trusted signed group state (§11.1), applied forward only
//   peers      names and last-seen times, so the UI works offline
//   trust      trust.js records (pins), by peer ID
//
// Transactions: DB.tx(stores, fn) runs fn(t) in one readwrite transaction
// and resolves once it committed (rejects, having rolled back, when fn
// throws or a request fails). Inside fn only IndexedDB requests may be
// awaited (t.get/put/...): awaiting anything else (WebCrypto, the network)
// lets IndexedDB commit the transaction early. So a message and its outbox
// rows, or "seen" and a message's effect, commit together or not at all.

export const DB_VERSION = 1;

const STORES = {
  meta: {},
  messages: { keyPath: 'row', autoIncrement: true, indexes: {
    author_id: [['author', 'id'], { unique: true }],
    conv_order: [['conv', 'ts', 'received_at', 'row']],
    conv_id: [['conv', 'id']],
  } },
  reactions: { keyPath: ['conv', 'target', 'from', 'emoji'], indexes: { target: [['conv', 'target']] } },
  seen: { keyPath: ['from', 'id'], indexes: { at: ['at'] } },
  outbox: { keyPath: 'seq', autoIncrement: true, indexes: {
    peer: [['peer', 'seq']],
    peer_msg: [['peer', 'msg_id'], { unique: true }],
  } },
  files: { keyPath: 'file_id', indexes: { conv: ['conv'], peer: ['peer'] } },
  blobs: { keyPath: 'file_id' },
  chunks: { keyPath: ['file_id', 'offset'] },
  groups: { keyPath: 'group_id' },
  peers: { keyPath: 'peer_id' },
  trust: { keyPath: 'peerId' },
};

export const STORE_NAMES = Object.keys(STORES);

const req = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

/** A transaction's stores as promise-returning calls. */
class Tx {
  constructor(t) {
    this.t = t;
  }

  store(name) {
    return this.t.objectStore(name);
  }

  get(store, key) { return req(this.store(store).get(key)); }
  put(store, value, key) { return req(key === undefined ? this.store(store).put(value) : this.store(store).put(value, key)); }
  add(store, value) { return req(this.store(store).add(value)); }
  del(store, key) { return req(this.store(store).delete(key)); }
  getAll(store, range, count) { return req(this.store(store).getAll(range, count)); }
  count(store, range) { return req(this.store(store).count(range)); }
  byIndex(store, index, key) { return req(this.store(store).index(index).get(key)); }
  allByIndex(store, index, range, count) { return req(this.store(store).index(index).getAll(range, count)); }
  countByIndex(store, index, range) { return req(this.store(store).index(index).count(range)); }

  /** Walks a cursor (of a store, or of one of its indexes when index is
   *  given): fn(value, cursor) returns false to stop. Resolves when done. */
  each(store, { index, range, dir = 'next' } = {}, fn) {
    const src = index ? this.store(store).index(index) : this.store(store);
    return new Promise((resolve, reject) => {
      const r = src.openCursor(range, dir);
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const c = r.result;
        if (!c) { resolve(); return; }
        let go;
        try {
          go = fn(c.value, c);
        } catch (e) {
          reject(e);
          return;
        }
        if (go === false) resolve(); else c.continue();
      };
    });
  }
}

export class DB {
  #db;

  constructor(idb) {
    this.#db = idb;
    // another tab upgrading the schema: let it, this tab's copy goes stale
    idb.onversionchange = () => idb.close();
  }

  /** Opens (creating or upgrading) the database `name`. */
  static open(name, { indexedDB = globalThis.indexedDB } = {}) {
    if (!indexedDB) return Promise.reject(new Error('IndexedDB is not available in this browser'));
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(name, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        for (const [sname, def] of Object.entries(STORES)) {
          if (db.objectStoreNames.contains(sname)) continue;
          const opts = {};
          if (def.keyPath) opts.keyPath = def.keyPath;
          if (def.autoIncrement) opts.autoIncrement = true;
          const s = db.createObjectStore(sname, opts);
          for (const [iname, [kp, iopts]] of Object.entries(def.indexes || {})) s.createIndex(iname, kp, iopts || {});
        }
      };
      r.onsuccess = () => resolve(new DB(r.result));
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new Error(`database ${name} is held open by an older version in another tab`));
    });
  }

  /** Deletes the database `name` (tests, "forget everything"). */
  static drop(name, { indexedDB = globalThis.indexedDB } = {}) {
    return new Promise((resolve, reject) => {
      const r = indexedDB.deleteDatabase(name);
      r.onsuccess = () => resolve();
      r.onerror = () => reject(r.error);
    });
  }

  /** One transaction over `stores` (a name or a list); fn(t) may await only
   *  t's requests. Resolves with fn's result after the commit. */
  tx(stores, fn, mode = 'readwrite') {
    const names = typeof stores === 'string' ? [stores] : stores;
    return new Promise((resolve, reject) => {
      let t;
      try {
        t = this.#db.transaction(names, mode, { durability: 'default' });
      } catch (e) {
        reject(e);
        return;
      }
      let result;
      let failed = null;
      t.oncomplete = () => (failed ? reject(failed) : resolve(result));
      t.onabort = () => reject(failed || t.error || new Error('transaction aborted'));
      t.onerror = (e) => { e.preventDefault(); };
      Promise.resolve()
        .then(() => fn(new Tx(t)))
        .then((r) => { result = r; }, (e) => {
          failed = e;
          try { t.abort(); } catch { /* already finished */ }
        });
    });
  }

  /** A read-only transaction. */
  read(stores, fn) {
    return this.tx(stores, fn, 'readonly');
  }

  get(store, key) { return this.read(store, (t) => t.get(store, key)); }
  put(store, value, key) { return this.tx(store, (t) => t.put(store, value, key)); }
  del(store, key) { return this.tx(store, (t) => t.del(store, key)); }

  /** A trust.js storage adapter backed by the `trust` store. */
  trustStorage() {
    return {
      get: async (peerId) => {
        const r = await this.get('trust', peerId);
        return r === undefined ? undefined : r;
      },
      set: (peerId, record) => this.put('trust', { ...record, peerId }),
    };
  }

  close() {
    this.#db.close();
  }
}

/** The IDBKeyRange of every key starting with `prefix` (an array) in an
 *  index or store whose keys are longer arrays. */
export function prefixRange(prefix) {
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}
