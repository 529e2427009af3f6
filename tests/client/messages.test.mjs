// messages.test.mjs - every message type end to end between real `echolink`
// processes (listen --json owning each profile, one-shot commands handed to
// it through the control socket), including a group of three: the message
// paths of src/client/session.c, the groups of src/client/session_group.c
// (signed state, fan-out, admin changes, late members) and apps/echolink.
//
//   tests/harness/netns.sh run node --test tests/client/messages.test.mjs
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SKIP, startCluster } from './lib/cluster.mjs';

describe('echolink: every message type', { skip: SKIP }, () => {
  let c, alice, bob, carol;
  before(async () => {
    c = await startCluster();
    alice = await c.client('alice');
    bob = await c.client('bob', { remote: true });
    carol = await c.client('carol');
    await c.befriend(alice, bob);
    await c.befriend(alice, carol);
    for (const x of [alice, bob, carol]) await x.listen();
  });
  after(async () => {
    await c?.cleanup();
  });

  const isMsg = (text) => (e) => e.event === 'message' && e.text === text;

  it('chat with a reply, delivery and read receipts', async () => {
    const id = await alice.ok(['send', bob.id, 'hello bob']);
    assert.match(id, /^[0-9a-f]{32}$/);
    const got = await bob.waitEvent(isMsg('hello bob'));
    assert.equal(got.from, alice.id);
    assert.equal(got.conv, `p:${alice.id}`);
    assert.equal(got.id, id);
    await alice.waitEvent((e) => e.event === 'status' && e.id === id && e.status === 'delivered');
    const reply = await bob.ok(['send', alice.id, 'hi alice', '--reply-to', id]);
    const r = await alice.waitEvent(isMsg('hi alice'));
    assert.equal(r.reply_to, id);
    await bob.ok(['read', alice.id]);
    await alice.waitEvent((e) => e.event === 'status' && e.id === id && e.status === 'read');
    const hist = JSON.parse(await alice.ok(['history', bob.id, '--json']));
    const mine = hist.messages.find((m) => m.id === id);
    assert.equal(mine.status, 'read');
    assert.equal(hist.messages.find((m) => m.id === reply).reply_to, id);
  });

  it('typing, reactions, edit and delete', async () => {
    const id = await alice.ok(['send', bob.id, 'typo hre']);
    await bob.waitEvent(isMsg('typo hre'));
    await bob.ok(['react', alice.id, id, '👍']);
    const re = await alice.waitEvent((e) => e.event === 'reaction' && e.target === id);
    assert.equal(re.emoji, '👍');
    assert.equal(re.from, bob.id);
    assert.equal(re.remove, false);
    await alice.ok(['edit', bob.id, id, 'typo here']);
    const ed = await bob.waitEvent((e) => e.event === 'edit' && e.target === id);
    assert.equal(ed.text, 'typo here');
    // only the author may edit: bob editing alice's message is refused locally
    const bad = await bob.run(['edit', alice.id, id, 'hacked']);
    assert.notEqual(bad.code, 0);
    await alice.ok(['delete', bob.id, id]);
    await bob.waitEvent((e) => e.event === 'delete' && e.target === id);
    const hist = JSON.parse(await bob.ok(['history', alice.id, '--json']));
    const row = hist.messages.find((m) => m.id === id);
    assert.equal(row.deleted, true);
    assert.equal(row.text, '');
    // a reaction removed
    const id2 = await alice.ok(['send', bob.id, 'react to me']);
    await bob.waitEvent(isMsg('react to me'));
    await bob.ok(['react', alice.id, id2, '🎉']);
    await alice.waitEvent((e) => e.event === 'reaction' && e.target === id2 && !e.remove);
    await bob.ok(['react', alice.id, id2, '🎉', '--remove']);
    await alice.waitEvent((e) => e.event === 'reaction' && e.target === id2 && e.remove);
    const ah = JSON.parse(await alice.ok(['history', bob.id, '--json']));
    assert.deepEqual(ah.messages.find((m) => m.id === id2).reactions, []);
  });

  it('typing status travels and is not stored', async () => {
    const from = bob.events.length;
    await alice.ok(['typing', bob.id, 'on']);
    const t = await bob.waitEvent((e) => e.event === 'typing' && e.from === alice.id, 20000, from);
    assert.equal(t.typing, true);
    assert.equal(t.conv, `p:${alice.id}`);
    await alice.ok(['typing', bob.id, 'off']);
    await bob.waitEvent((e) => e.event === 'typing' && e.typing === false, 20000, from);
    const hist = JSON.parse(await bob.ok(['history', alice.id, '--json']));
    assert.ok(hist.messages.every((m) => m.kind === 'chat' || m.kind === 'file' || m.kind === 'voice'));
  });

  it('a file and a voice message, SHA-256 verified', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const src = path.join(c.dir, 'photo.png');
    await writeFile(src, data);
    const fid = await alice.ok(['send-file', bob.id, src]);
    const offer = await bob.waitEvent((e) => e.event === 'file_offer' && e.file_id === fid);
    assert.equal(offer.name, 'photo.png');
    assert.equal(offer.mime, 'image/png');
    assert.equal(offer.size, data.length);
    const done = await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid, 60000);
    const got = await readFile(done.path);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'));
    await alice.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid && e.direction === 'out');

    const voice = path.join(c.dir, 'note.ogg');
    await writeFile(voice, randomBytes(20000));
    const vid = await alice.ok(['send-file', bob.id, voice, '--voice', '4200']);
    const vo = await bob.waitEvent((e) => e.event === 'file_offer' && e.file_id === vid);
    assert.equal(vo.voice_ms, 4200);
    assert.match(vo.mime, /^audio\//);
    await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === vid, 30000);
    const bad = await alice.run(['send-file', bob.id, src, '--voice', '1000']);
    assert.equal(bad.code, 65, 'a voice message must be audio');
  });

  it('a group of three: create, fan-out, rename, members, admin hand-over, leave', async () => {
    const gid = await alice.ok(['group', 'create', 'trio', bob.id, carol.id]);
    assert.match(gid, /^[0-9a-f]{32}$/);
    for (const x of [bob, carol]) {
      const g = await x.waitEvent((e) => e.event === 'group' && e.group_id === gid);
      assert.equal(g.name, 'trio');
      assert.deepEqual([...g.members].sort(), [alice.id, bob.id, carol.id].sort());
      assert.deepEqual(g.admins, [alice.id]);
    }
    // bob and carol are not contacts: the group directory lets them connect
    await bob.ok(['send', `g:${gid}`, 'hello group']);
    for (const x of [alice, carol]) {
      const m = await x.waitEvent((e) => isMsg('hello group')(e), 30000);
      assert.equal(m.group, gid);
      assert.equal(m.conv, `g:${gid}`);
      assert.equal(m.from, bob.id);
    }
    await alice.ok(['group', 'rename', gid, 'the trio']);
    for (const x of [bob, carol]) await x.waitEvent((e) => e.event === 'group' && e.name === 'the trio');
    // only an admin may change the group
    const denied = await bob.run(['group', 'rename', gid, 'mine']);
    assert.equal(denied.code, 77);
    await alice.ok(['group', 'admin', gid, carol.id]);
    await bob.waitEvent((e) => e.event === 'group' && e.group_id === gid && e.admins[0] === carol.id);
    // carol (now admin) removes bob
    await carol.waitEvent((e) => e.event === 'group' && e.admins[0] === carol.id);
    await carol.ok(['group', 'remove', gid, bob.id]);
    const gone = await bob.waitEvent((e) => e.event === 'group' && e.group_id === gid && !e.members.includes(bob.id));
    assert.equal(gone.member, false);
    await alice.waitEvent((e) => e.event === 'group' && e.group_id === gid && !e.members.includes(bob.id));
    // alice leaves: carol, the admin, publishes the state without her
    await alice.ok(['group', 'leave', gid]);
    const left = await carol.waitEvent((e) => e.event === 'group' && e.group_id === gid && !e.members.includes(alice.id), 30000);
    assert.deepEqual(left.members, [carol.id]);
    const groups = JSON.parse(await bob.ok(['groups', '--json']));
    assert.equal(groups.groups.find((g) => g.group_id === gid).left, true);
  });

  it('a member added later learns the group from its first update', async () => {
    const gid = await alice.ok(['group', 'create', 'later', bob.id]);
    await bob.waitEvent((e) => e.event === 'group' && e.group_id === gid);
    const c0 = carol.events.length;
    await alice.ok(['group', 'add', gid, carol.id]);
    const g = await carol.waitEvent((e) => e.event === 'group' && e.group_id === gid, 30000, c0);
    assert.equal(g.version, 2);
    assert.deepEqual([...g.members].sort(), [alice.id, bob.id, carol.id].sort());
    await carol.ok(['send', `g:${gid}`, 'thanks for adding me']);
    await bob.waitEvent((e) => e.event === 'message' && e.text === 'thanks for adding me' && e.group === gid, 30000);
  });

  it('bad input gets a clear error and an exit code, nothing is sent', async () => {
    const r1 = await alice.run(['send', 'not-a-peer', 'x']);
    assert.equal(r1.code, 65);
    assert.match(r1.stderr, /not a conversation/);
    const r2 = await alice.run(['send', bob.id]);
    assert.equal(r2.code, 64);
    const r3 = await alice.run(['frobnicate']);
    assert.equal(r3.code, 64);
    assert.match(r3.stderr, /unknown command/);
    const r4 = await alice.run(['send', bob.id, 'x'.repeat(40000)]);
    assert.equal(r4.code, 65);
  });

  it('identity export and import with a passphrase', async () => {
    const file = path.join(c.dir, 'alice.backup');
    const env = { ECHOLINK_PASSPHRASE: 'correct horse battery staple' };
    await alice.ok(['export', file], { env });
    const wrong = await alice.run(['--profile', 'copy', 'import', file], { env: { ECHOLINK_PASSPHRASE: 'nope' } });
    assert.equal(wrong.code, 65);
    assert.match(wrong.stderr, /bad passphrase or corrupted backup/);
    await alice.ok(['--profile', 'copy', 'import', file], { env });
    const id = JSON.parse(await alice.ok(['--profile', 'copy', 'id', '--json']));
    assert.equal(id.peer_id, alice.id);
    const again = await alice.run(['--profile', 'copy', 'import', file], { env });
    assert.notEqual(again.code, 0, 'an import never overwrites an identity');
  });

  it('history search finds edited text', async () => {
    const id = await alice.ok(['send', bob.id, 'the zebra crossing']);
    await bob.waitEvent(isMsg('the zebra crossing'));
    const res = JSON.parse(await bob.ok(['search', 'zebra', '--json']));
    assert.ok(res.messages.some((m) => m.id === id));
  });

  // Last: the whole session above ran in these three processes under ASan,
  // whose LeakSanitizer reports at exit (and turns the exit code non-zero).
  it('every listener exits 0 on SIGTERM, with no leak or sanitizer report', async () => {
    for (const x of [alice, bob, carol]) {
      const r = await x.stop('SIGTERM');
      assert.deepEqual(r, { code: 0, signal: null }, `${x.name} exit\n${x.tail(40)}`);
      assert.doesNotMatch(x.stderr, /LeakSanitizer|AddressSanitizer|runtime error:/, x.tail(60));
    }
  });
});
