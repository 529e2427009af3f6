// noise.js - the Noise Protocol Framework (revision 34) for EchoLink: the
// CipherState, SymmetricState and HandshakeState objects of the spec (§5),
// with DH = 25519, cipher = AESGCM, hash = SHA256, and the patterns EchoLink
// uses: XX (the session handshake, docs/PROTOCOL.md §9) and X (sealed
// envelopes, §10.3). WebCrypto only (globalThis.crypto.subtle), no
// dependencies; everything that touches a key is async.
//
// Failures throw a NoiseError whose .code says which check failed, so that the
// EchoLink layer can map them onto its reasons without parsing text:
//   'decrypt'  an AEAD tag did not verify (wrong key, prologue or data)
//   'dh'       a DH output was all zeros or the public key was unusable
//   'short'    a handshake message is too short for its tokens
//   'state'    the call does not fit the handshake's progress
//   'nonce'    a cipher nonce would reach 2^64-1 (reserved by Noise)

import { x25519FromPrivate } from './identity.js';

const subtle = globalThis.crypto.subtle;
const X = { name: 'X25519' };
const GCM = 'AES-GCM';

export const DHLEN = 32;
export const HASHLEN = 32;
export const KEYLEN = 32;
export const TAGLEN = 16;
export const MAX_NONCE = 2n ** 64n - 1n;

export class NoiseError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'NoiseError';
    this.code = code;
  }
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

const bytes = (b) => (b instanceof Uint8Array ? b : new Uint8Array(b));

/** The AESGCM nonce of Noise: 32 zero bits then u64(n) big-endian. */
export function gcmNonce(n) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setBigUint64(4, BigInt(n), false);
  return iv;
}

/** A non-extractable AES-256-GCM key from 32 raw bytes. WebCrypto copies
 *  the bytes during the call, so the caller may wipe them right after. */
export function importAesKey(raw) {
  if (raw.length !== KEYLEN) throw new TypeError('AES-256-GCM key must be 32 bytes');
  return subtle.importKey('raw', raw, GCM, false, ['encrypt', 'decrypt']);
}

/** AEAD encryption: ciphertext ‖ 16-byte tag. */
export async function aeadEncrypt(key, n, ad, plaintext) {
  return new Uint8Array(await subtle.encrypt({ name: GCM, iv: gcmNonce(n), additionalData: ad, tagLength: 128 },
    key, plaintext));
}

/** AEAD decryption; throws NoiseError('decrypt') when the tag is wrong. */
export async function aeadDecrypt(key, n, ad, ciphertext) {
  if (ciphertext.length < TAGLEN) throw new NoiseError('decrypt', 'ciphertext shorter than its tag');
  try {
    return new Uint8Array(await subtle.decrypt({ name: GCM, iv: gcmNonce(n), additionalData: ad, tagLength: 128 },
      key, ciphertext));
  } catch {
    throw new NoiseError('decrypt', 'AEAD authentication failed');
  }
}

/** Noise REKEY(k) for a CryptoKey: the first 32 bytes of
 *  ENCRYPT(k, 2^64-1, empty, 32 zero bytes), as raw bytes (wipe them). */
export async function rekeyRaw(key) {
  const out = await aeadEncrypt(key, MAX_NONCE, new Uint8Array(0), new Uint8Array(KEYLEN));
  const k = out.slice(0, KEYLEN);
  out.fill(0);
  return k;
}

export async function sha256(data) {
  return new Uint8Array(await subtle.digest('SHA-256', data));
}

async function hmac(key, data) {
  const k = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, data));
}

/** Noise's HKDF(chaining_key, input_key_material, num_outputs) with
 *  HMAC-SHA256; returns an array of 2 or 3 32-byte outputs. */
export async function noiseHkdf(ck, ikm, num) {
  const temp = await hmac(ck, ikm);
  const out1 = await hmac(temp, Uint8Array.of(1));
  const out2 = await hmac(temp, concat(out1, Uint8Array.of(2)));
  const outs = [out1, out2];
  if (num === 3) outs.push(await hmac(temp, concat(out2, Uint8Array.of(3))));
  temp.fill(0);
  return outs;
}

/** X25519 of our private CryptoKey and a peer's raw public key. Refuses an
 *  all-zero result (low-order point), as EchoLink requires; WebCrypto
 *  implementations either throw on it or return zeros, both end here. */
export async function dh(privateKey, publicRaw) {
  let out;
  try {
    const pub = await subtle.importKey('raw', publicRaw, X, false, []);
    out = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, privateKey, 256));
  } catch {
    throw new NoiseError('dh', 'X25519 failed (low-order or invalid public key)');
  }
  if (out.every((b) => b === 0)) throw new NoiseError('dh', 'X25519 output is all zeros');
  return out;
}

