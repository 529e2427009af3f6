// peertool.mjs - drive tests/interop/el_peer_tool (one C el_peer) from node.
//
// startPeerTool() spawns $EL_PEER_TOOL (default build-test/bin/el_peer_tool),
// waits for its {"ev":"ready"} and returns a PeerTool:
//
//   tool.send({op: 'create_offer'})            one JSON line to its stdin
//   await tool.waitFor('open', (e) => e.label === 'chat', 10000)
//   await tool.collect('message', 1000, pred, ms)   n events, in arrival order
//   tool.subscribe('candidate', fn)             such events go to fn, not the queue
//   tool.events                                 every event seen, in order (no payloads)
//   udpDrops(port)                              kernel drops on a UDP port (rcvbuf full)
//   tool.stderr / tool.tail()                   its log (for failure messages)
//   await tool.quit()                           {op:'quit'}, then SIGKILL after a grace
//
// waitFor() and collect() consume the events they return: two waitFor('message')
// calls return two different messages, oldest first, including ones that
// arrived before the call. Every wait has a timeout, and rejects at once when
// the tool exits. With `strict` (the default) an {"ev":"error"} that nobody
// waits for also rejects the pending waits, so a refused op does not surface
// as a mysterious timeout. Every tool started here is SIGKILLed when the node
// process exits, and killAllPeerTools() does it on demand (call it in after()).
// EventQueue (the same waits without a process) serves other event sources,
// e.g. a browser page's callbacks. EL_PEERTOOL_TRACE=1 logs events to stderr.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const SOURCE_DIR = process.env.EL_SOURCE_DIR || fileURLToPath(new URL('../../..', import.meta.url));
export const PEER_TOOL = process.env.EL_PEER_TOOL || path.join(SOURCE_DIR, 'build-test', 'bin', 'el_peer_tool');

/** The veth address netns.sh gives the test's namespace, or null when not in one. */
export const NETNS_ADDR = process.env.EL_NETNS_ADDR || null;

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const LOG_MAX = 512 * 1024;

/** Rejects after ms with a message naming what was awaited. */
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** Parses the address out of an SDP candidate line ("candidate:f c udp prio ADDR port typ ..."). */
export function candidateAddress(cand) {
  if (!cand) return null;
  const f = cand.replace(/^a=/, '').split(/\s+/);
  return f.length > 5 ? f[4] : null;
}

/** The port of an SDP candidate line. */
export function candidatePort(cand) {
  if (!cand) return null;
  const f = cand.replace(/^a=/, '').split(/\s+/);
  return f.length > 5 ? Number(f[5]) : null;
}

/**
 * Datagrams the kernel dropped on this namespace's UDP sockets bound to
 * `port` (the "drops" column of /proc/net/udp: receive buffer full), or null
 * when no such socket is open.
 */
export function udpDrops(port) {
  let total = null;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    if (parseInt(f[1].split(':')[1], 16) === port) total = (total || 0) + Number(f[f.length - 1]);
  }
  return total;
}

/** Short description of an event for logs (long payloads cut). */
function brief(e) {
  const s = JSON.stringify(e);
  return s.length > 300 ? `${s.slice(0, 300)}...(${s.length} chars)` : s;
}

/**
 * A queue of {ev, ...} events with consuming, time-limited waits. PeerTool
 * feeds it from el_peer_tool's stdout; other peers (a browser page) can feed
 * one with push().
 */
export class EventQueue {
  constructor(name) {
    this.name = name;
    this.events = [];      // every event, in order (payloads of messages dropped)
    this.pending = [];     // events not consumed yet
    this.waiters = [];     // {ev, pred, resolve, reject}
    this.subs = new Map(); // ev -> fn: such events go to fn instead of the queue
    this.strict = true;
    this.gone = null;      // an Error once the source is gone: waits fail at once
    this.t0 = Date.now();
  }

