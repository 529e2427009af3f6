// echolinkd with --tls-cert/--tls-key serves HTTPS and WSS on its one port,
// so browsers outside localhost get a secure context.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, tempDir } from './lib/server.mjs';

let srv, dir, ca;
before(async () => {
  dir = await tempDir('echolink-tls-');
  const key = path.join(dir, 'key.pem'), cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  ca = readFileSync(cert);
  srv = await startServer({ args: ['--tls-cert', cert, '--tls-key', key] });
});
after(async () => {
  await srv?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function get(url) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    }).on('error', reject);
  });
}

test('HTTPS answers with the configured certificate', async () => {
  const r = await get(`https://127.0.0.1:${srv.port}/healthz`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok\n');
});

test('plain HTTP on the TLS port is refused', async () => {
  await assert.rejects(fetch(`http://127.0.0.1:${srv.port}/healthz`));
});

test('socket.io-client connects over WSS and gets its login challenge', async () => {
  const s = io(`https://127.0.0.1:${srv.port}`, { transports: ['websocket'], ca, reconnection: false });
  try {
    const ch = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no challenge over WSS')), 5000);
      s.once('challenge', (c) => { clearTimeout(t); resolve(c); });
      s.once('connect_error', (e) => { clearTimeout(t); reject(e); });
    });
    assert.equal(ch.v, 1);
    assert.equal(ch.sid, s.id);
    // only lws can read TLS: it frames the WebSocket, not rawws.c
    const m = (await get(`https://127.0.0.1:${srv.port}/metrics`)).body;
    assert.match(m, /echolink_websocket_upgrades_total\{framing="lws"\} [1-9]/);
    assert.match(m, /echolink_websocket_upgrades_total\{framing="echolinkd"\} 0\n/);
  } finally {
    s.close();
  }
});

test('a server given a missing certificate file refuses to start', async () => {
  await assert.rejects(startServer({ args: ['--tls-cert', path.join(dir, 'nope.pem'), '--tls-key', path.join(dir, 'nope.pem')] }),
    /exited during start-up/);
});
