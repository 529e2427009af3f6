// e2ee-page.js - the browser side of tests/interop/e2ee-chromium.test.mjs:
// one RTCPeerConnection whose "chat" channel runs the EchoLink handshake and
// frames of web/lib (the modules the web client uses), in a secure context
// (http://127.0.0.1), driven by the test through window.EL and reporting
// through the exposed binding window.signal({ev, ...}).
import { identityFromSeeds, peerIdOf } from '/lib/identity.js';
import { Handshake, fingerprintFromSdp } from '/lib/session.js';

const hexBytes = (h) => Uint8Array.from(h.match(/../g).map((b) => parseInt(b, 16)));
const b64 = (u8) => btoa(String.fromCharCode(...u8)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const unb64 = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));

let pc = null;
let chat = null;
let hs = null;
let ciphers = null;
let role = null;       // 'initiator' | 'responder'
let identity = null;
let expect = null;
let queue = Promise.resolve(); // channel messages, strictly in order

function report(e) {
  window.signal(e);
}

function fail(err) {
  report({ ev: 'secure_failed', code: err.code || 'error', error: err.message });
  if (err.abort && chat && chat.readyState === 'open') chat.send(err.abort);
}

async function onChatOpen() {
  const fpLocal = fingerprintFromSdp(pc.localDescription.sdp);
  const fpRemote = fingerprintFromSdp(pc.remoteDescription.sdp);
  const [fpI, fpR] = role === 'initiator' ? [fpLocal, fpRemote] : [fpRemote, fpLocal];
  hs = new Handshake({ role, identity, expectedPeerId: expect, fpInitiator: fpI, fpResponder: fpR });
  report({ ev: 'open', label: 'chat' });
  if (role === 'initiator') chat.send(await hs.start());
}

async function ready() {
  ciphers = await hs.channel('chat');
  const remote = hs.remoteBundle;
  report({ ev: 'secure_ready', peer_id: expect, ik: remote.ik, sk: remote.sk });
}

async function onChatMessage(data) {
  const bytes = new Uint8Array(data);
  if (!ciphers) {
    if (!hs) return;
    try {
      const reply = await hs.receive(bytes);
      if (reply) chat.send(reply);
      if (hs.done) await ready();
    } catch (err) {
      fail(err);
    }
    return;
  }
  if (bytes.length === 2 && bytes[0] === 0x04) { // §9.1 ABORT after our HS3
    ciphers = null;
    report({ ev: 'secure_failed', code: 'aborted', error: `peer aborted: reason ${bytes[1]}` });
    return;
  }
  try {
    const pt = await ciphers.rx.open(bytes);
    report({ ev: 'plain', label: 'chat', b64: b64(pt) });
  } catch (err) {
    report({ ev: 'rejected', reason: err.reason || err.message });
  }
}

function wireChat(ch) {
  chat = ch;
  chat.binaryType = 'arraybuffer';
  chat.onopen = () => { queue = queue.then(onChatOpen).catch(fail); };
  chat.onmessage = (e) => {
    if (typeof e.data === 'string') {
      report({ ev: 'rejected', reason: 'text' });
      return;
    }
    queue = queue.then(() => onChatMessage(e.data));
  };
  if (chat.readyState === 'open') chat.onopen();
}

window.EL = {
  async init(opts) {
    identity = await identityFromSeeds(hexBytes(opts.ikSeedHex), hexBytes(opts.skPrivateHex));
    expect = opts.expect;
    role = opts.role;
    pc = new RTCPeerConnection({ iceServers: [] });
    pc.onicecandidate = (e) => report({ ev: 'candidate', candidate: e.candidate ? e.candidate.candidate : null,
      mid: e.candidate ? e.candidate.sdpMid : null });
    pc.ondatachannel = (e) => { if (e.channel.label === 'chat') wireChat(e.channel); };
    return peerIdOf(identity);
  },
  async offer() {
    wireChat(pc.createDataChannel('chat'));
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp;
  },
  async answer(sdp) {
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    return pc.localDescription.sdp;
  },
  async setAnswer(sdp) { await pc.setRemoteDescription({ type: 'answer', sdp }); },
  async candidate(c, mid) { await pc.addIceCandidate(c ? { candidate: c, sdpMid: mid } : null); },
  // a kind-0x01 message (text) or a whole plaintext (b64), encrypted
  async send(opts) {
    const pt = opts.text !== undefined
      ? new Uint8Array([1, ...new TextEncoder().encode(opts.text)]) : unb64(opts.b64);
    chat.send(await ciphers.tx.seal(pt));
  },
  close() { if (pc) pc.close(); },
  // the other browser modules load and agree with the vectors in a page too
  async backupAndSafety(backupJson, passphrase, ikA, ikB) {
    const { importIdentity } = await import('/lib/backup.js');
    const { safetyNumber } = await import('/lib/safety.js');
    const restored = await importIdentity(backupJson, passphrase);
    return { peerId: await peerIdOf(restored), safety: await safetyNumber(ikA, undefined, ikB, undefined) };
  },
};
