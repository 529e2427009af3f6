// e2ee-chromium.test.mjs - the EchoLink handshake and frames between the C
// session (el_peer_tool in E2EE mode: src/client/secure) and the JavaScript
// modules of web/lib running in headless Chromium, over a real data channel,
// with the C side as initiator and as responder.
//
// The page must be a secure context for WebCrypto: it is served by a small
// static server of this test on http://127.0.0.1 (the namespace's loopback):
// /lib and /vendor from web/, the page from tests/interop/www/.
//
//   tests/harness/netns.sh run node --test tests/interop/e2ee-chromium.test.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  EventQueue, NETNS_ADDR, SOURCE_DIR, fromB64, killAllPeerTools, startPeerTool, withTimeout,
} from '../js/lib/peertool.mjs';

const SKIP = NETNS_ADDR ? false : 'not inside a test network namespace (run through tests/harness/netns.sh)';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--disable-quic'];
const VEC = JSON.parse(readFileSync(path.join(SOURCE_DIR, 'tests/vectors/identity.json'), 'utf8')).vectors;
const [ALICE, BOB, CAROL] = VEC;

const MIME = { '.js': 'text/javascript', '.html': 'text/html', '.mjs': 'text/javascript' };
const ROUTES = [
  ['/lib/', path.join(SOURCE_DIR, 'web/lib/')],
  ['/vendor/', path.join(SOURCE_DIR, 'web/vendor/')],
  ['/', path.join(SOURCE_DIR, 'tests/interop/www/')],
];

/** Static files for the page; nothing outside the three folders. */
function startStatic() {
  const server = createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [prefix, dir] = ROUTES.find(([p]) => url.startsWith(p));
    const file = path.join(dir, url.slice(prefix.length));
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': MIME[path.extname(file)] || 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const plainText = (e) => {
  const pt = fromB64(e.b64);
  assert.equal(pt[0], 0x01);
  return pt.subarray(1).toString('utf8');
};

