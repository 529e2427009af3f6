// messages.test.mjs - web/lib/{safety,backup,trust,msg,group}.js against
// tests/vectors/e2ee.json (docs/PROTOCOL.md §10.1, §10.2, §10.4, §11, §11.1
// and the kind 0x02 chunk of §9.3). Run: node --test tests/js/messages.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as id from '../../web/lib/identity.js';
import { formatSafetyNumber, safetyNumber } from '../../web/lib/safety.js';
import * as backup from '../../web/lib/backup.js';
import { MemoryTrustStorage, TrustError, TrustStore } from '../../web/lib/trust.js';
import * as msg from '../../web/lib/msg.js';
import * as group from '../../web/lib/group.js';

const doc = JSON.parse(readFileSync(new URL('../vectors/e2ee.json', import.meta.url), 'utf8'));

const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const utf8 = (s) => new TextEncoder().encode(s);
const plain = (json) => { const b = utf8(json); const out = new Uint8Array(b.length + 1); out[0] = 1; out.set(b, 1); return out; };

const ids = Object.fromEntries(doc.identities.map((i) => [i.name, i]));
const identityOf = (name) => id.identityFromSeeds(hex(ids[name].ik_seed_hex), hex(ids[name].sk_private_hex));
const bundle = (name) => ({ ik: ids[name].ik, sk: ids[name].sk, sk_sig: ids[name].sk_sig });

// ------------------------------------------------------------------ safety

test('safety: vectors reproduce, symmetric, formatted as 12 groups of 5', async () => {
  assert.ok(doc.safety.length >= 3);
  for (const v of doc.safety) {
    const a = ids[v.a], b = ids[v.b];
    assert.equal(await safetyNumber(a, a.peer_id, b, b.peer_id), v.number, `${v.a}/${v.b}`);
    assert.equal(await safetyNumber(b.ik, b.peer_id, id.b64urlDecode(a.ik, 32)), v.number, 'ik forms, derived peer ID');
    const f = formatSafetyNumber(v.number);
    assert.match(f, /^[0-9]{5}( [0-9]{5}){11}$/);
    assert.equal(f.replaceAll(' ', ''), v.number);
  }
  const n = doc.safety.map((v) => v.number);
  assert.notEqual(n[0], n[2], 'different pairs give different numbers');
});

test('safety: a peer ID that is not the ik\'s is refused; sk does not matter', async () => {
  const a = ids.alice, b = ids.bob;
  await assert.rejects(safetyNumber(a, b.peer_id, b, b.peer_id), TypeError);
  const other = await id.bundleOf(await id.identityFromSeeds(hex(a.ik_seed_hex), new Uint8Array(32).fill(7)));
  assert.equal(other.ik, a.ik);
  assert.notEqual(other.sk, a.sk);
  assert.equal(await safetyNumber(other, a.peer_id, b, b.peer_id), doc.safety[0].number);
  assert.throws(() => formatSafetyNumber('123'), TypeError);
});

// ------------------------------------------------------------------ backup

test('backup: export with the vector salt/nonce/n gives the exact text; import gives the identity', async () => {
  for (const v of doc.backup) {
    const ident = await identityOf(v.identity);
    const text = await backup.exportIdentityWith(ident, v.passphrase, { salt: hex(v.salt_hex), nonce: hex(v.nonce_hex), n: v.n, r: v.r, p: v.p });
    assert.equal(text, v.json, v.identity);
    const back = await backup.importIdentity(v.json, v.passphrase);
    assert.deepEqual(await id.bundleOf(back), bundle(v.identity), v.identity);
    const seeds = await id.exportIdentity(back);
    assert.equal(toHex(id.b64urlDecode(seeds.ik_seed, 32)), ids[v.identity].ik_seed_hex);
    assert.equal(toHex(id.b64urlDecode(seeds.sk_private, 32)), ids[v.identity].sk_private_hex);
  }
  for (const v of doc.backup_import_only) {
    const back = await backup.importIdentity(utf8(v.json), v.passphrase);
    const seeds = await id.exportIdentity(back);
    assert.equal(toHex(id.b64urlDecode(seeds.ik_seed, 32)), v.ik_seed_hex, v.name);
    assert.equal(toHex(id.b64urlDecode(seeds.sk_private, 32)), v.sk_private_hex, v.name);
  }
});

