// ref-server.mjs - the reference for bench/run.sh: a minimal Socket.IO 4.8
// signaling relay written the ordinary way, with the same event names and
// semantics as echolinkd (docs/PROTOCOL.md §3, §5) so that one load generator
// drives both servers identically.
//
//   connect           -> server emits challenge {v:1, nonce, sid}
//   login {ik, ...}   -> ack {ok:true, peer_id}; peer_id derived from ik as in
//                        §2 (the signature is NOT verified: "trivial login",
//                        login cost is not what the benchmark measures)
//   offer|answer|ice_candidate {to, ...}
//                     -> target gets <event> {from, ...rest minus any from};
//                        sender's ack {ok:true} or {ok:false,error:...}
//
// WebSocket transport only, Socket.IO defaults otherwise (pingInterval 25 s,
// pingTimeout 20 s, no per-message deflate). Listens on 127.0.0.1 only.
//
// usage: node bench/ref-server.mjs [--port N] [--port-file PATH]
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import { Server } from 'socket.io';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const port = Number(opt('--port', '0'));
const portFile = opt('--port-file', null);

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
function base32(bytes) {
  let out = '', acc = 0, bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) { bits -= 5; out += B32[(acc >> bits) & 31]; }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}
const DOM_PEER = Buffer.from('echolink-v1-peer-id\0');
function peerIdOf(ikB64) {
  const ik = Buffer.from(ikB64, 'base64url');
  if (ik.length !== 32) return null;
  return base32(createHash('sha256').update(DOM_PEER).update(ik).digest().subarray(0, 20));
}

const httpServer = createServer((req, res) => { res.writeHead(404); res.end(); });
const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });

const peers = new Map(); // peer_id -> socket

io.on('connection', (socket) => {
  let me = null;
  socket.emit('challenge', { v: 1, nonce: randomBytes(32).toString('base64url'), sid: socket.id });

  socket.on('login', (arg, ack) => {
    if (typeof ack !== 'function') return;
    if (me) return ack({ ok: false, error: 'bad_request', message: 'already logged in' });
    const id = arg && typeof arg.ik === 'string' ? peerIdOf(arg.ik) : null;
    if (!id) return ack({ ok: false, error: 'bad_request', message: 'login needs ik' });
    const old = peers.get(id);
    if (old && old !== socket) old.disconnect(true);
    me = id;
    peers.set(me, socket);
    ack({ ok: true, peer_id: me, profile: { name: null, avatar: null }, ice_servers: [], ttl: 3600 });
    socket.emit('online_users', { users: [] });
  });

  const relay = (event) => (arg, ack) => {
    const reply = typeof ack === 'function' ? ack : () => {};
    if (!me) return reply({ ok: false, error: 'not_logged_in', message: 'log in first' });
    if (!arg || typeof arg !== 'object' || typeof arg.to !== 'string')
      return reply({ ok: false, error: 'bad_request', message: "'to' must be a peer id" });
    const target = peers.get(arg.to);
    if (!target || arg.to === me) return reply({ ok: false, error: 'offline', message: 'the peer is offline' });
    const { from, ...rest } = arg; // any client-sent "from" is dropped
    target.emit(event, { from: me, ...rest });
    reply({ ok: true });
  };
  for (const ev of ['offer', 'answer', 'ice_candidate']) socket.on(ev, relay(ev));

  socket.on('disconnect', () => {
    if (me && peers.get(me) === socket) peers.delete(me);
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  const p = httpServer.address().port;
  if (portFile) {
    writeFileSync(portFile + '.tmp', `${p}\n`);
    renameSync(portFile + '.tmp', portFile);
  }
  console.log(`ref-server (socket.io 4.8) listening on 127.0.0.1:${p}`);
});

const stop = () => { io.close(); httpServer.close(); setTimeout(() => process.exit(0), 200).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
