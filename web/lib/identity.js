// identity.js - EchoLink identity for the web client (docs/PROTOCOL.md §2).
//
// Same contract as src/crypto/identity.c, checked against the same vectors
// (tests/vectors/identity.json). Uses only WebCrypto (globalThis.crypto.subtle:
// Node >= 20, current Chromium/Firefox/Safari) and has no dependencies.
//
// An identity is { ik: CryptoKeyPair (Ed25519), sk: CryptoKeyPair (X25519) }.
// A bundle is { ik, sk, sk_sig }: unpadded base64url strings.
//
// Verification is deliberately stricter than bare WebCrypto, in the same way
// as the C code: browsers and Node disagree on whether small-order Ed25519
// points are accepted (the spec says reject; OpenSSL-backed ones accept), so
// we refuse a small-order ik or signature R ourselves and every EchoLink peer
// reaches the same verdict. Honest keys and signatures never hit this.

const subtle = globalThis.crypto.subtle;
const ED = { name: 'Ed25519' };
const X = { name: 'X25519' };

export const KEY_LEN = 32;
export const SIG_LEN = 64;
export const NONCE_LEN = 32;
export const PEER_ID_LEN = 32;
export const SID_MAX = 128;

// Labels, each followed by exactly one 0x00 byte.
const utf8 = (s) => new TextEncoder().encode(s);
const DOM_STATIC = utf8('echolink-v1-static-key\0');
const DOM_PEER = utf8('echolink-v1-peer-id\0');
const DOM_LOGIN = utf8('echolink-v1-login\0');

// PKCS#8 DER prefixes for a raw 32-byte private key (RFC 8410).
const ED25519_PKCS8 = hexBytes('302e020100300506032b657004220420');
const X25519_PKCS8 = hexBytes('302e020100300506032b656e04220420');

function hexBytes(h) {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_VAL = new Map([...B64URL].map((c, i) => [c, i]));

/** Encodes bytes (Uint8Array/ArrayBuffer) as base64url without padding. */
export function b64urlEncode(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = '';
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += B64URL[v >> 18] + B64URL[(v >> 12) & 63] + B64URL[(v >> 6) & 63] + B64URL[v & 63];
  }
  if (b.length - i === 1) {
    const v = b[i] << 16;
    out += B64URL[v >> 18] + B64URL[(v >> 12) & 63];
  } else if (b.length - i === 2) {
    const v = (b[i] << 16) | (b[i + 1] << 8);
    out += B64URL[v >> 18] + B64URL[(v >> 12) & 63] + B64URL[(v >> 6) & 63];
  }
  return out;
}

/** Decodes canonical unpadded base64url; with `len`, demands exactly that many
 *  bytes. Throws TypeError on padding, other alphabets, whitespace, nonzero
 *  trailing bits or a wrong length, so each byte string has one text form. */
export function b64urlDecode(text, len) {
  if (typeof text !== 'string') throw new TypeError('base64url: not a string');
  if (text.length % 4 === 1) throw new TypeError('base64url: bad length');
  const out = new Uint8Array(Math.floor(text.length / 4) * 3 + Math.max(0, (text.length % 4) - 1));
  let acc = 0, bits = 0, o = 0;
  for (const c of text) {
    const v = B64URL_VAL.get(c);
    if (v === undefined) throw new TypeError('base64url: character outside the alphabet');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = acc >> bits;
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) throw new TypeError('base64url: not canonical (trailing bits set)');
  if (len !== undefined && out.length !== len) throw new TypeError(`base64url: expected ${len} bytes, got ${out.length}`);
  return out;
}

/** RFC 4648 base32, lower case, no padding (the peer ID alphabet). */
export function base32Encode(bytes) {
  const alpha = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '', acc = 0, bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) { bits -= 5; out += alpha[(acc >> bits) & 31]; }
  }
  if (bits > 0) out += alpha[(acc << (5 - bits)) & 31];
  return out;
}

/** True when `s` has peer ID syntax: exactly 32 characters [a-z2-7]. */
export function isValidPeerId(s) {
  return typeof s === 'string' && /^[a-z2-7]{32}$/.test(s);
}

