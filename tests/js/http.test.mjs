// http.test.mjs - static files, security headers, /healthz, /metrics and the
// per-address connection limit (docs/PROTOCOL.md §7, §8).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';

import { startServer, tempDir } from './lib/server.mjs';
import { connectClient, makeContacts, closeAll } from './lib/client.mjs';
import { httpRequest, RawWs } from './lib/raw.mjs';

const INDEX = '<!doctype html><title>EchoLink test</title><p>index</p>\n';
const APP = 'console.log("app");\n';
const STYLE = 'body { color: black; }\n';
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const SECRET = 'TOP-SECRET-OUTSIDE-THE-WEB-ROOT';

function metric(text, name, labels) {
  const want = labels ? `${name}{${labels}}` : name;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (line.slice(0, sp) === want) return Number(line.slice(sp + 1));
  }
  return undefined;
}

describe('HTTP', () => {
  let srv, dir, web;
  const clients = [];
  before(async () => {
    dir = await tempDir('echolink-web-');
    web = path.join(dir, 'www');
    await mkdir(path.join(web, 'sub'), { recursive: true });
    await mkdir(path.join(web, 'empty'), { recursive: true });
    await writeFile(path.join(web, 'index.html'), INDEX);
    await writeFile(path.join(web, 'app.js'), APP);
    await writeFile(path.join(web, 'style.css'), STYLE);
    await writeFile(path.join(web, 'sub', 'x.png'), PNG);
    await writeFile(path.join(dir, 'secret.txt'), SECRET);
    await writeFile(path.join(dir, 'www-secret.txt'), SECRET); // shares the root's name as a prefix
    srv = await startServer({ args: ['--web', web] });
  });
  after(async () => {
    closeAll(clients);
    await srv?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const assertSecurityHeaders = (r, what) => {
    assert.ok(r.headers['content-security-policy'], `${what}: Content-Security-Policy`);
    assert.match(r.headers['content-security-policy'], /default-src/, what);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  };

  test('static files with their types and the security headers', async () => {
    const cases = [
      ['/', INDEX, /^text\/html\b/],
      ['/index.html', INDEX, /^text\/html\b/],
      ['/app.js', APP, /^text\/javascript\b/],
      ['/style.css', STYLE, /^text\/css\b/],
      ['/sub/x.png', PNG, /^image\/png\b/],
    ];
    for (const [p, body, type] of cases) {
      const r = await httpRequest(srv.port, p);
      assert.equal(r.status, 200, p);
      assert.match(r.headers['content-type'] || '', type, `${p}: ${r.headers['content-type']}`);
      assert.ok(r.body.equals(Buffer.isBuffer(body) ? body : Buffer.from(body)), `${p}: body`);
      assertSecurityHeaders(r, p);
    }
    const head = await httpRequest(srv.port, '/app.js', { method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  test('path traversal never leaves the web root: 404', async () => {
    const paths = [
      '/../etc/passwd', '/../../../../etc/passwd', '/%2e%2e/etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/%2E%2E/secret.txt', '/../secret.txt', '/%2e%2e%2fsecret.txt', '/..%2fsecret.txt', '/sub/../../secret.txt',
      '/sub/%2e%2e/%2e%2e/secret.txt', '/./../secret.txt', '/..\\secret.txt', '/%5c..%5csecret.txt',
      '/../www-secret.txt', '/%2e%2e/www-secret.txt', '//etc/passwd', '/sub/..%252f..%252fsecret.txt',
      '/.%2e/secret.txt', '/etc/passwd',
    ];
    for (const p of paths) {
      const r = await httpRequest(srv.port, p);
      const text = r.body.toString('latin1');
      assert.ok(!text.includes(SECRET), `${p}: leaked a file outside the root`);
      assert.ok(!/root:.*:0:0:/.test(text), `${p}: leaked /etc/passwd`);
      assert.equal(r.status, 404, `${p}: HTTP ${r.status}`);
    }
    // the server still serves
    assert.equal((await httpRequest(srv.port, '/app.js')).status, 200);
  });

  test('NUL bytes in the path never reach a file outside the root', async (t) => {
    // libwebsockets decodes %00 itself; any answer is fine as long as no
    // file outside the root is sent
    for (const p of ['/%00/../secret.txt', '/app.js%00.png', '/%00/%2e%2e/secret.txt', '/..%00/secret.txt']) {
      const r = await httpRequest(srv.port, p).catch((e) => ({ error: e.code || String(e) }));
      t.diagnostic(`${p}: ${r.error ? `connection ${r.error}` : `HTTP ${r.status} ${r.headers['content-type']} ${r.body.length} bytes`}`);
      if (r.error) continue;
      assert.ok(!r.body.toString('latin1').includes(SECRET), `${p}: leaked a file outside the root`);
      assert.notEqual(r.status, 500, p);
    }
    assert.equal((await httpRequest(srv.port, '/healthz')).status, 200);
  });

  test('no directory listings: a folder without index.html is 404', async () => {
    for (const p of ['/sub/', '/sub', '/empty/', '/empty']) {
      const r = await httpRequest(srv.port, p);
      assert.equal(r.status, 404, `${p}: HTTP ${r.status}`);
      assert.ok(!r.body.toString('latin1').includes('x.png'), `${p}: listed the folder`);
    }
    assert.equal((await httpRequest(srv.port, '/missing.html')).status, 404);
  });

  test('/healthz: 200 "ok" with the security headers', async () => {
    const r = await httpRequest(srv.port, '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString('utf8').trim(), 'ok');
    assertSecurityHeaders(r, '/healthz');
  });

  test('POST / (and other methods on static paths): 405', async () => {
    for (const [method, p] of [['POST', '/'], ['PUT', '/app.js'], ['DELETE', '/index.html'], ['POST', '/healthz']]) {
      const r = await httpRequest(srv.port, p, { method, body: 'x', headers: { 'content-type': 'text/plain', 'content-length': 1 } });
      assert.equal(r.status, 405, `${method} ${p}: HTTP ${r.status}`);
    }
  });

  test('/metrics: Prometheus text; echolink_connections and relayed offers counted', async () => {
    const before = (await httpRequest(srv.port, '/metrics')).body.toString('utf8');
    assert.match(before, /^# HELP /m);
    assert.match(before, /^# TYPE echolink_connections gauge$/m);
    assert.match(before, /^echolink_connections(\{[^}]*\})? \d+$/m);
    for (const line of before.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.e+]+$/, `exposition line: ${line}`);
    }
    const offers0 = metric(before, 'echolink_relayed_total', 'type="offer"');
    assert.equal(typeof offers0, 'number', 'echolink_relayed_total{type="offer"}');
    const conns0 = metric(before, 'echolink_connections', 'transport="any"') ?? metric(before, 'echolink_connections');

    const a = await connectClient(srv.url, { label: 'A' });
    const b = await connectClient(srv.url, { label: 'B', transports: ['websocket'] });
    clients.push(a, b);
    await makeContacts(a, b);
    const n = 7;
    for (let i = 0; i < n; i++) assert.deepEqual(await a.emitAck('offer', { to: b.peerId, i }), { ok: true });
    assert.deepEqual(await a.emitAck('answer', { to: b.peerId }), { ok: true });
    // refused offers are not counted
    assert.equal((await a.emitAck('offer', {})).error, 'bad_request');

    const mid = (await httpRequest(srv.port, '/metrics')).body.toString('utf8');
    assert.equal(metric(mid, 'echolink_relayed_total', 'type="offer"') - offers0, n, 'relayed offers');
    const conns1 = metric(mid, 'echolink_connections', 'transport="any"') ?? metric(mid, 'echolink_connections');
    assert.equal(conns1 - conns0, 2, 'two more connections open');
    closeAll(a, b);
  });
});

describe('connection limit per address (--max-conns-per-ip 3)', () => {
  let srv;
  const raws = [];
  before(async () => { srv = await startServer({ args: ['--max-conns-per-ip', '3'] }); });
  after(async () => {
    for (const r of raws) r.close();
    await srv?.cleanup();
  });

  test('the 4th polling handshake gets HTTP 503; a closed session frees its slot', async () => {
    const hs = () => httpRequest(srv.port, '/socket.io/?EIO=4&transport=polling');
    const sids = [];
    for (let i = 0; i < 3; i++) {
      const r = await hs();
      assert.equal(r.status, 200, `handshake ${i + 1}`);
      sids.push(JSON.parse(r.body.toString('utf8').slice(1)).sid);
    }
    const fourth = await hs();
    assert.equal(fourth.status, 503);
    // a WebSocket handshake is refused too (closed at once)
    const ws = await RawWs.open(srv.port).catch((e) => ({ error: e }));
    if (!ws.error) {
      raws.push(ws);
      const closed = await ws.waitClosed(3000);
      assert.ok(closed, 'the 4th WebSocket is closed');
      assert.ok(!ws.frames.some((f) => f.text && f.text.startsWith('0{')), 'no Engine.IO open on the 4th WebSocket');
    }
    // /healthz is plain HTTP, not limited
    assert.equal((await httpRequest(srv.port, '/healthz')).status, 200);
    // closing one session (Engine.IO close packet) frees a slot
    const close = await httpRequest(srv.port, `/socket.io/?EIO=4&transport=polling&sid=${sids[0]}`, {
      method: 'POST', body: '1', headers: { 'content-type': 'text/plain;charset=UTF-8', 'content-length': 1 },
    });
    assert.equal(close.status, 200);
    assert.equal((await hs()).status, 200, 'a freed slot is usable');
    assert.equal((await hs()).status, 503);
  });
});
