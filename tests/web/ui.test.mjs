// ui.test.mjs - the web client's user interface (web/index.html, app.js,
// ui/*.js, style.css) driven like a person would, in headless Chromium,
// against a real echolinkd serving web/, inside network namespaces:
//
//   two browser users (separate contexts) go through the first visit, one
//   adds the other by peer ID (and an invite link opens the add dialog
//   prefilled), the other accepts from the request list, they type
//   messages + Enter and see them on the other side with the delivered
//   mark, a reaction and an edit show on the other side, typing is shown,
//   a video call started from the header rings, connects and hangs up, a
//   voice message recorded with the fake microphone plays on the other
//   side, the banner shows the server going away and coming back;
//   the page loads no inline code (CSP) and throws nothing. Screenshots of
//   the main screens go to $EL_ARTIFACTS/web/ (setup, conversation light
//   and dark, phone width); EL_UPDATE_DOCS=1 also copies the light
//   conversation to docs/screenshots/web-chat.png.
//
// The model and the event batcher are also checked on their own (no
// browser needed) in the first describe.
//
//   tests/harness/netns.sh run node --test tests/web/ui.test.mjs
// (ECHOLINKD, ECHOLINK, CHROMIUM, EL_ARTIFACTS as in tests/CMakeLists.txt's el_web_test)
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { NETNS, SKIP, sleep, startCluster } from '../client/lib/cluster.mjs';
import { BINARY, SOURCE_DIR } from '../js/lib/server.mjs';
import { EventBatcher } from '../../web/ui/batch.js';
import { Model } from '../../web/ui/model.js';
import { parsePeerRef } from '../../web/ui/dom.js';
import { befriendThroughUi } from './lib/ui.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(process.env.EL_ARTIFACTS || path.join(path.dirname(path.dirname(BINARY)), 'artifacts'), 'web');
const WAIT = 30000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };

// ---- without a browser ------------------------------------------------------------

