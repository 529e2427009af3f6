#!/usr/bin/env node
// gen-e2ee.mjs - writes tests/vectors/e2ee.json (docs/PROTOCOL.md §9-§11).
//
// A third implementation of the peer protocol, next to the C one (src/crypto,
// src/proto, src/client) and the WebCrypto one (web/lib): it uses only
// node:crypto (the OpenSSL-backed classic API) and shares no code with either.
// Its generic Noise (rev 34) is checked against published vectors
// (tests/vectors/noise.json) by tests/js/vectors-e2ee.test.mjs.
//
// Every "random" input is derived from SHA-256 of a label, so the output is a
// pure function of this file and tests/vectors/identity.json.
//
//   node tests/vectors/gen-e2ee.mjs          # rewrite e2ee.json
//   node tests/vectors/gen-e2ee.mjs --check  # fail if it would change
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const OUT = fileURLToPath(new URL('./e2ee.json', import.meta.url));
const IDENTITY = fileURLToPath(new URL('./identity.json', import.meta.url));

// ---- byte helpers ----------------------------------------------------------

const B = (s) => Buffer.from(s, 'utf8');
const H = (h) => Buffer.from(h, 'hex');
const hex = (b) => Buffer.from(b).toString('hex');
const b64u = (b) => Buffer.from(b).toString('base64url'); // unpadded
const cat = (...parts) => Buffer.concat(parts.map((p) => Buffer.from(p)));
const label0 = (s) => B(s + '\0'); // "label" 0x00
const sha256 = (...p) => crypto.createHash('sha256').update(cat(...p)).digest();
const sha512 = (...p) => crypto.createHash('sha512').update(cat(...p)).digest();
const hmac = (key, ...p) => crypto.createHmac('sha256', key).update(cat(...p)).digest();
const tag = (s) => sha256(B(s)); // a deterministic "random" 32 bytes
const u8 = (v) => Buffer.from([v]);
const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b; };
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b; };
const flip = (buf, byte, bit = 0) => { const b = Buffer.from(buf); b[byte < 0 ? b.length + byte : byte] ^= 1 << bit; return b; };

// ---- keys (RFC 8410 DER wrappers around raw 32-byte keys) -----------------

const ED_PKCS8 = H('302e020100300506032b657004220420');
const X_PKCS8 = H('302e020100300506032b656e04220420');
const ED_SPKI = H('302a300506032b6570032100');
const X_SPKI = H('302a300506032b656e032100');

const edPriv = (seed) => crypto.createPrivateKey({ key: cat(ED_PKCS8, seed), format: 'der', type: 'pkcs8' });
const xPriv = (k) => crypto.createPrivateKey({ key: cat(X_PKCS8, k), format: 'der', type: 'pkcs8' });
const xPubKey = (raw) => crypto.createPublicKey({ key: cat(X_SPKI, raw), format: 'der', type: 'spki' });
const rawPub = (priv) => Buffer.from(crypto.createPublicKey(priv).export({ format: 'jwk' }).x, 'base64url');
const xPub = (privRaw) => rawPub(xPriv(privRaw));
const edSign = (seed, msg) => crypto.sign(null, msg, edPriv(seed));
const edVerify = (ikRaw, msg, sig) => {
  try {
    const k = crypto.createPublicKey({ key: cat(ED_SPKI, ikRaw), format: 'der', type: 'spki' });
    return sig.length === 64 && crypto.verify(null, msg, k, sig);
  } catch { return false; }
};

class ProtoError extends Error {
  constructor(code) { super(code); this.code = code; }
}

// X25519. OpenSSL refuses an all-zero result (a low-order peer key), which is
// exactly the `malformed` rule of §9. A null private key stands for "the
// other side used a low-order point": the shared secret is then 32 zero
// bytes, which lets us craft the messages such a peer would send.
function dh(privRaw, pubRaw) {
  if (privRaw === null) return Buffer.alloc(32);
  try {
    const out = crypto.diffieHellman({ privateKey: xPriv(privRaw), publicKey: xPubKey(pubRaw) });
    if (out.every((x) => x === 0)) throw new Error('zero');
    return out;
  } catch {
    throw new ProtoError('malformed');
  }
}

// ---- AES-256-GCM with the Noise nonce ----------------------------------------

const MAX_NONCE = (1n << 64n) - 1n;
const gcmNonce = (n) => cat(Buffer.alloc(4), u64(n)); // 0x00000000 || u64(n)

function aeadEncrypt(k, n, ad, pt) {
  const c = crypto.createCipheriv('aes-256-gcm', k, gcmNonce(n));
  c.setAAD(ad);
  return cat(c.update(pt), c.final(), c.getAuthTag());
}

function aeadDecrypt(k, n, ad, ct) {
  if (ct.length < 16) throw new ProtoError('auth');
  try {
    const d = crypto.createDecipheriv('aes-256-gcm', k, gcmNonce(n));
    d.setAAD(ad);
    d.setAuthTag(ct.subarray(ct.length - 16));
    return cat(d.update(ct.subarray(0, ct.length - 16)), d.final());
  } catch {
    throw new ProtoError('auth');
  }
}

// Noise REKEY(k) (§9.3 and Noise §11.3).
export const rekey = (k) => aeadEncrypt(k, MAX_NONCE, Buffer.alloc(0), Buffer.alloc(32)).subarray(0, 32);

// ---- Noise revision 34: CipherState, SymmetricState, HandshakeState ---------

// Noise HKDF: HMAC-SHA256 written out as in the Noise spec §4.3 (and not
// hkdfSync, which the channel keys use, so both code paths get exercised).
function noiseHkdf(ck, ikm, count) {
  const temp = hmac(ck, ikm);
  const outs = [];
  let prev = Buffer.alloc(0);
  for (let i = 1; i <= count; i++) {
    prev = hmac(temp, prev, u8(i));
    outs.push(prev);
  }
  return outs;
}

class CipherState {
  constructor(k = null) { this.k = k; this.n = 0n; }
  encryptWithAd(ad, pt) {
    if (this.k === null) return Buffer.from(pt);
    const ct = aeadEncrypt(this.k, this.n, ad, pt);
    this.n++;
    return ct;
  }
  decryptWithAd(ad, ct) {
    if (this.k === null) return Buffer.from(ct);
    const pt = aeadDecrypt(this.k, this.n, ad, ct);
    this.n++;
    return pt;
  }
}

class SymmetricState {
  constructor(name) {
    const nb = B(name);
    this.h = nb.length <= 32 ? cat(nb, Buffer.alloc(32 - nb.length)) : sha256(nb);
    this.ck = Buffer.from(this.h);
    this.cs = new CipherState();
  }
  mixKey(ikm) {
    const [ck, k] = noiseHkdf(this.ck, ikm, 2);
    this.ck = ck;
    this.cs = new CipherState(k);
  }
  mixHash(data) { this.h = sha256(this.h, data); }
  encryptAndHash(pt) {
    const ct = this.cs.encryptWithAd(this.h, pt);
    this.mixHash(ct);
    return ct;
  }
  decryptAndHash(ct) {
    const pt = this.cs.decryptWithAd(this.h, ct);
    this.mixHash(ct);
    return pt;
  }
  split() {
    const [k1, k2] = noiseHkdf(this.ck, Buffer.alloc(0), 2);
    return [new CipherState(k1), new CipherState(k2)];
  }
}

export const PATTERNS = {
  XX: { pre: { i: [], r: [] }, msgs: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']] },
  X: { pre: { i: [], r: ['s'] }, msgs: [['e', 'es', 's', 'ss']] },
};

// A generic Noise handshake over 25519/AESGCM/SHA256. Keys are raw 32-byte
// X25519 private keys; `e` may be {priv: null, pub} to craft a low-order key.
export class HandshakeState {
  constructor({ pattern, initiator, prologue, s = null, e = null, rs = null }) {
    this.p = PATTERNS[pattern];
    this.initiator = initiator;
    this.ss = new SymmetricState(`Noise_${pattern}_25519_AESGCM_SHA256`);
    this.ss.mixHash(prologue);
    this.s = s === null ? null : { priv: s, pub: xPub(s) };
    this.eIn = e;
    this.e = null;
    this.rs = rs;
    this.re = null;
    // Pre-messages: only "s" occurs in the patterns used here.
    for (const side of ['i', 'r']) {
      for (const t of this.p.pre[side]) {
        if (t !== 's') throw new Error('unsupported pre-message');
        const mine = (side === 'i') === initiator;
        this.ss.mixHash(mine ? this.s.pub : this.rs);
      }
    }
    this.msg = 0;
  }

  get h() { return Buffer.from(this.ss.h); }

  // The DH for token "ee"/"es"/"se"/"ss" from this side's point of view.
  tokenDh(t) {
    const [a, b] = t;
    const mineOf = (x) => (x === 'e' ? this.e : this.s);
    const theirs = (x) => (x === 'e' ? this.re : this.rs);
    // "es" = initiator's e with responder's s; the initiator holds the first letter.
    const local = this.initiator ? a : b;
    const remote = this.initiator ? b : a;
    return dh(mineOf(local).priv, theirs(remote));
  }

  // payload: bytes, or a function of h (the hash right before the payload is
  // encrypted) returning the bytes, which the identity payload needs.
  writeMessage(payload, hooks = {}) {
    const out = [];
    for (const t of this.p.msgs[this.msg]) {
      if (t === 'e') {
        const e = this.eIn;
        this.e = e.pub ? e : { priv: e.priv, pub: xPub(e.priv) };
        out.push(this.e.pub);
        this.ss.mixHash(this.e.pub);
      } else if (t === 's') {
        out.push(this.ss.encryptAndHash(this.s.pub));
      } else {
        this.ss.mixKey(this.tokenDh(t));
      }
      if (hooks.afterToken) hooks.afterToken(t, this.h);
    }
    const pt = typeof payload === 'function' ? payload(this.h) : payload;
    out.push(this.ss.encryptAndHash(pt));
    this.msg++;
    return cat(...out);
  }

  // Returns {payload, hBeforePayload}; throws ProtoError('auth') when a
  // ciphertext does not decrypt and 'malformed' on a low-order key.
  readMessage(msg) {
    let off = 0;
    const take = (n) => {
      if (off + n > msg.length) throw new ProtoError('short');
      const b = msg.subarray(off, off + n);
      off += n;
      return b;
    };
    for (const t of this.p.msgs[this.msg]) {
      if (t === 'e') {
        this.re = Buffer.from(take(32));
        this.ss.mixHash(this.re);
      } else if (t === 's') {
        const hasKey = this.ss.cs.k !== null;
        this.rs = this.ss.decryptAndHash(take(hasKey ? 48 : 32));
      } else {
        this.ss.mixKey(this.tokenDh(t));
      }
    }
    const hBeforePayload = this.h;
    const payload = this.ss.decryptAndHash(msg.subarray(off));
    this.msg++;
    return { payload, hBeforePayload };
  }

  split() { return this.ss.split(); }
}

// ---- identities ----------------------------------------------------------------

const DOM_STATIC = label0('echolink-v1-static-key');
const DOM_PEER = label0('echolink-v1-peer-id');
const DOM_HS = label0('echolink-v1-handshake');
const DOM_NOISE = label0('echolink-v1-noise');
const DOM_CHANNEL = label0('echolink-v1-channel');
const DOM_SEAL = label0('echolink-v1-seal');
const DOM_SAFETY = label0('echolink-v1-safety');
const DOM_BACKUP = label0('echolink-v1-backup');
const DOM_GROUP = label0('echolink-v1-group');

function base32(bytes) {
  const alpha = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '', acc = 0, bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff; bits += 8;
    while (bits >= 5) { bits -= 5; out += alpha[(acc >> bits) & 31]; }
  }
  if (bits > 0) out += alpha[(acc << (5 - bits)) & 31];
  return out;
}
const peerIdOf = (ik) => base32(sha256(DOM_PEER, ik).subarray(0, 20));

