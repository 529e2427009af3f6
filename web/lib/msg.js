// msg.js - peer messages and file chunks (docs/PROTOCOL.md §9.3 plaintexts,
// §11 messages) for the web client.
//
// Same contract as src/proto/msg.c, checked against the "messages" vectors
// of tests/vectors/e2ee.json. A transport plaintext is kind u8 ‖ body:
//   0x01 a message, one strict UTF-8 JSON object of at most 65536 bytes;
//   0x02 a file chunk, file_id (16) ‖ offset (u64) ‖ data (1..65536 bytes);
//   anything else is ignored (forward compatibility).
//
// "Strict JSON" is RFC 8259 plus: valid UTF-8, nesting depth <= 8 (the
// top-level object is depth 1), no duplicate keys. JSON.parse keeps the last
// of two equal keys without a word, so this module has its own parser. As in
// the C code (jansson with JSON_DECODE_INT_AS_REAL), numbers are read as
// doubles: 1, 1.0 and 1e0 are the same integer. Escapes that decode to an
// unpaired UTF-16 surrogate are refused: they have no UTF-8 form.

import { checkGroupSignature, checkGroupState, GroupError, GROUP_CHANGES, signGroupState } from './group.js';

export const KIND_MESSAGE = 0x01;
export const KIND_CHUNK = 0x02;
export const MSG_MAX = 65536;
export const MSG_MAX_DEPTH = 8;
export const CHUNK_DATA_MAX = 65536;
export const CHUNK_HEADER = 1 + 16 + 8;
export const TEXT_MAX = 32768;
export const EMOJI_MAX = 64;
export const IDS_MAX = 256;
export const NAME_MAX = 255;
export const MIME_MAX = 127;
export const REASON_MAX = 256;
export const DURATION_MAX = 86400000;

const enc = new TextEncoder();
const byteLen = (s) => enc.encode(s).length;

/** A malformed plaintext or message. `reason` is a short detail for the
 *  drop counters and the log; `stage` is 'syntax' (parse, types, bounds),
 *  'group' (§11.1 rules) or 'signature', as in the vectors. */
export class MessageError extends Error {
  constructor(reason, stage = 'syntax') {
    super(`malformed message: ${reason}`);
    this.name = 'MessageError';
    this.reason = reason;
    this.stage = stage;
  }
}

const fail = (reason) => { throw new MessageError(reason); };

// ---------------------------------------------------------------- strict JSON

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

// Recursive descent over a JS string that came from a fatal UTF-8 decode, so
// the text itself is well-formed; the depth bound keeps the recursion short.
class StrictParser {
  constructor(text, maxDepth) {
    this.s = text;
    this.i = 0;
    this.maxDepth = maxDepth;
  }

  ws() {
    while (this.i < this.s.length && WS.has(this.s.charCodeAt(this.i))) this.i++;
  }

  value(depth) {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object(depth + 1);
    if (c === '[') return this.array(depth + 1);
    if (c === '"') return this.string();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    return this.number();
  }

  literal(word, v) {
    if (!this.s.startsWith(word, this.i)) fail('invalid JSON');
    this.i += word.length;
    return v;
  }

  number() {
    NUMBER_RE.lastIndex = this.i;
    const m = NUMBER_RE.exec(this.s);
    if (!m) fail('invalid JSON');
    this.i += m[0].length;
    return Number(m[0]);
  }

