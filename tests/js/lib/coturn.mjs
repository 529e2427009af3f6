// coturn.mjs - start and stop a real coturn `turnserver` for the TURN tests.
//
// startCoturn({addr, secret}) runs turnserver in `use-auth-secret` mode (the
// TURN REST API scheme echolinkd mints credentials for) on `addr`, a free
// port and a private relay-port range, with no configuration file (-n), no
// TLS/DTLS listeners, no CLI, its user database and pid file in a fresh
// temporary folder, and resolves once the server logs that its UDP listener
// is up. Every turnserver started here dies with this process (setpriv
// --pdeathsig KILL, and a SIGKILL on exit), so a failing test never leaves
// one behind; tests still call stop() in after().
//
//   const turn = await startCoturn({ addr: NETNS_ADDR, secret });
//   turn.url                      'turn:<addr>:<port>?transport=udp'
//   turn.log / turn.tail(n)       its log (stdout), for assertions and failures
//   await turn.waitLog(/re/, ms)  resolves the first log line matching re
//   await turn.stop()             SIGTERM, then SIGKILL after a grace; removes the folder
//
// turnCredential(secret, user, expiry) computes the same credential as
// echolinkd's src/server/turn.c, so a test can mint one with any expiry.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';

export const TURNSERVER = process.env.TURNSERVER || 'turnserver';

const LOG_MAX = 512 * 1024;

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * coturn's use-auth-secret credential: username "<expiry unix s>:<user>",
 * credential base64(HMAC-SHA1(secret, username)) (standard base64, padded).
 */
export function turnCredential(secret, user, expirySeconds) {
  const username = `${expirySeconds}:${user}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/** True when both TCP and UDP `port` can be bound on addr right now. */
async function portFree(addr, port) {
  const tcpOk = await new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: addr, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
  if (!tcpOk) return false;
  return new Promise((resolve) => {
    const u = dgram.createSocket('udp4');
    u.once('error', () => { u.close(); resolve(false); });
    u.bind({ address: addr, port, exclusive: true }, () => u.close(() => resolve(true)));
  });
}

/**
 * A port free for TCP and UDP on addr, together with the next one (coturn
 * may use listening port + 1 as its RFC 5780 alternative port). Random
 * choice in 20000-29999, bounded tries: no fixed port that the package's
 * own service (3478) or a parallel test could hold.
 */
export async function freeTurnPort(addr) {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 5000);
    if ((await portFree(addr, port)) && (await portFree(addr, port + 1))) return port;
  }
  throw new Error(`no free TCP+UDP port pair found on ${addr}`);
}

/**
 * Starts turnserver.
 * opts.addr:      listening and relay address (required)
 * opts.secret:    static-auth-secret (required)
 * opts.realm:     realm (default echolink.test)
 * opts.port:      listening port (default: a free one)
 * opts.minPort / opts.maxPort: relay port range (default 40000-40099)
 * opts.args:      extra turnserver arguments
 * opts.readyMs:   start-up timeout (default 10000)
 */
export async function startCoturn(opts = {}) {
  if (!opts.addr || !opts.secret) throw new Error('startCoturn needs addr and secret');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'echolink-coturn-'));
  const port = opts.port || (await freeTurnPort(opts.addr));
  const minPort = opts.minPort || 40000;
  const maxPort = opts.maxPort || 40099;
  const realm = opts.realm || 'echolink.test';
  const argv = [
    '-n', // no configuration file: everything is on this command line
    `--listening-ip=${opts.addr}`, `--relay-ip=${opts.addr}`, `--listening-port=${port}`,
    `--min-port=${minPort}`, `--max-port=${maxPort}`,
    '--use-auth-secret', `--static-auth-secret=${opts.secret}`, `--realm=${realm}`,
    '--fingerprint', '--no-tls', '--no-dtls', '--no-cli', '--no-rfc5780',
    '--no-software-attribute', '--no-multicast-peers',
    `--userdb=${path.join(dir, 'turndb')}`, `--pidfile=${path.join(dir, 'turnserver.pid')}`,
    '--log-file=stdout', '--simple-log', '--verbose',
  ];
  // coturn refuses loopback peers by default; a test outside a namespace
  // relays between two allocations on 127.0.0.1.
  if (opts.addr.startsWith('127.')) argv.push('--allow-loopback-peers');
  argv.push(...(opts.args || []));

  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', TURNSERVER, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  const turn = {
    dir, port, realm, minPort, maxPort, proc,
    addr: opts.addr,
    url: `turn:${opts.addr}:${port}?transport=udp`,
    log: '',
    exited: null,
  };
  const lineWaiters = new Set(); // {re, resolve}
  const append = (chunk) => {
    turn.log += chunk.toString('utf8');
    if (turn.log.length > LOG_MAX) turn.log = turn.log.slice(-LOG_MAX);
    for (const w of lineWaiters) {
      const m = turn.log.split('\n').find((l) => w.re.test(l));
      if (m) {
        lineWaiters.delete(w);
        w.resolve(m);
      }
    }
  };
  proc.stdout.on('data', append);
  proc.stderr.on('data', append);
  turn.exit = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      turn.exited = { code, signal };
      resolve(turn.exited);
    });
    proc.on('error', (e) => {
      live.delete(proc);
      turn.exited = { code: -1, signal: null, error: e };
      resolve(turn.exited);
    });
  });

  turn.tail = (n = 40) => turn.log.split('\n').slice(-n).join('\n');

  /** Resolves the first log line (already seen or future) matching re. */
  turn.waitLog = (re, ms = 10000) => {
    const seen = turn.log.split('\n').find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    let timer;
    let w;
    const p = new Promise((resolve, reject) => {
      w = { re, resolve };
      lineWaiters.add(w);
      timer = setTimeout(() => {
        lineWaiters.delete(w);
        reject(new Error(`turnserver: no log line matching ${re} within ${ms} ms\n${turn.tail(20)}`));
      }, ms);
      turn.exit.then((e) => {
        if (!lineWaiters.has(w)) return;
        lineWaiters.delete(w);
        reject(new Error(`turnserver exited (${JSON.stringify(e)}) before ${re}\n${turn.tail(20)}`));
      });
    });
    return p.finally(() => clearTimeout(timer));
  };

  /** SIGTERM, SIGKILL after graceMs; removes the folder. Resolves the exit. */
  turn.stop = async (graceMs = 3000) => {
    if (!turn.exited) {
      proc.kill('SIGTERM');
      const r = await Promise.race([turn.exit, sleep(graceMs).then(() => 'timeout')]);
      if (r === 'timeout') proc.kill('SIGKILL');
    }
    const e = await turn.exit;
    await rm(dir, { recursive: true, force: true });
    return e;
  };

  try {
    // coturn prints this once per UDP listener it opened
    await turn.waitLog(/IPv4\. UDP listener opened on/, opts.readyMs || 10000);
    // the auth threads answer only once the user database is open
    await turn.waitLog(/DB connection success/, opts.readyMs || 10000);
  } catch (e) {
    await turn.stop(500);
    throw new Error(`turnserver did not start: ${e.message}\nargv: ${argv.join(' ')}`);
  }
  return turn;
}