function loadIdentities() {
  const doc = JSON.parse(fs.readFileSync(IDENTITY, 'utf8'));
  const names = ['alice', 'bob', 'carol'];
  const out = {};
  names.forEach((name, i) => {
    const v = doc.vectors[i];
    const id = {
      name, ik_seed_hex: v.ik_seed_hex, sk_private_hex: v.sk_private_hex,
      ik: v.ik, sk: v.sk, sk_sig: v.sk_sig, peer_id: v.peer_id,
    };
    // Re-derive everything so that a changed identity.json cannot slip through.
    const seed = H(v.ik_seed_hex), skp = H(v.sk_private_hex);
    const ik = rawPub(edPriv(seed)), sk = xPub(skp);
    if (b64u(ik) !== v.ik || b64u(sk) !== v.sk || peerIdOf(ik) !== v.peer_id ||
        b64u(edSign(seed, cat(DOM_STATIC, sk))) !== v.sk_sig)
      throw new Error(`identity.json vector ${i} does not re-derive`);
    out[name] = { json: id, seed, skPriv: skp, ik, sk, skSig: Buffer.from(v.sk_sig, 'base64url'), peerId: v.peer_id };
  });
  return out;
}

// ---- §9 handshake --------------------------------------------------------------

const HS1 = 0x01, HS2 = 0x02, HS3 = 0x03, ABORT = 0x04;
const HS_LEN = { [HS1]: 33, [HS2]: 257, [HS3]: 225 };

const prologueOf = (fpI, fpR) => cat(DOM_NOISE, fpI, fpR);

// Identity payload: ik || sk_sig over the sender's own static key || hs_sig over h.
function identityPayload(id, h, opts = {}) {
  const skSig = opts.skSig ?? edSign(id.seed, cat(DOM_STATIC, id.sk));
  const hsSig = edSign(opts.signSeed ?? id.seed, cat(DOM_HS, opts.signH ?? h));
  return cat(opts.ik ?? id.ik, skSig, hsSig);
}

// The receiver's checks of §9, in the order the spec gives them.
function checkIdentityPayload(payload, rs, h, expectedPeer) {
  if (payload.length !== 160) throw new ProtoError('malformed');
  const ik = payload.subarray(0, 32), skSig = payload.subarray(32, 96), hsSig = payload.subarray(96, 160);
  if (!edVerify(ik, cat(DOM_STATIC, rs), skSig) || !edVerify(ik, cat(DOM_HS, h), hsSig))
    throw new ProtoError('signature');
  if (peerIdOf(ik) !== expectedPeer) throw new ProtoError('identity');
  return ik;
}

const CHANNEL_LABEL_RE = /^(chat|f:[0-9a-f]{32})$/;
export function channelKey(h, k, label) {
  if (!CHANNEL_LABEL_RE.test(label)) throw new Error(`bad label ${label}`);
  return Buffer.from(crypto.hkdfSync('sha256', k, h, cat(DOM_CHANNEL, B(label)), 32));
}

// Runs one side of a handshake on received bytes; returns the outcome name
// ("ok" or the failure) the way §9/§9.1 classify it. Used to check that every
// vector really fails (or succeeds) for the stated reason.
function classify(fn) {
  try { fn(); return 'ok'; } catch (e) {
    if (!(e instanceof ProtoError)) throw e;
    return e.code;
  }
}

function expectMsg(msg, type) {
  if (msg.length >= 1 && msg[0] === ABORT && msg.length === 2) throw new ProtoError('aborted');
  if (msg.length !== HS_LEN[type] || msg[0] !== type) throw new ProtoError('unexpected');
  return msg.subarray(1);
}

// Initiator: writes HS1, then reads HS2 (the failure under test) and, if that
// passes, writes HS3.
function initiatorRun({ me, fpI, fpR, eI, expectedPeer, hs2 }) {
  const hs = new HandshakeState({ pattern: 'XX', initiator: true, prologue: prologueOf(fpI, fpR), s: me.skPriv, e: { priv: eI } });
  const hs1 = cat(u8(HS1), hs.writeMessage(Buffer.alloc(0)));
  let result = 'ok';
  if (hs2 !== undefined) {
    result = classify(() => {
      const body = expectMsg(hs2, HS2);
      let r;
      try { r = hs.readMessage(body); } catch (e) {
        if (e.code === 'auth') throw new ProtoError('binding');
        throw e;
      }
      checkIdentityPayload(r.payload, hs.rs, r.hBeforePayload, expectedPeer);
    });
  }
  return { hs, hs1, result };
}

function responderRun({ me, fpI, fpR, eR, expectedPeer, hs1, hs3, craft }) {
  const hs = new HandshakeState({ pattern: 'XX', initiator: false, prologue: prologueOf(fpI, fpR), s: me.skPriv, e: eR });
  let hs2 = null;
  const result = classify(() => {
    hs.readMessage(expectMsg(hs1, HS1));
    const seen = {};
    const hooks = { afterToken: (t, h) => { seen[t] = h; } };
    hs2 = cat(u8(HS2), hs.writeMessage((h) => identityPayload(me, h, craft ? craft(seen) : {}), hooks));
    if (hs3 === undefined) return;
    const body = expectMsg(hs3, HS3);
    let r;
    try { r = hs.readMessage(body); } catch (e) {
      if (e.code === 'auth') throw new ProtoError('binding');
      throw e;
    }
    checkIdentityPayload(r.payload, hs.rs, r.hBeforePayload, expectedPeer);
  });
  return { hs, hs2, result };
}

function fullHandshake(ids, iName, rName, tagName, labels) {
  const I = ids[iName], R = ids[rName];
  const fpI = tag(`fp ${tagName} I`), fpR = tag(`fp ${tagName} R`);
  const eI = tag(`e_i ${tagName}`), eR = tag(`e_r ${tagName}`);
  const ini = initiatorRun({ me: I, fpI, fpR, eI });
  const res = responderRun({ me: R, fpI, fpR, eR: { priv: eR }, hs1: ini.hs1 });
  if (res.result !== 'ok') throw new Error('responder failed');
  // Initiator reads HS2 and writes HS3.
  const r2 = ini.hs.readMessage(res.hs2.subarray(1));
  checkIdentityPayload(r2.payload, ini.hs.rs, r2.hBeforePayload, R.peerId);
  const hs3 = cat(u8(HS3), ini.hs.writeMessage((h) => identityPayload(I, h)));
  const r3 = res.hs.readMessage(hs3.subarray(1));
  checkIdentityPayload(r3.payload, res.hs.rs, r3.hBeforePayload, I.peerId);
  const [ciIR, ciRI] = ini.hs.split();
  const [crIR, crRI] = res.hs.split();
  if (!ciIR.k.equals(crIR.k) || !ciRI.k.equals(crRI.k) || !ini.hs.h.equals(res.hs.h))
    throw new Error('split mismatch');
  const h = ini.hs.h;
  const sizes = [ini.hs1.length, res.hs2.length, hs3.length];
  if (sizes.join() !== '33,257,225') throw new Error(`sizes ${sizes}`);
  return {
    name: `${iName}->${rName}`,
    initiator: iName, responder: rName,
    fp_i_hex: hex(fpI), fp_r_hex: hex(fpR),
    e_i_priv_hex: hex(eI), e_r_priv_hex: hex(eR),
    prologue_hex: hex(prologueOf(fpI, fpR)),
    hs1_hex: hex(ini.hs1), hs2_hex: hex(res.hs2), hs3_hex: hex(hs3),
    h_hex: hex(h), k_ir_hex: hex(ciIR.k), k_ri_hex: hex(ciRI.k),
    channels: labels.map((label) => ({
      label, key_ir_hex: hex(channelKey(h, ciIR.k, label)), key_ri_hex: hex(channelKey(h, ciRI.k, label)),
    })),
  };
}

