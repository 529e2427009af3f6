// files.js - file and voice messages: the block shown in a message (offer,
// progress, cancel, the finished file as a download link, an image preview
// or an audio player), the cache of the files' bytes as blob: URLs, and the
// voice recorder (MediaRecorder, Opus in WebM).
import { formatDuration, formatSize, h } from './dom.js';

const URL_CACHE_MAX = 200;

/** blob: URLs of finished files, by file_id (oldest revoked past the cap). */
export class BlobCache {
  constructor(request) {
    this.request = request;
    this.urls = new Map();    // file_id -> { url, mime, name }
    this.pending = new Map(); // file_id -> Promise
  }

  /** Our own file just sent: shown from its bytes at once. */
  putLocal(fileId, blob, name) {
    this.store(fileId, { url: URL.createObjectURL(blob), mime: blob.type || '', name });
  }

  store(fileId, entry) {
    this.urls.set(fileId, entry);
    while (this.urls.size > URL_CACHE_MAX) {
      const [oldId, old] = this.urls.entries().next().value;
      URL.revokeObjectURL(old.url);
      this.urls.delete(oldId);
    }
  }

  get(fileId) {
    return this.urls.get(fileId) || null;
  }

  /** Fetches a finished file's bytes once; resolves the entry or null. */
  load(fileId) {
    if (this.urls.has(fileId)) return Promise.resolve(this.urls.get(fileId));
    if (this.pending.has(fileId)) return this.pending.get(fileId);
    const p = this.request({ cmd: 'file_blob', file_id: fileId }).then((r) => {
      this.pending.delete(fileId);
      if (!r.ok || !r.blob) return null;
      this.store(fileId, { url: URL.createObjectURL(r.blob), mime: r.mime || r.blob.type || '', name: r.name });
      return this.urls.get(fileId);
    }, () => {
      this.pending.delete(fileId);
      return null;
    });
    this.pending.set(fileId, p);
    return p;
  }
}

export const isVoice = (m) => m.kind === 'voice' || (m.file?.voice_ms || 0) > 0;

/**
 * The body of a file message. actions: { accept(fileId), cancel(fileId),
 * blobs: BlobCache, loaded(fileId) (re-render when the bytes arrive) }.
 */
export function fileBlock(m, actions) {
  const f = m.file || { name: m.text, size: 0, state: 'offered' };
  const state = f.state || 'offered';
  const voice = isVoice(m);
  const out = !!m.outgoing;
  const box = h(`div.file.${voice ? 'voice' : 'doc'}`, { 'data-state': state, 'data-file-id': f.file_id });
  const size = formatSize(f.size || 0);
  const title = voice ? `Voice message · ${formatDuration(f.voice_ms || 0)}` : (f.name || m.text || 'file');

  const entry = f.file_id ? actions.blobs.get(f.file_id) : null;
  if (state === 'complete' && f.file_id && !entry) {
    actions.blobs.load(f.file_id).then((e) => { if (e) actions.loaded(f.file_id); });
  }

  if (entry && (voice || entry.mime.startsWith('audio/'))) {
    box.append(h('div.file-head', h('span.file-icon.i-mic', { 'aria-hidden': 'true' }),
      h('span.file-name', { text: title })));
    box.append(h('audio', { controls: true, preload: 'metadata', src: entry.url, 'aria-label': title }));
  } else if (entry && entry.mime.startsWith('image/')) {
    box.append(h('a.image-link', { href: entry.url, download: f.name || entry.name, title: `Download ${f.name}` },
      h('img.preview', { src: entry.url, alt: f.name || 'image', loading: 'lazy' })));
    box.append(h('div.file-meta.muted', { text: `${f.name} · ${size}` }));
  } else {
    box.append(h('div.file-head',
      h(`span.file-icon.${voice ? 'i-mic' : 'i-doc'}`, { 'aria-hidden': 'true' }),
      h('span.file-text',
        h('span.file-name', { text: title }),
        h('span.file-meta.muted', { text: voice ? size : `${size}${f.sha256 && state === 'complete' ? ' · SHA-256 verified' : ''}` }))));
    if (entry) {
      box.append(h('a.download.button-like', { href: entry.url, download: f.name || entry.name || 'file', text: 'Save' }));
    }
  }

  const who = out ? 'them' : 'you';
  if (state === 'offered') {
    if (out) {
      box.append(h('div.file-status.muted', { text: 'Waiting for them to accept' }));
      box.append(h('div.file-actions', h('button.plain.small', { type: 'button', text: 'Cancel', onclick: () => actions.cancel(f.file_id) })));
    } else {
      box.append(h('div.file-actions',
        h('button.primary.small', { type: 'button', text: voice ? 'Load' : 'Accept', 'aria-label': `Accept ${title}`, onclick: () => actions.accept(f.file_id) }),
        h('button.plain.small', { type: 'button', text: 'Decline', onclick: () => actions.cancel(f.file_id) })));
    }
  } else if (state === 'accepted' || state === 'active') {
    const pct = f.size ? Math.floor(((f.offset || 0) * 100) / f.size) : 0;
    box.append(h('div.progress-row',
      h('progress', { max: String(f.size || 1), value: String(f.offset || 0), 'aria-label': `${title}: ${pct}%` }),
      h('span.pct', { text: `${pct}%` }),
      h('button.icon-btn.small', { type: 'button', 'aria-label': 'Cancel transfer', title: 'Cancel', text: '×', onclick: () => actions.cancel(f.file_id) })));
    box.append(h('div.file-status.muted', { text: `${out ? 'Sending' : 'Receiving'} · ${formatSize(f.offset || 0)} of ${size}` }));
  } else if (state === 'failed' || state === 'cancelled') {
    const e = f.error || state;
    box.append(h('div.file-status.error-text', { text: state === 'cancelled' ? `Cancelled${e.includes(':') ? ` (${e.split(':').slice(1).join(':').trim()})` : ''}` : `Failed: ${e}` }));
  } else if (state === 'complete' && !entry) {
    box.append(h('div.file-status.muted', { text: out ? `Sent to ${who}` : 'Received' }));
  }
  return box;
}

/** Records a voice message; resolves { blob, ms } on stop(), null on cancel(). */
export class VoiceRecorder {
  static supported() {
    return typeof MediaRecorder !== 'undefined' && !!navigator.mediaDevices?.getUserMedia;
  }

  async start(onTick) {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const mime = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm']
      .find((t) => MediaRecorder.isTypeSupported(t));
    this.rec = new MediaRecorder(this.stream, mime ? { mimeType: mime } : undefined);
    this.chunks = [];
    this.rec.addEventListener('dataavailable', (e) => { if (e.data.size) this.chunks.push(e.data); });
    this.started = performance.now();
    this.rec.start(250);
    this.tick = setInterval(() => onTick(performance.now() - this.started), 250);
    this.done = new Promise((resolve) => this.rec.addEventListener('stop', resolve, { once: true }));
  }

  async finish(keep) {
    clearInterval(this.tick);
    if (!this.rec) return null;
    const ms = Math.round(performance.now() - this.started);
    if (this.rec.state !== 'inactive') this.rec.stop();
    await this.done;
    this.stream.getTracks().forEach((t) => t.stop());
    const type = (this.rec.mimeType || 'audio/webm').split(';')[0];
    const blob = new Blob(this.chunks, { type });
    this.rec = null;
    return keep && blob.size ? { blob, ms } : null;
  }

  stop() { return this.finish(true); }

  cancel() { return this.finish(false); }
}
