// backup.js - passphrase-protected identity backup (docs/PROTOCOL.md §10.4)
// for the web client, readable by the C client and the other way round.
//
//   {"echolink_backup":1,"kdf":"scrypt","n":131072,"r":8,"p":1,
//    "salt":"<16 bytes>","nonce":"<12 bytes>","ct":"<65+16 bytes>"}
//
// key = scrypt(passphrase UTF-8, salt, n, r, p, 32); ct = AES-256-GCM(key,
// nonce, ad = "echolink-v1-backup" 0x00 ‖ u32 n ‖ u32 r ‖ u32 p ‖ salt,
// 0x01 ‖ ik_seed ‖ sk_private). The parameters are in the AD, so a file
// whose n/r/p was edited fails like a wrong passphrase.
//
// scrypt is @noble/hashes' scryptAsync (web/vendor, installed by
// scripts/install-deps.sh): it yields to the event loop so a page stays
// responsive during the ~128 MiB derivation. Everything else is WebCrypto.
// Checked against the "backup" vectors of tests/vectors/e2ee.json.

import { scryptAsync } from '../vendor/noble-hashes/scrypt.js';
import { b64urlDecode, b64urlEncode, exportIdentity as exportSeeds, identityFromSeeds } from './identity.js';
import { parseStrictJson } from './msg.js';

const subtle = globalThis.crypto.subtle;

export const BACKUP_N = 1 << 17;
export const BACKUP_R = 8;
export const BACKUP_P = 1;
export const BACKUP_N_MIN = 1 << 10;
export const BACKUP_N_MAX = 1 << 20;
export const BACKUP_P_MAX = 4;
export const BACKUP_MAX_BYTES = 64 * 1024; // as the C key file limit
const SALT_LEN = 16;
const NONCE_LEN = 12;
const PT_LEN = 1 + 32 + 32;
const CT_LEN = PT_LEN + 16;
const PT_VERSION = 0x01;
const DOM_BACKUP = new TextEncoder().encode('echolink-v1-backup\0');

export const BAD_PASSPHRASE = 'bad passphrase or corrupted backup';

/** A backup that cannot be imported. code 'invalid': not a well-formed
 *  EchoLink scrypt backup (checked before any key derivation); code
 *  'bad_passphrase': well-formed but does not decrypt (wrong passphrase, or
 *  salt, nonce, ct, n, r or p altered), message BAD_PASSPHRASE. */
export class BackupError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'BackupError';
    this.code = code;
    this.reason = code;
  }
}

const invalid = (detail) => new BackupError('invalid', `invalid backup: ${detail}`);

function isPow2InRange(n) {
  return Number.isSafeInteger(n) && n >= BACKUP_N_MIN && n <= BACKUP_N_MAX && (n & (n - 1)) === 0;
}

// Throws when (n, r, p) is outside what import accepts: export never writes
// a file that cannot be read back.
function checkParams(n, r, p) {
  if (!isPow2InRange(n)) throw invalid('n must be a power of two in 2^10..2^20');
  if (r !== BACKUP_R) throw invalid('r must be 8');
  if (!Number.isSafeInteger(p) || p < 1 || p > BACKUP_P_MAX) throw invalid('p must be an integer 1..4');
}

