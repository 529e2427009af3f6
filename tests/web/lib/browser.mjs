// browser.mjs - the web client's core (web/lib/client.js) in headless
// Chromium, against a real echolinkd serving web/ and real `echolink`
// clients, inside the test's network namespaces (tests/harness/netns.sh).
//
//   const w = await startWeb();                 // echolinkd --web web/ + Chromium
//   const alice = await w.user('alice');        // a browser context of its own
//   await alice.request({ cmd: 'whoami' });
//   await alice.waitEvent((e) => e.event === 'message');
//   const carol = await w.cluster.client('carol', { remote: true });  // a C client
//   await w.close();
//
// The page is a secure context (WebCrypto, IndexedDB keys): Chromium treats
// echolinkd's http://ADDR:PORT as secure (--unsafely-treat-insecure-origin-
// as-secure). Nothing test-only is added to web/: each user's page loads a
// plain file of echolinkd's origin (/healthz) and imports /lib/client.js
// from there, then drives the core through page.evaluate; events come back
// through an exposed binding (it survives reloads), so this tests exactly
// the modules the UI uses.
import path from 'node:path';

import { NETNS, SKIP, sleep, startCluster } from '../../client/lib/cluster.mjs';
import { SOURCE_DIR } from '../../js/lib/server.mjs';

export { NETNS, SKIP, sleep };
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-quic',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
const PAGE = '/healthz';

/** One browser user: a context (its own IndexedDB) and a page. */
class WebUser {
  constructor(web, name, dbName, servers = null) {
    this.web = web;
    this.name = name;
    this.dbName = dbName;
    this.servers = servers; // signaling URLs in turn (null: the page's origin)
    this.events = [];
    this.logs = [];
    this.context = null;
    this.page = null;
    this.id = null;
  }

  async #newPage() {
    this.page = await this.context.newPage();
    this.page.on('pageerror', (e) => this.logs.push(`page error: ${e.message}`));
    // what a failed module import or a 404 was about (a one-off "Failed to
    // fetch dynamically imported module" must say which request and why)
    this.page.on('requestfailed', (r) => this.logs.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`));
    this.page.on('response', (r) => { if (r.status() >= 400) this.logs.push(`HTTP ${r.status()}: ${r.url()}`); });
    this.page.on('console', (m) => {
      this.logs.push(`[${m.type()}] ${m.text()}`);
      if (this.logs.length > 2000) this.logs.splice(0, 1000);
    });
  }

  /** Creates the context and opens the client (setup on the first visit). */
  async open(initScript = null) {
    this.context = await this.web.browser.newContext();
    if (initScript) await this.context.addInitScript(initScript);
    await this.context.exposeBinding('__elEvent', (_src, ev) => { ev.at = Date.now(); this.events.push(ev); });
    await this.#newPage();
    return this.boot();
  }

  /** Loads the page and starts the core; returns the peer ID. */
  async boot() {
    await this.page.goto(`${this.web.base}${PAGE}`);
    if (!(await this.page.evaluate(() => window.isSecureContext))) throw new Error('the page is not a secure context');
    try {
      this.id = await this.page.evaluate(async ({ dbName, name, servers }) => {
        const { Client } = await import('/lib/client.js');
        const c = await Client.open({ server: servers || location.origin, dbName, log: (m) => console.log(`[el] ${m}`) });
        window.EL = c;
        c.on((ev) => window.__elEvent(ev));
        if (c.needsSetup) await c.setup({ name });
        await c.start();
        return c.peerId;
      }, { dbName: this.dbName, name: this.name, servers: this.servers });
    } catch (e) {
      // a new error: node prints an error's stack, which keeps the message
      // it had when it was made, so appending to e.message showed nothing
      throw new Error(`${e.message}\n${this.name}'s page log:\n${this.tail(20)}\nserver:\n${this.web.cluster.tails()}`, { cause: e });
    }
    return this.id;
  }

  /** Reloads the page (the core starts again from IndexedDB). */
  async reload() {
    await this.page.evaluate(() => window.EL && window.EL.close());
    return this.boot();
  }

  /** Closes the page: the user is gone (its context and database stay). */
  async closePage() {
    await this.page.evaluate(() => window.EL && window.EL.close()).catch(() => {});
    await this.page.close();
    this.page = null;
  }

  /** A new page in the same context (the same database). */
  async reopen() {
    await this.#newPage();
    return this.boot();
  }

  /** client.request(req) in the page. */
  request(req) {
    return this.page.evaluate((r) => window.EL.request(r), req);
  }

  /** Like request, but throws unless ok. */
  async ok(req) {
    const r = await this.request(req);
    if (!r.ok) throw new Error(`${this.name}: ${req.cmd} failed: ${JSON.stringify(r)}`);
    return r;
  }

  /** The first event (from index `from`) matching pred, waiting up to ms. */
  async waitEvent(pred, ms = 20000, from = 0) {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = from; i < this.events.length; i++) if (pred(this.events[i])) return this.events[i];
      if (Date.now() > deadline) {
        throw new Error(`${this.name}: no matching event within ${ms} ms; last events:\n` +
          this.events.slice(-15).map((e) => JSON.stringify(e)).join('\n') +
          `\npage log tail:\n${this.logs.slice(-40).join('\n')}`);
      }
      await sleep(25);
    }
  }

  all(pred) {
    return this.events.filter(pred);
  }

  /** Sends `size` random bytes as a file named `name`; returns
   *  {file_id, sha256} (the hash computed in the page by WebCrypto). */
  sendRandomFile(to, name, size) {
    return this.page.evaluate(async ({ to, name, size }) => {
      const bytes = new Uint8Array(size);
      for (let o = 0; o < size; o += 65536) crypto.getRandomValues(bytes.subarray(o, Math.min(size, o + 65536)));
      const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
      const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes));
      const r = await window.EL.request({ cmd: 'send_file', to, file: new File([bytes], name, { type: 'application/octet-stream' }) });
      return { ...r, sha256 };
    }, { to, name, size });
  }

  /** The bytes of a file the core holds: {size, sha256, name, mime}. */
  fileDigest(fileId) {
    return this.page.evaluate(async (id) => {
      const r = await window.EL.request({ cmd: 'file_blob', file_id: id });
      if (!r.ok) return r;
      const buf = await r.blob.arrayBuffer();
      const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
      return { ok: true, size: buf.byteLength, sha256: hex(await crypto.subtle.digest('SHA-256', buf)), name: r.name, mime: r.mime };
    }, fileId);
  }

  tail(n = 40) {
    return this.logs.slice(-n).join('\n');
  }
}

