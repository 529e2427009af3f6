// sidebar.js - the left column: who I am, the contact requests and the
// conversation list (contacts and groups together, newest activity first,
// with presence dots, unread counts and "typing…").
import { $, clear, formatListTime, h, setAvatar, shortId } from './dom.js';

export class Sidebar {
  /** app: { model, open(conv), respond(peer, verb), ... } */
  constructor(app) {
    this.app = app;
    this.list = $('conv-list');
    this.list.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-conv]');
      if (b) app.open(b.dataset.conv, { focus: true });
    });
    // Arrow keys move through the list; Tab leaves it (one stop, not fifty).
    this.list.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
      const items = [...this.list.querySelectorAll('button[data-conv]')];
      const i = items.indexOf(document.activeElement);
      const next = items[Math.max(0, Math.min(items.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))];
      if (next) {
        e.preventDefault();
        next.focus();
      }
    });
  }

  renderMe() {
    const m = this.app.model;
    setAvatar($('me-avatar'), m.me.id, m.me.name);
    $('me-name').textContent = m.me.name || (m.me.id ? shortId(m.me.id) : '…');
    const st = m.signal.state;
    $('me-status').textContent = st === 'online' ? 'Online' : st === 'offline' ? 'Offline' : st === 'stopped' ? 'Stopped' : 'Connecting…';
    $('me-status').dataset.state = st;
  }

  renderRequests() {
    const m = this.app.model;
    const ul = clear($('request-list'));
    $('requests').hidden = m.requests.size === 0;
    for (const r of m.requests.values()) {
      const who = r.name || shortId(r.peer);
      const av = h('span.avatar', { 'aria-hidden': 'true' });
      setAvatar(av, r.peer, who);
      ul.append(h('li.request', { 'data-peer': r.peer },
        av,
        h('div.req-text',
          h('strong', { text: who }),
          h('span.muted.mono', { text: r.peer, title: r.peer }),
          r.message ? h('q', { text: r.message }) : null),
        h('div.req-actions',
          h('button.primary.small', { type: 'button', text: 'Accept', 'aria-label': `Accept ${who}`,
            onclick: () => this.app.respond(r.peer, 'accept') }),
          h('button.plain.small', { type: 'button', text: 'Refuse', 'aria-label': `Refuse ${who}`,
            onclick: () => this.app.respond(r.peer, 'refuse') }),
          h('button.plain.small.danger-text', { type: 'button', text: 'Block', 'aria-label': `Block ${who}`,
            onclick: () => this.app.respond(r.peer, 'block') }))));
    }
  }

  renderList() {
    const m = this.app.model;
    const convs = m.sorted();
    const hadFocus = this.list.contains(document.activeElement) ? document.activeElement.dataset.conv : null;
    clear(this.list);
    $('conv-empty').hidden = convs.length > 0;
    const focusable = convs.find((c) => c.conv === m.sel) ? m.sel : convs[0]?.conv;
    for (const c of convs) this.list.append(this.item(c, c.conv === focusable));
    if (hadFocus) this.list.querySelector(`button[data-conv="${CSS.escape(hadFocus)}"]`)?.focus();
  }

  item(c, tabbable) {
    const m = this.app.model;
    const title = m.title(c);
    const av = h('span.avatar', { 'aria-hidden': 'true' });
    setAvatar(av, c.conv, title, c.group);
    if (!c.group && c.online !== null) av.append(h(`span.dot.${c.online ? 'on' : 'off'}`));
    const typing = [...c.typing.keys()];
    const peer = c.conv.slice(2);
    let sub;
    let subClass = 'ci-last';
    if (typing.length) {
      sub = c.group ? `${m.name(typing[0])} is typing…` : 'typing…';
      subClass += ' typing-text';
    } else if (!c.group && m.keyChanges.has(peer)) {
      sub = '⚠ Safety number changed';
      subClass += ' warn-text';
    } else if (c.lastText) {
      sub = c.lastText;
    } else if (c.group) {
      sub = c.left ? 'You left this group' : `Group · ${c.members.length || '?'} members`;
    } else if (!c.contact) {
      sub = m.blocked.has(peer) ? 'Blocked' : c.requested ? 'Request sent, waiting for an answer' : 'Not a contact';
    } else {
      sub = c.online ? 'Online' : c.online === false ? 'Offline' : shortId(peer);
    }
    const label = [title, c.group ? 'group' : c.online ? 'online' : c.online === false ? 'offline' : '',
      c.unread ? `${c.unread} unread` : '', typing.length ? 'typing' : ''].filter(Boolean).join(', ');
    return h('li', null,
      h('button.conv-item', {
        type: 'button', 'data-conv': c.conv, 'aria-current': c.conv === m.sel ? 'true' : null,
        'aria-label': label, tabindex: tabbable ? '0' : '-1',
      },
      av,
      h('span.ci-main',
        h('span.ci-top',
          h('span.ci-name', { text: title }),
          h('time.ci-time', { text: formatListTime(c.lastTs) })),
        h('span.ci-bottom',
          h(`span.${subClass.split(' ').join('.')}`, { text: sub }),
          c.unread ? h('span.badge', { text: c.unread > 99 ? '99+' : String(c.unread) }) : null))));
  }
}