// sid rule shared with C: 1..128 printable ASCII characters, so that no text
// encoding question can make two implementations sign different bytes.
const sidOk = (sid) => typeof sid === 'string' && sid.length <= SID_MAX && /^[\x21-\x7e]+$/.test(sid);

// y-coordinates (top bit of the last byte ignored) of the Ed25519 points of
// order dividing 8, including non-canonical spellings (libsodium's list).
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(hexBytes);

function smallOrder(pt) {
  return SMALL_ORDER.some((y) => {
    for (let i = 0; i < 31; i++) if (pt[i] !== y[i]) return false;
    return (pt[31] & 0x7f) === y[31];
  });
}

// Ed25519 verify with EchoLink's rules; false (never a throw) for anything bad.
// S < L is enforced by every WebCrypto backend we target (RFC 8032 §5.1.7).
async function edVerify(ik, msg, sig) {
  if (smallOrder(ik) || smallOrder(sig.subarray(0, 32))) return false;
  try {
    const key = await subtle.importKey('raw', ik, ED, false, ['verify']);
    return await subtle.verify(ED, key, sig, msg);
  } catch {
    return false;
  }
}

async function rawPublic(key) {
  return new Uint8Array(await subtle.exportKey('raw', key));
}

/** A new random identity; both private keys are extractable so that
 *  exportIdentity() can save them. */
export async function generateIdentity() {
  const ik = await subtle.generateKey(ED, true, ['sign', 'verify']);
  const sk = await subtle.generateKey(X, true, ['deriveBits']);
  return { ik, sk };
}

/** Builds an identity from a 32-byte Ed25519 seed and a 32-byte X25519
 *  private key (used as given, clamped only when used), via PKCS#8. */
export async function identityFromSeeds(ikSeed, skPrivate) {
  const seed = new Uint8Array(ikSeed), skp = new Uint8Array(skPrivate);
  if (seed.length !== KEY_LEN || skp.length !== KEY_LEN) throw new TypeError('seeds must be 32 bytes');
  const ikPriv = await subtle.importKey('pkcs8', concat(ED25519_PKCS8, seed), ED, true, ['sign']);
  const skPriv = await subtle.importKey('pkcs8', concat(X25519_PKCS8, skp), X, true, ['deriveBits']);
  // WebCrypto cannot derive a public key directly; the private JWK carries it.
  const ikPub = await subtle.importKey('raw', b64urlDecode((await subtle.exportKey('jwk', ikPriv)).x, KEY_LEN),
    ED, true, ['verify']);
  const skPub = await subtle.importKey('raw', b64urlDecode((await subtle.exportKey('jwk', skPriv)).x, KEY_LEN),
    X, true, []);
  return { ik: { privateKey: ikPriv, publicKey: ikPub }, sk: { privateKey: skPriv, publicKey: skPub } };
}

/** Saves an identity as a JSON-able object {v: 1, ik_seed, sk_private} (raw
 *  private keys, base64url; the same bytes as the C el_identity_ik_seed /
 *  el_identity_sk_private). It holds secrets: store it accordingly. */
export async function exportIdentity(identity) {
  const ikJwk = await subtle.exportKey('jwk', identity.ik.privateKey);
  const skJwk = await subtle.exportKey('jwk', identity.sk.privateKey);
  return { v: 1, ik_seed: ikJwk.d, sk_private: skJwk.d };
}

/** Loads what exportIdentity() produced. Throws TypeError on a bad object. */
export async function importIdentity(saved) {
  if (!saved || saved.v !== 1) throw new TypeError('not an EchoLink identity (v1)');
  return identityFromSeeds(b64urlDecode(saved.ik_seed, KEY_LEN), b64urlDecode(saved.sk_private, KEY_LEN));
}

/** The public bundle {ik, sk, sk_sig} of an identity (deterministic). */
export async function bundleOf(identity) {
  const ik = await rawPublic(identity.ik.publicKey);
  const sk = await rawPublic(identity.sk.publicKey);
  const sig = await subtle.sign(ED, identity.ik.privateKey, concat(DOM_STATIC, sk));
  return { ik: b64urlEncode(ik), sk: b64urlEncode(sk), sk_sig: b64urlEncode(sig) };
}

