// link.js - the connection to one remote peer: an RTCPeerConnection with
// the E2EE session of docs/PROTOCOL.md §9 (session.js) on its data
// channels, negotiated through the signaling server, kept alive and rebuilt
// when it breaks. The browser's src/client/link.c + secure.c, same rules
// (PROTOCOL.md §12.1):
//
//   offer          {"to", "cid", "sdp", "restart"?: true}
//   answer         {"to", "cid", "sdp"}
//   ice_candidate  {"to", "cid", "candidate": string | null, "mid"}
//
// `cid` (16 hex) names one RTCPeerConnection; answers and candidates for
// another cid are stale. An offer with the current cid renegotiates (ICE
// restart: DTLS, SCTP and the E2EE session survive); one with a new cid
// replaces the connection. Glare: the side whose peer ID sorts first is
// polite (drops its own offer, answers); the other ignores the remote offer
// for GLARE_FRESH_MS after its own. The offerer is the Noise initiator.
//
// Recovery: DISCONNECTED for RESTART_AFTER_MS -> the offerer restarts ICE,
// again every 2 x RESTART_AFTER_MS; ICE FAILED on a connection that was up
// -> the same at once; not back within RECOVER_MS (or never up within
// CONNECT_TIMEOUT_MS, or a failed handshake) -> torn down, and a new
// connection (new cid) after min(30 s, 0.5 s * 2^n) * [0.7, 1.3] while
// want() says there is work for it.
//
// States: 'idle', 'connecting', 'ready' (messages flow), 'held' (the
// handshake passed but the peer's key differs from the pinned one: nothing
// is sent or delivered until acceptKeyChange()).
//
// Callbacks (all optional but signal): signal(event, arg) -> Promise|void,
// want() -> bool, onState(state, why), onKeyChanged(pinned, presented),
// onPlaintext(ch, pt), onChannelOpen(ch), onChannelClose(ch),
// onBufferedLow(ch). A channel handed out is {label, dc}; `dc` is the
// RTCDataChannel (bufferedAmount).

import { HANDSHAKE_TIMEOUT_MS, Handshake, fingerprintFromSdp, validLabel } from './session.js';
import { newChannelLabel } from './msg.js';

export const RESTART_AFTER_MS = 2000;
export const RECOVER_MS = 12000;
export const CONNECT_TIMEOUT_MS = 20000;
export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 30000;
export const GLARE_FRESH_MS = 5000;
const ABORT = 0x04;

const CID_RE = /^[0-9a-f]{16}$/;
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const newCid = () => hex(crypto.getRandomValues(new Uint8Array(8)));

export function backoffMs(n) {
  const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(n, 16));
  return Math.round(ms * (0.7 + 0.6 * Math.random()));
}

/** One RTCPeerConnection and its E2EE session. Once dead, nothing of it
 *  reaches the link any more. */
class Conn {
  constructor(link, cid, offerer) {
    this.link = link;
    this.cid = cid;
    this.offerer = offerer;
    this.awaitingAnswer = false;
    this.dead = false;
    this.started = Date.now();
    this.restart = null;
    this.deadline = null;
    this.hsTimer = null;
    this.hs = null;
    this.secure = false;        // handshake done (ready or held)
    this.held = false;
    this.chat = null;           // Chan of `chat`
    this.chans = new Map();     // RTCDataChannel -> Chan
    this.remoteSet = false;
    this.localSdp = null;      // the descriptions as handed to the pc: their
    this.remoteSdp = null;     // DTLS fingerprints bind the E2EE handshake
    this.candidates = [];       // remote candidates before the remote description
    this.whenSecure = new Promise((resolve) => { this.setSecure = resolve; });
    this.pc = new RTCPeerConnection({ iceServers: link.iceServers() });
    this.pc.onicecandidate = (e) => {
      if (this.dead) return;
      const c = e.candidate;
      link.emitSignal('ice_candidate', { cid: this.cid, candidate: c && c.candidate ? c.candidate : null,
        mid: c ? c.sdpMid : null });
    };
    this.pc.oniceconnectionstatechange = () => link.pcState(this, this.pc.iceConnectionState);
    this.pc.onconnectionstatechange = () => {
      if (this.pc.connectionState === 'failed' || this.pc.connectionState === 'closed') {
        link.pcState(this, this.pc.connectionState);
      }
    };
    this.pc.ondatachannel = (e) => link.addChannel(this, e.channel);
  }

