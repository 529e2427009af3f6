// call.test.mjs - audio+video calls and screen sharing between two browsers
// (web/lib/call.js, PROTOCOL.md §13) with Chromium's fake media devices,
// signaled through a real echolinkd, inside the test's network namespaces:
//
//   1. alice calls bob with video; bob accepts; media flows both ways (the
//      inbound RTP byte counters of getStats rise on both sides); mute and
//      camera-off act on the local tracks; alice hangs up and both sides end;
//   2. bob shares his screen in a call: alice keeps receiving video;
//   3. a second caller gets "busy"; a declined call ends on both sides;
//   4. a call whose SDP signature does not verify is refused.
//
//   tests/harness/netns.sh run node --test tests/web/call.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SKIP, sleep, startWeb } from './lib/browser.mjs';

/** Installs the call module on a user's page: window.CALLS, events kept. */
async function installCalls(user) {
  await user.page.evaluate(async () => {
    const { Calls } = await import('/lib/call.js');
    const c = window.EL;
    window.CALL_EVENTS = [];
    window.CALLS = new Calls(c, { sign: (b) => c.signCall(b), resolveIk: (p) => c.peerIk(p) });
    window.CALLS.on((ev) => window.CALL_EVENTS.push({ type: ev.type, id: ev.call.id, state: ev.call.state,
      reason: ev.reason || null, peer: ev.call.peer }));
  });
}

async function callEvents(user) {
  return user.page.evaluate(() => window.CALL_EVENTS);
}

async function waitCall(user, pred, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const evs = await callEvents(user);
    const hit = evs.find(pred);
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`${user.name}: no call event matching within ${ms} ms: ${JSON.stringify(evs.slice(-8))}`);
    await sleep(100);
  }
}

/** Inbound RTP bytes by kind for the user's only active call. */
async function inboundBytes(user) {
  return user.page.evaluate(async () => {
    const call = window.CALLS.active();
    if (!call || !call.pc) return null;
    const out = { audio: 0, video: 0 };
    (await call.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') out[r.kind] += r.bytesReceived || 0;
    });
    return out;
  });
}

async function waitRising(user, kind, ms = 20000) {
  const first = (await inboundBytes(user))?.[kind] || 0;
  const end = Date.now() + ms;
  for (;;) {
    await sleep(500);
    const now = (await inboundBytes(user))?.[kind] || 0;
    if (now > first && now > 1000) return now;
    if (Date.now() > end) throw new Error(`${user.name}: inbound ${kind} bytes did not rise (${first} -> ${now})`);
  }
}

describe('web calls: audio, video and screen sharing between two browsers', { skip: SKIP }, () => {
  let w, alice, bob, carol;

  before(async () => {
    w = await startWeb();
    alice = await w.user('alice');
    bob = await w.user('bob');
    carol = await w.user('carol');
    for (const u of [alice, bob, carol]) await u.waitEvent((e) => e.event === 'login');
    await w.befriend(alice, bob);
    await w.befriend(carol, bob);
    // one chat message each way pins the keys (calls check signatures against them)
    for (const [a, b] of [[alice, bob], [carol, bob]]) {
      const s = await a.ok({ cmd: 'send', to: b.id, text: 'hi' });
      await a.waitEvent((e) => e.event === 'status' && e.id === s.msg_id && e.status === 'delivered', 30000);
    }
    for (const u of [alice, bob, carol]) await installCalls(u);
  });

  after(async () => {
    await w?.close();
  });

  it('a video call connects, media flows both ways, mute and camera act, hang-up ends both sides', async () => {
    const id = await alice.page.evaluate(async (peer) => (await window.CALLS.start(peer, { video: true })).id, bob.id);
    await waitCall(bob, (e) => e.type === 'incoming' && e.id === id);
    await bob.page.evaluate((cid) => window.CALLS.accept(cid), id);
    await waitCall(alice, (e) => e.id === id && e.state === 'connected');
    await waitCall(bob, (e) => e.id === id && e.state === 'connected');
    await waitRising(alice, 'audio');
    await waitRising(alice, 'video');
    await waitRising(bob, 'audio');
    await waitRising(bob, 'video');
    const tracks = await alice.page.evaluate((cid) => {
      window.CALLS.setMuted(cid, true);
      window.CALLS.setCamera(cid, false);
      const c = window.CALLS.calls.get(cid);
      return { audio: c.local.getAudioTracks().map((t) => t.enabled), video: c.local.getVideoTracks().map((t) => t.enabled) };
    }, id);
    assert.deepEqual(tracks, { audio: [false], video: [false] });
    await alice.page.evaluate((cid) => window.CALLS.hangup(cid), id);
    const ended = await waitCall(bob, (e) => e.type === 'ended' && e.id === id);
    assert.match(ended.reason, /hung up/);
    await waitCall(alice, (e) => e.type === 'ended' && e.id === id);
    assert.equal(await bob.page.evaluate(() => window.CALLS.active()), null);
  });

  it('screen sharing replaces the outgoing video; the other side keeps receiving video', async () => {
    const id = await alice.page.evaluate(async (peer) => (await window.CALLS.start(peer, { video: false })).id, bob.id);
    await waitCall(bob, (e) => e.type === 'incoming' && e.id === id);
    await bob.page.evaluate((cid) => window.CALLS.accept(cid), id);
    await waitCall(alice, (e) => e.id === id && e.state === 'connected');
    await waitRising(alice, 'audio');
    const shared = await bob.page.evaluate(async (cid) => {
      try {
        await window.CALLS.shareScreen(cid, true);
        return { ok: true, label: window.CALLS.calls.get(cid).videoTx.sender.track?.kind };
      } catch (e) {
        return { ok: false, error: String(e) };
      }
    }, id);
    assert.equal(shared.ok, true, `getDisplayMedia: ${shared.error}`);
    assert.equal(shared.label, 'video');
    await waitRising(alice, 'video');
    await bob.page.evaluate((cid) => window.CALLS.shareScreen(cid, false), id);
    await bob.page.evaluate((cid) => window.CALLS.hangup(cid), id);
    await waitCall(alice, (e) => e.type === 'ended' && e.id === id);
  });

  it('a second caller gets busy; a declined call ends on both sides', async () => {
    const first = await alice.page.evaluate(async (peer) => (await window.CALLS.start(peer, { video: false })).id, bob.id);
    await waitCall(bob, (e) => e.type === 'incoming' && e.id === first);
    const second = await carol.page.evaluate(async (peer) => (await window.CALLS.start(peer, { video: false })).id, bob.id);
    const busy = await waitCall(carol, (e) => e.type === 'ended' && e.id === second);
    assert.equal(busy.reason, 'busy');
    await bob.page.evaluate((cid) => window.CALLS.decline(cid), first);
    const declined = await waitCall(alice, (e) => e.type === 'ended' && e.id === first);
    assert.equal(declined.reason, 'declined');
  });

  it('a call whose SDP signature does not verify is refused', async () => {
    // bob's page checks signatures against a key that is not alice's
    await bob.page.evaluate(() => {
      window.CALLS.resolveIk = async () => 'A'.repeat(43);
    });
    const id = await alice.page.evaluate(async (peer) => (await window.CALLS.start(peer, { video: false })).id, bob.id);
    await waitCall(bob, (e) => e.type === 'incoming' && e.id === id);
    await bob.page.evaluate((cid) => window.CALLS.accept(cid), id);
    const ended = await waitCall(bob, (e) => e.type === 'ended' && e.id === id);
    assert.match(ended.reason, /could not be verified/);
    await waitCall(alice, (e) => e.type === 'ended' && e.id === id);
  });
});
