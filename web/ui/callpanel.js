// callpanel.js - the call screens of the web client: the incoming-call
// dialog (ringing), and the in-call panel (remote video, local preview,
// mute, camera, screen sharing, hang up, call state). The logic is
// web/lib/call.js; this module only shows it.
//
//   const panel = new CallPanel(client, { notify });
//   panel.start(peerId, { video: true });   // from a conversation's header
import { Calls } from '../lib/call.js';

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else if (v !== false && v != null) e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

const STATE_TEXT = {
  ringing: 'Ringing…', connecting: 'Connecting…', connected: 'Connected', ended: 'Call ended',
};

export class CallPanel {
  /**
   * client: the core (web/lib/client.js)
   * opts.nameOf(peerId) -> display name; opts.notify(title, body, peerId):
   * a notification when the tab is hidden
   */
  constructor(client, opts = {}) {
    this.client = client;
    this.nameOf = opts.nameOf || ((p) => p.slice(0, 8));
    this.notify = opts.notify || (() => {});
    this.calls = new Calls(client, { sign: (b) => client.signCall(b), resolveIk: (p) => client.peerIk(p) });
    this.calls.on((ev) => this.#onEvent(ev));
    const css = el('link', { rel: 'stylesheet', href: 'ui/callpanel.css' });
    document.head.append(css);
    this.root = el('section', { class: 'call-panel', 'aria-live': 'polite', 'aria-label': 'Call', hidden: true });
    document.body.append(this.root);
    this.current = null;
    this.clock = null;
  }

  /** Starts a call from the UI; errors are shown in the panel. */
  async start(peer, { video = false } = {}) {
    try {
      await this.calls.start(peer, { video });
    } catch (e) {
      this.#message(`Cannot call ${this.nameOf(peer)}: ${e.message || e}`);
    }
  }

  #message(text) {
    this.root.hidden = false;
    this.root.replaceChildren(el('p', { class: 'call-note', role: 'alert' }, text),
      el('button', { type: 'button', onclick: () => { this.root.hidden = true; } }, 'Close'));
  }

  #onEvent(ev) {
    const call = ev.call;
    if (ev.type === 'incoming') {
      this.notify('Incoming call', `${this.nameOf(call.peer)} is calling${call.video ? ' (video)' : ''}`,
        call.peer);
    }
    if (this.current && this.current !== call && call.state !== 'ended') return;
    this.current = call.state === 'ended' ? null : call;
    this.#render(call, ev.reason);
  }

  #render(call, reason) {
    clearInterval(this.clock);
    this.root.hidden = false;
    const who = this.nameOf(call.peer);
    if (call.state === 'ended') {
      this.root.replaceChildren(
        el('p', { class: 'call-state' }, `${STATE_TEXT.ended} with ${who}${reason ? ` – ${reason}` : ''}`),
        el('button', { type: 'button', onclick: () => { this.root.hidden = true; } }, 'Close'));
      return;
    }
    if (call.direction === 'in' && call.state === 'ringing') {
      this.root.replaceChildren(
        el('p', { class: 'call-state' }, `${who} is calling${call.video ? ' with video' : ''}…`),
        el('div', { class: 'call-buttons' },
          el('button', { type: 'button', class: 'call-accept', onclick: () => this.calls.accept(call.id) }, 'Accept'),
          el('button', { type: 'button', class: 'call-decline', onclick: () => this.calls.decline(call.id) }, 'Decline')));
      this.root.querySelector('.call-accept').focus();
      return;
    }
    const remote = el('video', { class: 'call-remote', autoplay: true, playsinline: true, 'aria-label': `${who}'s video` });
    remote.srcObject = call.remote;
    const local = el('video', { class: 'call-local', autoplay: true, playsinline: true, muted: true, 'aria-label': 'your camera' });
    local.muted = true;
    local.srcObject = call.local;
    const status = el('p', { class: 'call-state' }, `${STATE_TEXT[call.state] || call.state} · ${who}`);
    if (call.state === 'connected') {
      const t0 = Date.now();
      this.clock = setInterval(() => {
        const s = Math.floor((Date.now() - t0) / 1000);
        status.textContent = `Connected · ${who} · ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
      }, 1000);
    }
    const toggle = (label, on, fn) => el('button', { type: 'button', 'aria-pressed': on ? 'true' : 'false', onclick: fn }, label);
    this.root.replaceChildren(
      status,
      el('div', { class: 'call-videos' }, remote, local),
      el('div', { class: 'call-buttons' },
        toggle(call.muted ? 'Unmute' : 'Mute', call.muted, () => {
          this.calls.setMuted(call.id, !call.muted);
          this.#render(call);
        }),
        call.video ? toggle(call.cameraOff ? 'Camera on' : 'Camera off', call.cameraOff, () => {
          this.calls.setCamera(call.id, call.cameraOff);
          this.#render(call);
        }) : null,
        call.state === 'connected' ? toggle(call.sharing ? 'Stop sharing' : 'Share screen', call.sharing, () => {
          this.calls.shareScreen(call.id, !call.sharing).catch((e) => this.#message(`Screen sharing: ${e.message || e}`));
        }) : null,
        el('button', { type: 'button', class: 'call-hangup', onclick: () => this.calls.hangup(call.id) }, 'Hang up')));
  }
}