describe('web UI: model and batching', () => {
  it('renders a flood in batches of at most 50 events, and a lone event within 100 ms', async () => {
    const batches = [];
    const b = new EventBatcher((evs) => batches.push(evs.length), { max: 50, ms: 100 });
    for (let i = 0; i < 1000; i++) b.push({ event: 'message', i });
    assert.equal(batches.length, 0, 'nothing is rendered inside the flood itself');
    await sleep(50);
    assert.equal(batches.reduce((a, n) => a + n, 0), 1000);
    assert.ok(batches.every((n) => n <= 50), `batches: ${batches}`);
    assert.ok(batches.length >= 20 && batches.length <= 21, `batches: ${batches.length}`);
    const t0 = Date.now();
    b.push({ event: 'typing' });
    while (batches.reduce((a, n) => a + n, 0) < 1001) await sleep(5);
    const dt = Date.now() - t0;
    assert.ok(dt >= 90 && dt < 400, `a lone event waited ${dt} ms`);
  });

  it('applies events as the terminal UI does', () => {
    const m = new Model();
    const me = 'a'.repeat(32);
    const bob = 'b'.repeat(32);
    m.ev_login({ peer_id: me, name: 'alice' });
    m.select(`p:${bob}`);
    m.merge([
      { row: 2, id: 'm2', from: me, outgoing: true, kind: 'chat', text: 'two', ts: 2000, status: 'pending', reactions: [] },
      { row: 1, id: 'm1', from: bob, outgoing: false, kind: 'chat', text: 'one', ts: 1000, status: 'incoming', reactions: [] },
    ]);
    assert.deepEqual(m.msgs.map((x) => x.id), ['m1', 'm2'], 'display order is by time');
    m.resetDirty();
    m.apply({ event: 'status', id: 'm2', peer: bob, status: 'delivered' });
    assert.equal(m.msgById('m2').status, 'delivered');
    assert.ok(m.dirty.msgs.has('m2'));
    m.apply({ event: 'status', id: 'm2', peer: bob, status: 'sent' });
    assert.equal(m.msgById('m2').status, 'delivered', 'a mark never goes back');
    m.apply({ event: 'reaction', conv: `p:${bob}`, target: 'm2', from: bob, emoji: '👍', remove: false });
    m.apply({ event: 'reaction', conv: `p:${bob}`, target: 'm2', from: bob, emoji: '👍', remove: false });
    assert.deepEqual(m.msgById('m2').reactions, [{ from: bob, emoji: '👍' }]);
    m.apply({ event: 'edit', conv: `p:${bob}`, target: 'm1', from: bob, text: 'uno' });
    assert.equal(m.msgById('m1').text, 'uno');
    assert.equal(m.msgById('m1').edited, true);
    m.apply({ event: 'delete', conv: `p:${bob}`, target: 'm1', from: bob });
    assert.equal(m.msgById('m1').deleted, true);
    assert.equal(m.msgById('m1').text, '');

    // a message elsewhere: unread; in the shown conversation of a hidden tab too
    const carol = 'c'.repeat(32);
    m.resetDirty();
    m.apply({ event: 'message', conv: `p:${carol}`, id: 'x', from: carol, ts: 5, text: 'hey' }, { visible: true });
    m.apply({ event: 'message', conv: `p:${bob}`, id: 'y', from: bob, ts: 6, text: 'yo' }, { visible: false });
    m.apply({ event: 'message', conv: `p:${bob}`, id: 'z', from: bob, ts: 7, text: 'yo' }, { visible: true });
    assert.equal(m.conv(`p:${carol}`).unread, 1);
    assert.equal(m.conv(`p:${bob}`).unread, 1);
    assert.equal(m.totalUnread(), 2);
    assert.equal(m.want.news, true, 'new rows of the shown conversation are asked for');
    assert.equal(m.incoming.length, 3);

    // typing shows, ends, and expires without its end
    m.apply({ event: 'typing', conv: `p:${bob}`, from: bob, typing: true });
    assert.equal(m.conv(`p:${bob}`).typing.size, 1);
    m.expireTyping(Date.now() + 9000);
    assert.equal(m.conv(`p:${bob}`).typing.size, 0);

    // requests: a peer object or a bare id, dropped once added
    m.apply({ event: 'contact_request', from: carol, name: 'Carol', message: 'hi' });
    assert.equal(m.requests.get(carol).name, 'Carol');
    m.apply({ event: 'contact_added', peer_id: carol, name: 'Carol' });
    assert.equal(m.requests.size, 0);
    assert.equal(m.conv(`p:${carol}`).contact, true);

    // the signal coming back asks for the lists again
    m.resetDirty();
    m.apply({ event: 'signal', state: 'offline', retry_ms: 4000 });
    assert.ok(m.signal.retryAt > Date.now());
    m.apply({ event: 'signal', state: 'online' });
    assert.deepEqual(m.want, { convs: true, peers: true, groups: true, news: false });
  });

  it('finds a peer ID in an invite link or on its own', () => {
    const id = 'abcdefghijklmnopqrstuvwxyz234567';
    assert.equal(parsePeerRef(id), id);
    assert.equal(parsePeerRef(` https://chat.example/#/invite/${id} `), id);
    assert.equal(parsePeerRef('not a peer'), null);
    assert.equal(parsePeerRef(id.toUpperCase()), null);
  });
});

// ---- in the browser ---------------------------------------------------------------

