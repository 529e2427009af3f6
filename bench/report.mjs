// report.mjs - prints bench/run.sh's comparison table.
// usage: node bench/report.mjs ours-mem.json ref-mem.json ours-relay.json ref-relay.json
import { readFileSync } from 'node:fs';

const [om, rm, or, rr] = process.argv.slice(2).map((p) => JSON.parse(readFileSync(p, 'utf8')));

const rows = [];
const row = (metric, a, b, digits = 1, noRatio = false) => {
  const f = (v) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
  const ratio = !noRatio && Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) : '';
  rows.push([metric, f(a), f(b), ratio]);
};

row(`memory per idle connection, KB (N=${om.n})`, om.kb_per_conn, rm.kb_per_conn, 2);
row('  server RSS before, MB', om.rss_before_kb / 1024, rm.rss_before_kb / 1024, 1);
row(`  server RSS with ${om.n} clients, MB`, om.rss_after_kb / 1024, rm.rss_after_kb / 1024, 1);
row('  server CPU per connect+login, us', om.server_cpu_us_per_login, rm.server_cpu_us_per_login, 0);
if (om.idle_s > 0)
  row(`  server CPU with ${om.n} idle clients, % of core`, om.idle_cpu_pct, rm.idle_cpu_pct, 1);
row(`relay throughput, events/s (${or.pairs} pairs, window ${or.window})`, or.events_per_s, rr.events_per_s, 0);
row('relay latency p50, ms (emit -> target)', or.lat_p50_ms, rr.lat_p50_ms, 2);
row('relay latency p99, ms', or.lat_p99_ms, rr.lat_p99_ms, 2);
row('ack round trip p50, ms', or.ack_p50_ms, rr.ack_p50_ms, 2);
row('ack round trip p99, ms', or.ack_p99_ms, rr.ack_p99_ms, 2);
row('server CPU per relayed event, us', or.server_us_per_event, rr.server_us_per_event, 1);
if (or.server_kernel_us_per_event !== undefined)
  row('  of which in the kernel (stime), us', or.server_kernel_us_per_event, rr.server_kernel_us_per_event, 1);
row('  server CPU busy in window, % of core', or.server_cpu_pct, rr.server_cpu_pct, 0);
row('  load generator CPU busy, % of core', or.loadgen_cpu_pct, rr.loadgen_cpu_pct, 0);
row('  events relayed in window', or.events, rr.events, 0);
row('  other processes busy in window, % of core', or.other_cpu_pct, rr.other_cpu_pct, 0, true);

const head = ['metric', 'echolinkd', 'node socket.io 4.8', 'ratio'];
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => '| ' + r.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join(' | ') + ' |';
console.log(line(head));
console.log('|' + w.map((n, i) => (i ? '-'.repeat(n + 1) + ':' : '-'.repeat(n + 2))).join('|') + '|');
rows.forEach((r) => console.log(line(r)));

const errs = or.errors + rr.errors + or.unacked + rr.unacked;
if (errs) console.log(`\nWARNING: ${or.errors}/${rr.errors} error acks, ${or.unacked}/${rr.unacked} unacked (ours/ref)`);

if (Math.max(or.other_cpu_pct, rr.other_cpu_pct) > 15)
  console.log('\nWARNING: other processes used the CPUs during a relay window; ' +
    'throughput and latency are disturbed (CPU per event less so). Re-run on a quiet machine.');

const memOk = om.kb_per_conn <= 2;
const cpuOk = or.server_us_per_event <= rr.server_us_per_event / 3;
console.log(`\ntargets: memory <= 2 KB per idle connection: ${memOk ? 'MET' : 'NOT MET'}` +
  ` (${om.kb_per_conn.toFixed(2)} KB);` +
  ` CPU per event <= 1/3 of node: ${cpuOk ? 'MET' : 'NOT MET'}` +
  ` (${or.server_us_per_event.toFixed(1)} vs ${(rr.server_us_per_event / 3).toFixed(1)} us)`);
// The relay's sends and receives cost the kernel about the same in both
// servers; when 1/3 of node's total is no more than node's own kernel time,
// no server that relays over these sockets can meet the CPU target.
if (rr.server_kernel_us_per_event !== undefined && rr.server_us_per_event / 3 <= rr.server_kernel_us_per_event)
  console.log(`note: 1/3 of node's CPU per event (${(rr.server_us_per_event / 3).toFixed(1)} us) is no more than` +
    ` node's kernel time alone (${rr.server_kernel_us_per_event.toFixed(1)} us; ours ${or.server_kernel_us_per_event.toFixed(1)} us):` +
    ' the target then asks for less than the kernel work of the relay itself.');
if (Math.max(or.loadgen_cpu_pct, rr.loadgen_cpu_pct) > 90)
  console.log('note: the load generator core was near saturation; events/s is then a lower bound ' +
    'for the faster server, and CPU per event remains the comparable figure.');
