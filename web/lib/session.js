// session.js - the EchoLink session handshake (docs/PROTOCOL.md §9): Noise
// XX on the `chat` channel, bound to both DTLS fingerprints through the
// prologue, each side proving its identity key in the encrypted payload;
// then one FrameCipher per channel and direction (§9.2). Mirrors the C
// session API; WebCrypto only.
//
//   const hs = new Handshake({ role, identity, expectedPeerId, fpInitiator, fpResponder });
//   initiator: send(await hs.start());
//   on each chat message until hs.done: const reply = await hs.receive(msg); if (reply) send(reply);
//   on failure receive() throws a HandshakeError: send err.abort (if any), close.
//   when done: const { tx, rx } = await hs.channel('chat');
//
// The caller owns the 10 s timer (§9): when it fires, send hs.timeout().

import { b64urlEncode, isValidPeerId, peerIdFromIk, verifySignature } from './identity.js';
import { FrameCipher } from './frame.js';
import { DHLEN, HandshakeState, TAGLEN, concat } from './noise.js';

const subtle = globalThis.crypto.subtle;
const utf8 = (s) => new TextEncoder().encode(s);

export const HS1 = 0x01;
export const HS2 = 0x02;
export const HS3 = 0x03;
export const ABORT = 0x04;
export const HANDSHAKE_TIMEOUT_MS = 10000;
export const PAYLOAD_LEN = 160;
const HS1_LEN = 1 + DHLEN;                                                  // 33
const HS2_LEN = 1 + DHLEN + (DHLEN + TAGLEN) + (PAYLOAD_LEN + TAGLEN);      // 257
const HS3_LEN = 1 + (DHLEN + TAGLEN) + (PAYLOAD_LEN + TAGLEN);              // 225

const DOM_NOISE = utf8('echolink-v1-noise\0');
const DOM_STATIC = utf8('echolink-v1-static-key\0');
const DOM_HANDSHAKE = utf8('echolink-v1-handshake\0');
const DOM_CHANNEL = utf8('echolink-v1-channel\0');

// code -> [ABORT reason byte, message]; 'aborted' has no reason to send.
const FAILURES = {
  binding: [1, 'identity/channel binding mismatch'],
  identity: [2, 'identity mismatch'],
  signature: [3, 'bad signature'],
  malformed: [4, 'malformed handshake message'],
  timeout: [5, 'timeout'],
  unexpected: [6, 'unexpected message'],
};
const REASON_TEXT = {
  1: 'binding mismatch', 2: 'identity mismatch', 3: 'bad signature', 4: 'malformed', 5: 'timeout',
  6: 'unexpected message',
};

/** A failed handshake: .code is one of 'binding', 'identity', 'signature',
 *  'malformed', 'timeout', 'unexpected', 'aborted'; .abort the ABORT message
 *  to send to the peer (absent when the peer aborted, or when it was already
 *  handed out once); .reason the ABORT reason byte (sent or received). */
export class HandshakeError extends Error {
  constructor(code, message, reason, abort) {
    super(message);
    this.name = 'HandshakeError';
    this.code = code;
    this.reason = reason;
    if (abort) this.abort = abort;
  }
}

function failure(code) {
  const [reason, message] = FAILURES[code];
  return new HandshakeError(code, message, reason, Uint8Array.of(ABORT, reason));
}

/** True for a channel label of §9.2: `chat` or `f:` + 32 lowercase hex. */
export function validLabel(label) {
  return label === 'chat' || (typeof label === 'string' && /^f:[0-9a-f]{32}$/.test(label));
}

/** key(dir, label) of §9.2: HKDF-SHA256(salt = h, ikm = kDir,
 *  info = "echolink-v1-channel" 0x00 ‖ label, 32 bytes), raw. */
export async function deriveChannelKey(h, kDir, label) {
  const ikm = await subtle.importKey('raw', kDir, 'HKDF', false, ['deriveBits']);
  const info = concat(DOM_CHANNEL, utf8(label));
  return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: h, info }, ikm, 256));
}

/** The 32-byte SHA-256 DTLS fingerprint of a session description (the
 *  `a=fingerprint:sha-256 …` line, session- or media-level). Throws when
 *  there is none, or several that differ (which certificate would it be?). */
export function fingerprintFromSdp(sdp) {
  let found = null;
  for (const line of String(sdp).split(/\r?\n/)) {
    const m = /^a=fingerprint:(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m || m[1].toLowerCase() !== 'sha-256') continue;
    if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}$/.test(m[2])) throw new TypeError('malformed sha-256 fingerprint');
    const fp = m[2].toLowerCase();
    if (found !== null && found !== fp) throw new TypeError('the description has differing sha-256 fingerprints');
    found = fp;
  }
  if (found === null) throw new TypeError('no sha-256 fingerprint in the description');
  return Uint8Array.from(found.split(':'), (x) => parseInt(x, 16));
}