  close() {
    this.dead = true;
    clearTimeout(this.restart);
    clearTimeout(this.deadline);
    clearTimeout(this.hsTimer);
    for (const ch of this.chans.values()) ch.closed = true;
    try { this.pc.close(); } catch { /* closed */ }
  }
}

/** One data channel of a connection: its cipher pair once keyed, and the
 *  messages that arrived before that. */
class Chan {
  constructor(conn, dc) {
    this.conn = conn;
    this.dc = dc;
    this.label = dc.label;
    this.tx = null;
    this.rx = null;
    this.keyed = false;
    this.closed = false;
    this.q = Promise.resolve();   // this channel's messages, strictly in order
  }
}

export class Link {
  #cb;
  #identity;
  #self;
  #cur = null;
  #retry = null;
  #fails = 0;
  #polite;
  #trust;
  #iceServers;
  #log;
  state = 'idle';
  stats = { connects: 0, readies: 0, restarts: 0, failures: 0 };

  /** opts: {identity, selfId, peerId, callbacks, trust (a trust.js
   *  TrustStore or null), iceServers: () => RTCIceServer[], log?} */
  constructor({ identity, selfId, peerId, callbacks, trust = null, iceServers = () => [], log = () => {} }) {
    this.peerId = peerId;
    this.#identity = identity;
    this.#self = selfId;
    this.#cb = callbacks;
    this.#trust = trust;
    this.#iceServers = iceServers;
    this.#log = log;
    this.#polite = selfId < peerId;
  }

  iceServers() {
    return this.#iceServers();
  }

