// sio.mjs - the load generators' client (bench/loadgen.mjs, bench/soak.mjs):
// a raw `ws` WebSocket speaking the minimum of Engine.IO v4 / Socket.IO v5
// (open, ping -> "3", "40" CONNECT, events with ack ids, acks) and
// EchoLink's login (challenge -> login signed with web/lib/identity.js).
// 10,000 socket.io-client instances would cost the generator far more than
// the server under test; this costs a few KB each.
import WebSocket from 'ws';
import { generateIdentity, bundleOf, signLogin } from '../../web/lib/identity.js';

export const urlOf = (port) => `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;

export class Client {
  /** localAddress: the source address to bind (e.g. 127.0.3.7), so that
   *  many clients do not all count against one address's connection limit;
   *  undefined lets the kernel choose (127.0.0.1). */
  constructor(ident, bundle, url, localAddress) {
    this.url = url;
    this.localAddress = localAddress;
    this.ident = ident;
    this.bundle = bundle;
    this.ws = null;
    this.peerId = null;
    this.nextAck = 0;
    this.acks = new Map(); // ack id -> callback(arg)
    this.onEvent = null;   // (name, arg) after login
    this.onLost = null;    // (reason) when a logged-in connection ends without close()
    this.pings = 0;        // Engine.IO pings answered
    this.closed = false;
    this.closing = false;  // close() was called: the end is ours, not a loss
  }

  /** Connects, answers the challenge, logs in; resolves with the peer id. */
  login(timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('login timeout')), timeoutMs);
      const fail = (e) => { clearTimeout(timer); this.close(); reject(e); };
      const opts = { perMessageDeflate: false };
      if (this.localAddress) opts.localAddress = this.localAddress;
      const ws = new WebSocket(this.url, opts);
      this.ws = ws;
      ws.on('error', (e) => {
        if (!this.peerId) fail(e);
        else this.lost(`error: ${e.message}`);
      });
      ws.on('close', (code) => {
        this.closed = true;
        if (!this.peerId) fail(new Error('closed before login'));
        else this.lost(`close ${code}`);
      });
      ws.on('message', (data) => {
        const s = data.toString();
        const t = s.charCodeAt(0);
        if (t === 0x32 /* 2 ping */) { this.pings++; ws.send('3'); return; }
        if (t === 0x30 /* 0 open */) { ws.send('40'); return; }
        if (t !== 0x34 /* 4 message */) return;
        const k = s.charCodeAt(1);
        if (k === 0x32 /* 2 EVENT */ || k === 0x33 /* 3 ACK */) {
          let i = 2;
          while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
          const id = i > 2 ? Number(s.slice(2, i)) : -1;
          const body = JSON.parse(s.slice(i));
          if (k === 0x33) {
            const cb = this.acks.get(id);
            if (cb) { this.acks.delete(id); cb(body[0]); }
          } else if (body[0] === 'challenge' && !this.peerId) {
            signLogin(this.ident, body[1].nonce, body[1].sid).then((sig) => {
              this.emit('login', { ...this.bundle, sig }, (ack) => {
                if (!ack || ack.ok !== true) return fail(new Error(`login refused: ${JSON.stringify(ack)}`));
                clearTimeout(timer);
                this.peerId = ack.peer_id;
                resolve(ack.peer_id);
              });
            }, fail);
          } else if (this.onEvent) {
            this.onEvent(body[0], body[1]);
          }
        } else if (k === 0x34 /* CONNECT_ERROR */ || k === 0x31 /* DISCONNECT */) {
          if (!this.peerId) fail(new Error(`refused: ${s}`));
          else this.lost(`server sent ${s.slice(0, 60)}`);
        }
      });
    });
  }

  /** Reported once per client, and only for an end we did not ask for. */
  lost(reason) {
    if (this.closing || this.lostReason) return;
    this.lostReason = reason;
    if (this.onLost) this.onLost(reason);
  }

  emit(event, arg, cb) {
    const id = this.nextAck++;
    this.acks.set(id, cb);
    this.ws.send(`42${id}${JSON.stringify([event, arg])}`);
  }

  /** Like emit, for an already-serialized argument. */
  emitRaw(event, json, cb) {
    const id = this.nextAck++;
    this.acks.set(id, cb);
    this.ws.send(`42${id}["${event}",${json}]`);
  }

  /** emit as a promise of the ack, bounded by timeoutMs. */
  request(event, arg, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${event}: no ack in ${timeoutMs} ms`)), timeoutMs);
      this.emit(event, arg, (ack) => { clearTimeout(timer); resolve(ack); });
    });
  }

  /** Abrupt end (TCP close without a WebSocket close frame), as a crashed
   *  client would leave; the server must clean up all the same. */
  close() {
    this.closing = true;
    if (this.ws && !this.closed) { this.closed = true; this.ws.terminate(); }
  }

  /** Orderly end: a WebSocket close frame, resolved when the socket is
   *  closed or after timeoutMs (then terminated). */
  end(timeoutMs = 5000) {
    this.closing = true;
    if (!this.ws || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.ws.terminate(); resolve(); }, timeoutMs);
      this.ws.once('close', () => { clearTimeout(timer); resolve(); });
      this.ws.close(1000);
    });
  }
}

// Identities: WebCrypto Ed25519/X25519, as the web client makes them.
export async function makeIdentities(n) {
  const out = [];
  for (let i = 0; i < n; i += 256) {
    const batch = await Promise.all(Array.from({ length: Math.min(256, n - i) }, async () => {
      const ident = await generateIdentity();
      return { ident, bundle: await bundleOf(ident) };
    }));
    out.push(...batch);
  }
  return out;
}

/** Logs in every identity, at most `par` handshakes in flight. urlAt(i) and
 *  addrAt(i) give client i's server URL and source address. */
export async function connectAll(ids, par, urlAt, addrAt = () => undefined) {
  const clients = ids.map(({ ident, bundle }, i) => new Client(ident, bundle, urlAt(i), addrAt(i)));
  let next = 0, failed = 0, firstErr = null;
  const worker = async () => {
    while (next < clients.length) {
      const c = clients[next++];
      try { await c.login(); } catch (e) { failed++; firstErr ??= e; }
    }
  };
  await Promise.all(Array.from({ length: par }, worker));
  if (failed) {
    clients.forEach((c) => c.close());
    throw new Error(`${failed} of ${clients.length} logins failed; first: ${firstErr?.message}`);
  }
  return clients;
}

/** p-th percentile of an ascending array (nearest rank below). */
export function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** SDP-like text (CRLF lines, which JSON escapes as \r\n), `bytes` long as
 *  JSON text: what an `offer` really carries. */
export function sdpOfSize(bytes) {
  const lines = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    'a=group:BUNDLE 0', 'a=msid-semantic: WMS', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0', 'a=ice-ufrag:EsAw', 'a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y',
    'a=fingerprint:sha-256 DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09:00:11:22:33:44:55:66:77:88:99:AA:BB',
    'a=setup:actpass', 'a=mid:0', 'a=sctp-port:5000', 'a=max-message-size:262144'];
  let s = lines.join('\r\n') + '\r\n';
  while (JSON.stringify(s).length < bytes) s += 'a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host\r\n';
  while (JSON.stringify(s).length > bytes) s = s.slice(0, -1);
  return s;
}
