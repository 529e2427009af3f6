// cluster.mjs - relay throughput, latency and server CPU of one echolinkd
// node against several nodes behind one Redis (--redis), in one run. Called
// by bench/cluster.sh (which builds echolinkd and bounds the whole run);
// figures in docs/PERFORMANCE.md "Cluster: one node against several".
//
// Configurations (BENCH_CLUSTER_CONFIGS, default "1 1r 2 3 4"):
//   1    one node, no Redis: the reference
//   1r   one node with --redis: what cluster mode costs by itself (every
//        relay is still local; logins publish presence, heartbeats run)
//   K    K nodes (K >= 2) sharing Redis and one SQLite file; sender i on
//        node i mod K, its receiver on node (i + 1) mod K: every relayed
//        event crosses Redis (PUBLISH to the receiver's node channel)
// The load is bench/run.sh's relay phase (bench/loadgen.mjs relay): P pairs,
// 1 KB offers, a window of W unacknowledged events per sender.
//
// Placement: the server side (every node and redis-server) is pinned to
// core 0, the load generator to core 1, so each configuration gets the same
// server CPU budget (one core) and the figures compare costs, not core
// counts. Everything listens on 127.0.0.1, on free ports, in a private temp
// dir. Every child runs under setpriv --pdeathsig KILL (it dies with this
// process) and is killed at the end of its configuration, also on failure.
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startRedis } from '../tests/js/lib/redis.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = (k, d) => process.env[k] ?? d;
const BIN = env('ECHOLINKD', path.join(ROOT, 'build-bench/bin/echolinkd'));
const PAIRS = Number(env('BENCH_PAIRS', '200'));
const WINDOW = Number(env('BENCH_WINDOW', '4'));
const SIZE = Number(env('BENCH_SIZE', '1024'));
const DURATION = Number(env('BENCH_DURATION', '10'));
const WARM = Number(env('BENCH_WARM', '2'));
const CONFIGS = env('BENCH_CLUSTER_CONFIGS', '1 1r 2 3 4').split(/\s+/).filter(Boolean);
const SERVER_CPU = '0';
const LOAD_CPU = '1';
const CLK_TCK = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || '100';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('bench-cluster:', ...a);

for (const c of CONFIGS)
  if (!/^(1r?|[2-9])$/.test(c)) throw new Error(`BENCH_CLUSTER_CONFIGS: bad entry "${c}" (1, 1r, 2..9)`);

/** A child under setpriv --pdeathsig KILL; exec keeps the pid. */
function child(argv, logFile) {
  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = [];
  proc.stdout.on('data', (d) => out.push(d));
  proc.stderr.on('data', (d) => out.push(d));
  const exit = new Promise((r) => proc.once('exit', r));
  return {
    proc, exit,
    output: () => Buffer.concat(out).toString(),
    alive: () => proc.exitCode === null && proc.signalCode === null,
    async stop() {
      if (this.alive()) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(t);
      if (logFile) await writeFile(logFile, this.output()).catch(() => {});
    },
  };
}

async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (let i = 0; i < 1000; i++) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) break;
    await sleep(100);
  }
  throw new Error(`timeout after ${ms} ms: ${what}`);
}

async function healthz(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    return (await res.text()) === 'ok\n';
  } catch { return false; }
}

/** The node's echolink_cluster_* counters from /metrics, or null. */
async function clusterMetrics(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    const out = {};
    for (const m of (await res.text()).matchAll(/^echolink_cluster_(\w+) (\S+)$/gm)) out[m[1]] = Number(m[2]);
    return out;
  } catch { return null; }
}

