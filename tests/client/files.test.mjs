// files.test.mjs - big files between real `echolink` processes: a 200 MiB
// transfer arrives with the right SHA-256 in bounded memory while chat stays
// responsive, and a receiver killed with SIGKILL mid-transfer resumes where
// it stopped after a restart. Exercises src/client/session_file.c (offers,
// FILE_ACCEPT/resume, streaming with backpressure, completion, cancel) over
// src/client/xfer.c, end to end.
//
//   tests/harness/netns.sh run node --test tests/client/files.test.mjs
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startCluster } from './lib/cluster.mjs';

const MiB = 1024 * 1024;

/** Writes `size` pseudo-random bytes (a repeated random 1 MiB block, each
 *  copy tagged with its index so no two blocks are equal); returns its hash. */
async function makeFile(file, size) {
  const block = randomBytes(MiB);
  const h = createHash('sha256');
  const fh = await open(file, 'w');
  for (let off = 0, i = 0; off < size; off += MiB, i++) {
    block.writeUInt32BE(i, 0);
    const part = block.subarray(0, Math.min(MiB, size - off));
    h.update(part);
    await fh.write(part);
  }
  await fh.close();
  return h.digest('hex');
}

async function sha256File(file) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

async function stats(client) {
  return JSON.parse(await client.ok(['stats', '--json'])).stats;
}

describe('echolink: big files', { skip: SKIP }, () => {
  let c, alice, bob;
  // ASan keeps freed memory in quarantine (256 MiB by default), which would
  // hide what RSS says about the receiver's buffers
  const env = { ASAN_OPTIONS: 'quarantine_size_mb=8:detect_leaks=0' };
  before(async () => {
    c = await startCluster();
    alice = await c.client('alice');
    bob = await c.client('bob', { remote: true });
    await c.befriend(alice, bob);
    await alice.listen({ env });
    await bob.listen({ env });
  });
  after(async () => {
    await c?.cleanup();
  });

  it('200 MiB, SHA-256 verified, bounded memory, chat answered during the transfer', async () => {
    const size = 200 * MiB;
    const src = path.join(c.dir, 'big.bin');
    const sum = await makeFile(src, size);
    const from = bob.events.length;
    const fid = await alice.ok(['send-file', bob.id, src]);
    await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === fid && e.bytes >= 16 * MiB, 60000, from);
    const early = await stats(bob);
    // chat while the file flows: it has its own channel, so it does not wait
    const lat = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      await alice.ok(['send', bob.id, `during transfer ${i}`]);
      const m = await bob.waitEvent((e) => e.event === 'message' && e.text === `during transfer ${i}`, 10000, from);
      lat.push(m.at - t0);
      await sleep(200);
    }
    const mid = await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === fid, 1000, from);
    assert.ok(mid.bytes < size, 'the chat test ran while the file was still in flight');
    const done = await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid, 240000, from);
    assert.equal(done.sha256, sum);
    assert.equal((await stat(done.path)).size, size);
    assert.equal(await sha256File(done.path), sum);
    for (const l of lat) assert.ok(l < 2000, `chat took ${l} ms during the transfer`);
    const late = await stats(bob);
    const sent = await stats(alice);
    // the receiver writes each chunk as it comes: nothing is held back
    assert.equal(late.file_buffered_max, 0);
    assert.ok(late.rss_kb - early.rss_kb < 96 * 1024,
      `receiver RSS grew by ${late.rss_kb - early.rss_kb} KiB over 180 MiB`);
    // the sender reads from disk only while the channel holds < 1 MiB
    assert.ok(sent.file_buffered_max <= 1 * MiB + 128 * 1024, `sender buffered ${sent.file_buffered_max}`);
    assert.ok(sent.file_bytes_out >= size);
    console.log(`# chat latency during a 200 MiB transfer: ${lat.join(', ')} ms; ` +
      `receiver RSS ${early.rss_kb} -> ${late.rss_kb} KiB; sender peak buffer ${sent.file_buffered_max} B`);
  });

  it('a receiver killed with SIGKILL mid-transfer resumes after its restart', async () => {
    const size = 64 * MiB;
    const src = path.join(c.dir, 'resume.bin');
    const sum = await makeFile(src, size);
    const before = (await stats(alice)).file_bytes_out;
    const from = bob.events.length;
    const fid = await alice.ok(['send-file', bob.id, src]);
    await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === fid && e.bytes >= 24 * MiB, 60000, from);
    await bob.stop('SIGKILL');
    await sleep(500);
    const again = bob.events.length;
    await bob.listen({ env });
    const done = await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid, 120000, again);
    assert.equal(done.sha256, sum);
    assert.equal(await sha256File(done.path), sum);
    const progress = bob.all((e) => e.event === 'file_progress' && e.file_id === fid && e.at >= bob.events[again].at);
    assert.ok(progress.length > 0 && progress[0].bytes > 24 * MiB,
      `resumed from ${progress[0]?.bytes}, not from the start`);
    const out = (await stats(alice)).file_bytes_out - before;
    assert.ok(out < size * 1.4, `the sender sent ${out} bytes for a ${size}-byte file: it started over`);
    await alice.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid && e.direction === 'out', 20000);
  });

  it('a sender killed with SIGKILL mid-transfer resumes after its restart', async () => {
    const size = 64 * MiB;
    const src = path.join(c.dir, 'resume-sender.bin');
    const sum = await makeFile(src, size);
    const from = bob.events.length;
    const fid = await alice.ok(['send-file', bob.id, src]);
    await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === fid && e.bytes >= 24 * MiB, 60000, from);
    await alice.stop('SIGKILL');
    await sleep(500);
    const a0 = alice.events.length;
    await alice.listen({ env });
    const done = await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid, 120000, from);
    assert.equal(done.sha256, sum);
    assert.equal(await sha256File(done.path), sum);
    await alice.waitEvent((e) => e.event === 'file_complete' && e.file_id === fid && e.direction === 'out', 30000, a0);
    const sent = (await stats(alice)).file_bytes_out;
    assert.ok(sent < size * 0.8, `the restarted sender sent ${sent} bytes of ${size}: it started over`);
  });

  it('a cancelled transfer stops on both sides and leaves no partial file', async () => {
    const src = path.join(c.dir, 'cancel.bin');
    await makeFile(src, 100 * MiB);
    const from = bob.events.length;
    const fid = await alice.ok(['send-file', bob.id, src]);
    await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === fid, 60000, from);
    await bob.ok(['cancel-file', fid]);
    const f = await alice.waitEvent((e) => e.event === 'file_failed' && e.file_id === fid, 20000);
    assert.match(f.error, /cancelled/);
    const files = JSON.parse(await bob.ok(['files', alice.id, '--json'])).files;
    assert.equal(files.find((x) => x.file_id === fid).state, 'cancelled');
    await assert.rejects(stat(path.join(bob.home, 'default', 'files', `.${fid}.part`)));
  });
});