test('backup: negative vectors fail with the expected code and message', async () => {
  assert.ok(doc.backup_negative.length >= 10);
  for (const v of doc.backup_negative) {
    await assert.rejects(backup.importIdentity(v.json, v.passphrase), (e) => {
      assert.ok(e instanceof backup.BackupError, v.name);
      assert.equal(e.code, v.expect, v.name);
      if (v.expect === 'bad_passphrase') assert.equal(e.message, 'bad passphrase or corrupted backup');
      return true;
    }, v.name);
  }
  const kdfNone = '{"echolink_backup":1,"kdf":"none","keys":"AQ"}';
  await assert.rejects(backup.importIdentity(kdfNone, 'x'), { code: 'invalid' });
  const dup = doc.backup[0].json.replace('"n":1024,', '"n":1024,"n":1024,');
  await assert.rejects(backup.importIdentity(dup, doc.backup[0].passphrase), { code: 'invalid' });
});

test('backup: round trip with the default n = 2^17 and fresh randomness', async () => {
  const ident = await id.generateIdentity();
  let progress = 0;
  const text = await backup.exportIdentity(ident, 'a long passphrase ☃', { onProgress: (f) => { progress = f; } });
  assert.equal(progress, 1);
  const o = JSON.parse(text);
  assert.deepEqual(Object.keys(o), ['echolink_backup', 'kdf', 'n', 'r', 'p', 'salt', 'nonce', 'ct']);
  assert.equal(o.n, 131072);
  assert.equal(o.r, 8);
  assert.equal(o.p, 1);
  const back = await backup.importIdentity(text, 'a long passphrase ☃');
  assert.deepEqual(await id.bundleOf(back), await id.bundleOf(ident));
  await assert.rejects(backup.importIdentity(text, 'a long passphrase'), { code: 'bad_passphrase' });
  // Fresh salt and nonce each time.
  const again = JSON.parse(await backup.exportIdentity(ident, 'p', { n: 1024 }));
  assert.notEqual(again.salt, o.salt);
  assert.notEqual(again.nonce, o.nonce);
  await assert.rejects(backup.exportIdentity(ident, ''), TypeError);
  await assert.rejects(backup.exportIdentity(ident, 'p', { n: 1000 }), { code: 'invalid' });
});

// ------------------------------------------------------------------ trust

test('trust: new -> known -> verified; a changed bundle is never accepted silently', async () => {
  let clock = 1000;
  const storage = new MemoryTrustStorage();
  const t = new TrustStore(storage, { now: () => clock++ });
  const alice = ids.alice;
  assert.equal(await t.state(alice.peer_id), undefined);
  assert.equal(await t.maySend(alice.peer_id), true);

  let r = await t.observe(alice.peer_id, bundle('alice'));
  assert.equal(r.state, 'new');
  assert.deepEqual(r.bundle, bundle('alice'));
  r = await t.observe(alice.peer_id, bundle('alice'));
  assert.equal(r.state, 'known');
  r = await t.setVerified(alice.peer_id);
  assert.equal(r.state, 'verified');
  assert.equal((await t.observe(alice.peer_id, bundle('alice'))).state, 'verified');

  // Same ik, new sk: a key change.
  const newSk = await id.bundleOf(await id.identityFromSeeds(hex(alice.ik_seed_hex), new Uint8Array(32).fill(9)));
  r = await t.observe(alice.peer_id, newSk);
  assert.equal(r.state, 'changed');
  assert.deepEqual(r.bundle, bundle('alice'), 'the old pin stays');
  assert.deepEqual(r.pending, newSk);
  assert.equal(await t.maySend(alice.peer_id), false);
  await assert.rejects(t.setVerified(alice.peer_id), TrustError);
  // Seeing either bundle again does not clear the pending decision.
  assert.equal((await t.observe(alice.peer_id, bundle('alice'))).state, 'changed');
  assert.equal((await t.observe(alice.peer_id, newSk)).state, 'changed');
  // The stored pin is still the old one (storage copies, no aliasing).
  assert.deepEqual((await storage.get(alice.peer_id)).bundle, bundle('alice'));

  r = await t.acceptChange(alice.peer_id);
  assert.equal(r.state, 'known', 'accepted but unverified');
  assert.deepEqual(r.bundle, newSk);
  assert.equal(r.pending, undefined);
  assert.equal(await t.maySend(alice.peer_id), true);
  await assert.rejects(t.acceptChange(alice.peer_id), TrustError);
  assert.equal((await t.observe(alice.peer_id, newSk)).state, 'known');
  assert.equal((await t.observe(alice.peer_id, bundle('alice'))).state, 'changed', 'going back is a change too');
});

