// identity.test.mjs - web/lib/identity.js against tests/vectors/identity.json
// (generated with node:crypto by gen-identity.mjs). Run: node --test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as id from '../../web/lib/identity.js';

const vectorsUrl = new URL('../vectors/identity.json', import.meta.url);
const doc = JSON.parse(readFileSync(vectorsUrl, 'utf8'));

const hex = (h) => Uint8Array.from(h.match(/../g).map((x) => parseInt(x, 16)));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

test('vectors: derivation, bundle, peer ID and login signature reproduce', async () => {
  assert.ok(doc.vectors.length >= 3);
  for (const v of doc.vectors) {
    const ident = await id.identityFromSeeds(hex(v.ik_seed_hex), hex(v.sk_private_hex));
    assert.deepEqual(await id.bundleOf(ident), { ik: v.ik, sk: v.sk, sk_sig: v.sk_sig }, v.name);
    assert.equal(await id.peerIdFromIk(v.ik), v.peer_id, v.name);
    assert.equal(await id.peerIdOf(ident), v.peer_id, v.name);
    assert.ok(id.isValidPeerId(v.peer_id));
    assert.equal(await id.verifyBundle({ ik: v.ik, sk: v.sk, sk_sig: v.sk_sig }), true, v.name);
    assert.equal(await id.verifyLogin(v, v.nonce, v.sid, v.login_sig), true, v.name);
    // Ed25519 is deterministic: signing from the seeds gives the vector.
    assert.equal(await id.signLogin(ident, v.nonce, v.sid), v.login_sig, v.name);
    // Export keeps the raw private keys exactly (no clamping of sk).
    const saved = await id.exportIdentity(ident);
    assert.equal(toHex(id.b64urlDecode(saved.ik_seed, 32)), v.ik_seed_hex);
    assert.equal(toHex(id.b64urlDecode(saved.sk_private, 32)), v.sk_private_hex);
  }
});

test('vectors: the domain labels are the protocol strings plus one 0x00', () => {
  const enc = (s) => toHex(new TextEncoder().encode(s + '\0'));
  assert.equal(doc.domains_hex.static_key, enc('echolink-v1-static-key'));
  assert.equal(doc.domains_hex.peer_id, enc('echolink-v1-peer-id'));
  assert.equal(doc.domains_hex.login, enc('echolink-v1-login'));
});

test('negative cases are rejected', async () => {
  let bundles = 0, logins = 0;
  for (const n of doc.negative) {
    const b = { ik: n.ik, sk: n.sk, sk_sig: n.sk_sig };
    if (n.kind === 'bundle') {
      bundles++;
      assert.equal(await id.verifyBundle(b), false, n.name);
    } else {
      logins++;
      assert.equal(await id.verifyBundle(b), true, `${n.name}: its bundle is valid`);
      assert.equal(await id.verifyLogin(b, n.nonce, n.sid, n.login_sig), false, n.name);
    }
    // "invalid" means the named field itself does not decode.
    if (n.expect === 'invalid') {
      const len = { ik: 32, sk: 32, nonce: 32, sk_sig: 64, login_sig: 64 }[n.field];
      assert.throws(() => id.b64urlDecode(n[n.field], len), TypeError, n.name);
    } else {
      assert.equal(n.expect, 'bad_signature');
    }
  }
  assert.ok(bundles > 0 && logins > 0);
});

test('small-order points are refused as ik and as R', async () => {
  const v = doc.vectors[0];
  const ident = await id.identityFromSeeds(hex(v.ik_seed_hex), hex(v.sk_private_hex));
  const nonce = id.b64urlEncode(new Uint8Array(32));
  for (const h of doc.small_order_hex) {
    for (const top of [0, 0x80]) {
      const pt = hex(h);
      pt[31] |= top;
      const trivial = new Uint8Array(64);
      trivial[0] = 1; // R = identity, S = 0
      const weak = { ik: id.b64urlEncode(pt), sk: v.sk, sk_sig: id.b64urlEncode(trivial) };
      assert.equal(await id.verifyBundle(weak), false, h);
      assert.equal(await id.verifyLogin(weak, nonce, 'sid', id.b64urlEncode(trivial)), false, h);
      const sig = id.b64urlDecode(await id.signLogin(ident, nonce, 'sid'), 64);
      sig.set(pt, 0);
      assert.equal(await id.verifyLogin(v, nonce, 'sid', id.b64urlEncode(sig)), false, h);
    }
  }
});

test('peer ID syntax', () => {
  for (const c of doc.peer_id_syntax) assert.equal(id.isValidPeerId(c.s), c.valid, JSON.stringify(c.s));
  assert.equal(id.isValidPeerId(undefined), false);
});

test('peerIdFromIk rejects a malformed ik', async () => {
  await assert.rejects(id.peerIdFromIk(doc.vectors[0].ik + '='), TypeError);
  await assert.rejects(id.peerIdFromIk('AAAA'), TypeError);
});

