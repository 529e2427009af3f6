#!/usr/bin/env node
// gen-identity.mjs - writes tests/vectors/identity.json (docs/PROTOCOL.md §2).
//
// Uses only node:crypto (the OpenSSL-backed classic API), deliberately not the
// WebCrypto code in web/lib/identity.js, so that the C module and the web
// module are each checked against a third implementation.
//
//   node tests/vectors/gen-identity.mjs          # rewrite identity.json
//   node tests/vectors/gen-identity.mjs --check  # fail if it would change
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const OUT = fileURLToPath(new URL('./identity.json', import.meta.url));

// PKCS#8 DER prefixes for raw 32-byte private keys (RFC 8410).
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

// Each label is followed by exactly one 0x00 byte.
const DOM_STATIC = Buffer.from('echolink-v1-static-key\0', 'latin1');
const DOM_PEER = Buffer.from('echolink-v1-peer-id\0', 'latin1');
const DOM_LOGIN = Buffer.from('echolink-v1-login\0', 'latin1');

const b64u = (b) => Buffer.from(b).toString('base64url'); // unpadded
const hex = (b) => Buffer.from(b).toString('hex');
const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();

function base32(bytes) {
  const alpha = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '', acc = 0, bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b; bits += 8;
    while (bits >= 5) { bits -= 5; out += alpha[(acc >> bits) & 31]; }
    acc &= 0xff;
  }
  if (bits > 0) out += alpha[(acc << (5 - bits)) & 31];
  return out;
}

const edPriv = (seed) => crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
const xPriv = (k) => crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8, k]), format: 'der', type: 'pkcs8' });
const rawPub = (priv) => Buffer.from(crypto.createPublicKey(priv).export({ format: 'jwk' }).x, 'base64url');
const edPub = (raw) => crypto.createPublicKey({ key: Buffer.concat([ED25519_SPKI, raw]), format: 'der', type: 'spki' });
const sign = (priv, msg) => crypto.sign(null, msg, priv);
const verify = (pubRaw, msg, sig) => {
  try { return crypto.verify(null, msg, edPub(pubRaw), sig); } catch { return false; }
};
const staticMsg = (sk) => Buffer.concat([DOM_STATIC, sk]);
const loginMsg = (nonce, sid) => Buffer.concat([DOM_LOGIN, nonce, Buffer.from(sid, 'latin1')]);

function makeVector(name, ikSeed, skPriv, nonce, sid) {
  const ikKey = edPriv(ikSeed);
  const ik = rawPub(ikKey);
  const sk = rawPub(xPriv(skPriv));
  const skSig = sign(ikKey, staticMsg(sk));
  const loginSig = sign(ikKey, loginMsg(nonce, sid));
  const peerId = base32(sha256(DOM_PEER, ik).subarray(0, 20));
  if (!verify(ik, staticMsg(sk), skSig) || !verify(ik, loginMsg(nonce, sid), loginSig))
    throw new Error(`${name}: self-check failed`);
  return {
    name,
    ik_seed_hex: hex(ikSeed), sk_private_hex: hex(skPriv),
    ik: b64u(ik), sk: b64u(sk), sk_sig: b64u(skSig), peer_id: peerId,
    nonce: b64u(nonce), sid, login_sig: b64u(loginSig),
  };
}

const seq = (start, n = 32) => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff));
const fill = (v, n = 32) => Buffer.alloc(n, v);
const tag = (s) => sha256(Buffer.from(s));

// A sid of 128 printable ASCII characters (the longest accepted), with
// punctuation that must not be escaped or normalised anywhere.
const longSid = Array.from({ length: 128 }, (_, i) => String.fromCharCode(0x21 + (i * 7) % 94)).join('');

const vectors = [
  // RFC 8032 §7.1 TEST 1 secret key and RFC 7748 §6.1 Alice's private key, so
  // ik and sk can also be checked against those RFCs.
  makeVector('rfc8032-test1 / rfc7748-alice',
    Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
    Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'),
    seq(0), 'Gm7sVb6m8QFSGyq6AAAB'),
  makeVector('hash-derived seeds',
    tag('echolink identity vector 2 ik'), tag('echolink identity vector 2 sk'),
    tag('echolink identity vector 2 nonce'), 'Ab-_0123456789xyzXYZ'),
  // sk_private is deliberately unclamped: it must be stored and exported as
  // given, and clamped only when used.
  makeVector('0xff seed, unclamped x25519 key, 1-char sid', fill(0xff), seq(1), fill(0xff), 'A'),
  makeVector('zero seed, 128-char sid', fill(0x00), tag('echolink identity vector 4 sk'), fill(0x5a), longSid),
];