test('trust: a bundle of another peer or a broken bundle is an error, not a change', async () => {
  const t = new TrustStore();
  await t.observe(ids.alice.peer_id, bundle('alice'));
  await assert.rejects(t.observe(ids.alice.peer_id, bundle('bob')), TypeError);
  await assert.rejects(t.observe(ids.bob.peer_id, { ...bundle('bob'), sk: ids.alice.sk }), TypeError);
  assert.equal(await t.state(ids.alice.peer_id), 'new');
  assert.equal(await t.state(ids.bob.peer_id), undefined);
  await assert.rejects(t.setVerified(ids.bob.peer_id), TrustError);
});

test('trust: pluggable async storage; concurrent first sightings pin once', async () => {
  const calls = [];
  const m = new Map();
  const storage = {
    async get(k) { calls.push(['get', k]); await new Promise((r) => setTimeout(r, 5)); return m.has(k) ? JSON.parse(m.get(k)) : undefined; },
    async set(k, v) { calls.push(['set', k]); m.set(k, JSON.stringify(v)); },
  };
  const t = new TrustStore(storage);
  const [a, b] = await Promise.all([t.observe(ids.bob.peer_id, bundle('bob')), t.observe(ids.bob.peer_id, bundle('bob'))]);
  // Whichever got in first pinned; the other saw that pin.
  assert.deepEqual([a.state, b.state].sort(), ['known', 'new']);
  assert.ok(calls.some(([op]) => op === 'set'));
  assert.equal(JSON.parse(m.get(ids.bob.peer_id)).state, 'known');
});

// ------------------------------------------------------------------ group

test('group: canonical encoding, signatures and sign/verify reproduce the vectors', async () => {
  for (const v of doc.group) {
    assert.equal(toHex(group.canonicalGroupState(v.state)), v.canonical_hex, v.name);
    assert.equal(await group.checkGroupSignature(v.state, v.by_ik, v.sig), ids[v.signer].peer_id, v.name);
    // Ed25519 is deterministic: signing again gives the vector's sig.
    const signed = await group.signGroupState(await identityOf(v.signer), v.state);
    assert.equal(signed.by_ik, v.by_ik);
    assert.equal(signed.sig, v.sig, v.name);
  }
  const bad = { ...doc.group[0], state: { ...doc.group[0].state, name: 'enemies' } };
  await assert.rejects(group.checkGroupSignature(bad.state, bad.by_ik, bad.sig), { stage: 'signature' });
});