// An X25519 point of order 8 (RFC 7748 §7 / libsodium's blocklist): every
// clamped scalar maps it to zero.
const LOW_ORDER = H('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800');

function handshakeNegatives(ids) {
  const out = [];
  const { bob, carol } = ids;
  // One case; `hs2` is crafted by default as the honest responder's HS2 on the
  // responder's own view of the fingerprints.
  const add = (name, o) => {
    const I = ids[o.initiator], R = ids[o.responder];
    const t = `neg ${name}`;
    const fpI = o.fpI ?? tag(`fp ${t} I`), fpR = o.fpR ?? tag(`fp ${t} R`);
    const fpIr = o.fpIr ?? fpI, fpRr = o.fpRr ?? fpR;
    const eI = tag(`e_i ${t}`), eR = tag(`e_r ${t}`);
    const expI = o.expectedPeerI ?? R.peerId, expR = o.expectedPeerR ?? I.peerId;
    const ini0 = initiatorRun({ me: I, fpI, fpR, eI });
    let hs2 = o.hs2;
    if (hs2 === undefined) {
      const res = responderRun({ me: R, fpI: fpIr, fpR: fpRr, eR: o.eR ?? { priv: eR }, hs1: ini0.hs1, craft: o.craft });
      hs2 = o.mutate ? o.mutate(res.hs2) : res.hs2;
    }
    const ini = initiatorRun({ me: I, fpI, fpR, eI, expectedPeer: expI, hs2 });
    if (ini.result !== o.expect) throw new Error(`${name}: got ${ini.result}, want ${o.expect}`);
    out.push({
      name, initiator: o.initiator, responder: o.responder,
      fp_i_hex: hex(fpI), fp_r_hex: hex(fpR), fp_i_hex_r: hex(fpIr), fp_r_hex_r: hex(fpRr),
      expected_peer_i: expI, expected_peer_r: expR,
      e_i_priv_hex: hex(eI), e_r_priv_hex: o.eR && o.eR.priv === null ? null : hex(eR),
      hs1_hex: hex(ini.hs1), hs2_hex: hex(hs2),
      expect_initiator: o.expect, fails_at: 'hs2', why: o.why,
    });
  };

  add('MITM: the two sides see different DTLS fingerprints', {
    initiator: 'alice', responder: 'bob',
    fpI: tag('fp mitm alice cert'), fpR: tag('fp mitm relay cert toward alice'),
    fpIr: tag('fp mitm relay cert toward bob'), fpRr: tag('fp mitm bob cert'),
    expect: 'binding', why: 'prologues differ, so AEAD(s) in HS2 does not decrypt: identity/channel binding mismatch',
  });
  add('only the responder fingerprint differs', {
    initiator: 'alice', responder: 'bob', fpRr: tag('fp other R'),
    expect: 'binding', why: 'one differing byte of the prologue is enough',
  });
  add('carol answers where bob was expected', {
    initiator: 'alice', responder: 'carol', expectedPeerI: bob.peerId,
    expect: 'identity', why: 'HS2 is honest and verifies, but peer_id(ik) is carol, not the signaling peer bob: identity mismatch',
  });
  add('hs_sig over the h before the s token', {
    initiator: 'alice', responder: 'bob',
    craft: (seen) => ({ signH: seen.e }),
    expect: 'signature', why: 'valid bundle, but hs_sig signs a different h: bad signature',
  });
  add('hs_sig replayed from another session', {
    initiator: 'alice', responder: 'bob',
    craft: () => ({ signH: tag('h of an earlier alice->bob session') }),
    expect: 'signature', why: 'hs_sig is a valid signature by bob, over the h of another handshake: bad signature',
  });
  add('payload ik does not own the Noise static key', {
    initiator: 'alice', responder: 'bob', expectedPeerI: carol.peerId,
    craft: () => ({ ik: carol.ik, skSig: edSign(carol.seed, cat(DOM_STATIC, carol.sk)), signSeed: carol.seed }),
    expect: 'signature', why: 'bob\'s static key s with carol\'s ik and carol\'s own bundle signature: sk_sig does not verify over s (checked before the peer ID)',
  });
  add('sk_sig with one bit flipped', {
    initiator: 'alice', responder: 'bob',
    craft: () => ({ skSig: flip(bob.skSig, 10) }),
    expect: 'signature', why: 'sk_sig does not verify',
  });
  add('HS2 payload ciphertext with one bit flipped', {
    initiator: 'alice', responder: 'bob', mutate: (m) => flip(m, 200),
    expect: 'binding', why: 'the payload does not decrypt: identity/channel binding mismatch (§9: "the payload decrypts (else identity/channel binding mismatch)")',
  });
  add('HS2 with a low-order ephemeral key', {
    initiator: 'alice', responder: 'bob', eR: { priv: null, pub: LOW_ORDER },
    expect: 'malformed', why: 'DH(e_i, e_r) is all zeros: malformed (crafted with the zero shared secret, so it decrypts if the check is missing)',
  });
  add('HS2 one byte short', {
    initiator: 'alice', responder: 'bob', mutate: (m) => m.subarray(0, 256),
    expect: 'unexpected', why: 'wrong length for HS2 (257 bytes): unexpected message, §9.1',
  });
  add('HS2 with type byte 0x03', {
    initiator: 'alice', responder: 'bob', mutate: (m) => cat(u8(HS3), m.subarray(1)),
    expect: 'unexpected', why: 'wrong type: unexpected message',
  });
  add('ABORT instead of HS2', {
    initiator: 'alice', responder: 'bob', hs2: H('0402'),
    expect: 'aborted', why: 'ABORT reason 2: peer aborted: identity mismatch',
  });
  return out;
}

// Failures the responder sees (HS1 or HS3).
function responderNegatives(ids) {
  const out = [];
  const add = (name, o) => {
    const I = ids[o.initiator], R = ids[o.responder];
    const t = `rneg ${name}`;
    const fpI = tag(`fp ${t} I`), fpR = tag(`fp ${t} R`);
    const eI = tag(`e_i ${t}`), eR = tag(`e_r ${t}`);
    const expR = o.expectedPeerR ?? I.peerId;
    let hs1, hs3;
    let ini = null;
    if (o.hs1) {
      hs1 = o.hs1;
    } else {
      ini = initiatorRun({ me: I, fpI, fpR, eI });
      hs1 = ini.hs1;
    }
    const res0 = responderRun({ me: R, fpI, fpR, eR: { priv: eR }, hs1 });
    if (o.failsAt === 'hs3') {
      const r2 = ini.hs.readMessage(res0.hs2.subarray(1));
      checkIdentityPayload(r2.payload, ini.hs.rs, r2.hBeforePayload, R.peerId);
      hs3 = cat(u8(HS3), ini.hs.writeMessage((h) => identityPayload(I, h, o.craft ? o.craft() : {})));
      if (o.mutate) hs3 = o.mutate(hs3);
    }
    const res = responderRun({ me: R, fpI, fpR, eR: { priv: eR }, hs1, hs3, expectedPeer: expR });
    if (res.result !== o.expect) throw new Error(`${name}: got ${res.result}, want ${o.expect}`);
    out.push({
      name, initiator: o.initiator, responder: o.responder,
      fp_i_hex_r: hex(fpI), fp_r_hex_r: hex(fpR), expected_peer_r: expR,
      e_i_priv_hex: o.hs1 ? null : hex(eI), e_r_priv_hex: hex(eR),
      hs1_hex: hex(hs1), hs2_hex: res0.hs2 ? hex(res0.hs2) : null, hs3_hex: hs3 ? hex(hs3) : null,
      expect_responder: o.expect, fails_at: o.failsAt, why: o.why,
    });
  };
  add('HS1 with a low-order ephemeral key', {
    initiator: 'alice', responder: 'bob', hs1: cat(u8(HS1), LOW_ORDER), failsAt: 'hs1',
    expect: 'malformed', why: 'DH(e_r, e_i) in the ee token of HS2 is all zeros: malformed; no HS2 is sent',
  });
  add('HS1 one byte long', {
    initiator: 'alice', responder: 'bob', hs1: cat(u8(HS1), LOW_ORDER, u8(0)), failsAt: 'hs1',
    expect: 'unexpected', why: 'HS1 is 34 bytes instead of 33: unexpected message',
  });
  add('carol initiates where alice was expected', {
    initiator: 'carol', responder: 'bob', expectedPeerR: ids.alice.peerId, failsAt: 'hs3',
    expect: 'identity', why: 'HS3 verifies but peer_id(ik) is carol: identity mismatch',
  });
  add('HS3 hs_sig over another h', {
    initiator: 'alice', responder: 'bob', failsAt: 'hs3', craft: () => ({ signH: tag('not this h') }),
    expect: 'signature', why: 'hs_sig in HS3 does not verify over the responder\'s h',
  });
  add('HS3 with one bit flipped in AEAD(s)', {
    initiator: 'alice', responder: 'bob', failsAt: 'hs3', mutate: (m) => flip(m, 5),
    expect: 'binding', why: 'AEAD(s) of HS3 does not decrypt: identity/channel binding mismatch',
  });
  return out;
}

// ---- §9.3 frames -----------------------------------------------------------------

const DATA = 0x10;
const REKEY_EVERY = 65536;

// The key for counter n, starting from the epoch-0 channel key: REKEY once
// before n = 65536, again before 131072, and so on.
export function frameKey(key0, n) {
  let k = Buffer.from(key0);
  for (let i = 0n; i < BigInt(n) / BigInt(REKEY_EVERY); i++) k = rekey(k);
  return k;
}