async function startNode(dir, name, db, redisUrl) {
  const portFile = path.join(dir, `${name}.port`);
  const args = ['taskset', '-c', SERVER_CPU, BIN, '--bind', '127.0.0.1', '--port', '0',
    '--port-file', portFile, '--db', db, '--open-presence', '--rate', '1000000',
    '--burst', '1000000', '--max-conns', '20000', '--max-conns-per-ip', '0', '--max-new-ids-per-ip', '0', '--log-level', 'warn'];
  if (redisUrl) args.push('--redis', redisUrl, '--node-id', name);
  const n = child(args);
  const port = await until(async () => {
    if (!n.alive()) throw new Error(`node ${name} exited at start: ${n.output().slice(-2000)}`);
    const s = await readFile(portFile, 'utf8').catch(() => '');
    return s.trim() ? Number(s) : 0;
  }, 10000, `node ${name} wrote its port`);
  return { ...n, name, port, pid: n.proc.pid };
}

/** One configuration: start Redis and the nodes, run the load, stop all. */
async function runConfig(cfg) {
  const k = cfg === '1r' ? 1 : Number(cfg);
  const withRedis = cfg !== '1';
  const dir = await mkdtemp(path.join(env('TMPDIR', tmpdir()), 'echolink-bench-cluster-'));
  currentDir = dir;
  const nodes = [];
  let redis = null, lg = null;
  try {
    let redisUrl = null;
    if (withRedis) {
      const rport = await freePort();
      redis = startRedis(rport, dir);
      await redis.ready();
      // setpriv execs redis-server: the pid is redis-server's
      const ts = spawnSync('taskset', ['-pc', SERVER_CPU, String(redis.proc.pid)], { encoding: 'utf8' });
      if (ts.status !== 0) throw new Error(`taskset redis-server: ${ts.stderr}`);
      redisUrl = redis.url;
    }
    // one shared SQLite file, as the cluster test does; one at a time (the
    // first migrates it)
    const db = `sqlite:${path.join(dir, 'shared.db')}`;
    for (let i = 0; i < k; i++) nodes.push(await startNode(dir, `n${i + 1}`, db, redisUrl));
    if (withRedis)
      for (const n of nodes) await until(() => healthz(n.port), 10000, `node ${n.name} joined Redis`);

    const argv = ['taskset', '-c', LOAD_CPU, process.execPath, path.join(ROOT, 'bench/loadgen.mjs'),
      'relay', '--ports', nodes.map((n) => n.port).join(','), '--pids', nodes.map((n) => n.pid).join(','),
      '--clk-tck', CLK_TCK, '--pairs', String(PAIRS), '--window', String(WINDOW), '--size', String(SIZE),
      '--duration', String(DURATION), '--warm', String(WARM), '--watchdog', String(DURATION + WARM + 40)];
    if (redis) argv.push('--other-pids', String(redis.proc.pid));
    lg = child(argv);
    const killer = setTimeout(() => lg.proc.kill('SIGKILL'), (DURATION + WARM + 60) * 1000);
    const code = await lg.exit;
    clearTimeout(killer);
    const out = lg.output();
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    if (code !== 0 || !line) throw new Error(`config ${cfg}: load generator failed (${code}):\n${out.slice(-3000)}`);
    for (const n of nodes)
      if (!n.alive()) throw new Error(`config ${cfg}: node ${n.name} died: ${n.output().slice(-2000)}`);
    const r = JSON.parse(line.slice(7));
    // evidence when cross-node relays fail: what the nodes logged (warnings
    // only, --log-level warn) and their cluster counters
    r.node_log = nodes.map((n) => n.output().split('\n').filter(Boolean).slice(-8));
    if (withRedis) r.cluster_metrics = await Promise.all(nodes.map((n) => clusterMetrics(n.port)));
    r.config = cfg;
    r.nodes = k;
    r.redis = withRedis;
    r.node_us_per_event = r.server_us_per_event;
    r.redis_us_per_event = withRedis ? r.other_pids_us_per_event : 0;
    r.total_us_per_event = r.node_us_per_event + r.redis_us_per_event;
    r.server_side_cpu_pct = r.server_cpu_pct + (withRedis ? r.other_pids_cpu_pct : 0);
    return r;
  } finally {
    if (lg) await lg.stop();
    for (const n of nodes) await n.stop();
    if (redis) await redis.stop();
    await rm(dir, { recursive: true, force: true });
    currentDir = null;
  }
}

