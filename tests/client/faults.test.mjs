// faults.test.mjs - client and server faults with real `echolink` and
// echolinkd processes: wall clocks that jump (+1 day, -1 day) on the sender,
// the receiver and the server through ECHOLINK_CLOCK_FILE (src/base/clock.h;
// the machine's time is never changed); a full disk under the receiver's
// downloads and under its history database (a small tmpfs); a damaged
// history database at startup. Expectation everywhere: no crash, no lost or
// duplicated message, a clear error for the user.
//
//   tests/harness/netns.sh run node --test tests/client/faults.test.mjs
// (root: it mounts tmpfs; every mount is unmounted in after(), even on failure)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdtemp, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startCluster } from './lib/cluster.mjs';

const DAY = 86400000;
const MiB = 1024 * 1024;
// the clock file is re-read at most every 100 ms: wait a few periods
const CLOCK_SETTLE_MS = 400;

async function setClock(file, offsetMs) {
  await writeFile(`${file}.tmp`, `${offsetMs}\n`);
  await rename(`${file}.tmp`, file); // atomic: never half a number
  await sleep(CLOCK_SETTLE_MS);
}

async function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

async function history(client, peer) {
  const all = JSON.parse(await client.ok(['history', peer.id, '--json', '--limit', '200'])).messages;
  return all.filter((m) => m.kind === 'chat');
}

function alive(client) {
  assert.ok(client.proc && client.proc.exitCode === null && client.proc.signalCode === null,
    `${client.name}'s listener died:\n${client.tail(30)}`);
}

// ---- mounts (tmpfs), always undone -------------------------------------------------------

const mounts = [];
function mountTmpfs(dir, size) {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'eltest', dir]);
  mounts.push(dir);
}
function unmountAll() {
  while (mounts.length) {
    const dir = mounts.pop();
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      try { execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); } catch { /* gone */ }
    }
  }
}

/** Fills the filesystem of `dir` with one file until ENOSPC; returns its path. */
async function fill(dir) {
  const file = path.join(dir, 'filler');
  const fh = await open(file, 'w');
  const big = Buffer.alloc(256 * 1024, 0x5a);
  const small = Buffer.alloc(4096, 0x5a);
  try {
    for (let i = 0; i < 4096; i++) await fh.write(big); // bounded: 1 GiB at most
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  }
  try {
    for (let i = 0; i < 4096; i++) await fh.write(small);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  }
  await fh.close();
  return file;
}

