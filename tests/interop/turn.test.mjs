// turn.test.mjs - TURN end to end with a real coturn: echolinkd mints
// use-auth-secret credentials (src/server/turn.c, docs/PROTOCOL.md §6) from
// the secret it shares with coturn; two el_peer_tool processes forced to
// relay-only ICE (iceTransportPolicy "relay") take them from
// get_ice_servers, signal through echolinkd, and connect through coturn; an
// altered and an expired credential are refused by coturn and no connection
// is made, and ICE reports "failed" (no local candidate to try).
// Also: nothing in the default configuration, `--help` or the sources
// carries a TURN credential.
//
//   tests/harness/netns.sh run node --test tests/interop/turn.test.mjs
//
// Everything (coturn, echolinkd, the two tools) runs in the test's network
// namespace: coturn listens and relays on $EL_NETNS_ADDR, echolinkd on
// 127.0.0.1; all of them die with this process (setpriv --pdeathsig KILL).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { closeAll, connectClient, makeContacts } from '../js/lib/client.mjs';
import { TURNSERVER, startCoturn, turnCredential } from '../js/lib/coturn.mjs';
import { NETNS_ADDR, SOURCE_DIR, candidateAddress, candidatePort, killAllPeerTools, startPeerTool } from
  '../js/lib/peertool.mjs';
import { BINARY, startServer } from '../js/lib/server.mjs';

const HAVE_TURNSERVER = spawnSync(TURNSERVER, ['-h'], { stdio: 'ignore' }).error === undefined;
const SKIP = !NETNS_ADDR ? 'not inside a test network namespace (run through tests/harness/netns.sh)'
  : !HAVE_TURNSERVER ? `no ${TURNSERVER} (install coturn)` : false;

const TTL = 600;          // --turn-ttl given to echolinkd
const CONNECT_MS = 20000; // relay-only connect through coturn
const NOCONNECT_MS = 5000; // a refused credential: no connection within this after end-of-candidates
const FAIL_MS = 15000;     // ... and ICE reports failed within this

/**
 * Wires one el_peer_tool to its logged-in client: the tool's offer, answer
 * and trickled candidates go to `peerId` through echolinkd (docs/PROTOCOL.md
 * §5), and what echolinkd relays from `peerId` goes to the tool; candidates
 * that arrive before the remote description are held, as a client would.
 * Returns {refused: acks that were not ok, close(): unhooks the client}.
 */
function bridge(tool, client, peerId) {
  const refused = [];
  const emit = (ev, arg) => client.socket.timeout(5000).emit(ev, { to: peerId, ...arg }, (err, ack) => {
    if (err || !ack?.ok) refused.push({ ev, err: err && String(err), ack });
  });
  tool.subscribe('offer', (e) => emit('offer', { type: 'offer', sdp: e.sdp }));
  tool.subscribe('answer', (e) => emit('answer', { type: 'answer', sdp: e.sdp }));
  tool.subscribe('candidate', (e) => emit('ice_candidate', { candidate: e.candidate }));

  let ready = false;
  const held = [];
  const fromPeer = (m) => m && m.from === peerId;
  const toTool = (op) => {
    if (!tool.exited) tool.send(op);
  };
  const setRemote = (type) => (m) => {
    if (!fromPeer(m)) return;
    toTool({ op: 'set_remote', type, sdp: m.sdp });
    ready = true;
    for (const c of held.splice(0)) toTool({ op: 'candidate', candidate: c });
  };
  const handlers = {
    offer: setRemote('offer'),
    answer: setRemote('answer'),
    ice_candidate: (m) => {
      if (!fromPeer(m)) return;
      if (ready) toTool({ op: 'candidate', candidate: m.candidate });
      else held.push(m.candidate);
    },
  };
  for (const [ev, fn] of Object.entries(handlers)) client.socket.on(ev, fn);
  return {
    refused,
    close: () => {
      for (const [ev, fn] of Object.entries(handlers)) client.socket.off(ev, fn);
    },
  };
}

/** The ICE server entry with a TURN URL in a get_ice_servers ack. */
function turnEntry(ack) {
  assert.equal(ack.ok, true, `get_ice_servers: ${JSON.stringify(ack)}`);
  const e = ack.ice_servers.find((s) => (s.urls || []).some((u) => u.startsWith('turn:')));
  assert.ok(e, `no TURN entry in ${JSON.stringify(ack.ice_servers)}`);
  return e;
}

