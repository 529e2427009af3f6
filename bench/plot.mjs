// plot.mjs - turns the JSON results of one `make bench` run into the SVG
// plots of docs/PERFORMANCE.md, with gnuplot.
//
//   node bench/plot.mjs RESULTS_DIR OUT_DIR
//
// RESULTS_DIR holds what bench/run.sh had each benchmark write:
// signaling.json (bench/run.sh), e2ee.json (bench/e2ee.sh), rtc.json
// (bench/rtc.sh), client.json (bench/client.sh), cluster.json
// (bench/cluster.sh). A benchmark that was skipped (no root, no redis) has
// no file: its plot keeps the one from the last run that had it, and the
// overview says "not run". Every figure is EchoLink's beside its reference
// peer's from the same run; the overview shows their ratio as a factor
// where > 1 always means EchoLink is better.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [resultsDir, outDir] = process.argv.slice(2);
if (!resultsDir || !outDir) {
  console.error('usage: node bench/plot.mjs RESULTS_DIR OUT_DIR');
  process.exit(2);
}

function load(name) {
  const f = path.join(resultsDir, `${name}.json`);
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new Error(`${f}: ${e.message}`);
  }
}

const OURS = 'EchoLink';
const COLORS = { ours: '#1f77b4', ref: '#ff7f0e', third: '#2ca02c' };
const TERM = "set encoding utf8\nset terminal svg size %W%,%H% dynamic noenhanced font 'sans,11' background '#ffffff'";
mkdirSync(outDir, { recursive: true });
const work = mkdtempSync(path.join(tmpdir(), 'echolink-plot-'));

// gnuplot reads strings in double quotes ("\n" is a line break there).
const q = (s) => `"${String(s).replace(/"/g, "'")}"`;
const num = (v) => (Number.isFinite(v) ? String(v) : 'NaN');

function gnuplot(name, script, w = 900, h = 420) {
  const out = path.join(outDir, `${name}.svg`);
  const full = [TERM.replace('%W%', w).replace('%H%', h), `set output ${q(out)}`, script, 'unset output'].join('\n');
  const file = path.join(work, `${name}.gp`);
  writeFileSync(file, full);
  execFileSync('gnuplot', [file], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 30000 });
  return out;
}

function dataFile(name, rows) {
  const f = path.join(work, `${name}.dat`);
  writeFileSync(f, rows.map((r) => r.map((c) => (typeof c === 'string' ? q(c) : num(c))).join(' ')).join('\n') + '\n');
  return f;
}

/* A row of small two-bar panels (EchoLink beside the reference), one per
 * metric, each with its own unit and its own y axis starting at 0. */
function panels(name, title, refName, items) {
  const ok = items.filter((it) => Number.isFinite(it.ours) && Number.isFinite(it.ref));
  if (!ok.length) return null;
  const lines = [
    `set multiplot layout 1,${ok.length} title ${q(title)} font 'sans,13'`,
    'set style fill solid 0.85 border -1', 'set boxwidth 0.6', 'unset key', 'set grid ytics lc rgb "#dddddd"',
    'set yrange [0:*]', 'set xrange [-0.6:1.6]', 'set tics nomirror', 'set border 3',
    `set xtics (${q(OURS)} 0, ${q(refName)} 1) font 'sans,9'`,
  ];
  ok.forEach((it, i) => {
    const f = dataFile(`${name}-${i}`, [[0, it.ours], [1, it.ref]]);
    const better = it.lower ? 'lower is better' : 'higher is better';
    lines.push(`set title ${q(`${it.label}\\n${it.unit}, ${better}`)} font 'sans,10'`);
    // x:y:width:colour - "lc rgb variable" takes the colour from the last column
    lines.push(`plot ${q(f)} using 1:2:(0.6):($1 == 0 ? 0x${COLORS.ours.slice(1)} : 0x${COLORS.ref.slice(1)}) ` +
      `with boxes lc rgb variable, '' using 1:2:(sprintf(${q(it.fmt || '%.1f')}, $2)) with labels offset 0,0.7 font 'sans,9'`);
  });
  lines.push('unset multiplot');
  return gnuplot(name, lines.join('\n'), Math.max(520, 230 * ok.length), 380);
}

const plots = [];
const overview = []; // [area, label, factor] with factor > 1 = EchoLink better
const factor = (ours, ref, lower) =>
  Number.isFinite(ours) && Number.isFinite(ref) && ours > 0 && ref > 0 ? (lower ? ref / ours : ours / ref) : NaN;

