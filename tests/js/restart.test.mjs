// restart.test.mjs - shutdown on SIGTERM / SIGINT and restart with a file
// DB: socket.io-client reconnects by itself, logs in again, presence is
// rebuilt and the SQLite data is still there (docs/PROTOCOL.md §7.1).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { spawn } from 'node:child_process';

import { BINARY, startServer, sleep } from './lib/server.mjs';
import { connectClient, makeContacts, closeAll, withTimeout, id } from './lib/client.mjs';
import { RawWs, RawPolling, healthz } from './lib/raw.mjs';

// socket.io-client's own reconnection defaults (1 s, up to 5 s, jitter 0.5)
const DEFAULT_RECONNECTION = { reconnection: true, reconnectionDelay: 1000, reconnectionDelayMax: 5000 };

async function until(cond, ms, what) {
  await withTimeout((async () => { while (!cond()) await sleep(25); })(), ms, what);
}

function assertExit(res, srv, what) {
  assert.ok(res.ms < 3000, `${what}: exited after ${res.ms} ms (limit 3 s)`);
  assert.equal(res.signal, null, `${what}: killed by ${res.signal}`);
  assert.equal(res.code, 0, `${what}: exit code ${res.code}\n${srv.tail(30)}`);
}

describe('SIGTERM and restart on the same port', () => {
  let srv, a, b, p, c;
  let exitResult, rawWs, rawPoll;
  const marks = {};

  before(async () => {
    srv = await startServer();
    a = await connectClient(srv.url, { label: 'A', io: DEFAULT_RECONNECTION });
    b = await connectClient(srv.url, { label: 'B', transports: ['websocket'], io: DEFAULT_RECONNECTION });
    p = await connectClient(srv.url, { label: 'P', transports: ['polling'], io: DEFAULT_RECONNECTION });
    c = await connectClient(srv.url, { label: 'C', io: { reconnection: false } });
    await makeContacts(a, b);
    await makeContacts(a, p);
    await makeContacts(a, c);
    await until(() => a.transport === 'websocket', 5000, 'A upgraded');
  });
  after(async () => {
    closeAll(a, b, p, c);
    rawWs?.close();
    await srv?.cleanup();
  });

  test('SIGTERM: exits with code 0 within 3 s; WebSockets get 1001, held polls the close packet', async () => {
    // an envelope for C, stored while C is offline, must survive the restart
    const m = a.mark();
    c.close();
    await a.waitFor('user_disconnected', (x) => x.peer_id === c.peerId, { since: m });
    marks.envelope = id.b64urlEncode(new TextEncoder().encode('sealed before the restart'));
    const sent = await a.emitAck('envelope_send', { to: c.peerId, envelope: marks.envelope });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    marks.envelopeId = sent.id;

    rawWs = await RawWs.open(srv.port);
    await rawWs.connect();
    rawPoll = await RawPolling.open(srv.port);
    await rawPoll.post('40');
    await rawPoll.pollFor((x) => x.startsWith('42["challenge"'));
    const held = rawPoll.poll(10000); // held until the shutdown answers it

    for (const x of [a, b, p]) marks[x.label] = x.mark();
    await sleep(100);
    exitResult = await srv.kill('SIGTERM');
    // Every observation is collected first, so one run reports them all.
    const problems = [];
    const wsClose = await rawWs.waitClosed(3000);
    if (wsClose?.code !== 1001) problems.push(`raw WebSocket: close code ${JSON.stringify(wsClose)}, expected 1001`);
    const heldRes = await held.catch((e) => ({ error: String(e) }));
    if (JSON.stringify(heldRes.packets) !== '["1"]') problems.push(`held poll: ${JSON.stringify(heldRes)}, expected the close packet "1"`);
    for (const x of [a, b, p]) {
      const reason = await x.waitFor('$disconnect', () => true, { since: marks[x.label], timeout: 3000 }).catch((e) => String(e));
      if (reason === 'io server disconnect' || /no '\$disconnect'/.test(reason)) problems.push(`${x.label}: disconnect reason ${reason}, expected a transport loss`);
    }
    if (exitResult.ms >= 3000) problems.push(`exited after ${exitResult.ms} ms (limit 3 s)`);
    if (exitResult.code !== 0) problems.push(`exit code ${exitResult.code} (signal ${exitResult.signal}); stderr tail:\n${srv.tail(12)}`);
    assert.deepEqual(problems, []);
  });

  test('started again on the same port: each client reconnects by itself and logs in again', async () => {
    const port = srv.port;
    await srv.restart();
    assert.equal(srv.port, port, 'same port');
    assert.equal((await healthz(srv.port)).status, 200);
    for (const x of [a, b, p]) {
      await until(() => x.connects >= 2, 20000, `${x.label} reconnected (connect #2)`);
      const ack = await x.waitLogin(2, 10000);
      assert.equal(ack.ok, true, `${x.label} login after the restart: ${JSON.stringify(ack)}`);
      assert.equal(ack.peer_id, x.peerId);
      assert.equal(x.challenges.length, 2, `${x.label}: a challenge on each connection`);
    }
    assert.equal(p.transport, 'polling');
  });

  test('presence is rebuilt: the contacts see each other online again', async () => {
    // whoever logs in later shows up as user_connected for the earlier one;
    // the later one finds the earlier one in its online_users
    const sees = async (x, y) => {
      const since = marks[x.label];
      const deadline = Date.now() + 8000;
      while (Date.now() < deadline) {
        const uc = x.all('user_connected', (u) => u.peer_id === y.peerId, since);
        const ol = x.all('online_users', (l) => l.users.some((u) => u.peer_id === y.peerId), since);
        if (uc.length || ol.length) return { uc: uc.length, ol: ol.length };
        await sleep(50);
      }
      assert.fail(`${x.label} does not see ${y.label} online after the restart`);
    };
    const ab = await sees(a, b);
    const ba = await sees(b, a);
    await sees(a, p);
    await sees(p, a);
    assert.ok(ab.uc + ba.uc >= 1, 'a user_connected announced the later login');
    // and relaying works again
    const m = b.mark();
    assert.deepEqual(await a.emitAck('offer', { to: b.peerId, sdp: 'after restart' }), { ok: true });
    assert.equal((await b.waitFor('offer', () => true, { since: m })).from, a.peerId);
  });

  test('the SQLite data is still there: contacts and the queued envelope', async () => {
    const ca = await a.emitAck('get_contacts', {});
    assert.equal(ca.ok, true);
    const ids = ca.contacts.map((x) => x.peer_id).sort();
    assert.deepEqual(ids, [b.peerId, p.peerId, c.peerId].sort());
    assert.equal(ca.contacts.find((x) => x.peer_id === b.peerId).online, true);
    const cb = await b.emitAck('get_contacts', {});
    assert.deepEqual(cb.contacts.map((x) => x.peer_id), [a.peerId]);
    const c2 = await connectClient(srv.url, { who: c, label: 'C2', io: { reconnection: false } });
    try {
      const env = await c2.waitFor('envelope');
      assert.equal(env.id, marks.envelopeId);
      assert.equal(env.from, a.peerId);
      assert.equal(env.envelope, marks.envelope);
    } finally {
      c2.close();
    }
  });

  test('SIGTERM again with clients connected: exit 0 within 3 s', async () => {
    const res = await srv.kill('SIGTERM');
    assertExit(res, srv, 'second SIGTERM');
  });
});