function ad(n, r, p, salt) {
  const out = new Uint8Array(DOM_BACKUP.length + 12 + SALT_LEN);
  out.set(DOM_BACKUP, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(DOM_BACKUP.length, n);
  dv.setUint32(DOM_BACKUP.length + 4, r);
  dv.setUint32(DOM_BACKUP.length + 8, p);
  out.set(salt, DOM_BACKUP.length + 12);
  return out;
}

// The AES key for (passphrase, salt, n, r, p); the raw scrypt output is
// wiped once WebCrypto holds its own copy.
async function deriveKey(passphrase, salt, n, r, p, onProgress) {
  const pw = new TextEncoder().encode(passphrase);
  let raw;
  try {
    raw = await scryptAsync(pw, salt, { N: n, r, p, dkLen: 32, maxmem: 128 * r * (n + p) + 1024, onProgress });
    return await subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
  } finally {
    pw.fill(0);
    if (raw) raw.fill(0);
  }
}

/** Encrypts identity under passphrase with explicit parameters and
 *  randomness: {salt (16 bytes), nonce (12 bytes), n, r, p, onProgress?}.
 *  FOR TEST VECTORS ONLY: a salt/nonce pair must never be reused; use
 *  exportIdentity(). Returns the backup JSON text. */
export async function exportIdentityWith(identity, passphrase, { salt, nonce, n = BACKUP_N, r = BACKUP_R, p = BACKUP_P, onProgress } = {}) {
  if (typeof passphrase !== 'string' || passphrase.length === 0) throw new TypeError('a backup needs a non-empty passphrase');
  const s = new Uint8Array(salt ?? []), iv = new Uint8Array(nonce ?? []);
  if (s.length !== SALT_LEN || iv.length !== NONCE_LEN) throw new TypeError('salt must be 16 bytes and nonce 12 bytes');
  checkParams(n, r, p);
  const seeds = await exportSeeds(identity);
  const pt = new Uint8Array(PT_LEN);
  try {
    pt[0] = PT_VERSION;
    pt.set(b64urlDecode(seeds.ik_seed, 32), 1);
    pt.set(b64urlDecode(seeds.sk_private, 32), 33);
    const key = await deriveKey(passphrase, s, n, r, p, onProgress);
    const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: ad(n, r, p, s), tagLength: 128 }, key, pt));
    // Member order of §10.4; the C client writes the same text.
    return JSON.stringify({ echolink_backup: 1, kdf: 'scrypt', n, r, p, salt: b64urlEncode(s), nonce: b64urlEncode(iv), ct: b64urlEncode(ct) });
  } finally {
    pt.fill(0);
  }
}

/** Encrypts identity (its private keys must be extractable, as
 *  generateIdentity() and identityFromSeeds() make them) under passphrase.
 *  opts: {n (default 2^17), p (default 1), onProgress(fraction)}. Fresh
 *  random salt and nonce. Returns the backup JSON text. */
export async function exportIdentity(identity, passphrase, opts = {}) {
  const rnd = (len) => globalThis.crypto.getRandomValues(new Uint8Array(len));
  return exportIdentityWith(identity, passphrase, { n: opts.n, p: opts.p, onProgress: opts.onProgress, salt: rnd(SALT_LEN), nonce: rnd(NONCE_LEN) });
}

// Structural checks of §10.4 (everything before scrypt); returns the fields.
function readBackup(text) {
  let doc;
  try {
    doc = parseStrictJson(text, { maxDepth: 32, maxBytes: BACKUP_MAX_BYTES });
  } catch (e) {
    throw invalid(`not strict JSON (${e.reason || e.message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('not a JSON object');
  if (doc.echolink_backup !== 1) throw invalid('not an EchoLink backup (echolink_backup must be 1)');
  if (doc.kdf !== 'scrypt') throw invalid('kdf must be "scrypt" (a backup without passphrase is not accepted here)');
  for (const k of ['n', 'r', 'p']) {
    if (typeof doc[k] !== 'number') throw invalid(`${k} missing or not a number`);
  }
  checkParams(doc.n, doc.r, doc.p);
  const field = (k, len) => {
    try {
      return b64urlDecode(doc[k], len);
    } catch {
      throw invalid(`${k} must be base64url of ${len} bytes`);
    }
  };
  return { n: doc.n, r: doc.r, p: doc.p, salt: field('salt', SALT_LEN), nonce: field('nonce', NONCE_LEN), ct: field('ct', CT_LEN) };
}

/** Rebuilds an identity ({ik, sk} CryptoKeyPairs, extractable) from a backup
 *  (JSON text or its UTF-8 bytes). opts: {onProgress(fraction)}. Throws
 *  BackupError: code 'invalid' (structure, before any key derivation) or
 *  'bad_passphrase' with the message "bad passphrase or corrupted backup".
 *  Unknown extra members are ignored. */
export async function importIdentity(text, passphrase, opts = {}) {
  if (typeof passphrase !== 'string') throw new TypeError('passphrase must be a string');
  const b = readBackup(text);
  const key = await deriveKey(passphrase, b.salt, b.n, b.r, b.p, opts.onProgress);
  let pt;
  try {
    pt = new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: b.nonce, additionalData: ad(b.n, b.r, b.p, b.salt), tagLength: 128 }, key, b.ct));
  } catch {
    throw new BackupError('bad_passphrase', BAD_PASSPHRASE);
  }
  try {
    // Authentic, so written by an EchoLink client: another version byte is
    // a newer format, not corruption.
    if (pt.length !== PT_LEN || pt[0] !== PT_VERSION) throw invalid('unsupported key format');
    return await identityFromSeeds(pt.subarray(1, 33), pt.subarray(33, 65));
  } finally {
    pt.fill(0);
  }
}