describe('E2EE: C session <-> web/lib in headless Chromium', { skip: SKIP }, () => {
  let chromium;
  let browser;
  let server;
  let base;
  const open = [];

  before(async () => {
    ({ chromium } = await import('playwright-core'));
    server = await startStatic();
    base = `http://127.0.0.1:${server.address().port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
  });

  after(async () => {
    for (const r of open) {
      await withTimeout(r.context.close(), 10000, 'context.close').catch(() => {});
      await r.tool.quit().catch(() => r.tool.kill());
    }
    if (browser) await withTimeout(browser.close(), 15000, 'browser.close').catch(() => {});
    server?.close();
    killAllPeerTools();
  });

  /**
   * A C peer as `cId` and a page as `pId`. cRole 'initiator': C offers and
   * opens chat. pageExpects: the peer ID the page expects (default cId's).
   */
  async function pair(cRole, cId, pId, { pageExpects = cId.peer_id } = {}) {
    const tool = await startPeerTool({ name: `C(${cRole})` });
    tool.strict = false;
    const context = await browser.newContext();
    const page = await context.newPage();
    const q = new EventQueue('page');
    q.strict = false;
    const r = { tool, context, page, q };
    open.push(r);
    page.on('pageerror', (e) => q.push({ ev: 'error', message: `page error: ${e.message}` }));
    page.on('console', (m) => { if (m.type() === 'error') console.log(`# [page] ${m.text()}`); });
    await page.exposeBinding('signal', (_src, e) => q.push(e));
    await page.goto(`${base}/e2ee.html`);
    await page.waitForFunction(() => window.EL !== undefined);
    assert.equal(await page.evaluate(() => window.isSecureContext), true);
    const pageRole = cRole === 'initiator' ? 'responder' : 'initiator';
    const pid = await page.evaluate((o) => window.EL.init(o),
      { ikSeedHex: pId.ik_seed_hex, skPrivateHex: pId.sk_private_hex, expect: pageExpects, role: pageRole });
    assert.equal(pid, pId.peer_id);
    tool.send({ op: 'secure', ik_seed_hex: cId.ik_seed_hex, sk_private_hex: cId.sk_private_hex,
      expect: pId.peer_id, initiator: cRole === 'initiator', timeout_ms: 8000 });

    // signaling, with candidates held until each side has its remote description
    let toolRemote = false;
    const toTool = [];
    q.subscribe('candidate', (e) => {
      const op = { op: 'candidate', candidate: e.candidate };
      if (toolRemote) tool.send(op); else toTool.push(op);
    });
    let pageRemoteSet;
    const pageRemote = new Promise((res) => { pageRemoteSet = res; });
    tool.subscribe('candidate', (e) => {
      if (!e.candidate) return;
      pageRemote.then(() => page.evaluate(([c, m]) => window.EL.candidate(c, m), [e.candidate, e.mid])).catch(() => {});
    });
    const toolRemoteSet = () => { toolRemote = true; for (const op of toTool.splice(0)) tool.send(op); };
    if (cRole === 'initiator') {
      tool.send({ op: 'channel', label: 'chat' });
      tool.send({ op: 'create_offer' });
      const offer = (await tool.waitFor('offer')).sdp;
      const answer = await page.evaluate((s) => window.EL.answer(s), offer);
      pageRemoteSet();
      tool.send({ op: 'set_remote', type: 'answer', sdp: answer });
      toolRemoteSet();
    } else {
      const offer = await page.evaluate(() => window.EL.offer());
      tool.send({ op: 'set_remote', type: 'offer', sdp: offer });
      toolRemoteSet();
      const answer = (await tool.waitFor('answer')).sdp;
      await page.evaluate((s) => window.EL.setAnswer(s), answer);
      pageRemoteSet();
    }
    return r;
  }

  for (const cRole of ['initiator', 'responder']) {
    it(`C as ${cRole}: both sides prove their identity, messages flow both ways`, async () => {
      const { tool, page, q } = await pair(cRole, ALICE, BOB);
      const rc = await tool.waitFor('secure_ready', () => true, 20000);
      const rp = await q.waitFor('secure_ready', () => true, 20000);
      assert.equal(rc.peer_id, BOB.peer_id);
      assert.equal(rc.ik, BOB.ik);
      assert.equal(rp.peer_id, ALICE.peer_id);
      assert.equal(rp.ik, ALICE.ik);
      assert.equal(rp.sk, ALICE.sk);

      const fromC = ['{"t":"CHAT","text":"from C"}', '{"t":"CHAT","text":"ünïcödé ✓"}'];
      for (const t of fromC) tool.send({ op: 'ssend', label: 'chat', text: t });
      const gotP = await q.collect('plain', 2, () => true, 10000);
      assert.deepEqual(gotP.map(plainText), fromC);

      const fromP = ['{"t":"CHAT","text":"from Chromium"}', '{"t":"TYPING_STATUS","typing":true}'];
      for (const t of fromP) await page.evaluate((x) => window.EL.send({ text: x }), t);
      const gotC = await tool.collect('plain', 2, (e) => e.label === 'chat', 10000);
      assert.deepEqual(gotC.map(plainText), fromP);

      // a forged frame from the C side's raw writer is refused by the page
      const forged = Buffer.alloc(40, 1);
      forged[0] = 0x10;
      forged.writeBigUInt64BE(2n, 1);
      tool.send({ op: 'send', label: 'chat', b64: forged.toString('base64url') });
      const rej = await q.waitFor('rejected', () => true, 10000);
      assert.equal(rej.reason, 'auth');
    });
  }

  it('backup (scrypt from web/vendor) and safety numbers work in the page, as in the vectors', async () => {
    const v = JSON.parse(readFileSync(path.join(SOURCE_DIR, 'tests/vectors/e2ee.json'), 'utf8'));
    const b = v.backup.find((x) => x.identity === 'alice');
    const s = v.safety.find((x) => x.a === 'alice' && x.b === 'bob');
    const context = await browser.newContext();
    const page = await context.newPage();
    open.push({ context, tool: { quit: async () => {}, kill() {} } });
    await page.goto(`${base}/e2ee.html`);
    await page.waitForFunction(() => window.EL !== undefined);
    const got = await page.evaluate(([j, pw, a, bb]) => window.EL.backupAndSafety(j, pw, a, bb),
      [b.json, b.passphrase, ALICE.ik, BOB.ik]);
    assert.equal(got.peerId, ALICE.peer_id);
    assert.equal(got.safety, s.number);
  });

  it('the page refuses a C peer that is not the one it expects', async () => {
    const { tool, q } = await pair('initiator', BOB, ALICE, { pageExpects: CAROL.peer_id });
    const fp = await q.waitFor('secure_failed', () => true, 20000);
    assert.equal(fp.code, 'identity');
    const fc = await tool.waitFor('secure_failed', () => true, 20000);
    assert.match(fc.error, /peer aborted/);
  });
});