// ---- signaling: echolinkd vs Node Socket.IO 4.8 ------------------------------
const sig = load('signaling');
const sigParts = ['ours-mem', 'ref-mem', 'ours-relay', 'ref-relay'];
if (sig && !sigParts.every((k) => sig[k])) console.error(`plot: signaling.json lacks ${sigParts.filter((k) => !sig[k]).join(', ')}: skipped`);
if (sig && sigParts.every((k) => sig[k])) {
  const om = sig['ours-mem'], rm = sig['ref-mem'], or = sig['ours-relay'], rr = sig['ref-relay'];
  const items = [
    { label: `memory per idle connection (N=${om.n})`, unit: 'KB', ours: om.kb_per_conn, ref: rm.kb_per_conn, lower: true, fmt: '%.2f' },
    { label: 'server CPU per relayed event', unit: 'µs', ours: or.server_us_per_event, ref: rr.server_us_per_event, lower: true },
    { label: 'relay latency p50', unit: 'ms', ours: or.lat_p50_ms, ref: rr.lat_p50_ms, lower: true, fmt: '%.2f' },
    { label: 'relay latency p99', unit: 'ms', ours: or.lat_p99_ms, ref: rr.lat_p99_ms, lower: true, fmt: '%.2f' },
    { label: 'relay throughput', unit: 'events/s', ours: or.events_per_s, ref: rr.events_per_s, lower: false, fmt: '%.0f' },
  ];
  plots.push(panels('signaling', 'Signaling: echolinkd vs Node.js Socket.IO 4.8 (same run)', 'Socket.IO', items));
  for (const it of items) overview.push(['signaling', it.label, factor(it.ours, it.ref, it.lower)]);
}

// ---- WebRTC data channels: C peer pair vs libwebrtc and libdatachannel -------
// The bar beside ours is the best reference of the run for that figure
// (the issue's targets are ratios to it); its name is in the panel title.
const rtc = load('rtc');
if (rtc?.echolink && rtc?.libwebrtc) {
  const E = rtc.echolink;
  const refs = Object.keys(rtc).filter((k) => k !== 'echolink' && k !== 'bestRef' && rtc[k]?.setupMs !== undefined);
  const best = (k, lower) => refs.reduce((b, r) => (b === null || (lower ? rtc[r][k] < rtc[b][k] : rtc[r][k] > rtc[b][k]) ? r : b), null);
  const item = (label, unit, k, lower, fmt) => {
    const r = best(k, lower);
    return { label: `${label} (vs ${r})`, unit, ours: E[k], ref: rtc[r][k], lower, fmt };
  };
  const items = [
    item('setup, offer to 2 channels open', 'ms', 'setupMs', true),
    item('bulk, 16 KiB messages', 'MiB/s', 'bulk16', false),
    item('bulk, 64 KiB messages', 'MiB/s', 'bulk64', false),
    item('CPU per MiB, both peers, 16 KiB', 'ms', 'cpu16', true),
    item('round trip p99', 'ms', 'rttP99', true, '%.3f'),
  ];
  plots.push(panels('rtc', `WebRTC data channels: libecholink vs the best of ${refs.join(' and ')}, same run`, 'best reference', items));
  for (const it of items) overview.push(['data channels', it.label, factor(it.ours, it.ref, it.lower)]);
}

// ---- end-to-end encryption: per message, vs openssl speed --------------------
const e2ee = load('e2ee');
if (e2ee?.sizes?.length) {
  const rows = e2ee.sizes.map((n, i) => [n, e2ee.c[i], e2ee.js[i], e2ee.openssl[i]]);
  const f = dataFile('e2ee', rows);
  const script = [
    "set title 'End-to-end encryption: one message sealed + opened, vs 2 x openssl speed AES-256-GCM (same run)' font 'sans,13'",
    'set logscale xy', "set xlabel 'message size (bytes)'", "set ylabel 'ns per message (lower is better)'",
    'set grid lc rgb "#dddddd"', 'set key top left', 'set format x "%.0s%cB"',
    `plot ${q(f)} using 1:2 with linespoints lw 2 pt 7 lc rgb ${q(COLORS.ours)} title 'EchoLink C (el_fcipher)', ` +
      `'' using 1:3 with linespoints lw 2 pt 5 lc rgb ${q(COLORS.third)} title 'EchoLink web (WebCrypto, Node)', ` +
      `'' using 1:4 with linespoints lw 2 pt 9 dt 2 lc rgb ${q(COLORS.ref)} title 'openssl speed, 2 x AES-256-GCM'`,
  ].join('\n');
  plots.push(gnuplot('e2ee', script));
  const big = e2ee.sizes.indexOf(16384);
  if (big >= 0) overview.push(['encryption', 'C frame cipher, 16 KiB message', factor(e2ee.c[big], e2ee.openssl[big], true)]);
}