/** echolinkd serving web/ on the namespace address, and Chromium. */
export async function startWeb({ serverArgs = [], nodes = 1 } = {}) {
  const cluster = await startCluster({ serverArgs: ['--web', path.join(SOURCE_DIR, 'web'), ...serverArgs], nodes });
  const base = `http://${NETNS.addr}:${cluster.server.port}`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30000,
    args: [...BASE_ARGS, `--unsafely-treat-insecure-origin-as-secure=${base}`],
  });
  const users = [];
  const web = {
    cluster, browser, base, users,
    urlOf: (i) => `http://${NETNS.addr}:${cluster.servers[i].port}`,
    /** opts.nodes: indexes of the cluster's servers the user's client
     *  tries in turn (default: the origin, node 0); opts.initScript: runs
     *  in every page of the user's context before the page's own code */
    async user(name, { dbName = `echolink-test-${name}`, nodes = null, initScript = null } = {}) {
      const u = new WebUser(web, name, dbName, nodes && nodes.map((i) => web.urlOf(i)));
      users.push(u);
      await u.open(initScript);
      return u;
    },
    /** Browser users a and b become contacts. */
    async befriend(a, b) {
      const from = b.events.length;
      await a.ok({ cmd: 'add', peer: b.id, message: `hi ${b.name}` });
      await b.waitEvent((e) => e.event === 'contact_request' && e.from === a.id, 20000, from);
      const fa = a.events.length;
      await b.ok({ cmd: 'accept', peer: a.id });
      await a.waitEvent((e) => e.event === 'contact_added' && e.peer_id === b.id, 20000, fa);
    },
    tails() {
      return users.map((u) => `--- ${u.name} (page)\n${u.tail(30)}`).join('\n') + `\n${cluster.tails()}`;
    },
    async close() {
      for (const u of users) await u.context?.close().catch(() => {});
      await browser.close().catch(() => {});
      await cluster.cleanup();
    },
  };
  return web;
}
