// e2ee.test.mjs - the E2EE session (src/client/secure, PROTOCOL.md §9) over
// real data channels between el_peer_tool processes: the Noise XX handshake
// bound to both DTLS fingerprints, encrypted messages on chat and on a file
// channel, forged frames refused and counted, a peer that is not the one
// expected, and a man in the middle that terminates DTLS toward each side
// with its own certificate (what a signaling server that rewrites the SDP
// fingerprints can do): both peers must refuse it and send nothing.
//
//   tests/harness/netns.sh run node --test tests/interop/e2ee.test.mjs
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import {
  NETNS_ADDR, SOURCE_DIR, fromB64, killAllPeerTools, negotiate, sleep, startPeerTool, toB64, trickleBetween,
} from '../js/lib/peertool.mjs';

const SKIP = NETNS_ADDR ? false : 'not inside a test network namespace (run through tests/harness/netns.sh)';
const VEC = JSON.parse(readFileSync(path.join(SOURCE_DIR, 'tests/vectors/identity.json'), 'utf8')).vectors;
const [ALICE, BOB, CAROL] = VEC;
const keys = (v) => ({ ik_seed_hex: v.ik_seed_hex, sk_private_hex: v.sk_private_hex });

const tools = [];
async function tool(name) {
  const t = await startPeerTool({ name });
  tools.push(t);
  return t;
}

/** Offer from `off` (which has created its channels) to `ans`, trickling. */
async function connect(off, ans) {
  await negotiate(off, ans, trickleBetween(off, ans));
}

/** A secured pair: `a` (initiator) as `ida` expecting `idb`'s peer, etc. */
async function securePair(ida, idb, { expectA = idb.peer_id, expectB = ida.peer_id, extraA = {} } = {}) {
  const a = await tool('A');
  const b = await tool('B');
  a.strict = false;
  b.strict = false;
  a.send({ op: 'secure', ...keys(ida), expect: expectA, initiator: true, timeout_ms: 5000, ...extraA });
  b.send({ op: 'secure', ...keys(idb), expect: expectB, initiator: false, timeout_ms: 5000 });
  a.send({ op: 'channel', label: 'chat' });
  await connect(a, b);
  return { a, b };
}

const plainText = (e) => {
  const pt = fromB64(e.b64);
  assert.equal(pt[0], 0x01);
  return pt.subarray(1).toString('utf8');
};