// ---- client: encrypted file disk to disk vs raw data channel -----------------
const cli = load('client');
if (cli?.ours?.file && cli?.raw) {
  const f = cli.ours.file, r = cli.raw, q2 = cli.ours.rtt || {};
  const items = [
    { label: `file ${cli.mib} MiB, encrypted, disk to disk`, unit: 'MiB/s', ours: f.mibs, ref: r.mibs, lower: false },
    { label: 'CPU per MiB, both processes', unit: 'ms', ours: f.cpuPerMiB, ref: r.cpuPerMiB, lower: true, fmt: '%.2f' },
  ];
  plots.push(panels('client', 'Client: echolink file transfer vs the raw data channel it runs on (same run)', 'raw channel', items));
  for (const it of items) overview.push(['client', it.label, factor(it.ours, it.ref, it.lower)]);
  if (Number.isFinite(q2.duringP50) && Number.isFinite(q2.baseP50)) {
    const chat = [
      { label: 'chat round trip p50', unit: 'ms', ours: q2.duringP50, ref: q2.baseP50, lower: true, fmt: '%.2f' },
      { label: 'chat round trip p99', unit: 'ms', ours: q2.duringP99, ref: q2.baseP99, lower: true, fmt: '%.2f' },
    ];
    plots.push(panels('client-chat', `Client: chat while a ${q2.bigMib} MiB file flows vs idle (same run)`, 'idle', chat));
    overview.push(['client', 'chat p50 during a big file vs idle', factor(q2.duringP50, q2.baseP50, true)]);
  }
}

// ---- cluster: one node vs several behind Redis -------------------------------
const cl = load('cluster');
if (Array.isArray(cl) && cl.length) {
  const label = (r) => (r.config === '1' ? '1 node' : r.config === '1r' ? '1 + Redis' : `${r.nodes} nodes`);
  const rows = cl.map((r, i) => [i, label(r), r.node_us_per_event, r.redis_us_per_event, r.lat_p50_ms, r.events_per_s]);
  const f = dataFile('cluster', rows);
  const script = [
    "set title 'Cluster: server-side CPU per relayed event, one node vs several behind Redis (same run)' font 'sans,13'",
    'set style data histograms', 'set style histogram rowstacked', 'set style fill solid 0.85 border -1',
    'set boxwidth 0.6', 'set yrange [0:*]', "set ylabel 'µs per event (lower is better)'", 'set grid ytics lc rgb "#dddddd"',
    'set key top left', 'set y2label "relay latency p50 (ms)"', 'set y2tics', 'set y2range [0:*]',
    `plot ${q(f)} using 3:xtic(2) lc rgb ${q(COLORS.ours)} title 'echolinkd nodes', ` +
      `'' using 4 lc rgb ${q(COLORS.ref)} title 'redis-server', ` +
      `'' using 1:5 axes x1y2 with linespoints lw 2 pt 7 lc rgb ${q(COLORS.third)} title 'latency p50 (right axis)'`,
  ].join('\n');
  plots.push(gnuplot('cluster', script));
  const one = cl.find((r) => r.config === '1');
  const two = cl.find((r) => r.nodes === 2);
  if (one && two) overview.push(['cluster', '2 nodes vs 1: total CPU per event', factor(two.total_us_per_event, one.total_us_per_event, true)]);
}

// ---- overview: every headline ratio, > 1 = EchoLink better ------------------
const ov = overview.filter((o) => Number.isFinite(o[2]));
if (ov.length) {
  const f = dataFile('overview', ov.map((o, i) => [i, `${o[0]}: ${o[1]}`, o[2]]));
  const script = [
    "set title 'Where EchoLink stands: factor against the reference of the same run (> 1: EchoLink better)' font 'sans,13'",
    'set style fill solid 0.85 border -1', 'set boxwidth 0.7', 'unset key', 'set logscale y 2',
    'set grid ytics lc rgb "#dddddd"', "set ylabel 'factor (log scale)'", 'set xtics rotate by 30 right font "sans,9" nomirror',
    `set xrange [-0.6:${ov.length - 0.4}]`, 'set bmargin 16', 'set lmargin 30',
    `set arrow from -0.6,1 to ${ov.length - 0.4},1 nohead lw 2 lc rgb '#444444'`,
    `plot ${q(f)} using 1:3:(0.7):($3 >= 1 ? 0x2ca02c : 0xd62728):xtic(2) with boxes lc rgb variable, ` +
      `'' using 1:3:(sprintf('%.2f', $3)) with labels offset 0,0.6 font 'sans,9'`,
  ].join('\n');
  plots.push(gnuplot('overview', script, 1000, 560));
}

rmSync(work, { recursive: true, force: true });
const made = plots.filter(Boolean);
for (const p of made) console.log(`plot: ${p}`);
if (!made.length) {
  console.error(`plot: no benchmark results in ${resultsDir}`);
  process.exit(1);
}
