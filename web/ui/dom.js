// dom.js - small DOM and formatting helpers shared by the UI modules.
// Text always goes in through textContent (never innerHTML), so nothing a
// peer sends can become markup.

/** h('li.msg.out', {data-id: 'x', onclick: fn}, child, 'text', ...) */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  // h('p', child, ...): no attributes, the second argument is a child
  if (attrs instanceof Node || typeof attrs === 'string' || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = null;
  }
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'hidden') el.hidden = !!v;
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (k === 'disabled') el.disabled = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (id) => document.getElementById(id);

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** The first 8 characters of a peer ID: how the TUI shows unnamed peers. */
export const shortId = (id) => (id ? id.slice(0, 8) : '?');

/** One or two letters for an avatar. */
export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  if (!words.length) return '?';
  const first = [...words[0]][0] || '?';
  const second = words.length > 1 ? [...words[words.length - 1]][0] : '';
  return (first + (second || '')).toUpperCase();
}

/** A stable hue per peer or group, so a contact keeps its colour. */
export function hue(id) {
  let x = 0;
  for (const ch of String(id || '')) x = (x * 31 + ch.charCodeAt(0)) >>> 0;
  return x % 360;
}

export function setAvatar(el, id, name, group = false) {
  el.textContent = group ? '#' : initials(name);
  el.style.setProperty('--hue', String(hue(id)));
  el.classList.toggle('group', group);
}

export function formatTime(ts) {
  if (!ts) return '';
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** "Today", "Yesterday", or the date: the separators between days. */
export function formatDay(ts) {
  const d = new Date(ts);
  const now = new Date();
  if (sameDay(d, now)) return 'Today';
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return 'Yesterday';
  return d.toLocaleDateString([], { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
}

/** The conversation list's time: hh:mm today, else the short date. */
export function formatListTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (sameDay(d, new Date())) return formatTime(ts);
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function formatSize(n) {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A peer ID inside text: a bare ID, or an invite link (#/invite/<id>). */
export function parsePeerRef(text) {
  const t = String(text || '').trim();
  const m = t.match(/#\/invite\/([a-z2-7]{32})\b/) || t.match(/^([a-z2-7]{32})$/);
  return m ? m[1] : null;
}

/** Saves a Blob under a file name through a temporary link. */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API refused (no permission, insecure context): select-and-copy.
    const ta = h('textarea', { value: text, readonly: true, class: 'offscreen' });
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
    return ok;
  }
}
