// cluster.test.mjs - three echolinkd nodes behind one real redis-server
// (--redis, src/server/cluster.h): one presence list, relay and envelopes
// across nodes, a node killed, Redis stopped and restarted.
//
// redis-server runs on a free loopback port with its own temp dir and no
// persistence, under setpriv --pdeathsig KILL (it dies with this process even
// when a CTest timeout kills us) and is killed in after(). The nodes share
// one SQLite file (WAL works across processes), as they would share one
// PostgreSQL.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { rm } from 'node:fs/promises';

import { startServer, tempDir, sleep } from './lib/server.mjs';
import { connectClient, makeContacts, assertPeerObject, closeAll, id } from './lib/client.mjs';
import { freePort, redisCommand, startRedis } from './lib/redis.mjs';

const HEARTBEAT_TTL_MS = 3000;
const blob = (text) => id.b64urlEncode(new TextEncoder().encode(text));

async function get(url) {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** Polls fn() (every 100 ms, at most ms) until it returns a truthy value. */
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

describe('cluster: three nodes and Redis', () => {
  let dir, redisPort, redisUrl, redis;
  const nodes = {};
  const clients = [];
  const client = async (node, opts = {}) => {
    const c = await connectClient(nodes[node].url, { transports: ['websocket'], ...opts });
    clients.push(c);
    return c;
  };

  before(async () => {
    dir = await tempDir('echolink-cluster-');
    redisPort = await freePort();
    redisUrl = `redis://127.0.0.1:${redisPort}`;
    redis = startRedis(redisPort, dir);
    await redis.ready();
    const db = `sqlite:${path.join(dir, 'shared.db')}`;
    // one at a time: the first migrates the shared database
    for (const name of ['A', 'B', 'C'])
      nodes[name] = await startServer({ db, args: ['--redis', redisUrl, '--node-id', name] });
    for (const name of ['A', 'B', 'C'])
      await until(async () => (await get(`${nodes[name].url}/healthz`)).body === 'ok\n', 10000,
        `node ${name} connected to Redis`);
  });

  after(async () => {
    closeAll(clients);
    for (const n of Object.values(nodes)) await n?.cleanup();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('clients spread over the nodes see one presence list', async () => {
    const a = await client('A', { label: 'A@A' });
    const b = await client('B', { label: 'B@B' });
    const c = await client('C', { label: 'C@C' });
    // contact requests and acceptances cross nodes too
    await makeContacts(a, b);
    await makeContacts(b, c);
    await makeContacts(c, a);
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);
    await a.waitFor('user_connected', (p) => p.peer_id === c.peerId);

    // C leaves: A and B (other nodes) are told
    const ma = a.mark(), mb = b.mark();
    c.close();
    await a.waitFor('user_disconnected', (p) => p.peer_id === c.peerId, { since: ma });
    await b.waitFor('user_disconnected', (p) => p.peer_id === c.peerId, { since: mb });

    // C comes back on node C: its online_users lists A and B (on A and B)
    const c2 = await client('C', { who: c, label: 'C2@C' });
    const list = await c2.waitFor('online_users');
    assert.equal(list.users.length, 2, JSON.stringify(list));
    assertPeerObject(list.users.find((u) => u.peer_id === a.peerId), a, { online: true });
    assertPeerObject(list.users.find((u) => u.peer_id === b.peerId), b, { online: true });
    const back = await a.waitFor('user_connected', (p) => p.peer_id === c.peerId, { since: ma });
    assertPeerObject(back, c, { online: true });
    await b.waitFor('user_connected', (p) => p.peer_id === c.peerId, { since: mb });

    // the same peer logging in on another node replaces its first session
    const mc = c2.mark();
    const b2 = await client('A', { who: b, label: 'B2@A' });
    await b.waitFor('session_closed', (x) => x.reason === 'replaced');
    await sleep(500);
    assert.equal(c2.all('user_disconnected', (p) => p.peer_id === b.peerId, mc).length, 0,
      'a peer moving between nodes does not look gone');
    closeAll(a, b, b2, c2);
  });

  test('offer, answer and ice_candidate cross nodes with the server-stamped from', async () => {
    const a = await client('A', { label: 'A@A' });
    const b = await client('B', { label: 'B@B' });
    await makeContacts(a, b);
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);

    const ack = await a.emitAck('offer', { to: b.peerId, from: b.peerId, sdp: 'v=0 offer', n: 1.5 });
    assert.deepEqual(ack, { ok: true });
    const offer = await b.waitFor('offer');
    assert.deepEqual(offer, { from: a.peerId, to: b.peerId, sdp: 'v=0 offer', n: 1.5 });

    const ans = await b.emitAck('answer', { to: a.peerId, sdp: 'v=0 answer' });
    assert.deepEqual(ans, { ok: true });
    assert.deepEqual(await a.waitFor('answer'), { from: b.peerId, to: a.peerId, sdp: 'v=0 answer' });
    for (let i = 0; i < 20; i++)
      a.socket.emit('ice_candidate', { to: b.peerId, candidate: `candidate:${i}` });
    for (let i = 0; i < 20; i++) {
      const cand = await b.waitFor('ice_candidate');
      assert.equal(cand.candidate, `candidate:${i}`, 'candidates keep their order');
      assert.equal(cand.from, a.peerId);
    }

    // a peer online nowhere: "offline", as on one node
    b.close();
    await a.waitFor('user_disconnected', (p) => p.peer_id === b.peerId);
    const off = await a.emitAck('offer', { to: b.peerId, sdp: 'x' });
    assert.equal(off.ok, false);
    assert.equal(off.error, 'offline');
    a.close();
  });

  test('a target on another node that does not read is not dropped for it; the sender is told', async () => {
    const a = await client('A', { label: 'A@A' });
    const b = await client('C', { label: 'B@C' });
    await makeContacts(a, b);
    const tcp = b.socket.io.engine.transport.ws._socket;
    tcp.pause(); // B stops reading: first the kernel's buffers fill, then node C's queue
    const big = 'x'.repeat(60000);
    const ma = a.mark();
    for (let i = 0; i < 260; i++) { // ~15 MB, under A's rate limit (burst 100, then 50/s)
      const ack = await a.emitAck('offer', { to: b.peerId, sdp: big, i });
      assert.equal(ack.ok, true, `offer ${i}: ${JSON.stringify(ack)}`);
      if (i >= 90) await sleep(22);
    }
    const err = await a.waitFor('error', (e) => e.event === 'offer', { since: ma, timeout: 5000 });
    assert.equal(err.error, 'rate_limited');
    assert.equal(err.to, b.peerId);
    tcp.resume();
    const mb = b.mark();
    await until(async () => (await a.emitAck('offer', { to: b.peerId, sdp: 'small' })).ok &&
      b.all('offer', (o) => o.sdp === 'small', mb).length > 0, 10000, 'B reads again');
    assert.equal(b.connected, true, 'B was not disconnected by A\'s traffic');
    closeAll(a, b);
  });

  test('envelopes: stored on one node, delivered at login on another, and live across nodes', async () => {
    const a = await client('A', { label: 'A@A' });
    const c = await client('C', { label: 'C@C' });
    await makeContacts(a, c);
    const m = a.mark();
    c.close();
    await a.waitFor('user_disconnected', (p) => p.peer_id === c.peerId, { since: m });

    const payload = blob('while you were away');
    const sent = await a.emitAck('envelope_send', { to: c.peerId, envelope: payload });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const c2 = await client('C', { who: c, label: 'C2@C' });
    const env = await c2.waitFor('envelope');
    assert.deepEqual({ id: env.id, from: env.from, envelope: env.envelope },
      { id: sent.id, from: a.peerId, envelope: payload });
    assert.deepEqual(await c2.emitAck('envelope_ack', { ids: [env.id] }), { ok: true, deleted: 1 });

    await a.waitFor('user_connected', (p) => p.peer_id === c.peerId, { since: m });
    const live = blob('live');
    const sent2 = await a.emitAck('envelope_send', { to: c.peerId, envelope: live });
    assert.equal(sent2.ok, true);
    const env2 = await c2.waitFor('envelope', (e) => e.id === sent2.id);
    assert.equal(env2.envelope, live);
    await sleep(300);
    assert.equal(c2.all('envelope', (e) => e.id === sent2.id).length, 1, 'pushed exactly once');
    closeAll(a, c2);
  });

  test('a node stalled past the heartbeat TTL is reaped, then registers its peers again', async () => {
    const a = await client('A', { label: 'A@A' });
    const b = await client('B', { label: 'B@B' });
    await makeContacts(a, b);
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);
    const m = a.mark();
    nodes.B.proc.kill('SIGSTOP');
    try {
      await a.waitFor('user_disconnected', (p) => p.peer_id === b.peerId,
        { since: m, timeout: HEARTBEAT_TTL_MS + 2000 });
    } finally {
      nodes.B.proc.kill('SIGCONT');
    }
    // B wakes up, finds its heartbeat gone and announces its peers again
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId, { since: m, timeout: 5000 });
    // (its stderr pipe may be read after the event that crossed two nodes)
    await until(() => /heartbeat had expired/.test(nodes.B.stderr), 2000, 'node B logs the expiry');
    assert.deepEqual(await a.emitAck('offer', { to: b.peerId, sdp: 'after the stall' }), { ok: true });
    assert.equal((await b.waitFor('offer', (o) => o.sdp === 'after the stall')).from, a.peerId);
    closeAll(a, b);
  });

  test('a killed node takes its clients\' presence with it; they move without losing a message', async () => {
    const a = await client('A', { label: 'A@A' });
    const b = await client('B', { label: 'B@B', io: { reconnection: false } });
    const c = await client('C', { label: 'C@C' });
    await makeContacts(a, b);
    await makeContacts(c, b);
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId);
    await c.waitFor('user_connected', (p) => p.peer_id === b.peerId);

    const ma = a.mark(), mc = c.mark();
    const t0 = Date.now();
    await nodes.B.kill('SIGKILL');
    // sent right away: A may still believe B's node alive; nothing is lost
    const e1 = await a.emitAck('envelope_send', { to: b.peerId, envelope: blob('one') });
    assert.equal(e1.ok, true);
    await a.waitFor('user_disconnected', (p) => p.peer_id === b.peerId,
      { since: ma, timeout: HEARTBEAT_TTL_MS + 2000 });
    await c.waitFor('user_disconnected', (p) => p.peer_id === b.peerId,
      { since: mc, timeout: HEARTBEAT_TTL_MS + 2000 - (Date.now() - t0) });
    const e2 = await c.emitAck('envelope_send', { to: b.peerId, envelope: blob('two') });
    assert.equal(e2.ok, true);

    // B's client fails over to node C (a load balancer would do this)
    b.close();
    const b2 = await client('C', { who: b, label: 'B2@C' });
    const got = [await b2.waitFor('envelope'), await b2.waitFor('envelope')];
    assert.deepEqual(got.map((e) => e.id).sort(), [e1.id, e2.id].sort());
    await a.waitFor('user_connected', (p) => p.peer_id === b.peerId, { since: ma });
    const ack = await a.emitAck('offer', { to: b.peerId, sdp: 'after failover' });
    assert.deepEqual(ack, { ok: true });
    assert.equal((await b2.waitFor('offer')).from, a.peerId);
    closeAll(a, b2, c);
  });

  test('Redis stopped: nodes report it, keep serving their own clients, recover when it returns', async () => {
    const a = await client('A', { label: 'A@A' });
    const x = await client('A', { label: 'X@A' });
    const c = await client('C', { label: 'C@C' });
    const z = await client('A', { label: 'Z@A' });
    const y = await client('C', { label: 'Y@C' });
    await makeContacts(a, x);
    await makeContacts(a, c);
    await makeContacts(z, y);
    await makeContacts(x, y); // X's relays to Y show when node A knows where Y is again
    // node A remembers that Z may relay to Y (relay.c caches the last decision)
    assert.deepEqual(await z.emitAck('offer', { to: y.peerId, sdp: 'before' }), { ok: true });
    await y.waitFor('offer', (o) => o.sdp === 'before');

    await redis.stop();
    // Y blocks Z meanwhile: the news cannot cross to node A
    await until(async () => (await get(`${nodes.C.url}/healthz`)).body.startsWith('degraded'), 3000, 'node C sees Redis down');
    const my = y.mark();
    assert.deepEqual(await y.emitAck('block', { peer_id: z.peerId }), { ok: true });
    for (const name of ['A', 'C']) {
      const h = await until(async () => {
        const r = await get(`${nodes[name].url}/healthz`);
        return r.body.startsWith('degraded') && r;
      }, 3000, `node ${name} reports Redis down`);
      assert.equal(h.status, 200, 'a degraded node still serves');
      const metrics = (await get(`${nodes[name].url}/metrics`)).body;
      assert.match(metrics, /^echolink_cluster_redis_up 0$/m);
      assert.match(nodes[name].stderr, /redis .* unavailable/);
    }
    // local presence and relay keep working on node A
    const mx = a.mark();
    x.close();
    await a.waitFor('user_disconnected', (p) => p.peer_id === x.peerId, { since: mx });
    const x2 = await client('A', { who: x, label: 'X2@A' });
    await a.waitFor('user_connected', (p) => p.peer_id === x.peerId, { since: mx });
    assert.deepEqual(await a.emitAck('offer', { to: x.peerId, sdp: 'local' }), { ok: true });
    assert.equal((await x2.waitFor('offer')).from, a.peerId);

    // Redis returns (empty: no persistence): the nodes re-register
    redis = startRedis(redisPort, dir);
    await redis.ready();
    for (const name of ['A', 'C'])
      await until(async () => (await get(`${nodes[name].url}/healthz`)).body === 'ok\n', 12000,
        `node ${name} back on Redis`);
    assert.ok(nodes.A.running() && nodes.C.running(), 'no node crashed');
    // the decision cached before the outage does not outlive it
    await until(async () => (await x2.emitAck('offer', { to: y.peerId, sdp: 'probe' })).ok === true, 5000,
      'node A finds Y on node C again');
    const after = await z.emitAck('offer', { to: y.peerId, sdp: 'after the block' });
    assert.equal(after.error, 'offline', `Z's offer to Y, who blocked Z: ${JSON.stringify(after)}`);
    await y.expectNone('offer', (o) => o.from === z.peerId, { ms: 300, since: my });
    // presence across nodes works again: C re-logs in on node C, A sees it
    const m = a.mark();
    c.close();
    await a.waitFor('user_disconnected', (p) => p.peer_id === c.peerId, { since: m, timeout: 5000 });
    const c2 = await client('C', { who: c, label: 'C2@C' });
    await a.waitFor('user_connected', (p) => p.peer_id === c.peerId, { since: m });
    const list = await c2.waitFor('online_users');
    assert.ok(list.users.some((u) => u.peer_id === a.peerId), 'A (node A) is in C\'s online_users');
    assert.deepEqual(await c2.emitAck('offer', { to: a.peerId, sdp: 'again' }), { ok: true });
    assert.equal((await a.waitFor('offer', (o) => o.sdp === 'again')).from, c.peerId);
    closeAll(a, x2, c2, y, z);
  });

  test('a Redis that stops answering (SIGSTOP) is treated as gone, and recovered from', async () => {
    redis.proc.kill('SIGSTOP');
    try {
      for (const name of ['A', 'C'])
        await until(async () => (await get(`${nodes[name].url}/healthz`)).body.startsWith('degraded'),
          2 * HEARTBEAT_TTL_MS + 3000, `node ${name} notices the silent Redis`);
    } finally {
      redis.proc.kill('SIGCONT');
    }
    for (const name of ['A', 'C'])
      await until(async () => (await get(`${nodes[name].url}/healthz`)).body === 'ok\n', 12000,
        `node ${name} back on Redis`);
    const a = await client('A', { label: 'A@A' });
    const c = await client('C', { label: 'C@C' });
    await makeContacts(a, c);
    await a.waitFor('user_connected', (p) => p.peer_id === c.peerId);
    closeAll(a, c);
  });

  test('a node stopped with SIGTERM deregisters its peers and exits cleanly', async () => {
    const a = await client('A', { label: 'A@A', io: { reconnection: false } });
    const c = await client('C', { label: 'C@C' });
    await makeContacts(a, c);
    await c.waitFor('user_connected', (p) => p.peer_id === a.peerId);
    const m = c.mark();
    const res = await nodes.A.stop();
    assert.equal(res.code, 0, `node A exit: ${JSON.stringify(res)}\n${nodes.A.tail()}`);
    // the logout went through Redis at once, well before any heartbeat TTL
    await c.waitFor('user_disconnected', (p) => p.peer_id === a.peerId, { since: m, timeout: 1500 });
    c.close();
    const res2 = await nodes.C.stop();
    assert.equal(res2.code, 0, `node C exit: ${JSON.stringify(res2)}\n${nodes.C.tail()}`);
    assert.equal(await redisCommand(redisPort, 'HLEN echolink:peers'), ':0', 'no peer left registered');
    assert.equal(await redisCommand(redisPort, 'EXISTS echolink:node:A'), ':0', 'heartbeat removed');
    for (const n of [nodes.A, nodes.B, nodes.C])
      assert.doesNotMatch(n.stderr, /AddressSanitizer|LeakSanitizer|runtime error/, n.tail());
    a.close();
  });
});