  hex4() {
    const h = this.s.slice(this.i, this.i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('invalid JSON: bad \\u escape');
    this.i += 4;
    return parseInt(h, 16);
  }

  string() {
    this.i++; // opening quote
    let out = '';
    let run = this.i;
    for (;;) {
      if (this.i >= this.s.length) fail('invalid JSON: unterminated string');
      const c = this.s.charCodeAt(this.i);
      if (c === 0x22) break;
      if (c < 0x20) fail('invalid JSON: control character in a string');
      if (c !== 0x5c) { this.i++; continue; }
      out += this.s.slice(run, this.i);
      const e = this.s[this.i + 1];
      this.i += 2;
      if (e === 'u') {
        const u = this.hex4();
        if (u >= 0xdc00 && u <= 0xdfff) fail('invalid JSON: unpaired surrogate escape');
        if (u >= 0xd800 && u <= 0xdbff) {
          if (this.s[this.i] !== '\\' || this.s[this.i + 1] !== 'u') fail('invalid JSON: unpaired surrogate escape');
          this.i += 2;
          const lo = this.hex4();
          if (lo < 0xdc00 || lo > 0xdfff) fail('invalid JSON: unpaired surrogate escape');
          out += String.fromCharCode(u, lo);
        } else {
          out += String.fromCharCode(u);
        }
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
      } else {
        fail('invalid JSON: bad escape');
      }
      run = this.i;
    }
    out += this.s.slice(run, this.i);
    this.i++; // closing quote
    return out;
  }

  object(depth) {
    if (depth > this.maxDepth) fail(`nested deeper than ${this.maxDepth}`);
    this.i++;
    const obj = {};
    const seen = new Set();
    this.ws();
    if (this.s[this.i] === '}') { this.i++; return obj; }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') fail('invalid JSON: expected a key');
      const key = this.string();
      // Compare decoded keys: "a" and "\u0061" are the same member.
      if (seen.has(key)) fail('duplicate key');
      seen.add(key);
      this.ws();
      if (this.s[this.i] !== ':') fail('invalid JSON: expected ":"');
      this.i++;
      // defineProperty, not obj[key] =, so "__proto__" stays a plain member.
      Object.defineProperty(obj, key, { value: this.value(depth), writable: true, enumerable: true, configurable: true });
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return obj;
      if (c !== ',') fail('invalid JSON: expected "," or "}"');
    }
  }

  array(depth) {
    if (depth > this.maxDepth) fail(`nested deeper than ${this.maxDepth}`);
    this.i++;
    const arr = [];
    this.ws();
    if (this.s[this.i] === ']') { this.i++; return arr; }
    for (;;) {
      arr.push(this.value(depth));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return arr;
      if (c !== ',') fail('invalid JSON: expected "," or "]"');
    }
  }
}

/** Parses strict JSON from a string or UTF-8 bytes (Uint8Array/ArrayBuffer).
 *  Bytes must be valid UTF-8 (a BOM is not JSON). Throws MessageError with
 *  reason 'too large', 'invalid UTF-8', 'duplicate key', 'nested deeper
 *  than N' or 'invalid JSON...'. maxBytes bounds the UTF-8 size. */
export function parseStrictJson(input, { maxDepth = MSG_MAX_DEPTH, maxBytes = MSG_MAX } = {}) {
  let text;
  if (typeof input === 'string') {
    // A string holding an unpaired surrogate has no UTF-8 form either.
    if (!input.isWellFormed()) fail('invalid UTF-8');
    if (byteLen(input) > maxBytes) fail('too large');
    text = input;
  } else {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    if (bytes.length > maxBytes) fail('too large');
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      fail('invalid UTF-8');
    }
  }
  const p = new StrictParser(text, maxDepth);
  const v = p.value(0);
  p.ws();
  if (p.i !== text.length) fail('invalid JSON: trailing characters');
  return v;
}

// ---------------------------------------------------------------- validation

const ID_RE = /^[0-9a-f]{32}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const CHANNEL_RE = /^f:[0-9a-f]{32}$/;
// Unicode category Cc: C0, DEL and C1.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o, k) => Object.hasOwn(o, k);

function needId(o, k) {
  const v = o[k];
  if (typeof v !== 'string' || !ID_RE.test(v)) fail(`${k}: ${has(o, k) ? 'not 32 lowercase hex digits' : 'missing'}`);
}

function optId(o, k) {
  if (has(o, k)) needId(o, k);
}

function needStr(o, k, lo, hi) {
  const v = o[k];
  if (typeof v !== 'string') fail(`${k}: ${has(o, k) ? 'not a string' : 'missing'}`);
  // Parsed text is always well-formed; this catches a builder's input, which
  // JSON.stringify would send as a lone \ud800 escape that receivers refuse.
  if (!v.isWellFormed()) fail(`${k}: unpaired surrogate`);
  const n = byteLen(v);
  if (n < lo || n > hi) fail(`${k}: ${n} bytes, must be ${lo}..${hi}`);
  return v;
}

function needUint(o, k, hi = Number.MAX_SAFE_INTEGER) {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > hi) {
    fail(`${k}: ${has(o, k) ? `must be an integer 0..${hi}` : 'missing'}`);
  }
}

function needBool(o, k) {
  if (typeof o[k] !== 'boolean') fail(`${k}: ${has(o, k) ? 'not a boolean' : 'missing'}`);
}

function optBool(o, k) {
  if (has(o, k)) needBool(o, k);
}

