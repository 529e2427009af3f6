// safety.js - safety numbers (docs/PROTOCOL.md §10.1) for the web client.
//
// Same contract as the C code, checked against the "safety" vectors of
// tests/vectors/e2ee.json. WebCrypto only.
//
// Per party: H = SHA-512("echolink-v1-safety" 0x00 ‖ ik ‖ peer_id), then 5199
// times H = SHA-512(H ‖ ik); the first 30 bytes of the last H as six u40,
// each mod 100000 as 5 digits. The number is both 30-digit halves in
// ascending order: the same on both sides. It depends on ik only, so a new
// sk (a key change, §10.2) does not change it.

import { b64urlDecode, b64urlEncode, peerIdFromIk } from './identity.js';

const subtle = globalThis.crypto.subtle;
const DOM_SAFETY = new TextEncoder().encode('echolink-v1-safety\0');
export const SAFETY_ITERATIONS = 5200; // the first hash and 5199 more
export const SAFETY_DIGITS = 60;

// ik as raw bytes from a bundle, a base64url string or bytes.
function ikBytes(x) {
  if (typeof x === 'string') return b64urlDecode(x, 32);
  if (x instanceof Uint8Array || x instanceof ArrayBuffer) {
    const b = new Uint8Array(x);
    if (b.length !== 32) throw new TypeError('ik must be 32 bytes');
    return b;
  }
  if (x && typeof x.ik === 'string') return b64urlDecode(x.ik, 32);
  throw new TypeError('expected a bundle, a base64url ik or 32 bytes');
}

// The 30 digits of one party. The peer ID is recomputed from ik and must
// match when given: a number over a mismatched pair would compare nothing.
async function half(x, peerId) {
  const ik = ikBytes(x);
  const derived = await peerIdFromIk(b64urlEncode(ik));
  if (peerId !== undefined && peerId !== derived) throw new TypeError('peer ID does not belong to this ik');
  const pid = new TextEncoder().encode(derived);
  let h = new Uint8Array(await subtle.digest('SHA-512', concatBytes(DOM_SAFETY, ik, pid)));
  const buf = new Uint8Array(64 + 32);
  buf.set(ik, 64);
  for (let i = 1; i < SAFETY_ITERATIONS; i++) {
    buf.set(h, 0);
    h = new Uint8Array(await subtle.digest('SHA-512', buf));
  }
  let out = '';
  for (let c = 0; c < 6; c++) {
    let v = 0;
    // u40 < 2^53: exact in a double.
    for (let j = 0; j < 5; j++) v = v * 256 + h[5 * c + j];
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** The 60-digit safety number of two parties. Each party is given as a
 *  bundle ({ik, ...}), a base64url ik or 32 raw ik bytes, with its peer ID
 *  (optional: derived from ik when omitted; when given it must be ik's, else
 *  TypeError). Symmetric: safetyNumber(a, pa, b, pb) === safetyNumber(b, pb, a, pa). */
export async function safetyNumber(a, peerIdA, b, peerIdB) {
  const [x, y] = await Promise.all([half(a, peerIdA), half(b, peerIdB)]);
  return x <= y ? x + y : y + x;
}

/** 60 digits shown as 12 groups of 5, separated by single spaces (sep). */
export function formatSafetyNumber(number, sep = ' ') {
  if (typeof number !== 'string' || !/^[0-9]{60}$/.test(number)) throw new TypeError('a safety number is 60 digits');
  return number.match(/[0-9]{5}/g).join(sep);
}
