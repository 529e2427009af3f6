// groups.test.mjs - the group directory: group_create, group_list,
// group_update, group_leave (docs/PROTOCOL.md §5). The directory has no
// authority over who is in a group (signed group state between peers does),
// but the server keeps it consistent: only its admin changes it, only the
// admin's contacts are added, and a refused update changes nothing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { makeContacts, closeAll, strangerPeerId, useServer } from './lib/client.mjs';

describe('group directory', () => {
  const fx = useServer();
  const { client } = fx;

  /** The admin's view of group gid, from group_list. */
  async function listed(who, gid) {
    const l = await who.emitAck('group_list', {});
    assert.equal(l.ok, true, JSON.stringify(l));
    return l.groups.find((g) => g.group_id === gid);
  }

  test('create, list, rename, add and remove; only the admin; only its contacts', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    const c = await client({ label: 'C' });
    const s = await client({ label: 'S' }); // nobody's contact
    await makeContacts(a, b);
    await makeContacts(a, c);
    const made = await a.emitAck('group_create', { name: 'team', members: [b.peerId] });
    assert.equal(made.ok, true, JSON.stringify(made));
    const gid = made.group.group_id;
    assert.equal(made.group.admin, a.peerId);
    assert.deepEqual([...made.group.members].sort(), [a.peerId, b.peerId].sort());
    assert.equal((await listed(b, gid)).name, 'team', 'members see it in group_list');
    assert.equal(await listed(c, gid), undefined, 'others do not');

    const up = await a.emitAck('group_update', { group_id: gid, name: 'team 2', add: [c.peerId], remove: [b.peerId] });
    assert.equal(up.ok, true, JSON.stringify(up));
    assert.equal(up.group.name, 'team 2');
    assert.deepEqual([...up.group.members].sort(), [a.peerId, c.peerId].sort());
    assert.equal(await listed(b, gid), undefined, 'B was removed');

    // refusals, each leaving the group as it was
    const before = await listed(a, gid);
    assert.equal((await c.emitAck('group_update', { group_id: gid, name: 'mine' })).error, 'not_allowed');
    assert.equal((await a.emitAck('group_update', { group_id: gid, name: 'x', add: [s.peerId] })).error, 'not_allowed');
    assert.equal((await a.emitAck('group_update', { group_id: gid, name: 'x', add: [await strangerPeerId()] })).error,
      'unknown_peer');
    assert.equal((await a.emitAck('group_update', { group_id: gid, name: 'x', admin: b.peerId })).error, 'not_found',
      'a new admin must be a member');
    assert.equal((await a.emitAck('group_update', { group_id: gid, name: 'x', admin: c.peerId, remove: [c.peerId] })).error,
      'not_found', 'nor one removed in the same update');
    assert.deepEqual(await listed(a, gid), before, 'nothing changed');
    assert.equal((await a.emitAck('group_update', { group_id: '0'.repeat(32), name: 'x' })).error, 'not_found');

    // admin handed over within one update: B added and made admin
    const handed = await a.emitAck('group_update', { group_id: gid, add: [b.peerId], admin: b.peerId });
    assert.equal(handed.ok, true, JSON.stringify(handed));
    assert.equal(handed.group.admin, b.peerId);
    assert.equal((await a.emitAck('group_update', { group_id: gid, name: 'no longer mine' })).error, 'not_allowed');
    closeAll(a, b, c, s);
  });

  test('leave: the oldest member becomes admin; the last one out deletes the group; a non-member gets not_found', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    const c = await client({ label: 'C' });
    await makeContacts(a, b);
    await makeContacts(a, c);
    const gid = (await a.emitAck('group_create', { name: 'g', members: [b.peerId, c.peerId] })).group.group_id;
    assert.deepEqual(await a.emitAck('group_leave', { group_id: gid }), { ok: true });
    const after = await listed(b, gid);
    assert.ok([b.peerId, c.peerId].includes(after.admin), `admin passed on: ${JSON.stringify(after)}`);
    assert.equal((await a.emitAck('group_leave', { group_id: gid })).error, 'not_found');
    assert.deepEqual(await b.emitAck('group_leave', { group_id: gid }), { ok: true });
    assert.deepEqual(await c.emitAck('group_leave', { group_id: gid }), { ok: true });
    assert.equal(await listed(c, gid), undefined);
    assert.equal((await c.emitAck('group_update', { group_id: gid, name: 'x' })).error, 'not_found', 'deleted');
    closeAll(a, b, c);
  });

  test('a store that fails answers internal, not "no such group"', async () => {
    const a = await client({ label: 'A' });
    const b = await client({ label: 'B' });
    await makeContacts(a, b);
    const gid = (await a.emitAck('group_create', { name: 'g', members: [b.peerId] })).group.group_id;
    const db = fx.srv.db;
    const sql = (stmt) => (db.startsWith('sqlite:')
      ? execFileSync('sqlite3', ['-cmd', '.timeout 5000', db.slice('sqlite:'.length), stmt])
      : execFileSync('psql', ['-v', 'ON_ERROR_STOP=1', '-q', db, '-c', stmt]));
    sql('ALTER TABLE chat_groups RENAME TO chat_groups_away');
    try {
      const up = await a.emitAck('group_update', { group_id: gid, name: 'renamed' });
      assert.equal(up.error, 'internal', JSON.stringify(up));
    } finally {
      sql('ALTER TABLE chat_groups_away RENAME TO chat_groups');
    }
    assert.equal((await listed(a, gid)).name, 'g');
    closeAll(a, b);
  });
});
