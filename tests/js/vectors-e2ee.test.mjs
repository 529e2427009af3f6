// vectors-e2ee.test.mjs - the peer-protocol vectors are what their generator
// says, and the generator's Noise matches the published vectors.
//
// tests/vectors/gen-e2ee.mjs is an independent node:crypto implementation of
// docs/PROTOCOL.md §9-§11; the C and the web code are tested against the
// e2ee.json it writes. This file keeps that file honest: it must equal a fresh
// run of the generator byte for byte, and the generator's generic Noise must
// reproduce tests/vectors/noise.json (cacophony and snow vectors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as gen from '../vectors/gen-e2ee.mjs';

const read = (name) => readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8');
const H = (h) => Buffer.from(h, 'hex');
const hex = (b) => Buffer.from(b).toString('hex');

test('e2ee.json equals a fresh run of gen-e2ee.mjs (deterministic)', () => {
  const committed = read('e2ee.json');
  const fresh = gen.render();
  // Compare parsed first for a readable diff, then the exact text.
  assert.deepEqual(JSON.parse(committed), JSON.parse(fresh));
  assert.equal(committed, fresh);
});

// Runs one published vector through the generator's HandshakeState and
// CipherStates, in both roles, and compares every byte.
function runNoiseVector(v) {
  const pattern = v.protocol_name.split('_')[1];
  const msgsInHandshake = gen.PATTERNS[pattern].msgs.length;
  const oneWay = pattern === 'X';
  const I = new gen.HandshakeState({
    pattern, initiator: true, prologue: H(v.init_prologue), s: H(v.init_static),
    e: { priv: H(v.init_ephemeral) }, rs: v.init_remote_static ? H(v.init_remote_static) : null,
  });
  const R = new gen.HandshakeState({
    pattern, initiator: false, prologue: H(v.resp_prologue), s: H(v.resp_static),
    e: v.resp_ephemeral ? { priv: H(v.resp_ephemeral) } : null,
  });
  let iSend, iRecv, rSend, rRecv;
  v.messages.forEach((m, i) => {
    const fromInit = oneWay || i % 2 === 0;
    const [w, r] = fromInit ? [I, R] : [R, I];
    let ct, pt;
    if (i < msgsInHandshake) {
      ct = w.writeMessage(H(m.payload));
      pt = r.readMessage(ct).payload;
      if (i === msgsInHandshake - 1) {
        assert.deepEqual(hex(I.h), hex(R.h), `${v.protocol_name}: both sides end with the same h`);
        if (v.handshake_hash) assert.equal(hex(I.h), v.handshake_hash, `${v.protocol_name}: handshake hash`);
        [iSend, iRecv] = I.split();
        [rRecv, rSend] = R.split();
      }
    } else {
      const [enc, dec] = fromInit ? [iSend, rRecv] : [rSend, iRecv];
      ct = enc.encryptWithAd(Buffer.alloc(0), H(m.payload));
      pt = dec.decryptWithAd(Buffer.alloc(0), ct);
    }
    assert.equal(hex(ct), m.ciphertext, `${v.protocol_name} (${v.source}) message ${i}`);
    assert.equal(hex(pt), m.payload, `${v.protocol_name} (${v.source}) message ${i} decrypts`);
  });
}

test('the generator\'s Noise reproduces the published XX and X vectors', () => {
  const doc = JSON.parse(read('noise.json'));
  const names = doc.vectors.map((v) => v.protocol_name);
  assert.ok(names.includes('Noise_XX_25519_AESGCM_SHA256'));
  assert.ok(names.includes('Noise_X_25519_AESGCM_SHA256'));
  assert.ok(doc.vectors.some((v) => v.handshake_hash), 'at least one vector pins the handshake hash');
  for (const v of doc.vectors) runNoiseVector(v);
});

test('a corrupted published vector is caught (the check is not vacuous)', () => {
  const v = JSON.parse(read('noise.json')).vectors.find((x) => x.protocol_name === 'Noise_XX_25519_AESGCM_SHA256');
  const bad = structuredClone(v);
  bad.init_prologue = bad.init_prologue.slice(0, -2) + '00';
  assert.throws(() => runNoiseVector(bad));
  const bad2 = structuredClone(v);
  bad2.messages[4].ciphertext = bad2.messages[4].ciphertext.replace(/^../, (b) => (parseInt(b, 16) ^ 1).toString(16).padStart(2, '0'));
  assert.throws(() => runNoiseVector(bad2));
});

