// files.test.mjs - large files between two browsers stream to disk: the
// receiver writes each chunk into a file of the Origin Private File System
// (web/lib/filestore.js) instead of keeping it in memory, in headless
// Chromium against a real echolinkd, inside network namespaces:
//
//   1. 64 MiB browser -> browser: file_complete carries the right SHA-256,
//      file_blob hands out the OPFS file itself (right size and hash), and
//      the receiver's JS heap (V8 heap + ArrayBuffer backing stores, from
//      CDP Runtime.getHeapUsage) grows by far less than the file;
//   2. the receiver reloads its page mid-transfer: the transfer resumes
//      from the bytes on disk (the sender sends < 1.5 x the size) and
//      completes with the right bytes;
//   3. a cancel, by the receiver or by the sender, removes the partial file;
//   4. deleting a file message removes the received file.
//
//   tests/harness/netns.sh run node --test tests/web/files.test.mjs
// (ECHOLINKD, ECHOLINK, CHROMIUM, EL_SOURCE_DIR as in tests/CMakeLists.txt's
// el_web_test)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startWeb } from './lib/browser.mjs';

const MiB = 1 << 20;
const BIG = 64 * MiB;
const HEAP_LIMIT = 32 * MiB;

/** Makes `size` random bytes in the sender's page, 64 KiB at a time, into a
 *  Blob (hashed on the way with the vendored noble sha256) and sends it:
 *  {file_id, sha256}. The whole file is never one ArrayBuffer. */
async function sendGenerated(user, to, name, size) {
  const r = await user.page.evaluate(async ({ to, name, size }) => {
    const { sha256 } = await import('/vendor/noble-hashes/sha256.js');
    const h = sha256.create();
    const parts = [];
    for (let o = 0; o < size; o += 65536) {
      const b = crypto.getRandomValues(new Uint8Array(Math.min(65536, size - o)));
      h.update(b);
      parts.push(b);
    }
    const file = new File(parts, name, { type: 'application/octet-stream' });
    parts.length = 0;
    const hex = Array.from(h.digest(), (x) => x.toString(16).padStart(2, '0')).join('');
    const sent = await window.EL.request({ cmd: 'send_file', to, file });
    return { ...sent, sha256: hex };
  }, { to, name, size });
  assert.equal(r.ok, true, JSON.stringify(r));
  return r;
}

/** file_blob in the receiver's page, hashed there 1 MiB slice at a time. */
function blobDigest(user, fileId) {
  return user.page.evaluate(async (id) => {
    const { sha256 } = await import('/vendor/noble-hashes/sha256.js');
    const r = await window.EL.request({ cmd: 'file_blob', file_id: id });
    if (!r.ok) return r;
    const h = sha256.create();
    for (let o = 0; o < r.blob.size; o += 1 << 20) h.update(new Uint8Array(await r.blob.slice(o, o + (1 << 20)).arrayBuffer()));
    return { ok: true, size: r.blob.size, isFile: r.blob instanceof File, fileName: r.blob.name ?? null,
      sha256: Array.from(h.digest(), (x) => x.toString(16).padStart(2, '0')).join(''), name: r.name, mime: r.mime };
  }, fileId);
}

/** The size of the OPFS file of `fileId` in the user's page, read straight
 *  from the Origin Private File System; null when there is none. */
function opfsSize(user, fileId) {
  return user.page.evaluate(async ({ id, dbName }) => {
    try {
      const root = await navigator.storage.getDirectory();
      const top = await root.getDirectoryHandle('echolink-files');
      const dir = await top.getDirectoryHandle(encodeURIComponent(dbName));
      return (await (await dir.getFileHandle(id)).getFile()).size;
    } catch (e) {
      if (e.name === 'NotFoundError') return null;
      throw e;
    }
  }, { id: fileId, dbName: user.dbName });
}

async function statsOf(user) {
  return (await user.ok({ cmd: 'stats' })).stats;
}

/** Samples the memory the page's JS keeps (V8 heap + ArrayBuffer backing
 *  stores, after a full GC so that garbage not collected yet does not
 *  count) through CDP until stop(); resolves {base, peak}. */
