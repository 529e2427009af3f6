// model.js - what the UI knows, updated by the core's events and replies;
// no DOM here. Mirrors the terminal UI (apps/echolink/tui.c): the
// conversation list (contacts, groups, conversations with history), the
// contact requests, and the messages of the shown conversation only, as the
// history request returns them, updated in place by events and re-read
// when new rows appear.
//
// Every apply* method marks what changed in `dirty` (list, conv, msgs:Set
// of ids, header, banner, requests, title) and what must be asked again
// in `want` (convs, peers, groups, news); the app renders and asks once per
// batch of events.

export const TYPING_SHOWN_MS = 8000; // a "typing" whose end never came

const STATUS_RANK = { pending: 1, sent: 1, delivered: 2, read: 3 };

export class Model {
  constructor() {
    this.me = { id: null, name: null };
    this.signal = { state: 'connecting', retryAt: 0, reason: null };
    this.convs = new Map();      // conv -> conversation entry
    this.requests = new Map();   // peer -> { peer, name, message }
    this.names = new Map();      // peer -> display name
    this.blocked = new Set();
    this.sel = null;             // the conversation shown
    this.msgs = [];              // its messages, display order
    this.more = false;           // older ones may exist
    this.loadingOlder = false;
    this.keyChanges = new Map(); // peer -> new safety number, until accepted
    this.resetDirty();
  }

  resetDirty() {
    this.dirty = { list: false, conv: false, header: false, banner: false, requests: false, title: false,
      typing: false, msgs: new Set(), all: false };
    this.want = { convs: false, peers: false, groups: false, news: false };
    this.incoming = []; // new messages from others this batch (notifications)
  }

  // ---- names -------------------------------------------------------------

  setName(peer, name) {
    if (peer && name && this.names.get(peer) !== name) {
      this.names.set(peer, name);
      this.dirty.list = true;
      this.dirty.header = true;
    }
  }

  name(peer) {
    if (!peer) return '?';
    if (peer === this.me.id) return this.me.name || 'You';
    return this.names.get(peer) || peer.slice(0, 8);
  }

  title(c) {
    if (!c) return '';
    if (c.name) return c.name;
    if (!c.group) return this.name(c.conv.slice(2));
    return `#${c.conv.slice(2, 10)}`;
  }

  // ---- conversations -----------------------------------------------------

  conv(conv, create = false) {
    if (typeof conv !== 'string' || !/^[pg]:./.test(conv)) return null;
    let c = this.convs.get(conv);
    if (!c && create) {
      c = {
        conv, group: conv[0] === 'g', name: null, online: null, unread: 0, lastTs: 0, link: null,
        left: false, contact: false, requested: false, typing: new Map(), admins: [], members: [], lastText: '',
      };
      this.convs.set(conv, c);
      this.dirty.list = true;
    }
    return c;
  }

  peerConv(peer, create = false) {
    return peer ? this.conv(`p:${peer}`, create) : null;
  }

  /** Newest activity first; contacts without messages after, by name. */
  sorted() {
    return [...this.convs.values()]
      .filter((c) => c.group || c.contact || c.requested || c.lastTs || c.unread || c.conv === this.sel)
      .sort((a, b) => (b.lastTs - a.lastTs) || this.title(a).localeCompare(this.title(b)) ||
        a.conv.localeCompare(b.conv));
  }

  totalUnread() {
    let n = 0;
    for (const c of this.convs.values()) n += c.unread;
    return n;
  }

  // ---- replies to list requests -----------------------------------------

  gotWhoami(r) {
    if (r.peer_id) this.me.id = r.peer_id;
    if (r.name) this.me.name = r.name;
    this.dirty.header = true;
  }

  gotConversations(r, visible) {
    for (const o of r.conversations || []) {
      const c = this.conv(o.conv, true);
      if (!c) continue;
      if (o.name && !c.group) {
        c.name = o.name;
        this.setName(c.conv.slice(2), o.name);
      }
      c.lastTs = Math.max(c.lastTs, o.last_ts || 0);
      // the shown conversation is read as it arrives
      c.unread = this.sel === c.conv && visible ? 0 : (o.unread || 0);
    }
    this.dirty.list = true;
    this.dirty.title = true;
  }