describe('web UI: two browser users in Chromium', { skip: SKIP }, () => {
  let cluster;
  let browser;
  let base;
  const users = [];

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    cluster = await startCluster({ serverArgs: ['--web', path.join(SOURCE_DIR, 'web')] });
    base = `http://${NETNS.addr}:${cluster.server.port}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true, timeout: WAIT,
      args: ['--no-sandbox', '--disable-gpu', '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-quic',
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        `--unsafely-treat-insecure-origin-as-secure=${base}`],
    });
  });

  after(async () => {
    for (const u of users) await u.context.close().catch(() => {});
    await browser?.close().catch(() => {});
    await cluster?.cleanup();
  });

  /** A person with a browser of their own (context: its own IndexedDB). */
  async function person(name) {
    const context = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light', locale: 'en-GB', timezoneId: 'UTC' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const page = await context.newPage();
    const u = { name, context, page, errors: [], logs: [] };
    page.on('pageerror', (e) => u.errors.push(`page error: ${e.message}`));
    page.on('console', (msg) => {
      u.logs.push(`[${msg.type()}] ${msg.text()}`);
      // a CSP refusal (inline code or style) is a bug of the page
      if (/Content Security Policy|Refused to/.test(msg.text())) u.errors.push(msg.text());
    });
    users.push(u);
    await page.goto(`${base}/`);
    return u;
  }

  const tails = () => users.map((u) => `--- ${u.name}\n${u.logs.slice(-30).join('\n')}\n${u.errors.join('\n')}`).join('\n');

  async function shot(u, file) {
    await u.page.waitForTimeout(250); // transitions settle
    await u.page.screenshot({ path: path.join(ARTIFACTS, file) });
  }

  /** First visit: name + Enter; resolves the peer ID read from the profile dialog. */
  async function firstVisit(u, screenshot) {
    const { page } = u;
    await page.locator('#setup').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(await page.evaluate(() => window.isSecureContext), true);
    if (screenshot) await shot(u, 'setup.png');
    await page.fill('#setup-name', u.name);
    await page.press('#setup-name', 'Enter');
    await page.locator('#main').waitFor({ state: 'visible', timeout: WAIT });
    await page.locator('#me-name', { hasText: u.name }).waitFor({ timeout: WAIT });
    // logged in: the status says so and the banner is gone
    await page.locator('#me-status[data-state="online"]').waitFor({ timeout: WAIT });
    await page.locator('#banner').waitFor({ state: 'hidden', timeout: WAIT });
    // the profile shows the peer ID (and Esc closes it)
    await page.click('#me-button');
    const dlg = page.locator('#dlg');
    await dlg.waitFor({ state: 'visible' });
    const id = (await dlg.locator('output.copy-value').first().textContent()).trim();
    assert.match(id, /^[a-z2-7]{32}$/);
    const invite = (await dlg.locator('output.copy-value').nth(1).textContent()).trim();
    assert.ok(invite.endsWith(`/#/invite/${id}`), `invite link: ${invite}`);
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
    u.id = id;
    return id;
  }

  const msg = (u, dir, text) => u.page.locator(`#messages li.msg.${dir}`, { hasText: text });

  it('first visit, contact request by peer ID, chat with marks, reaction, edit, typing; screenshots', async () => {
    const alice = await person('Alice');
    const bob = await person('Bob');
    try {
      await firstVisit(alice, true);
      await firstVisit(bob, false);

      // an invite link opens the add dialog prefilled; Esc closes it
      await alice.page.goto(`${base}/#/invite/${bob.id}`);
      const dlg = alice.page.locator('#dlg');
      await dlg.waitFor({ state: 'visible', timeout: WAIT });
      assert.equal(await dlg.locator('input').first().inputValue(), bob.id);
      assert.equal(await alice.page.evaluate(() => location.hash), '', 'the invite is taken from the address');
      await alice.page.keyboard.press('Escape');
      await dlg.waitFor({ state: 'hidden' });

      // Alice adds Bob by his peer ID, typed into the dialog
      await alice.page.click('#add-contact');
      await dlg.waitFor({ state: 'visible' });
      await dlg.locator('input').first().fill(bob.id);
      await dlg.locator('input').nth(1).fill('Hi Bob, it is Alice');
      await dlg.locator('input').nth(1).press('Enter');
      await dlg.waitFor({ state: 'hidden', timeout: WAIT });

      // Bob sees the request and accepts it: the conversation opens
      const req = bob.page.locator(`#request-list li[data-peer="${alice.id}"]`);
      await req.waitFor({ timeout: WAIT });
      assert.match(await req.textContent(), /Hi Bob, it is Alice/);
      await req.getByRole('button', { name: /^Accept/ }).click();
      await req.waitFor({ state: 'detached', timeout: WAIT });
      await bob.page.locator('#conv-name', { hasText: 'Alice' }).waitFor({ timeout: WAIT });

      // Alice opens Bob from her list once he is a contact
      const item = alice.page.locator(`#conv-list button[data-conv="p:${bob.id}"]`);
      await item.waitFor({ timeout: WAIT });
      await item.click();
      await alice.page.locator('#conv-name', { hasText: 'Bob' }).waitFor({ timeout: WAIT });

      await alice.page.locator('#input').focus();
      await alice.page.keyboard.type('Hello Bob! How are you?');
      await alice.page.keyboard.press('Enter');
      assert.equal(await alice.page.locator('#input').inputValue(), '', 'Enter sent and cleared the composer');

      // it arrives on Bob's side, and Alice's copy is marked delivered (or read)
      await msg(bob, 'in', 'Hello Bob! How are you?').waitFor({ timeout: WAIT });
      await alice.page.locator('#messages li.msg.out[data-status="delivered"], #messages li.msg.out[data-status="read"]',
        { hasText: 'Hello Bob!' }).waitFor({ timeout: WAIT });
      // Bob is looking at it: it becomes read
      await alice.page.locator('#messages li.msg.out[data-status="read"]', { hasText: 'Hello Bob!' }).waitFor({ timeout: WAIT });
      assert.equal(await alice.page.locator('#messages li.msg.out .mark').first().textContent(), '✓✓');

      // Bob answers, quoting Alice's message (message menu → Reply); Alice
      // sees him typing (typing goes over the direct link, up since the
      // first message) until the message comes
      const fromAlice = msg(bob, 'in', 'Hello Bob!');
      await fromAlice.hover();
      await fromAlice.locator('button.msg-menu').click();
      await bob.page.getByRole('menuitem', { name: 'Reply' }).click();
      await bob.page.locator('#compose-context[data-mode="reply"]').waitFor();
      await bob.page.keyboard.type('Great, thanks! Climbing on Saturday?');
      await alice.page.locator('#typing', { hasText: 'Bob is typing' }).waitFor({ timeout: WAIT });
      await bob.page.keyboard.press('Enter');
      const answer = msg(alice, 'in', 'Climbing on Saturday?');
      await answer.waitFor({ timeout: WAIT });
      assert.match(await answer.locator('.quote').textContent(), /Hello Bob!/, 'the reply quotes its message');
      await alice.page.locator('#typing.on').waitFor({ state: 'hidden', timeout: WAIT });
      assert.equal((await alice.page.locator('#typing').textContent()).trim(), '', 'typing ends with the message');

      // Bob reacts to Alice's message: Alice sees the reaction
      await fromAlice.hover();
      await fromAlice.locator('button.msg-menu').click();
      await bob.page.getByRole('menuitemcheckbox', { name: 'React 👍' }).click();
      const chip = alice.page.locator('#messages li.msg.out button.reaction[data-emoji="👍"]');
      await chip.waitFor({ timeout: WAIT });
      assert.equal((await chip.locator('.count').textContent()).trim(), '1');

      // Alice edits her message (Up in the empty composer edits the last one)
      await alice.page.locator('#input').focus();
      await alice.page.keyboard.type('Sure!');
      await alice.page.keyboard.press('Enter');
      await msg(bob, 'in', 'Sure!').waitFor({ timeout: WAIT });
      await alice.page.keyboard.press('ArrowUp');
      await alice.page.locator('#compose-context[data-mode="edit"]').waitFor();
      assert.equal(await alice.page.locator('#input').inputValue(), 'Sure!');
      await alice.page.locator('#input').fill('Sure! See you at 10 at the gym 🧗');
      await alice.page.keyboard.press('Enter');
      const edited = msg(bob, 'in', 'See you at 10 at the gym');
      await edited.waitFor({ timeout: WAIT });
      await edited.locator('.edited').waitFor({ timeout: WAIT });
      await msg(alice, 'out', 'See you at 10 at the gym').locator('.edited').waitFor({ timeout: WAIT });

      // Alice reacts back through a double click (the quick 👍)
      await answer.locator('.body').dblclick();
      await msg(bob, 'out', 'Climbing on Saturday?').locator('button.reaction[data-emoji="👍"]').waitFor({ timeout: WAIT });

      // Esc leaves a reply unsent
      await answer.hover();
      await answer.locator('button.msg-menu').click();
      await alice.page.getByRole('menuitem', { name: 'Reply' }).click();
      await alice.page.locator('#compose-context').waitFor();
      await alice.page.keyboard.press('Escape');
      await alice.page.locator('#compose-context').waitFor({ state: 'hidden' });

      // both sides agree on what is there
      for (const u of [alice, bob]) {
        const n = await u.page.locator('#messages li.msg').count();
        assert.equal(n, 3, `${u.name} shows 3 messages`);
      }

      // a video call from the conversation's header: bob accepts, both
      // connect, alice hangs up, both panels say so
      await alice.page.click('#call-video');
      await bob.page.locator('.call-panel .call-accept').waitFor({ timeout: WAIT });
      await shot(bob, 'call-incoming.png');
      await bob.page.click('.call-panel .call-accept');
      for (const u of [alice, bob]) {
        await u.page.locator('.call-panel .call-state', { hasText: 'Connected' }).waitFor({ timeout: WAIT });
      }
      await shot(alice, 'call.png');
      await alice.page.click('.call-panel .call-hangup');
      for (const u of [alice, bob]) {
        await u.page.locator('.call-panel .call-state', { hasText: 'Call ended' }).waitFor({ timeout: WAIT });
        await u.page.click('.call-panel button:has-text("Close")');
      }

      // a voice message recorded in the browser (fake microphone) arrives
      // with an inline player
      await alice.page.click('#record');
      await alice.page.locator('#recorder').waitFor({ state: 'visible', timeout: WAIT });
      await alice.page.waitForTimeout(1500);
      await alice.page.click('#rec-send');
      await bob.page.locator('#messages li.msg.in .file.voice audio').waitFor({ timeout: WAIT });
      assert.match(await bob.page.locator('#messages li.msg.in .file.voice').last().textContent(), /Voice message/);

      // the server goes away: the banner says so, a message still goes
      // directly, and the banner clears once the server is back
      await cluster.server.kill('SIGKILL');
      // (socket.io retries at once: the state flips between offline and connecting)
      await alice.page.locator('#banner:is([data-state="offline"], [data-state="connecting"])').waitFor({ timeout: WAIT });
      assert.match(await alice.page.locator('#banner').textContent(), /unreachable|Connecting/);
      await shot(alice, 'banner-offline.png');
      await alice.page.fill('#input', 'The server is down but this still arrives');
      await alice.page.press('#input', 'Enter');
      await msg(bob, 'in', 'The server is down but this still arrives').waitFor({ timeout: WAIT });
      await cluster.server.restart();
      for (const u of [alice, bob]) {
        await u.page.locator('#me-status[data-state="online"]').waitFor({ timeout: 60000 });
        await u.page.locator('#banner').waitFor({ state: 'hidden', timeout: WAIT });
      }

      // screenshots: conversation light, dark (the toggle), phone width
      await alice.page.mouse.move(0, 0);
      await alice.page.locator('#input').focus();
      await shot(alice, 'conversation-light.png');
      await alice.page.click('#theme-toggle');
      assert.equal(await alice.page.evaluate(() => document.documentElement.dataset.theme), 'dark');
      const bg = await alice.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.notEqual(bg, 'rgb(255, 255, 255)', 'the dark theme applies');
      await alice.page.mouse.move(0, 0);
      await shot(alice, 'conversation-dark.png');
      await alice.page.click('#theme-toggle');
      await bob.page.setViewportSize(PHONE);
      await bob.page.locator('#back').waitFor({ state: 'visible' });
      assert.equal(await bob.page.locator('.sidebar').isVisible(), false, 'one column: the conversation only');
      await shot(bob, 'conversation-phone.png');
      await bob.page.click('#back');
      await bob.page.locator('.sidebar').waitFor({ state: 'visible' });
      await shot(bob, 'list-phone.png');
      // nothing overflows sideways at 360 px
      const overflow = await bob.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);

      if (process.env.EL_UPDATE_DOCS === '1') {
        await mkdir(path.join(SOURCE_DIR, 'docs/screenshots'), { recursive: true });
        await copyFile(path.join(ARTIFACTS, 'conversation-light.png'), path.join(SOURCE_DIR, 'docs/screenshots/web-chat.png'));
      }
      for (const u of [alice, bob]) assert.deepEqual(u.errors, [], `${u.name}: the page reported errors`);
    } catch (e) {
      for (const u of [alice, bob]) await u.page.screenshot({ path: path.join(ARTIFACTS, `failure-${u.name}.png`) }).catch(() => {});
      console.log(`# page logs:\n${tails()}\n# clients:\n${cluster.tails()}`);
      throw e;
    }
  });
  it('a key change of a known contact shows a warning that cannot be missed', async () => {
    const carol = await person('Carol');
    const dave = await person('Dave');
    try {
      await firstVisit(carol, false);
      await firstVisit(dave, false);
      const item = await befriendThroughUi(carol, dave, WAIT);
      await item.click();
      await carol.page.fill('#input', 'first contact');
      await carol.page.press('#input', 'Enter');
      await msg(dave, 'in', 'first contact').waitFor({ timeout: WAIT });

      // what a swapped key looks like to Carol: her pin of Dave is another
      // identity's bundle, so Dave's real key no longer matches it
      await carol.page.evaluate(async (peer) => {
        const { DB } = await import('/lib/db.js');
        const { bundleOf, generateIdentity } = await import('/lib/identity.js');
        const db = await DB.open('echolink');
        const ts = db.trustStorage();
        const r = await ts.get(peer);
        r.bundle = await bundleOf(await generateIdentity());
        r.state = 'known';
        await ts.set(peer, r);
        db.close();
      }, dave.id);
      await carol.page.reload();
      await carol.page.locator('#main').waitFor({ state: 'visible', timeout: WAIT });
      const alert = carol.page.locator('#alert-dlg');
      const write = async () => {
        await carol.page.locator(`#conv-list button[data-conv="p:${dave.id}"]`).click({ timeout: 10000 });
        await carol.page.fill('#input', 'after the change', { timeout: 10000 });
        await carol.page.press('#input', 'Enter');
      };
      // the alert comes when the link to Dave is made: right after the
      // reload (Dave is online), or at the latest when Carol writes to him
      let early = await alert.waitFor({ state: 'visible', timeout: 3000 }).then(() => true, () => false);
      if (!early) {
        try {
          await write();
        } catch (e) {
          if (!(await alert.isVisible())) throw e;
          early = true; // it came while Carol was opening the conversation
        }
      }

      // a modal alert Esc does not close, and a red warning in the conversation
      await alert.waitFor({ state: 'visible', timeout: WAIT });
      assert.match(await alert.textContent(), /safety number changed/);
      await carol.page.keyboard.press('Escape');
      assert.equal(await alert.isVisible(), true, 'Esc does not dismiss the key-change alert');
      await shot(carol, 'key-change.png');
      if (early) {
        await alert.getByRole('button', { name: 'Later' }).click();
        await write();
      }
      // nothing goes out until Carol decides
      await carol.page.waitForTimeout(1500);
      assert.equal(await msg(dave, 'in', 'after the change').count(), 0, 'held while the key change is pending');
      if (!early) await alert.getByRole('button', { name: 'Later' }).click();
      await carol.page.locator('#key-warning').waitFor({ state: 'visible', timeout: WAIT });
      await carol.page.locator('#key-warning').getByRole('button', { name: 'Accept new key' }).click();
      const confirm = carol.page.locator('#dlg, #alert-dlg').getByRole('button', { name: 'Accept', exact: true });
      if (await confirm.count()) await confirm.first().click();
      await carol.page.locator('#key-warning').waitFor({ state: 'hidden', timeout: WAIT });
      await msg(dave, 'in', 'after the change').waitFor({ timeout: WAIT });
    } catch (e) {
      for (const u of [carol, dave]) await u.page.screenshot({ path: path.join(ARTIFACTS, `failure-${u.name}.png`) }).catch(() => {});
      console.log(`# page logs:\n${tails()}\n# clients:\n${cluster.tails()}`);
      throw e;
    }
  });
});