async function rawPublic(key) {
  return new Uint8Array(await subtle.exportKey('raw', key));
}

/** One side of the §9 handshake on one connection. */
export class Handshake {
  done = false;
  remoteBundle = null;   // {ik, sk, sk_sig} of the peer, once verified
  hash = null;           // final handshake hash h (Uint8Array), once done
  error = null;          // the HandshakeError that ended it, if any

  #role;
  #identity;
  #expected;
  #prologue;
  #ephemeral;
  #noise = null;
  #state;                // 'init' | 'wait2' | 'wait1' | 'wait3' | 'done' | 'failed'
  #keys = null;          // {ir, ri}: HKDF CryptoKeys of the split keys
  #labels = new Set();
  #queue = Promise.resolve();

  constructor({ role, identity, expectedPeerId, fpInitiator, fpResponder, ephemeralPrivate } = {}) {
    if (role !== 'initiator' && role !== 'responder') throw new TypeError("role must be 'initiator' or 'responder'");
    if (!identity || !identity.ik || !identity.sk) throw new TypeError('identity must be {ik, sk} key pairs');
    if (!isValidPeerId(expectedPeerId)) throw new TypeError('expectedPeerId is not a peer ID');
    const fpI = new Uint8Array(fpInitiator || 0), fpR = new Uint8Array(fpResponder || 0);
    if (fpI.length !== 32 || fpR.length !== 32) throw new TypeError('fingerprints must be 32 bytes');
    this.#role = role;
    this.#identity = identity;
    this.#expected = expectedPeerId;
    this.#prologue = concat(DOM_NOISE, fpI, fpR);
    this.#ephemeral = ephemeralPrivate ? Uint8Array.from(ephemeralPrivate) : null;
    this.#state = role === 'initiator' ? 'init' : 'wait1';
  }

  get role() {
    return this.#role;
  }

  get failed() {
    return this.#state === 'failed';
  }

