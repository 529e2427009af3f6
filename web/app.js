// app.js - the browser client's user interface. It talks to the core
// (lib/client.js) only through client.on(events) and client.request(...),
// as the terminal UI (apps/echolink/tui.c) does with the same events and
// requests: it keeps a model (ui/model.js) updated by events in batches
// (ui/batch.js: 50 events or 100 ms, one render per batch), asks the core
// again for lists when events say they changed (coalesced, 40 ms), and
// renders the sidebar (ui/sidebar.js) and the conversation
// (ui/conversation.js).
import { Client } from './lib/client.js';
import { EventBatcher } from './ui/batch.js';
import { ConversationView } from './ui/conversation.js';
import { $, clear, copyText, h, parsePeerRef } from './ui/dom.js';
import { confirmDialog, dialogOpen } from './ui/dialog.js';
import {
  addContactDialog, groupDialog, keyChangedAlert, newGroupDialog, peerDetailsDialog, profileDialog, verifyDialog,
} from './ui/dialogs.js';
import { BlobCache } from './ui/files.js';
import { Model } from './ui/model.js';
import { Notifier, announce, applyTheme, initTheme, savedTheme, setTitle, toggleTheme } from './ui/notify.js';
import { Sidebar } from './ui/sidebar.js';
import { CallPanel } from './ui/callpanel.js';

const PAGE = 100;               // messages per history request
const REFRESH_MS = 40;          // bursts of "ask again" become one request
const AUTO_ACCEPT = 32 * 1024 * 1024;
const DB_NAME = 'echolink';

class App {
  constructor(client) {
    this.client = client;
    this.model = new Model();
    this.model.me.id = client.peerId || null;
    this.drafts = new Map();
    this.pendingWant = { convs: false, peers: false, groups: false, news: false };
    this.refreshTimer = null;
    this.historyGen = 0;
    this.blobs = new BlobCache((req) => this.ask(req, { quiet: true }));
    this.fileActions = {
      blobs: this.blobs,
      accept: (id) => this.fileOp('accept_file', id),
      cancel: (id) => this.fileOp('cancel_file', id),
      loaded: (id) => {
        const m = this.model.msgByFile(id);
        if (m) this.view.renderSome([m.id]);
      },
    };
    this.sidebar = new Sidebar(this);
    this.view = new ConversationView(this);
    this.notifier = new Notifier((conv) => this.open(conv));
    this.batcher = new EventBatcher((evs) => this.onBatch(evs));
    this.eventCtx = {
      notice: (text, error) => this.toast(text, error),
      keyChanged: (peer, safety) => this.keyAlerts.push([peer, safety]),
      visible: true,
    };
    this.keyAlerts = [];
  }

  // ---- start -------------------------------------------------------------------

  async start() {
    this.unsubscribe = this.client.on((ev) => this.batcher.push(ev));
    this.wire();
    this.render(true);
    $('loading').hidden = true;
    $('setup').hidden = true;
    $('main').hidden = false;
    this.ask({ cmd: 'whoami' }, { quiet: true }).then((r) => {
      if (r.ok) {
        this.model.gotWhoami(r);
        if (r.online && this.model.signal.state === 'connecting') this.model.signal.state = 'online';
        this.render();
      }
    });
    this.want({ convs: true, peers: true, groups: true });
    this.calls = new CallPanel(this.client, {
      nameOf: (p) => this.model.name(p),
      notify: (title, body, peer) => this.notifier.show(title, body, `p:${peer}`),
    });
    for (const [id, video] of [['call-audio', false], ['call-video', true]]) {
      $(id).addEventListener('click', () => {
        const sel = this.model.sel;
        if (sel && sel.startsWith('p:')) this.calls.start(sel.slice(2), { video });
      });
    }
    this.client.start().catch((e) => this.toast(`Cannot reach the server: ${e.message || e}`, true));
    this.ticker = setInterval(() => this.tick(), 1000);
    this.checkInvite();
  }

