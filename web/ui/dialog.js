// dialog.js - the one modal dialog of the page (#dlg), filled per use, and
// the alert dialog (#alert-dlg) for what must not be missed. Native
// <dialog>.showModal(): focus stays inside, Esc closes (the alert dialog
// ignores Esc: it needs an answer), focus returns where it was.
import { $, clear, h } from './dom.js';

let current = null;

/**
 * showDialog({ title, body: [nodes], actions: [{label, primary, danger, onClick}], submit, onClose })
 * `submit(form)`: runs on Enter and on the primary action; may be async; a
 * thrown Error's message is shown in the dialog and it stays open; resolve
 * to false to keep it open silently. Returns { close, setError, el }.
 */
export function showDialog({ title, body = [], actions = [], submit = null, onClose = null, wide = false }) {
  const dlg = $('dlg');
  if (current) current.close();
  const back = document.activeElement;
  $('dlg-title').textContent = title;
  clear($('dlg-body')).append(...body.filter(Boolean));
  $('dlg-error').textContent = '';
  dlg.classList.toggle('wide', wide);
  const foot = clear($('dlg-actions'));
  let busy = false;

  const ctl = {
    el: dlg,
    setError(msg) { $('dlg-error').textContent = msg || ''; },
    close() {
      if (current !== ctl) return;
      current = null;
      form.removeEventListener('submit', onSubmit);
      dlg.removeEventListener('close', onNativeClose);
      if (dlg.open) dlg.close();
      onClose?.();
      if (back && back.isConnected) back.focus();
    },
  };

  async function run(fn) {
    if (busy) return;
    busy = true;
    ctl.setError('');
    foot.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      const r = await fn();
      if (r !== false) ctl.close();
    } catch (e) {
      ctl.setError(e?.message || String(e));
    } finally {
      busy = false;
      foot.querySelectorAll('button').forEach((b) => { b.disabled = false; });
    }
  }

  const form = dlg.querySelector('form');
  function onSubmit(e) {
    // Enter in a field, or the primary button: ours, never the native close
    e.preventDefault();
    if (submit) run(() => submit(form));
  }
  function onNativeClose() { ctl.close(); }
  form.addEventListener('submit', onSubmit);
  dlg.addEventListener('close', onNativeClose);
  $('dlg-close').onclick = () => ctl.close();

  for (const a of actions) {
    const b = h(`button.${a.primary ? 'primary' : a.danger ? 'danger' : 'plain'}`, {
      type: a.primary && submit ? 'submit' : 'button', text: a.label,
    });
    if (!(a.primary && submit)) {
      b.addEventListener('click', () => (a.onClick ? run(a.onClick) : ctl.close()));
    }
    foot.append(b);
  }
  current = ctl;
  dlg.showModal();
  const first = dlg.querySelector('.dlg-body [autofocus], .dlg-body input:not([type=hidden]), .dlg-body textarea, .dlg-body select');
  (first || foot.querySelector('button.primary') || foot.querySelector('button'))?.focus();
  return ctl;
}

export function closeDialog() {
  current?.close();
}

export const dialogOpen = () => !!current || $('alert-dlg').open;

/** A yes/no question; resolves true or false. */
export function confirmDialog(title, text, yes = 'OK', danger = false) {
  return new Promise((resolve) => {
    let answered = false;
    showDialog({
      title,
      body: [h('p', { text })],
      actions: [
        { label: 'Cancel' },
        { label: yes, [danger ? 'danger' : 'primary']: true, onClick: () => { answered = true; resolve(true); } },
      ],
      onClose: () => { if (!answered) resolve(false); },
    });
  });
}

/**
 * The alert dialog: role=alertdialog, Esc does not dismiss it. actions as
 * above; each closes it after its onClick (a thrown error keeps it open).
 */
export function showAlert({ title, body = [], actions = [] }) {
  const dlg = $('alert-dlg');
  $('alert-title').textContent = title;
  clear($('alert-body')).append(...body);
  const foot = clear($('alert-actions'));
  const close = () => { if (dlg.open) dlg.close(); };
  for (const a of actions) {
    foot.append(h(`button.${a.primary ? 'primary' : a.danger ? 'danger' : 'plain'}`, {
      type: 'button',
      text: a.label,
      onclick: async () => {
        try {
          await a.onClick?.();
          close();
        } catch (e) {
          const p = h('p.error', { role: 'alert', text: e?.message || String(e) });
          $('alert-body').append(p);
        }
      },
    }));
  }
  if (!dlg.dataset.wired) {
    dlg.dataset.wired = '1';
    dlg.addEventListener('cancel', (e) => e.preventDefault()); // Esc: an answer is needed
  }
  if (!dlg.open) dlg.showModal();
  foot.querySelector('button')?.focus();
  return { close };
}