test('e2ee.json has the shape the C and JS tests rely on', () => {
  const d = JSON.parse(read('e2ee.json'));
  assert.deepEqual(d.identities.map((x) => x.name), ['alice', 'bob', 'carol']);
  const idv = JSON.parse(read('identity.json')).vectors;
  d.identities.forEach((x, i) => assert.equal(x.peer_id, idv[i].peer_id));
  assert.ok(d.handshake.length >= 2);
  for (const h of d.handshake) {
    assert.deepEqual([h.hs1_hex.length, h.hs2_hex.length, h.hs3_hex.length].map((n) => n / 2), [33, 257, 225]);
    assert.deepEqual([h.hs1_hex, h.hs2_hex, h.hs3_hex].map((x) => x.slice(0, 2)), ['01', '02', '03']);
    assert.equal(h.prologue_hex, hex(Buffer.from('echolink-v1-noise\0')) + h.fp_i_hex + h.fp_r_hex);
    assert.equal(h.channels[0].label, 'chat');
    for (const c of h.channels) {
      assert.equal(c.key_ir_hex, hex(gen.channelKey(H(h.h_hex), H(h.k_ir_hex), c.label)));
      assert.notEqual(c.key_ir_hex, c.key_ri_hex);
    }
  }
  const expects = new Set(d.handshake_negative.map((c) => c.expect_initiator));
  for (const e of ['binding', 'identity', 'signature', 'malformed', 'unexpected']) assert.ok(expects.has(e), e);
  for (const n of [0, 1, 2, 65535, 65536, 65537, 131072]) assert.ok(d.frames.some((f) => f.n === n), `frame n=${n}`);
  assert.ok(d.frames.some((f) => f.plaintext_hex.startsWith('01') && JSON.parse(H(f.plaintext_hex).subarray(1)).t === 'CHAT'));
  assert.ok(d.frames.some((f) => f.plaintext_hex.startsWith('02')));
  assert.ok(d.frames.some((f) => f.plaintext_hex.length === 2), 'an empty body');
  assert.deepEqual(new Set(d.bad_frames.map((f) => f.reason)), new Set(['truncated', 'replay', 'reorder', 'auth']));
  assert.deepEqual(new Set(d.seal_negative.map((f) => f.expect)), new Set(['auth', 'malformed', 'signature']));
  const ab = d.safety.find((s) => s.a === 'alice' && s.b === 'bob'), ba = d.safety.find((s) => s.a === 'bob' && s.b === 'alice');
  assert.equal(ab.number, ba.number);
  assert.match(ab.number, /^[0-9]{60}$/);
  assert.ok(d.messages.length >= 40);
  assert.ok(d.messages.some((m) => m.valid && m.why === 'unknown type is ignored'));
  assert.ok(Buffer.byteLength(read('e2ee.json')) < 320 * 1024, 'file size stays reasonable');
});

test('frames and envelopes in the file open with the generator\'s receiver', () => {
  const d = JSON.parse(read('e2ee.json'));
  for (const f of d.frames) {
    const r = gen.openFrame(H(f.key_hex), f.n, H(f.frame_hex));
    assert.equal(r.reason, 'ok');
    assert.equal(hex(r.plaintext), f.plaintext_hex);
    // The same frame one counter early or late is refused.
    assert.equal(gen.openFrame(H(f.key_hex), f.n + 1, H(f.frame_hex)).reason, 'replay');
  }
  for (const f of d.bad_frames) assert.equal(gen.openFrame(H(f.key_hex), f.expected_n, H(f.frame_hex)).reason, f.reason, f.name);
  for (const r of d.rekey) assert.equal(hex(gen.rekey(H(r.key_hex))), r.rekeyed_hex);
  for (const m of d.messages) assert.equal(gen.messageProblem(m.json) === null, m.valid, m.name);
  const who = Object.fromEntries(d.identities.map((x) => [x.name, { ...x, skPriv: H(x.sk_private_hex) }]));
  for (const s of d.seal) {
    const o = gen.openSeal(who[s.recipient], H(s.envelope_hex));
    assert.equal(hex(o.plaintext), s.plaintext_hex, s.name);
    assert.equal(o.from, who[s.sender].peer_id, s.name);
  }
  for (const s of d.seal_negative) {
    assert.throws(() => gen.openSeal(who[s.recipient], H(s.envelope_hex)), (e) => e.code === s.expect, s.name);
  }
});

test('backups in the file import with the generator\'s reader', () => {
  const d = JSON.parse(read('e2ee.json'));
  const ident = Object.fromEntries(d.identities.map((x) => [x.name, x]));
  for (const b of d.backup) {
    const r = gen.importBackup(b.json, b.passphrase);
    assert.equal(r.expect, 'ok');
    assert.equal(r.ik_seed_hex, ident[b.identity].ik_seed_hex);
    assert.equal(r.sk_private_hex, ident[b.identity].sk_private_hex);
    assert.deepEqual(Object.keys(JSON.parse(b.json)), ['echolink_backup', 'kdf', 'n', 'r', 'p', 'salt', 'nonce', 'ct']);
  }
  for (const b of d.backup_negative) assert.equal(gen.importBackup(b.json, b.passphrase).expect, b.expect, b.name);
});