  wire() {
    $('me-button').addEventListener('click', () => profileDialog(this));
    $('theme-toggle').addEventListener('click', () => this.setTheme(toggleTheme()));
    $('add-contact').addEventListener('click', () => addContactDialog(this));
    $('empty-add').addEventListener('click', () => addContactDialog(this));
    $('new-group').addEventListener('click', () => newGroupDialog(this));
    $('global-search').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && e.target.value.trim()) {
        e.preventDefault();
        $('main').classList.add('searching');
        this.view.openSearch(false, e.target.value.trim());
      } else if (e.key === 'Escape') {
        e.target.value = '';
      }
    });
    window.addEventListener('hashchange', () => this.checkInvite());
    document.addEventListener('visibilitychange', () => {
      this.eventCtx.visible = document.visibilityState === 'visible';
      if (this.eventCtx.visible) this.markRead();
    });
    window.addEventListener('focus', () => this.markRead());
    // Esc closes the innermost thing; dialogs handle their own (native)
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || dialogOpen() || e.defaultPrevented) return;
      if (this.view.escape()) {
        e.preventDefault();
        $('main').classList.remove('searching');
      } else if (this.model.sel && window.matchMedia('(max-width: 720px)').matches) {
        this.open(null);
      }
    });
    // Ctrl/Cmd+K: find a conversation; Alt+Up/Down: previous/next conversation
    document.addEventListener('keydown', (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        $('global-search').focus();
      } else if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown') && !dialogOpen()) {
        e.preventDefault();
        this.cycle(e.key === 'ArrowDown' ? 1 : -1);
      }
    });
    $('search-close').addEventListener('click', () => $('main').classList.remove('searching'));
  }

  setTheme() {
    applyTheme(savedTheme());
  }

  cycle(dir) {
    const list = this.model.sorted();
    if (!list.length) return;
    const i = list.findIndex((c) => c.conv === this.model.sel);
    const next = list[((i < 0 ? 0 : i + dir) % list.length + list.length) % list.length];
    this.open(next.conv, { focus: true });
  }

  tick() {
    if (this.model.expireTyping()) this.render();
    if (this.model.signal.state === 'offline' && this.model.signal.retryAt) this.renderBanner();
  }

  checkInvite() {
    const peer = /^#\/invite\//.test(location.hash) ? parsePeerRef(location.hash) : null;
    if (!peer) return;
    history.replaceState(null, '', location.pathname + location.search);
    if (peer === this.model.me.id || peer === this.client.peerId) {
      this.toast('That is your own invite link: send it to someone you want to talk to');
      return;
    }
    const c = this.model.peerConv(peer, false);
    if (c?.contact) this.open(c.conv, { focus: true });
    else addContactDialog(this, peer);
  }

  // ---- requests -------------------------------------------------------------------

  /** client.request that never throws: failures come back as {ok:false, error}. */
  async ask(req, { quiet = false } = {}) {
    let r;
    try {
      r = await this.client.request(req);
    } catch (e) {
      r = { ok: false, error: e?.message || String(e), code: 'software' };
    }
    if (!r || typeof r !== 'object') r = { ok: false, error: 'no reply', code: 'software' };
    if (!r.ok && !quiet) this.toast(r.error || `${req.cmd} failed`, true);
    return r;
  }

  /** For requests whose failure the user did not ask about (typing). */
  quiet(req) {
    this.ask(req, { quiet: true });
  }

  want(what) {
    for (const k of Object.keys(what)) if (what[k]) this.pendingWant[k] = true;
    if (!this.refreshTimer) this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  refresh() {
    this.refreshTimer = null;
    const w = this.pendingWant;
    this.pendingWant = { convs: false, peers: false, groups: false, news: false };
    const m = this.model;
    const after = (fn) => (r) => {
      m.resetDirty();
      if (r.ok) fn(r);
      this.render();
    };
    if (w.convs) this.ask({ cmd: 'conversations' }, { quiet: true }).then(after((r) => m.gotConversations(r, this.visible())));
    if (w.groups) this.ask({ cmd: 'groups' }, { quiet: true }).then(after((r) => { m.gotGroups(r); this.openPendingGroup(); }));
    if (w.peers) this.ask({ cmd: 'peers' }, { quiet: true }).then(after((r) => m.gotPeers(r)));
    if (w.news && m.sel) this.loadHistory(m.sel, 0);
  }

  visible() {
    return document.visibilityState === 'visible';
  }

  // ---- events -----------------------------------------------------------------------

  onBatch(events) {
    const m = this.model;
    m.resetDirty();
    this.eventCtx.visible = this.visible();
    for (const ev of events) {
      m.apply(ev, this.eventCtx);
      if (ev.event === 'group' && this.pendingGroupOpen && ev.name === this.pendingGroupOpen) {
        this.pendingGroupOpen = null;
        this.open(`g:${ev.group_id}`);
      }
      if (ev.event === 'message' && ev.text && ev.conv) {
        const c = m.conv(ev.conv);
        if (c) c.lastText = `${c.group && ev.from !== m.me.id ? `${m.name(ev.from)}: ` : ''}${ev.text}`;
      }
    }
    this.want(m.want);
    const incoming = m.incoming;
    this.render();
    for (const n of incoming) this.notifyOne(n);
    for (const [peer, safety] of this.keyAlerts.splice(0)) {
      keyChangedAlert(this, peer, safety);
      this.notifier.show('Safety number changed', `${m.name(peer)}'s key changed. Open EchoLink to check it.`, `p:${peer}`);
    }
  }

  notifyOne(n) {
    const m = this.model;
    if (n.kind === 'request') {
      announce(`Contact request from ${m.name(n.peer)}`);
      this.notifier.show('Contact request', `${m.name(n.peer)}: ${n.text}`, 'requests');
      return;
    }
    const c = m.conv(n.conv);
    const who = m.name(n.from);
    const title = c?.group ? `${who} in ${m.title(c)}` : who;
    if (n.conv === m.sel) announce(`${who}: ${n.text}`);
    else announce(`New message from ${title}`);
    this.notifier.show(title, n.text || 'New message', n.conv);
  }

  // ---- rendering ---------------------------------------------------------------------

  render(all = false) {
    const d = this.model.dirty;
    if (all || d.header || d.banner) this.sidebar.renderMe();
    if (all || d.banner) this.renderBanner();
    if (all || d.requests) this.sidebar.renderRequests();
    if (all || d.list || d.title) {
      this.sidebar.renderList();
      setTitle(this.model.totalUnread());
    }
    if (this.model.sel) {
      if (all || d.header) this.view.renderHeader();
      if (all || d.typing) this.view.renderTyping();
      if (all || d.all) this.view.renderAll();
      else if (d.msgs.size) this.view.renderSome(d.msgs);
    }
    $('main').classList.toggle('show-conv', !!this.model.sel);
    this.model.resetDirty();
  }

  renderHeader() {
    this.sidebar.renderMe();
    if (this.model.sel) this.view.renderHeader();
  }

  renderBanner() {
    const s = this.model.signal;
    const b = $('banner');
    clear(b);
    b.dataset.state = s.state;
    if (s.state === 'online') {
      if (this.wasDown) {
        this.wasDown = false;
        b.append(h('span', { text: 'Connected to the server again.' }));
        b.hidden = false;
        clearTimeout(this.bannerTimer);
        this.bannerTimer = setTimeout(() => { if (this.model.signal.state === 'online') b.hidden = true; }, 2500);
      } else {
        b.hidden = true;
      }
      return;
    }
    clearTimeout(this.bannerTimer);
    b.hidden = false;
    let text;
    if (s.state === 'connecting') text = 'Connecting to the server…';
    else if (s.state === 'connected') text = 'Connected, logging in…';
    else if (s.state === 'stopped') text = `Disconnected from the server${s.reason ? `: ${s.reason}` : ''}.`;
    else {
      const secs = s.retryAt ? Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000)) : 0;
      text = `The server is unreachable${s.reason ? ` (${s.reason})` : ''}. ${secs ? `Retrying in ${secs} s.` : 'Retrying…'} ` +
        'Contacts you are connected to still get your messages directly.';
    }
    if (s.state !== 'connecting' || this.everOnline) this.wasDown = true;
    b.append(h('span.banner-dot', { 'aria-hidden': 'true' }), h('span', { text }));
    if (s.state === 'online') this.everOnline = true;
  }

  toast(text, error = false) {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('error', !!error);
    t.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { t.hidden = true; }, error ? 6000 : 3000);
  }

  async copy(text, done = 'Copied') {
    this.toast((await copyText(text)) ? done : 'Copying failed: select the text and copy it', false);
  }

  // ---- conversations --------------------------------------------------------------------

  async open(conv, { focus = false } = {}) {
    const m = this.model;
    if (conv === m.sel && conv) {
      if (focus) this.view.input.focus();
      return;
    }
    if (m.sel) this.drafts.set(m.sel, this.view.input.value);
    m.resetDirty();
    m.select(conv);
    this.view.show(conv);
    $('main').classList.remove('searching');
    this.render();
    if (conv) {
      if (focus && !this.view.input.disabled) this.view.input.focus();
      await this.loadHistory(conv, 0);
    }
  }

  async loadHistory(conv, before) {
    const m = this.model;
    const req = { cmd: 'history', conv, limit: PAGE };
    if (before) req.before = before;
    const r = await this.ask(req, { quiet: true });
    if (m.sel !== conv) return; // the user moved on
    m.resetDirty();
    if (!r.ok) {
      if (before) m.loadingOlder = false;
      this.toast(r.error || 'Cannot read the history', true);
      return;
    }
    const list = r.messages || [];
    const first = m.msgs.length === 0;
    m.merge(list);
    if (before || first) m.more = list.length >= PAGE;
    if (before) m.loadingOlder = false;
    if (first) m.dirty.all = true;
    this.render();
    if (list.some((x) => !x.outgoing && !x.read_at)) this.markRead();
  }

  /** Scrollback: the page before the oldest message held. */
  async loadOlder(force = false) {
    const m = this.model;
    if (!m.sel || !m.more || m.loadingOlder || !m.msgs.length) return;
    if (!force && this.view.stick) return;
    m.loadingOlder = true;
    await this.loadHistory(m.sel, m.msgs.reduce((lo, x) => Math.min(lo, x.row), Infinity));
  }

  /** Only what the user can see is read. */
  async markRead() {
    const m = this.model;
    const conv = m.sel;
    if (!conv || !this.visible() || this.reading === conv) return;
    const c = m.conv(conv);
    const unseen = m.msgs.some((x) => !x.outgoing && !x.read_at);
    if (!unseen && !c?.unread) return;
    this.reading = conv;
    const r = await this.ask({ cmd: 'read', conv }, { quiet: true });
    this.reading = null;
    if (!r.ok) return;
    for (const x of m.msgs) if (!x.outgoing && !x.read_at) x.read_at = Date.now();
    m.resetDirty();
    if (c) c.unread = 0;
    m.dirty.list = true;
    this.render();
  }

  // ---- messages ---------------------------------------------------------------------------

  async send(text, replyTo) {
    const m = this.model;
    const conv = m.sel;
    const req = { cmd: 'send', to: conv, text };
    if (replyTo) req.reply_to = replyTo;
    const r = await this.ask(req);
    if (!r.ok) return false;
    const c = m.conv(conv);
    if (c) {
      c.lastText = `You: ${text}`;
      c.lastTs = Date.now();
    }
    this.want({ news: true, convs: true });
    return true;
  }

  async edit(msg, text) {
    const r = await this.ask({ cmd: 'edit', conv: msg.conv || this.model.sel, target: msg.id, text });
    if (!r.ok) return false;
    this.model.resetDirty();
    const c = this.model.conv(this.model.sel);
    if (c && c.lastText === `You: ${msg.text}`) {
      c.lastText = `You: ${text}`;
      this.model.dirty.list = true;
    }
    this.model.applyEdit(msg.id, text);
    this.render();
    return true;
  }

  async remove(msg) {
    if (!(await confirmDialog('Delete message', 'Delete this message for everyone in the conversation?', 'Delete', true))) return;
    const r = await this.ask({ cmd: 'delete', conv: msg.conv || this.model.sel, target: msg.id });
    if (!r.ok) return;
    this.model.resetDirty();
    this.model.applyDelete(msg.id);
    this.render();
  }

  async react(msg, emoji, remove) {
    const req = { cmd: 'react', conv: msg.conv || this.model.sel, target: msg.id, emoji };
    if (remove) req.remove = true;
    const r = await this.ask(req);
    if (!r.ok) return;
    this.model.resetDirty();
    this.model.applyReaction(msg.id, this.model.me.id, emoji, remove);
    this.render();
  }

  async sendFile(file, opts = {}) {
    const conv = this.model.sel;
    if (!conv?.startsWith('p:')) {
      this.toast('Files go to one contact at a time: open a direct conversation', true);
      return;
    }
    const name = opts.name || file.name || 'file';
    const req = { cmd: 'send_file', to: conv, file, name };
    if (opts.voice_ms) req.voice_ms = opts.voice_ms;
    const r = await this.ask(req);
    if (!r.ok) return;
    if (r.file_id) this.blobs.putLocal(r.file_id, file, name);
    const c = this.model.conv(conv);
    if (c) {
      c.lastText = opts.voice_ms ? 'You: Voice message' : `You: ${name}`;
      c.lastTs = Date.now();
    }
    this.want({ news: true, convs: true });
  }

  async fileOp(cmd, fileId) {
    const r = await this.ask({ cmd, file_id: fileId });
    if (!r.ok) return;
    const m = this.model.msgByFile(fileId);
    if (m?.file && cmd === 'accept_file' && m.file.state === 'offered') {
      this.model.resetDirty();
      m.file.state = 'accepted';
      this.model.dirty.msgs.add(m.id);
      this.render();
    }
    this.want({ news: true });
  }

  // ---- contacts, trust, groups ---------------------------------------------------------------

  async respond(peer, verb) {
    const r = await this.ask({ cmd: verb, peer });
    if (!r.ok) return;
    const m = this.model;
    m.resetDirty();
    m.requests.delete(peer);
    m.dirty.requests = true;
    if (verb === 'accept') {
      const c = m.peerConv(peer, true);
      c.contact = true;
      m.dirty.list = true;
    }
    this.render();
    this.want({ peers: true, convs: true });
    if (verb === 'accept') this.open(`p:${peer}`, { focus: true });
    else this.toast(verb === 'block' ? `${m.name(peer)} is blocked` : 'Request refused');
  }

  async peerOp(op, peer) {
    const r = await this.ask({ cmd: op, peer });
    if (!r.ok) return;
    const words = { remove: 'removed', block: 'blocked', unblock: 'unblocked' };
    this.toast(`${this.model.name(peer)} ${words[op] || 'updated'}`);
    if (op === 'block') this.model.blocked.add(peer);
    if (op === 'unblock') this.model.blocked.delete(peer);
    this.want({ peers: true, convs: true });
  }

  details(conv) {
    if (!conv) return;
    if (conv.startsWith('g:')) groupDialog(this, conv);
    else peerDetailsDialog(this, conv.slice(2));
  }

  verify(peer) {
    verifyDialog(this, peer);
  }

  async acceptKey(peer, { quietConfirm = false } = {}) {
    if (!quietConfirm && !(await confirmDialog('Accept the new key',
      `Accept ${this.model.name(peer)}'s new key without comparing safety numbers? Only do this if you know why it changed.`, 'Accept', true))) return;
    const r = await this.ask({ cmd: 'accept_key', peer });
    if (!r.ok) throw new Error(r.error || 'accept_key failed');
    this.keyAccepted(peer);
    this.toast(`New key of ${this.model.name(peer)} accepted`);
  }

  keyAccepted(peer) {
    const m = this.model;
    m.resetDirty();
    m.keyChanges.delete(peer);
    m.dirty.header = true;
    m.dirty.list = true;
    this.render();
  }

  openPendingGroup() {
    if (!this.pendingGroupOpen) return;
    const c = [...this.model.convs.values()].find((x) => x.group && x.name === this.pendingGroupOpen);
    if (c) {
      this.pendingGroupOpen = null;
      this.open(c.conv);
    }
  }
}