export function sealFrame(key0, n, pt) {
  const head = cat(u8(DATA), u64(n));
  return cat(head, aeadEncrypt(frameKey(key0, n), BigInt(n), head, pt));
}

// The receiver's verdict for one frame at counter `expected`.
export function openFrame(key0, expected, frame) {
  if (frame.length < 25 || frame[0] !== DATA) return { reason: 'truncated' };
  const n = frame.readBigUInt64BE(1);
  if (n < BigInt(expected)) return { reason: 'replay' };
  if (n > BigInt(expected)) return { reason: 'reorder' };
  try {
    return { reason: 'ok', plaintext: aeadDecrypt(frameKey(key0, n), n, frame.subarray(0, 9), frame.subarray(9)) };
  } catch { return { reason: 'auth' }; }
}

// ---- §10.3 sealed envelopes --------------------------------------------------------

const SEAL_V1 = 0x20;
const SEAL_MIN = 1 + 32 + 48 + 32 + 64 + 1 + 16; // 194: a payload with a kind byte and no body
const SEAL_MAX = 36864;

function seal(sender, recipientSk, e, plaintext, opts = {}) {
  const hs = new HandshakeState({ pattern: 'X', initiator: true, prologue: DOM_SEAL, s: sender.skPriv, e, rs: recipientSk });
  const payload = cat(opts.ik ?? sender.ik, opts.skSig ?? sender.skSig, plaintext);
  return cat(u8(SEAL_V1), hs.writeMessage(payload));
}

export function openSeal(recipient, env) {
  if (env.length < SEAL_MIN || env.length > SEAL_MAX || env[0] !== SEAL_V1) throw new ProtoError('malformed');
  const hs = new HandshakeState({ pattern: 'X', initiator: false, prologue: DOM_SEAL, s: recipient.skPriv });
  const { payload } = hs.readMessage(env.subarray(1));
  const ik = payload.subarray(0, 32), skSig = payload.subarray(32, 96);
  if (!edVerify(ik, cat(DOM_STATIC, hs.rs), skSig)) throw new ProtoError('signature');
  return { ik, sk: hs.rs, skSig, plaintext: payload.subarray(96), from: peerIdOf(ik) };
}

// ---- §10.1 safety numbers ------------------------------------------------------------

function safetyHalf(ik, peerId) {
  let h = sha512(DOM_SAFETY, ik, B(peerId));
  for (let i = 0; i < 5199; i++) h = sha512(h, ik);
  let s = '';
  for (let i = 0; i < 6; i++) {
    const v = h.readUIntBE(i * 5, 5); // u40, exact in a double
    s += String(v % 100000).padStart(5, '0');
  }
  return s;
}
export const safetyNumber = (a, b) => [safetyHalf(a.ik, a.peerId), safetyHalf(b.ik, b.peerId)].sort().join('');

// ---- §10.4 backup ------------------------------------------------------------------------

const scrypt = (pass, salt, n, r, p) =>
  crypto.scryptSync(B(pass), salt, 32, { N: n, r, p, maxmem: 1024 * 1024 * 1024 });
const backupAd = (n, r, p, salt) => cat(DOM_BACKUP, u32(n), u32(r), u32(p), salt);

function backupJson(id, pass, n, r, p, salt, nonce) {
  const key = scrypt(pass, salt, n, r, p);
  const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(backupAd(n, r, p, salt));
  const ct = cat(c.update(cat(u8(1), id.seed, id.skPriv)), c.final(), c.getAuthTag());
  const text = JSON.stringify({
    echolink_backup: 1, kdf: 'scrypt', n, r, p, salt: b64u(salt), nonce: b64u(nonce), ct: b64u(ct),
  });
  return { text, key };
}

const isPow2 = (n) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
const B64U_RE = /^[A-Za-z0-9_-]*$/;
function b64uStrict(s, len) {
  if (typeof s !== 'string' || !B64U_RE.test(s)) return null;
  const b = Buffer.from(s, 'base64url');
  return b.length === len && b64u(b) === s ? b : null;
}

// Import, as §10.4 says: "invalid" for anything structurally wrong (checked
// before scrypt runs), "bad_passphrase" when the AEAD fails.
export function importBackup(text, pass) {
  let o;
  try { o = JSON.parse(text); } catch { return { expect: 'invalid' }; }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return { expect: 'invalid' };
  const { n, r, p } = o;
  if (o.echolink_backup !== 1 || o.kdf !== 'scrypt') return { expect: 'invalid' };
  if (!isPow2(n) || n < 1024 || n > 1048576 || r !== 8 || !Number.isInteger(p) || p < 1 || p > 4)
    return { expect: 'invalid' };
  const salt = b64uStrict(o.salt, 16), nonce = b64uStrict(o.nonce, 12), ct = b64uStrict(o.ct, 81);
  if (!salt || !nonce || !ct) return { expect: 'invalid' };
  const key = scrypt(pass, salt, n, r, p);
  let pt;
  try {
    const d = crypto.createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(backupAd(n, r, p, salt));
    d.setAuthTag(ct.subarray(65));
    pt = cat(d.update(ct.subarray(0, 65)), d.final());
  } catch { return { expect: 'bad_passphrase' }; }
  if (pt[0] !== 1) return { expect: 'invalid' };
  return { expect: 'ok', ik_seed_hex: hex(pt.subarray(1, 33)), sk_private_hex: hex(pt.subarray(33, 65)) };
}

// ---- §11.1 group state -------------------------------------------------------------------

export function groupCanonical(st) {
  const name = B(st.name);
  const admins = [...st.admins].sort(), members = [...st.members].sort();
  return cat(DOM_GROUP, H(st.group_id), u64(st.version), u8(name.length), name,
    u16(admins.length), ...admins.map(B), u16(members.length), ...members.map(B));
}

function signGroup(id, st) {
  const canonical = groupCanonical(st);
  return { canonical, by_ik: b64u(id.ik), sig: b64u(edSign(id.seed, canonical)) };
}

// ---- §11 message validity (the generator's own reading, see "about") ---------------

const ID_RE = /^[0-9a-f]{32}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const PEER_RE = /^[a-z2-7]{32}$/;
const MAX_SAFE = 2 ** 53 - 1;
const blen = (s) => Buffer.byteLength(s, 'utf8');
const isStr = (v, lo, hi) => typeof v === 'string' && blen(v) >= lo && blen(v) <= hi;
const isInt = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
const isId = (v) => typeof v === 'string' && ID_RE.test(v);
const isBool = (v) => typeof v === 'boolean';
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
// Unicode general category Cc: U+0000-U+001F, U+007F-U+009F.
const CC_RE = /[\u0000-\u001f\u007f-\u009f]/; // eslint-disable-line no-control-regex

function jsonDepthOk(text, max) {
  // Strings are skipped; each [ or { opens one level, the top object is level 1.
  let d = 0, inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '[' || c === '{') { if (++d > max) return false; } else if (c === ']' || c === '}') d--;
  }
  return true;
}

function hasDuplicateKeys(text) {
  // A tiny strict scanner: objects' keys at every level.
  let i = 0;
  const ws = () => { while (' \t\n\r'.includes(text[i])) i++; };
  const str = () => { const s = i; i++; while (text[i] !== '"') { if (text[i] === '\\') i++; i++; } i++; return JSON.parse(text.slice(s, i)); };
  let dup = false;
  const val = () => {
    ws();
    if (text[i] === '{') {
      i++; ws();
      const keys = new Set();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws(); const k = str(); if (keys.has(k)) dup = true; keys.add(k);
        ws(); i++; val(); ws();
        if (text[i++] === '}') return;
      }
    } else if (text[i] === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) { val(); ws(); if (text[i++] === ']') return; }
    } else if (text[i] === '"') str();
    else { while (i < text.length && !',]} \t\n\r'.includes(text[i])) i++; }
  };
  val();
  return dup;
}

function stateProblem(st) {
  if (st === null || typeof st !== 'object' || Array.isArray(st)) return 'syntax';
  if (!isId(st.group_id) || !isInt(st.version, 1, MAX_SAFE) || !isStr(st.name, 1, 128)) return 'syntax';
  const { admins, members } = st;
  if (!Array.isArray(admins) || admins.length < 1 || admins.length > 16) return 'syntax';
  if (!Array.isArray(members) || members.length < 1 || members.length > 256) return 'syntax';
  if (![...admins, ...members].every((p) => typeof p === 'string' && PEER_RE.test(p))) return 'syntax';
  if (new Set(admins).size !== admins.length || new Set(members).size !== members.length) return 'group';
  if (!admins.every((a) => members.includes(a))) return 'group';
  return null;
}