if (vectors[0].ik !== b64u(Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex')) ||
    vectors[0].sk !== b64u(Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex')))
  throw new Error('RFC 8032 / RFC 7748 public keys do not match');

// ---- negative cases --------------------------------------------------------
// expect "invalid": malformed field (EL_ERR_INVALID, server: bad_request);
// expect "bad_signature": well-formed but does not verify (EL_ERR_CRYPTO).

const dec = (s) => Buffer.from(s, 'base64url');
const flipBit = (s, byte, bit) => { const b = dec(s); b[byte] ^= 1 << bit; return b64u(b); };
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// Sets unused trailing bits of the last character: same bytes under a lax
// decoder, but not the canonical encoding.
const nonCanonical = (s) => {
  const v = B64.indexOf(s.at(-1));
  return s.slice(0, -1) + B64[v | 1];
};

const [v1, v2, v3] = vectors;
const bundleOf = (v) => ({ ik: v.ik, sk: v.sk, sk_sig: v.sk_sig });
const negative = [];
const bundleCase = (name, v, patch, expect, field) =>
  negative.push({ name, kind: 'bundle', ...bundleOf(v), ...patch, expect, ...(field ? { field } : {}) });
const loginCase = (name, v, patch, expect, field) =>
  negative.push({ name, kind: 'login', ...bundleOf(v), nonce: v.nonce, sid: v.sid, login_sig: v.login_sig,
    ...patch, expect, ...(field ? { field } : {}) });

bundleCase('sk_sig with one bit flipped', v1, { sk_sig: flipBit(v1.sk_sig, 0, 0) }, 'bad_signature');
bundleCase('sk_sig with top bit of S flipped', v2, { sk_sig: flipBit(v2.sk_sig, 63, 7) }, 'bad_signature');
bundleCase('sk replaced by another user\'s sk', v1, { sk: v2.sk }, 'bad_signature');
bundleCase('ik replaced by another user\'s ik', v1, { ik: v2.ik }, 'bad_signature');
bundleCase('sk with one bit flipped', v3, { sk: flipBit(v3.sk, 31, 0) }, 'bad_signature');
// The identity point as ik with the trivial signature (R = identity, S = 0)
// verifies under a plain cofactorless check for ANY message; EchoLink rejects
// small-order identity keys so nobody can hold a peer ID anyone can log into.
{
  const identity = Buffer.alloc(32); identity[0] = 1;
  const trivial = Buffer.concat([identity, Buffer.alloc(32)]);
  bundleCase('small-order ik (identity point) with trivial signature', v1,
    { ik: b64u(identity), sk_sig: b64u(trivial) }, 'bad_signature');
}
bundleCase('ik not canonical (trailing bits set)', v1, { ik: nonCanonical(v1.ik) }, 'invalid', 'ik');
bundleCase('sk not canonical (trailing bits set)', v2, { sk: nonCanonical(v2.sk) }, 'invalid', 'sk');
bundleCase('sk_sig not canonical (trailing bits set)', v3, { sk_sig: nonCanonical(v3.sk_sig) }, 'invalid', 'sk_sig');
bundleCase('sk with "=" padding', v1, { sk: v1.sk + '=' }, 'invalid', 'sk');
bundleCase('ik in the standard base64 alphabet', v1,
  { ik: '+' + v1.ik.slice(1) }, 'invalid', 'ik');
bundleCase('sk_sig with "/" (standard alphabet)', v2,
  { sk_sig: v2.sk_sig.slice(0, 10) + '/' + v2.sk_sig.slice(11) }, 'invalid', 'sk_sig');
bundleCase('ik of 31 bytes', v1, { ik: b64u(dec(v1.ik).subarray(0, 31)) }, 'invalid', 'ik');
bundleCase('ik of 33 bytes', v1, { ik: b64u(Buffer.concat([dec(v1.ik), Buffer.alloc(1)])) }, 'invalid', 'ik');
bundleCase('sk empty', v2, { sk: '' }, 'invalid', 'sk');
bundleCase('sk_sig of 63 bytes', v1, { sk_sig: b64u(dec(v1.sk_sig).subarray(0, 63)) }, 'invalid', 'sk_sig');
bundleCase('sk_sig of 65 bytes', v1, { sk_sig: b64u(Buffer.concat([dec(v1.sk_sig), Buffer.alloc(1)])) }, 'invalid', 'sk_sig');
bundleCase('sk_sig with trailing newline', v3, { sk_sig: v3.sk_sig + '\n' }, 'invalid', 'sk_sig');
bundleCase('ik with a space inside', v2, { ik: v2.ik.slice(0, 20) + ' ' + v2.ik.slice(21) }, 'invalid', 'ik');

loginCase('wrong sid (one character changed)', v1, { sid: v1.sid.slice(0, -1) + 'C' }, 'bad_signature');
loginCase('wrong sid (signature for another connection)', v2, { sid: v1.sid }, 'bad_signature');
loginCase('wrong nonce (one bit flipped)', v1, { nonce: flipBit(v1.nonce, 31, 7) }, 'bad_signature');
loginCase('login_sig by another identity', v1, { login_sig: v2.login_sig }, 'bad_signature');
loginCase('login_sig with one bit flipped', v2, { login_sig: flipBit(v2.login_sig, 40, 3) }, 'bad_signature');
loginCase('sk_sig used as login_sig', v1, { login_sig: v1.sk_sig }, 'bad_signature');
{
  // S + L: the same signature under a lax verifier (S is reduced mod L);
  // RFC 8032 §5.1.7 requires S < L. Must be rejected (no malleability).
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const sig = dec(v1.login_sig);
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]);
  s += L;
  for (let i = 0; i < 32; i++) { sig[32 + i] = Number(s & 0xffn); s >>= 8n; }
  loginCase('login_sig with S + L (non-canonical S)', v1, { login_sig: b64u(sig) }, 'bad_signature');
}
{
  // Well-formed Ed25519 signatures whose sid breaks the sid rule (1..128
  // printable ASCII characters): nothing may accept them.
  const k = edPriv(fill(0x00));
  const over = longSid + 'x';
  loginCase('sid of 129 characters (correctly signed)', vectors[3],
    { sid: over, login_sig: b64u(sign(k, loginMsg(dec(vectors[3].nonce), over))) }, 'bad_signature');
  const k3 = edPriv(fill(0xff));
  loginCase('sid with a space (correctly signed)', v3,
    { sid: 'A B', login_sig: b64u(sign(k3, loginMsg(dec(v3.nonce), 'A B'))) }, 'bad_signature');
  loginCase('empty sid (correctly signed)', v3,
    { sid: '', login_sig: b64u(sign(k3, loginMsg(dec(v3.nonce), ''))) }, 'bad_signature');
}
{
  // A key owner can make a signature with R = identity: S = H(R‖A‖M)·a mod L
  // satisfies [S]B = R + [k]A. Cofactorless verifiers (OpenSSL) accept it,
  // spec-following WebCrypto rejects it; EchoLink rejects small-order R.
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const le = (b) => { let v = 0n; for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]); return v; };
  const toLe = (v) => { const b = Buffer.alloc(32); for (let i = 0; i < 32; i++) { b[i] = Number(v & 0xffn); v >>= 8n; } return b; };
  const identityR = Buffer.alloc(32); identityR[0] = 1;
  const forge = (seed, A, msg) => {
    const h = crypto.createHash('sha512').update(seed).digest();
    h[0] &= 248; h[31] &= 127; h[31] |= 64;
    const a = le(h.subarray(0, 32));
    const k = le(crypto.createHash('sha512').update(Buffer.concat([identityR, A, msg])).digest()) % L;
    return b64u(Buffer.concat([identityR, toLe((k * a) % L)]));
  };
  const seed2 = tag('echolink identity vector 2 ik');
  loginCase('login_sig with R = identity (crafted by the key owner)', v2,
    { login_sig: forge(seed2, dec(v2.ik), loginMsg(dec(v2.nonce), v2.sid)) }, 'bad_signature');
  bundleCase('sk_sig with R = identity (crafted by the key owner)', v2,
    { sk_sig: forge(seed2, dec(v2.ik), staticMsg(dec(v2.sk))) }, 'bad_signature');
}
loginCase('login_sig not canonical (trailing bits set)', v1, { login_sig: nonCanonical(v1.login_sig) }, 'invalid', 'login_sig');
loginCase('login_sig of 63 bytes', v2, { login_sig: b64u(dec(v2.login_sig).subarray(0, 63)) }, 'invalid', 'login_sig');
loginCase('login_sig with "=" padding', v1, { login_sig: v1.login_sig + '==' }, 'invalid', 'login_sig');
loginCase('nonce of 31 bytes', v1, { nonce: b64u(dec(v1.nonce).subarray(0, 31)) }, 'invalid', 'nonce');
loginCase('nonce not canonical (trailing bits set)', v2, { nonce: nonCanonical(v2.nonce) }, 'invalid', 'nonce');