/** Starts a relay-only el_peer_tool with one TURN server and these credentials. */
function relayTool(name, url, username, credential) {
  return startPeerTool({
    name,
    args: ['--relay-only', '--ice-server', url, '--turn-username', username, '--turn-credential', credential],
    env: { EL_LOG_LEVEL: 'info' }, // for the "selected pair" line
  });
}

/** Local candidates the tool trickled (end-of-candidates excluded). */
const localCandidates = (tool) => tool.events.filter((e) => e.ev === 'candidate' && e.candidate)
  .map((e) => e.candidate);

/**
 * Resolves once the tool has seen an event matching pred (tool.events keeps
 * every event, also those that a subscriber took, as bridge()'s candidates).
 * Polls every 50 ms for at most ms.
 */
async function seen(tool, pred, ms, what) {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (tool.events.some(pred)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${tool.name}: no ${what} within ${ms} ms\n${tool.tail(20)}`);
}

/** [local, remote] "addr:port" of the tool's "selected pair" log lines. */
function selectedPairs(tool) {
  const out = [];
  for (const m of tool.stderr.matchAll(/selected pair (\S+):(\d+) <-> (\S+):(\d+)/g)) {
    out.push({ local: { addr: m[1], port: Number(m[2]) }, remote: { addr: m[3], port: Number(m[4]) } });
  }
  return out;
}

describe('TURN through coturn with credentials minted by echolinkd', { skip: SKIP }, () => {
  const secret = randomBytes(32).toString('hex');
  let turn, srv, alice, bob;
  const tools = [];

  before(async () => {
    turn = await startCoturn({ addr: NETNS_ADDR, secret });
    // the secret through the environment: a command line is world-readable
    // in /proc (docs/OPERATIONS.md says the same)
    srv = await startServer({
      args: ['--turn-urls', turn.url, '--turn-ttl', String(TTL)],
      env: { ECHOLINK_TURN_SECRET: secret },
    });
    alice = await connectClient(srv.url, { label: 'alice', transports: ['websocket'] });
    bob = await connectClient(srv.url, { label: 'bob', transports: ['websocket'] });
    await makeContacts(alice, bob);
  });

  after(async () => {
    for (const t of tools) await t.quit(2000).catch(() => {});
    killAllPeerTools();
    closeAll(alice, bob);
    await srv?.cleanup();
    await turn?.stop();
  });

  it('get_ice_servers hands out the TURN URL and a coturn use-auth-secret credential', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const e = turnEntry(await alice.emitAck('get_ice_servers', {}));
    assert.deepEqual(e.urls, [turn.url]);
    const [expiry, who] = e.username.split(':');
    assert.equal(who, alice.peerId, 'username = "<expiry>:<peer_id>"');
    assert.ok(Number(expiry) >= t0 + TTL - 2 && Number(expiry) <= t0 + TTL + 2,
      `expiry ${expiry} is about now + ${TTL}`);
    // node:crypto's HMAC-SHA1 over the same username: what coturn checks
    assert.equal(e.credential, turnCredential(secret, alice.peerId, Number(expiry)).credential);
    // the login ack carries the same kind of entry
    const fromLogin = turnEntry(alice.logins[0]);
    assert.deepEqual(fromLogin.urls, [turn.url]);
    assert.match(fromLogin.username, new RegExp(`^\\d+:${alice.peerId}$`));
  });

  it('two relay-only peers connect through coturn and exchange data both ways', async () => {
    const ea = turnEntry(await alice.emitAck('get_ice_servers', {}));
    const eb = turnEntry(await bob.emitAck('get_ice_servers', {}));
    const a = await relayTool('A', ea.urls[0], ea.username, ea.credential);
    const b = await relayTool('B', eb.urls[0], eb.username, eb.credential);
    tools.push(a, b);
    const links = [bridge(a, alice, bob.peerId), bridge(b, bob, alice.peerId)];
    a.send({ op: 'channel', label: 'chat' });
    a.send({ op: 'create_offer' });
    await a.waitState('connected', CONNECT_MS);
    await b.waitState('connected', CONNECT_MS);
    await a.waitFor('open', (e) => e.label === 'chat');
    await b.waitFor('channel', (e) => e.label === 'chat');
    assert.deepEqual(links.flatMap((l) => l.refused), [], 'every signaling message was relayed by echolinkd');

    // only relay candidates were offered, all of them on coturn's relay ports
    for (const t of [a, b]) {
      const cands = localCandidates(t);
      assert.ok(cands.length > 0, `${t.name} gathered candidates`);
      for (const c of cands) {
        assert.match(c, / typ relay/, `${t.name}: a non-relay candidate: ${c}`);
        assert.equal(candidateAddress(c), NETNS_ADDR, c);
        const p = candidatePort(c);
        assert.ok(p >= turn.minPort && p <= turn.maxPort, `${t.name}: port ${p} outside coturn's relay range`);
      }
    }
    // the selected pair joins two coturn relay addresses
    for (const t of [a, b]) {
      const pairs = selectedPairs(t);
      assert.ok(pairs.length > 0, `${t.name}: no "selected pair" line in\n${t.tail(20)}`);
      const { local, remote } = pairs[pairs.length - 1];
      for (const end of [local, remote]) {
        assert.equal(end.addr, NETNS_ADDR, `${t.name}: selected pair ${JSON.stringify(pairs.at(-1))}`);
        assert.ok(end.port >= turn.minPort && end.port <= turn.maxPort,
          `${t.name}: selected pair port ${end.port} is not a relay port`);
      }
    }
    // coturn saw both users allocate with the minted usernames
    await turn.waitLog(new RegExp(`user <${ea.username}>: incoming packet ALLOCATE processed, success`));
    await turn.waitLog(new RegExp(`user <${eb.username}>: incoming packet ALLOCATE processed, success`));

    a.send({ op: 'send', label: 'chat', text: 'through the relay' });
    assert.equal((await b.waitFor('message', (e) => e.label === 'chat')).text, 'through the relay');
    b.send({ op: 'send', label: 'chat', text: 'and back' });
    assert.equal((await a.waitFor('message', (e) => e.label === 'chat')).text, 'and back');

    // 1 MiB each way, SHA-256 checked: more than a handshake crosses coturn
    for (const [from, to] of [[a, b], [b, a]]) {
      to.send({ op: 'digest', label: 'chat' });
      from.send({ op: 'blast', label: 'chat', bytes: 1 << 20, chunk: 16384 });
      const sent = await from.waitFor('blasted', () => true, 30000);
      let d;
      for (let i = 0; i < 300; i++) {
        to.send({ op: 'digest', label: 'chat' });
        d = await to.waitFor('digest');
        if (d.bytes >= sent.bytes) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(d.bytes, sent.bytes, `${from.name} -> ${to.name}: bytes`);
      assert.equal(d.sha256, sent.sha256, `${from.name} -> ${to.name}: digest`);
    }
    for (const l of links) l.close();
    await a.quit();
    await b.quit();
  });

  /**
   * A relay-only pair where A holds `bad` credentials and B good ones, with
   * `failMs` to report ICE failed. Checked: coturn answers A's ALLOCATE with
   * 401, A ends gathering without a single candidate, and neither side
   * connects. Resolves {a, b} (still running; the caller quits them) and
   * whether A reported "failed" in time.
   */
  async function refusedPair(bad, failMs) {
    const eb = turnEntry(await bob.emitAck('get_ice_servers', {}));
    const a = await relayTool('A', turn.url, bad.username, bad.credential);
    const b = await relayTool('B', eb.urls[0], eb.username, eb.credential);
    tools.push(a, b);
    const links = [bridge(a, alice, bob.peerId), bridge(b, bob, alice.peerId)];
    try {
      const t0 = Date.now();
      a.send({ op: 'channel', label: 'chat' });
      a.send({ op: 'create_offer' });
      await turn.waitLog(new RegExp(`user <${bad.username}>: incoming packet message processed, error 401`));
      // end-of-candidates from both sides: everything there is to try is known
      await seen(a, (e) => e.ev === 'candidate' && e.candidate === null, 10000, 'end-of-candidates');
      await seen(b, (e) => e.ev === 'candidate' && e.candidate === null, 10000, 'end-of-candidates');
      assert.deepEqual(localCandidates(a), [], 'A got no relay candidate');
      let failed = null;
      try {
        failed = await a.waitState('failed', failMs);
        console.log(`# ICE failed on A after ${Date.now() - t0} ms (${failed.why || 'no reason given'})`);
      } catch { /* reported by the caller */ }
      const connected = (t) => t.events.some((e) => e.ev === 'state' && e.state === 'connected');
      assert.equal(connected(a), false, 'A connected with a refused credential');
      assert.equal(connected(b), false, 'B connected to a peer without candidates');
      return { failed: !!failed, a, b };
    } finally {
      for (const l of links) l.close();
    }
  }

  async function quitAll(...ts) {
    for (const t of ts) await t.quit();
  }

  it('an altered credential is refused by coturn, and no connection is made', async () => {
    const e = turnEntry(await alice.emitAck('get_ice_servers', {}));
    const mac = Buffer.from(e.credential, 'base64');
    mac[0] ^= 0x01; // one bit of the HMAC
    const r = await refusedPair({ username: e.username, credential: mac.toString('base64') }, NOCONNECT_MS);
    await quitAll(r.a, r.b);
  });

  it('an expired credential (correct HMAC, expiry in the past) is refused, and no connection is made',
    async () => {
      const past = Math.floor(Date.now() / 1000) - 60;
      const r = await refusedPair(turnCredential(secret, alice.peerId, past), NOCONNECT_MS);
      await quitAll(r.a, r.b);
    });

  // With no local candidate libnice has no check list and never fails by
  // itself: src/rtc/ice.c reports "failed" once both sides said
  // end-of-candidates and there is nothing to try.
  it('ICE reports "failed" in bounded time when coturn refuses the credential',
    async () => {
      const past = Math.floor(Date.now() / 1000) - 60;
      const r = await refusedPair(turnCredential(secret, alice.peerId, past), FAIL_MS);
      await quitAll(r.a, r.b);
      assert.equal(r.failed, true, 'A reported "failed"');
      assert.equal(r.failed, true, `A did not report ICE "failed" within ${FAIL_MS} ms`);
    });
});