  async #newNoise() {
    this.#noise = await HandshakeState.create({
      pattern: 'XX', initiator: this.#role === 'initiator', prologue: this.#prologue,
      s: this.#identity.sk, ephemeralPrivate: this.#ephemeral,
    });
    if (this.#ephemeral) this.#ephemeral.fill(0);
    this.#ephemeral = null;
  }

  #serial(fn) {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #fail(err) {
    if (this.#state === 'failed') throw this.error;
    this.#state = 'failed';
    this.done = false;
    this.#keys = null;
    this.#noise = null;
    // the ABORT goes out once: later calls rethrow without it
    this.error = new HandshakeError(err.code, err.message, err.reason);
    throw err;
  }

  /** Initiator: HS1, the first message. */
  start() {
    return this.#serial(async () => {
      if (this.#role !== 'initiator' || this.#state !== 'init') {
        if (this.#state === 'failed') throw this.error;
        throw new TypeError('start() is for a new initiator only');
      }
      try {
        await this.#newNoise();
        const e = await this.#noise.writeMessage(new Uint8Array(0));
        this.#advance('wait2');
        return concat(Uint8Array.of(HS1), e);
      } catch (err) {
        this.#fail(err instanceof HandshakeError ? err : failure('malformed'));
      }
    });
  }

  /** Handles one message received on `chat` before the handshake is done:
   *  returns the reply to send, or null. Throws a HandshakeError on failure
   *  (final: every later call throws it again, without .abort). */
  receive(message) {
    const msg = Uint8Array.from(message instanceof Uint8Array ? message : new Uint8Array(message));
    return this.#serial(async () => {
      if (this.#state === 'failed') throw this.error;
      try {
        return await this.#receive(msg);
      } catch (err) {
        if (err instanceof HandshakeError) this.#fail(err);
        this.#fail(failure('malformed')); // a crypto backend error: never a success
      }
      return null;
    });
  }

  /** The 10 s timer fired: fails the handshake with 'timeout' and returns
   *  the ABORT to send, or null when the handshake is over either way. */
  timeout() {
    if (this.#state === 'done' || this.#state === 'failed') return null;
    const err = failure('timeout');
    try {
      this.#fail(err);
    } catch {
      // #fail rethrows for receive(); here the ABORT bytes are the result
    }
    return err.abort;
  }

  async #receive(msg) {
    if (msg.length === 2 && msg[0] === ABORT) {
      const r = msg[1];
      throw new HandshakeError('aborted', `peer aborted: ${REASON_TEXT[r] || `reason ${r}`}`, r);
    }
    const expect = { wait2: [HS2, HS2_LEN], wait1: [HS1, HS1_LEN], wait3: [HS3, HS3_LEN] }[this.#state];
    if (!expect || msg.length !== expect[1] || msg[0] !== expect[0]) throw failure('unexpected');
    const body = msg.subarray(1);
    if (this.#state === 'wait1') {
      await this.#newNoise();
      await this.#read(body); // HS1's payload: empty, in clear
      const hs2 = await this.#write();
      this.#advance('wait3');
      return concat(Uint8Array.of(HS2), hs2);
    }
    if (this.#state === 'wait2') {
      await this.#verifyPayload(await this.#read(body));
      const hs3 = await this.#write();
      await this.#finish();
      return concat(Uint8Array.of(HS3), hs3);
    }
    await this.#verifyPayload(await this.#read(body)); // wait3
    await this.#finish();
    return null;
  }

  // Noise read with EchoLink's failure names: any decryption failure means
  // the two prologues (fingerprints) or keys differ; a zero DH is malformed.
  async #read(body) {
    try {
      return await this.#noise.readMessage(body);
    } catch (err) {
      if (err.code === 'decrypt') throw failure('binding');
      throw failure('malformed');
    }
  }

  async #write() {
    try {
      return await this.#noise.writeMessage((h) => this.#payload(h));
    } catch (err) {
      if (err instanceof HandshakeError) throw err;
      throw failure('malformed');
    }
  }

  // ik ‖ sk_sig(over our Noise static key) ‖ hs_sig(over h).
  async #payload(h) {
    const { ik, sk } = this.#identity;
    const sign = async (m) => new Uint8Array(await subtle.sign({ name: 'Ed25519' }, ik.privateKey, m));
    const skSig = await sign(concat(DOM_STATIC, await rawPublic(sk.publicKey)));
    const hsSig = await sign(concat(DOM_HANDSHAKE, h));
    return concat(await rawPublic(ik.publicKey), skSig, hsSig);
  }

  // §9 order: 160 bytes, then both signatures, then the peer ID.
  async #verifyPayload(p) {
    if (p.length !== PAYLOAD_LEN) throw failure('malformed');
    const ik = p.slice(0, 32), skSig = p.slice(32, 96), hsSig = p.slice(96, 160);
    const rs = this.#noise.rs;
    const okSk = await verifySignature(ik, concat(DOM_STATIC, rs), skSig);
    const okHs = okSk && await verifySignature(ik, concat(DOM_HANDSHAKE, this.#noise.payloadHash), hsSig);
    if (!okHs) throw failure('signature');
    const bundle = { ik: b64urlEncode(ik), sk: b64urlEncode(rs), sk_sig: b64urlEncode(skSig) };
    if (await peerIdFromIk(bundle.ik) !== this.#expected) throw failure('identity');
    this.remoteBundle = bundle;
  }

  // A timeout() may have ended the handshake while we were awaiting.
  #advance(state) {
    if (this.#state === 'failed') throw this.error;
    this.#state = state;
  }

  async #finish() {
    const hash = this.#noise.handshakeHash;
    const [kIR, kRI] = await this.#noise.split();
    const imp = (k) => subtle.importKey('raw', k, 'HKDF', false, ['deriveBits']);
    const keys = { ir: await imp(kIR), ri: await imp(kRI) };
    kIR.fill(0);
    kRI.fill(0);
    this.#advance('done');
    this.#keys = keys;
    this.#noise = null;
    this.hash = hash;
    this.done = true;
  }

  /** The two FrameCiphers of one channel (§9.2): tx for what we send, rx
   *  for what we receive. Each label once per session; throws a TypeError
   *  for an invalid or repeated label or before the handshake is done. */
  async channel(label) {
    if (!this.done || !this.#keys) throw new TypeError('the handshake is not complete');
    if (!validLabel(label)) throw new TypeError(`invalid channel label ${JSON.stringify(label)}`);
    if (this.#labels.has(label)) throw new TypeError(`channel label ${label} already used in this session`);
    this.#labels.add(label);
    const [txK, rxK] = this.#role === 'initiator' ? [this.#keys.ir, this.#keys.ri] : [this.#keys.ri, this.#keys.ir];
    const info = concat(DOM_CHANNEL, utf8(label));
    const derive = async (k) => new Uint8Array(await subtle.deriveBits(
      { name: 'HKDF', hash: 'SHA-256', salt: this.hash, info }, k, 256));
    const txRaw = await derive(txK), rxRaw = await derive(rxK);
    const tx = new FrameCipher(txRaw), rx = new FrameCipher(rxRaw);
    txRaw.fill(0);
    rxRaw.fill(0);
    return { tx, rx };
  }
}
