// frame.js - EchoLink transport frames (docs/PROTOCOL.md §9.3): one
// FrameCipher per channel and direction, AES-256-GCM with the Noise nonce,
// a strict frame counter and a Noise REKEY every 65536 frames.
//
//   frame = 0x10 ‖ u64(n) ‖ AEAD(key, 0x00000000 ‖ u64(n), ad = bytes 0..8, plaintext)
//
// WebCrypto is asynchronous, but frames must be handled strictly in the order
// they arrive (a counter check against a state that an earlier, still
// pending, open() is about to change would be wrong). So every seal() and
// open() joins an internal queue and runs after the previous one settled:
// callers may fire open() for each data-channel message without awaiting.

import { KEYLEN, MAX_NONCE, aeadDecrypt, aeadEncrypt, importAesKey, rekeyRaw } from './noise.js';

export const FRAME_TYPE = 0x10;
export const HEADER_LEN = 9;
export const TAG_LEN = 16;
export const MIN_FRAME = HEADER_LEN + TAG_LEN;           // 25: an empty plaintext
export const MAX_FRAME = 262144;                          // a=max-message-size
export const MAX_PLAINTEXT = MAX_FRAME - MIN_FRAME;       // 262119
export const REKEY_INTERVAL = 65536n;

/** A frame that open() refused; .reason is 'truncated', 'replay', 'reorder'
 *  or 'auth', .n the frame's counter when it had one. */
export class FrameError extends Error {
  constructor(reason, message, n) {
    super(message);
    this.name = 'FrameError';
    this.reason = reason;
    this.n = n;
  }
}

// The epoch of frame n: how many rekeys its key has gone through.
const epochOf = (n) => n / REKEY_INTERVAL;

/** One direction of one channel. Use a FrameCipher either to seal (sender)
 *  or to open (receiver), not both: each keeps one counter. */
export class FrameCipher {
  #key;             // Promise<CryptoKey> of the current epoch
  #epoch = 0n;
  #n = 0n;          // next n to send, or next n expected
  #queue = Promise.resolve();

  /** Counters of what open() accepted and refused, and of sealed frames. */
  stats = { sealed: 0, opened: 0, truncated: 0, replay: 0, reorder: 0, auth: 0 };

  /** key: the channel key for this direction (32 bytes, §9.2). The bytes are
   *  copied; the caller wipes its own copy when it likes. */
  constructor(key) {
    const raw = Uint8Array.from(key instanceof Uint8Array ? key : new Uint8Array(key));
    if (raw.length !== KEYLEN) throw new TypeError('frame key must be 32 bytes');
    this.#key = importAesKey(raw);
    raw.fill(0); // importKey copied it synchronously
    this.#key.catch(() => {}); // reported by the first operation instead
  }

  /** The next counter to send (sender) or the one expected (receiver). */
  get counter() {
    return this.#n;
  }

  #enqueue(fn) {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  // The key for frame n, without changing state: the current key after as
  // many REKEYs as n's epoch is ahead of ours.
  async #keyFor(n) {
    let key = await this.#key;
    for (let e = this.#epoch; e < epochOf(n); e++) {
      const raw = await rekeyRaw(key);
      key = await importAesKey(raw);
      raw.fill(0);
    }
    return key;
  }

  #commitKey(n, key) {
    if (epochOf(n) !== this.#epoch) {
      this.#epoch = epochOf(n);
      this.#key = Promise.resolve(key);
    }
  }

  /** Encrypts one plaintext (kind ‖ body) into the next frame. */
  seal(plaintext) {
    const pt = Uint8Array.from(plaintext instanceof Uint8Array ? plaintext : new Uint8Array(plaintext));
    return this.#enqueue(async () => {
      if (pt.length > MAX_PLAINTEXT) throw new RangeError(`plaintext over ${MAX_PLAINTEXT} bytes`);
      const n = this.#n;
      if (n >= MAX_NONCE) throw new RangeError('frame counter exhausted: close the channel');
      const key = await this.#keyFor(n);
      const frame = new Uint8Array(HEADER_LEN + pt.length + TAG_LEN);
      frame[0] = FRAME_TYPE;
      new DataView(frame.buffer).setBigUint64(1, n, false);
      frame.set(await aeadEncrypt(key, n, frame.subarray(0, HEADER_LEN), pt), HEADER_LEN);
      this.#commitKey(n, key);
      this.#n = n + 1n;
      this.stats.sealed++;
      return frame;
    });
  }

  /** Decrypts the next frame; throws a FrameError (and counts it) when the
   *  frame is refused, in which case nothing else changes. */
  open(frame) {
    const f = Uint8Array.from(frame instanceof Uint8Array ? frame : new Uint8Array(frame));
    return this.#enqueue(() => this.#open(f));
  }

  #refuse(reason, message, n) {
    this.stats[reason]++;
    throw new FrameError(reason, message, n);
  }

  async #open(f) {
    if (f.length < MIN_FRAME || f[0] !== FRAME_TYPE) {
      this.#refuse('truncated', 'not a frame (too short or wrong type)');
    }
    // Larger frames cannot cross the channel (max-message-size); one that
    // claims to have done so is malformed framing, not a crypto failure.
    if (f.length > MAX_FRAME) this.#refuse('truncated', `frame over ${MAX_FRAME} bytes`);
    const n = new DataView(f.buffer, f.byteOffset).getBigUint64(1, false);
    if (n < this.#n) this.#refuse('replay', `frame ${n} below expected ${this.#n}`, n);
    if (n > this.#n) this.#refuse('reorder', `frame ${n} above expected ${this.#n}`, n);
    if (n >= MAX_NONCE) this.#refuse('auth', 'frame counter exhausted', n);
    const key = await this.#keyFor(n);
    let pt;
    try {
      pt = await aeadDecrypt(key, n, f.subarray(0, HEADER_LEN), f.subarray(HEADER_LEN));
    } catch {
      this.#refuse('auth', `frame ${n} does not authenticate`, n);
    }
    this.#commitKey(n, key);
    this.#n = n + 1n;
    this.stats.opened++;
    return pt;
  }

  /** Moves the counter to n (>= the current one), rekeying as the frames in
   *  between would have: for test vectors and benchmarks, not for peers. */
  seek(n) {
    const target = BigInt(n);
    return this.#enqueue(async () => {
      if (target < this.#n || target >= MAX_NONCE) throw new RangeError('seek only forward, below 2^64-1');
      this.#commitKey(target, await this.#keyFor(target));
      this.#n = target;
    });
  }
}