test('group: verifyGroupUpdate applies the version chain and the admin rules', async () => {
  const [created, update, rename] = doc.group;
  const asMsg = (v, t, change) => ({ t, id: '00'.repeat(16), ts: 0, state: v.state, by_ik: v.by_ik, sig: v.sig, ...(change ? { change } : {}) });
  let r = await group.verifyGroupUpdate(null, asMsg(created, 'GROUP_CREATED'));
  assert.equal(r.ok, true);
  assert.equal(r.signer, ids.alice.peer_id);
  const s1 = r.state;
  r = await group.verifyGroupUpdate(s1, asMsg(update, 'GROUP_UPDATE', 'add'));
  assert.equal(r.ok, true);
  const s2 = r.state;
  // bob is an admin of s2 (not of s1): his rename applies on s2 only.
  r = await group.verifyGroupUpdate(s2, asMsg(rename, 'GROUP_UPDATE', 'rename'));
  assert.equal(r.ok, true);
  const bobOnS1 = await group.signGroupState(await identityOf('bob'), { ...created.state, version: 2, name: 'bob rules' });
  r = await group.verifyGroupUpdate(s1, { ...asMsg(created, 'GROUP_UPDATE', 'rename'), ...bobOnS1 });
  assert.deepEqual([r.ok, r.stage], [false, 'group'], 'signer not an admin of the current state');
  // Wrong version (replay of an old state, skipped version).
  r = await group.verifyGroupUpdate(s2, asMsg(update, 'GROUP_UPDATE', 'add'));
  assert.deepEqual([r.ok, r.stage], [false, 'group']);
  r = await group.verifyGroupUpdate(s1, asMsg(rename, 'GROUP_UPDATE', 'rename'));
  assert.deepEqual([r.ok, r.stage], [false, 'group']);
  // GROUP_CREATED over an existing group, GROUP_UPDATE of an unknown group.
  assert.equal((await group.verifyGroupUpdate(s1, asMsg(created, 'GROUP_CREATED'))).ok, false);
  assert.equal((await group.verifyGroupUpdate(null, asMsg(update, 'GROUP_UPDATE', 'add'))).ok, false);
  // Another group's state cannot continue this one.
  const other = await group.signGroupState(await identityOf('alice'), { ...update.state, group_id: 'ab'.repeat(16) });
  assert.equal((await group.verifyGroupUpdate(s1, { ...asMsg(update, 'GROUP_UPDATE', 'add'), ...other })).ok, false);
  // Tampered state, bad change, signer not in the created state's admins.
  r = await group.verifyGroupUpdate(s1, asMsg({ ...update, state: { ...update.state, name: 'x' } }, 'GROUP_UPDATE', 'add'));
  assert.deepEqual([r.ok, r.stage], [false, 'signature']);
  assert.equal((await group.verifyGroupUpdate(s1, asMsg(update, 'GROUP_UPDATE', 'promote'))).ok, false);
  const bobCreates = await group.signGroupState(await identityOf('bob'), created.state);
  r = await group.verifyGroupUpdate(null, { ...asMsg(created, 'GROUP_CREATED'), ...bobCreates });
  assert.deepEqual([r.ok, r.stage], [false, 'group']);
});

test('group: §11.1 state rules, membership and the edit rule', () => {
  const s = doc.group[0].state;
  const bad = [
    [{ ...s, admins: [ids.alice.peer_id, ids.alice.peer_id] }, 'group'],
    [{ ...s, members: [...s.members, s.members[1]] }, 'group'],
    [{ ...s, admins: [ids.alice.peer_id], members: [ids.bob.peer_id] }, 'group'],
    [{ ...s, version: 0 }, 'syntax'],
    [{ ...s, version: 2 ** 53 }, 'syntax'],
    [{ ...s, name: '' }, 'syntax'],
    [{ ...s, name: 'é'.repeat(65) }, 'syntax'],
    [{ ...s, group_id: s.group_id.toUpperCase() }, 'syntax'],
    [{ ...s, admins: [] }, 'syntax'],
    [{ ...s, members: 'x' }, 'syntax'],
  ];
  for (const [st, stage] of bad) assert.throws(() => group.canonicalGroupState(st), { name: 'GroupError', stage }, JSON.stringify(st).slice(0, 80));
  assert.equal(group.isMember(s, ids.bob.peer_id), true);
  assert.equal(group.isMember(s, 'a'.repeat(32)), false);
  assert.equal(group.isAdmin(s, ids.bob.peer_id), false);
  assert.equal(group.isAdmin(s, ids.alice.peer_id), true);
  assert.equal(group.mayEdit(ids.bob.peer_id, ids.bob.peer_id), true);
  assert.equal(group.mayEdit(ids.bob.peer_id, ids.alice.peer_id), false);
  assert.equal(group.mayEdit(undefined, undefined), false);
});