describe('E2EE session between two C peers', { skip: SKIP }, () => {
  after(async () => {
    for (const t of tools) await t.quit();
    killAllPeerTools();
  });

  it('handshake, then encrypted messages both ways on chat and on a file channel', async () => {
    const { a, b } = await securePair(ALICE, BOB);
    const ra = await a.waitFor('secure_ready', () => true, 15000);
    const rb = await b.waitFor('secure_ready', () => true, 15000);
    assert.equal(ra.peer_id, BOB.peer_id);
    assert.equal(ra.ik, BOB.ik);
    assert.equal(ra.sk, BOB.sk);
    assert.equal(rb.peer_id, ALICE.peer_id);
    assert.equal(rb.ik, ALICE.ik);

    const msgs = ['{"t":"CHAT","text":"hi bob"}', '{"t":"CHAT","text":"é ✓"}'];
    for (const m of msgs) a.send({ op: 'ssend', label: 'chat', text: m });
    const got = await b.collect('plain', 2, (e) => e.label === 'chat');
    assert.deepEqual(got.map(plainText), msgs);
    b.send({ op: 'ssend', label: 'chat', text: '{"t":"CHAT","text":"hi alice"}' });
    assert.equal(plainText(await a.waitFor('plain')), '{"t":"CHAT","text":"hi alice"}');

    // a file channel: fresh f: label, keyed on both sides, binary chunk plaintexts
    a.send({ op: 'sopen' });
    const opened = await a.waitFor('sopen', () => true, 10000);
    assert.match(opened.label, /^f:[0-9a-f]{32}$/);
    await b.waitFor('sopen', (e) => e.label === opened.label, 10000);
    const chunk = Buffer.concat([Buffer.from([0x02]), Buffer.alloc(16, 7), Buffer.alloc(8), Buffer.alloc(16384, 0xab)]);
    a.send({ op: 'ssend', label: opened.label, b64: toB64(chunk) });
    const c = await b.waitFor('plain', (e) => e.label === opened.label);
    assert.deepEqual(fromB64(c.b64), chunk);

    // forged frames written raw on chat: each refused and counted, nothing delivered
    const frame = (n, len = 40) => {
      const f = Buffer.alloc(len, 0x5a);
      f[0] = 0x10;
      f.writeBigUInt64BE(BigInt(n), 1);
      return f;
    };
    a.send({ op: 'send', label: 'chat', b64: toB64(Buffer.from([0x10, 0, 0])) }); // truncated
    a.send({ op: 'send', label: 'chat', b64: toB64(frame(0)) });                   // replay (n below 2)
    a.send({ op: 'send', label: 'chat', b64: toB64(frame(1000)) });                // reorder (gap)
    a.send({ op: 'send', label: 'chat', b64: toB64(frame(2)) });                   // right n, bad tag
    a.send({ op: 'send', label: 'chat', text: 'plain text is never valid' });
    // a genuine message afterwards still gets through: the state did not move
    a.send({ op: 'ssend', label: 'chat', text: '{"t":"CHAT","text":"after"}' });
    assert.equal(plainText(await b.waitFor('plain', (e) => e.label === 'chat')), '{"t":"CHAT","text":"after"}');
    b.send({ op: 'sstats' });
    const st = await b.waitFor('sstats');
    assert.deepEqual([st.truncated, st.replay, st.reorder, st.auth, st.text], [1, 1, 1, 1, 1]);
    assert.equal(b.events.filter((e) => e.ev === 'plain').length, 4);
  });

  it('a full send queue refuses frames without spending their counters: what follows still arrives', async () => {
    const { a, b } = await securePair(ALICE, BOB);
    await a.waitFor('secure_ready', () => true, 15000);
    await b.waitFor('secure_ready', () => true, 15000);
    b.send({ op: 'sink', on: true });
    // 400 x 60 KB in one loop turn: more than the 16 MiB the connection queues
    a.send({ op: 'sburst', label: 'chat', count: 400, bytes: 60000 });
    const burst = await a.waitFor('sburst', () => true, 30000);
    assert.ok(burst.quota > 0, `the queue never filled: ${JSON.stringify(burst)}`);
    assert.equal(burst.other, 0);
    assert.equal(burst.sent + burst.quota, 400);
    // everything taken arrives, and so does every frame after the refusals
    a.send({ op: 'sburst', label: 'chat', count: 3, bytes: 1000 });
    const more = await a.waitFor('sburst', () => true, 30000);
    assert.deepEqual([more.sent, more.quota, more.other], [3, 0, 0]);
    const want = burst.sent + 3;
    let st;
    for (let i = 0; i < 300; i++) {
      b.send({ op: 'stats' });
      st = await b.waitFor('stats');
      if (st.messages >= want) break;
      await sleep(100);
    }
    assert.equal(st.messages, want, 'B decrypted every frame A was allowed to send');
    b.send({ op: 'sstats' });
    const ss = await b.waitFor('sstats');
    assert.deepEqual([ss.reorder, ss.replay, ss.auth], [0, 0, 0]);
  });

  it('a peer that is not the one expected is refused by both sides', async () => {
    // alice wanted carol; bob answers (a signaling server sending her elsewhere)
    const { a, b } = await securePair(ALICE, BOB, { expectA: CAROL.peer_id });
    const fa = await a.waitFor('secure_failed', () => true, 15000);
    assert.match(fa.error, /identity mismatch/);
    const fb = await b.waitFor('secure_failed', () => true, 15000);
    assert.match(fb.error, /peer aborted/);
    a.send({ op: 'ssend', label: 'chat', text: 'must not go out' });
    await a.waitFor('error', (e) => /ssend failed/.test(e.message));
  });

  it('a pinned peer whose key changed is held until the user accepts, then nothing is lost', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'el-trust-'));
    try {
      const trust = { trust_db: path.join(dir, 'trust.db') };
      // first contact: bob's bundle is pinned
      let { a, b } = await securePair(ALICE, BOB, { extraA: trust });
      assert.equal((await a.waitFor('secure_ready', () => true, 15000)).trust, 'new');
      await a.quit();
      await b.quit();
      // same contact again: known
      ({ a, b } = await securePair(ALICE, BOB, { extraA: trust }));
      assert.equal((await a.waitFor('secure_ready', () => true, 15000)).trust, 'known');
      await a.quit();
      await b.quit();
      // bob comes back with a new static key (same ik, so the same peer ID)
      const bob2 = { ...BOB, sk_private_hex: CAROL.sk_private_hex };
      ({ a, b } = await securePair(ALICE, bob2, { extraA: trust }));
      const kc = await a.waitFor('key_changed', () => true, 15000);
      assert.equal(kc.pinned_sk, BOB.sk);
      assert.notEqual(kc.presented_sk, BOB.sk);
      await b.waitFor('secure_ready', () => true, 15000); // bob has no reason to doubt
      b.send({ op: 'ssend', label: 'chat', text: '{"t":"CHAT","text":"new phone"}' });
      // bob also starts a file meanwhile: its frames wait with the chat
      b.send({ op: 'sopen' });
      const file = (await b.waitFor('sopen', () => true, 10000)).label;
      const chunk = (i) => Buffer.concat([Buffer.from([0x02]), Buffer.alloc(24, i), Buffer.alloc(1000, 0x40 + i)]);
      for (const i of [1, 2]) b.send({ op: 'ssend', label: file, b64: toB64(chunk(i)) });
      a.send({ op: 'ssend', label: 'chat', text: 'must not go out' });
      await a.waitFor('error', (e) => /ssend failed/.test(e.message));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(a.events.filter((e) => e.ev === 'secure_ready' || e.ev === 'plain').length, 0,
        'nothing is delivered while the change is pending');
      a.send({ op: 'saccept' });
      assert.equal((await a.waitFor('secure_ready', () => true, 5000)).trust, 'known');
      assert.equal(plainText(await a.waitFor('plain', (e) => e.label === 'chat', 5000)), '{"t":"CHAT","text":"new phone"}');
      await a.waitFor('sopen', (e) => e.label === file, 5000);
      b.send({ op: 'ssend', label: file, b64: toB64(chunk(3)) });
      const got = await a.collect('plain', 3, (e) => e.label === file);
      assert.deepEqual(got.map((e) => fromB64(e.b64)), [chunk(1), chunk(2), chunk(3)],
        'the file\'s frames from before the accept, then the next one');
      a.send({ op: 'ssend', label: 'chat', text: '{"t":"CHAT","text":"ok"}' });
      assert.equal(plainText(await b.waitFor('plain', () => true, 5000)), '{"t":"CHAT","text":"ok"}');
      await a.quit();
      await b.quit();
      // and the new key is the pin from now on
      ({ a, b } = await securePair(ALICE, bob2, { extraA: trust }));
      assert.equal((await a.waitFor('secure_ready', () => true, 15000)).trust, 'known');
      await a.quit();
      await b.quit();
      // a third key, and bob refuses alice (he expected carol): the held
      // session ends with his ABORT, and nothing is ever delivered
      const bob3 = { ...BOB, sk_private_hex: ALICE.sk_private_hex };
      ({ a, b } = await securePair(ALICE, bob3, { extraA: trust, expectB: CAROL.peer_id }));
      await a.waitFor('key_changed', () => true, 15000);
      assert.match((await a.waitFor('secure_failed', () => true, 15000)).error, /peer aborted: identity mismatch/);
      a.send({ op: 'saccept' });
      await a.waitFor('error', (e) => /no key change is pending/.test(e.message));
      assert.equal(a.events.filter((e) => e.ev === 'secure_ready' || e.ev === 'plain').length, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a DTLS-terminating man in the middle is refused by both peers', async () => {
    const a = await tool('A');
    const m1 = await tool('M1'); // answers alice, with its own certificate
    const m2 = await tool('M2'); // offers to bob, with another certificate
    const b = await tool('B');
    for (const t of [a, m1, m2, b]) t.strict = false;
    a.send({ op: 'secure', ...keys(ALICE), expect: BOB.peer_id, initiator: true, timeout_ms: 4000 });
    b.send({ op: 'secure', ...keys(BOB), expect: ALICE.peer_id, initiator: false, timeout_ms: 4000 });
    // the relay copies every chat message between its two connections
    let relayed = 0;
    m1.subscribe('message', (e) => { relayed++; m2.send({ op: 'send', label: 'chat', b64: e.b64 }); });
    m2.subscribe('message', (e) => { relayed++; m1.send({ op: 'send', label: 'chat', b64: e.b64 }); });
    // bob's side first, so that the relay can forward alice's first message
    m2.send({ op: 'channel', label: 'chat' });
    await connect(m2, b);
    await m2.waitFor('open', (e) => e.label === 'chat', 15000);
    a.send({ op: 'channel', label: 'chat' });
    await connect(a, m1);

    const fa = await a.waitFor('secure_failed', () => true, 15000);
    assert.equal(fa.error, 'identity/channel binding mismatch');
    const fb = await b.waitFor('secure_failed', () => true, 15000);
    assert.match(fb.error, /identity\/channel binding mismatch|timed out/);
    assert.ok(relayed >= 2, 'the relay did carry the handshake');
    assert.equal(a.events.filter((e) => e.ev === 'secure_ready').length, 0);
    assert.equal(b.events.filter((e) => e.ev === 'secure_ready').length, 0);
    a.send({ op: 'ssend', label: 'chat', text: 'secret' });
    await a.waitFor('error', (e) => /ssend failed/.test(e.message));
  });
});