/** Every regular file under dir (no node_modules, no build output). */
function filesUnder(dir) {
  const out = [];
  const walk = (d, depth) => {
    if (depth > 12) return;
    for (const n of readdirSync(d)) {
      if (n === 'node_modules' || n.startsWith('.')) continue;
      const p = path.join(d, n);
      const s = statSync(p);
      if (s.isDirectory()) walk(p, depth + 1);
      else if (s.isFile() && s.size < 4 << 20) out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}

describe('no TURN credential in the code or the default configuration', () => {
  it('etc/echolinkd.conf.example sets no turn-secret (only a commented example)', () => {
    const conf = readFileSync(path.join(SOURCE_DIR, 'etc', 'echolinkd.conf.example'), 'utf8');
    const set = conf.split('\n').filter((l) => /^\s*turn-secret\s*=/.test(l));
    assert.deepEqual(set, [], 'an active turn-secret line');
    assert.match(conf, /^#\s*turn-secret\s*=/m, 'the commented example is still documented');
  });

  it('echolinkd --help shows no default for --turn-secret', () => {
    const help = execFileSync(BINARY, ['--help'], { encoding: 'utf8' });
    const line = help.split('\n').find((l) => /^\s*--turn-secret\b/.test(l));
    assert.ok(line, `--turn-secret in --help:\n${help}`);
    assert.doesNotMatch(line, /\[/, `a default is shown: ${line}`);
  });

  it('without --turn-secret echolinkd hands out no credential', async () => {
    const s = await startServer({ args: ['--turn-urls', 'turn:192.0.2.1:3478'] });
    let c;
    try {
      c = await connectClient(s.url, { transports: ['websocket'] });
      for (const ack of [c.logins[0], await c.emitAck('get_ice_servers', {})]) {
        assert.equal(ack.ok, true);
        for (const e of ack.ice_servers) {
          assert.equal(e.username, undefined, JSON.stringify(e));
          assert.equal(e.credential, undefined, JSON.stringify(e));
        }
      }
    } finally {
      closeAll(c);
      await s.cleanup();
    }
  });

  it('no TURN password or auth secret is written into the sources', () => {
    // what the seed had: public TURN servers with their passwords in the code
    const bad = [
      /openrelay/i,
      /static-auth-secret\s*=\s*\S/,
      /\bcredential\s*[:=]\s*['"][^'"]+['"]/,
      /\bturn[_-]?secret\s*[:=]\s*['"][^'"]+['"]/i,
    ];
    const hits = [];
    for (const top of ['src', 'apps', 'web', 'etc', 'packaging', 'include']) {
      for (const f of filesUnder(path.join(SOURCE_DIR, top))) {
        if (!/\.(c|h|js|mjs|html|json|conf|example|service|cnf|ini|ya?ml)$/.test(f)) continue;
        const txt = readFileSync(f, 'utf8');
        for (const re of bad) {
          const m = txt.match(re);
          if (m) hits.push(`${path.relative(SOURCE_DIR, f)}: ${m[0]}`);
        }
      }
    }
    assert.deepEqual(hits, []);
  });
});
