// webroot.test.mjs - what `make run` serves from the repository's web/: the
// page, the browser modules of web/lib and the npm modules that
// scripts/install-deps.sh copies into web/vendor (socket.io-client,
// @noble/hashes), each as JavaScript under the strict CSP, and the vendor
// modules importable without node_modules (no bare specifiers left).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { startServer } from './lib/server.mjs';

const ROOT = process.env.EL_SOURCE_DIR || fileURLToPath(new URL('../..', import.meta.url));
const WEB = path.join(ROOT, 'web');

describe('the repository web root', () => {
  let srv;
  before(async () => { srv = await startServer({ args: ['--web', WEB] }); });
  after(async () => { await srv?.stop(); });

  const paths = ['/', '/lib/identity.js', '/lib/session.js', '/lib/frame.js', '/lib/backup.js',
    '/lib/msg.js', '/vendor/socket.io-client/socket.io.esm.min.js', '/vendor/noble-hashes/scrypt.js'];
  for (const p of paths) {
    test(`${p} is served with its type and the CSP`, async () => {
      const r = await fetch(`${srv.url}${p}`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), p === '/' ? /^text\/html/ : /^text\/javascript/);
      assert.match(r.headers.get('content-security-policy') || '', /script-src 'self'/);
      await r.arrayBuffer();
    });
  }

  test('vendor modules import only relative paths (browsers have no node_modules)', () => {
    for (const dir of ['noble-hashes', 'socket.io-client']) {
      for (const f of readdirSync(path.join(WEB, 'vendor', dir)).filter((x) => x.endsWith('.js'))) {
        const src = readFileSync(path.join(WEB, 'vendor', dir, f), 'utf8');
        const bare = [...src.matchAll(/^\s*(?:import|export)[^'"]*from\s*['"]([^'"]+)['"]/gm)]
          .map((m) => m[1]).filter((s) => !s.startsWith('./') && !s.startsWith('../'));
        assert.deepEqual(bare, [], `${dir}/${f}`);
      }
    }
  });
});
