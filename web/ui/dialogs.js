// dialogs.js - the app's dialogs: profile (name, peer ID, invite link,
// backup, theme, notifications), add contact, export backup, safety
// number, contact details, new group, group details, and the key-change
// alert. Each talks to the core only through app.ask (client.request).
import { download, h, parsePeerRef, setAvatar, shortId } from './dom.js';
import { confirmDialog, showAlert, showDialog } from './dialog.js';
import { toggleTheme } from './notify.js';

/** Throws the reply's error, so the dialog shows it and stays open. */
function must(r) {
  if (!r.ok) throw new Error(r.error || 'the request failed');
  return r;
}

function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div.field', null, h('label', { for: id, text: label }), input, hint ? h('p.hint.muted', { text: hint }) : null);
}

function copyRow(label, value, app, what) {
  const out = h('output.mono.copy-value', { text: value, title: value });
  return h('div.field', null,
    h('span.label', { text: label }),
    h('div.copy-row', null, out,
      h('button.plain.small', { type: 'button', text: 'Copy', 'aria-label': `Copy ${what}`,
        onclick: () => app.copy(value, `${what[0].toUpperCase()}${what.slice(1)} copied`) })));
}

// ---- profile ----------------------------------------------------------------

export async function profileDialog(app) {
  const m = app.model;
  const name = h('input', { value: m.me.name || '', maxlength: '64', autocomplete: 'nickname', required: true });
  const invite = await app.ask({ cmd: 'invite' }, { quiet: true });
  const link = invite.ok ? invite.link : `${location.origin}/#/invite/${m.me.id}`;
  const av = h('span.avatar.big', { 'aria-hidden': 'true' });
  setAvatar(av, m.me.id, m.me.name);
  const notifyState = typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
  showDialog({
    title: 'Profile',
    body: [
      h('div.profile-top', null, av, h('p.muted', { text: 'Your identity is stored in this browser. Export a backup to keep it if you clear your browser data or move to a new device.' })),
      field('Display name', name, 'What your contacts see.'),
      copyRow('Your peer ID', m.me.id || '', app, 'peer ID'),
      copyRow('Invite link', link, app, 'invite link'),
      h('div.settings-row', null,
        h('button.plain', { type: 'button', text: 'Export backup…', onclick: () => exportDialog(app) }),
        h('button.plain', { type: 'button', text: 'Switch theme', onclick: () => app.setTheme(toggleTheme()) }),
        notifyState === 'default'
          ? h('button.plain', { type: 'button', text: 'Turn on notifications', onclick: (e) => app.notifier.ask().then((p) => { e.target.textContent = `Notifications: ${p}`; }) })
          : h('span.muted.small', { text: `Notifications: ${notifyState === 'granted' ? 'on' : notifyState === 'denied' ? 'blocked in the browser' : 'not available'}` })),
    ],
    actions: [{ label: 'Close' }, { label: 'Save', primary: true }],
    submit: async () => {
      const v = name.value.trim();
      if (!v) throw new Error('A name is needed');
      if (v !== m.me.name) {
        must(await app.ask({ cmd: 'set_name', name: v }, { quiet: true }));
        m.me.name = v;
        app.renderHeader();
        app.toast('Name saved');
      }
    },
  });
}

export function exportDialog(app) {
  const p1 = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: '8' });
  const p2 = h('input', { type: 'password', autocomplete: 'new-password', required: true });
  showDialog({
    title: 'Export backup',
    body: [
      h('p.muted', { text: 'The backup holds your identity key, encrypted with this passphrase. Keep both safe: anyone with the file and the passphrase can be you.' }),
      field('Passphrase', p1, 'At least 8 characters.'),
      field('Repeat the passphrase', p2),
    ],
    actions: [{ label: 'Cancel' }, { label: 'Download backup', primary: true }],
    submit: async () => {
      if (p1.value.length < 8) throw new Error('The passphrase needs at least 8 characters');
      if (p1.value !== p2.value) throw new Error('The passphrases differ');
      const r = must(await app.ask({ cmd: 'export', passphrase: p1.value }, { quiet: true }));
      download(new Blob([r.backup], { type: 'application/json' }), `echolink-backup-${shortId(app.model.me.id)}.json`);
      app.toast('Backup downloaded');
    },
  });
}

// ---- contacts -----------------------------------------------------------------

export function addContactDialog(app, prefill = '') {
  const ref = h('input', { value: prefill, required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'Peer ID or invite link', class: 'mono' });
  const msg = h('input', { maxlength: '512', autocomplete: 'off', placeholder: 'Hi, it’s …' });
  showDialog({
    title: 'Add contact',
    body: [
      h('p.muted', { text: 'Ask them for their peer ID or invite link (Profile shows yours). They get a contact request to accept.' }),
      field('Peer ID or invite link', ref),
      field('Message (optional)', msg),
    ],
    actions: [{ label: 'Cancel' }, { label: 'Send request', primary: true }],
    submit: async () => {
      const peer = parsePeerRef(ref.value);
      if (!peer) throw new Error('That is not a peer ID (32 characters of a–z and 2–7) or an invite link');
      if (peer === app.model.me.id) throw new Error('That is your own peer ID');
      const req = { cmd: 'add', peer };
      if (msg.value.trim()) req.message = msg.value.trim();
      must(await app.ask(req, { quiet: true }));
      const c = app.model.peerConv(peer, true);
      if (!c.contact) c.requested = true;
      app.model.dirty.list = true;
      app.toast(`Contact request sent to ${app.model.name(peer)}`);
      app.want({ peers: true });
      app.render();
    },
  });
}

