// redis.mjs - a real redis-server for the cluster tests, on a free port with
// its own temp dir, no persistence, killed with the test process.
import { spawn } from 'node:child_process';
import net from 'node:net';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on `host`. */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Sends one inline command; resolves the first reply line, or null. */
export function redisCommand(port, line, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    const done = (v) => { sock.destroy(); resolve(v); };
    sock.setTimeout(500, () => done(null));
    sock.once('error', () => done(null));
    sock.once('connect', () => sock.write(`${line}\r\n`));
    sock.once('data', (d) => done(d.toString().split('\r\n')[0]));
  });
}

export const ping = async (port, host) => (await redisCommand(port, 'PING', host)) === '+PONG';

/** Starts redis-server on host:port with dir as its working folder. */
export function startRedis(port, dir, host = '127.0.0.1') {
  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', 'redis-server', '--port', String(port),
    '--bind', host, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const exit = new Promise((r) => proc.once('exit', r));
  return {
    proc,
    url: `redis://${host}:${port}`,
    async ready() {
      for (let i = 0; i < 100; i++) {
        if (await ping(port, host)) return;
        if (proc.exitCode !== null) throw new Error('redis-server exited during start-up');
        await sleep(50);
      }
      throw new Error('redis-server did not answer PING within 5 s');
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exit;
    },
  };
}
