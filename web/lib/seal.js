// seal.js - sealed envelopes for offline messages (docs/PROTOCOL.md §10.3):
// one Noise_X_25519_AESGCM_SHA256 message (-> e, es, s, ss) to the
// recipient's static key, prologue "echolink-v1-seal" 0x00.
//
//   envelope = 0x20 ‖ e (32) ‖ AEAD(s) (48) ‖ AEAD(ik ‖ sk_sig ‖ plaintext)
//
// The sender is authenticated by Noise (ss) and named by its identity key,
// whose signature over s ties the two; the recipient learns the sender's
// bundle and peer ID and must compare that peer ID with the server's `from`.

import { b64urlDecode, b64urlEncode, bundleOf, peerIdFromIk, verifyBundle, verifySignature } from './identity.js';
import { DHLEN, HandshakeState, TAGLEN, concat } from './noise.js';

const utf8 = (s) => new TextEncoder().encode(s);

export const ENVELOPE_VERSION = 0x20;
export const MAX_ENVELOPE = 36864;
const SENDER_LEN = 32 + 64;                                       // ik ‖ sk_sig
const OVERHEAD = 1 + DHLEN + (DHLEN + TAGLEN) + TAGLEN + SENDER_LEN; // 193
export const MAX_PLAINTEXT = MAX_ENVELOPE - OVERHEAD;             // 36671
const PROLOGUE = utf8('echolink-v1-seal\0');
const DOM_STATIC = utf8('echolink-v1-static-key\0');

/** An envelope open() refused: .code is 'malformed' (size or version, both
 *  checked before any crypto, or a low-order key: an all-zero DH), 'auth'
 *  (a ciphertext does not decrypt: not for us, or altered) or 'signature'
 *  (sk_sig is not ik's signature over the sealed static key). */
export class SealError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SealError';
    this.code = code;
  }
}

/** Seals plaintext (kind ‖ body, §9.3; 1..36671 bytes) from senderIdentity
 *  to the recipient's bundle {ik, sk, sk_sig}, which must verify.
 *  ephemeralPrivate (32 bytes) is for test vectors only. */
export async function seal(senderIdentity, recipientBundle, plaintext, { ephemeralPrivate } = {}) {
  const pt = Uint8Array.from(plaintext instanceof Uint8Array ? plaintext : new Uint8Array(plaintext));
  if (pt.length < 1 || pt.length > MAX_PLAINTEXT) throw new RangeError(`plaintext must be 1..${MAX_PLAINTEXT} bytes`);
  if (!(await verifyBundle(recipientBundle))) throw new TypeError('the recipient bundle does not verify');
  const mine = await bundleOf(senderIdentity);
  const hs = await HandshakeState.create({
    pattern: 'X', initiator: true, prologue: PROLOGUE, s: senderIdentity.sk,
    rs: b64urlDecode(recipientBundle.sk, 32), ephemeralPrivate,
  });
  const payload = concat(b64urlDecode(mine.ik, 32), b64urlDecode(mine.sk_sig, 64), pt);
  const msg = await hs.writeMessage(payload);
  payload.fill(0);
  return concat(Uint8Array.of(ENVELOPE_VERSION), msg);
}

/** Opens an envelope addressed to recipientIdentity. Returns
 *  {senderBundle, senderPeerId, plaintext}; throws a SealError. The caller
 *  drops the envelope if senderPeerId is not the server's `from`. */
export async function open(recipientIdentity, envelope) {
  const env = Uint8Array.from(envelope instanceof Uint8Array ? envelope : new Uint8Array(envelope));
  if (env.length > MAX_ENVELOPE) throw new SealError('malformed', `envelope over ${MAX_ENVELOPE} bytes`);
  if (env.length < OVERHEAD + 1) throw new SealError('malformed', 'envelope too short');
  if (env[0] !== ENVELOPE_VERSION) throw new SealError('malformed', 'unknown envelope version');
  const hs = await HandshakeState.create({
    pattern: 'X', initiator: false, prologue: PROLOGUE, s: recipientIdentity.sk,
  });
  let payload;
  try {
    payload = await hs.readMessage(env.subarray(1));
  } catch (err) {
    if (err.code === 'dh') throw new SealError('malformed', 'low-order key in the envelope');
    if (err.code === 'decrypt') throw new SealError('auth', 'envelope does not decrypt');
    throw err;
  }
  const ik = payload.slice(0, 32), skSig = payload.slice(32, SENDER_LEN);
  if (!(await verifySignature(ik, concat(DOM_STATIC, hs.rs), skSig))) {
    throw new SealError('signature', 'the sender signature over its static key does not verify');
  }
  const senderBundle = { ik: b64urlEncode(ik), sk: b64urlEncode(hs.rs), sk_sig: b64urlEncode(skSig) };
  return { senderBundle, senderPeerId: await peerIdFromIk(senderBundle.ik), plaintext: payload.slice(SENDER_LEN) };
}