/** The 60-digit safety number, and "mark verified". */
export async function verifyDialog(app, peer) {
  const r = await app.ask({ cmd: 'verify', peer }, { quiet: true });
  const who = app.model.name(peer);
  if (!r.ok) {
    showDialog({
      title: `Safety number with ${who}`,
      body: [h('p', { text: r.code === 'not_found' || /not.?found|no key/i.test(r.error || '')
        ? `There is no safety number yet: it exists once you and ${who} have connected for the first time. Send a message and try again.`
        : r.error || 'The safety number is not available.' })],
      actions: [{ label: 'Close', primary: true }],
    });
    return;
  }
  const groups = String(r.safety).replace(/\s+/g, ' ').trim().split(' ');
  const grid = h('div.safety-grid', { role: 'group', 'aria-label': 'Safety number' },
    ...groups.map((g) => h('span', { text: g })));
  showDialog({
    title: `Verify ${who}`,
    body: [
      h('p.muted', { text: `Compare these numbers with the ones ${who} sees — in person or on a call you trust. If they match, your conversation is private: nobody sits between you.` }),
      grid,
      app.model.keyChanges.has(peer) ? h('p.warn-text', { text: 'Their key changed recently. Accepting it clears the warning.' }) : null,
    ],
    actions: [
      { label: 'Copy', onClick: () => { app.copy(groups.join(' '), 'Safety number copied'); return false; } },
      { label: 'Close' },
      { label: 'Mark as verified', primary: true },
    ],
    submit: async () => {
      if (app.model.keyChanges.has(peer)) must(await app.ask({ cmd: 'accept_key', peer }, { quiet: true }));
      must(await app.ask({ cmd: 'verify', peer, confirm: true }, { quiet: true }));
      app.keyAccepted(peer);
      app.toast(`${who} is verified`);
    },
  });
}

/** The red alert of a key change: it needs an answer. */
export function keyChangedAlert(app, peer, safety) {
  const who = app.model.name(peer);
  showAlert({
    title: `${who}'s safety number changed`,
    body: [
      h('p', { text: `The key ${who} uses is not the one you saw before. They may have reinstalled EchoLink or moved to a new device — or someone may be trying to intercept your messages.` }),
      h('p', { text: 'Messages to them are held until you accept the new key. Compare the new safety number with them first.' }),
      safety ? h('div.safety-grid.small', { 'aria-label': 'New safety number' }, ...String(safety).trim().split(/\s+/).map((g) => h('span', { text: g }))) : null,
    ].filter(Boolean),
    actions: [
      { label: 'Later', onClick: () => app.open(`p:${peer}`) },
      { label: 'Compare numbers', onClick: () => { app.open(`p:${peer}`); verifyDialog(app, peer); } },
      { label: 'Accept new key', danger: true, onClick: () => app.acceptKey(peer, { quietConfirm: true }) },
    ],
  });
}

export function peerDetailsDialog(app, peer) {
  const m = app.model;
  const c = m.peerConv(peer, true);
  const who = m.name(peer);
  const blocked = m.blocked.has(peer);
  const av = h('span.avatar.big', { 'aria-hidden': 'true' });
  setAvatar(av, c.conv, who);
  const dlg = showDialog({
    title: who,
    body: [
      h('div.profile-top', null, av, h('div', null,
        h('p', { text: c.online ? 'Online' : c.online === false ? 'Offline' : '' }),
        h('p.muted', { text: c.contact ? 'Contact' : blocked ? 'Blocked' : 'Not a contact' }))),
      copyRow('Peer ID', peer, app, 'peer ID'),
      h('div.settings-col', null,
        h('button.plain', { type: 'button', text: 'Verify safety number…', onclick: () => { dlg.close(); verifyDialog(app, peer); } }),
        !c.contact && !blocked ? h('button.plain', { type: 'button', text: 'Send a contact request', onclick: () => { dlg.close(); addContactDialog(app, peer); } }) : null,
        c.contact ? h('button.plain.danger-text', { type: 'button', text: 'Remove contact', onclick: async () => {
          dlg.close();
          if (await confirmDialog('Remove contact', `Remove ${who} from your contacts? The conversation stays.`, 'Remove', true)) app.peerOp('remove', peer);
        } }) : null,
        blocked
          ? h('button.plain', { type: 'button', text: 'Unblock', onclick: () => { dlg.close(); app.peerOp('unblock', peer); } })
          : h('button.plain.danger-text', { type: 'button', text: 'Block', onclick: async () => {
            dlg.close();
            if (await confirmDialog('Block', `Block ${who}? They can no longer reach you, and they stop being a contact.`, 'Block', true)) app.peerOp('block', peer);
          } })),
    ],
    actions: [{ label: 'Close', primary: true }],
  });
}

