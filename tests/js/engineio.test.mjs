// Engine.IO v4 / Socket.IO v5 protocol behaviour of echolinkd --conformance:
// the ground the official protocol suites cover (they are not committed;
// see README), checked here in CI with raw HTTP and WebSocket clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, sleep } from './lib/server.mjs';

let srv;
before(async () => { srv = await startServer({ args: ['--conformance'] }); });
after(async () => { await srv?.cleanup(); });

const poll = (p, q) => `${srv.url}${p}/?EIO=4&transport=polling${q || ''}`;
const wsUrl = (p, q) => `ws://127.0.0.1:${srv.port}${p}/?EIO=4&transport=websocket${q || ''}`;

async function handshake(path = '/engine.io') {
  const r = await fetch(poll(path));
  assert.equal(r.status, 200);
  const body = await r.text();
  assert.equal(body[0], '0');
  return JSON.parse(body.slice(1)).sid;
}

/** A WebSocket whose messages queue up, so none is lost between awaits. */
function openWs(url) {
  const ws = new WebSocket(url);
  ws.binaryType = 'nodebuffer';
  const queue = [];
  const waiters = [];
  let closed = false;
  const closeWaiters = [];
  ws.on('message', (data, isBinary) => {
    const m = isBinary ? Buffer.from(data) : data.toString();
    const w = waiters.shift();
    if (w) w(m); else queue.push(m);
  });
  ws.on('error', () => {});
  ws.on('close', () => { closed = true; closeWaiters.splice(0).forEach((f) => f()); });
  return {
    ws,
    opened: new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }),
    next(ms = 2000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error('no message within ' + ms + ' ms')), ms);
        waiters.push((m) => { clearTimeout(t); res(m); });
      });
    },
    async nextSkipPing(ms) {
      for (;;) { const m = await this.next(ms); if (m !== '2') return m; }
    },
    closed(ms = 2000) {
      if (closed) return Promise.resolve(true);
      return new Promise((res) => {
        const t = setTimeout(() => res(false), ms);
        closeWaiters.push(() => { clearTimeout(t); res(true); });
      });
    },
  };
}

test('polling handshake: open packet with exactly the v4 fields', async () => {
  const r = await fetch(poll('/engine.io'));
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain/);
  const open = JSON.parse((await r.text()).slice(1));
  assert.deepEqual(Object.keys(open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
  assert.deepEqual(open.upgrades, ['websocket']);
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.equal(open.maxPayload, 1000000);
});

test('bad handshakes get HTTP 400', async () => {
  for (const q of ['?transport=polling', '?EIO=abc&transport=polling', '?EIO=4', '?EIO=4&transport=abc']) {
    const r = await fetch(`${srv.url}/engine.io/${q}`);
    assert.equal(r.status, 400, q);
    assert.ok(typeof (await r.json()).code === 'number');
  }
  for (const method of ['POST', 'PUT']) {
    const r = await fetch(poll('/engine.io'), { method, body: '' });
    assert.equal(r.status, 400, method);
  }
  const r = await fetch(poll('/engine.io', '&sid=doesnotexist'));
  assert.equal(r.status, 400);
});

test('websocket handshake: open packet without upgrades', async () => {
  const c = openWs(wsUrl('/engine.io'));
  const open = JSON.parse((await c.next()).slice(1));
  assert.deepEqual(open.upgrades, []);
  c.ws.close();
});

test('polling: a batch of text and binary messages is echoed in one response', async () => {
  const sid = await handshake();
  const post = await fetch(poll('/engine.io', `&sid=${sid}`), { method: 'POST', body: '4hello\x1e4test2\x1ebAQIDBA==' });
  assert.equal(post.status, 200);
  assert.equal(await post.text(), 'ok');
  const get = await fetch(poll('/engine.io', `&sid=${sid}`));
  assert.equal(await get.text(), '4hello\x1e4test2\x1ebAQIDBA==');
});

test('polling: an invalid packet ends the session', async () => {
  const sid = await handshake();
  const post = await fetch(poll('/engine.io', `&sid=${sid}`), { method: 'POST', body: 'abc' });
  assert.equal(post.status, 400);
  assert.equal((await fetch(poll('/engine.io', `&sid=${sid}`))).status, 400);
});

test('polling: two GETs at once close the session, the first gets a close packet', async () => {
  const sid = await handshake();
  const first = fetch(poll('/engine.io', `&sid=${sid}`));
  await sleep(20);
  const second = await fetch(poll('/engine.io', `&sid=${sid}&t=burst`));
  assert.equal(second.status, 400);
  assert.equal(await (await first).text(), '1');
  assert.equal((await fetch(poll('/engine.io', `&sid=${sid}`))).status, 400);
});

test('heartbeat over polling: ping every interval, pong keeps the session', async () => {
  const sid = await handshake('/socket.io');
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const get = await fetch(poll('/socket.io', `&sid=${sid}`));
    assert.equal(await get.text(), '2');
    assert.ok(Date.now() - t0 >= 200, 'ping came before the interval');
    const post = await fetch(poll('/socket.io', `&sid=${sid}`), { method: 'POST', body: '3' });
    assert.equal(post.status, 200);
  }
});

