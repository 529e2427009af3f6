// Without TLS, echolinkd answers the WebSocket upgrades of /socket.io/ and
// reads and writes their frames itself (src/server/rawws.c, proto/ws.c);
// every other request is handed to libwebsockets' HTTP server. These tests
// speak WebSocket byte by byte over a plain TCP socket, for what a
// well-behaved client library never sends: a head in single bytes, frames
// in the same write as the upgrade, fragments with a ping between them,
// unmasked frames, reserved bits, oversized messages, close codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { startServer, sleep } from './lib/server.mjs';
import { connectClient, closeAll } from './lib/client.mjs';
import { httpRequest } from './lib/raw.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.cleanup(); });

const UPGRADE = (query = 'EIO=4&transport=websocket', path = '/socket.io/') =>
  `GET ${path}?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** A client frame: masked unless opts.unmasked; opts.fin (default true), opts.rsv (bits 4-6). */
function frame(op, payload, { fin = true, unmasked = false, rsv = 0 } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = data.length;
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | op)];
  const mbit = unmasked ? 0 : 0x80;
  if (len < 126) head.push(mbit | len);
  else if (len < 65536) head.push(mbit | 126, len >> 8, len & 0xff);
  else {
    head.push(mbit | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(...b);
  }
  if (unmasked) return Buffer.concat([Buffer.from(head), data]);
  const mask = randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([Buffer.from(head), mask, body]);
}

/** A TCP connection that parses the 101 head and then server frames. */
class Conn {
  static async open(port) {
    const c = new Conn(net.connect({ host: '127.0.0.1', port }));
    await new Promise((resolve, reject) => {
      c.sock.once('connect', resolve);
      c.sock.once('error', reject);
    });
    return c;
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.head = null;
    this.frames = [];
    this.ended = false;
    this.waiters = [];
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); this.wake(); });
    sock.on('close', () => { this.ended = true; this.wake(); });
    sock.on('error', () => {});
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  parse() {
    if (this.head === null) {
      const i = this.buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      this.head = this.buf.subarray(0, i + 4).toString('latin1');
      this.buf = this.buf.subarray(i + 4);
    }
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0], b1 = this.buf[1];
      assert.equal(b1 & 0x80, 0, 'server frames are never masked');
      let len = b1 & 0x7f, off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (this.buf.length < off + len) return;
      this.frames.push({ fin: !!(b0 & 0x80), op: b0 & 0x0f, data: this.buf.subarray(off, off + len) });
      this.buf = this.buf.subarray(off + len);
    }
  }

  /** Resolves with the first unconsumed frame matching pred. */
  async next(pred = () => true, ms = 5000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.ended) throw new Error(`connection closed; head ${JSON.stringify(this.head)}; frames left ${this.frames.length}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for a frame');
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, left); });
    }
  }

  async text(ms) { const f = await this.next((x) => x.op === 1, ms); return f.data.toString('utf8'); }

  async closeFrame(ms) {
    const f = await this.next((x) => x.op === 8, ms);
    return { code: f.data.length >= 2 ? f.data.readUInt16BE(0) : null, reason: f.data.subarray(2).toString('utf8') };
  }

  async gone(ms = 5000) {
    const deadline = Date.now() + ms;
    while (!this.ended && Date.now() < deadline) await new Promise((r) => { this.waiters.push(r); setTimeout(r, 50); });
    return this.ended;
  }

  write(b) { this.sock.write(b); }
  destroy() { this.sock.destroy(); }
}

