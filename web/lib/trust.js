// trust.js - trust on first use (docs/PROTOCOL.md §10.2) for the web client.
//
// Per peer ID the client pins the whole bundle (ik, sk, sk_sig) of the first
// successful handshake or first opened envelope. A later bundle that differs
// is a key change: the peer goes to state 'changed', is unverified, and the
// client sends nothing to it until the user accepts the new bundle. Nothing
// here ever replaces a pin without acceptChange().
//
// States: 'new' (just pinned), 'known' (seen again, or a change accepted),
// 'verified' (the user compared safety numbers), 'changed' (pending the
// user's decision). The peer ID is a hash of ik, so a bundle whose ik does
// not hash to the peer ID is never a key change but an error (the handshake
// has already failed with "identity mismatch").
//
// Storage is pluggable: any object with async get(peerId) -> record | undefined
// and async set(peerId, record); records are plain JSON-able objects, so
// IndexedDB or localStorage adapters are a few lines. MemoryTrustStorage is
// the Map-backed default.

import { peerIdFromIk, verifyBundle } from './identity.js';

export const TRUST_NEW = 'new';
export const TRUST_KNOWN = 'known';
export const TRUST_VERIFIED = 'verified';
export const TRUST_CHANGED = 'changed';

/** Map-backed storage; copies records in and out so callers cannot alter
 *  a pin by mutating an object they hold. */
export class MemoryTrustStorage {
  #map = new Map();

  async get(peerId) {
    const r = this.#map.get(peerId);
    return r === undefined ? undefined : structuredClone(r);
  }

  async set(peerId, record) {
    this.#map.set(peerId, structuredClone(record));
  }
}

const sameBundle = (a, b) => a.ik === b.ik && a.sk === b.sk && a.sk_sig === b.sk_sig;
const pick = (b) => ({ ik: b.ik, sk: b.sk, sk_sig: b.sk_sig });

/** An operation on a peer that its trust state does not allow. */
export class TrustError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TrustError';
  }
}

export class TrustStore {
  #storage;
  #now;
  // Per-peer promise chains: two handshakes finishing together must not
  // both read "no pin" and race to write.
  #locks = new Map();

  /** storage: {get, set} as above (default MemoryTrustStorage); opts.now:
   *  clock in ms (tests). */
  constructor(storage = new MemoryTrustStorage(), { now = Date.now } = {}) {
    this.#storage = storage;
    this.#now = now;
  }

  async #serial(peerId, fn) {
    const prev = this.#locks.get(peerId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.#locks.set(peerId, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(peerId) === tail) this.#locks.delete(peerId);
    }
  }

  /** Records a bundle seen in a successful handshake or opened envelope of
   *  peerId. Returns the updated record {peerId, state, bundle (the pin),
   *  pending (the unaccepted new bundle, only in 'changed'), firstSeen,
   *  changedAt?}. A first sighting pins it ('new'); the pinned bundle again
   *  moves 'new' to 'known' and keeps 'verified'; a different bundle gives
   *  'changed' and keeps the old pin. Throws TypeError when the bundle does
   *  not verify or its ik is not peerId's. */
  async observe(peerId, bundle) {
    if (!(await verifyBundle(bundle))) throw new TypeError('bundle does not verify');
    if ((await peerIdFromIk(bundle.ik)) !== peerId) throw new TypeError('bundle ik does not belong to this peer ID');
    return this.#serial(peerId, async () => {
      let r = await this.#storage.get(peerId);
      if (!r) {
        r = { peerId, state: TRUST_NEW, bundle: pick(bundle), firstSeen: this.#now() };
      } else if (r.state === TRUST_CHANGED) {
        // Still waiting for the user: remember the latest bundle offered.
        if (!sameBundle(r.bundle, bundle)) r.pending = pick(bundle);
      } else if (sameBundle(r.bundle, bundle)) {
        if (r.state === TRUST_NEW) r.state = TRUST_KNOWN;
      } else {
        r.state = TRUST_CHANGED;
        r.pending = pick(bundle);
        r.changedAt = this.#now();
      }
      await this.#storage.set(peerId, r);
      return r;
    });
  }

  /** The record of peerId, or undefined. */
  async get(peerId) {
    return this.#storage.get(peerId);
  }

  /** The state of peerId, or undefined when never seen. */
  async state(peerId) {
    return (await this.#storage.get(peerId))?.state;
  }

  /** False while a key change is pending: nothing may be sent to the peer. */
  async maySend(peerId) {
    return (await this.state(peerId)) !== TRUST_CHANGED;
  }

  /** The user accepts the pending new bundle: it becomes the pin and the
   *  peer is 'known' (unverified: the safety number must be compared
   *  again to reach 'verified'). Throws TrustError when no change is
   *  pending. */
  async acceptChange(peerId) {
    return this.#serial(peerId, async () => {
      const r = await this.#storage.get(peerId);
      if (!r || r.state !== TRUST_CHANGED || !r.pending) throw new TrustError('no key change pending for this peer');
      r.bundle = r.pending;
      delete r.pending;
      r.state = TRUST_KNOWN;
      await this.#storage.set(peerId, r);
      return r;
    });
  }

  /** Marks the peer verified (the user compared safety numbers) or, with
   *  verified = false, back to 'known'. Throws TrustError for a peer never
   *  seen or with a key change pending (verifying the number, which depends
   *  on ik only, says nothing about the new sk: accept or refuse it first). */
  async setVerified(peerId, verified = true) {
    return this.#serial(peerId, async () => {
      const r = await this.#storage.get(peerId);
      if (!r) throw new TrustError('unknown peer');
      if (r.state === TRUST_CHANGED) throw new TrustError('a key change is pending: accept it first');
      r.state = verified ? TRUST_VERIFIED : TRUST_KNOWN;
      await this.#storage.set(peerId, r);
      return r;
    });
  }
}