// Returns null when valid, else the stage that rejects it.
export function messageProblem(text) {
  if (blen(text) > 65536) return 'syntax';
  if (!jsonDepthOk(text, 8)) return 'syntax';
  let m;
  try { m = JSON.parse(text); } catch { return 'syntax'; }
  if (hasDuplicateKeys(text)) return 'syntax';
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'syntax';
  if (typeof m.t !== 'string' || !isId(m.id) || !isInt(m.ts, 0, MAX_SAFE)) return 'syntax';
  if (has(m, 'group') && !isId(m.group)) return 'syntax';
  const ok = (c) => (c ? null : 'syntax');
  const ids = (v) => Array.isArray(v) && v.length >= 1 && v.length <= 256 && v.every(isId);
  switch (m.t) {
    case 'CHAT': return ok(isStr(m.text, 1, 32768) && (!has(m, 'reply_to') || isId(m.reply_to)));
    case 'TYPING_STATUS': return ok(isBool(m.typing));
    case 'REACTION': return ok(isId(m.target) && isStr(m.emoji, 1, 64) && (!has(m, 'remove') || isBool(m.remove)));
    case 'DELIVERY_RECEIPT': case 'READ_RECEIPT': return ok(ids(m.ids));
    case 'EDIT_MESSAGE': return ok(isId(m.target) && isStr(m.text, 1, 32768));
    case 'DELETE_MESSAGE': return ok(isId(m.target));
    case 'FILE_META': {
      const nameOk = isStr(m.name, 1, 255) && !/[/\\]/.test(m.name) && !CC_RE.test(m.name);
      const voiceOk = !has(m, 'voice') || (m.voice !== null && typeof m.voice === 'object' && !Array.isArray(m.voice) &&
        isInt(m.voice.duration_ms, 0, 86400000) && typeof m.mime === 'string' && m.mime.startsWith('audio/'));
      return ok(isId(m.file_id) && nameOk && isInt(m.size, 0, MAX_SAFE) && isStr(m.mime, 1, 127) &&
        typeof m.sha256 === 'string' && HEX64_RE.test(m.sha256) &&
        typeof m.channel === 'string' && /^f:[0-9a-f]{32}$/.test(m.channel) && voiceOk);
    }
    case 'FILE_ACCEPT': return ok(isId(m.file_id) && isInt(m.offset, 0, MAX_SAFE));
    case 'FILE_CANCEL': return ok(isId(m.file_id) && (!has(m, 'reason') || isStr(m.reason, 0, 256)));
    case 'FILE_COMPLETE': return ok(isId(m.file_id) && typeof m.sha256 === 'string' && HEX64_RE.test(m.sha256));
    case 'GROUP_CREATED': case 'GROUP_UPDATE': {
      const ik = b64uStrict(m.by_ik, 32), sig = b64uStrict(m.sig, 64);
      if (!ik || !sig) return 'syntax';
      if (m.t === 'GROUP_UPDATE' && !['add', 'remove', 'rename', 'admins'].includes(m.change)) return 'syntax';
      const p = stateProblem(m.state);
      if (p) return p;
      if (!edVerify(ik, groupCanonical(m.state), sig)) return 'signature';
      // an update's signer must be an admin of the *current* state (it may hand
      // admin over and step down), which needs context: only a creation's
      // signer is checked against the state it signs
      if (m.t === 'GROUP_CREATED' && !m.state.admins.includes(peerIdOf(ik))) return 'group';
      if (m.t === 'GROUP_CREATED' && m.state.version !== 1) return 'group';
      return null;
    }
    case 'GROUP_LEAVE': return ok(isId(m.group_id));
    default: return null; // unknown t: ignored, not an error
  }
}

// ---- the document ------------------------------------------------------------------------

const idOf = (s) => hex(tag(`id ${s}`).subarray(0, 16));
const TS = 1767225600000; // 2026-01-01T00:00:00Z