// ---- groups --------------------------------------------------------------------

function contactPicker(app, exclude = new Set()) {
  const m = app.model;
  const contacts = [...m.convs.values()].filter((c) => !c.group && c.contact && !exclude.has(c.conv.slice(2)));
  const box = h('fieldset.picker', null, h('legend', { text: 'Members' }));
  if (!contacts.length) box.append(h('p.muted', { text: 'No contacts to choose from yet.' }));
  for (const c of contacts.sort((a, b) => m.title(a).localeCompare(m.title(b)))) {
    const peer = c.conv.slice(2);
    const id = `pick-${peer}`;
    const av = h('span.avatar.small', { 'aria-hidden': 'true' });
    setAvatar(av, c.conv, m.title(c));
    box.append(h('div.pick', null, h('input', { type: 'checkbox', id, value: peer }), h('label', { for: id }, av, m.title(c))));
  }
  box.values = () => [...box.querySelectorAll('input:checked')].map((i) => i.value);
  return box;
}

export function newGroupDialog(app) {
  const name = h('input', { maxlength: '128', required: true, autocomplete: 'off', placeholder: 'Group name' });
  const picker = contactPicker(app);
  showDialog({
    title: 'New group',
    body: [field('Name', name), picker],
    actions: [{ label: 'Cancel' }, { label: 'Create', primary: true }],
    submit: async () => {
      const members = picker.values();
      if (!name.value.trim()) throw new Error('The group needs a name');
      if (!members.length) throw new Error('Choose at least one member');
      must(await app.ask({ cmd: 'group_create', name: name.value.trim(), members }, { quiet: true }));
      app.pendingGroupOpen = name.value.trim();
      app.want({ groups: true, convs: true });
      app.toast('Group created');
    },
  });
}

export function groupDialog(app, conv) {
  const m = app.model;
  const c = m.conv(conv);
  if (!c) return;
  const gid = conv.slice(2);
  const admin = c.admins.includes(m.me.id) && !c.left;
  const op = async (req, done) => {
    const r = await app.ask({ ...req, group_id: gid });
    if (r.ok) {
      app.toast(done);
      app.want({ groups: true, convs: true, news: true });
      dlg.close();
    }
  };
  const members = h('ul.member-list');
  for (const p of c.members) {
    const isAdmin = c.admins.includes(p);
    const av = h('span.avatar.small', { 'aria-hidden': 'true' });
    const who = p === m.me.id ? 'You' : m.name(p);
    setAvatar(av, `p:${p}`, who);
    members.append(h('li', null, av, h('span.member-name', { text: who }), isAdmin ? h('span.tag', { text: 'admin' }) : null,
      admin && p !== m.me.id ? h('span.member-actions', null,
        !isAdmin ? h('button.plain.small', { type: 'button', text: 'Make admin', 'aria-label': `Hand admin over to ${who}`,
          onclick: async () => {
            if (await confirmDialog('Hand over admin', `Make ${who} the admin? You stop being one.`, 'Hand over')) op({ cmd: 'group_admin', peer: p }, `${who} is the admin now`);
          } }) : null,
        h('button.plain.small.danger-text', { type: 'button', text: 'Remove', 'aria-label': `Remove ${who}`,
          onclick: async () => {
            if (await confirmDialog('Remove member', `Remove ${who} from ${m.title(c)}?`, 'Remove', true)) op({ cmd: 'group_remove', peer: p }, `${who} removed`);
          } })) : null));
  }
  const body = [
    h('p.muted', { text: c.left ? 'You left this group.' : `${c.members.length} members${admin ? ' · you are an admin' : ''}` }),
    members,
  ];
  let rename = null;
  let picker = null;
  if (admin) {
    rename = h('input', { value: c.name || '', maxlength: '128', autocomplete: 'off' });
    body.unshift(field('Group name', rename));
    picker = contactPicker(app, new Set(c.members));
    picker.querySelector('legend').textContent = 'Add members';
    body.push(picker);
  }
  const actions = [];
  if (!c.left) {
    actions.push({ label: 'Leave group', danger: true, onClick: async () => {
      if (!(await confirmDialog('Leave group', `Leave ${m.title(c)}? You will no longer get its messages.`, 'Leave', true))) return false;
      must(await app.ask({ cmd: 'group_leave', group_id: gid }, { quiet: true }));
      app.toast('You left the group');
      app.want({ groups: true, convs: true, news: true });
      return true;
    } });
  }
  actions.push({ label: 'Close' });
  if (admin) actions.push({ label: 'Save', primary: true });
  const dlg = showDialog({
    title: m.title(c),
    body,
    actions,
    submit: admin ? async () => {
      const nn = rename.value.trim();
      if (nn && nn !== c.name) must(await app.ask({ cmd: 'group_rename', group_id: gid, name: nn }, { quiet: true }));
      for (const p of picker.values()) must(await app.ask({ cmd: 'group_add', group_id: gid, peer: p }, { quiet: true }));
      app.want({ groups: true, convs: true, news: true });
    } : null,
  });
}