describe('SIGINT', () => {
  let srv, a;
  before(async () => { srv = await startServer(); });
  after(async () => {
    closeAll(a);
    await srv?.cleanup();
  });

  test('SIGINT also exits with code 0 within 3 s, clients see a transport loss', async () => {
    a = await connectClient(srv.url, { label: 'A', io: { reconnection: false } });
    const m = a.mark();
    const res = await srv.kill('SIGINT');
    const reason = await a.waitFor('$disconnect', () => true, { since: m, timeout: 3000 });
    assert.notEqual(reason, 'io server disconnect');
    assertExit(res, srv, 'SIGINT');
  });

  test('SIGINT on an idle server: exit 0 within 3 s', async () => {
    await srv.restart();
    const res = await srv.kill('SIGINT');
    assertExit(res, srv, 'SIGINT (idle)');
  });
});

// echolinkd says it listens only once its signal handlers are in place: a
// supervisor that stops it the moment it reads the port gets a clean exit.
// (The port used to be announced first, and a SIGINT right after it killed
// the process with the default action, once in a full suite run.)
describe('readiness', () => {
  // The window was microseconds wide, so this check seldom met it: the
  // ordering in el_server_run is what makes it right.
  test('10 times: SIGTERM or SIGINT the moment the port is announced: exit 0', async () => {
    for (let i = 0; i < 10; i++) {
      const srv = await startServer();
      const res = await srv.kill(i % 2 ? 'SIGINT' : 'SIGTERM');
      assertExit(res, srv, `start ${i}`);
    }
  });

  test('a --port-file that cannot be written: exit 1 with the reason, within 3 s', async () => {
    const t0 = Date.now();
    const proc = spawn(BINARY, ['--bind', '127.0.0.1', '--port', '0', '--db', 'sqlite::memory:',
      '--port-file', '/nonexistent-dir/echolinkd.port'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '', out = '';
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => { out += d; });
    const code = await withTimeout(new Promise((resolve) => proc.on('exit', resolve)), 5000, 'exit');
    assert.equal(code, 1, err);
    assert.ok(Date.now() - t0 < 3000);
    assert.match(err, /cannot write \/nonexistent-dir\/echolinkd\.port/);
    assert.doesNotMatch(out, /listening on port/, 'not ready: it never said it was');
  });
});
