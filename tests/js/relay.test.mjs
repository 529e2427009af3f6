// relay.test.mjs - offer / answer / ice_candidate relay (docs/PROTOCOL.md §5).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { connectClient, makeContacts, closeAll, strangerPeerId } from './lib/client.mjs';
import { RawWs } from './lib/raw.mjs';

const KINDS = ['offer', 'answer', 'ice_candidate'];

const SDP = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' +
  'a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n' +
  'c=IN IP4 0.0.0.0\r\na=ice-ufrag:Ab+/\r\na=fingerprint:sha-256 AB:CD:EF\r\n';

function payloadFor(kind, to) {
  return {
    to,
    from: 'forged-by-the-client',
    type: kind,
    sdp: SDP,
    candidate: { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host', sdpMid: '0', sdpMLineIndex: 0 },
    nested: { from: 'a nested from is data', list: [1, -2.5, 1e21, true, false, null, { deep: [[[{ x: 'y' }]]] }], empty: {}, none: [] },
    unicode: 'héllo 日本語 😀 \u2028\u2029 "quoted" back\\slash \u0000 tab\t',
    big: 'x'.repeat(20000),
  };
}

describe('relay', () => {
  let srv;
  let a, b, d, e, anon;
  before(async () => {
    srv = await startServer();
    a = await connectClient(srv.url, { label: 'A' });
    b = await connectClient(srv.url, { label: 'B', transports: ['websocket'] });
    d = await connectClient(srv.url, { label: 'D' });
    e = await connectClient(srv.url, { label: 'E' });
    await makeContacts(a, b);
    await makeContacts(a, d);
  });
  after(async () => {
    closeAll(a, b, d, e, anon);
    await srv?.cleanup();
  });

  for (const kind of KINDS) {
    test(`${kind}: arrives with the server's from and every other field intact; ack {ok:true}`, async () => {
      for (const [src, dst] of [[a, b], [b, a]]) {
        const sent = payloadFor(kind, dst.peerId);
        const m = dst.mark();
        const ack = await src.emitAck(kind, sent);
        assert.deepEqual(ack, { ok: true });
        const got = await dst.waitFor(kind, () => true, { since: m });
        const { from: _forged, ...rest } = sent;
        assert.deepEqual(got, { from: src.peerId, ...rest });
        assert.deepEqual(Object.keys(got), ['from', ...Object.keys(rest)], 'members keep their order after from');
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(dst.all(kind, () => true, m).length, 1, 'delivered exactly once');
      }
    });
  }

  test('before login: not_logged_in', async () => {
    anon = await connectClient(srv.url, { login: false, label: 'anon' });
    for (const kind of KINDS) {
      const ack = await anon.emitAck(kind, { to: b.peerId, sdp: 'x' });
      assert.equal(ack.ok, false);
      assert.equal(ack.error, 'not_logged_in', kind);
      assert.equal(typeof ack.message, 'string');
    }
    anon.close();
  });

  test('unknown peer id: unknown_peer', async () => {
    const stranger = await strangerPeerId();
    for (const kind of KINDS) {
      const ack = await a.emitAck(kind, { to: stranger });
      assert.equal(ack.ok, false);
      assert.equal(ack.error, 'unknown_peer', kind);
    }
  });

  test('a logged-in non-contact: not_allowed, and nothing arrives', async () => {
    const m = e.mark();
    for (const kind of KINDS) {
      const ack = await a.emitAck(kind, { to: e.peerId, sdp: 'x' });
      assert.equal(ack.ok, false);
      assert.equal(ack.error, 'not_allowed', kind);
      const back = await e.emitAck(kind, { to: a.peerId, sdp: 'x' });
      assert.equal(back.error, 'not_allowed', kind);
    }
    await e.expectNone('offer', () => true, { ms: 200, since: m });
  });

  test('missing or invalid to: bad_request', async () => {
    const bad = [{}, { to: null }, { to: 123 }, { to: '' }, { to: 'abc' }, { to: b.peerId.toUpperCase() },
      { to: b.peerId + 'a' }, { to: [b.peerId] }, { to: a.peerId } /* yourself */];
    for (const kind of KINDS) {
      for (const arg of bad) {
        const ack = await a.emitAck(kind, arg);
        assert.equal(ack.ok, false);
        assert.equal(ack.error, 'bad_request', `${kind} ${JSON.stringify(arg)}`);
      }
      for (const arg of ['string', 42, null, [b.peerId]]) {
        const ack = await a.emitAck(kind, arg);
        assert.equal(ack.error, 'bad_request', `${kind} argument ${JSON.stringify(arg)}`);
      }
    }
  });

  test('a non-contact who went offline: still not_allowed (a stranger learns nothing of presence)', async () => {
    const g = await connectClient(srv.url, { label: 'G' });
    await makeContacts(g, e); // E's presence event says when the server has seen G go
    const online = await a.emitAck('offer', { to: g.peerId, sdp: 'x' });
    assert.equal(online.error, 'not_allowed');
    const m = e.mark();
    g.close();
    await e.waitFor('user_disconnected', (p) => p.peer_id === g.peerId, { since: m });
    for (const kind of KINDS) {
      const ack = await a.emitAck(kind, { to: g.peerId, sdp: 'x' });
      assert.equal(ack.error, 'not_allowed', `${kind} to an offline stranger`);
    }
  });

  test('a contact that went offline: offline', async () => {
    const m = a.mark();
    d.close();
    await a.waitFor('user_disconnected', (p) => p.peer_id === d.peerId, { since: m });
    for (const kind of KINDS) {
      const ack = await a.emitAck(kind, { to: d.peerId, sdp: 'x' });
      assert.equal(ack.ok, false);
      assert.equal(ack.error, 'offline', kind);
    }
  });

  test('without an ack id a failure comes back as an `error` event', async () => {
    const stranger = await strangerPeerId();
    const m = a.mark();
    a.socket.emit('offer', { to: stranger });
    const err = await a.waitFor('error', () => true, { since: m });
    assert.equal(err.error, 'unknown_peer');
    assert.equal(err.event, 'offer');
    assert.equal(typeof err.message, 'string');
  });

  test('a member name written with escapes is bad_request (no smuggled from)', async () => {
    const r = await RawWs.open(srv.port);
    try {
      await r.connect();
      assert.equal((await r.login(a.identity)).ok, true);
      const m = b.mark();
      r.send(`421["offer",{"to":"${b.peerId}","\\u0066rom":"${'a'.repeat(32)}"}]`);
      assert.equal((await r.waitAck(1)).error, 'bad_request');
      r.send(`422["offer",{"t\\u006f":"${b.peerId}"}]`);
      assert.equal((await r.waitAck(2)).error, 'bad_request');
      // a second "to": JSON.parse at the peer would keep the last one
      r.send(`423["offer",{"to":"${b.peerId}","to":"${d.peerId}"}]`);
      assert.equal((await r.waitAck(3)).error, 'bad_request');
      await b.expectNone('offer', () => true, { ms: 200, since: m });
    } finally {
      r.close();
    }
  });

  test('byte for byte on the wire (raw WebSocket): members copied exactly, from replaced', async () => {
    // Log A and B in again over raw WebSockets (this replaces the
    // socket.io-client sessions of the same identities).
    const ra = await RawWs.open(srv.port);
    const rb = await RawWs.open(srv.port);
    try {
      await ra.connect();
      await rb.connect();
      assert.equal((await ra.login(a.identity)).ok, true);
      assert.equal((await rb.login(b.identity)).ok, true);
      const members = [
        `"to":"${b.peerId}"`,
        '"type":"offer"',
        `"sdp":${JSON.stringify(SDP)}`,
        '"n" : {"from":"nested", "a":[1,-2.50e+3,1.0,0,true,false,null,{"deep":["x",{"y":"\\u00e9\\ud83d\\ude00"}]}],"e":{},"l":[ ]}',
        '"u":"日本語 é 😀 \u2028 \\u2029"',
        '"esc":"\\"\\\\\\/\\b\\f\\n\\r\\t"',
        '"num":-0.0e-0',
      ];
      let i = 0;
      for (const kind of KINDS) {
        i++;
        const input = `{${members[0]},"from":"forged",${members.slice(1).join(',')},"from":"again"}`;
        rb.frames.length = 0;
        ra.send(`42${i}["${kind}",${input}]`);
        assert.deepEqual(await ra.waitAck(i), { ok: true });
        const f = await rb.waitFrame((x) => x.text && x.text.startsWith(`42["${kind}"`));
        const expected = `42["${kind}",{"from":"${a.peerId}",${members.join(',')}}]`;
        assert.ok(Buffer.from(expected, 'utf8').equals(f.data),
          `relayed bytes differ:\nexpected ${expected}\n     got ${f.text}`);
      }
    } finally {
      ra.close();
      rb.close();
    }
  });
});