// ------------------------------------------------------------------ messages

test('messages: every vector gets its verdict (and stage)', async () => {
  assert.ok(doc.messages.length >= 80);
  let valid = 0, invalid = 0;
  for (const v of doc.messages) {
    if (v.valid) {
      valid++;
      const r = await msg.parse(plain(v.json));
      const o = JSON.parse(v.json);
      if (msg.isKnownType(o.t)) {
        assert.equal(r.kind, 'message', v.name);
        assert.deepEqual(r.msg, o, v.name);
      } else {
        assert.equal(r.kind, 'unknown', v.name);
        assert.equal(r.t, o.t);
      }
    } else {
      invalid++;
      await assert.rejects(msg.parse(plain(v.json)), (e) => {
        assert.ok(e instanceof msg.MessageError, `${v.name}: ${e}`);
        assert.equal(typeof e.reason, 'string');
        if (v.stage) assert.equal(e.stage, v.stage, `${v.name}: ${e.reason}`);
        return true;
      }, v.name);
    }
  }
  assert.ok(valid >= 20 && invalid >= 40);
});

test('messages: strict JSON (duplicate keys, depth, UTF-8, size, surrogates)', async () => {
  const base = '"t":"CHAT","id":"0123456789abcdef0123456789abcdef","ts":1';
  const ok = async (j) => assert.equal((await msg.parse(plain(j))).kind, 'message', j.slice(0, 60));
  const bad = async (j, reason) => assert.rejects(msg.parse(plain(j)), (e) => e instanceof msg.MessageError && (!reason || e.reason.includes(reason)), j.slice(0, 60));
  await ok(`{${base},"text":"x"}`);
  // JSON.parse would quietly keep the last value of a duplicate key.
  assert.equal(JSON.parse(`{${base},"text":"a","text":"b"}`).text, 'b');
  await bad(`{${base},"text":"a","text":"b"}`, 'duplicate key');
  await bad(`{${base},"text":"a","t\\u0065xt":"b"}`, 'duplicate key');
  await bad(`{${base},"text":"a","x":{"k":1,"k":2}}`, 'duplicate key');
  assert.throws(() => msg.parseStrictJson('{"a":1,"a":1}'), { reason: 'duplicate key' });
  await ok(`{${base},"text":"a","x":[[[[[[{}]]]]]]}`); // depth 8
  await bad(`{${base},"text":"a","x":[[[[[[[{}]]]]]]]}`, "nested");
  await bad(`{${base},"text":"a","x":[[[[[[[[]]]]]]]]}`, 'nested');
  await ok(`{${base},"text":"\\ud83d\\udc4b \\u00e9"}`);
  await bad(`{${base},"text":"\\ud83d"}`, 'surrogate');
  await bad(`{${base},"text":"\\udc4b"}`, 'surrogate');
  await bad(`{${base},"text":"a\tb"}`, 'control');
  await bad(`{${base},"text":"a"} x`);
  await bad(`{${base},"text":"a"}{}`);
  await bad(`{${base},"text":01}`);
  await bad(`{${base},"text":'a'}`);
  await bad(`\ufeff{${base},"text":"a"}`);
  await bad('');
  const body = utf8(`{${base},"text":"é"}`);
  const broken = plain(`{${base},"text":"é"}`);
  broken[body.indexOf(0xc3) + 1] = 0xff; // not UTF-8
  await assert.rejects(msg.parse(broken), { reason: 'invalid UTF-8' });
  // Size: exactly 65536 bytes passes, 65537 does not.
  const fill = (n) => `{${base},"text":"x","pad":"${'a'.repeat(n)}"}`;
  const at = fill(65536 - fill(0).length);
  assert.equal(utf8(at).length, 65536);
  await ok(at);
  await bad(fill(65537 - fill(0).length), 'too large');
  // "__proto__" is a plain member, not a prototype switch.
  const r = await msg.parse(plain(`{${base},"text":"a","__proto__":{"polluted":1}}`));
  assert.equal(r.msg.polluted, undefined);
  assert.equal(Object.getPrototypeOf(r.msg), Object.prototype);
  // Numbers are doubles, as in the C code: 1.0 is the integer 1.
  assert.equal((await msg.parse(plain(`{"t":"CHAT","id":"0123456789abcdef0123456789abcdef","ts":1.0,"text":"a"}`))).msg.ts, 1);
});

