// group.js - signed group state (docs/PROTOCOL.md §11.1) for the web client.
//
// Same contract as src/proto/group.c, checked against the "group" vectors of
// tests/vectors/e2ee.json. WebCrypto only (through identity.js).
//
// A state is {group_id, version, name, admins: [peer_id], members: [peer_id]}.
// The server's group directory has no authority: a receiver applies a state
// only through verifyGroupUpdate(), which checks the admin's signature over
// the canonical encoding and the version chain.

import { b64urlDecode, b64urlEncode, isValidPeerId, peerIdFromIk, verifySignature } from './identity.js';

const subtle = globalThis.crypto.subtle;
const utf8 = (s) => new TextEncoder().encode(s);

export const GROUP_NAME_MAX = 128;
export const GROUP_ADMINS_MAX = 16;
export const GROUP_MEMBERS_MAX = 256;
export const GROUP_VERSION_MAX = Number.MAX_SAFE_INTEGER; // 2^53 - 1
export const GROUP_CHANGES = Object.freeze(['add', 'remove', 'rename', 'admins']);

const DOM_GROUP = utf8('echolink-v1-group\0');
const ID_RE = /^[0-9a-f]{32}$/;

/** A refused group state or update. `stage` says which rule class failed,
 *  as in the vectors: 'syntax' (types and bounds), 'group' (§11.1 rules:
 *  duplicates, admins not members, version chain, signer not an admin) or
 *  'signature'. `reason` is a short human-readable detail. */