test('heartbeat: a client that never pongs is dropped after interval + timeout', async () => {
  const sid = await handshake();
  await sleep(550);
  assert.equal((await fetch(poll('/engine.io', `&sid=${sid}`))).status, 400);
  const c = openWs(wsUrl('/engine.io'));
  await c.next();
  assert.equal(await c.next(), '2');
  assert.ok(await c.closed(1000), 'the WebSocket was not closed after the pong deadline');
});

test('websocket: text and binary echo; an invalid packet or close packet ends it', async () => {
  const c = openWs(wsUrl('/engine.io'));
  await c.next();
  c.ws.send('4hello');
  assert.equal(await c.next(), '4hello');
  c.ws.send(Buffer.from([1, 2, 3, 4]));
  assert.deepEqual(await c.next(), Buffer.from([1, 2, 3, 4]));
  c.ws.send('abc');
  assert.ok(await c.closed());
  const d = openWs(wsUrl('/engine.io'));
  await d.next();
  d.ws.send('1');
  assert.ok(await d.closed());
});

test('upgrade: probe, noop to the pending poll, then WebSocket only', async () => {
  const sid = await handshake();
  const c = openWs(wsUrl('/engine.io', `&sid=${sid}`));
  await c.opened;
  c.ws.send('2probe');
  assert.equal(await c.next(), '3probe');
  const pending = await fetch(poll('/engine.io', `&sid=${sid}`));
  assert.equal(await pending.text(), '6');
  c.ws.send('5');
  await sleep(20);
  c.ws.send('4hello');
  assert.equal(await c.next(), '4hello');
  assert.equal((await fetch(poll('/engine.io', `&sid=${sid}`))).status, 400);
  const second = openWs(wsUrl('/engine.io', `&sid=${sid}`));
  assert.ok(await second.closed(), 'a second WebSocket for one session must be closed');
  c.ws.send('4still');
  assert.equal(await c.next(), '4still');
  c.ws.close();
});

async function sioConnect(nsp = '') {
  const c = openWs(wsUrl('/socket.io'));
  await c.next(); // Engine.IO open
  c.ws.send(`40${nsp}`);
  return c;
}

test('Socket.IO: CONNECT to main and custom namespaces, auth echoed', async () => {
  const c = await sioConnect();
  const reply = await c.nextSkipPing();
  assert.match(reply, /^40\{"sid":"[^"]+"\}$/);
  assert.equal(await c.nextSkipPing(), '42["auth",{}]');
  c.ws.send('40/custom,{"token":"abc"}');
  assert.match(await c.nextSkipPing(), /^40\/custom,\{"sid":"[^"]+"\}$/);
  assert.equal(await c.nextSkipPing(), '42/custom,["auth",{"token":"abc"}]');
  c.ws.send('40/random');
  assert.equal(await c.nextSkipPing(), '44/random,{"message":"Invalid namespace"}');
  c.ws.close();
});

test('Socket.IO: events, acks and binary attachments echo byte for byte', async () => {
  const c = await sioConnect();
  await c.nextSkipPing();
  await c.nextSkipPing();
  c.ws.send('42["message",1,"2",{"3":[true]}]');
  assert.equal(await c.nextSkipPing(), '42["message-back",1,"2",{"3":[true]}]');
  c.ws.send('42456["message-with-ack",1,"2",{"3":[false]}]');
  assert.equal(await c.nextSkipPing(), '43456[1,"2",{"3":[false]}]');
  c.ws.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  c.ws.send(Buffer.from([1, 2, 3]));
  c.ws.send(Buffer.from([4, 5, 6]));
  assert.equal(await c.nextSkipPing(), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  assert.deepEqual(await c.nextSkipPing(), Buffer.from([1, 2, 3]));
  assert.deepEqual(await c.nextSkipPing(), Buffer.from([4, 5, 6]));
  c.ws.send('41');
  c.ws.send('3');
  assert.equal(await c.next(), '2', 'nothing may answer a DISCONNECT');
  c.ws.close();
});

test('Socket.IO: framing errors close the connection', async () => {
  for (const bad of ['4abc', '42{}', '42abc["message-with-ack",1]']) {
    const c = await sioConnect();
    await c.nextSkipPing();
    await c.nextSkipPing();
    c.ws.send(bad);
    assert.ok(await c.closed(), `${bad} did not close the connection`);
  }
});

test('Socket.IO: no CONNECT within connectTimeout closes the connection', async () => {
  const c = openWs(wsUrl('/socket.io'));
  await c.next();
  const t0 = Date.now();
  // keep answering pings so only the connect deadline can end it
  c.ws.on('message', (d) => { if (d.toString() === '2') c.ws.send('3'); });
  assert.ok(await c.closed(3000));
  const ms = Date.now() - t0;
  assert.ok(ms >= 900 && ms < 2500, `closed after ${ms} ms`);
});
