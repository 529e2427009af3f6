// cluster.test.mjs - browser users on different echolinkd nodes of one
// cluster (--redis, a real redis-server): the web client takes a list of
// server URLs (like the C client's repeated --server), chats across nodes,
// and when its node is killed moves to the next URL without losing or
// doubling a message. The app itself takes the list from servers.json.
//
//   tests/harness/netns.sh run node --test tests/web/cluster.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startWeb } from './lib/browser.mjs';

describe('web: users on different nodes of a cluster', { skip: SKIP }, () => {
  let w, alice, bob;

  before(async () => {
    w = await startWeb({ nodes: 3 });
    alice = await w.user('alice', { nodes: [0, 2] });
    bob = await w.user('bob', { nodes: [1, 2] });
    for (const u of [alice, bob]) await u.waitEvent((e) => e.event === 'login');
    await w.befriend(alice, bob);
  });

  after(async () => {
    if (process.exitCode) console.log(w?.tails());
    await w?.close();
  });

  it('users on different nodes chat', async () => {
    const s = await alice.ok({ cmd: 'send', to: bob.id, text: 'across nodes' });
    const m = await bob.waitEvent((e) => e.event === 'message' && e.id === s.msg_id, 30000);
    assert.equal(m.from, alice.id);
    const r = await bob.ok({ cmd: 'send', to: alice.id, text: 'right back' });
    await alice.waitEvent((e) => e.event === 'message' && e.id === r.msg_id, 30000);
  });

  it('a killed node moves its user to the next URL; nothing is lost or doubled', async () => {
    const b0 = bob.events.length;
    await w.cluster.servers[1].kill('SIGKILL');
    await bob.waitEvent((e) => e.event === 'signal' && e.state === 'offline', 30000, b0);
    const texts = [];
    for (let i = 0; i < 4; i++) {
      texts.push(`while bob moves ${i}`);
      await alice.ok({ cmd: 'send', to: bob.id, text: texts[i] });
      await sleep(500);
    }
    await bob.waitEvent((e) => e.event === 'login', 60000, b0);
    const moved = bob.events.slice(b0).filter((e) => e.event === 'signal' && e.state === 'connecting');
    assert.ok(moved.some((e) => e.url === w.urlOf(2)), `bob tried node 2: ${JSON.stringify(moved)}`);
    texts.push('after the move');
    await alice.ok({ cmd: 'send', to: bob.id, text: texts.at(-1) });
    await bob.waitEvent((e) => e.event === 'message' && e.text === texts.at(-1), 60000, b0);
    await sleep(1500); // duplicates, if any, would arrive now
    const got = bob.events.slice(b0).filter((e) => e.event === 'message').map((e) => e.text);
    assert.deepEqual(got, texts);
  });

  it('the app takes its servers from servers.json and skips one that is down', async () => {
    const context = await w.browser.newContext();
    try {
      const dead = w.urlOf(1); // killed above
      await context.route('**/servers.json', (route) => route.fulfill({ json: { servers: [dead, w.urlOf(2)] } }));
      const page = await context.newPage();
      await page.goto(`${w.base}/`);
      await page.locator('#setup').waitFor({ state: 'visible', timeout: 30000 });
      await page.fill('#setup-name', 'carol');
      await page.press('#setup-name', 'Enter');
      await page.locator('#me-status[data-state="online"]').waitFor({ timeout: 60000 });
    } finally {
      await context.close();
    }
  });
});
