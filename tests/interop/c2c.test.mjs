// c2c.test.mjs - libecholink against itself across two processes: two
// el_peer_tool processes in the test's network namespace, signaled through
// this test. Complements tests/unit/test_peer.c (one process).
//
//   tests/harness/netns.sh run node --test tests/interop/c2c.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  NETNS_ADDR, killAllPeerTools, negotiate, startPeerTool, fromB64, toB64, trickleBetween,
} from '../js/lib/peertool.mjs';

const SKIP = NETNS_ADDR ? false : 'not inside a test network namespace (run through tests/harness/netns.sh)';

describe('C to C across two processes', { skip: SKIP }, () => {
  let a, b;
  before(async () => {
    a = await startPeerTool({ name: 'A' });
    b = await startPeerTool({ name: 'B' });
    const remoteSet = trickleBetween(a, b);
    a.send({ op: 'channel', label: 'chat' });
    for (let i = 0; i < 8; i++) a.send({ op: 'channel', label: `ch${i}`, ordered: i % 2 === 0 });
    await negotiate(a, b, remoteSet);
    await a.waitState('connected');
    await b.waitState('connected');
    await a.waitFor('open', (e) => e.label === 'chat');
    await b.waitFor('channel', (e) => e.label === 'chat');
  });
  after(async () => {
    await a?.quit();
    await b?.quit();
    killAllPeerTools();
  });

  it('text and binary both ways, including empty messages', async () => {
    a.send({ op: 'send', label: 'chat', text: 'héllo' });
    a.send({ op: 'send', label: 'chat', text: '' });
    const got = await b.collect('message', 2, (e) => e.label === 'chat');
    assert.deepEqual(got.map((e) => [e.binary, e.text]), [[false, 'héllo'], [false, '']]);
    const bytes = Buffer.from([0, 1, 2, 255]);
    b.send({ op: 'send', label: 'chat', b64: toB64(bytes) });
    b.send({ op: 'send', label: 'chat', b64: '' });
    const back = await a.collect('message', 2, (e) => e.label === 'chat');
    assert.deepEqual(back.map((e) => [e.binary, fromB64(e.b64)]), [[true, bytes], [true, Buffer.alloc(0)]]);
  });

  it('8 channels opened at once carry their own messages', async () => {
    for (let i = 0; i < 8; i++) await b.waitFor('channel', (e) => e.label === `ch${i}`);
    for (let i = 0; i < 8; i++) a.send({ op: 'send', label: `ch${i}`, text: `on ch${i}` });
    const got = await b.collect('message', 8, (e) => e.label.startsWith('ch'));
    assert.deepEqual(got.map((e) => e.text).sort(), [...Array(8).keys()].map((i) => `on ch${i}`).sort());
    for (const e of got) assert.equal(e.text, `on ${e.label}`);
  });

  it('32 MiB in 64 KiB messages, SHA-256 verified, with backpressure', async () => {
    b.send({ op: 'digest', label: 'chat' });
    const t0 = Date.now();
    a.send({ op: 'blast', label: 'chat', bytes: 32 * 1024 * 1024, chunk: 65536 });
    const sent = await a.waitFor('blasted', () => true, 120000);
    // ask for the digest until every byte has arrived
    let d;
    for (let i = 0; i < 600; i++) {
      b.send({ op: 'digest', label: 'chat' });
      d = await b.waitFor('digest');
      if (d.bytes >= sent.bytes) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const s = (Date.now() - t0) / 1000;
    console.log(`# timing C->C 32 MiB: ${(32 / s).toFixed(1)} MiB/s`);
    assert.equal(d.bytes, sent.bytes);
    assert.equal(d.sha256, sent.sha256);
  });

  it('close from either side reaches the other', async () => {
    a.send({ op: 'close_channel', label: 'ch0' });
    await a.waitFor('close', (e) => e.label === 'ch0', 10000);
    await b.waitFor('close', (e) => e.label === 'ch0', 10000);
    b.send({ op: 'close_channel', label: 'ch1' });
    await b.waitFor('close', (e) => e.label === 'ch1', 10000);
    await a.waitFor('close', (e) => e.label === 'ch1', 10000);
    a.send({ op: 'send', label: 'ch2', text: 'still here' });
    const m = await b.waitFor('message', (e) => e.label === 'ch2');
    assert.equal(m.text, 'still here');
  });
});
