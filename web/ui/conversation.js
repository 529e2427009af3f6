// conversation.js - the right pane: the header (name, presence, link state),
// the key-change warning, the messages (marks, replies, reactions, edits,
// deletes, files, voice), scrollback, search, the typing line and the
// composer (Enter sends, Shift+Enter a new line, Esc cancels a reply or an
// edit, Up in an empty composer edits my last message).
import { $, clear, dayKey, formatDay, formatDuration, formatTime, h, hue as hueOf, setAvatar, shortId } from './dom.js';
import { VoiceRecorder, fileBlock, isVoice } from './files.js';

export const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];
export const TYPING_IDLE_MS = 3000;
const GROUP_GAP_MS = 5 * 60 * 1000; // consecutive messages of one author within this share a header
const MARKS = { pending: '…', sent: '…', delivered: '✓', read: '✓✓' };
const MARK_LABEL = { pending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read' };

export class ConversationView {
  constructor(app) {
    this.app = app;
    this.model = app.model;
    this.list = $('messages');
    this.scroller = $('scroller');
    this.input = $('input');
    this.els = new Map(); // message id -> { el, sig }
    this.context = null;  // { mode: 'reply'|'edit', msg }
    this.typingConv = null;
    this.typingTimer = null;
    this.recorder = null;
    this.wire();
  }

  // ---- wiring ----------------------------------------------------------------

  wire() {
    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => this.onKey(e));
    this.input.addEventListener('input', () => {
      this.autosize();
      this.typingPoke();
    });
    $('ctx-cancel').addEventListener('click', () => this.cancelContext());
    $('attach').addEventListener('click', () => $('file-input').click());
    $('file-input').addEventListener('change', (e) => {
      const files = [...e.target.files];
      e.target.value = '';
      for (const f of files) this.app.sendFile(f);
    });
    $('record').addEventListener('click', () => this.startRecording());
    $('rec-cancel').addEventListener('click', () => this.stopRecording(false));
    $('rec-send').addEventListener('click', () => this.stopRecording(true));
    $('back').addEventListener('click', () => this.app.open(null));
    $('conv-info').addEventListener('click', () => this.app.details(this.model.sel));
    $('conv-search').addEventListener('click', () => this.openSearch(true));
    $('search-close').addEventListener('click', () => this.closeSearch());
    $('search-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.runSearch();
    });
    $('search-input').addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.closeSearch();
      }
    });
    $('jump').addEventListener('click', () => this.toBottom(true));
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    // a resize, an image or a player that grew: the newest stays in view
    if (typeof ResizeObserver !== 'undefined') {
      const ro = new ResizeObserver(() => { if (this.stick) this.toBottom(false); });
      ro.observe(this.scroller);
      ro.observe(this.list);
    }

    // drag and drop a file onto the conversation
    const pane = $('conv');
    pane.addEventListener('dragover', (e) => {
      if (e.dataTransfer?.types?.includes('Files') && this.canSendFiles()) {
        e.preventDefault();
        pane.classList.add('drop');
      }
    });
    pane.addEventListener('dragleave', (e) => { if (e.target === pane) pane.classList.remove('drop'); });
    pane.addEventListener('drop', (e) => {
      pane.classList.remove('drop');
      if (!e.dataTransfer?.files?.length || !this.canSendFiles()) return;
      e.preventDefault();
      for (const f of e.dataTransfer.files) this.app.sendFile(f);
    });

    // message actions: the ⋯ button, reaction chips, quotes
    this.list.addEventListener('click', (e) => {
      const menuBtn = e.target.closest('button.msg-menu');
      if (menuBtn) {
        this.openMenu(menuBtn.closest('li.msg').dataset.id, menuBtn);
        return;
      }
      const chip = e.target.closest('button.reaction');
      if (chip) {
        const m = this.model.msgById(chip.closest('li.msg').dataset.id);
        if (m) this.app.react(m, chip.dataset.emoji, chip.getAttribute('aria-pressed') === 'true');
        return;
      }
      const quote = e.target.closest('.quote[data-target]');
      if (quote) this.locate(quote.dataset.target);
    });
    this.list.addEventListener('dblclick', (e) => {
      const li = e.target.closest('li.msg');
      if (li && !e.target.closest('button, a, audio')) {
        const m = this.model.msgById(li.dataset.id);
        if (m && !m.deleted && m.kind !== 'system') this.app.react(m, REACTIONS[0], this.myReaction(m, REACTIONS[0]));
      }
    });
    // roving focus: one message in the tab order, arrows move between them
    this.list.addEventListener('keydown', (e) => {
      const li = e.target.closest('li.msg');
      if (!li) return;
      if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
        const all = [...this.list.querySelectorAll('li.msg')];
        const i = all.indexOf(li) + (e.key === 'ArrowUp' ? -1 : 1);
        if (all[i]) {
          e.preventDefault();
          this.focusMsg(all[i]);
        }
      } else if ((e.key === 'Enter' || e.key === ' ' || e.key === 'ContextMenu') && e.target === li) {
        e.preventDefault();
        this.openMenu(li.dataset.id, li.querySelector('button.msg-menu') || li);
      } else if (e.key === 'Escape') {
        this.input.focus();
      }
    });
    this.list.addEventListener('contextmenu', (e) => {
      const li = e.target.closest('li.msg');
      if (li && !e.target.closest('a, audio') && li.querySelector('button.msg-menu')) {
        e.preventDefault();
        this.openMenu(li.dataset.id, li.querySelector('button.msg-menu'), { x: e.clientX, y: e.clientY });
      }
    });
  }

  focusMsg(li) {
    this.list.querySelectorAll('li.msg[tabindex="0"]').forEach((x) => x.setAttribute('tabindex', '-1'));
    li.setAttribute('tabindex', '0');
    li.focus();
  }

  canSendFiles() {
    const sel = this.model.sel;
    return !!sel && sel.startsWith('p:'); // files go to one peer (PROTOCOL.md §12.3)
  }

  // ---- showing a conversation ------------------------------------------------

  show(conv) {
    this.typingStop();
    this.cancelContext();
    this.closeSearch();
    this.closeMenu();
    if (this.recorder) this.stopRecording(false);
    this.els.clear();
    clear(this.list);
    $('conv').hidden = !conv;
    $('pane-empty').hidden = !!conv;
    this.input.value = this.app.drafts.get(conv) || '';
    this.autosize();
    this.stick = true;
    if (conv) {
      this.renderHeader();
      this.renderTyping();
    }
  }

  renderHeader() {
    const m = this.model;
    const c = m.conv(m.sel);
    if (!c) return;
    const title = m.title(c);
    $('conv-name').textContent = title;
    setAvatar($('conv-avatar'), c.conv, title, c.group);
    const sub = $('conv-sub');
    clear(sub);
    const peer = c.conv.slice(2);
    if (c.group) {
      const names = c.members.map((p) => (p === m.me.id ? 'You' : m.name(p)));
      sub.textContent = c.left ? 'You left this group' : `${c.members.length} members${names.length ? ': ' : ''}${names.join(', ')}`;
    } else {
      const parts = [];
      if (m.blocked.has(peer)) parts.push(h('span.state-blocked', { text: 'Blocked' }));
      else if (!c.contact) parts.push(h('span', { text: 'Not a contact' }));
      if (c.online !== null) parts.push(h(`span.presence.${c.online ? 'on' : 'off'}`, { text: c.online ? 'online' : 'offline' }));
      const link = { ready: 'direct, end-to-end encrypted', connecting: 'connecting…', held: 'waiting to connect', idle: null }[c.link];
      if (link) parts.push(h(`span.link.link-${c.link}`, { text: link, 'data-link': c.link }));
      else if (c.online === false && c.contact) parts.push(h('span.link', { text: 'messages wait on the server, sealed' }));
      parts.forEach((p, i) => sub.append(...(i ? [' · ', p] : [p])));
      if (!parts.length) sub.textContent = shortId(peer);
    }
    $('conv').dataset.group = c.group ? '1' : '0';
    $('attach').hidden = c.group;
    $('call-audio').hidden = c.group; /* calls are between two people for now */
    $('call-video').hidden = c.group;
    $('record').hidden = c.group || !VoiceRecorder.supported();
    const blocked = c.left || (!c.group && m.blocked.has(peer));
    this.input.disabled = blocked;
    this.input.placeholder = blocked ? (c.left ? 'You left this group' : 'You blocked this contact') : 'Message';
    this.renderKeyWarning();
  }

  renderKeyWarning() {
    const m = this.model;
    const box = $('key-warning');
    const peer = m.sel?.startsWith('p:') ? m.sel.slice(2) : null;
    const changed = peer && m.keyChanges.has(peer);
    box.hidden = !changed;
    clear(box);
    if (!changed) return;
    box.append(
      h('span.kw-icon', { 'aria-hidden': 'true', text: '⚠' }),
      h('div.kw-text',
        h('strong', { text: `${m.name(peer)}'s safety number changed.` }),
        h('span', { text: ' They may have reinstalled EchoLink or moved to a new device — or someone may be intercepting. Compare the safety number with them before you trust it again. Messages to them wait until you accept the new key.' })),
      h('div.kw-actions',
        h('button.plain.small', { type: 'button', text: 'Compare numbers', onclick: () => this.app.verify(peer) }),
        h('button.danger.small', { type: 'button', text: 'Accept new key', onclick: () => this.app.acceptKey(peer) })));
  }

  renderTyping() {
    const m = this.model;
    const c = m.conv(m.sel);
    const who = c ? [...c.typing.keys()] : [];
    const el = $('typing');
    el.textContent = !who.length ? '' : c.group
      ? `${who.map((p) => m.name(p)).join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…`
      : `${m.title(c)} is typing…`;
    el.classList.toggle('on', who.length > 0);
  }

  // ---- messages ----------------------------------------------------------------

  /** Re-renders everything (new rows arrived, or the order changed). */
  renderAll() {
    const anchor = this.anchor();
    const nodes = [];
    let prev = null;
    const keep = new Map();
    for (const msg of this.model.msgs) {
      if (!prev || dayKey(prev.ts) !== dayKey(msg.ts)) {
        nodes.push(h('li.day', { role: 'separator' }, h('span', { text: formatDay(msg.ts) })));
      }
      const cont = !!prev && prev.from === msg.from && prev.kind !== 'system' && msg.kind !== 'system' &&
        dayKey(prev.ts) === dayKey(msg.ts) && msg.ts - prev.ts < GROUP_GAP_MS;
      const sig = this.signature(msg, cont);
      const old = this.els.get(msg.id);
      const el = old && old.sig === sig ? old.el : this.renderMsg(msg, cont);
      el.dataset.cont = cont ? '1' : '0';
      keep.set(msg.id, { el, sig });
      nodes.push(el);
      prev = msg;
    }
    this.els = keep;
    this.list.replaceChildren(...nodes);
    // one message in the tab order: the newest
    const tabbable = this.list.querySelector('li.msg[tabindex="0"]');
    if (!tabbable && nodes.length) {
      const last = [...this.list.querySelectorAll('li.msg')].pop();
      last?.setAttribute('tabindex', '0');
    }
    this.restore(anchor);
  }

  /** Re-renders the messages whose state changed, in place. */
  renderSome(ids) {
    const anchor = this.anchor();
    for (const id of ids) {
      const msg = this.model.msgById(id);
      const old = this.els.get(id);
      if (!msg || !old) continue;
      const cont = old.el.dataset.cont === '1';
      const sig = this.signature(msg, cont);
      if (sig === old.sig) continue;
      const el = this.renderMsg(msg, cont);
      el.dataset.cont = old.el.dataset.cont;
      if (old.el.getAttribute('tabindex') === '0') el.setAttribute('tabindex', '0');
      const hadFocus = old.el.contains(document.activeElement);
      old.el.replaceWith(el);
      this.els.set(id, { el, sig });
      if (hadFocus) el.focus();
    }
    this.restore(anchor);
  }

  signature(m, cont) {
    const quoted = m.reply_to ? this.model.msgById(m.reply_to) : null;
    const blob = m.file?.file_id ? !!this.app.blobs.get(m.file.file_id) : false;
    return JSON.stringify([m, cont, quoted?.text, quoted?.deleted, blob, this.model.name(m.from)]);
  }

  lastOwnEditable() {
    for (let i = this.model.msgs.length - 1; i >= 0; i--) {
      const m = this.model.msgs[i];
      if (m.outgoing && m.kind === 'chat' && !m.deleted) return m;
    }
    return null;
  }

  renderMsg(m, cont) {
    const model = this.model;
    if (m.kind === 'system') {
      return h('li.msg.system', { 'data-id': m.id, 'data-row': m.row, tabindex: '-1' },
        h('span', { text: m.text }), h('time', { text: ` · ${formatTime(m.ts)}`, datetime: new Date(m.ts).toISOString() }));
    }
    const out = !!m.outgoing;
    const group = model.sel?.startsWith('g:');
    const author = out ? 'You' : model.name(m.from);
    const li = h(`li.msg.${out ? 'out' : 'in'}`, {
      'data-id': m.id, 'data-row': m.row, 'data-status': out ? (m.status === 'pending' && m.sent ? 'sent' : m.status) : null,
      tabindex: '-1', 'aria-label': `${author}, ${formatTime(m.ts)}`,
    });
    const bubble = h('div.bubble');
    if (group && !out && !cont) {
      const a = h('span.author', { text: author });
      a.style.setProperty('--hue', String(hueOf(m.from)));
      bubble.append(a);
    }
    if (m.reply_to && !m.deleted) {
      const q = model.msgById(m.reply_to);
      bubble.append(h('div.quote', { 'data-target': m.reply_to, role: 'button', tabindex: '-1', title: 'Show the original message' },
        h('span.quote-author', { text: q ? (q.outgoing ? 'You' : model.name(q.from)) : 'Reply to' }),
        h('span.quote-text', { text: q ? (q.deleted ? 'Deleted message' : previewText(q)) : 'an earlier message' })));
    }
    if (m.deleted) {
      bubble.append(h('p.body.deleted', { text: out ? 'You deleted this message' : 'This message was deleted' }));
    } else if (m.file || m.kind === 'file' || m.kind === 'voice') {
      bubble.append(fileBlock(m, this.app.fileActions));
    } else {
      bubble.append(h('p.body', null, linkify(m.text || '')));
    }
    const meta = h('span.meta');
    if (m.edited && !m.deleted) meta.append(h('span.edited', { text: 'edited' }));
    meta.append(h('time', { text: formatTime(m.ts), datetime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString() }));
    if (out) {
      const st = m.status === 'pending' && m.sent ? 'sent' : (m.status || 'pending');
      meta.append(h(`span.mark.mark-${st}`, { text: MARKS[st] || '…', 'aria-label': MARK_LABEL[st] || st, title: MARK_LABEL[st] || st, role: 'img' }));
    }
    bubble.append(meta);
    li.append(bubble);
    if (m.reactions?.length && !m.deleted) li.append(this.reactionChips(m));
    if (!m.deleted) {
      li.append(h('button.msg-menu', { type: 'button', tabindex: '-1', 'aria-label': 'Message actions', 'aria-haspopup': 'menu', title: 'More', text: '⋯' }));
    }
    return li;
  }

  myReaction(m, emoji) {
    return !!m.reactions?.some((r) => r.from === this.model.me.id && r.emoji === emoji);
  }

  reactionChips(m) {
    const counts = new Map();
    for (const r of m.reactions) {
      const e = counts.get(r.emoji) || { n: 0, who: [], mine: false };
      e.n++;
      e.who.push(r.from === this.model.me.id ? 'You' : this.model.name(r.from));
      if (r.from === this.model.me.id) e.mine = true;
      counts.set(r.emoji, e);
    }
    const box = h('div.reactions');
    for (const [emoji, e] of counts) {
      box.append(h('button.reaction', {
        type: 'button', 'data-emoji': emoji, 'aria-pressed': e.mine ? 'true' : 'false', tabindex: '-1',
        title: e.who.join(', '), 'aria-label': `${emoji} ${e.n}: ${e.who.join(', ')}`,
      }, h('span.emoji', { text: emoji }), h('span.count', { text: String(e.n) })));
    }
    return box;
  }

  // ---- scrolling ------------------------------------------------------------------

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
  }

  /** What the user looks at, so a render does not move it. */
  anchor() {
    if (this.stick || this.atBottom()) return { bottom: true };
    const top = this.scroller.getBoundingClientRect().top;
    for (const li of this.list.children) {
      const r = li.getBoundingClientRect();
      if (r.bottom > top && li.dataset.id) return { id: li.dataset.id, offset: r.top - top };
    }
    return { bottom: false };
  }

  restore(a) {
    if (a.bottom) {
      this.toBottom(false);
      return;
    }
    const el = a.id ? this.els.get(a.id)?.el : null;
    if (el) {
      const top = this.scroller.getBoundingClientRect().top;
      this.scroller.scrollTop += el.getBoundingClientRect().top - top - a.offset;
    }
    $('jump').hidden = this.atBottom();
  }

  toBottom(smooth) {
    this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    this.stick = true;
    $('jump').hidden = true;
  }

  onScroll() {
    this.stick = this.atBottom();
    $('jump').hidden = this.stick;
    if (this.scroller.scrollTop < 200) this.app.loadOlder();
    if (this.stick) this.app.markRead();
  }

  /** Scrolls to a message, loading older pages until it is there. */
  async locate(id) {
    for (let i = 0; i < 30 && !this.model.msgById(id); i++) {
      if (!this.model.more) break;
      await this.app.loadOlder(true);
    }
    const el = this.els.get(id)?.el;
    if (!el) {
      this.app.toast('That message is not in the history any more');
      return;
    }
    this.stick = false;
    el.scrollIntoView({ block: 'center' });
    el.classList.remove('flash');
    void el.offsetWidth; // restart the animation
    el.classList.add('flash');
    this.focusMsg(el);
  }

  // ---- the message menu -----------------------------------------------------------

  openMenu(id, anchorEl, at = null) {
    const m = this.model.msgById(id);
    if (!m || m.deleted) return;
    const menu = $('menu');
    clear(menu);
    const close = () => this.closeMenu();
    const item = (label, fn, cls = '') => h(`button.menu-item${cls}`, { type: 'button', role: 'menuitem', tabindex: '-1', text: label,
      onclick: () => { close(); fn(); } });
    const row = h('div.menu-reactions', { role: 'group', 'aria-label': 'React' });
    for (const e of REACTIONS) {
      const mine = this.myReaction(m, e);
      row.append(h('button.menu-emoji', { type: 'button', role: 'menuitemcheckbox', tabindex: '-1', 'aria-checked': mine ? 'true' : 'false',
        'aria-label': `React ${e}`, text: e, onclick: () => { close(); this.app.react(m, e, mine); } }));
    }
    if (m.kind !== 'system') menu.append(row);
    menu.append(item('Reply', () => this.setContext('reply', m)));
    if (m.text && m.kind === 'chat') menu.append(item('Copy text', () => this.app.copy(m.text, 'Copied')));
    if (m.outgoing && m.kind === 'chat') menu.append(item('Edit', () => this.setContext('edit', m)));
    if (m.outgoing) menu.append(item('Delete for everyone', () => this.app.remove(m), '.danger-text'));
    menu.hidden = false;
    const r = at ? { left: at.x, right: at.x, top: at.y, bottom: at.y } : anchorEl.getBoundingClientRect();
    const mw = menu.offsetWidth;
    const mh = menu.offsetHeight;
    let x = m.outgoing ? r.right - mw : r.left;
    let y = r.bottom + 4;
    if (y + mh > window.innerHeight - 8) y = Math.max(8, r.top - mh - 4);
    x = Math.max(8, Math.min(window.innerWidth - mw - 8, x));
    menu.style.left = `${x}px`;
    menu.style.top = `${y}px`;
    this.menuBack = anchorEl.closest('li.msg') || anchorEl;
    const items = [...menu.querySelectorAll('button')];
    items[0]?.focus();
    this.menuKeys = (e) => {
      const i = items.indexOf(document.activeElement);
      if (e.key === 'Escape' || e.key === 'Tab') {
        e.preventDefault();
        close();
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowRight') {
        e.preventDefault();
        items[(i + 1) % items.length].focus();
      } else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
        e.preventDefault();
        items[(i - 1 + items.length) % items.length].focus();
      }
    };
    this.menuOutside = (e) => { if (!menu.contains(e.target)) close(); };
    menu.addEventListener('keydown', this.menuKeys);
    setTimeout(() => document.addEventListener('pointerdown', this.menuOutside), 0);
  }

  closeMenu() {
    const menu = $('menu');
    if (menu.hidden) return;
    menu.hidden = true;
    menu.removeEventListener('keydown', this.menuKeys);
    document.removeEventListener('pointerdown', this.menuOutside);
    if (this.menuBack?.isConnected && menu.contains(document.activeElement)) this.menuBack.focus();
    else if (this.menuBack?.isConnected && document.activeElement === document.body) this.menuBack.focus();
  }

  // ---- the composer -------------------------------------------------------------

  setContext(mode, msg) {
    this.context = { mode, msg };
    $('compose-context').hidden = false;
    $('compose-context').dataset.mode = mode;
    $('ctx-label').textContent = mode === 'edit' ? 'Editing' : `Replying to ${msg.outgoing ? 'yourself' : this.model.name(msg.from)}`;
    $('ctx-quote').textContent = previewText(msg);
    if (mode === 'edit') {
      this.savedDraft = this.input.value;
      this.input.value = msg.text;
    }
    this.autosize();
    this.input.focus();
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
  }

  cancelContext() {
    if (!this.context) return false;
    if (this.context.mode === 'edit') this.input.value = this.savedDraft || '';
    this.context = null;
    $('compose-context').hidden = true;
    this.autosize();
    return true;
  }

  onKey(e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey) {
      e.preventDefault();
      this.submit();
    } else if (e.key === 'Escape') {
      if (this.cancelContext() || this.closeSearch()) e.preventDefault();
    } else if (e.key === 'ArrowUp' && !this.input.value && !this.context) {
      const m = this.lastOwnEditable();
      if (m) {
        e.preventDefault();
        this.setContext('edit', m);
      }
    }
  }

  autosize() {
    const t = this.input;
    t.style.height = 'auto';
    t.style.height = `${Math.min(t.scrollHeight, 180)}px`;
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text || !this.model.sel) return;
    const ctx = this.context;
    this.typingStop();
    this.input.value = '';
    this.app.drafts.delete(this.model.sel);
    this.context = null;
    $('compose-context').hidden = true;
    this.autosize();
    this.toBottom(false);
    const ok = ctx?.mode === 'edit'
      ? (ctx.msg.text === text ? true : await this.app.edit(ctx.msg, text))
      : await this.app.send(text, ctx?.mode === 'reply' ? ctx.msg.id : null);
    if (!ok && !this.input.value) this.input.value = text; // nothing lost on a failure
  }

  typingPoke() {
    const sel = this.model.sel;
    if (!sel) return;
    this.app.drafts.set(sel, this.input.value);
    if (!this.input.value || this.context?.mode === 'edit') {
      this.typingStop();
      return;
    }
    if (this.typingConv !== sel) {
      this.typingStop();
      this.typingConv = sel;
      this.app.quiet({ cmd: 'typing', conv: sel, typing: true });
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.typingStop(), TYPING_IDLE_MS);
  }

  typingStop() {
    clearTimeout(this.typingTimer);
    this.typingTimer = null;
    if (!this.typingConv) return;
    this.app.quiet({ cmd: 'typing', conv: this.typingConv, typing: false });
    this.typingConv = null;
  }

  // ---- voice -----------------------------------------------------------------------

  async startRecording() {
    if (this.recorder || !this.canSendFiles()) return;
    const rec = new VoiceRecorder();
    this.recorder = rec;
    $('recorder').hidden = false;
    $('composer').hidden = true;
    $('rec-time').textContent = '0:00';
    try {
      await rec.start((ms) => { $('rec-time').textContent = formatDuration(ms); });
      $('rec-send').focus();
    } catch (e) {
      this.recorder = null;
      $('recorder').hidden = true;
      $('composer').hidden = false;
      this.app.toast(`Cannot record: ${e.message || e}`, true);
    }
  }

  async stopRecording(send) {
    const rec = this.recorder;
    if (!rec) return;
    this.recorder = null;
    $('recorder').hidden = true;
    $('composer').hidden = false;
    this.input.focus();
    const r = send ? await rec.stop() : await rec.cancel();
    if (r) {
      const ext = r.blob.type.includes('ogg') ? 'ogg' : 'webm';
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      this.app.sendFile(r.blob, { name: `voice-${stamp}.${ext}`, voice_ms: Math.max(1, r.ms) });
    }
  }

  /** Esc anywhere in the pane: the innermost thing closes. */
  escape() {
    if (!$('menu').hidden) {
      this.closeMenu();
      return true;
    }
    if (this.recorder) {
      this.stopRecording(false);
      return true;
    }
    return this.cancelContext() || this.closeSearch();
  }

  // ---- search ------------------------------------------------------------------------

  openSearch(inConv, query = '') {
    this.searchScope = inConv ? this.model.sel : null;
    $('search-panel').hidden = false;
    $('search-input').placeholder = inConv ? `Search in ${this.model.title(this.model.conv(this.model.sel))}` : 'Search all conversations';
    $('search-input').value = query;
    clear($('search-results'));
    $('search-input').focus();
    if (query) this.runSearch();
  }

  closeSearch() {
    if ($('search-panel').hidden) return false;
    $('search-panel').hidden = true;
    this.input.focus();
    return true;
  }

  async runSearch() {
    const q = $('search-input').value.trim();
    const ul = clear($('search-results'));
    if (!q) return;
    const req = { cmd: 'search', query: q, limit: 50 };
    if (this.searchScope) req.conv = this.searchScope;
    const r = await this.app.ask(req);
    if (!r.ok) return;
    if (!r.messages?.length) {
      ul.append(h('li.muted.search-none', { text: `No messages match “${q}”` }));
      return;
    }
    for (const m of r.messages) {
      const c = this.model.conv(m.conv, true);
      ul.append(h('li', null, h('button.search-hit', {
        type: 'button',
        onclick: async () => {
          if (this.model.sel !== m.conv) await this.app.open(m.conv);
          $('search-panel').hidden = true;
          this.locate(m.id);
        },
      },
      h('span.hit-head',
        h('strong', { text: m.outgoing ? 'You' : this.model.name(m.from) }),
        this.searchScope ? null : h('span.muted', { text: ` in ${this.model.title(c)}` }),
        h('time.muted', { text: `${formatDay(m.ts)} ${formatTime(m.ts)}` })),
      h('span.hit-text', null, highlight(previewText(m), q)))));
    }
  }
}

export function previewText(m) {
  if (!m) return '';
  if (m.deleted) return 'Deleted message';
  if (isVoice(m)) return `Voice message${m.file?.voice_ms ? ` (${formatDuration(m.file.voice_ms)})` : ''}`;
  if (m.file || m.kind === 'file') return `File: ${m.file?.name || m.text || ''}`;
  const t = m.text || '';
  return t.length > 140 ? `${t.slice(0, 140)}…` : t;
}

/** Text with its http(s) links as anchors (opened in a new tab, no referrer). */
function linkify(text) {
  const out = [];
  const re = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer', text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function highlight(text, q) {
  const out = [];
  const lower = text.toLowerCase();
  const needle = q.toLowerCase();
  let i = 0;
  for (;;) {
    const j = needle ? lower.indexOf(needle, i) : -1;
    if (j < 0) break;
    if (j > i) out.push(text.slice(i, j));
    out.push(h('mark', { text: text.slice(j, j + needle.length) }));
    i = j + needle.length;
  }
  out.push(text.slice(i));
  return out;
}