  #setState(st, why) {
    if (this.state === st) return;
    this.state = st;
    this.#log(`link ${this.peerId.slice(0, 8)}: ${st}${why ? ` - ${why}` : ''}`);
    this.#cb.onState?.(st, why);
  }

  emitSignal(event, arg) {
    arg.to = this.peerId;
    try {
      const r = this.#cb.signal(event, arg);
      if (r && r.then) r.catch(() => {});
    } catch (e) {
      this.#log(`link ${this.peerId.slice(0, 8)}: cannot send ${event}: ${e.message}`);
    }
  }

  // ---- teardown and retries ---------------------------------------------

  #bury() {
    const c = this.#cur;
    if (!c) return;
    this.#cur = null;
    c.close();
  }

  #scheduleRetry() {
    if (this.#retry) return;
    const ms = backoffMs(this.#fails > 0 ? this.#fails - 1 : 0);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (!this.#cur && this.#cb.want?.()) this.#startConn();
    }, ms);
  }

  #teardown(why) {
    if (!this.#cur) return;
    this.#bury();
    this.#fails++;
    this.stats.failures++;
    // the retry first: a connect() from onState waits for its backoff
    this.#scheduleRetry();
    this.#setState('idle', why);
  }

  // ---- connection state ---------------------------------------------------

  pcState(c, st) {
    if (c.dead || c !== this.#cur) return;
    if (st === 'connected' || st === 'completed') {
      clearTimeout(c.restart);
      c.restart = null;
      if (c.secure) { clearTimeout(c.deadline); c.deadline = null; }
    } else if (st === 'disconnected') {
      if (c.offerer && !c.restart) c.restart = setTimeout(() => this.#restartIce(c), RESTART_AFTER_MS);
      if (!c.deadline) c.deadline = setTimeout(() => this.#deadline(c), RECOVER_MS);
    } else if (st === 'failed') {
      if (c.secure && !c.deadline) {
        // a connection that was up keeps DTLS, SCTP and the session: an ICE
        // restart repairs it, at once
        if (c.offerer) { clearTimeout(c.restart); c.restart = setTimeout(() => this.#restartIce(c), 0); }
        c.deadline = setTimeout(() => this.#deadline(c), RECOVER_MS);
      } else if (!c.secure) {
        this.#teardown('connection failed');
      }
    } else if (st === 'closed') {
      this.#teardown('connection closed');
    }
  }

  #deadline(c) {
    c.deadline = null;
    if (c.dead || c !== this.#cur) return;
    this.#teardown(this.state === 'connecting' && !c.secure ? 'timed out connecting' : 'connection lost');
  }

  async #restartIce(c) {
    c.restart = null;
    if (c.dead) return;
    const st = c.pc.iceConnectionState;
    if (st !== 'disconnected' && st !== 'failed') return;
    // an answer can be lost with the network: again until the deadline
    c.restart = setTimeout(() => this.#restartIce(c), 2 * RESTART_AFTER_MS);
    try {
      const offer = await c.pc.createOffer({ iceRestart: true });
      c.localSdp = offer.sdp;
      await c.pc.setLocalDescription(offer);
    } catch (e) {
      this.#log(`link ${this.peerId.slice(0, 8)}: ICE restart failed: ${e.message}`);
      return;
    }
    if (c.dead) return;
    this.stats.restarts++;
    c.awaitingAnswer = true;
    this.emitSignal('offer', { cid: c.cid, sdp: c.pc.localDescription.sdp, restart: true });
  }

  // ---- channels and the handshake ----------------------------------------

  addChannel(c, dc) {
    if (c.dead) { try { dc.close(); } catch { /* closed */ } return; }
    dc.binaryType = 'arraybuffer';
    const ch = new Chan(c, dc);
    c.chans.set(dc, ch);
    if (dc.label === 'chat' && !c.chat) c.chat = ch;
    else if (!validLabel(dc.label) || dc.label === 'chat') { dc.close(); return; }
    dc.onopen = () => this.#channelOpen(c, ch);
    dc.onmessage = (e) => {
      const data = e.data;
      ch.q = ch.q.then(() => this.#channelMessage(c, ch, data)).catch((err) => {
        this.#log(`link ${this.peerId.slice(0, 8)}: ${ch.label}: ${err.stack || err}`);
      });
    };
    dc.onclose = () => this.#channelClose(c, ch);
    dc.bufferedAmountLowThreshold = 256 * 1024;
    dc.onbufferedamountlow = () => {
      if (!c.dead && ch.keyed && !c.held) this.#cb.onBufferedLow?.(ch);
    };
    if (dc.readyState === 'open') this.#channelOpen(c, ch);
  }

  async #channelOpen(c, ch) {
    if (c.dead || ch.opened) return;
    ch.opened = true;
    if (ch === c.chat) {
      // From the SDPs as we handed them over: Chromium can fire "open" after
      // applying a description but before pc.remoteDescription shows it
      // (seen under load: the offerer's remoteDescription still null).
      let fpI, fpR;
      try {
        const local = fingerprintFromSdp(c.localSdp);
        const remote = fingerprintFromSdp(c.remoteSdp);
        [fpI, fpR] = c.offerer ? [local, remote] : [remote, local];
      } catch (e) {
        this.#teardown(`no DTLS fingerprint: ${e.message}`);
        return;
      }
      c.hs = new Handshake({ role: c.offerer ? 'initiator' : 'responder', identity: this.#identity,
        expectedPeerId: this.peerId, fpInitiator: fpI, fpResponder: fpR });
      c.hsTimer = setTimeout(() => {
        const abort = c.hs.timeout();
        if (abort) this.#hsFailed(c, 'timeout', abort);
      }, HANDSHAKE_TIMEOUT_MS);
      if (c.offerer) {
        ch.q = ch.q.then(async () => {
          try {
            const hs1 = await c.hs.start();
            if (!c.dead) c.chat.dc.send(hs1);
          } catch (e) {
            this.#hsFailed(c, e.message, e.abort);
          }
        });
      }
      return;
    }
    if (c.secure) await this.#keyChannel(c, ch);
  }

  // Derives the channel's keys once; every caller waits for the same work.
  #keyChannel(c, ch) {
    if (!ch.keying) ch.keying = this.#deriveKeys(c, ch);
    return ch.keying;
  }

  async #deriveKeys(c, ch) {
    if (c.dead) return;
    try {
      const { tx, rx } = await c.hs.channel(ch.label);
      ch.tx = tx;
      ch.rx = rx;
    } catch (e) {
      this.#log(`link ${this.peerId.slice(0, 8)}: channel ${ch.label} refused: ${e.message}`);
      try { ch.dc.close(); } catch { /* closed */ }
      return;
    }
    ch.keyed = true;
    if (ch !== c.chat && !c.held && !c.dead) this.#cb.onChannelOpen?.(ch);
  }

  #hsFailed(c, why, abort) {
    if (c.dead) return;
    if (abort && c.chat && c.chat.dc.readyState === 'open') {
      try { c.chat.dc.send(abort); } catch { /* closing */ }
    }
    this.#teardown(`E2EE handshake failed: ${why}`);
  }

  async #channelMessage(c, ch, data) {
    if (c.dead) return;
    if (typeof data === 'string') return; // never valid
    const bytes = new Uint8Array(data);
    if (ch === c.chat && !c.secure) {
      if (!c.hs) return;
      let reply;
      try {
        reply = await c.hs.receive(bytes);
      } catch (e) {
        this.#hsFailed(c, e.message, e.abort);
        return;
      }
      if (c.dead) return;
      if (reply) c.chat.dc.send(reply);
      if (c.hs.done) await this.#secured(c);
      return;
    }
    // nothing but the handshake before it is done; a file channel of a
    // remote that finished first waits for our side of it
    if (!c.secure) await c.whenSecure;
    if (c.dead) return;
    if (!ch.keyed) await this.#keyChannel(c, ch);
    if (!ch.keyed || c.dead) return;
    if (ch === c.chat && bytes.length === 2 && bytes[0] === ABORT) {
      this.#teardown(`peer aborted: reason ${bytes[1]}`);
      return;
    }
    let pt;
    try {
      pt = await ch.rx.open(bytes);
    } catch (e) {
      this.#log(`link ${this.peerId.slice(0, 8)}: frame dropped on ${ch.label}: ${e.reason || e.message}`);
      return;
    }
    if (c.dead || c.held) return;
    this.#cb.onPlaintext?.(ch, pt);
  }

  // The handshake passed: the trust decision (§10.2), then ready or held.
  async #secured(c) {
    clearTimeout(c.hsTimer);
    await this.#keyChannel(c, c.chat);
    if (c.dead) return;
    c.bundle = c.hs.remoteBundle;
    let rec = null;
    if (this.#trust) {
      try {
        rec = await this.#trust.observe(this.peerId, c.bundle);
      } catch (e) {
        this.#hsFailed(c, `trust store: ${e.message}`);
        return;
      }
    }
    if (c.dead) return;
    c.secure = true;
    c.setSecure();
    if (rec && rec.state === 'changed') {
      c.held = true;
      clearTimeout(c.deadline); // the user decides; no timeout
      c.deadline = null;
      this.#setState('held', "the peer's key changed");
      this.#cb.onKeyChanged?.(rec.bundle, c.bundle);
      return;
    }
    this.#ready(c);
  }

  #ready(c) {
    const st = c.pc.iceConnectionState;
    if (st === 'connected' || st === 'completed') { clearTimeout(c.deadline); c.deadline = null; }
    this.#fails = 0;
    this.stats.readies++;
    this.#setState('ready');
    // channels the remote opened while the handshake ran
    for (const ch of c.chans.values()) {
      if (ch !== c.chat && ch.opened && !ch.closed) {
        if (ch.keyed) this.#cb.onChannelOpen?.(ch);
        else this.#keyChannel(c, ch);
      }
    }
  }

  #channelClose(c, ch) {
    if (ch.closed) return;
    ch.closed = true;
    if (c.dead || c !== this.#cur) return;
    if (ch === c.chat) {
      this.#teardown('the chat channel closed');
      return;
    }
    if (ch.keyed && !c.held) this.#cb.onChannelClose?.(ch);
  }

  // ---- negotiation --------------------------------------------------------

  #begin(c) {
    this.#cur = c;
    this.stats.connects++;
    clearTimeout(this.#retry);
    this.#retry = null;
    c.deadline = setTimeout(() => this.#deadline(c), CONNECT_TIMEOUT_MS);
    this.#setState('connecting');
  }

  async #startConn() {
    let c;
    try {
      c = new Conn(this, newCid(), true);
    } catch (e) {
      this.#log(`link ${this.peerId.slice(0, 8)}: cannot create a connection: ${e.message}`);
      this.#fails++;
      this.#scheduleRetry();
      return;
    }
    this.#begin(c);
    this.addChannel(c, c.pc.createDataChannel('chat', { ordered: true }));
    try {
      const offer = await c.pc.createOffer();
      c.localSdp = offer.sdp;
      await c.pc.setLocalDescription(offer);
    } catch (e) {
      if (!c.dead) this.#teardown(`cannot make an offer: ${e.message}`);
      return;
    }
    if (c.dead) return;
    c.awaitingAnswer = true;
    this.emitSignal('offer', { cid: c.cid, sdp: c.pc.localDescription.sdp });
  }

  async #answer(c, sdp) {
    c.remoteSdp = sdp;
    await c.pc.setRemoteDescription({ type: 'offer', sdp });
    this.#remoteSet(c);
    const answer = await c.pc.createAnswer();
    c.localSdp = answer.sdp;
    await c.pc.setLocalDescription(answer);
    if (c.dead) return;
    this.emitSignal('answer', { cid: c.cid, sdp: c.pc.localDescription.sdp });
  }

  #remoteSet(c) {
    c.remoteSet = true;
    for (const cand of c.candidates.splice(0)) this.#addCandidate(c, cand);
  }

  #addCandidate(c, { candidate, mid }) {
    if (!candidate) return; // end of candidates: nothing to do
    c.pc.addIceCandidate(mid != null ? { candidate, sdpMid: mid } : { candidate, sdpMLineIndex: 0 })
      .catch((e) => this.#log(`link ${this.peerId.slice(0, 8)}: candidate ignored: ${e.message}`));
  }

  async #onOffer(cid, sdp) {
    let c = this.#cur;
    if (c && c.cid === cid) { // the remote restarts ICE
      try {
        if (c.pc.signalingState !== 'stable') await c.pc.setLocalDescription({ type: 'rollback' });
        await this.#answer(c, sdp);
      } catch (e) {
        if (!c.dead) this.#teardown(`bad renegotiation offer: ${e.message}`);
      }
      return;
    }
    if (c && c.awaitingAnswer && !this.#polite && Date.now() - c.started < GLARE_FRESH_MS) {
      this.#log(`link ${this.peerId.slice(0, 8)}: glare: keeping our offer`);
      return;
    }
    if (c) {
      // glare (we are polite) or the remote started over: the old
      // connection and its channels are gone, so say so first
      this.#bury();
      this.#setState('idle', 'replaced by the peer\'s new connection');
    }
    try {
      c = new Conn(this, cid, false);
    } catch (e) {
      this.#fails++;
      this.#scheduleRetry();
      return;
    }
    this.#begin(c);
    try {
      await this.#answer(c, sdp);
    } catch (e) {
      if (!c.dead) this.#teardown(`cannot answer the offer: ${e.message}`);
    }
  }

  async #onAnswer(cid, sdp) {
    const c = this.#cur;
    if (!c || c.cid !== cid || !c.awaitingAnswer) return; // stale
    c.awaitingAnswer = false;
    c.remoteSdp = sdp;
    try {
      await c.pc.setRemoteDescription({ type: 'answer', sdp });
      this.#remoteSet(c);
    } catch (e) {
      if (!c.dead) this.#teardown(`bad answer: ${e.message}`);
    }
  }

  /** An offer, answer or ice_candidate from this peer. */
  onSignal(event, arg) {
    const cid = arg && arg.cid;
    if (typeof cid !== 'string' || !CID_RE.test(cid)) return;
    if (event === 'offer' && typeof arg.sdp === 'string') {
      this.#onOffer(cid, arg.sdp);
    } else if (event === 'answer' && typeof arg.sdp === 'string') {
      this.#onAnswer(cid, arg.sdp);
    } else if (event === 'ice_candidate') {
      const c = this.#cur;
      if (!c || c.cid !== cid) return;
      if (arg.candidate !== null && typeof arg.candidate !== 'string') return;
      const cand = { candidate: arg.candidate, mid: typeof arg.mid === 'string' ? arg.mid : null };
      if (c.remoteSet) this.#addCandidate(c, cand); else c.candidates.push(cand);
    }
  }

  // ---- public ---------------------------------------------------------------

  /** There is work for this peer: negotiate now unless a connection or a
   *  backoff delay is pending. */
  connect() {
    if (this.#cur || this.#retry) return;
    this.#startConn();
  }

  /** Drops the connection without counting a failure and forgets the
   *  backoff (the peer went offline, or was blocked). */
  reset(why) {
    clearTimeout(this.#retry);
    this.#retry = null;
    this.#fails = 0;
    if (this.#cur) {
      this.#bury();
      this.#setState('idle', why);
    }
  }

  /** Encrypts and sends pt on ch (null: chat). Resolves true once handed to
   *  the channel, false when not ready (or the channel is gone). Calls made
   *  in order are sent in order. */
  async send(pt, ch = null) {
    const c = this.#cur;
    if (this.state !== 'ready' || !c) return false;
    const chan = ch || c.chat;
    if (!chan || !chan.keyed || chan.conn !== c || chan.closed) return false;
    const frame = await chan.tx.seal(pt);
    if (c.dead || chan.closed || chan.dc.readyState !== 'open') return false;
    try {
      chan.dc.send(frame);
    } catch (e) {
      this.#log(`link ${this.peerId.slice(0, 8)}: send on ${chan.label} failed: ${e.message}`);
      return false;
    }
    return true;
  }

  /** A new file channel (ready only); onChannelOpen fires when keyed. */
  openChannel() {
    const c = this.#cur;
    if (this.state !== 'ready' || !c) return null;
    const dc = c.pc.createDataChannel(newChannelLabel(), { ordered: true });
    this.addChannel(c, dc);
    return c.chans.get(dc) || null;
  }

  /** Closes a channel of ours (a replaced or finished stream). */
  closeChannel(ch) {
    if (!ch) return;
    ch.closed = true;
    try { ch.dc.close(); } catch { /* closed */ }
  }

  /** The user accepted the peer's new key: the held session goes on. */
  async acceptKeyChange() {
    const c = this.#cur;
    if (!c || !c.held) throw new Error(`no key change is pending on the connection to ${this.peerId}`);
    await this.#trust.acceptChange(this.peerId);
    if (c.dead) return;
    c.held = false;
    this.#ready(c);
  }

  /** The remote's verified bundle while ready or held, else null. */
  get remoteBundle() {
    return this.#cur && this.#cur.secure ? this.#cur.bundle : null;
  }

  /** Frees everything; no callback fires afterwards. */
  close() {
    clearTimeout(this.#retry);
    this.#retry = null;
    this.#bury();
    this.state = 'idle';
  }
}