test('messages: kinds and chunks', async () => {
  const fileId = '66f1e1062def0aef8dbc65c8c8307659';
  const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const c = msg.encodeChunk(fileId, 65536 * 32, data);
  assert.equal(toHex(c.subarray(0, 25)), `02${fileId}0000000000200000`);
  const r = await msg.parse(c);
  assert.equal(r.kind, 'chunk');
  assert.equal(r.fileId, fileId);
  assert.equal(r.offset, 65536 * 32);
  assert.deepEqual(r.data, data);
  assert.equal(r.data.buffer, c.buffer, 'data is a view, not a copy');
  // The chunk plaintexts inside the frame vectors decode.
  const chunks = doc.frames.map((f) => hex(f.plaintext_hex)).filter((p) => p[0] === 2);
  assert.ok(chunks.length >= 3);
  for (const p of chunks) {
    const d = msg.decodeChunk(p);
    assert.equal(d.fileId, fileId);
    assert.deepEqual(msg.encodeChunk(d.fileId, d.offset, d.data), p);
  }
  // Bounds: 1..65536 data bytes, offset <= 2^53-1.
  assert.throws(() => msg.encodeChunk(fileId, 0, new Uint8Array(0)), TypeError);
  assert.throws(() => msg.encodeChunk(fileId, 0, new Uint8Array(65537)), TypeError);
  assert.equal(msg.decodeChunk(msg.encodeChunk(fileId, 2 ** 53 - 1, new Uint8Array(65536))).data.length, 65536);
  assert.throws(() => msg.encodeChunk(fileId, -1, data), TypeError);
  assert.throws(() => msg.encodeChunk(fileId.toUpperCase(), 0, data), TypeError);
  await assert.rejects(msg.parse(c.subarray(0, 25)), msg.MessageError);
  const big = new Uint8Array(25 + 65537); big[0] = 2;
  await assert.rejects(msg.parse(big), msg.MessageError);
  const farOff = msg.encodeChunk(fileId, 0, data); farOff[17] = 0xff;
  await assert.rejects(msg.parse(farOff), msg.MessageError);
  // Unknown kinds are ignored; an empty plaintext is malformed.
  assert.deepEqual(await msg.parse(Uint8Array.of(0x7f, 1, 2)), { kind: 'unknown', type: 0x7f });
  assert.deepEqual(await msg.parse(Uint8Array.of(0x00)), { kind: 'unknown', type: 0 });
  await assert.rejects(msg.parse(new Uint8Array(0)), msg.MessageError);
  await assert.rejects(msg.parse(Uint8Array.of(1)), msg.MessageError);
});