  gotPeers(r) {
    if (!r.ok) return;
    for (const c of this.convs.values()) c.contact = false;
    for (const o of r.contacts || []) {
      const peer = typeof o === 'string' ? o : o.peer_id;
      const c = this.peerConv(peer, true);
      if (!c) continue;
      c.contact = true;
      if (typeof o.online === 'boolean') c.online = o.online;
      if (o.name) this.setName(peer, o.name);
    }
    this.requests.clear();
    for (const o of r.incoming || []) this.addRequest(o.from, o.name, o.message);
    for (const c of this.convs.values()) c.requested = false;
    for (const o of r.outgoing || []) {
      const to = typeof o.to === 'string' ? o.to : o.to?.peer_id;
      const c = this.peerConv(to, true);
      if (c && !c.contact) c.requested = true;
    }
    this.blocked = new Set((r.blocked || []).map((b) => (typeof b === 'string' ? b : b.peer_id)));
    this.dirty.list = true;
    this.dirty.requests = true;
    this.dirty.header = true;
  }

  gotGroups(r) {
    for (const o of r.groups || []) {
      const c = this.conv(`g:${o.group_id}`, true);
      if (!c) continue;
      if (o.name) c.name = o.name;
      c.left = !!o.left;
      c.admins = o.admins || [];
      c.members = o.members || [];
    }
    this.dirty.list = true;
    this.dirty.header = true;
  }

  addRequest(from, name, message) {
    const peer = typeof from === 'string' ? from : from?.peer_id;
    if (!peer) return;
    const n = (typeof from === 'object' && from?.name) || name || null;
    this.requests.set(peer, { peer, name: n, message: message || null });
    if (n) this.setName(peer, n);
    this.dirty.requests = true;
  }

  // ---- messages of the shown conversation --------------------------------

  select(conv) {
    this.sel = conv;
    this.msgs = [];
    this.more = false;
    this.loadingOlder = false;
    if (conv) this.conv(conv, true);
    this.dirty.all = true;
    this.dirty.list = true;
  }

  /** Rows are unique and stable: one we hold is replaced (its state may
   *  have changed), a new one added; display order is (ts, row). */
  merge(list) {
    const byRow = new Map(this.msgs.map((m, i) => [m.row, i]));
    let added = false;
    for (const m of list) {
      const i = byRow.get(m.row);
      if (i !== undefined) {
        const old = this.msgs[i];
        // a file's live progress is newer than what the database said
        if (old.file && m.file && old.file.state === 'active' && m.file.state === 'active') {
          m.file.offset = Math.max(m.file.offset || 0, old.file.offset || 0);
        }
        if (old.blob && !m.blob) m.blob = old.blob;
        if (JSON.stringify(old) !== JSON.stringify(m)) this.dirty.msgs.add(m.id);
        this.msgs[i] = m;
      } else {
        this.msgs.push(m);
        added = true;
      }
    }
    if (added) {
      this.msgs.sort((a, b) => (a.ts - b.ts) || (a.row - b.row));
      this.dirty.all = true;
    }
    return added;
  }

  msgById(id) {
    for (let i = this.msgs.length - 1; id && i >= 0; i--) if (this.msgs[i].id === id) return this.msgs[i];
    return null;
  }

  msgByFile(fileId) {
    for (let i = this.msgs.length - 1; fileId && i >= 0; i--) {
      if (this.msgs[i].file?.file_id === fileId) return this.msgs[i];
    }
    return null;
  }

  applyEdit(id, text) {
    const m = this.msgById(id);
    if (m && typeof text === 'string') {
      m.text = text;
      m.edited = true;
      this.dirty.msgs.add(m.id);
    }
  }

  applyDelete(id) {
    const m = this.msgById(id);
    if (m) {
      m.text = '';
      m.deleted = true;
      this.dirty.msgs.add(m.id);
    }
  }