describe('echolink: the wall clock jumps on the sender, the receiver and the server', { skip: SKIP }, () => {
  let c, alice, bob, clocks;
  const savedEnv = process.env.ECHOLINK_CLOCK_FILE;
  before(async () => {
    clocks = await mkdtemp(path.join(os.tmpdir(), 'el-clock-'));
    // echolinkd inherits the test's environment: its clock is server.clock
    process.env.ECHOLINK_CLOCK_FILE = path.join(clocks, 'server');
    c = await startCluster();
    alice = await c.client('alice');
    bob = await c.client('bob', { remote: true });
    await c.befriend(alice, bob);
    await alice.listen({ env: { ECHOLINK_CLOCK_FILE: path.join(clocks, 'alice') } });
    await bob.listen({ env: { ECHOLINK_CLOCK_FILE: path.join(clocks, 'bob') } });
  });
  after(async () => {
    if (savedEnv === undefined) delete process.env.ECHOLINK_CLOCK_FILE;
    else process.env.ECHOLINK_CLOCK_FILE = savedEnv;
    await c?.cleanup();
    if (clocks) await rm(clocks, { recursive: true, force: true });
  });

  it('every message arrives once, history keeps the send order, envelopes still arrive', async () => {
    const clock = (who) => path.join(clocks, who);
    const sent = []; // [{from, text, id}] in send order
    const a0 = alice.events.length;
    const b0 = bob.events.length;
    // each message is sent after the previous one arrived: the send order is total
    const say = async (from, to, text) => {
      const id = await from.ok(['send', to.id, text]);
      await to.waitEvent((e) => e.event === 'message' && e.id === id, 30000);
      sent.push({ from: from.name, text, id });
    };
    assert.match(alice.stderr, /ECHOLINK_CLOCK_FILE=.* is set/, 'the client warns about the injected clock');
    assert.match(c.server.stderr, /ECHOLINK_CLOCK_FILE=.* is set/, 'the server warns about the injected clock');

    await say(alice, bob, 'a0 normal');
    await say(bob, alice, 'b0 normal');
    await setClock(clock('alice'), DAY); // the sender jumps a day ahead
    await say(alice, bob, 'a1 alice +1d');
    await say(bob, alice, 'b1');
    await say(alice, bob, 'a2 alice +1d');
    await setClock(clock('alice'), -DAY); // ... and then a day back (two days in one step)
    await say(alice, bob, 'a3 alice -1d');
    await say(bob, alice, 'b2');
    await setClock(clock('bob'), DAY); // the receiver jumps ahead, the server back
    await setClock(clock('server'), -DAY);
    await say(alice, bob, 'a4 bob +1d, server -1d');
    await say(bob, alice, 'b3 bob +1d');
    await setClock(clock('bob'), -DAY);
    await setClock(clock('server'), DAY);
    await say(alice, bob, 'a5 bob -1d, server +1d');
    await say(bob, alice, 'b4 bob -1d');

    // the injection took effect: the ts of a1 is a day after a0's, a3's a day before
    const ts = (text) => bob.all((e) => e.event === 'message' && e.text === text)[0].ts;
    assert.ok(ts('a1 alice +1d') - ts('a0 normal') > DAY - 60000, 'alice\'s +1 day shows in ts');
    assert.ok(ts('a0 normal') - ts('a3 alice -1d') > DAY - 60000, 'alice\'s -1 day shows in ts');

    // offline envelopes while the clocks keep jumping: bob is away, the
    // server stores at +1 day and hands out at -1 day
    await bob.stop();
    await alice.waitEvent((e) => e.event === 'presence' && e.peer_id === bob.id && !e.online, 60000, a0);
    const offline = [];
    for (const [i, off] of [[0, DAY], [1, -DAY], [2, 0]]) {
      await setClock(clock('alice'), off);
      const text = `o${i} offline, alice ${off / DAY}d`;
      const id = await alice.ok(['send', bob.id, text]);
      await alice.waitEvent((e) => e.event === 'status' && e.id === id && e.status === 'sent' && e.via === 'envelope', 20000, a0);
      offline.push({ from: 'alice', text, id });
    }
    await setClock(clock('server'), -DAY);
    const b1 = bob.events.length;
    await bob.listen({ env: { ECHOLINK_CLOCK_FILE: clock('bob') } }); // logs in on a server a day behind
    for (const o of offline) {
      const m = await bob.waitEvent((e) => e.event === 'message' && e.id === o.id, 60000, b1);
      assert.equal(m.offline, true, `${o.text} came through the server's queue`);
    }
    sent.push(...offline);
    for (const o of offline) {
      await alice.waitEvent((e) => e.event === 'status' && e.id === o.id && e.status === 'delivered', 60000, a0);
    }
    await sleep(2000); // duplicates, if any, would arrive now

    // exactly once, on each side
    for (const s of sent) {
      const [rx, from] = s.from === 'alice' ? [bob, b0] : [alice, a0];
      const n = rx.events.slice(from).filter((e) => e.event === 'message' && e.id === s.id).length;
      assert.equal(n, 1, `${s.text} shown ${n} times`);
    }
    // history order = send order, on both sides, whatever the ts say
    const want = sent.map((s) => s.text);
    assert.deepEqual((await history(alice, bob)).map((m) => m.text), want, 'alice\'s history order');
    assert.deepEqual((await history(bob, alice)).map((m) => m.text), want, 'bob\'s history order');
    for (const m of await history(alice, bob)) {
      if (m.outgoing) assert.ok(['delivered', 'read'].includes(m.status), `${m.text}: ${m.status}`);
    }
    alive(alice);
    alive(bob);
    assert.ok(c.server.running(), 'echolinkd is running');
    console.log(`# clock jumps: ${sent.length} messages (${offline.length} offline) with +1d/-1d on ` +
      'sender, receiver and server: each shown once, history in send order');
  });
});