test('messages: builders make valid messages with fresh 128-bit ids', async () => {
  const target = '3cd36c717c9083bec0575e9ff5c07c51';
  const fid = '66f1e1062def0aef8dbc65c8c8307659';
  const sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const gid = '80884fba5360790f68d829cf52d6ca8f';
  const built = [
    msg.buildChat('hi', { replyTo: target, group: gid }),
    msg.buildTyping(true),
    msg.buildReaction(target, '👍', { remove: true }),
    msg.buildDeliveryReceipt([target]),
    msg.buildReadReceipt([target, fid]),
    msg.buildEdit(target, 'fixed'),
    msg.buildDelete(target),
    msg.buildFileMeta({ name: 'a.txt', size: 0, mime: 'text/plain', sha256: sha }),
    msg.buildFileMeta({ name: 'v.ogg', size: 10, mime: 'audio/ogg', sha256: sha, voiceMs: 1500 }),
    msg.buildFileAccept(fid, 0),
    msg.buildFileCancel(fid, { reason: 'no space' }),
    msg.buildFileComplete(fid, sha),
    msg.buildGroupLeave(gid),
  ];
  const alice = await identityOf('alice');
  const s1 = { name: 'team', version: 1, admins: [ids.alice.peer_id], members: [ids.alice.peer_id, ids.bob.peer_id] };
  const created = await msg.buildGroupCreated(alice, s1);
  built.push(created);
  built.push(await msg.buildGroupUpdate(alice, { ...created.state, version: 2, members: [ids.alice.peer_id] }, 'remove'));
  const seen = new Set();
  for (const m of built) {
    assert.match(m.id, /^[0-9a-f]{32}$/);
    assert.ok(!seen.has(m.id), 'fresh id');
    seen.add(m.id);
    assert.ok(Number.isSafeInteger(m.ts) && Math.abs(m.ts - Date.now()) < 60000);
    const r = await msg.parse(msg.encodeMessage(m));
    assert.equal(r.kind, 'message', m.t);
    assert.deepEqual(r.msg, m);
  }
  assert.equal(built.length, 15);
  assert.match(built[7].channel, /^f:[0-9a-f]{32}$/);
  assert.equal((await group.verifyGroupUpdate(null, created)).ok, true);
  // Builders refuse what a receiver would drop.
  assert.throws(() => msg.buildChat(''), msg.MessageError);
  assert.throws(() => msg.buildChat('x'.repeat(32769)), msg.MessageError);
  assert.throws(() => msg.buildChat('a\ud800'), msg.MessageError);
  assert.throws(() => msg.buildReaction('nope', '👍'), msg.MessageError);
  assert.throws(() => msg.buildFileMeta({ name: 'a/b', size: 1, mime: 'x/y', sha256: sha }), msg.MessageError);
  assert.throws(() => msg.buildFileMeta({ name: 'v', size: 1, mime: 'video/mp4', sha256: sha, voiceMs: 1 }), msg.MessageError);
  await assert.rejects(msg.buildGroupCreated(await identityOf('bob'), s1), msg.MessageError);
  await assert.rejects(msg.buildGroupUpdate(alice, { ...created.state, version: 2 }, 'promote'), msg.MessageError);
  assert.throws(() => msg.encodeMessage({ t: 'CHAT', id: target, ts: 1, text: 'x', pad: 'a'.repeat(65536) }), { reason: 'too large' });
});

test('Receiver: every vector message is delivered, ignored or dropped as the vectors say, counted and logged', async () => {
  const logged = [];
  const rx = new msg.Receiver({ log: (line) => logged.push(line) });
  const enc = new TextEncoder();
  const want = { messages: 0, unknown: 0, syntax: 0, group: 0, signature: 0 };
  for (const v of doc.messages) {
    const r = await rx.receive(new Uint8Array([0x01, ...enc.encode(v.json)]));
    const known = v.valid && msg.isKnownType(JSON.parse(v.json).t);
    if (!v.valid) want[v.stage]++;
    else if (known) want.messages++;
    else want.unknown++;
    assert.equal(r !== null, known, v.name);
  }
  // a chunk, an unknown kind and an empty plaintext
  assert.equal((await rx.receive(msg.encodeChunk('ab'.repeat(16), 0, new Uint8Array([1, 2, 3])))).kind, 'chunk');
  assert.equal(await rx.receive(new Uint8Array([0x7f, 1])), null);
  assert.equal(await rx.receive(new Uint8Array([])), null);
  assert.deepEqual(rx.stats, { ...want, chunks: 1, unknown: want.unknown + 1, syntax: want.syntax + 1 });
  assert.equal(logged.length, want.syntax + 1 + want.group + want.signature, 'every drop is logged');
  assert.ok(logged.every((l) => /^message dropped \((syntax|group|signature)\): /.test(l)));
});
