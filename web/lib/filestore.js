// filestore.js - received files streamed to disk: one file per transfer,
// named after its file_id, in the Origin Private File System (OPFS), under
// /echolink-files/<database name>/ so that two databases of one origin
// never share files.
//
//   const fs = await FileStore.open('echolink');   // null: no OPFS here
//   const sink = await fs.sink(fileId, { at });     // writes go to the disk
//   sink.write(offset, bytes);                      // in order; bytes are taken
//   await sink.flush();                             // durable (and errors surface)
//   await sink.close();
//   const file = await fs.file(fileId);             // a File backed by the disk, or null
//   await fs.remove(fileId);
//
// Writing: a dedicated worker (this same module, started with the name
// WORKER_NAME) holds a FileSystemSyncAccessHandle per open file and writes
// each chunk in place at its offset, so memory stays bounded whatever the
// file's size, and the file's length after a reload is where the transfer
// resumes (writes are applied in order: the length covers a prefix).
// Browsers where that worker cannot start fall back to the main thread's
// FileSystemFileHandle.createWritable(): its writes land in a swap file and
// reach the real file only when the stream closes, so flush() closes it and
// opens another (each costs a copy of the file so far, hence rarely).
//
// Errors of a write are not reported by write() (it returns at once, so a
// fast network never waits on the disk); the next flush() or close()
// rejects with them.

export const DIR = 'echolink-files';
export const WORKER_NAME = 'echolink-files';
const LOCK_WAIT_MS = 3000; // a handle of an unloaded page may linger briefly

const isWorker = typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope &&
  globalThis.name === WORKER_NAME;

const errText = (e) => `${e?.name || 'Error'}: ${e?.message || e}`;
const isNotFound = (e) => e?.name === 'NotFoundError';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The directory of one database's files (created when `create`). */
async function filesDir(dbName, create) {
  const root = await navigator.storage.getDirectory();
  const top = await root.getDirectoryHandle(DIR, { create });
  return top.getDirectoryHandle(encodeURIComponent(dbName), { create });
}

// A Uint8Array that owns its whole buffer (so the buffer can be transferred).
const owned = (b) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice());

/** Writes through the worker's sync access handle. */
class WorkerSink {
  #store;
  #name;

  constructor(store, name, size) {
    this.#store = store;
    this.#name = name;
    this.size = size;
  }

  write(at, bytes) {
    const b = owned(bytes);
    this.#store.post({ op: 'write', name: this.#name, at, data: b.buffer }, [b.buffer]);
  }

  flush() { return this.#store.call({ op: 'flush', name: this.#name }); }

  close() {
    this.#store.forget(this.#name, this);
    return this.#store.call({ op: 'close', name: this.#name });
  }
}

/** Writes through a main-thread FileSystemWritableFileStream. */
class WritableSink {
  #store;
  #fh;
  #w;
  #chain = Promise.resolve();
  #err = null;

  constructor(store, fh, w, size) {
    this.#store = store;
    this.#fh = fh;
    this.#w = w;
    this.size = size;
  }

  static async open(store, fh, at) {
    let size = (await fh.getFile()).size;
    const w = await fh.createWritable({ keepExistingData: true });
    if (at !== undefined && at !== size) {
      await w.truncate(at);
      size = at;
    }
    return new WritableSink(store, fh, w, size);
  }