  applyReaction(id, from, emoji, remove) {
    const m = this.msgById(id);
    if (!m || !from || !emoji) return;
    m.reactions = m.reactions || [];
    const i = m.reactions.findIndex((r) => r.from === from && r.emoji === emoji);
    if (remove && i >= 0) m.reactions.splice(i, 1);
    else if (!remove && i < 0) m.reactions.push({ from, emoji });
    this.dirty.msgs.add(m.id);
  }

  // ---- events ----------------------------------------------------------------

  apply(ev, ctx) {
    const fn = this[`ev_${ev.event}`];
    if (fn) fn.call(this, ev, ctx);
  }

  ev_signal(ev) {
    const wasOnline = this.signal.state === 'online';
    this.signal = {
      state: ev.state,
      reason: ev.reason || null,
      retryAt: ev.retry_ms ? Date.now() + ev.retry_ms : 0,
    };
    this.dirty.banner = true;
    this.dirty.header = true;
    // contacts and presence need the server
    if (ev.state === 'online' && !wasOnline) Object.assign(this.want, { convs: true, peers: true, groups: true });
  }

  ev_login(ev) {
    if (ev.peer_id) this.me.id = ev.peer_id;
    if (ev.name) this.me.name = ev.name;
    this.dirty.header = true;
  }

  ev_presence(ev) {
    this.setName(ev.peer_id, ev.name);
    const c = this.peerConv(ev.peer_id, true);
    if (c) {
      c.online = !!ev.online;
      this.dirty.list = true;
      if (c.conv === this.sel) this.dirty.header = true;
    }
  }

  ev_contact_request(ev, ctx) {
    this.addRequest(ev.from, ev.name, ev.message);
    const peer = typeof ev.from === 'string' ? ev.from : ev.from?.peer_id;
    ctx?.notice?.(`Contact request from ${this.name(peer)}`);
    this.incoming.push({ kind: 'request', peer, text: ev.message || 'wants to add you as a contact' });
  }

  ev_contact_added(ev, ctx) {
    this.setName(ev.peer_id, ev.name);
    this.requests.delete(ev.peer_id);
    const c = this.peerConv(ev.peer_id, true);
    if (c) c.contact = true;
    this.dirty.requests = true;
    this.dirty.list = true;
    this.dirty.header = true;
    this.want.peers = true;
    ctx?.notice?.(`${this.name(ev.peer_id)} is a contact now`);
  }

  ev_contact_refused(ev, ctx) {
    this.requests.delete(ev.peer_id);
    this.dirty.requests = true;
    this.want.peers = true;
    ctx?.notice?.(`${this.name(ev.peer_id)} refused the request`);
  }

  ev_contact_removed(ev, ctx) {
    this.requests.delete(ev.peer_id);
    this.dirty.requests = true;
    this.want.peers = true;
    ctx?.notice?.(`${this.name(ev.peer_id)} is no longer a contact`);
  }

  ev_link(ev) {
    const c = this.peerConv(ev.peer_id, false);
    if (c && ev.state) {
      c.link = ev.state;
      if (c.conv === this.sel) this.dirty.header = true;
    }
  }

  ev_key_changed(ev, ctx) {
    if (!ev.peer_id) return;
    this.keyChanges.set(ev.peer_id, ev.safety || '');
    this.dirty.header = true;
    this.dirty.list = true;
    ctx?.keyChanged?.(ev.peer_id, ev.safety);
  }

  ev_message(ev, ctx) {
    const c = this.conv(ev.conv, true);
    if (!c) return;
    const mine = ev.from && ev.from === this.me.id;
    if (ev.from) c.typing.delete(ev.from);
    const shown = c.conv === this.sel;
    if (!mine) {
      if (!shown || !ctx?.visible) c.unread++;
      this.incoming.push({ kind: 'message', conv: c.conv, from: ev.from, text: ev.text ?? ev.name ?? '' });
    }
    c.lastTs = Math.max(c.lastTs, ev.ts || Date.now());
    if (shown) this.want.news = true;
    this.want.convs = true;
    this.dirty.list = true;
    this.dirty.title = true;
    this.dirty.typing = true;
  }