function needIds(o, k) {
  const v = o[k];
  if (!Array.isArray(v)) fail(`${k}: ${has(o, k) ? 'not an array' : 'missing'}`);
  if (v.length < 1 || v.length > IDS_MAX) fail(`${k}: ${v.length} IDs, must be 1..${IDS_MAX}`);
  v.forEach((_, i) => needId(v, i));
}

function needSha(o, k) {
  const v = o[k];
  if (typeof v !== 'string' || !SHA256_RE.test(v)) fail(`${k}: ${has(o, k) ? 'not 64 lowercase hex digits' : 'missing'}`);
}

function checkFileMeta(m) {
  needId(m, 'file_id');
  const name = needStr(m, 'name', 1, NAME_MAX);
  if (name.includes('/') || name.includes('\\') || CONTROL_RE.test(name)) fail('name: contains /, \\ or a control character');
  needUint(m, 'size');
  const mime = needStr(m, 'mime', 1, MIME_MAX);
  needSha(m, 'sha256');
  if (typeof m.channel !== 'string' || !CHANNEL_RE.test(m.channel)) fail('channel: not an f: label');
  if (has(m, 'voice')) {
    if (!isObject(m.voice)) fail('voice: not an object');
    needUint(m.voice, 'duration_ms', DURATION_MAX);
    if (!mime.startsWith('audio/')) fail('voice: mime must be audio/*');
  }
}

function checkGroupMsg(m) {
  if (!has(m, 'state')) fail('state: missing');
  try {
    checkGroupState(m.state);
  } catch (e) {
    if (e instanceof GroupError) throw new MessageError(e.reason, e.stage);
    throw e;
  }
  if (typeof m.by_ik !== 'string') fail('by_ik: missing');
  if (typeof m.sig !== 'string') fail('sig: missing');
}

// Per-type rules of the §11 table; each throws MessageError.
const RULES = {
  CHAT(m) { needStr(m, 'text', 1, TEXT_MAX); optId(m, 'reply_to'); },
  TYPING_STATUS(m) { needBool(m, 'typing'); },
  REACTION(m) { needId(m, 'target'); needStr(m, 'emoji', 1, EMOJI_MAX); optBool(m, 'remove'); },
  DELIVERY_RECEIPT(m) { needIds(m, 'ids'); },
  READ_RECEIPT(m) { needIds(m, 'ids'); },
  EDIT_MESSAGE(m) { needId(m, 'target'); needStr(m, 'text', 1, TEXT_MAX); },
  DELETE_MESSAGE(m) { needId(m, 'target'); },
  FILE_META: checkFileMeta,
  // offset <= size needs the transfer's FILE_META: the caller checks that.
  FILE_ACCEPT(m) { needId(m, 'file_id'); needUint(m, 'offset'); },
  FILE_CANCEL(m) { needId(m, 'file_id'); if (has(m, 'reason')) needStr(m, 'reason', 0, REASON_MAX); },
  FILE_COMPLETE(m) { needId(m, 'file_id'); needSha(m, 'sha256'); },
  GROUP_CREATED(m) {
    checkGroupMsg(m);
    if (m.state.version !== 1) throw new MessageError('GROUP_CREATED must have version 1', 'group');
  },
  GROUP_UPDATE(m) {
    if (!GROUP_CHANGES.includes(m.change)) fail('change: not one of add, remove, rename, admins');
    checkGroupMsg(m);
  },
  GROUP_LEAVE(m) { needId(m, 'group_id'); },
};

/** True when t is a message type this version knows. */
export const isKnownType = (t) => typeof t === 'string' && Object.hasOwn(RULES, t);

/** Synchronous checks of a parsed message object: the common members (t, id,
 *  ts, group) and, for a known t, every bound of §11's table and the §11.1
 *  state rules. Not the group signature: see verifyMessage(). Throws
 *  MessageError. Unknown members are ignored. */
export function validateMessage(m) {
  if (!isObject(m)) fail('not a JSON object');
  if (typeof m.t !== 'string') fail(`t: ${has(m, 't') ? 'not a string' : 'missing'}`);
  needId(m, 'id');
  needUint(m, 'ts');
  optId(m, 'group');
  if (isKnownType(m.t)) RULES[m.t](m);
}

/** validateMessage() plus, for GROUP_CREATED / GROUP_UPDATE, the signature
 *  by by_ik over the canonical state and (GROUP_CREATED) the signer being
 *  one of the state's admins. Rules that need the receiver's current group
 *  state are group.js verifyGroupUpdate()'s. Throws MessageError. */
