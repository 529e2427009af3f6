// call.js - audio and video calls and screen sharing between two browsers,
// on an RTCPeerConnection of their own (the chat connection is not touched),
// signaled through echolinkd (docs/PROTOCOL.md §13).
//
//   const calls = new Calls(client, { sign, resolveIk });
//   calls.on((ev) => ...)         // {type:'incoming'|'state'|'ended', call, reason?}
//   const call = await calls.start(peerId, { video: true });
//   await calls.accept(call.id) / calls.decline(call.id) / calls.hangup(call.id)
//   calls.setMuted(id, true); calls.setCamera(id, false); await calls.shareScreen(id, true)
//
// Every call op travels as a relayed `offer` event {to, call: {id, op, ...}}
// (the server passes it through and stamps `from`); the core hands those to
// us (client.onCallSignal) instead of treating them as chat signaling.
// The SDPs carry the DTLS fingerprints of the media connection, so each is
// signed with the sender's identity key and checked against the peer's key
// (resolveIk: the pinned one): a server that swapped them is caught.
import { b64urlDecode, b64urlEncode, verifySignature } from './identity.js';

const RING_TIMEOUT_MS = 45000;
const CONNECT_TIMEOUT_MS = 30000;
const ID_RE = /^[0-9a-f]{32}$/;
const CALL_SIG_LABEL = new TextEncoder().encode('echolink-v1-call\0');