describe('echolink: a full disk', { skip: SKIP }, () => {
  let c, alice, bob, carol;
  before(async () => {
    c = await startCluster();
    alice = await c.client('alice');
    bob = await c.client('bob', { remote: true });
    carol = await c.client('carol');
    await c.befriend(alice, bob);
    await c.befriend(alice, carol);
    // bob's downloads on an 8 MiB tmpfs
    mountTmpfs(path.join(bob.home, 'default', 'files'), '8m');
    // carol's whole profile (history.db) on a 4 MiB tmpfs
    const home = carol.home;
    const copy = `${home}.copy`;
    await cp(home, copy, { recursive: true });
    mountTmpfs(home, '4m');
    await cp(copy, home, { recursive: true });
    await rm(copy, { recursive: true, force: true });
    await alice.listen();
    await bob.listen();
    await carol.listen();
  });
  after(async () => {
    for (const x of [alice, bob, carol]) await x?.stop('SIGKILL').catch(() => {});
    unmountAll();
    await c?.cleanup();
  });

  it('receiving a file larger than the free space: both sides fail with a reason, the part is removed, chat goes on, a new send succeeds', async () => {
    const files = path.join(bob.home, 'default', 'files');
    const big = path.join(c.dir, 'big.bin');
    await writeFile(big, randomBytes(16 * MiB));
    const a0 = alice.events.length;
    const b0 = bob.events.length;
    const t0 = Date.now();
    const fid = await alice.ok(['send-file', bob.id, big]);
    const bf = await bob.waitEvent((e) => e.event === 'file_failed' && e.file_id === fid, 60000, b0);
    const af = await alice.waitEvent((e) => e.event === 'file_failed' && e.file_id === fid, 30000, a0);
    const failMs = Date.now() - t0;
    assert.equal(bf.direction, 'in');
    assert.match(bf.error, /disk is full/);
    assert.match(bf.error, /No space left on device/);
    assert.match(bf.error, /partial file was removed/);
    assert.equal(af.direction, 'out');
    assert.match(af.error, /receiver's disk is full/);
    const row = JSON.parse(await bob.ok(['files', alice.id, '--json'])).files.find((x) => x.file_id === fid);
    assert.equal(row.state, 'failed');
    assert.deepEqual((await readdir(files)).filter((n) => n.includes(fid)), [], 'no partial file left');
    const sent = JSON.parse(await alice.ok(['files', bob.id, '--json'])).files.find((x) => x.file_id === fid);
    assert.ok(['cancelled', 'failed'].includes(sent.state), `sender's row: ${sent.state}`);

    // chat still works
    const id = await alice.ok(['send', bob.id, 'after the full disk']);
    await bob.waitEvent((e) => e.event === 'message' && e.id === id, 20000, b0);

    // the space came back with the removed part: a smaller file fits
    const small = path.join(c.dir, 'small.bin');
    const data = randomBytes(3 * MiB);
    await writeFile(small, data);
    const fid2 = await alice.ok(['send-file', bob.id, small]);
    const done = await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid2, 60000, b0);
    assert.equal(done.sha256, await sha256(data));
    assert.equal(await sha256(await readFile(done.path)), done.sha256);
    alive(alice);
    alive(bob);
    console.log(`# full disk: a 16 MiB file into 8 MiB failed on both sides after ${failMs} ms; a 3 MiB file then arrived`);
  });

  it('the history database cannot be written (SQLITE_FULL): no receipt, the sender sends again, nothing lost or doubled', async () => {
    const warm = await alice.ok(['send', carol.id, 'warm-up']);
    await carol.waitEvent((e) => e.event === 'message' && e.id === warm, 30000);
    const a0 = alice.events.length;
    const c0 = carol.events.length;
    const filler = await fill(carol.home);
    let ids = [];
    try {
      for (let i = 0; i < 3; i++) ids.push(await alice.ok(['send', carol.id, `disk full ${i}`]));
      const e = await carol.waitEvent((x) => x.event === 'error' && /cannot store/.test(x.message), 30000, c0);
      assert.match(e.message, /full/, e.message);
      console.log(`# carol was told: ${e.message}`);
      await sleep(1500);
      for (const id of ids) {
        assert.equal(carol.all((x) => x.event === 'message' && x.id === id).length, 0, 'not shown: not stored');
        assert.equal(alice.all((x) => x.event === 'status' && x.id === id && x.status === 'delivered').length, 0,
          'no receipt for a message that was not stored');
      }
    } finally {
      await unlink(filler);
    }
    // the sender's outbox sends again on the live link (every 20 s)
    const t0 = Date.now();
    for (const id of ids) {
      await carol.waitEvent((x) => x.event === 'message' && x.id === id, 60000, c0);
      await alice.waitEvent((x) => x.event === 'status' && x.id === id && x.status === 'delivered', 60000, a0);
    }
    const recoverMs = Date.now() - t0;
    await sleep(1500);
    for (const id of ids) assert.equal(carol.all((x) => x.event === 'message' && x.id === id).length, 1);
    const hist = (await history(carol, alice)).map((m) => m.text);
    assert.deepEqual(hist.slice(-3), ['disk full 0', 'disk full 1', 'disk full 2']);
    alive(carol);
    console.log(`# history disk full: 3 messages refused without receipt, stored once ${recoverMs} ms after space came back`);
  });
});

describe('echolink: a damaged history database at startup', { skip: SKIP }, () => {
  let c, dave;
  before(async () => {
    c = await startCluster();
    dave = await c.client('dave');
    await dave.ok(['peers']); // makes history.db
  });
  after(async () => {
    await c?.cleanup();
  });

  for (const [name, damage] of [
    ['garbage', async (db) => writeFile(db, randomBytes(64 * 1024))],
    ['truncated', async (db) => { const s = await stat(db); execFileSync('truncate', ['-s', String(Math.floor(s.size / 2)), db]); }],
    ['a page overwritten', async (db) => { const fh = await open(db, 'r+'); await fh.write(Buffer.alloc(4096, 0xa5), 0, 4096, 4 * 4096); await fh.close(); }],
  ]) {
    it(`${name}: a clear error and exit code 74, the file is left as it was`, async () => {
      const db = path.join(dave.home, 'default', 'history.db');
      const good = await readFile(db);
      try {
        await damage(db);
        const damaged = await readFile(db);
        for (const args of [['history', dave.id], ['listen', '--json']]) {
          const r = await dave.run(args, { timeout: 20000 });
          assert.equal(r.code, 74, `echolink ${args[0]}: exit ${r.code} ${r.signal}\n${r.stderr}`);
          assert.match(r.stderr, /history ".*history\.db" is damaged/);
          assert.match(r.stderr, /move it aside/);
          assert.doesNotMatch(r.stderr, /AddressSanitizer|runtime error/);
          assert.ok((await readFile(db)).equals(damaged), 'the damaged file was not touched');
        }
      } finally {
        await writeFile(db, good);
      }
      await dave.ok(['peers']); // the restored file works again
    });
  }
});
