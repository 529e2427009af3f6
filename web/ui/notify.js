// notify.js - what reaches the user outside the conversation: the unread
// count in the tab title, system notifications while the tab is hidden
// (permission asked only from a click on "Turn on"), the screen-reader
// announcer, and the light/dark theme choice.
import { $ } from './dom.js';

const BASE_TITLE = 'EchoLink';
const THEME_KEY = 'echolink.theme';
const NOTIFY_DISMISSED_KEY = 'echolink.notify-dismissed';

export function setTitle(unread) {
  const t = unread > 0 ? `(${unread > 999 ? '999+' : unread}) ${BASE_TITLE}` : BASE_TITLE;
  if (document.title !== t) document.title = t;
}

/** Reads text to screen readers (polite; never steals focus). */
export function announce(text) {
  const el = $('announcer');
  const p = document.createElement('p');
  p.textContent = text;
  el.append(p);
  while (el.childElementCount > 5) el.firstElementChild.remove();
}

export class Notifier {
  constructor(onClick) {
    this.onClick = onClick;
    this.offer();
    $('notify-enable').addEventListener('click', () => this.ask());
    $('notify-dismiss').addEventListener('click', () => {
      localStorage.setItem(NOTIFY_DISMISSED_KEY, '1');
      this.offer();
    });
  }

  static get available() {
    return typeof Notification !== 'undefined';
  }

  /** Shows the "Turn on" offer while the question is still open. */
  offer() {
    $('notify-offer').hidden = !Notifier.available || Notification.permission !== 'default' ||
      localStorage.getItem(NOTIFY_DISMISSED_KEY) === '1';
  }

  async ask() {
    if (!Notifier.available) return 'unsupported';
    let p = Notification.permission;
    try {
      if (p === 'default') p = await Notification.requestPermission();
    } catch {
      p = 'denied';
    }
    this.offer();
    return p;
  }

  /** A notification, only while the page is not looked at. */
  show(title, body, tag) {
    if (!Notifier.available || Notification.permission !== 'granted' || document.visibilityState === 'visible') return;
    try {
      const n = new Notification(title, { body: body.length > 200 ? `${body.slice(0, 200)}…` : body, tag, renotify: true, silent: false });
      n.addEventListener('click', () => {
        window.focus();
        this.onClick(tag);
        n.close();
      });
    } catch {
      // some platforms only allow notifications from a service worker
    }
  }
}

// ---- theme ------------------------------------------------------------------------

export function systemDark() {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false;
}

/** 'light' | 'dark' | null (follow the system) */
export function savedTheme() {
  const t = localStorage.getItem(THEME_KEY);
  return t === 'light' || t === 'dark' ? t : null;
}

/** theme: 'light' | 'dark' | null (follow the system); <html> always gets
 *  the resolved one (the stylesheet knows only [data-theme]). */
export function applyTheme(theme) {
  const root = document.documentElement;
  const dark = theme ? theme === 'dark' : systemDark();
  root.dataset.theme = dark ? 'dark' : 'light';
  const btn = $('theme-toggle');
  if (btn) {
    btn.setAttribute('aria-label', dark ? 'Switch to the light theme' : 'Switch to the dark theme');
    btn.title = btn.getAttribute('aria-label');
    btn.dataset.dark = dark ? '1' : '0';
  }
}

export function toggleTheme() {
  const dark = savedTheme() ? savedTheme() === 'dark' : systemDark();
  const next = dark ? 'light' : 'dark';
  // back to "follow the system" when the choice matches it
  if ((next === 'dark') === systemDark()) localStorage.removeItem(THEME_KEY);
  else localStorage.setItem(THEME_KEY, next);
  applyTheme(savedTheme() || null);
  return next;
}

export function initTheme() {
  applyTheme(savedTheme());
  window.matchMedia?.('(prefers-color-scheme: dark)').addEventListener?.('change', () => applyTheme(savedTheme()));
}