export class GroupError extends Error {
  constructor(stage, reason) {
    super(`group ${stage}: ${reason}`);
    this.name = 'GroupError';
    this.stage = stage;
    this.reason = reason;
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkPeerList(list, what, max) {
  if (!Array.isArray(list)) throw new GroupError('syntax', `${what}: not an array`);
  if (list.length < 1 || list.length > max) throw new GroupError('syntax', `${what}: ${list.length} entries, must be 1..${max}`);
  for (const p of list) {
    if (!isValidPeerId(p)) throw new GroupError('syntax', `${what}: not a peer ID`);
  }
}

/** Checks every rule of §11.1 a state can be checked against on its own.
 *  Throws GroupError (stage 'syntax' or 'group'); returns nothing.
 *  Unknown members of the state are ignored (they are not signed either). */
export function checkGroupState(state) {
  if (!isObject(state)) throw new GroupError('syntax', 'state: not an object');
  if (typeof state.group_id !== 'string' || !ID_RE.test(state.group_id)) throw new GroupError('syntax', 'group_id: not 32 lowercase hex digits');
  const v = state.version;
  if (!Number.isSafeInteger(v) || v < 1) throw new GroupError('syntax', 'version: must be an integer 1..2^53-1');
  if (typeof state.name !== 'string' || !state.name.isWellFormed()) throw new GroupError('syntax', 'name: not a well-formed string');
  const nameLen = utf8(state.name).length;
  if (nameLen < 1 || nameLen > GROUP_NAME_MAX) throw new GroupError('syntax', `name: ${nameLen} bytes, must be 1..${GROUP_NAME_MAX}`);
  checkPeerList(state.admins, 'admins', GROUP_ADMINS_MAX);
  checkPeerList(state.members, 'members', GROUP_MEMBERS_MAX);
  // The rules below are semantic, hence stage 'group'.
  const members = new Set(state.members);
  if (members.size !== state.members.length) throw new GroupError('group', 'duplicate member');
  if (new Set(state.admins).size !== state.admins.length) throw new GroupError('group', 'duplicate admin');
  for (const a of state.admins) {
    if (!members.has(a)) throw new GroupError('group', 'an admin is not a member');
  }
}

function hexToBytes(h) {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The canonical encoding of §11.1 (the bytes that are signed):
 *  label 0x00 ‖ group_id (16) ‖ u64(version) ‖ u8(len) ‖ name ‖
 *  u16(#admins) ‖ admins sorted ‖ u16(#members) ‖ members sorted.
 *  Throws GroupError when the state breaks §11.1. */
export function canonicalGroupState(state) {
  checkGroupState(state);
  const name = utf8(state.name);
  // Peer IDs are ASCII, so JS's UTF-16 code unit order is their byte order.
  const admins = [...state.admins].sort();
  const members = [...state.members].sort();
  const len = DOM_GROUP.length + 16 + 8 + 1 + name.length + 2 + 32 * admins.length + 2 + 32 * members.length;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  let o = 0;
  out.set(DOM_GROUP, o); o += DOM_GROUP.length;
  out.set(hexToBytes(state.group_id), o); o += 16;
  dv.setBigUint64(o, BigInt(state.version)); o += 8;
  out[o++] = name.length;
  out.set(name, o); o += name.length;
  dv.setUint16(o, admins.length); o += 2;
  for (const a of admins) { out.set(utf8(a), o); o += 32; }
  dv.setUint16(o, members.length); o += 2;
  for (const m of members) { out.set(utf8(m), o); o += 32; }
  return out;
}

/** Signs a state with identity's ik. Returns {state, by_ik, sig} (the
 *  members GROUP_CREATED / GROUP_UPDATE carry). Throws GroupError when the
 *  state breaks §11.1, so an invalid state is never signed. The caller keeps
 *  the admin rule (only an admin of the current state may sign the next). */
export async function signGroupState(identity, state) {
  const msg = canonicalGroupState(state);
  const ik = new Uint8Array(await subtle.exportKey('raw', identity.ik.publicKey));
  const sig = new Uint8Array(await subtle.sign({ name: 'Ed25519' }, identity.ik.privateKey, msg));
  return { state, by_ik: b64urlEncode(ik), sig: b64urlEncode(sig) };
}

/** Checks by_ik/sig syntax (stage 'syntax') and the signature over the
 *  canonical state (stage 'signature'); returns the signer's peer ID.
 *  Throws GroupError. The state must already pass checkGroupState. */
export async function checkGroupSignature(state, byIk, sig) {
  let ik, s;
  try {
    ik = b64urlDecode(byIk, 32);
  } catch {
    throw new GroupError('syntax', 'by_ik: not base64url of 32 bytes');
  }
  try {
    s = b64urlDecode(sig, 64);
  } catch {
    throw new GroupError('syntax', 'sig: not base64url of 64 bytes');
  }
  const signer = await peerIdFromIk(byIk);
  if (!(await verifySignature(ik, canonicalGroupState(state), s))) throw new GroupError('signature', 'sig does not verify');
  return signer;
}

/** True when peerId is a member of state. */
export function isMember(state, peerId) {
  return isObject(state) && Array.isArray(state.members) && isValidPeerId(peerId) && state.members.includes(peerId);
}

/** True when peerId is an admin of state. */
export function isAdmin(state, peerId) {
  return isObject(state) && Array.isArray(state.admins) && isValidPeerId(peerId) && state.admins.includes(peerId);
}

/** §11: EDIT_MESSAGE and DELETE_MESSAGE are applied only if the sender is
 *  the target's author. Both are peer IDs; anything else is refused. */
export function mayEdit(sender, authorOfTarget) {
  return isValidPeerId(sender) && isValidPeerId(authorOfTarget) && sender === authorOfTarget;
}

/** Decides whether a receiver applies a GROUP_CREATED / GROUP_UPDATE message
 *  (an object as msg.js parse() returns it) given its current state of that
 *  group (null/undefined when it has none). Never throws.
 *
 *  Returns {ok: true, state, signer} or {ok: false, stage, reason}:
 *  - no current state: only GROUP_CREATED, version 1, signed by one of its
 *    own admins;
 *  - current state: only GROUP_UPDATE of the same group_id, version =
 *    current + 1, signed by an admin of the *current* state.
 *  In both cases the state obeys §11.1 and the signature verifies. */
export async function verifyGroupUpdate(current, message) {
  try {
    if (!isObject(message) || (message.t !== 'GROUP_CREATED' && message.t !== 'GROUP_UPDATE')) {
      throw new GroupError('syntax', 'not a GROUP_CREATED or GROUP_UPDATE message');
    }
    const { state } = message;
    checkGroupState(state);
    if (message.t === 'GROUP_UPDATE' && !GROUP_CHANGES.includes(message.change)) {
      throw new GroupError('syntax', 'change: not one of add, remove, rename, admins');
    }
    const signer = await checkGroupSignature(state, message.by_ik, message.sig);
    if (current == null) {
      if (message.t !== 'GROUP_CREATED') throw new GroupError('group', 'update of an unknown group');
      if (state.version !== 1) throw new GroupError('group', 'GROUP_CREATED must have version 1');
      if (!state.admins.includes(signer)) throw new GroupError('group', 'signer is not an admin of the new state');
    } else {
      if (message.t !== 'GROUP_UPDATE') throw new GroupError('group', 'GROUP_CREATED for a group that exists');
      if (state.group_id !== current.group_id) throw new GroupError('group', 'group_id differs from the current state');
      if (state.version !== current.version + 1) throw new GroupError('group', `version ${state.version} is not ${current.version + 1}`);
      if (!isAdmin(current, signer)) throw new GroupError('group', 'signer is not an admin of the current state');
    }
    return { ok: true, state, signer };
  } catch (e) {
    if (e instanceof GroupError) return { ok: false, stage: e.stage, reason: e.reason };
    return { ok: false, stage: 'syntax', reason: String(e && e.message) };
  }
}