/** Peer ID of a base64url ik: base32(SHA-256(label 0x00 ‖ ik)[0..20)).
 *  Throws TypeError when ikB64 is not canonical base64url of 32 bytes. */
export async function peerIdFromIk(ikB64) {
  const ik = b64urlDecode(ikB64, KEY_LEN);
  const md = new Uint8Array(await subtle.digest('SHA-256', concat(DOM_PEER, ik)));
  return base32Encode(md.subarray(0, 20));
}

/** Peer ID of an identity. */
export async function peerIdOf(identity) {
  return peerIdFromIk(b64urlEncode(await rawPublic(identity.ik.publicKey)));
}

/** Signs a login challenge: nonceB64 is the challenge's `nonce`, sid its `sid`
 *  (1..128 printable ASCII). Returns the base64url signature for `login.sig`.
 *  Throws TypeError on a malformed nonce or sid. */
export async function signLogin(identity, nonceB64, sid) {
  const nonce = b64urlDecode(nonceB64, NONCE_LEN);
  if (!sidOk(sid)) throw new TypeError('sid must be 1..128 printable ASCII characters');
  const sig = await subtle.sign(ED, identity.ik.privateKey, concat(DOM_LOGIN, nonce, utf8(sid)));
  return b64urlEncode(sig);
}

/** True when the bundle's fields are canonical base64url of 32/32/64 bytes and
 *  sk_sig is ik's signature over sk; false for anything else (never throws). */
export async function verifyBundle(bundle) {
  let ik, sk, sig;
  try {
    ik = b64urlDecode(bundle.ik, KEY_LEN);
    sk = b64urlDecode(bundle.sk, KEY_LEN);
    sig = b64urlDecode(bundle.sk_sig, SIG_LEN);
  } catch {
    return false;
  }
  return edVerify(ik, concat(DOM_STATIC, sk), sig);
}

/** True when sigB64 is bundle.ik's login signature over nonceB64 and sid.
 *  Checks only the login signature (like el_id_verify_login): verify the
 *  bundle itself with verifyBundle(). False for anything bad (never throws). */
export async function verifyLogin(bundle, nonceB64, sid, sigB64) {
  let ik, nonce, sig;
  try {
    ik = b64urlDecode(bundle.ik, KEY_LEN);
    nonce = b64urlDecode(nonceB64, NONCE_LEN);
    sig = b64urlDecode(sigB64, SIG_LEN);
  } catch {
    return false;
  }
  if (!sidOk(sid)) return false;
  return edVerify(ik, concat(DOM_LOGIN, nonce, utf8(sid)), sig);
}

/** The X25519 key pair {privateKey, publicKey, publicRaw} of a raw 32-byte
 *  private key (used as given, clamped only when used), via PKCS#8. The
 *  private key is not extractable. For Noise ephemerals in test vectors. */
export async function x25519FromPrivate(privateKey) {
  const raw = new Uint8Array(privateKey);
  if (raw.length !== KEY_LEN) throw new TypeError('X25519 private key must be 32 bytes');
  const der = concat(X25519_PKCS8, raw);
  try {
    // extractable only long enough to read the public half from the JWK
    const tmp = await subtle.importKey('pkcs8', der, X, true, ['deriveBits']);
    const publicRaw = b64urlDecode((await subtle.exportKey('jwk', tmp)).x, KEY_LEN);
    const priv = await subtle.importKey('pkcs8', der, X, false, ['deriveBits']);
    const pub = await subtle.importKey('raw', publicRaw, X, true, []);
    return { privateKey: priv, publicKey: pub, publicRaw };
  } finally {
    der.fill(0);
  }
}

/** True when sig (64 bytes) is ik's (32 raw bytes) Ed25519 signature over
 *  msg, with the same strict rules as verifyBundle (small-order ik or R
 *  refused). False for anything bad (never throws). */
export async function verifySignature(ik, msg, sig) {
  const k = new Uint8Array(ik), s = new Uint8Array(sig);
  if (k.length !== KEY_LEN || s.length !== SIG_LEN) return false;
  return edVerify(k, new Uint8Array(msg), s);
}
