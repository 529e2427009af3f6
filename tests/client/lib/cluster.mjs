// cluster.mjs - a real echolinkd and real `echolink` clients inside the
// test's network namespaces (tests/harness/netns.sh), for the client tests.
//
//   const c = await startCluster();
//   const alice = await c.client('alice');             // in the first namespace
//   const bob = await c.client('bob', { remote: true }); // behind the veth
//   await c.befriend(alice, bob);
//   await bob.listen();
//   await alice.run(['send', bob.id, 'hi']);
//   await bob.waitEvent((e) => e.event === 'message' && e.text === 'hi');
//
// The server listens on the first namespace's address; a `remote` client
// runs in the peer namespace (ip netns exec), so `c.linkDown()` cuts it off
// from the server and from the other clients. Every client has its own
// ECHOLINK_HOME and restricts ICE to its namespace's address. Processes die
// with the test (setpriv --pdeathsig) and cleanup() removes the folders.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

import { freePort, startRedis } from '../../js/lib/redis.mjs';
import { SOURCE_DIR, sleep, startServer, tempDir } from '../../js/lib/server.mjs';

export { sleep };
export const ECHOLINK = process.env.ECHOLINK || path.join(SOURCE_DIR, 'build-test', 'bin', 'echolink');
export const NETNS = {
  ns: process.env.EL_NETNS,
  addr: process.env.EL_NETNS_ADDR,
  link: process.env.EL_NETNS_LINK,
  peerNs: process.env.EL_NETNS_PEER,
  peerAddr: process.env.EL_NETNS_PEER_ADDR,
};
export const SKIP = NETNS.addr ? false : 'not inside a test network namespace (run through tests/harness/netns.sh)';

const LOG_MAX = 512 * 1024;
const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

function argv0(remote) {
  const base = ['setpriv', '--pdeathsig', 'KILL', ECHOLINK];
  return remote ? ['ip', 'netns', 'exec', NETNS.peerNs, ...base] : base;
}

/** Calls fn(line) for every non-blank line a stream delivers (JSON lines). */
function onLines(stream, fn) {
  let buf = '';
  stream.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) fn(line);
    }
  });
}

class Client {
  constructor(cluster, name, remote, nodes = null) {
    this.cluster = cluster;
    this.nodes = nodes;
    this.name = name;
    this.remote = remote;
    this.home = path.join(cluster.dir, name);
    this.addr = remote ? NETNS.peerAddr : NETNS.addr;
    this.events = [];
    this.proc = null;
    this.stderr = '';
    this.id = null;
  }

  globals() {
    const urls = this.nodes ? this.nodes.map((i) => this.cluster.urlOf(i)) : [this.cluster.wsUrl];
    return [...urls.flatMap((u) => ['--server', u]), '--ice-address', this.addr];
  }

  env(extra = {}) {
    return { ...process.env, ECHOLINK_HOME: this.home, ECHOLINK_LOG: 'info', ...extra };
  }