const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');

function report(results) {
  const ref = results.find((r) => r.config === '1');
  const ratio = (v, key) => (ref ? fmt(v / ref[key], 2) : '-');
  const label = (r) => (r.config === '1' ? '1 node' : r.config === '1r' ? '1 node + Redis'
    : `${r.nodes} nodes + Redis (cross-node)`);
  const rows = [
    '| configuration | events/s | p50 ms | p99 ms | ack p50 ms | nodes µs/event | redis µs/event | total µs/event | events/s ratio | p50 ratio | p99 ratio | nodes µs ratio | total µs ratio | server-side / loadgen / other CPU % | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const r of results) {
    rows.push(`| ${label(r)} | ${fmt(r.events_per_s, 0)} | ${fmt(r.lat_p50_ms, 2)} | ${fmt(r.lat_p99_ms, 2)} | ` +
      `${fmt(r.ack_p50_ms, 2)} | ${fmt(r.node_us_per_event)} | ${fmt(r.redis_us_per_event)} | ` +
      `${fmt(r.total_us_per_event)} | ${ratio(r.events_per_s, 'events_per_s')} | ` +
      `${ratio(r.lat_p50_ms, 'lat_p50_ms')} | ${ratio(r.lat_p99_ms, 'lat_p99_ms')} | ` +
      `${ratio(r.node_us_per_event, 'node_us_per_event')} | ${ratio(r.total_us_per_event, 'total_us_per_event')} | ` +
      `${fmt(r.server_side_cpu_pct, 0)} / ${fmt(r.loadgen_cpu_pct, 0)} / ${fmt(r.other_cpu_pct, 0)} | ${r.errors + r.unacked} |`);
  }
  console.log(rows.join('\n'));
  if (results.some((r) => r.other_cpu_pct > 15))
    log('WARNING: other processes used > 15 % of a core in some window: figures disturbed');
  for (const r of results) {
    if (!r.errors && !r.unacked) continue;
    log(`WARNING: config ${r.config}: ${r.errors} error acks (first ${JSON.stringify(r.first_error)}),` +
      ` ${r.unacked} unacknowledged`);
    r.node_log.forEach((l, i) => l.length && log(`  node n${i + 1} logged:\n    ${l.join('\n    ')}`));
    if (r.cluster_metrics) log(`  cluster counters: ${JSON.stringify(r.cluster_metrics)}`);
  }
}

// On a signal: the children die with us (pdeathsig); only the temp dir of
// the running configuration is left to remove.
let currentDir = null;
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    log(`${sig}: stopping`);
    if (currentDir) rmSync(currentDir, { recursive: true, force: true });
    process.exit(130);
  });

const t0 = Date.now();
log(`${BIN}; ${PAIRS} pairs, window ${WINDOW}, ${SIZE}-byte offers, ${WARM}s warm-up + ${DURATION}s measured;` +
  ` configs ${CONFIGS.join(' ')}; nodes and redis-server on core ${SERVER_CPU}, load on core ${LOAD_CPU}`);
const results = [];
try {
  for (const cfg of CONFIGS) {
    const r = await runConfig(cfg);
    log(`${cfg}: ${fmt(r.events_per_s, 0)} events/s, p50 ${fmt(r.lat_p50_ms, 2)} ms, p99 ${fmt(r.lat_p99_ms, 2)} ms,` +
      ` nodes ${fmt(r.node_us_per_event)} + redis ${fmt(r.redis_us_per_event)} µs/event, errors ${r.errors}`);
    results.push(r);
  }
} catch (e) {
  log(e?.stack || e);
  process.exit(1);
}
report(results);
if (process.env.BENCH_CLUSTER_JSON)
  await writeFile(process.env.BENCH_CLUSTER_JSON, JSON.stringify(results, null, 1));
log(`done in ${Math.round((Date.now() - t0) / 1000)} s`);
