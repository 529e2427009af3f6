// sealed-envelope.test.mjs - an offline message end to end (PROTOCOL.md
// §10.3 and §6): alice seals a CHAT message to bob's static key with
// web/lib/seal.js, the real echolinkd queues it while bob is offline, bob
// logs in, receives it, opens it and learns that alice sent it; the server
// only ever held opaque bytes. A forged sender is caught by the recipient.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { makeContacts, sleep, useServer, id } from './lib/client.mjs';
import { open as openEnvelope, seal } from '../../web/lib/seal.js';

const enc = new TextEncoder();
const plaintextOf = (obj) => new Uint8Array([0x01, ...enc.encode(JSON.stringify(obj))]);

describe('sealed envelopes through the offline queue', () => {
  const { client } = useServer();

  test('sealed by alice, queued while bob is offline, opened by bob only', async () => {
    const a = await client({ label: 'alice' });
    const b = await client({ label: 'bob' });
    const eve = await client({ label: 'eve' });
    await makeContacts(a, b);
    const m = a.mark();
    b.close();
    await a.waitFor('user_disconnected', (x) => x.peer_id === b.peerId, { since: m });

    const msg = { t: 'CHAT', id: '0123456789abcdef0123456789abcdef', ts: Date.now(), text: 'while you were away ✓' };
    const envelope = await seal(a.identity, b.bundle, plaintextOf(msg));
    const wire = id.b64urlEncode(envelope);
    assert.ok(!Buffer.from(envelope).includes(Buffer.from('while you were away')), 'the text is not in the clear');
    const sent = await a.emitAck('envelope_send', { to: b.peerId, envelope: wire });
    assert.equal(sent.ok, true, JSON.stringify(sent));

    const b2 = await client({ who: b, label: 'bob again' });
    const env = await b2.waitFor('envelope');
    assert.equal(env.from, a.peerId);
    const opened = await openEnvelope(b2.identity, id.b64urlDecode(env.envelope));
    assert.equal(opened.senderPeerId, env.from, 'the sealed sender is the server-stamped sender');
    assert.equal(opened.senderPeerId, a.peerId);
    assert.equal(opened.plaintext[0], 0x01);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(opened.plaintext.subarray(1))), msg);
    await b2.emitAck('envelope_ack', { ids: [env.id] });

    // nobody else can open it
    await assert.rejects(openEnvelope(eve.identity, envelope));
    b2.close();
    eve.close();
    a.close();
  });

  test('an envelope sealed by someone else than the server-stamped sender is detected', async () => {
    const a = await client({ label: 'alice' });
    const b = await client({ label: 'bob' });
    const mallory = await client({ label: 'mallory' });
    await makeContacts(a, b);
    await makeContacts(mallory, b);
    // mallory forwards an envelope that alice sealed for bob as her own
    const envelope = await seal(a.identity, b.bundle, plaintextOf({ t: 'CHAT', id: 'ab'.repeat(16), ts: 1, text: 'hi' }));
    const sent = await mallory.emitAck('envelope_send', { to: b.peerId, envelope: id.b64urlEncode(envelope) });
    assert.equal(sent.ok, true);
    const env = await b.waitFor('envelope', (e) => e.from === mallory.peerId);
    const opened = await openEnvelope(b.identity, id.b64urlDecode(env.envelope));
    assert.notEqual(opened.senderPeerId, env.from, 'a client must drop it: sealed by alice, sent by mallory');
    await sleep(10);
    a.close();
    b.close();
    mallory.close();
  });
});