test('generate -> bundle -> sign -> verify round trip, export/import', async () => {
  const a = await id.generateIdentity();
  const b = await id.generateIdentity();
  const ba = await id.bundleOf(a);
  assert.equal(ba.ik.length, 43);
  assert.equal(ba.sk.length, 43);
  assert.equal(ba.sk_sig.length, 86);
  assert.equal(await id.verifyBundle(ba), true);
  assert.notEqual(await id.peerIdOf(a), await id.peerIdOf(b));
  assert.ok(id.isValidPeerId(await id.peerIdOf(a)));

  const nonce = id.b64urlEncode(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const sig = await id.signLogin(a, nonce, 'Gm7sVb6m8QFSGyq6AAAB');
  assert.equal(await id.verifyLogin(ba, nonce, 'Gm7sVb6m8QFSGyq6AAAB', sig), true);
  assert.equal(await id.verifyLogin(ba, nonce, 'Gm7sVb6m8QFSGyq6AAAC', sig), false);
  assert.equal(await id.verifyLogin(await id.bundleOf(b), nonce, 'Gm7sVb6m8QFSGyq6AAAB', sig), false);

  // Through JSON and back: same bundle, same signatures.
  const saved = JSON.parse(JSON.stringify(await id.exportIdentity(a)));
  const a2 = await id.importIdentity(saved);
  assert.deepEqual(await id.bundleOf(a2), ba);
  assert.equal(await id.signLogin(a2, nonce, 'Gm7sVb6m8QFSGyq6AAAB'), sig);
  await assert.rejects(id.importIdentity({ ...saved, v: 2 }), TypeError);
  await assert.rejects(id.importIdentity({ ...saved, sk_private: saved.sk_private + 'A' }), TypeError);

  // The X25519 keys do their later job: both sides derive the same secret.
  const s1 = await globalThis.crypto.subtle.deriveBits({ name: 'X25519', public: b.sk.publicKey }, a.sk.privateKey, 256);
  const s2 = await globalThis.crypto.subtle.deriveBits({ name: 'X25519', public: a.sk.publicKey }, b.sk.privateKey, 256);
  assert.deepEqual(new Uint8Array(s1), new Uint8Array(s2));
});

test('a one-bit flip in any field fails', async () => {
  const v = doc.vectors[1];
  const bundle = { ik: v.ik, sk: v.sk, sk_sig: v.sk_sig };
  const flips = (b64, len) => {
    const out = [];
    for (let bit = 0; bit < len * 8; bit++) {
      const raw = id.b64urlDecode(b64, len);
      raw[bit >> 3] ^= 1 << (bit & 7);
      out.push(id.b64urlEncode(raw));
    }
    return out;
  };
  const checks = [];
  for (const f of ['ik', 'sk']) for (const x of flips(v[f], 32)) checks.push(id.verifyBundle({ ...bundle, [f]: x }));
  for (const x of flips(v.sk_sig, 64)) checks.push(id.verifyBundle({ ...bundle, sk_sig: x }));
  for (const x of flips(v.ik, 32)) checks.push(id.verifyLogin({ ...bundle, ik: x }, v.nonce, v.sid, v.login_sig));
  for (const x of flips(v.nonce, 32)) checks.push(id.verifyLogin(bundle, x, v.sid, v.login_sig));
  for (const x of flips(v.login_sig, 64)) checks.push(id.verifyLogin(bundle, v.nonce, v.sid, x));
  for (let i = 0; i < v.sid.length; i++) {
    for (let bit = 0; bit < 7; bit++) {
      const sid = v.sid.slice(0, i) + String.fromCharCode(v.sid.charCodeAt(i) ^ (1 << bit)) + v.sid.slice(i + 1);
      checks.push(id.verifyLogin(bundle, v.nonce, sid, v.login_sig));
    }
  }
  const results = await Promise.all(checks);
  assert.equal(results.filter(Boolean).length, 0);
  assert.equal(await id.verifyLogin(bundle, v.nonce, v.sid, v.login_sig), true);
});

test('base64url and base32 codecs', () => {
  for (let n = 0; n < 40; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    const t = id.b64urlEncode(b);
    assert.equal(t, Buffer.from(b).toString('base64url'));
    assert.deepEqual(id.b64urlDecode(t), b);
    // Node's base32 isn't available; check the length and alphabet instead.
    const s = id.base32Encode(b);
    assert.equal(s.length, Math.ceil((n * 8) / 5));
    assert.match(s, /^[a-z2-7]*$/);
  }
  assert.equal(id.base32Encode(new TextEncoder().encode('foobar')), 'mzxw6ytboi'); // RFC 4648 §10
  for (const bad of ['A', 'AB=', 'AB+C', 'AB/C', 'AB C', 'AB\n', 'AF']) assert.throws(() => id.b64urlDecode(bad), TypeError, bad);
  assert.throws(() => id.b64urlDecode('AAAA', 2), TypeError);
});

test('signLogin rejects a bad nonce or sid', async () => {
  const ident = await id.generateIdentity();
  const nonce = id.b64urlEncode(new Uint8Array(32));
  await assert.rejects(id.signLogin(ident, nonce, ''), TypeError);
  await assert.rejects(id.signLogin(ident, nonce, 'a b'), TypeError);
  await assert.rejects(id.signLogin(ident, nonce, 'café'), TypeError);
  await assert.rejects(id.signLogin(ident, nonce, 'x'.repeat(129)), TypeError);
  assert.equal(typeof await id.signLogin(ident, nonce, 'x'.repeat(128)), 'string');
  await assert.rejects(id.signLogin(ident, nonce + '=', 'sid'), TypeError);
  await assert.rejects(id.signLogin(ident, id.b64urlEncode(new Uint8Array(31)), 'sid'), TypeError);
});