function newId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** The bytes a call SDP signature covers: label ‖ id ‖ type ‖ 0x00 ‖ sdp. */
function sigInput(id, type, sdp) {
  const enc = new TextEncoder();
  const parts = [CALL_SIG_LABEL, enc.encode(id), enc.encode(type), new Uint8Array([0]), enc.encode(sdp)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export class Calls {
  /**
   * client: the core (signalEmit, onCallSignal, peerId)
   * opts.sign(bytes) -> Promise<Uint8Array(64)>: Ed25519 with our identity key
   * opts.resolveIk(peerId) -> Promise<string|null>: the peer's ik (base64url), pinned
   * opts.iceServers: RTCIceServer[] (default: the ones the server gave the
   *   core at login, client.iceServers: its TURN relays serve calls too)
   * opts.media: navigator.mediaDevices (tests may pass another)
   */
  constructor(client, opts = {}) {
    this.client = client;
    this.sign = opts.sign;
    this.resolveIk = opts.resolveIk;
    this.iceServers = opts.iceServers || null;
    this.media = opts.media || globalThis.navigator?.mediaDevices;
    this.calls = new Map();
    this.listeners = new Set();
    this.unhook = client.onCallSignal((event, payload) => this.#onSignal(payload));
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  #emit(type, call, extra = {}) {
    for (const fn of this.listeners) {
      try {
        fn({ type, call, ...extra });
      } catch (e) {
        console.error('call listener', e);
      }
    }
  }

  #send(call, op, extra = {}) {
    return this.client.signalEmit('offer', { to: call.peer, call: { id: call.id, op, ...extra } })
      .catch((e) => ({ ok: false, error: String(e) }));
  }

  #setState(call, state) {
    if (call.state === state) return;
    call.state = state;
    this.#emit('state', call);
  }

  /** The active call (not ended), if any. */
  active() {
    for (const c of this.calls.values()) if (c.state !== 'ended') return c;
    return null;
  }

  /** Rings `peer`; resolves with the call object once the ring is sent. */
  async start(peer, { video = false } = {}) {
    if (this.active()) throw new Error('a call is already in progress');
    const call = this.#newCall(newId(), peer, 'out', video);
    call.local = await this.media.getUserMedia({ audio: true, video });
    const ack = await this.#send(call, 'ring', { video });
    if (!ack || ack.ok === false) {
      this.#end(call, `cannot reach the peer: ${ack?.error || 'no answer from the server'}`, false);
      throw new Error(call.reason);
    }
    this.#setState(call, 'ringing');
    call.timer = setTimeout(() => this.#end(call, 'no answer', true), RING_TIMEOUT_MS);
    return call;
  }

  async accept(id) {
    const call = this.calls.get(id);
    if (!call || call.direction !== 'in' || call.state !== 'ringing') throw new Error('no such ringing call');
    clearTimeout(call.timer);
    call.local = await this.media.getUserMedia({ audio: true, video: call.video });
    this.#setState(call, 'connecting');
    this.#makePc(call);
    await this.#send(call, 'accept');
    call.timer = setTimeout(() => this.#end(call, 'could not connect', true), CONNECT_TIMEOUT_MS);
  }

  decline(id) {
    const call = this.calls.get(id);
    if (call && call.state !== 'ended') this.#end(call, 'declined', true, 'decline');
  }

  hangup(id) {
    const call = this.calls.get(id);
    if (call && call.state !== 'ended') this.#end(call, 'hung up', true);
  }

  setMuted(id, muted) {
    const call = this.calls.get(id);
    for (const t of call?.local?.getAudioTracks() || []) t.enabled = !muted;
    if (call) call.muted = !!muted;
  }

  setCamera(id, on) {
    const call = this.calls.get(id);
    for (const t of call?.local?.getVideoTracks() || []) t.enabled = !!on;
    if (call) call.cameraOff = !on;
  }

  /** Replaces the outgoing video with the screen (or back to the camera). */
  async shareScreen(id, on) {
    const call = this.calls.get(id);
    if (!call || !call.pc) throw new Error('no connected call');
    const sender = call.videoTx.sender;
    if (on) {
      call.screen = await this.media.getDisplayMedia({ video: true, audio: false });
      const track = call.screen.getVideoTracks()[0];
      track.addEventListener('ended', () => this.shareScreen(id, false).catch(() => {}));
      await sender.replaceTrack(track);
    } else {
      for (const t of call.screen?.getTracks() || []) t.stop();
      call.screen = null;
      await sender.replaceTrack(call.local?.getVideoTracks()[0] || null);
    }
    call.sharing = !!on;
    this.#emit('state', call);
  }

  close() {
    for (const c of this.calls.values()) if (c.state !== 'ended') this.#end(c, 'closed', true);
    this.unhook?.();
  }

  #newCall(id, peer, direction, video) {
    const call = {
      id, peer, direction, video: !!video, state: 'new', reason: null, pc: null,
      local: null, remote: new MediaStream(), muted: false, cameraOff: false, sharing: false,
      pendingIce: [], timer: null,
    };
    this.calls.set(id, call);
    return call;
  }

  /* Both sides send and receive audio and video (an audio call's video
   * transceiver stays empty until a screen is shared: no renegotiation). */
  #makePc(call) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers || this.client.iceServers || [] });
    call.pc = pc;
    const audio = call.local.getAudioTracks()[0] || null;
    const video = call.local.getVideoTracks()[0] || null;
    if (call.direction === 'out') {
      call.audioTx = pc.addTransceiver(audio || 'audio', { direction: 'sendrecv', streams: [call.local] });
      call.videoTx = pc.addTransceiver(video || 'video', { direction: 'sendrecv', streams: [call.local] });
    }
    pc.ontrack = (e) => {
      call.remote.addTrack(e.track);
      this.#emit('state', call);
    };
    pc.onicecandidate = (e) => {
      this.#send(call, 'ice', { candidate: e.candidate ? e.candidate.candidate : null,
        mid: e.candidate ? e.candidate.sdpMid : null });
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected') {
        clearTimeout(call.timer);
        this.#setState(call, 'connected');
      } else if (pc.connectionState === 'failed') {
        this.#end(call, 'connection failed', true);
      }
    };
    return pc;
  }

  async #sendSdp(call, desc) {
    const sig = await this.sign(sigInput(call.id, desc.type, desc.sdp));
    await this.#send(call, 'sdp', { type: desc.type, sdp: desc.sdp, sig: b64urlEncode(sig) });
  }

  async #checkSdp(call, c) {
    if ((c.type !== 'offer' && c.type !== 'answer') || typeof c.sdp !== 'string' || typeof c.sig !== 'string') return false;
    const ik = await this.resolveIk(call.peer);
    if (!ik) return false;
    let sig;
    try {
      sig = b64urlDecode(c.sig, 64);
    } catch {
      return false;
    }
    return verifySignature(b64urlDecode(ik, 32), sigInput(call.id, c.type, c.sdp), sig);
  }

  async #onSignal(payload) {
    const from = payload?.from;
    const c = payload?.call;
    if (typeof from !== 'string' || !c || typeof c.id !== 'string' || !ID_RE.test(c.id)) return;
    let call = this.calls.get(c.id);
    if (call && call.peer !== from) return; /* somebody else's call id */
    try {
      switch (c.op) {
        case 'ring': return await this.#onRing(from, c);
        case 'accept': return call && await this.#onAccept(call);
        case 'decline': return call && this.#end(call, 'declined', false);
        case 'busy': return call && this.#end(call, 'busy', false);
        case 'hangup': return call && this.#end(call, 'hung up by the peer', false);
        case 'sdp': return call && await this.#onSdp(call, c);
        case 'ice': return call && await this.#onIce(call, c);
        default: return undefined; /* newer ops: ignored */
      }
    } catch (e) {
      if (call) this.#end(call, `call error: ${e.message || e}`, true);
    }
    return undefined;
  }

  async #onRing(from, c) {
    if (this.calls.has(c.id)) return;
    if (this.active()) {
      await this.client.signalEmit('offer', { to: from, call: { id: c.id, op: 'busy' } }).catch(() => {});
      return;
    }
    const call = this.#newCall(c.id, from, 'in', !!c.video);
    call.state = 'ringing';
    call.timer = setTimeout(() => this.#end(call, 'missed', false), RING_TIMEOUT_MS);
    this.#emit('incoming', call);
  }

  async #onAccept(call) {
    if (call.direction !== 'out' || call.state !== 'ringing') return;
    clearTimeout(call.timer);
    this.#setState(call, 'connecting');
    const pc = this.#makePc(call);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await this.#sendSdp(call, pc.localDescription);
    call.timer = setTimeout(() => this.#end(call, 'could not connect', true), CONNECT_TIMEOUT_MS);
  }

  async #onSdp(call, c) {
    if (!call.pc || !(await this.#checkSdp(call, c))) {
      this.#end(call, 'the call could not be verified (identity signature)', true);
      return;
    }
    const pc = call.pc;
    if (c.type === 'offer' && call.direction === 'in') {
      await pc.setRemoteDescription({ type: 'offer', sdp: c.sdp });
      const [t0, t1] = pc.getTransceivers();
      call.audioTx = t0;
      call.videoTx = t1;
      await t0.sender.replaceTrack(call.local.getAudioTracks()[0] || null);
      await t1.sender.replaceTrack(call.local.getVideoTracks()[0] || null);
      t0.direction = 'sendrecv';
      t1.direction = 'sendrecv';
      t0.sender.setStreams?.(call.local);
      t1.sender.setStreams?.(call.local);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      await this.#sendSdp(call, pc.localDescription);
    } else if (c.type === 'answer' && call.direction === 'out') {
      await pc.setRemoteDescription({ type: 'answer', sdp: c.sdp });
    } else {
      return;
    }
    for (const ice of call.pendingIce.splice(0)) await this.#onIce(call, ice);
  }

  async #onIce(call, c) {
    if (!call.pc || !call.pc.remoteDescription) {
      if (call.pendingIce.length < 256) call.pendingIce.push(c);
      return;
    }
    if (c.candidate === null) await call.pc.addIceCandidate(null).catch(() => {});
    else if (typeof c.candidate === 'string') {
      await call.pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.mid ?? '0' }).catch(() => {});
    }
  }

  #end(call, reason, tell, op = 'hangup') {
    if (call.state === 'ended') return;
    clearTimeout(call.timer);
    if (tell) this.#send(call, op);
    call.reason = reason;
    call.pc?.close();
    for (const s of [call.local, call.screen]) for (const t of s?.getTracks() || []) t.stop();
    call.state = 'ended';
    this.#emit('ended', call, { reason });
    this.#emit('state', call);
  }
}