  write(at, bytes) {
    this.#chain = this.#chain.then(() => (this.#err ? null : this.#w.write({ type: 'write', position: at, data: bytes })))
      .catch((e) => { this.#err ??= e; });
  }

  async #settle() {
    await this.#chain;
    if (this.#err) throw this.#err;
  }

  async flush() {
    await this.#settle();
    await this.#w.close(); // only now the bytes are in the file
    this.#w = await this.#fh.createWritable({ keepExistingData: true });
  }

  async close() {
    this.#store.forget(this.#fh.name, this);
    try {
      await this.#settle();
    } catch (e) {
      await this.#w.abort().catch(() => {});
      throw e;
    }
    await this.#w.close();
  }

  /** Drops what was not flushed (the file is about to be removed). */
  abort() {
    this.#store.forget(this.#fh.name, this);
    this.#err ??= new DOMException('removed', 'AbortError');
    return this.#chain.then(() => this.#w.abort()).catch(() => {});
  }
}

export class FileStore {
  #dbName;
  #dir;
  #worker = null;
  #calls = new Map();
  #nextCall = 1;
  #sinks = new Map(); // name -> open sink
  #closed = false;

  constructor(dbName, dir, worker) {
    this.#dbName = dbName;
    this.#dir = dir;
    this.#worker = worker;
    if (worker) {
      worker.onmessage = (e) => this.#answer(e.data);
      worker.onerror = (e) => this.#broken(`the file worker failed: ${e.message || 'unknown error'}`);
    }
  }

  /** The store of database `dbName`, or null where the browser has no
   *  OPFS (or no way to write it): files then stay in IndexedDB. */
  static async open(dbName) {
    if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function') return null;
    let dir;
    try {
      dir = await filesDir(dbName, true);
    } catch {
      return null; // storage disabled by the user or the browser's mode
    }
    const worker = await FileStore.#startWorker(dbName);
    if (!worker && typeof globalThis.FileSystemFileHandle?.prototype?.createWritable !== 'function') return null;
    return new FileStore(dbName, dir, worker);
  }

  /** The worker, once it answered that it can write; null otherwise. */
  static async #startWorker(dbName) {
    if (typeof Worker !== 'function') return null;
    let w;
    try {
      w = new Worker(import.meta.url, { type: 'module', name: WORKER_NAME });
    } catch {
      return null;
    }
    const ok = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 10000);
      w.onmessage = (e) => { clearTimeout(timer); resolve(e.data?.ok === true && e.data.result === true); };
      w.onerror = () => { clearTimeout(timer); resolve(false); };
      w.postMessage({ id: 0, op: 'hello', dbName });
    });
    if (!ok) w.terminate();
    return ok ? w : null;
  }

  /** 'worker' or 'writable': how bytes reach the disk here. */
  get mode() {
    return this.#worker ? 'worker' : 'writable';
  }

  post(msg, transfer = []) {
    if (this.#closed || !this.#worker) return;
    this.#worker.postMessage(msg, transfer);
  }

  call(msg) {
    if (this.#closed) return Promise.reject(new Error('the file store is closed'));
    const id = this.#nextCall++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      this.#worker.postMessage({ ...msg, id });
    });
  }

  #answer(m) {
    const c = this.#calls.get(m?.id);
    if (!c) return;
    this.#calls.delete(m.id);
    if (m.ok) c.resolve(m.result);
    else c.reject(new Error(m.error));
  }

  #broken(why) {
    for (const c of this.#calls.values()) c.reject(new Error(why));
    this.#calls.clear();
  }

  forget(name, sink) {
    if (this.#sinks.get(name) === sink) this.#sinks.delete(name);
  }

  /** Opens file `fileId` for writing (created when missing); with `at`,
   *  its length is first set to `at`. sink.size: its length then. */
  async sink(fileId, { at } = {}) {
    const old = this.#sinks.get(fileId);
    if (old) await old.close().catch(() => {});
    let s;
    if (this.#worker) {
      const size = await this.call({ op: 'open', name: fileId, at });
      s = new WorkerSink(this, fileId, size);
    } else {
      s = await WritableSink.open(this, await this.#dir.getFileHandle(fileId, { create: true }), at);
    }
    this.#sinks.set(fileId, s);
    return s;
  }

  /** The file's bytes as they are on disk (a File, not a copy), or null. */
  async file(fileId) {
    try {
      return await (await this.#dir.getFileHandle(fileId)).getFile();
    } catch (e) {
      if (isNotFound(e) || e?.name === 'TypeMismatchError') return null;
      throw e;
    }
  }

  /** Names of the files kept (file_ids). */
  async names() {
    const out = [];
    for await (const [name, h] of this.#dir.entries()) if (h.kind === 'file') out.push(name);
    return out;
  }

  /** Removes file `fileId` (closing it first); none is fine. */
  async remove(fileId) {
    const s = this.#sinks.get(fileId);
    if (this.#worker) {
      if (s) this.forget(fileId, s);
      await this.call({ op: 'remove', name: fileId });
      return;
    }
    if (s) await s.abort();
    try {
      await this.#dir.removeEntry(fileId);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Stops writing: the worker closes its handles and ends. Bytes it had
   *  not written yet are lost, which a resume only has to ask for again. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#broken('the file store is closed');
    for (const s of this.#sinks.values()) if (s instanceof WritableSink) s.close().catch(() => {});
    this.#sinks.clear();
    const w = this.#worker;
    if (w) {
      // the handles are closed (their locks freed) before the worker ends
      const id = this.#nextCall++;
      const end = setTimeout(() => w.terminate(), 2000);
      const stop = () => { clearTimeout(end); w.terminate(); };
      this.#calls.set(id, { resolve: stop, reject: stop });
      w.postMessage({ id, op: 'closeAll' });
    }
  }

  get dbName() {
    return this.#dbName;
  }
}

// ---- the worker ----------------------------------------------------------------

function runWorker() {
  let dir = null;
  const handles = new Map(); // name -> FileSystemSyncAccessHandle
  const failed = new Map();  // name -> the first write error since the last flush

  // The lock of a handle held by an unloaded page is released a moment later.
  async function openHandle(name) {
    const fh = await dir.getFileHandle(name, { create: true });
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        return await fh.createSyncAccessHandle();
      } catch (e) {
        if (e?.name !== 'NoModificationAllowedError' || Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }

  function handle(name) {
    const h = handles.get(name);
    if (!h) throw new Error(`file ${name} is not open`);
    return h;
  }

  function check(name) {
    const e = failed.get(name);
    if (e) {
      failed.delete(name);
      throw new Error(`writing ${name} failed: ${e}`);
    }
  }

  function closeOne(name) {
    const h = handles.get(name);
    if (!h) return;
    handles.delete(name);
    try {
      h.flush();
    } finally {
      h.close();
    }
  }

  const ops = {
    async hello(m) {
      dir = await filesDir(m.dbName, true);
      return typeof FileSystemFileHandle.prototype.createSyncAccessHandle === 'function';
    },
    async open(m) {
      let h = handles.get(m.name);
      if (!h) {
        h = await openHandle(m.name);
        handles.set(m.name, h);
        failed.delete(m.name);
      }
      if (m.at !== undefined && m.at !== null && h.getSize() !== m.at) h.truncate(m.at);
      return h.getSize();
    },
    write(m) {
      if (failed.has(m.name)) return; // nothing after a hole
      try {
        const b = new Uint8Array(m.data);
        const n = handle(m.name).write(b, { at: m.at });
        if (n !== b.length) throw new Error(`short write (${n} of ${b.length} bytes)`);
      } catch (e) {
        failed.set(m.name, errText(e));
      }
    },
    flush(m) {
      check(m.name);
      handle(m.name).flush();
    },
    close(m) {
      const err = failed.get(m.name);
      failed.delete(m.name);
      closeOne(m.name);
      if (err) throw new Error(`writing ${m.name} failed: ${err}`);
    },
    async remove(m) {
      failed.delete(m.name);
      try { closeOne(m.name); } catch { /* removed anyway */ }
      try {
        await dir.removeEntry(m.name);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
    closeAll() {
      for (const name of [...handles.keys()]) {
        try { closeOne(name); } catch { /* the page is going away */ }
      }
    },
  };

  // Messages are handled in arrival order; writes are synchronous, so no
  // later write of a file overtakes an earlier one.
  globalThis.onmessage = async (e) => {
    const m = e.data;
    const fn = Object.hasOwn(ops, m?.op) ? ops[m.op] : null;
    if (m.op === 'write') { ops.write(m); return; } // no answer: errors wait for flush/close
    try {
      if (!fn) throw new Error(`unknown operation ${m?.op}`);
      const result = await fn(m);
      globalThis.postMessage({ id: m.id, ok: true, result });
    } catch (err) {
      globalThis.postMessage({ id: m.id, ok: false, error: errText(err) });
    }
  };
}

if (isWorker) runWorker();
