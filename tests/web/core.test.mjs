// core.test.mjs - the web client's core (web/lib/client.js with db.js,
// signal.js, link.js) in headless Chromium against a real echolinkd and a
// real `echolink` terminal client, inside network namespaces:
//
//   1. two browser users (separate contexts, so separate IndexedDB) become
//      contacts and chat both ways: delivered and read marks, reactions,
//      edit, delete, as the history of both sides shows;
//   2. a browser user and `echolink listen --json` (remote namespace) chat
//      both ways and send a file each way, SHA-256 checked on both ends;
//   3. a reloaded page keeps its identity and its history, and chats on;
//   4. a message typed while the peer is offline reaches it as a sealed
//      envelope when it comes back, exactly once.
//
//   tests/harness/netns.sh run node --test tests/web/core.test.mjs
// (ECHOLINKD, ECHOLINK, CHROMIUM as in tests/CMakeLists.txt's el_web_test)
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startWeb } from './lib/browser.mjs';

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

describe('web core: browser users and a terminal user', { skip: SKIP }, () => {
  let w, alice, bob, carol;

  before(async () => {
    w = await startWeb();
    alice = await w.user('alice');
    bob = await w.user('bob');
    await alice.waitEvent((e) => e.event === 'login');
    await bob.waitEvent((e) => e.event === 'login');
    await w.befriend(alice, bob);
  });

  after(async () => {
    if (process.exitCode) console.log(`# page logs and clients:\n${w?.tails()}`);
    await w?.close();
  });

  it('two browsers chat both ways: delivered, read, reactions, edit, delete', async () => {
    const conv = `p:${bob.id}`;
    const sent = await alice.ok({ cmd: 'send', to: conv, text: 'hello bob' });
    assert.match(sent.msg_id, /^[0-9a-f]{32}$/);
    const m = await bob.waitEvent((e) => e.event === 'message' && e.id === sent.msg_id, 30000);
    assert.equal(m.text, 'hello bob');
    assert.equal(m.from, alice.id);
    assert.equal(m.conv, `p:${alice.id}`);
    assert.equal(m.offline, false, `went as an envelope, not on the link; alice's page:\n${alice.tail(60)}\n` +
      `bob's page:\n${bob.tail(60)}`);
    await alice.waitEvent((e) => e.event === 'status' && e.id === sent.msg_id && e.status === 'delivered', 10000);

    const back = await bob.ok({ cmd: 'send', to: alice.id, text: 'hi alice', reply_to: sent.msg_id });
    const mb = await alice.waitEvent((e) => e.event === 'message' && e.id === back.msg_id, 10000);
    assert.equal(mb.reply_to, sent.msg_id);
    await bob.waitEvent((e) => e.event === 'status' && e.id === back.msg_id && e.status === 'delivered', 10000);

    // read: bob shows the conversation, alice's message becomes read
    const rd = await bob.ok({ cmd: 'read', conv: `p:${alice.id}` });
    assert.equal(rd.marked, 1);
    await alice.waitEvent((e) => e.event === 'status' && e.id === sent.msg_id && e.status === 'read', 10000);

    // typing is not stored, only shown
    await alice.ok({ cmd: 'typing', conv, typing: true });
    await bob.waitEvent((e) => e.event === 'typing' && e.from === alice.id && e.typing === true, 10000);

    // a reaction, an edit and a delete by their authors
    await alice.ok({ cmd: 'react', conv, target: back.msg_id, emoji: '👍' });
    const rx = await bob.waitEvent((e) => e.event === 'reaction' && e.target === back.msg_id, 10000);
    assert.equal(rx.emoji, '👍');
    assert.equal(rx.remove, false);
    await alice.ok({ cmd: 'edit', conv, target: sent.msg_id, text: 'hello bob (edited)' });
    const ed = await bob.waitEvent((e) => e.event === 'edit' && e.target === sent.msg_id, 10000);
    assert.equal(ed.text, 'hello bob (edited)');
    const third = await alice.ok({ cmd: 'send', to: conv, text: 'to be deleted' });
    await bob.waitEvent((e) => e.event === 'message' && e.id === third.msg_id, 10000);
    await alice.ok({ cmd: 'delete', conv, target: third.msg_id });
    await bob.waitEvent((e) => e.event === 'delete' && e.target === third.msg_id, 10000);
    // only the author may edit
    const bad = await bob.request({ cmd: 'edit', conv: `p:${alice.id}`, target: sent.msg_id, text: 'not mine' });
    assert.equal(bad.ok, false);

    // both histories agree
    const hb = (await bob.ok({ cmd: 'history', conv: `p:${alice.id}` })).messages;
    const byId = (list, id) => list.find((x) => x.id === id);
    assert.equal(byId(hb, sent.msg_id).text, 'hello bob (edited)');
    assert.equal(byId(hb, sent.msg_id).edited, true);
    assert.equal(byId(hb, sent.msg_id).outgoing, false);
    assert.equal(byId(hb, third.msg_id).deleted, true);
    assert.equal(byId(hb, third.msg_id).text, '');
    assert.deepEqual(byId(hb, back.msg_id).reactions, [{ from: alice.id, emoji: '👍' }]);
    const ha = (await alice.ok({ cmd: 'history', conv })).messages;
    assert.equal(byId(ha, sent.msg_id).status, 'read');
    assert.equal(byId(ha, back.msg_id).status, 'incoming');
    assert.equal(byId(ha, back.msg_id).reply_to, sent.msg_id);
    assert.deepEqual(ha.map((x) => x.id), hb.map((x) => x.id), 'the same messages in the same order');
    const found = (await bob.ok({ cmd: 'search', query: 'EDIT' })).messages;
    assert.deepEqual(found.map((x) => x.id), [sent.msg_id]);
    const convs = (await alice.ok({ cmd: 'conversations' })).conversations;
    assert.equal(convs.find((c) => c.conv === conv).unread, 1);
  });

  // Chromium can fire the chat channel's open after applying a description
  // but before pc.remoteDescription shows it (seen once in a full suite run:
  // the link was torn down, "no DTLS fingerprint", and the message went as
  // an envelope). Here that getter never shows it: the E2EE handshake must
  // not depend on it.
  it('the link comes up even when pc.remoteDescription does not show the remote description yet', async () => {
    const hide = () => {
      Object.defineProperty(RTCPeerConnection.prototype, 'remoteDescription', { configurable: true, get: () => null });
    };
    const erin = await w.user('erin', { initScript: hide });
    const fred = await w.user('fred', { initScript: hide });
    await erin.waitEvent((e) => e.event === 'login');
    await fred.waitEvent((e) => e.event === 'login');
    await w.befriend(erin, fred);
    const sent = await erin.ok({ cmd: 'send', to: `p:${fred.id}`, text: 'over the link' });
    const m = await fred.waitEvent((e) => e.event === 'message' && e.id === sent.msg_id, 30000);
    assert.equal(m.offline, false, `went as an envelope; erin's page:\n${erin.tail(20)}`);
    assert.ok(!erin.logs.some((l) => /no DTLS fingerprint/.test(l)), erin.tail(20));
    await erin.closePage();
    await fred.closePage();
  });

  it('a browser user and an echolink terminal user chat and send a file each way', async () => {
    carol = await w.cluster.client('carol', { remote: true });
    await carol.ok(['peers']); // logs in once, so the server knows carol
    const from = alice.events.length;
    await carol.ok(['add', alice.id, 'hi from the terminal']);
    const req = await alice.waitEvent((e) => e.event === 'contact_request' && e.from === carol.id, 20000, from);
    assert.equal(req.message, 'hi from the terminal');
    await alice.ok({ cmd: 'accept', peer: carol.id });
    await carol.listen();

    const s1 = await alice.ok({ cmd: 'send', to: carol.id, text: 'hello terminal ✓' });
    const got = await carol.waitEvent((e) => e.event === 'message' && e.id === s1.msg_id, 30000);
    assert.equal(got.text, 'hello terminal ✓');
    assert.equal(got.from, alice.id);
    await alice.waitEvent((e) => e.event === 'status' && e.id === s1.msg_id && e.status === 'delivered', 15000);

    const fa = alice.events.length;
    await carol.ok(['send', alice.id, 'hello browser ✓']);
    const gotA = await alice.waitEvent((e) => e.event === 'message' && e.from === carol.id && e.text === 'hello browser ✓', 20000, fa);
    assert.equal(gotA.conv, `p:${carol.id}`);

    // browser -> terminal: 300 KiB + 7 bytes (several chunks, a short last one)
    const size = 300 * 1024 + 7;
    const out = await alice.sendRandomFile(`p:${carol.id}`, 'from-browser.bin', size);
    assert.equal(out.ok, true, JSON.stringify(out));
    const done = await carol.waitEvent((e) => e.event === 'file_complete' && e.file_id === out.file_id, 60000);
    assert.equal(done.sha256, out.sha256);
    const onDisk = await readFile(done.path);
    assert.equal(onDisk.length, size);
    assert.equal(sha256(onDisk), out.sha256, 'the terminal user has the same bytes');
    await alice.waitEvent((e) => e.event === 'file_complete' && e.file_id === out.file_id && e.direction === 'out', 20000);

    // terminal -> browser: 200 KiB of random bytes from a file
    const src = path.join(w.cluster.dir, 'from-terminal.bin');
    const bytes = randomBytes(200 * 1024 + 3);
    await writeFile(src, bytes);
    const fb = alice.events.length;
    await carol.ok(['send-file', alice.id, src]);
    const offer = await alice.waitEvent((e) => e.event === 'file_offer' && e.from === carol.id, 30000, fb);
    assert.equal(offer.name, 'from-terminal.bin');
    assert.equal(offer.size, bytes.length);
    const inDone = await alice.waitEvent((e) => e.event === 'file_complete' && e.file_id === offer.file_id, 60000, fb);
    assert.equal(inDone.direction, 'in');
    assert.equal(inDone.sha256, sha256(bytes));
    const dig = await alice.fileDigest(offer.file_id);
    assert.equal(dig.ok, true, JSON.stringify(dig));
    assert.equal(dig.size, bytes.length);
    assert.equal(dig.sha256, sha256(bytes), 'the browser holds the same bytes');
    await carol.waitEvent((e) => e.event === 'file_complete' && e.file_id === offer.file_id && e.direction === 'out', 20000);
  });

  it('a reloaded page keeps its identity and history, and chats on', async () => {
    const before = (await bob.ok({ cmd: 'history', conv: `p:${alice.id}` })).messages;
    assert.ok(before.length >= 3);
    const oldId = bob.id;
    const from = bob.events.length;
    const id = await bob.reload();
    assert.equal(id, oldId, 'the same identity after a reload');
    await bob.waitEvent((e) => e.event === 'login' && e.peer_id === oldId, 20000, from);
    const afterReload = (await bob.ok({ cmd: 'history', conv: `p:${alice.id}` })).messages;
    assert.deepEqual(afterReload, before, 'the same history after a reload');
    const who = await bob.ok({ cmd: 'whoami' });
    assert.equal(who.name, 'bob');
    assert.equal(who.online, true);

    // the identity survives clearing the browser's data through a backup
    const { backup } = await bob.ok({ cmd: 'export', passphrase: 'correct horse', n: 1024 });
    const restored = await bob.page.evaluate(async (text) => {
      const { Client } = await import('/lib/client.js');
      const c = await Client.open({ server: location.origin, dbName: 'echolink-test-restore' });
      const wrong = await c.request({ cmd: 'import', backup: text, passphrase: 'wrong' });
      const r = await c.request({ cmd: 'import', backup: text, passphrase: 'correct horse' });
      const again = await c.request({ cmd: 'import', backup: text, passphrase: 'correct horse' });
      c.close();
      const c2 = await Client.open({ server: location.origin, dbName: 'echolink-test-restore' });
      const id = c2.peerId;
      c2.close();
      return { wrong, r, again, id };
    }, backup);
    assert.equal(restored.wrong.ok, false);
    assert.equal(restored.wrong.error, 'bad passphrase or corrupted backup');
    assert.equal(restored.r.ok, true);
    assert.equal(restored.r.peer_id, oldId);
    assert.equal(restored.again.code, 'exists', 'an identity is not replaced without force');
    assert.equal(restored.id, oldId, 'the imported identity is kept');

    const s = await alice.ok({ cmd: 'send', to: bob.id, text: 'after your reload' });
    await bob.waitEvent((e) => e.event === 'message' && e.id === s.msg_id, 30000, from);
    const b2 = await bob.ok({ cmd: 'send', to: alice.id, text: 'still here' });
    await alice.waitEvent((e) => e.event === 'message' && e.id === b2.msg_id, 30000);
  });

  it('a message typed while the peer is offline arrives when it comes back, exactly once', async () => {
    const fa = alice.events.length;
    await bob.closePage();
    // the server says bob is gone
    await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && e.online === false, 30000, fa);
    const s = await alice.ok({ cmd: 'send', to: bob.id, text: 'while you were away' });
    await alice.waitEvent((e) => e.event === 'status' && e.id === s.msg_id && e.status === 'sent' && e.via === 'envelope', 20000, fa);

    const from = bob.events.length;
    await bob.reopen();
    const m = await bob.waitEvent((e) => e.event === 'message' && e.id === s.msg_id, 30000, from);
    assert.equal(m.text, 'while you were away');
    assert.equal(m.offline, true);
    await alice.waitEvent((e) => e.event === 'status' && e.id === s.msg_id && e.status === 'delivered', 30000, fa);
    // the outbox also re-sends on the new connection: still one message
    await sleep(3000);
    assert.equal(bob.all((e) => e.event === 'message' && e.id === s.msg_id).length, 1);
    const h = (await bob.ok({ cmd: 'history', conv: `p:${alice.id}` })).messages;
    assert.equal(h.filter((x) => x.id === s.msg_id).length, 1);
    const st = (await alice.ok({ cmd: 'stats' })).stats;
    assert.ok(st.envelopes_sent >= 1);
  });

  it('a group of two browsers and a terminal user: signed state, fan-out both ways, removal, a member added later', async () => {
    await bob.waitEvent((e) => e.event === 'login', 20000);
    const c = await alice.ok({ cmd: 'group_create', name: 'trio', members: [bob.id, carol.id] });
    assert.match(c.group_id, /^[0-9a-f]{32}$/);
    const conv = `g:${c.group_id}`;
    const gb = await bob.waitEvent((e) => e.event === 'group' && e.group_id === c.group_id, 30000);
    assert.deepEqual([...gb.members].sort(), [alice.id, bob.id, carol.id].sort());
    assert.deepEqual(gb.admins, [alice.id]);
    await carol.waitEvent((e) => e.event === 'group' && e.group_id === c.group_id, 30000);

    const s = await alice.ok({ cmd: 'send', to: conv, text: 'hello group' });
    await bob.waitEvent((e) => e.event === 'message' && e.id === s.msg_id && e.conv === conv, 30000);
    await carol.waitEvent((e) => e.event === 'message' && e.id === s.msg_id && e.conv === conv, 30000);
    const fa = alice.events.length, fb = bob.events.length;
    await carol.ok(['send', conv, 'from the terminal to the group']);
    const m1 = await alice.waitEvent((e) => e.event === 'message' && e.conv === conv && e.from === carol.id, 30000, fa);
    const m2 = await bob.waitEvent((e) => e.event === 'message' && e.conv === conv && e.from === carol.id, 30000, fb);
    assert.equal(m1.id, m2.id, 'one message, one id, fanned out');
    assert.equal(m1.text, 'from the terminal to the group');
    await alice.waitEvent((e) => e.event === 'status' && e.id === s.msg_id && e.status === 'delivered', 20000);

    // a rename and a member removed then added back (who learns the group
    // again from that update)
    await alice.ok({ cmd: 'group_rename', group_id: c.group_id, name: 'trio 2' });
    await carol.waitEvent((e) => e.event === 'group' && e.name === 'trio 2', 20000);
    await alice.ok({ cmd: 'group_remove', group_id: c.group_id, peer: bob.id });
    await bob.waitEvent((e) => e.event === 'group' && e.group_id === c.group_id && e.member === false, 20000);
    const refused = await bob.request({ cmd: 'send', to: conv, text: 'not a member' });
    assert.equal(refused.ok, false);
    await alice.ok({ cmd: 'group_add', group_id: c.group_id, peer: bob.id });
    const back = await bob.waitEvent((e) => e.event === 'group' && e.group_id === c.group_id && e.member === true &&
      e.version === 4, 20000);
    assert.equal(back.change, 'add');
    const groups = (await bob.ok({ cmd: 'groups' })).groups;
    assert.equal(groups.find((g) => g.group_id === c.group_id).name, 'trio 2');
    const s2 = await bob.ok({ cmd: 'send', to: conv, text: 'back in' });
    await carol.waitEvent((e) => e.event === 'message' && e.id === s2.msg_id, 30000);
    await alice.waitEvent((e) => e.event === 'message' && e.id === s2.msg_id, 30000);

    // dave never saw the group: he learns it from the update that adds him
    const dave = await w.user('dave');
    await dave.waitEvent((e) => e.event === 'login');
    await w.befriend(alice, dave);
    await alice.ok({ cmd: 'group_add', group_id: c.group_id, peer: dave.id });
    const gd = await dave.waitEvent((e) => e.event === 'group' && e.group_id === c.group_id, 30000);
    assert.equal(gd.version, 5);
    assert.equal(gd.member, true);
    assert.equal(gd.name, 'trio 2');
    const s3 = await dave.ok({ cmd: 'send', to: conv, text: 'hi all, I am new' });
    await carol.waitEvent((e) => e.event === 'message' && e.id === s3.msg_id, 30000);
    await bob.waitEvent((e) => e.event === 'message' && e.id === s3.msg_id, 30000);
  });
});