// Sanity: every case is really bad under node:crypto, except the ones that
// document EchoLink's stricter rules (small-order ik or R, sid syntax), which
// node:crypto (OpenSSL) accepts and EchoLink must not.
for (const n of negative) {
  if (n.expect !== 'bad_signature') continue;
  const m = n.kind === 'bundle' ? staticMsg(dec(n.sk)) : loginMsg(dec(n.nonce), n.sid);
  const s = dec(n.kind === 'bundle' ? n.sk_sig : n.login_sig);
  const strict = /small-order|R = identity|sid of 129|sid with a space|empty sid/.test(n.name);
  if (verify(dec(n.ik), m, s) !== strict) throw new Error(`negative case "${n.name}" misbehaves under node:crypto`);
}

// ---- small-order Ed25519 encodings ----------------------------------------
// y-coordinates (sign bit masked) of every point of order dividing 8,
// including the non-canonical spellings p and p+1 of y = 0 and y = 1 (the
// libsodium blocklist). Recomputed here from the curve equation as a check.
const P = (1n << 255n) - 19n;
const D = (P - 121665n) * modInv(121666n) % P;
function modPow(b, e) { let r = 1n; b %= P; while (e > 0n) { if (e & 1n) r = r * b % P; b = b * b % P; e >>= 1n; } return r; }
function modInv(a) { return modPow(((a % P) + P) % P, P - 2n); }
const leToInt = (b) => { let v = 0n; for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]); return v; };
function decompress(y) {
  const u = (y * y - 1n + P) % P, v = (D * y * y + 1n) % P;
  const x2 = u * modInv(v) % P;
  let x = modPow(x2, (P + 3n) / 8n);
  if ((x * x - x2) % P !== 0n) x = x * modPow(2n, (P - 1n) / 4n) % P;
  if (((x * x - x2) % P + P) % P !== 0n) return null;
  return [x, y];
}
function add([x1, y1], [x2, y2]) {
  const t = D * x1 * x2 % P * y1 % P * y2 % P;
  return [(x1 * y2 + x2 * y1) % P * modInv(1n + t) % P, ((y1 * y2 + x1 * x2) % P + P) % P * modInv((1n - t + P) % P) % P];
}
const smallOrder = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];
for (const h of smallOrder) {
  const pt = decompress(leToInt(Buffer.from(h, 'hex')) % P);
  if (!pt) throw new Error(`${h} is not on the curve`);
  let q = pt;
  for (let i = 0; i < 3; i++) q = add(q, q);
  if (q[0] !== 0n || q[1] !== 1n) throw new Error(`${h} is not of small order`);
}

