// reload.test.mjs - SIGHUP makes echolinkd read its configuration again:
// what can change on a running server does (here the TURN/STUN servers
// handed to clients), what cannot is reported and waits for a restart, and
// a configuration that does not load leaves the running one in place.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { closeAll, connectClient } from './lib/client.mjs';
import { sleep, startServer, tempDir } from './lib/server.mjs';

describe('echolinkd reloads its configuration on SIGHUP', () => {
  let srv, dir, conf;
  const clients = [];
  before(async () => {
    dir = await tempDir();
    conf = path.join(dir, 'echolinkd.conf');
    await writeFile(conf, 'stun-urls = stun:one.example:3478\nlog-level = info\n');
    srv = await startServer({ args: ['--config', conf] });
  });
  after(async () => {
    closeAll(clients);
    await srv?.cleanup();
  });

  async function stunUrls() {
    const c = await connectClient(srv.url);
    clients.push(c);
    const ack = await c.emitAck('get_ice_servers', {});
    assert.equal(ack.ok, true);
    return ack.ice_servers.flatMap((s) => s.urls);
  }

  async function hup(expect) {
    const from = srv.stderr.length;
    srv.proc.kill('SIGHUP');
    for (let i = 0; i < 100 && !expect.test(srv.stderr.slice(from)); i++) await sleep(50);
    return srv.stderr.slice(from);
  }

  it('applies what can change, reports what needs a restart', async () => {
    assert.deepEqual(await stunUrls(), ['stun:one.example:3478']);
    await writeFile(conf, 'stun-urls = stun:two.example:3478\nlog-level = info\nmax-payload = 2000000\n');
    const log = await hup(/configuration loaded again/);
    assert.match(log, /reload: max-payload changed; it takes effect at the next restart/);
    assert.deepEqual(await stunUrls(), ['stun:two.example:3478']);
    assert.equal(srv.running(), true);
  });

  it('a configuration that does not load is refused, the running one stays', async () => {
    await writeFile(conf, 'stun-urls = stun:three.example:3478\nno-such-key = 1\n');
    const log = await hup(/running configuration is kept/);
    assert.match(log, /no-such-key/);
    assert.deepEqual(await stunUrls(), ['stun:two.example:3478']);
    assert.equal(srv.running(), true);
  });
});