// ---- first visit -------------------------------------------------------------------------

/** The signaling servers to try in turn: servers.json beside this page
 *  ({"servers": ["https://node1...", ...]}, put there by the operator of a
 *  cluster, docs/OPERATIONS.md), or the origin that served the page. */
async function signalingServers() {
  try {
    const r = await fetch('servers.json', { cache: 'no-store' });
    if (!r.ok) return [location.origin];
    const list = (await r.json())?.servers;
    const ok = Array.isArray(list) ? list.filter((u) => typeof u === 'string' && /^(https?|wss?):\/\//.test(u)) : [];
    return ok.length ? ok : [location.origin];
  } catch {
    return [location.origin];
  }
}

async function openClient() {
  // Files up to AUTO_ACCEPT come at once (photos, voice messages); larger
  // ones wait for the user's Accept, as IndexedDB space is not unlimited.
  return Client.open({ server: await signalingServers(), dbName: DB_NAME, autoAcceptFiles: true, maxAutoAccept: AUTO_ACCEPT });
}

/** Resolves a client with an identity: created here, or restored from a backup. */
function setup(client) {
  $('loading').hidden = true;
  $('setup').hidden = false;
  $('setup-name').focus();
  const err = $('setup-error');
  return new Promise((resolve) => {
    let busy = false;
    const guard = (fn) => async (e) => {
      e.preventDefault();
      if (busy) return;
      busy = true;
      err.textContent = '';
      document.querySelectorAll('#setup button').forEach((b) => { b.disabled = true; });
      try {
        await fn(e.target);
      } catch (x) {
        err.textContent = x?.message || String(x);
      } finally {
        busy = false;
        document.querySelectorAll('#setup button').forEach((b) => { b.disabled = false; });
      }
    };
    $('setup-create').addEventListener('submit', guard(async () => {
      const name = $('setup-name').value.trim();
      if (!name) throw new Error('Choose a name');
      await client.setup({ name });
      resolve(client);
    }));
    $('setup-import').addEventListener('submit', guard(async () => {
      const file = $('setup-file').files[0];
      if (!file) throw new Error('Choose the backup file');
      const backup = await file.text();
      const r = await client.request({ cmd: 'import', backup, passphrase: $('setup-pass').value });
      if (!r.ok) throw new Error(r.error || 'The backup could not be restored');
      if (!client.needsSetup) {
        resolve(client);
        return;
      }
      // not taken up by this client: open the database again, as on a later visit
      client.close();
      const again = await openClient();
      if (again.needsSetup) throw new Error('The backup was read but no identity was stored');
      resolve(again);
    }));
  });
}

async function main() {
  initTheme();
  let client;
  try {
    client = await openClient();
  } catch (e) {
    clear($('loading')).append(h('p.error', { role: 'alert', text: `EchoLink cannot start in this browser: ${e?.message || e}` }),
      h('p.muted', { text: 'It needs IndexedDB and WebCrypto (a recent browser, over HTTPS or on localhost).' }));
    return;
  }
  if (client.needsSetup) client = await setup(client);
  const app = new App(client);
  window.echolinkApp = app; // for the browser console and tests
  await app.start();
}

main();