// ---- peer ID syntax --------------------------------------------------------
const peerIdSyntax = [
  ...vectors.map((v) => ({ s: v.peer_id, valid: true })),
  { s: 'abcdefghijklmnopqrstuvwxyz234567', valid: true },
  { s: v1.peer_id.slice(0, 31), valid: false },
  { s: v1.peer_id + 'a', valid: false },
  { s: v1.peer_id.toUpperCase(), valid: false },
  { s: 'abcdefghijklmnopqrstuvwxyz234561', valid: false },
  { s: 'abcdefghijklmnopqrstuvwxyz234568', valid: false },
  { s: 'abcdefghijklmnopqrstuvwxyz23456=', valid: false },
  { s: 'abcdefghijklmnopqrstuvwxyz23456 ', valid: false },
  { s: '', valid: false },
];

const doc = {
  about: 'EchoLink identity test vectors (docs/PROTOCOL.md §2), generated by gen-identity.mjs with node:crypto. ' +
    'Binary fields are unpadded base64url except *_hex. ' +
    'negative[].expect: "invalid" = malformed field (C: EL_ERR_INVALID, server: bad_request), ' +
    '"bad_signature" = well-formed but must not verify (C: EL_ERR_CRYPTO). ' +
    'small_order_hex: Ed25519 point encodings (compare with the top bit of byte 31 cleared) that are rejected as ik and as the R half of a signature.',
  domains_hex: {
    static_key: hex(DOM_STATIC), peer_id: hex(DOM_PEER), login: hex(DOM_LOGIN),
  },
  vectors,
  negative,
  peer_id_syntax: peerIdSyntax,
  small_order_hex: smallOrder,
};

const text = JSON.stringify(doc, null, 2) + '\n';
if (process.argv.includes('--check')) {
  const old = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
  if (old !== text) { console.error('identity.json is stale; run gen-identity.mjs'); process.exit(1); }
  console.log('identity.json is up to date');
} else {
  fs.writeFileSync(OUT, text);
  console.log(`wrote ${OUT}: ${vectors.length} vectors, ${negative.length} negative cases`);
}