function buildMessages(ids, groupSigned) {
  const cases = [];
  const { alice, bob, carol } = ids;
  let k = 0;
  const msg = (t, extra, common = {}) => JSON.stringify({ t, id: idOf(`msg ${t} ${k++}`), ts: TS + k, ...common, ...extra });
  // `expectValid` is what the case is written to be; the validator below must
  // agree, so a slip in either one stops the generator.
  let expectValid = true;
  const add = (name, json, why) => {
    const problem = messageProblem(json);
    if ((problem === null) !== expectValid) throw new Error(`message case ${name}: validator says ${problem ?? 'valid'}`);
    cases.push({ name, json, valid: problem === null, why, ...(problem ? { stage: problem } : {}) });
  };
  const A = (n, c = 'a') => c.repeat(n);
  const fileId = idOf('file 1'), chan = `f:${idOf('chan 1')}`, sha = hex(sha256(B('file body')));
  const fileMeta = (patch) => msg('FILE_META', { file_id: fileId, name: 'holiday photo.jpg', size: 123456, mime: 'image/jpeg', sha256: sha, channel: chan, ...patch });
  const ids256 = Array.from({ length: 256 }, (_, i) => idOf(`r ${i}`));

  // Valid, one or more per type.
  add('CHAT', msg('CHAT', { text: 'hello bob' }), 'a plain chat message');
  add('CHAT with reply_to and group', msg('CHAT', { text: 'Grüße 👋', reply_to: idOf('x') }, { group: idOf('group 1') }), 'optional members present; text counted in UTF-8 bytes');
  add('CHAT text of 32768 bytes', msg('CHAT', { text: A(32768) }), 'text at its upper bound');
  add('CHAT with an unknown member', msg('CHAT', { text: 'hi', x_future: { a: [1, 2] } }), 'unknown members are ignored');
  add('CHAT nested 8 deep in an unknown member', msg('CHAT', { text: 'hi', x: [[[[[[[0]]]]]]] }), 'depth 8 counting the top-level object as 1');
  add('TYPING_STATUS', msg('TYPING_STATUS', { typing: true }), 'typing on');
  add('REACTION', msg('REACTION', { target: idOf('x'), emoji: '👍' }), 'a reaction');
  add('REACTION remove, emoji of 64 bytes', msg('REACTION', { target: idOf('x'), emoji: A(16, '👍'), remove: true }), 'emoji at its 64-byte bound (16 four-byte characters)');
  add('DELIVERY_RECEIPT', msg('DELIVERY_RECEIPT', { ids: [idOf('x')] }), 'one id');
  add('READ_RECEIPT with 256 ids', msg('READ_RECEIPT', { ids: ids256 }), 'ids at the 256 bound');
  add('EDIT_MESSAGE', msg('EDIT_MESSAGE', { target: idOf('x'), text: 'hello, bob' }), 'an edit');
  add('DELETE_MESSAGE', msg('DELETE_MESSAGE', { target: idOf('x') }), 'a delete');
  add('FILE_META', fileMeta({}), 'a file offer');
  add('FILE_META size 2^53-1, name of 255 bytes', fileMeta({ size: MAX_SAFE, name: A(251) + '.bin' }), 'size and name at their bounds');
  add('FILE_META size 0', fileMeta({ size: 0, sha256: hex(sha256()) }), 'an empty file');
  add('FILE_META voice', fileMeta({ name: 'voice.ogg', mime: 'audio/ogg', voice: { duration_ms: 4200 } }), 'a voice message');
  add('FILE_ACCEPT', msg('FILE_ACCEPT', { file_id: fileId, offset: 0 }), 'accept from the start');
  add('FILE_ACCEPT resume', msg('FILE_ACCEPT', { file_id: fileId, offset: 65536 }), 'resume at an offset');
  add('FILE_CANCEL', msg('FILE_CANCEL', { file_id: fileId }), 'reason is optional');
  add('FILE_CANCEL with reason of 256 bytes', msg('FILE_CANCEL', { file_id: fileId, reason: A(256) }), 'reason at its bound');
  add('FILE_COMPLETE', msg('FILE_COMPLETE', { file_id: fileId, sha256: sha }), 'transfer done');
  const [g1, g2] = groupSigned;
  add('GROUP_CREATED', msg('GROUP_CREATED', { state: g1.state, by_ik: g1.by_ik, sig: g1.sig }), 'version 1 signed by an admin (the "group" vector of the same name)');
  add('GROUP_UPDATE', msg('GROUP_UPDATE', { state: g2.state, by_ik: g2.by_ik, sig: g2.sig, change: 'add' }), 'version 2 signed by an admin; "version = current + 1" needs the receiver\'s state and is not checked here');
  add('GROUP_LEAVE', msg('GROUP_LEAVE', { group_id: g1.state.group_id }), 'leave');
  add('unknown t', msg('POLL_CREATE', { question: '?' }), 'unknown type is ignored');

  // Invalid.
  expectValid = false;
  add('CHAT text of 32769 bytes', msg('CHAT', { text: A(32769) }), 'text over 32768 bytes');
  add('CHAT text of 32769 bytes in 3-byte characters', msg('CHAT', { text: A(10923, '€') }), '10923 characters but 32769 UTF-8 bytes');
  add('CHAT empty text', msg('CHAT', { text: '' }), 'text must be at least 1 byte');
  add('CHAT without text', msg('CHAT', {}), 'missing member');
  add('CHAT text is a number', msg('CHAT', { text: 42 }), 'wrong type');
  add('CHAT bad reply_to', msg('CHAT', { text: 'x', reply_to: idOf('x').slice(0, 31) }), 'reply_to of 31 hex digits');
  add('CHAT bad group', msg('CHAT', { text: 'x' }, { group: 'zz' + idOf('g').slice(2) }), 'group is not hex');
  add('id uppercase', JSON.stringify({ t: 'CHAT', id: idOf('up').toUpperCase(), ts: TS, text: 'x' }), 'IDs are lowercase hex');
  add('id of 33 digits', JSON.stringify({ t: 'CHAT', id: idOf('long') + '0', ts: TS, text: 'x' }), 'IDs are exactly 32 digits');
  add('id not hex', JSON.stringify({ t: 'CHAT', id: 'g' + idOf('g').slice(1), ts: TS, text: 'x' }), 'IDs are hex');
  add('id is a number', JSON.stringify({ t: 'CHAT', id: 12345, ts: TS, text: 'x' }), 'wrong type');
  add('missing id', JSON.stringify({ t: 'CHAT', ts: TS, text: 'x' }), 'id is required on every message');
  add('missing ts', JSON.stringify({ t: 'CHAT', id: idOf('nots'), text: 'x' }), 'ts is required on every message');
  add('ts not an integer', JSON.stringify({ t: 'CHAT', id: idOf('fts'), ts: TS + 0.5, text: 'x' }), 'ts is an integer');
  add('ts negative', JSON.stringify({ t: 'CHAT', id: idOf('nts'), ts: -1, text: 'x' }), 'ts is 0..2^53-1 ms since the epoch');
  add('t is not a string', JSON.stringify({ t: 1, id: idOf('tnum'), ts: TS }), 'wrong type of t');
  add('missing t', JSON.stringify({ id: idOf('not'), ts: TS, text: 'x' }), 'no type');
  add('not an object', JSON.stringify([{ t: 'CHAT', id: idOf('arr'), ts: TS, text: 'x' }]), 'a message is a JSON object');
  add('duplicate key', `{"t":"CHAT","id":"${idOf('dup')}","ts":${TS},"text":"a","text":"b"}`, 'duplicate keys are not strict JSON');
  add('nested 9 deep', msg('CHAT', { text: 'hi', x: [[[[[[[[0]]]]]]]] }), 'depth 9 > 8');
  add('trailing comma', `{"t":"CHAT","id":"${idOf('tc')}","ts":${TS},"text":"a",}`, 'not JSON');
  const big = msg('CHAT', { text: 'x', pad: '' });
  add('larger than 65536 bytes', big.replace('"pad":""', `"pad":"${A(65537 - blen(big))}"`), 'the whole message is 65537 bytes (every member is within its own bound)');
  add('TYPING_STATUS typing is a string', msg('TYPING_STATUS', { typing: 'yes' }), 'wrong type');
  add('REACTION emoji of 65 bytes', msg('REACTION', { target: idOf('x'), emoji: A(65) }), 'emoji over 64 bytes');
  add('REACTION remove is 1', msg('REACTION', { target: idOf('x'), emoji: '👍', remove: 1 }), 'remove is a boolean');
  add('REACTION without target', msg('REACTION', { emoji: '👍' }), 'missing member');
  add('READ_RECEIPT with 257 ids', msg('READ_RECEIPT', { ids: [...ids256, idOf('r 256')] }), 'over 256 ids');
  add('DELIVERY_RECEIPT with no ids', msg('DELIVERY_RECEIPT', { ids: [] }), 'at least 1 id');
  add('DELIVERY_RECEIPT with an uppercase id', msg('DELIVERY_RECEIPT', { ids: [idOf('a'), idOf('b').toUpperCase()] }), 'IDs are lowercase hex');
  add('EDIT_MESSAGE empty text', msg('EDIT_MESSAGE', { target: idOf('x'), text: '' }), 'text is 1..32768 bytes');
  add('DELETE_MESSAGE target of 30 digits', msg('DELETE_MESSAGE', { target: idOf('x').slice(2) }), 'bad id length');
  add('FILE_META name with /', fileMeta({ name: '../etc/passwd' }), 'no / in a file name');
  add('FILE_META name with \\', fileMeta({ name: 'dir\\file.txt' }), 'no \\ in a file name');
  add('FILE_META name with U+0001', fileMeta({ name: 'a\u0001b.txt' }), 'no control characters (C0)');
  add('FILE_META name with U+007F', fileMeta({ name: 'a\u007fb.txt' }), 'no control characters (DEL)');
  add('FILE_META name with U+0085', fileMeta({ name: 'a\u0085b.txt' }), 'no control characters (C1, Unicode category Cc)');
  add('FILE_META name of 256 bytes', fileMeta({ name: A(252) + '.bin' }), 'name over 255 bytes');
  add('FILE_META empty name', fileMeta({ name: '' }), 'name at least 1 byte');
  add('FILE_META size 2^53', fileMeta({ size: MAX_SAFE + 1 }), 'size over 2^53-1');
  add('FILE_META size -1', fileMeta({ size: -1 }), 'size is 0..2^53-1');
  add('FILE_META size is a string', fileMeta({ size: '123456' }), 'wrong type');
  add('FILE_META mime of 128 bytes', fileMeta({ mime: 'image/' + A(122) }), 'mime over 127 bytes');
  add('FILE_META sha256 uppercase', fileMeta({ sha256: sha.toUpperCase() }), 'hex in messages is lowercase');
  add('FILE_META sha256 of 63 digits', fileMeta({ sha256: sha.slice(1) }), 'sha256 is 64 hex digits');
  add('FILE_META channel chat', fileMeta({ channel: 'chat' }), 'channel must be an f: label');
  add('FILE_META voice with image mime', fileMeta({ voice: { duration_ms: 1000 } }), 'voice needs mime audio/*');
  add('FILE_META voice too long', fileMeta({ name: 'v.ogg', mime: 'audio/ogg', voice: { duration_ms: 86400001 } }), 'duration_ms over 86400000');
  add('FILE_META without sha256', JSON.stringify({ t: 'FILE_META', id: idOf('nosha'), ts: TS, file_id: fileId, name: 'a', size: 1, mime: 'text/plain', channel: chan }), 'missing member');
  add('FILE_ACCEPT offset -1', msg('FILE_ACCEPT', { file_id: fileId, offset: -1 }), 'offset is 0..size');
  add('FILE_CANCEL reason of 257 bytes', msg('FILE_CANCEL', { file_id: fileId, reason: A(257) }), 'reason over 256 bytes');
  add('FILE_COMPLETE without sha256', msg('FILE_COMPLETE', { file_id: fileId }), 'missing member');
  add('GROUP_LEAVE bad group_id', msg('GROUP_LEAVE', { group_id: 'x' }), 'bad id');

  // Group messages: sign bad states with a real admin key, so only the rule breaks.
  const gid = g1.state.group_id;
  const gmsg = (name, t, st, why, o = {}) => {
    const signer = o.signer ?? alice;
    const sg = signGroup(signer, st);
    const body = { state: st, by_ik: sg.by_ik, sig: o.sig ?? sg.sig, ...(t === 'GROUP_UPDATE' ? { change: o.change ?? 'rename' } : {}) };
    add(name, msg(t, body), why);
  };
  const base = { group_id: gid, version: 1, name: 'friends', admins: [alice.peerId], members: [alice.peerId, bob.peerId, carol.peerId] };
  gmsg('GROUP_CREATED admin not a member', 'GROUP_CREATED', { ...base, members: [bob.peerId, carol.peerId] }, 'every admin is a member');
  gmsg('GROUP_CREATED duplicate members', 'GROUP_CREATED', { ...base, members: [alice.peerId, bob.peerId, bob.peerId] }, 'no duplicates');
  gmsg('GROUP_CREATED duplicate admins', 'GROUP_CREATED', { ...base, admins: [alice.peerId, alice.peerId] }, 'no duplicates');
  gmsg('GROUP_CREATED version 0', 'GROUP_CREATED', { ...base, version: 0 }, 'version is 1..2^53-1');
  gmsg('GROUP_CREATED version 2', 'GROUP_CREATED', { ...base, version: 2 }, 'GROUP_CREATED has version 1');
  gmsg('GROUP_CREATED signer not an admin', 'GROUP_CREATED', base, 'bob signs, but bob is not in state.admins', { signer: bob });
  gmsg('GROUP_CREATED bad signature', 'GROUP_CREATED', base, 'sig is alice\'s signature over another state',
    { sig: signGroup(alice, { ...base, name: 'other' }).sig });
  gmsg('GROUP_CREATED empty name', 'GROUP_CREATED', { ...base, name: '' }, 'name is 1..128 bytes');
  gmsg('GROUP_CREATED name of 129 bytes', 'GROUP_CREATED', { ...base, name: A(129) }, 'name over 128 bytes');
  gmsg('GROUP_CREATED 17 admins', 'GROUP_CREATED', (() => {
    const extra = Array.from({ length: 16 }, (_, i) => peerIdOf(tag(`member ${i}`)));
    return { ...base, admins: [alice.peerId, ...extra], members: [alice.peerId, ...extra] };
  })(), 'over 16 admins');
  gmsg('GROUP_CREATED 257 members', 'GROUP_CREATED', {
    ...base, members: [alice.peerId, ...Array.from({ length: 256 }, (_, i) => peerIdOf(tag(`member ${i}`)))],
  }, 'over 256 members');
  gmsg('GROUP_CREATED bad member peer ID', 'GROUP_CREATED', { ...base, members: [alice.peerId, bob.peerId.toUpperCase()] }, 'peer IDs are lower case base32');
  gmsg('GROUP_UPDATE unknown change', 'GROUP_UPDATE', { ...base, version: 2 }, 'change is one of add, remove, rename, admins', { change: 'promote' });

  if (cases.length < 40) throw new Error('too few message cases');
  return cases;
}