async function upgraded(port) {
  const c = await Conn.open(port);
  c.write(UPGRADE());
  const open = await c.text();
  assert.match(c.head, /^HTTP\/1\.1 101 /);
  assert.match(c.head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  assert.match(open, /^0\{"sid":/);
  return c;
}

async function metrics() {
  const r = await httpRequest(srv.port, '/metrics');
  return r.body.toString('utf8');
}
const framing = (text, who) => Number((new RegExp(`echolink_websocket_upgrades_total\\{framing="${who}"\\} (\\d+)`).exec(text) || [])[1]);

test('a socket.io-client WebSocket is framed by echolinkd itself; HTTP requests still go to lws', async () => {
  const before = await metrics();
  const a = await connectClient(srv.url, { label: 'A', transports: ['websocket'] });
  // the default path: long-polling first, then the upgrade
  const b = await connectClient(srv.url, { label: 'B' });
  try {
    await sleep(300); // B's upgrade
    const after = await metrics();
    assert.ok(framing(after, 'echolinkd') >= framing(before, 'echolinkd') + 2, after);
    assert.equal(framing(after, 'lws'), framing(before, 'lws'), 'no WebSocket left to lws without TLS');
  } finally {
    closeAll(a, b);
  }
});

test('the head may arrive a byte at a time, and frames may follow it in the same write', async () => {
  const c = await Conn.open(srv.port);
  try {
    const bytes = Buffer.from(UPGRADE());
    for (let i = 0; i < bytes.length; i += 7) {
      c.write(bytes.subarray(i, i + 7));
      await sleep(2);
    }
    assert.match(await c.text(), /^0\{/);
    assert.match(c.head, /^HTTP\/1\.1 101 /);
  } finally {
    c.destroy();
  }
  const d = await Conn.open(srv.port);
  try {
    d.write(Buffer.concat([Buffer.from(UPGRADE()), frame(1, '40')])); // Socket.IO CONNECT with the upgrade
    assert.match(await d.text(), /^0\{/);
    assert.match(await d.text(), /^40\{"sid":/);
  } finally {
    d.destroy();
  }
});

test('half a head, then the client stops sending: closed at once, not at the 10 s head timeout', async () => {
  const c = await Conn.open(srv.port);
  const t0 = Date.now();
  c.sock.end('GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n');
  assert.ok(await c.gone(3000), 'still open 3 s after the half head');
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(c.head, null, 'no answer to half a head');
});

/** CPU seconds echolinkd used so far (utime + stime). */
function serverCpuS() {
  const st = readFileSync(`/proc/${srv.proc.pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

test('urgent (out-of-band) data inside a head neither spins the server nor loses the connection', async () => {
  // a peek stops at the urgent mark, so the head never seems to grow. node
  // cannot send urgent data; perl (always there on Debian) can
  const script = `
    use Socket; use IO::Socket::INET;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => ${srv.port}) or die "connect: $!";
    $s->autoflush(1);
    print $s "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\\r\\n";
    select(undef, undef, undef, 0.1);
    send($s, "X", MSG_OOB) or die "send: $!";
    select(undef, undef, undef, 0.1);
    print $s "Host: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n" .
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n";
    my $got = "";
    my $rin = ""; vec($rin, fileno($s), 1) = 1;
    while (select(my $r = $rin, undef, undef, 2) && sysread($s, my $b, 4096)) { $got .= $b; last if $got =~ /\\r\\n\\r\\n/; }
    print $got;`;
  const cpu0 = serverCpuS();
  const pl = spawn('perl', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
  let out = '', perr = '';
  pl.stdout.on('data', (d) => { out += d; });
  pl.stderr.on('data', (d) => { perr += d; });
  const code = await new Promise((resolve) => pl.on('exit', resolve));
  assert.equal(code, 0, perr);
  const used = serverCpuS() - cpu0;
  assert.ok(used < 0.5, `the server used ${used.toFixed(2)} s of CPU meanwhile`);
  // handed to lws, which reads the head the ordinary way and upgrades
  assert.match(out, /^HTTP\/1\.1 101 /);
});

test('a session the server ends while the client is still sending: close frame, then an orderly end (no reset)', async () => {
  const c = await Conn.open(srv.port);
  let reset = null;
  c.sock.on('error', (e) => { reset = e; });
  // an unknown sid: accepted, then closed by the engine (1001); the pongs
  // in the same write are still unread when it closes
  const pongs = Buffer.concat(Array.from({ length: 100 }, () => frame(10, Buffer.alloc(125))));
  c.write(Buffer.concat([Buffer.from(UPGRADE('EIO=4&transport=websocket&sid=nosuchsession')), pongs]));
  const cl = await c.closeFrame();
  assert.equal(cl.code, 1001);
  assert.ok(await c.gone(4000), 'closed');
  assert.equal(reset, null, `the connection was reset: ${reset}`);
});

test('fragments are joined, a ping between them is answered with its payload', async () => {
  const c = await upgraded(srv.port);
  try {
    c.write(Buffer.concat([frame(1, '4', { fin: false }), frame(9, 'hello'), frame(0, '0')]));
    const pong = await c.next((f) => f.op === 10);
    assert.equal(pong.data.toString(), 'hello');
    assert.match(await c.text(), /^40\{"sid":/);
  } finally {
    c.destroy();
  }
});

test('a close frame is echoed with its code, then the server closes', async () => {
  const c = await upgraded(srv.port);
  c.write(frame(8, Buffer.from([0x0f, 0xa0]))); // 4000
  const cl = await c.closeFrame();
  assert.equal(cl.code, 4000);
  assert.ok(await c.gone(), 'the server closes the connection');
});

for (const [name, bytes, code] of [
  ['an unmasked client frame', () => frame(1, '40', { unmasked: true }), 1002],
  ['a reserved bit (no extension was negotiated)', () => frame(1, '40', { rsv: 4 }), 1002],
  ['an unknown opcode', () => frame(3, 'x'), 1002],
  ['a continuation with no message begun', () => frame(0, 'x'), 1002],
  ['a ping longer than 125 bytes', () => frame(9, Buffer.alloc(126)), 1002],
  ['a message over 1 MiB', () => frame(2, Buffer.alloc(1024 * 1024 + 1)), 1009],
  ['the same in fragments', () => Buffer.concat([frame(2, Buffer.alloc(600 * 1024), { fin: false }), frame(0, Buffer.alloc(600 * 1024))]), 1009],
]) {
  test(`${name}: close ${code}, connection dropped, the server unharmed`, async () => {
    const c = await upgraded(srv.port);
    c.write(bytes());
    const cl = await c.closeFrame();
    assert.equal(cl.code, code);
    assert.ok(cl.reason.length > 0, 'the close frame says why');
    assert.ok(await c.gone(), 'the server closes the connection');
    const h = await httpRequest(srv.port, '/healthz');
    assert.equal(h.status, 200);
  });
}

test('requests that are not clean upgrades get the answers lws gave them before', async () => {
  // the WebSocket transport asked for without an Upgrade header: an Engine.IO error
  const r = await httpRequest(srv.port, '/socket.io/?EIO=4&transport=websocket');
  assert.equal(r.status, 400);
  assert.match(r.body.toString(), /"code":\s*\d/);
  // an unknown sid in an upgrade is accepted, then closed (as with lws)
  const c = await Conn.open(srv.port);
  c.write(UPGRADE('EIO=4&transport=websocket&sid=nosuchsession'));
  assert.ok(await c.gone(), 'closed');
  assert.match(c.head || '', /^HTTP\/1\.1 101 /);
  // garbage instead of HTTP: lws answers or closes; the server lives on
  const g = await Conn.open(srv.port);
  g.write('\x16\x03\x01 not http at all\r\n\r\n');
  assert.ok(await g.gone(), 'garbage connection closed');
  assert.equal((await httpRequest(srv.port, '/healthz')).status, 200);
});

test('keep-alive HTTP after the hand-over: several requests on one connection', async () => {
  const c = await Conn.open(srv.port);
  try {
    c.sock.removeAllListeners('data');
    let got = '';
    c.sock.on('data', (d) => { got += d.toString('latin1'); });
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const deadline = Date.now() + 5000;
    while ((got.match(/HTTP\/1\.1 200/g) || []).length < 2 && Date.now() < deadline) await sleep(20);
    assert.equal((got.match(/HTTP\/1\.1 200/g) || []).length, 2, got);
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    while ((got.match(/HTTP\/1\.1 200/g) || []).length < 3 && Date.now() < deadline + 3000) await sleep(20);
    assert.equal((got.match(/HTTP\/1\.1 200/g) || []).length, 3, got);
  } finally {
    c.destroy();
  }
});

test('the server exits cleanly (exit 0, no sanitizer report)', async () => {
  const res = await srv.stop();
  assert.equal(res.code, 0, `exit ${JSON.stringify(res)}\n${srv.tail(60)}`);
  assert.doesNotMatch(srv.stderr, /AddressSanitizer|LeakSanitizer|runtime error/);
});