  /** Runs a one-shot command: {code, stdout, stderr, json}. */
  run(args, { timeout = 60000, env } = {}) {
    const [cmd, ...rest] = argv0(this.remote);
    return new Promise((resolve) => {
      const p = spawn(cmd, [...rest, ...this.globals(), ...args], { env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
      live.add(p);
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { err += d; if (err.length > LOG_MAX) err = err.slice(-LOG_MAX); });
      const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
      p.on('exit', (code, signal) => {
        clearTimeout(timer);
        live.delete(p);
        const res = { code, signal, stdout: out, stderr: err };
        res.json = () => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
        resolve(res);
      });
    });
  }

  /** Like run, but throws unless the exit code is 0; returns stdout trimmed. */
  async ok(args, opts) {
    const r = await this.run(args, opts);
    if (r.code !== 0) {
      throw new Error(`${this.name}: echolink ${args.join(' ')} exited ${r.code} (${r.signal})\n` +
        `stdout: ${r.stdout}\nstderr: ${r.stderr.slice(-3000)}`);
    }
    return r.stdout.trim();
  }

  async init() {
    const out = await this.ok(['init', '--name', this.name, '--json']);
    this.id = JSON.parse(out).peer_id;
    return this.id;
  }

  /** Starts `echolink listen --json` and waits for its login. */
  async listen({ acceptFiles = true, env } = {}) {
    const [cmd, ...rest] = argv0(this.remote);
    const args = [...rest, ...this.globals(), 'listen', '--json', ...(acceptFiles ? ['--accept-files'] : [])];
    const p = spawn(cmd, args, { env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(p);
    this.proc = p;
    this.stderr = '';
    onLines(p.stdout, (line) => {
      try {
        const ev = JSON.parse(line);
        ev.at = Date.now();
        this.events.push(ev);
      } catch {
        this.stderr += `[unparsable stdout] ${line}\n`;
      }
    });
    p.stderr.on('data', (d) => {
      this.stderr += d;
      if (this.stderr.length > LOG_MAX) this.stderr = this.stderr.slice(-LOG_MAX);
    });
    this.exited = new Promise((resolve) => p.on('exit', (code, signal) => { live.delete(p); resolve({ code, signal }); }));
    const from = this.events.length;
    await this.waitEvent((e) => e.event === 'login', 20000, from);
    return this;
  }

  /** Stops the listener (SIGTERM, or e.g. SIGKILL) and waits for its exit. */
  async stop(signal = 'SIGTERM') {
    if (!this.proc) return null;
    const p = this.proc;
    this.proc = null;
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), 10000);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  /** Sends requests ({cmd, ...}) straight to the listener's control socket
   *  (src/client/ctl.h) on one connection, all at once, without a process
   *  per command (for bulk sends); resolves with the replies in request
   *  order, or rejects after `timeout` ms. Needs a running listen(). */
  control(reqs, { timeout = 60000 } = {}) {
    const sock = path.join(this.home, 'default', 'control.sock');
    return new Promise((resolve, reject) => {
      const replies = new Array(reqs.length);
      let left = reqs.length;
      const c = net.createConnection(sock);
      const timer = setTimeout(() => {
        c.destroy();
        reject(new Error(`${this.name}: ${left} of ${reqs.length} control requests unanswered after ${timeout} ms`));
      }, timeout);
      const done = (err) => {
        clearTimeout(timer);
        c.destroy();
        if (err) reject(err); else resolve(replies);
      };
      c.on('error', done);
      c.on('connect', () => {
        c.write(reqs.map((r, i) => JSON.stringify({ ...r, id: i + 1 })).join('\n') + '\n');
      });
      onLines(c, (line) => {
        const r = JSON.parse(line);
        if (!Number.isInteger(r.id) || r.id < 1 || r.id > reqs.length || replies[r.id - 1]) return;
        replies[r.id - 1] = r;
        if (--left === 0) done(null);
      });
    });
  }

  /** The first event (from index `from`) matching pred, waiting up to ms. */
  async waitEvent(pred, ms = 20000, from = 0) {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = from; i < this.events.length; i++) if (pred(this.events[i])) return this.events[i];
      if (Date.now() > deadline) {
        throw new Error(`${this.name}: no matching event within ${ms} ms; last events:\n` +
          this.events.slice(-15).map((e) => JSON.stringify(e)).join('\n') +
          `\nstderr tails:\n${this.cluster.tails()}`);
      }
      await sleep(25);
    }
  }

  /** Every event matching pred so far. */
  all(pred) {
    return this.events.filter(pred);
  }

  tail(n = 40) {
    return this.stderr.split('\n').slice(-n).join('\n');
  }
}

/** Starts echolinkd on the namespace address; with nodes > 1, that many
 *  nodes sharing one SQLite file and a real redis-server (--redis). */
export async function startCluster({ serverArgs = [], nodes = 1 } = {}) {
  const dir = await tempDir('echolink-client-');
  const servers = [];
  let redis = null;
  const shared = [];
  if (nodes > 1) {
    await mkdir(path.join(dir, 'redis'));
    redis = startRedis(await freePort(), path.join(dir, 'redis'));
    await redis.ready();
    shared.push('--redis', redis.url);
  }
  for (let i = 0; i < nodes; i++) {
    const sdir = path.join(dir, `server${i || ''}`);
    await mkdir(sdir);
    servers.push(await startServer({
      bind: NETNS.addr,
      args: ['--log-level', 'warn', ...shared, ...(nodes > 1 ? ['--node-id', `n${i}`] : []), ...serverArgs],
      dir: sdir,
      db: nodes > 1 ? `sqlite:${path.join(dir, 'shared.db')}` : undefined,
    }));
  }
  const server = servers[0];
  const cluster = {
    dir,
    server,
    servers,
    redis,
    clients: [],
    get wsUrl() { return `ws://${NETNS.addr}:${server.port}`; },
    urlOf(i) { return `ws://${NETNS.addr}:${servers[i].port}`; },
  };
  /** opts.nodes: indexes of the servers the client uses, in order */
  cluster.client = async (name, { remote = false, nodes: use = null } = {}) => {
    const c = new Client(cluster, name, remote, use);
    cluster.clients.push(c);
    await c.init();
    return c;
  };
  /** a and b become contacts (both must have logged in once before). */
  cluster.befriend = async (a, b) => {
    for (const c of [a, b]) if (!c.proc) await c.ok(['peers']);
    await a.ok(['add', b.id, `hi, ${b.name}`]);
    await b.ok(['accept', a.id]);
  };
  /** The veth link of the first namespace goes down / up. */
  cluster.linkDown = () => execFileSync('ip', ['link', 'set', NETNS.link, 'down']);
  cluster.linkUp = () => execFileSync('ip', ['link', 'set', NETNS.link, 'up']);
  cluster.cleanup = async () => {
    for (const c of cluster.clients) await c.stop('SIGKILL').catch(() => {});
    for (const srv of servers) await srv.cleanup();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  /** Failure context: every client's stderr tail, then every server's. */
  cluster.tails = () => [...cluster.clients.map((c) => `--- ${c.name}\n${c.tail(25)}`),
    ...servers.map((srv, i) => `--- echolinkd ${i}\n${srv.tail(25)}`)].join('\n');
  return cluster;
}