  /** Adds one event (stamps e.t). */
  push(e) {
    e.t = Date.now();
    this.events.push(e.ev === 'message' ? { ev: e.ev, label: e.label, binary: e.binary, t: e.t } : e);
    if (process.env.EL_PEERTOOL_TRACE && e.ev !== 'message') {
      process.stderr.write(`[${this.name} +${e.t - this.t0}ms] ${brief(e)}\n`);
    }
    const sub = this.subs.get(e.ev);
    if (sub) {
      sub(e);
      return;
    }
    const i = this.waiters.findIndex((w) => w.ev === e.ev && w.pred(e));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(e);
      return;
    }
    if (e.ev === 'error' && this.strict && this.waiters.length) {
      const err = new Error(`${this.name} reported an error: ${e.message}`);
      for (const w of this.waiters.splice(0)) w.reject(err);
    }
    this.pending.push(e);
  }

  /** Fails every current and future wait with err (the source is gone). */
  fail(err) {
    this.gone = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** Hands every event `ev` (the pending ones first) to fn instead of queueing it. */
  subscribe(ev, fn) {
    this.subs.set(ev, fn);
    const old = this.pending.filter((e) => e.ev === ev);
    this.pending = this.pending.filter((e) => e.ev !== ev);
    for (const e of old) fn(e);
  }

  /** Waits for (and consumes) the oldest event `ev` matching pred. */
  waitFor(ev, pred = () => true, ms = 10000) {
    const i = this.pending.findIndex((e) => e.ev === ev && pred(e));
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]);
    if (this.gone) {
      return Promise.reject(new Error(`${this.gone.message}\n(before '${ev}')`));
    }
    let w;
    const p = new Promise((resolve, reject) => {
      w = { ev, pred, resolve, reject };
      this.waiters.push(w);
    });
    return withTimeout(p, ms, `${this.name} event '${ev}'`).catch((err) => {
      const j = this.waiters.indexOf(w);
      if (j >= 0) this.waiters.splice(j, 1);
      const seen = this.events.slice(-8).map(brief).join('\n  ');
      err.message += `\n  last events:\n  ${seen}${this.context()}`;
      throw err;
    });
  }

  /** Extra text for failure messages (PeerTool: its stderr). */
  context() {
    return '';
  }

  /** Waits for a peer state ("connected", "failed", ...). */
  waitState(state, ms = 15000) {
    return this.waitFor('state', (e) => e.state === state, ms);
  }

  /** Collects n events `ev` matching pred (consumed, in order) within ms in total. */
  async collect(ev, n, pred = () => true, ms = 20000) {
    const deadline = Date.now() + ms;
    const out = [];
    while (out.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: got ${out.length} of ${n} '${ev}' events in ${ms} ms`);
      try {
        out.push(await this.waitFor(ev, pred, left));
      } catch (e) {
        e.message = `${this.name}: got ${out.length} of ${n} '${ev}' events: ${e.message}`;
        throw e;
      }
    }
    return out;
  }

  /** Pending (unconsumed) events of a kind, without consuming them. */
  peek(ev) {
    return this.pending.filter((e) => e.ev === ev);
  }

  /** Drops every pending event (e.g. before a new phase). */
  drain() {
    this.pending.length = 0;
  }
}

export class PeerTool extends EventQueue {
  constructor(proc, name) {
    super(name);
    this.proc = proc;
    this.stderr = '';
    this.exited = null;    // {code, signal} once gone
    proc.stderr.on('data', (c) => {
      this.stderr += c.toString('utf8');
      if (this.stderr.length > LOG_MAX) this.stderr = this.stderr.slice(-LOG_MAX);
    });
    const rl = createInterface({ input: proc.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => this._line(line));
    this.exit = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        this.exited = { code, signal };
        this.fail(new Error(`${this.name} exited (code ${code}, signal ${signal})\n${this.tail()}`));
        resolve(this.exited);
      });
      proc.on('error', (e) => {
        live.delete(proc);
        this.exited = { code: -1, signal: null, error: e };
        this.fail(e);
        resolve(this.exited);
      });
    });
  }

  _line(line) {
    if (!line.trim()) return;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      e = { ev: 'garbage', line };
    }
    this.push(e);
  }

  context() {
    return `\n  ${this.name} stderr tail:\n${this.tail(15)}`;
  }

  /** Writes one op (an object) as a JSON line. */
  send(op) {
    if (this.exited) throw new Error(`${this.name} has exited; cannot send ${op.op}`);
    this.proc.stdin.write(`${JSON.stringify(op)}\n`);
  }

  tail(n = 40) {
    return this.stderr.split('\n').slice(-n).join('\n');
  }

  /** Asks the tool to quit, then SIGKILLs it after graceMs. Resolves its exit. */
  async quit(graceMs = 3000) {
    if (this.exited) return this.exited;
    try { this.send({ op: 'quit' }); } catch { /* gone */ }
    try { this.proc.stdin.end(); } catch { /* gone */ }
    let timer;
    const r = await Promise.race([
      this.exit,
      new Promise((res) => { timer = setTimeout(() => res('timeout'), graceMs); }),
    ]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.proc.kill('SIGKILL');
      return { ...(await this.exit), killedAfterTimeout: true };
    }
    return r;
  }

  kill() {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

/**
 * Starts el_peer_tool and waits for "ready".
 * opts.name: label for messages; opts.args: extra argv (e.g. ['--addr', ip]);
 * opts.env: extra environment; opts.readyMs: start-up timeout.
 */
export async function startPeerTool(opts = {}) {
  // setpriv --pdeathsig: the tool dies with this process, however it ends
  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', PEER_TOOL, ...(opts.args || [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env || {}) },
  });
  live.add(proc);
  proc.stdin.on('error', () => { /* EPIPE after exit: reported through 'exit' */ });
  const tool = new PeerTool(proc, opts.name || 'el_peer_tool');
  try {
    await tool.waitFor('ready', () => true, opts.readyMs || 10000);
  } catch (e) {
    tool.kill();
    throw e;
  }
  return tool;
}

/** SIGKILLs every el_peer_tool this process started that is still running. */
export function killAllPeerTools() {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
}

/** Bytes <-> the tool's base64url (no padding). */
export const toB64 = (buf) => Buffer.from(buf).toString('base64url');
export const fromB64 = (s) => Buffer.from(s || '', 'base64url');

/**
 * Forwards each tool's trickled candidates to the other, holding them until
 * the receiver has its remote description (as a signaling client would).
 * Returns remoteSet(tool): call it right after sending tool its set_remote.
 */
export function trickleBetween(a, b) {
  const held = new Map([[a, []], [b, []]]);
  const ready = new Set();
  const forward = (to) => (e) => {
    if (ready.has(to)) to.send({ op: 'candidate', candidate: e.candidate });
    else held.get(to).push(e.candidate);
  };
  a.subscribe('candidate', forward(b));
  b.subscribe('candidate', forward(a));
  return (to) => {
    ready.add(to);
    for (const c of held.get(to).splice(0)) to.send({ op: 'candidate', candidate: c });
  };
}

/**
 * One offer/answer round from `off` (its channels already created) to `ans`,
 * releasing each side's held candidates as soon as it has its remote
 * description. `remoteSet` is trickleBetween(off, ans)'s result (made
 * before, so that no early candidate is missed); returns the two SDPs.
 */
export async function negotiate(off, ans, remoteSet) {
  off.send({ op: 'create_offer' });
  const offer = await off.waitFor('offer');
  ans.send({ op: 'set_remote', type: 'offer', sdp: offer.sdp });
  remoteSet(ans);
  const answer = await ans.waitFor('answer');
  off.send({ op: 'set_remote', type: 'answer', sdp: answer.sdp });
  remoteSet(off);
  return { offer: offer.sdp, answer: answer.sdp };
}