  ev_status(ev) {
    const m = this.msgById(ev.id);
    if (!m) return;
    if (this.sel && this.sel[0] === 'g') {
      // a group message is delivered when every member has it: ask
      this.want.news = true;
      return;
    }
    const rank = STATUS_RANK[ev.status] || 0;
    if (rank > (STATUS_RANK[m.status] || 0) && rank > 1) {
      m.status = ev.status;
      this.dirty.msgs.add(m.id);
    } else if (ev.status === 'sent' && m.status === 'pending') {
      m.sent = true; // on its way: still one mark, but no longer waiting here
      this.dirty.msgs.add(m.id);
    }
  }

  ev_typing(ev) {
    const c = this.conv(ev.conv, false);
    if (!c || !ev.from || ev.from === this.me.id) return;
    if (ev.typing) c.typing.set(ev.from, Date.now() + TYPING_SHOWN_MS);
    else c.typing.delete(ev.from);
    this.dirty.typing = true;
    this.dirty.list = true;
  }

  /** Drops typing marks whose end never came; true when one went. */
  expireTyping(now = Date.now()) {
    let changed = false;
    for (const c of this.convs.values()) {
      for (const [who, until] of c.typing) {
        if (until < now) {
          c.typing.delete(who);
          changed = true;
        }
      }
    }
    if (changed) {
      this.dirty.typing = true;
      this.dirty.list = true;
    }
    return changed;
  }

  ev_reaction(ev) {
    if (ev.conv === this.sel) this.applyReaction(ev.target, ev.from, ev.emoji, !!ev.remove);
  }

  ev_edit(ev) {
    if (ev.conv === this.sel) this.applyEdit(ev.target, ev.text);
    this.want.convs = true;
  }

  ev_delete(ev) {
    if (ev.conv === this.sel) this.applyDelete(ev.target);
  }

  ev_file_offer(ev, ctx) {
    this.ev_message({ ...ev, text: ev.voice_ms ? 'Voice message' : `File: ${ev.name || ''}` }, ctx);
  }

  fileOf(ev) {
    if (ev.conv !== this.sel) return null;
    const m = this.msgByFile(ev.file_id);
    if (!m) {
      this.want.news = true; // its row is not here yet
      return null;
    }
    this.dirty.msgs.add(m.id);
    return m.file;
  }

  ev_file_progress(ev) {
    const f = this.fileOf(ev);
    if (f) {
      f.offset = Math.max(f.offset || 0, ev.bytes || 0);
      if (ev.size) f.size = ev.size;
      f.state = 'active';
    }
  }

  ev_file_complete(ev) {
    const f = this.fileOf(ev);
    if (f) {
      f.offset = f.size;
      f.state = 'complete';
      if (ev.sha256) f.sha256 = ev.sha256;
    }
  }

  ev_file_failed(ev, ctx) {
    const e = ev.error || 'failed';
    const f = this.fileOf(ev);
    if (f) {
      f.state = e.startsWith('cancelled') ? 'cancelled' : 'failed';
      f.error = e;
    }
    if (!e.startsWith('cancelled')) ctx?.notice?.(`File transfer: ${e}`, true);
  }

  ev_group(ev, ctx) {
    const c = this.conv(`g:${ev.group_id}`, true);
    if (c) {
      if (ev.name) c.name = ev.name;
      if (Array.isArray(ev.admins)) c.admins = ev.admins;
      if (Array.isArray(ev.members)) c.members = ev.members;
      if (this.me.id && Array.isArray(ev.members) && !ev.members.includes(this.me.id)) c.left = true;
      if (c.conv === this.sel) this.dirty.header = true;
    }
    if (ev.change) ctx?.notice?.(`${ev.name || 'Group'}: ${ev.change}`);
    this.want.groups = true;
    this.want.convs = true;
    if (this.sel && this.sel[0] === 'g') this.want.news = true; // system lines ("X left")
    this.dirty.list = true;
  }

  ev_error(ev, ctx) {
    ctx?.notice?.(ev.message || 'error', true);
  }
}