export function generate() {
  const ids = loadIdentities();
  const { alice, bob, carol } = ids;
  const fLabel = 'f:0123456789abcdef0123456789abcdef';
  const fLabel2 = `f:${hex(tag('file channel label 2').subarray(0, 16))}`;

  const handshake = [
    fullHandshake(ids, 'alice', 'bob', 'alice->bob', ['chat', fLabel, fLabel2]),
    fullHandshake(ids, 'bob', 'carol', 'bob->carol', ['chat', fLabel]),
    fullHandshake(ids, 'carol', 'alice', 'carol->alice', ['chat', fLabel]),
  ];
  const negatives = handshakeNegatives(ids);
  const responderNeg = responderNegatives(ids);

  // Rekey.
  const rk = [H(handshake[0].channels[0].key_ir_hex), Buffer.alloc(32), Buffer.alloc(32, 0xff)];
  const rekeyV = rk.map((k) => ({ key_hex: hex(k), rekeyed_hex: hex(rekey(k)) }));
  rekeyV.push({ key_hex: rekeyV[0].rekeyed_hex, rekeyed_hex: hex(rekey(rekey(rk[0]))) });

  // Frames on alice->bob chat, initiator to responder.
  const key0 = H(handshake[0].channels[0].key_ir_hex);
  const fkey = H(handshake[0].channels[1].key_ri_hex);
  const chat = (s) => cat(u8(1), B(JSON.stringify({ t: 'CHAT', id: idOf(`frame ${s}`), ts: TS, text: s })));
  const chunk = (off, data) => cat(u8(2), H(idOf('file 1')), u64(off), data);
  const frameSpecs = [
    [key0, 0, chat('first message')], [key0, 1, chat('second')], [key0, 2, cat(u8(1))],
    [key0, 3, cat(u8(0x7f))], [key0, 65535, chat('last before the first rekey')],
    [key0, 65536, chat('first after the rekey')], [key0, 65537, chat('second after the rekey')],
    [key0, 131072, chat('first after the second rekey')],
    [fkey, 0, chunk(0, tag('chunk 0'))], [fkey, 1, chunk(32, Buffer.alloc(1, 0xab))],
    [fkey, 65536, chunk(65536 * 32, Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff)))],
  ];
  const frames = frameSpecs.map(([k, n, pt]) => {
    const f = sealFrame(k, n, pt);
    const back = openFrame(k, n, f);
    if (back.reason !== 'ok' || !back.plaintext.equals(pt)) throw new Error('frame round trip');
    return { key_hex: hex(k), n, plaintext_hex: hex(pt), frame_hex: hex(f), rekeys: Math.floor(n / REKEY_EVERY), frame_key_hex: hex(frameKey(k, n)) };
  });
  const f0 = sealFrame(key0, 0, chat('first message')), f1 = sealFrame(key0, 1, chat('second'));
  const badFrameSpecs = [
    ['24 bytes', 0, f0.subarray(0, 24), 'truncated'],
    ['header only (9 bytes)', 0, f0.subarray(0, 9), 'truncated'],
    ['type 0x11', 0, cat(u8(0x11), f0.subarray(1)), 'truncated'],
    ['n = 0 again after one frame', 1, f0, 'replay'],
    ['n = 1 when 0 is expected', 0, f1, 'reorder'],
    ['n = 2 when 1 is expected', 1, sealFrame(key0, 2, chat('third')), 'reorder'],
    ['tag bit flipped', 0, flip(f0, -1), 'auth'],
    ['ciphertext bit flipped', 0, flip(f0, 12), 'auth'],
    ['last byte cut (25+ bytes)', 0, f0.subarray(0, f0.length - 1), 'auth'],
    ['sealed with the other direction\'s key', 0, sealFrame(H(handshake[0].channels[0].key_ri_hex), 0, chat('x')), 'auth'],
    ['header says n = 1, sealed with n = 0', 1, cat(u8(DATA), u64(1), f0.subarray(9)), 'auth'],
    ['n = 65536 sealed with the epoch-0 key (rekey missing)', 65536,
      (() => { const head = cat(u8(DATA), u64(65536)); return cat(head, aeadEncrypt(key0, 65536n, head, chat('x'))); })(), 'auth'],
  ];
  const badFrames = badFrameSpecs.map(([name, expected, f, reason]) => {
    const got = openFrame(key0, expected, f).reason;
    if (got !== reason) throw new Error(`bad frame ${name}: ${got}`);
    return { name, key_hex: hex(key0), expected_n: expected, frame_hex: hex(f), reason };
  });

  // Sealed envelopes.
  const sealSpecs = [
    ['alice to bob, a CHAT', alice, bob, chat('sealed hello')],
    ['bob to alice, a CHAT', bob, alice, chat('sealed reply')],
    ['carol to alice, kind only', carol, alice, u8(1)],
    ['alice to carol, a DELIVERY_RECEIPT', alice, carol,
      cat(u8(1), B(JSON.stringify({ t: 'DELIVERY_RECEIPT', id: idOf('seal rcpt'), ts: TS, ids: [idOf('frame first message')] })))],
  ];
  const sealV = sealSpecs.map(([name, s, r, pt]) => {
    const e = tag(`e seal ${name}`);
    const env = seal(s, r.sk, { priv: e }, pt);
    const o = openSeal(r, env);
    if (!o.plaintext.equals(pt) || o.from !== s.peerId || !o.sk.equals(s.sk)) throw new Error('seal round trip');
    return { name, sender: s.json.name, recipient: r.json.name, e_priv_hex: hex(e), plaintext_hex: hex(pt), envelope_hex: hex(env) };
  });
  const env0 = H(sealV[0].envelope_hex);
  const sealNegSpecs = [
    ['sealed to bob, opened by carol', 'carol', env0, 'auth'],
    ['bit flipped in AEAD(payload)', 'bob', flip(env0, 120), 'auth'],
    ['bit flipped in the tag', 'bob', flip(env0, -1), 'auth'],
    ['bit flipped in AEAD(s)', 'bob', flip(env0, 40), 'auth'],
    ['bit flipped in e', 'bob', flip(env0, 1), 'auth'],
    ['last byte cut', 'bob', env0.subarray(0, env0.length - 1), 'auth'],
    ['truncated to 100 bytes', 'bob', env0.subarray(0, 100), 'malformed'],
    ['version byte 0x21', 'bob', cat(u8(0x21), env0.subarray(1)), 'malformed'],
    ['low-order e', 'bob', seal(alice, bob.sk, { priv: null, pub: LOW_ORDER }, chat('x')), 'malformed'],
    ['kind byte missing (193 bytes)', 'bob', seal(alice, bob.sk, { priv: tag('e seal short') }, Buffer.alloc(0)), 'malformed'],
    ['sk_sig over another key', 'bob',
      seal(alice, bob.sk, { priv: tag('e seal badsig') }, chat('x'), { skSig: edSign(alice.seed, cat(DOM_STATIC, carol.sk)) }), 'signature'],
    ['ik of carol with alice\'s static key', 'bob',
      seal(alice, bob.sk, { priv: tag('e seal wrong ik') }, chat('x'), { ik: carol.ik, skSig: carol.skSig }), 'signature'],
  ];
  const sealNeg = sealNegSpecs.map(([name, rcpt, env, expect]) => {
    const got = classify(() => openSeal(ids[rcpt], env));
    if (got !== expect) throw new Error(`seal negative ${name}: ${got}`);
    return { name, recipient: rcpt, envelope_hex: hex(env), expect };
  });

  // Safety numbers.
  const safety = [[alice, bob], [bob, alice], [alice, carol], [bob, carol]].map(([a, b]) => ({
    a: a.json.name, b: b.json.name, number: safetyNumber(a, b),
  }));
  if (safety[0].number !== safety[1].number || safety[0].number === safety[2].number) throw new Error('safety');

  // Backups.
  const backupSpecs = [
    [alice, 'correct horse battery staple', 1024, 8, 1],
    [bob, 'pässwörd 🔑', 2048, 8, 2],
    [carol, 'export default cost', 131072, 8, 1],
  ];
  const backup = backupSpecs.map(([id, pass, n, r, p]) => {
    const salt = tag(`backup salt ${id.json.name}`).subarray(0, 16), nonce = tag(`backup nonce ${id.json.name}`).subarray(0, 12);
    const { text, key } = backupJson(id, pass, n, r, p, salt, nonce);
    const back = importBackup(text, pass);
    if (back.expect !== 'ok' || back.ik_seed_hex !== id.json.ik_seed_hex) throw new Error('backup round trip');
    return { identity: id.json.name, passphrase: pass, n, r, p, salt_hex: hex(salt), nonce_hex: hex(nonce), key_hex: hex(key), json: text };
  });
  const bj = JSON.parse(backup[0].json), bpass = backup[0].passphrase;
  const edit = (patch, drop) => {
    const o = { ...bj, ...patch };
    if (drop) delete o[drop];
    return JSON.stringify(o);
  };
  const ctBytes = Buffer.from(bj.ct, 'base64url');
  const backupNegSpecs = [
    ['wrong passphrase', backup[0].json, 'correct horse battery stapler', 'bad_passphrase'],
    ['altered ct', edit({ ct: b64u(flip(ctBytes, 3)) }), bpass, 'bad_passphrase'],
    ['altered tag', edit({ ct: b64u(flip(ctBytes, -1)) }), bpass, 'bad_passphrase'],
    ['altered salt', edit({ salt: b64u(flip(Buffer.from(bj.salt, 'base64url'), 0)) }), bpass, 'bad_passphrase'],
    ['altered nonce', edit({ nonce: b64u(flip(Buffer.from(bj.nonce, 'base64url'), 0)) }), bpass, 'bad_passphrase'],
    ['p changed to 2 (in the AD)', edit({ p: 2 }), bpass, 'bad_passphrase'],
    ['n not a power of two', edit({ n: 1000 }), bpass, 'invalid'],
    ['n too big (2^21)', edit({ n: 2097152 }), bpass, 'invalid'],
    ['n too small (2^9)', edit({ n: 512 }), bpass, 'invalid'],
    ['r = 16', edit({ r: 16 }), bpass, 'invalid'],
    ['p = 5', edit({ p: 5 }), bpass, 'invalid'],
    ['p = 0', edit({ p: 0 }), bpass, 'invalid'],
    ['missing ct', edit({}, 'ct'), bpass, 'invalid'],
    ['missing salt', edit({}, 'salt'), bpass, 'invalid'],
    ['missing n', edit({}, 'n'), bpass, 'invalid'],
    ['kdf argon2id', edit({ kdf: 'argon2id' }), bpass, 'invalid'],
    ['echolink_backup 2', edit({ echolink_backup: 2 }), bpass, 'invalid'],
    ['salt of 15 bytes', edit({ salt: b64u(Buffer.from(bj.salt, 'base64url').subarray(0, 15)) }), bpass, 'invalid'],
    ['nonce of 16 bytes', edit({ nonce: b64u(tag('nonce16').subarray(0, 16)) }), bpass, 'invalid'],
    ['ct one byte short', edit({ ct: b64u(ctBytes.subarray(0, 80)) }), bpass, 'invalid'],
    ['ct with base64 padding', edit({ ct: Buffer.from(ctBytes).toString('base64') }), bpass, 'invalid'],
    ['n is a string', edit({ n: '1024' }), bpass, 'invalid'],
    ['not JSON', backup[0].json.slice(0, -1), bpass, 'invalid'],
  ];
  const backupNeg = backupNegSpecs.map(([name, json, passphrase, expect]) => {
    const got = importBackup(json, passphrase).expect;
    if (got !== expect) throw new Error(`backup negative ${name}: ${got}`);
    return { name, json, passphrase, expect };
  });
  const withExtra = JSON.stringify({ ...bj, comment: 'made by echolink 0.1', v2_field: [1] });
  const imp = importBackup(withExtra, bpass);
  if (imp.expect !== 'ok') throw new Error('backup with extra members');
  const backupImportOnly = [{
    name: 'unknown extra members are ignored', identity: 'alice', json: withExtra, passphrase: bpass,
    ik_seed_hex: imp.ik_seed_hex, sk_private_hex: imp.sk_private_hex,
  }];

  // Group states.
  const gid = idOf('group friends');
  const groupSpecs = [
    ['GROUP_CREATED', alice, { group_id: gid, version: 1, name: 'friends', admins: [alice.peerId], members: [alice.peerId, bob.peerId, carol.peerId] }],
    ['GROUP_UPDATE add, two admins, unsorted lists', alice, { group_id: gid, version: 2, name: 'friends', admins: [bob.peerId, alice.peerId], members: [carol.peerId, bob.peerId, alice.peerId, peerIdOf(tag('member 0'))] }],
    ['rename to a 128-byte UTF-8 name, signed by bob', bob, { group_id: gid, version: 3, name: 'Ünïcödé '.repeat(10) + 'x'.repeat(128 - 12 * 10), admins: [bob.peerId, alice.peerId], members: [alice.peerId, bob.peerId] }],
    ['single member, version 2^53-1', carol, { group_id: idOf('group solo'), version: MAX_SAFE, name: 'c', admins: [carol.peerId], members: [carol.peerId] }],
  ];
  const group = groupSpecs.map(([name, signer, state]) => {
    if (stateProblem(state)) throw new Error(`group ${name}: ${stateProblem(state)}`);
    const sg = signGroup(signer, state);
    if (B(state.name).length > 128) throw new Error('group name');
    return { name, state, signer: signer.json.name, canonical_hex: hex(sg.canonical), by_ik: sg.by_ik, sig: sg.sig };
  });

  const messages = buildMessages(ids, group);
  const types = ['CHAT', 'TYPING_STATUS', 'REACTION', 'DELIVERY_RECEIPT', 'READ_RECEIPT', 'EDIT_MESSAGE', 'DELETE_MESSAGE',
    'FILE_META', 'FILE_ACCEPT', 'FILE_CANCEL', 'FILE_COMPLETE', 'GROUP_CREATED', 'GROUP_UPDATE', 'GROUP_LEAVE'];
  for (const t of types)
    if (!messages.some((m) => m.valid && JSON.parse(m.json).t === t)) throw new Error(`no valid ${t}`);

  return {
    about: ABOUT,
    identities: [alice, bob, carol].map((x) => x.json),
    domains_hex: {
      noise: hex(DOM_NOISE), handshake: hex(DOM_HS), channel: hex(DOM_CHANNEL), seal: hex(DOM_SEAL),
      safety: hex(DOM_SAFETY), backup: hex(DOM_BACKUP), group: hex(DOM_GROUP), static_key: hex(DOM_STATIC),
    },
    handshake,
    handshake_negative: negatives,
    handshake_negative_responder: responderNeg,
    rekey: rekeyV,
    frames,
    bad_frames: badFrames,
    seal: sealV,
    seal_negative: sealNeg,
    safety,
    backup,
    backup_negative: backupNeg,
    backup_import_only: backupImportOnly,
    group,
    messages,
  };
}

