// server.mjs - start and stop a real echolinkd for the integration tests.
//
// startServer() runs $ECHOLINKD (default: build-test/bin/echolinkd) bound to
// 127.0.0.1 on a free port (--port 0 --port-file), with a SQLite file DB in a
// fresh temporary folder, and resolves once the port file exists. Every
// server started here is SIGKILLed when the test process exits, so a failing
// test never leaves one behind; tests still call stop()/cleanup() in after().
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOURCE_DIR = process.env.EL_SOURCE_DIR || fileURLToPath(new URL('../../..', import.meta.url));
export const BINARY = process.env.ECHOLINKD || path.join(SOURCE_DIR, 'build-test', 'bin', 'echolinkd');

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const LOG_MAX = 256 * 1024;

/** A temporary folder, removed by the returned cleanup function. */
export async function tempDir(prefix = 'echolink-test-') {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * Starts echolinkd.
 * opts.args: extra command-line arguments
 * opts.port: fixed port (default 0 = any free port)
 * opts.dir:  folder for the port file and the DB (default: a new temp dir,
 *            removed by cleanup())
 * opts.db:   --db value (default $ECHOLINK_TEST_DB, else sqlite:<dir>/db)
 * opts.env:  extra environment
 * opts.bind: listen address (default 127.0.0.1; client tests use the
 *            namespace's address)
 */
export async function startServer(opts = {}) {
  const ownDir = !opts.dir;
  const dir = opts.dir || (await tempDir());
  const srv = {
    dir,
    args: opts.args || [],
    db: opts.db || process.env.ECHOLINK_TEST_DB || `sqlite:${path.join(dir, 'db')}`,
    port: opts.port || 0,
    url: null,
    proc: null,
    exit: null, // promise of {code, signal}
    stdout: '', // of the current (or last) process
    stderr: '',
    starts: 0,
  };

  async function launch(port) {
    const portFile = path.join(dir, 'port');
    if (existsSync(portFile)) await unlink(portFile);
    const argv = ['--bind', opts.bind || '127.0.0.1', '--port', String(port), '--port-file', portFile,
      '--db', srv.db, ...srv.args];
    // setpriv --pdeathsig: the server dies with this test process even when
    // the process is killed (a CTest timeout) and no exit handler runs
    const proc = spawn('setpriv', ['--pdeathsig', 'KILL', BINARY, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(opts.env || {}) },
    });
    live.add(proc);
    srv.proc = proc;
    srv.stdout = '';
    srv.stderr = '';
    srv.starts++;
    const append = (key) => (chunk) => {
      srv[key] += chunk.toString('utf8');
      if (srv[key].length > LOG_MAX) srv[key] = srv[key].slice(-LOG_MAX);
    };
    proc.stdout.on('data', append('stdout'));
    proc.stderr.on('data', append('stderr'));
    srv.exit = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        proc.exitedAt = Date.now();
        resolve({ code, signal });
      });
      proc.on('error', (e) => {
        live.delete(proc);
        resolve({ code: -1, signal: null, error: e });
      });
    });
    let exited = null;
    srv.exit.then((e) => { exited = e; });
    const deadline = Date.now() + 15000;
    for (;;) {
      if (exited) {
        throw new Error(`echolinkd exited during start-up (${JSON.stringify(exited)}): ${argv.join(' ')}\n` +
          `stderr:\n${srv.stderr.slice(-4000)}`);
      }
      try {
        const txt = await readFile(portFile, 'utf8');
        const p = parseInt(txt, 10);
        if (p > 0) {
          srv.port = p;
          srv.url = `http://${opts.bind || '127.0.0.1'}:${p}`;
          return;
        }
      } catch { /* not written yet */ }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`echolinkd did not write its port file within 15 s\nstderr:\n${srv.stderr.slice(-4000)}`);
      }
      await sleep(20);
    }
  }

  /** Sends `signal` and waits (up to timeoutMs, then SIGKILL) for the exit.
   *  Resolves {code, signal, ms}: ms from the signal to the exit. */
  srv.kill = async (signal = 'SIGTERM', timeoutMs = 10000) => {
    const proc = srv.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      const e = srv.exit ? await srv.exit : { code: null, signal: null };
      return { ...e, ms: 0, alreadyExited: true };
    }
    const t0 = Date.now();
    proc.kill(signal);
    let timer;
    const timedOut = new Promise((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    let res = await Promise.race([srv.exit, timedOut]);
    clearTimeout(timer);
    if (res === 'timeout') {
      proc.kill('SIGKILL');
      res = { ...(await srv.exit), killedAfterTimeout: true };
    }
    return { ...res, ms: (proc.exitedAt || Date.now()) - t0 };
  };
  srv.stop = (timeoutMs) => srv.kill('SIGTERM', timeoutMs);

  /** Starts again on the same port with the same DB (after stop()). */
  srv.restart = async (extra = {}) => {
    if (srv.proc && srv.proc.exitCode === null && srv.proc.signalCode === null) await srv.stop();
    if (extra.args) srv.args = extra.args;
    await launch(srv.port);
    return srv;
  };

  srv.running = () => !!srv.proc && srv.proc.exitCode === null && srv.proc.signalCode === null;

  /** Stops the server if it still runs and removes the temp folder. */
  srv.cleanup = async () => {
    const res = await srv.kill('SIGTERM', 5000);
    if (ownDir) await rm(dir, { recursive: true, force: true });
    return res;
  };

  /** Last lines of the server's stderr (for failure messages). */
  srv.tail = (n = 40) => srv.stderr.split('\n').slice(-n).join('\n');

  try {
    await launch(srv.port);
  } catch (e) {
    if (ownDir) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return srv;
}