export async function verifyMessage(m) {
  validateMessage(m);
  if (m.t !== 'GROUP_CREATED' && m.t !== 'GROUP_UPDATE') return;
  let signer;
  try {
    signer = await checkGroupSignature(m.state, m.by_ik, m.sig);
  } catch (e) {
    if (e instanceof GroupError) throw new MessageError(e.reason, e.stage);
    throw e;
  }
  if (m.t === 'GROUP_CREATED' && !m.state.admins.includes(signer)) {
    throw new MessageError('signer is not an admin of the state', 'group');
  }
}

// ---------------------------------------------------------------- plaintexts

function hexToBytes(h) {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** A kind 0x02 plaintext: 0x02 ‖ file_id (16) ‖ u64(offset) ‖ data.
 *  fileId is 32 lowercase hex digits or 16 bytes; offset an integer
 *  0..2^53-1 (number or bigint); data 1..65536 bytes. Throws TypeError. */
export function encodeChunk(fileId, offset, data) {
  const id = typeof fileId === 'string' ? (ID_RE.test(fileId) ? hexToBytes(fileId) : null) : new Uint8Array(fileId);
  if (!id || id.length !== 16) throw new TypeError('fileId must be 32 lowercase hex digits or 16 bytes');
  const off = BigInt(offset);
  if (off < 0n || off > BigInt(Number.MAX_SAFE_INTEGER)) throw new TypeError('offset must be 0..2^53-1');
  const d = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (d.length < 1 || d.length > CHUNK_DATA_MAX) throw new TypeError(`chunk data must be 1..${CHUNK_DATA_MAX} bytes`);
  const out = new Uint8Array(CHUNK_HEADER + d.length);
  out[0] = KIND_CHUNK;
  out.set(id, 1);
  new DataView(out.buffer).setBigUint64(17, off);
  out.set(d, CHUNK_HEADER);
  return out;
}

/** Reads a kind 0x02 plaintext. Returns {fileId (hex), offset (number),
 *  data}; data is a subarray of the input (no copy: copy it if the input
 *  buffer is reused). Throws MessageError for a wrong kind or length or an
 *  offset above 2^53-1 (no file is that large). */
export function decodeChunk(plaintext) {
  const b = plaintext instanceof Uint8Array ? plaintext : new Uint8Array(plaintext);
  if (b.length < 1 || b[0] !== KIND_CHUNK) fail('not a chunk');
  const n = b.length - CHUNK_HEADER;
  if (n < 1 || n > CHUNK_DATA_MAX) fail(`chunk data of ${Math.max(n, 0)} bytes, must be 1..${CHUNK_DATA_MAX}`);
  const off = new DataView(b.buffer, b.byteOffset, b.length).getBigUint64(17);
  if (off > BigInt(Number.MAX_SAFE_INTEGER)) fail('chunk offset above 2^53-1');
  return { fileId: toHex(b.subarray(1, 17)), offset: Number(off), data: b.subarray(CHUNK_HEADER) };
}

/** Reads a transport plaintext (kind ‖ body, §9.3) completely:
 *  - {kind: 'message', msg} for a valid message of a known type (group
 *    signatures checked, see verifyMessage);
 *  - {kind: 'chunk', fileId, offset, data} (data: a subarray, no copy);
 *  - {kind: 'unknown', type} for another kind byte, or {kind: 'unknown', t,
 *    msg} for a well-formed message of an unknown t: both are ignored.
 *  Throws MessageError (reason, stage) for anything malformed: the caller
 *  drops it and counts it by reason. */
export async function parse(plaintext) {
  const b = plaintext instanceof Uint8Array ? plaintext : new Uint8Array(plaintext);
  if (b.length < 1) fail('empty plaintext');
  if (b[0] === KIND_CHUNK) return { kind: 'chunk', ...decodeChunk(b) };
  if (b[0] !== KIND_MESSAGE) return { kind: 'unknown', type: b[0] };
  const msg = parseStrictJson(b.subarray(1));
  await verifyMessage(msg);
  if (!isKnownType(msg.t)) return { kind: 'unknown', t: msg.t, msg };
  return { kind: 'message', msg };
}

/**
 * The receiving end of §11 for one session: parse() plus what a receiver owes
 * the sender and the user. Malformed plaintexts are dropped, counted by stage
 * (syntax, group, signature) and logged once each with their reason;
 * unknown kinds and types are counted and ignored. Never throws.
 *   const rx = new Receiver({ log: console.warn });
 *   const r = await rx.receive(bytes);  // {kind:'message'|'chunk', ...} or null
 *   rx.stats  // {messages, chunks, unknown, syntax, group, signature}
 */
export class Receiver {
  constructor({ log = () => {} } = {}) {
    this.log = log;
    this.stats = { messages: 0, chunks: 0, unknown: 0, syntax: 0, group: 0, signature: 0 };
  }

  async receive(plaintext) {
    let r;
    try {
      r = await parse(plaintext);
    } catch (err) {
      const stage = err instanceof MessageError && err.stage in this.stats ? err.stage : 'syntax';
      this.stats[stage]++;
      this.log(`message dropped (${stage}): ${err.message}`);
      return null;
    }
    if (r.kind === 'unknown') {
      this.stats.unknown++;
      return null;
    }
    this.stats[r.kind === 'chunk' ? 'chunks' : 'messages']++;
    return r;
  }
}

/** The kind 0x01 plaintext of a message: 0x01 ‖ UTF-8 JSON. Validates first
 *  (never sends what a receiver would drop); throws MessageError. */
export function encodeMessage(msg) {
  validateMessage(msg);
  const json = enc.encode(JSON.stringify(msg));
  if (json.length > MSG_MAX) fail('too large');
  const out = new Uint8Array(1 + json.length);
  out[0] = KIND_MESSAGE;
  out.set(json, 1);
  return out;
}

// ---------------------------------------------------------------- builders

/** 32 lowercase hex digits of 128 fresh random bits. */
export function newId() {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/** A fresh file transfer channel label, "f:" + newId() (§9.2). */
export function newChannelLabel() {
  return `f:${newId()}`;
}

// Common members; opts.group marks a group message, opts.ts overrides the
// clock (tests). The result is validated so a builder never returns a
// message a receiver would drop.
function build(t, fields, opts = {}) {
  const m = { t, id: newId(), ts: opts.ts ?? Date.now() };
  if (opts.group !== undefined) m.group = opts.group;
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) m[k] = v;
  validateMessage(m);
  return m;
}

export const buildChat = (text, { replyTo, ...opts } = {}) => build('CHAT', { text, reply_to: replyTo }, opts);
export const buildTyping = (typing, opts) => build('TYPING_STATUS', { typing }, opts);
export const buildReaction = (target, emoji, { remove, ...opts } = {}) => build('REACTION', { target, emoji, remove }, opts);
export const buildDeliveryReceipt = (ids, opts) => build('DELIVERY_RECEIPT', { ids }, opts);
export const buildReadReceipt = (ids, opts) => build('READ_RECEIPT', { ids }, opts);
export const buildEdit = (target, text, opts) => build('EDIT_MESSAGE', { target, text }, opts);
export const buildDelete = (target, opts) => build('DELETE_MESSAGE', { target }, opts);

/** FILE_META; file_id and channel are fresh unless given. voiceMs makes it a
 *  voice message (mime must then be audio/*). */
export function buildFileMeta({ name, size, mime, sha256, fileId = newId(), channel = newChannelLabel(), voiceMs }, opts) {
  const voice = voiceMs === undefined ? undefined : { duration_ms: voiceMs };
  return build('FILE_META', { file_id: fileId, name, size, mime, sha256, channel, voice }, opts);
}

export const buildFileAccept = (fileId, offset, opts) => build('FILE_ACCEPT', { file_id: fileId, offset }, opts);
export const buildFileCancel = (fileId, { reason, ...opts } = {}) => build('FILE_CANCEL', { file_id: fileId, reason }, opts);
export const buildFileComplete = (fileId, sha256, opts) => build('FILE_COMPLETE', { file_id: fileId, sha256 }, opts);
export const buildGroupLeave = (groupId, opts) => build('GROUP_LEAVE', { group_id: groupId }, opts);

/** GROUP_CREATED for a new state signed by identity (which must be one of
 *  state.admins; version must be 1). A fresh group_id if state has none. */
export async function buildGroupCreated(identity, state, opts) {
  const s = { group_id: newId(), ...state };
  const signed = await signGroupState(identity, s);
  const m = build('GROUP_CREATED', signed, opts);
  await verifyMessage(m);
  return m;
}

/** GROUP_UPDATE carrying the next state, signed by identity; change is one
 *  of add, remove, rename, admins. */
export async function buildGroupUpdate(identity, state, change, opts) {
  const signed = await signGroupState(identity, state);
  const m = build('GROUP_UPDATE', { ...signed, change }, opts);
  await verifyMessage(m);
  return m;
}