const ABOUT = [
  'EchoLink peer-protocol test vectors (docs/PROTOCOL.md §9-§11), generated by tests/vectors/gen-e2ee.mjs with node:crypto only',
  '(its generic Noise is checked against the published vectors in noise.json). Binary fields are lowercase hex (*_hex);',
  'ik, sk, sk_sig, by_ik, sig are unpadded base64url as in identity.json. identities: alice, bob, carol = identity.json vectors[0..2].',
  'Readings of the spec fixed here:',
  '(1) The type byte of HS1/HS2/HS3 and of envelopes (0x20) is not part of the Noise message: it is neither hashed nor authenticated.',
  '(2) HS1 carries an empty Noise payload, which is still EncryptAndHash-ed (h = SHA-256(h), Noise rule).',
  '(3) hs_sig signs the h used as AD for the payload, i.e. after the s token of HS2 (es and se change only ck), after the se token of HS3.',
  '(4) Handshake outcomes (expect_initiator / expect_responder): binding = a Noise ciphertext (s or payload) does not decrypt;',
  'malformed = a DH output is all zeros (low-order key) or the payload is not 160 bytes; signature = sk_sig or hs_sig does not verify',
  '(sk_sig is checked before the peer ID); identity = peer_id(ik) is not the expected peer; unexpected = wrong type byte or length',
  '(§9.1: checked before any decryption, so a payload of the wrong length shows up as unexpected, never malformed); aborted = an ABORT was received.',
  'handshake_negative (initiator side, fails_at hs2): hs2_hex is what the initiator receives; e_r_priv_hex is null when the responder used a crafted low-order key.',
  'handshake_negative_responder (fails_at hs1 or hs3): the responder rebuilds its HS2 from e_r_priv_hex and hs1_hex, then reads hs3_hex.',
  '(5) Channel keys: HKDF-SHA256(salt = final h, ikm = k_IR or k_RI, info = "echolink-v1-channel" 0x00 || label as ASCII, 32).',
  '(6) frames[].key_hex is the epoch-0 channel key; the key for counter n is REKEY applied floor(n / 65536) times (frame_key_hex, rekeys given for debugging).',
  'A frame\'s AD is its 9 header bytes (0x10 || u64 n). bad_frames are checked in this order: length < 25 or type != 0x10 -> truncated;',
  'n < expected_n -> replay; n > expected_n -> reorder; else AEAD failure -> auth (using the key of epoch floor(expected_n / 65536)).',
  'A frame whose plaintext is only a kind byte is a valid frame (frames with n = 2 and 3: kind 0x01 with an empty body, unknown kind 0x7f).',
  '(7) Envelopes: Noise_X with the pre-message MixHash(recipient sk) after MixHash(prologue); seal[].plaintext_hex is the kind || body part',
  '(the payload is sender ik || sk_sig || plaintext). seal_negative expect: malformed = length < 194 (a payload of at least 97 bytes) or > 36864',
  'or first byte != 0x20 (checked before any crypto) or an all-zero DH; auth = a ciphertext does not decrypt (wrong recipient, altered bytes);',
  'signature = sk_sig does not verify by the payload ik over the decrypted s.',
  '(8) Safety numbers: peer_id as its 32 ASCII bytes, ik raw 32 bytes; halves sorted as strings; 60 digits without spaces.',
  '(9) Backup json is the compact JSON.stringify text with the members in the order of §10.4; key_hex is the scrypt output.',
  'Import checks everything structural first (invalid: bad JSON, echolink_backup != 1, kdf != "scrypt", n not a power of two in 2^10..2^20,',
  'r != 8, p not an integer 1..4, salt/nonce/ct not canonical unpadded base64url of 16/12/81 bytes, missing member), then runs scrypt;',
  'an AEAD failure is bad_passphrase (wrong passphrase or any altered salt/nonce/ct/n/r/p). backup_import_only: files that import but are not export output.',
  '(10) Group canonical encoding: name length and bytes in UTF-8; admins and members sorted by their ASCII bytes; group_id as 16 raw bytes.',
  '(11) messages[].valid is the verdict of a receiver with no other context: strict JSON of at most 65536 UTF-8 bytes, depth <= 8 with the',
  'top-level object at depth 1, no duplicate keys; t (string), id (32 lowercase hex) and ts (integer 0..2^53-1) required on every message;',
  'all byte lengths counted in UTF-8 after JSON unescaping; every hex field in messages (IDs, sha256) is lowercase; "no control characters"',
  'in FILE_META.name means Unicode category Cc (U+0000-U+001F, U+007F-U+009F); voice requires mime starting with "audio/";',
  'GROUP_UPDATE.change is one string among "add", "remove", "rename", "admins"; for GROUP_CREATED/GROUP_UPDATE the state rules of §11.1,',
  'the signature (by_ik over the canonical encoding) is checked, and GROUP_CREATED needs version 1 and peer_id(by_ik) in state.admins;',
  'rules that need the receiver\'s current group state (version = current + 1, signer an admin of the current state, FILE_ACCEPT offset <= size)',
  'are not part of these cases. Unknown t: valid (ignored). stage on invalid cases: syntax (parse/types/bounds), group (§11.1 rules), signature.',
].join(' ');

export function render(doc = generate()) {
  return JSON.stringify(doc, null, 1) + '\n';
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const text = render();
  if (process.argv.includes('--check')) {
    const old = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (old !== text) { console.error('e2ee.json is stale; run gen-e2ee.mjs'); process.exit(1); }
    console.log('e2ee.json is up to date');
  } else {
    fs.writeFileSync(OUT, text);
    console.log(`wrote ${OUT} (${text.length} bytes)`);
  }
}