async function heapSampler(page) {
  const cdp = await page.context().newCDPSession(page);
  const kept = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const u = await cdp.send('Runtime.getHeapUsage');
    return u.usedSize + (u.backingStorageSize || 0);
  };
  const base = await kept();
  let peak = base;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        peak = Math.max(peak, await kept());
      } catch {
        break; // the page went away: the test reports why
      }
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      peak = Math.max(peak, await kept());
      await cdp.detach().catch(() => {});
      return { base, peak };
    },
  };
}

describe('web files: large files stream to disk (OPFS)', { skip: SKIP }, () => {
  let w, alice, bob;
  let bigFile = null; // the file of the first test, deleted in the last

  before(async () => {
    w = await startWeb();
    alice = await w.user('alice');
    bob = await w.user('bob');
    await alice.waitEvent((e) => e.event === 'login');
    await bob.waitEvent((e) => e.event === 'login');
    await w.befriend(alice, bob);
    // a first message makes the connection, so the transfers below start at once
    const s = await alice.ok({ cmd: 'send', to: `p:${bob.id}`, text: 'files coming' });
    await bob.waitEvent((e) => e.event === 'message' && e.id === s.msg_id, 30000);
  });

  after(async () => {
    if (process.exitCode) console.log(w?.tails());
    await w?.close();
  });

  it('64 MiB browser to browser: right hash, file_blob is the OPFS file, bounded heap', async () => {
    const fb = bob.events.length;
    const sampler = await heapSampler(bob.page);
    const out = await sendGenerated(alice, `p:${bob.id}`, 'big.bin', BIG);
    const offer = await bob.waitEvent((e) => e.event === 'file_offer' && e.file_id === out.file_id, 60000, fb);
    assert.equal(offer.size, BIG);
    // mid-transfer the bytes are already on disk
    await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === out.file_id && e.bytes >= 16 * MiB, 120000, fb);
    const partial = await opfsSize(bob, out.file_id);
    assert.ok(partial !== null && partial > 0, `an OPFS file grows during the transfer (size ${partial})`);
    const done = await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === out.file_id, 180000, fb);
    const { base, peak } = await sampler.stop();
    assert.equal(done.direction, 'in');
    assert.equal(done.sha256, out.sha256, 'file_complete carries the SHA-256 of the bytes sent');
    const growth = peak - base;
    console.log(`receiver heap: base ${(base / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB for a ${BIG / MiB} MiB file`);
    assert.ok(growth < HEAP_LIMIT, `the receiver's heap grew by ${growth} bytes (limit ${HEAP_LIMIT})`);

    const dig = await blobDigest(bob, out.file_id);
    assert.equal(dig.ok, true, JSON.stringify(dig));
    assert.equal(dig.size, BIG);
    assert.equal(dig.sha256, out.sha256, 'file_blob holds the bytes sent');
    assert.equal(dig.isFile, true);
    assert.equal(dig.fileName, out.file_id, 'file_blob is the OPFS file named after the file_id');
    assert.equal(dig.name, 'big.bin');
    assert.equal(dig.mime, 'application/octet-stream');
    assert.equal(await opfsSize(bob, out.file_id), BIG);
    await alice.waitEvent((e) => e.event === 'file_complete' && e.file_id === out.file_id && e.direction === 'out', 20000);
    bigFile = out;
  });

  it('the receiver reloads mid-transfer: it resumes from the bytes on disk and completes', async () => {
    const before = await statsOf(alice);
    const fb = bob.events.length;
    const out = await sendGenerated(alice, `p:${bob.id}`, 'resumed.bin', BIG);
    const mid = await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === out.file_id && e.bytes >= BIG / 4, 120000, fb);
    assert.ok(mid.bytes < BIG, 'still transferring when the page reloads');
    const fr = bob.events.length;
    await bob.reload();
    // what the reloaded page found on disk is where the transfer goes on
    const kept = await opfsSize(bob, out.file_id);
    assert.ok(kept !== null && kept > 0, `bytes received before the reload are on disk (${kept})`);
    const done = await bob.waitEvent((e) => e.event === 'file_complete' && e.file_id === out.file_id, 180000, fr);
    assert.equal(done.sha256, out.sha256);
    const dig = await blobDigest(bob, out.file_id);
    assert.equal(dig.ok, true, JSON.stringify(dig));
    assert.equal(dig.size, BIG);
    assert.equal(dig.sha256, out.sha256, 'the resumed file holds the bytes sent');
    await alice.waitEvent((e) => e.event === 'file_complete' && e.file_id === out.file_id && e.direction === 'out', 20000);
    const sent = (await statsOf(alice)).file_bytes_out - before.file_bytes_out;
    console.log(`resume: ${(kept / MiB).toFixed(1)} MiB kept over the reload, ${(sent / MiB).toFixed(1)} MiB sent for a ${BIG / MiB} MiB file`);
    assert.ok(sent >= BIG, `the sender sent at least the file (${sent})`);
    assert.ok(sent < 1.5 * BIG, `not from 0 again: the sender sent ${sent} bytes for ${BIG}`);
  });

  it('a cancel removes the partial file, whichever side cancels', async () => {
    // the receiver cancels
    let fb = bob.events.length;
    const a = await sendGenerated(alice, `p:${bob.id}`, 'cancel-in.bin', BIG);
    await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === a.file_id && e.bytes >= 4 * MiB, 120000, fb);
    assert.ok((await opfsSize(bob, a.file_id)) > 0, 'the partial file is on disk');
    const fa = alice.events.length;
    await bob.ok({ cmd: 'cancel_file', file_id: a.file_id, reason: 'enough' });
    const failed = await bob.waitEvent((e) => e.event === 'file_failed' && e.file_id === a.file_id, 10000, fb);
    assert.equal(failed.direction, 'in');
    assert.equal(await opfsSize(bob, a.file_id), null, 'the receiver\'s cancel removed the partial file');
    await alice.waitEvent((e) => e.event === 'file_failed' && e.file_id === a.file_id && e.direction === 'out', 20000, fa);
    const blobA = await bob.request({ cmd: 'file_blob', file_id: a.file_id });
    assert.equal(blobA.ok, false);

    // the sender cancels
    fb = bob.events.length;
    const b = await sendGenerated(alice, `p:${bob.id}`, 'cancel-out.bin', BIG);
    await bob.waitEvent((e) => e.event === 'file_progress' && e.file_id === b.file_id && e.bytes >= 4 * MiB, 120000, fb);
    assert.ok((await opfsSize(bob, b.file_id)) > 0, 'the partial file is on disk');
    await alice.ok({ cmd: 'cancel_file', file_id: b.file_id });
    const failedB = await bob.waitEvent((e) => e.event === 'file_failed' && e.file_id === b.file_id, 20000, fb);
    assert.match(failedB.error, /cancelled by the peer/);
    assert.equal(await opfsSize(bob, b.file_id), null, 'the sender\'s cancel removed the receiver\'s partial file');
  });

  it('deleting a file message removes the received file', async () => {
    assert.ok(bigFile, 'the first test sent a file');
    assert.equal(await opfsSize(bob, bigFile.file_id), BIG);
    const hist = (await alice.ok({ cmd: 'history', conv: `p:${bob.id}`, limit: 100 })).messages;
    const row = hist.find((m) => m.file?.file_id === bigFile.file_id);
    assert.ok(row, 'the sender has the file message');
    const fb = bob.events.length;
    await alice.ok({ cmd: 'delete', conv: `p:${bob.id}`, target: row.id });
    await bob.waitEvent((e) => e.event === 'delete' && e.target === row.id, 20000, fb);
    const deadline = Date.now() + 10000;
    while ((await opfsSize(bob, bigFile.file_id)) !== null && Date.now() < deadline) await sleep(100);
    assert.equal(await opfsSize(bob, bigFile.file_id), null, 'the received file is gone');
    const r = await bob.request({ cmd: 'file_blob', file_id: bigFile.file_id });
    assert.equal(r.ok, false);
    const mine = await alice.request({ cmd: 'file_blob', file_id: bigFile.file_id });
    assert.equal(mine.ok, false, 'the sender no longer keeps the source either');
  });
});