/** A key pair usable by HandshakeState: {privateKey, publicRaw}, from an
 *  X25519 CryptoKeyPair (e.g. identity.sk) or a raw 32-byte private key. */
export async function keyPair(source) {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return x25519FromPrivate(source);
  if (source && source.privateKey && source.publicRaw) return source;
  if (source && source.privateKey && source.publicKey) {
    return { privateKey: source.privateKey, publicRaw: new Uint8Array(await subtle.exportKey('raw', source.publicKey)) };
  }
  throw new TypeError('not an X25519 key pair');
}

async function generateKeyPair() {
  const kp = await subtle.generateKey(X, false, ['deriveBits']);
  return keyPair(kp);
}

/** Noise CipherState: a key (or none) and a 64-bit nonce. */
export class CipherState {
  #key = null;
  n = 0n;

  /** Sets the key (32 raw bytes, or null for "empty") and resets n. */
  async initializeKey(raw) {
    this.#key = raw ? await importAesKey(raw) : null;
    this.n = 0n;
  }

  hasKey() {
    return this.#key !== null;
  }

  setNonce(n) {
    this.n = BigInt(n);
  }

  async encryptWithAd(ad, plaintext) {
    if (!this.#key) return Uint8Array.from(plaintext);
    if (this.n >= MAX_NONCE) throw new NoiseError('nonce', 'nonce exhausted');
    const ct = await aeadEncrypt(this.#key, this.n, ad, plaintext);
    this.n++;
    return ct;
  }

  /** On failure the nonce does not move (Noise §5.1). */
  async decryptWithAd(ad, ciphertext) {
    if (!this.#key) return Uint8Array.from(ciphertext);
    if (this.n >= MAX_NONCE) throw new NoiseError('nonce', 'nonce exhausted');
    const pt = await aeadDecrypt(this.#key, this.n, ad, ciphertext);
    this.n++;
    return pt;
  }

  async rekey() {
    if (!this.#key) return;
    const k = await rekeyRaw(this.#key);
    this.#key = await importAesKey(k);
    k.fill(0);
  }
}

/** Noise SymmetricState: chaining key ck, handshake hash h and a CipherState. */
export class SymmetricState {
  #ck;
  #h;
  cipher = new CipherState();

  static async create(protocolName) {
    const ss = new SymmetricState();
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASHLEN) {
      ss.#h = new Uint8Array(HASHLEN);
      ss.#h.set(name);
    } else {
      ss.#h = await sha256(name);
    }
    ss.#ck = Uint8Array.from(ss.#h);
    return ss;
  }

  /** A copy of the current handshake hash. */
  get h() {
    return Uint8Array.from(this.#h);
  }

  async mixKey(ikm) {
    const [ck, k] = await noiseHkdf(this.#ck, ikm, 2);
    this.#ck.fill(0);
    this.#ck = ck;
    await this.cipher.initializeKey(k);
    k.fill(0);
  }

  async mixHash(data) {
    this.#h = await sha256(concat(this.#h, data));
  }

  async encryptAndHash(plaintext) {
    const ct = await this.cipher.encryptWithAd(this.#h, plaintext);
    await this.mixHash(ct);
    return ct;
  }

  async decryptAndHash(ciphertext) {
    const pt = await this.cipher.decryptWithAd(this.#h, ciphertext);
    await this.mixHash(ciphertext);
    return pt;
  }

  /** The two raw 32-byte keys of Split() (initiator→responder first); the
   *  chaining key is wiped, so this is the last use of the state. */
  async split() {
    const [k1, k2] = await noiseHkdf(this.#ck, new Uint8Array(0), 2);
    this.#ck.fill(0);
    return [k1, k2];
  }
}

// Message patterns: pre-messages per side, then the tokens of each message
// (the first from the initiator, then alternating).
const PATTERNS = {
  XX: { pre: { initiator: [], responder: [] }, messages: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']] },
  X: { pre: { initiator: [], responder: ['s'] }, messages: [['e', 'es', 's', 'ss']] },
};

/** Noise HandshakeState for the patterns above, suite 25519_AESGCM_SHA256.
 *
 *  const hs = await HandshakeState.create({ pattern: 'XX', initiator: true,
 *    prologue, s, rs?, ephemeralPrivate? });
 *  s: an X25519 CryptoKeyPair or {privateKey, publicRaw}; rs: the responder's
 *  raw static key when the pattern pre-shares it (X); ephemeralPrivate: 32
 *  raw bytes to use as `e` (test vectors only; normally e is fresh random).
 *
 *  writeMessage(payload) / readMessage(message) follow the spec; the payload
 *  given to writeMessage may be an async function of h (the hash at the
 *  moment the payload is encrypted), because EchoLink signs that h.
 *  payloadHash holds that h for the last message written or read. */
export class HandshakeState {
  ss = null;
  initiator = false;
  s = null;
  e = null;
  rs = null;
  re = null;
  payloadHash = null;
  #pattern = null;
  #index = 0;
  #ephemeralPrivate = null;

  static async create({ pattern, initiator, prologue = new Uint8Array(0), s = null, rs = null, ephemeralPrivate = null }) {
    const p = PATTERNS[pattern];
    if (!p) throw new TypeError(`unsupported Noise pattern ${pattern}`);
    const hs = new HandshakeState();
    hs.#pattern = p;
    hs.initiator = Boolean(initiator);
    hs.s = s ? await keyPair(s) : null;
    hs.rs = rs ? Uint8Array.from(rs) : null;
    hs.#ephemeralPrivate = ephemeralPrivate ? Uint8Array.from(ephemeralPrivate) : null;
    hs.ss = await SymmetricState.create(`Noise_${pattern}_25519_AESGCM_SHA256`);
    await hs.ss.mixHash(prologue);
    // pre-messages: the initiator's first, then the responder's
    for (const side of ['initiator', 'responder']) {
      for (const t of p.pre[side]) {
        const mine = (side === 'initiator') === hs.initiator;
        const key = mine ? hs.s && hs.s.publicRaw : hs.rs;
        if (t !== 's' || !key) throw new TypeError(`pattern ${pattern} needs the ${side}'s static key`);
        await hs.ss.mixHash(key);
      }
    }
    return hs;
  }

  /** True once every message of the pattern has been written or read. */
  get complete() {
    return this.#index >= this.#pattern.messages.length;
  }

  /** True when the next message is ours to write. */
  get myTurn() {
    return !this.complete && (this.#index % 2 === 0) === this.initiator;
  }

  get handshakeHash() {
    return this.ss.h;
  }

  async #dhToken(t) {
    // ee, es, se, ss: first letter = initiator's key, second = responder's
    const [iKey, rKey] = [t[0], t[1]];
    const mineLetter = this.initiator ? iKey : rKey;
    const theirLetter = this.initiator ? rKey : iKey;
    const mine = mineLetter === 'e' ? this.e : this.s;
    const theirs = theirLetter === 'e' ? this.re : this.rs;
    if (!mine || !theirs) throw new NoiseError('state', `missing key for ${t}`);
    const out = await dh(mine.privateKey, theirs);
    try {
      await this.ss.mixKey(out);
    } finally {
      out.fill(0);
    }
  }

  async writeMessage(payload = new Uint8Array(0)) {
    if (!this.myTurn) throw new NoiseError('state', 'not our turn to write');
    const parts = [];
    for (const t of this.#pattern.messages[this.#index]) {
      if (t === 'e') {
        this.e = this.#ephemeralPrivate ? await keyPair(this.#ephemeralPrivate) : await generateKeyPair();
        if (this.#ephemeralPrivate) this.#ephemeralPrivate.fill(0);
        this.#ephemeralPrivate = null;
        parts.push(this.e.publicRaw);
        await this.ss.mixHash(this.e.publicRaw);
      } else if (t === 's') {
        if (!this.s) throw new NoiseError('state', 'no static key');
        parts.push(await this.ss.encryptAndHash(this.s.publicRaw));
      } else {
        await this.#dhToken(t);
      }
    }
    this.payloadHash = this.ss.h;
    const body = typeof payload === 'function' ? await payload(this.payloadHash) : payload;
    parts.push(await this.ss.encryptAndHash(bytes(body)));
    this.#index++;
    return concat(...parts);
  }

  async readMessage(message) {
    if (this.complete || this.myTurn) throw new NoiseError('state', 'not our turn to read');
    const msg = bytes(message);
    let o = 0;
    const take = (len) => {
      if (msg.length - o < len) throw new NoiseError('short', 'handshake message too short');
      const part = msg.subarray(o, o + len);
      o += len;
      return part;
    };
    for (const t of this.#pattern.messages[this.#index]) {
      if (t === 'e') {
        this.re = Uint8Array.from(take(DHLEN));
        await this.ss.mixHash(this.re);
      } else if (t === 's') {
        const len = this.ss.cipher.hasKey() ? DHLEN + TAGLEN : DHLEN;
        this.rs = await this.ss.decryptAndHash(take(len));
      } else {
        await this.#dhToken(t);
      }
    }
    this.payloadHash = this.ss.h;
    const payload = await this.ss.decryptAndHash(msg.subarray(o));
    this.#index++;
    return payload;
  }

  /** After the last message: the raw keys [k1 (initiator→responder), k2]. */
  async split() {
    if (!this.complete) throw new NoiseError('state', 'handshake not complete');
    return this.ss.split();
  }
}
