// tui.test.mjs - `echolink chat`, the ncurses interface, driven through
// tmux: keys go in with send-keys, the screen comes back with capture-pane.
// Alice runs in an xterm-256color terminal, Bob (behind the veth) in tmux's
// own TERM=screen; both UTF-8, 80x24 to start with.
//
//   tests/harness/netns.sh run node --test tests/client/tui.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ECHOLINK, NETNS, SKIP as NO_NETNS, sleep, startCluster } from './lib/cluster.mjs';

function haveTmux() {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const SKIP = NO_NETNS || (haveTmux() ? false : 'tmux is not installed');

const quote = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;

/** One private tmux server (its own socket), one session per client. */
class Tmux {
  constructor(dir) {
    this.sock = `el-tui-${process.pid}`;
    this.dir = dir;
    this.env = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
    delete this.env.TMUX;
    // a session that outlives the clients keeps the server (and the options) up
    this.cmd(['new-session', '-d', '-s', 'keep', '-x', '80', '-y', '24', 'sleep 100000']);
    // a pane whose program exited stays, for the asserts
    this.cmd(['set-option', '-g', 'remain-on-exit', 'on']);
  }

  cmd(args) {
    return execFileSync('tmux', ['-L', this.sock, '-f', '/dev/null', ...args], { env: this.env, encoding: 'utf8' });
  }

  /** Starts `echolink chat` for client c in a new 80x24 session. */
  chat(c, { term }) {
    const argv = [...(c.remote ? ['ip', 'netns', 'exec', NETNS.peerNs] : []),
      'setpriv', '--pdeathsig', 'KILL', ECHOLINK, ...c.globals(), 'chat'];
    const env = { ECHOLINK_HOME: c.home, ECHOLINK_LOG: 'info', TERM: term, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
    const errFile = path.join(this.dir, `${c.name}.stderr`);
    // the shell prints the exit code on the restored terminal afterwards
    const line = `env ${Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`).join(' ')} ` +
      `${argv.map(quote).join(' ')} 2>>${quote(errFile)}; echo "[exit $?]"`;
    this.cmd(['new-session', '-d', '-s', c.name, '-x', '80', '-y', '24', line]);
    return new Pane(this, c.name, errFile);
  }

  kill() {
    try { this.cmd(['kill-server']); } catch { /* already gone */ }
  }
}

class Pane {
  constructor(tmux, name, errFile) {
    this.tmux = tmux;
    this.name = name;
    this.errFile = errFile;
  }

  capture() {
    return this.tmux.cmd(['capture-pane', '-p', '-t', this.name]);
  }

  lines() {
    return this.capture().replace(/\n$/, '').split('\n');
  }

  /** Literal text, then optionally a key such as Enter. */
  type(text, key) {
    if (text) this.tmux.cmd(['send-keys', '-t', this.name, '-l', text]);
    if (key) this.tmux.cmd(['send-keys', '-t', this.name, key]);
  }

  /** The exit code of `echolink chat`, once it ended. The shell's line may
   * have gone into the history when the pane died: read that too. */
  async exit(ms = 15000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const all = this.tmux.cmd(['capture-pane', '-p', '-S', '-', '-t', this.name]);
      const m = /^\[exit (\d+)\]$/m.exec(all);
      if (m) return Number(m[1]);
      if (Date.now() > deadline) throw new Error(`${this.name}: still running:\n${all}\n${await this.stderr()}`);
      await sleep(100);
    }
  }

  resize(x, y) {
    this.tmux.cmd(['resize-window', '-t', this.name, '-x', String(x), '-y', String(y)]);
  }

  async stderr() {
    return readFile(this.errFile, 'utf8').catch(() => '');
  }

  /** Waits until pred(lines) holds; the screen and stderr go into the error. */
  async waitFor(what, pred, ms = 20000) {
    const deadline = Date.now() + ms;
    let lines = [];
    for (;;) {
      lines = this.lines();
      if (pred(lines)) return lines;
      if (Date.now() > deadline) break;
      await sleep(100);
    }
    const err = (await this.stderr()).split('\n').slice(-30).join('\n');
    throw new Error(`${this.name}: ${what}: not within ${ms} ms; the screen:\n` +
      `${lines.map((l) => `|${l}`).join('\n')}\nstderr tail:\n${err}`);
  }

  /** Waits for a line matching re; returns it. */
  async waitLine(what, re, ms) {
    const lines = await this.waitFor(what, (ls) => ls.some((l) => re.test(l)), ms);
    return lines.find((l) => re.test(l));
  }
}

const notice = (lines) => lines[lines.length - 2];
const input = (lines) => lines[lines.length - 1];

describe('echolink chat through tmux', { skip: SKIP }, () => {
  let c, alice, bob, tmux, a, b;
  before(async () => {
    c = await startCluster();
    alice = await c.client('alice');
    bob = await c.client('bob', { remote: true });
    await c.befriend(alice, bob);
    tmux = new Tmux(c.dir);
    a = tmux.chat(alice, { term: 'xterm-256color' });
    b = tmux.chat(bob, { term: 'screen' });
  });
  after(async () => {
    tmux?.kill();
    await c?.cleanup();
  });

  it('starts online with the contact selected', async () => {
    // the status bar: our name and short id, "online", the shown peer
    const bar = new RegExp(`alice \\(${alice.id.slice(0, 8)}\\)\\s+online\\s+\\|\\s+bob`);
    await a.waitFor('status bar with bob shown', (ls) => bar.test(ls[0]));
    await b.waitFor('status bar with alice shown', (ls) => /bob .*online\s+\|\s+alice/.test(ls[0]));
    // the contact list on the left, with presence
    await a.waitFor('bob listed online', (ls) => ls.some((l) => /^[●*] bob\s*│/.test(l)));
    assert.match(input(a.lines()), /^› ?$/);
  });

  it('a message typed by alice appears on bob\'s screen, then its delivered mark on hers', async () => {
    a.type('hello from the tui, bob', 'Enter');
    const got = await b.waitLine('alice\'s message', /\d+ \d\d:\d\d alice: hello from the tui, bob$/);
    assert.ok(got);
    // "✓" delivered, "✓✓" once bob's screen has shown (read) it
    await a.waitLine('the delivered mark', /\d+ \d\d:\d\d alice: hello from the tui, bob ✓✓?$/);
    assert.match(input(a.lines()), /^› ?$/, 'the input line is empty again');
  });

  it('typing shows on the other side; UTF-8 text and a reply arrive intact', async () => {
    b.type('grüße ');
    await a.waitLine('the typing indicator', /bob is typing…/);
    b.type('🙂 zurück', 'Enter');
    await a.waitLine('bob\'s message', /bob: grüße 🙂 zurück$/);
    await a.waitFor('the typing line cleared', (ls) => !ls.some((l) => /is typing/.test(l)));
    // message 1 is alice's first one on bob's screen: answer it
    b.type('/reply 1 seen it', 'Enter');
    await a.waitLine('the quoted line of the reply', /bob: > alice: hello from the tui, bob/);
    await a.waitLine('the reply text', /│\s+seen it$/);
  });

  it('a failing /command says why on the notice line, and the UI goes on', async () => {
    a.type('/block nobody', 'Enter');
    await a.waitFor('the notice', (ls) => /^error: .*nobody.*not a peer ID/.test(notice(ls)));
    a.type('/frobnicate', 'Enter');
    await a.waitFor('the unknown command', (ls) => /^error: unknown command \/frobnicate/.test(notice(ls)));
    a.type('/reply 99 nothing there', 'Enter');
    await a.waitFor('no such message', (ls) => /^error: no message 99/.test(notice(ls)));
    a.type('still here', 'Enter');
    await b.waitLine('a message after the errors', /alice: still here$/);
  });

  it('the layout survives tmux resize-window, down to a tiny window', async () => {
    a.resize(100, 30);
    let ls = await a.waitFor('30 rows with the list', (l) => l.length === 30 && /^›/.test(l[29]) &&
      l.some((x) => /^[●*] bob\s*│/.test(x)));
    assert.match(ls[0], /alice .*\|\s+bob/);
    assert.ok(ls.some((l) => /alice: still here ✓/.test(l)));
    // narrower than 60 columns: the list goes, the conversation stays
    a.resize(50, 12);
    ls = await a.waitFor('12 rows without the list', (l) => l.length === 12 && /^›/.test(l[11]) &&
      !l.some((x) => x.includes('│')));
    assert.ok(ls.some((l) => /alice: still here/.test(l)), 'the last message is on screen');
    assert.ok(ls.every((l) => [...l].length <= 50));
    for (const [x, y] of [[20, 5], [1, 1], [3, 2], [40, 10]]) {
      a.resize(x, y);
      await sleep(300);
    }
    // still alive (a crash would have printed "[exit N]"), drawn at 40x10
    ls = await a.waitFor('40x10', (l) => l.length === 10 && /^›/.test(l[9]));
    assert.ok(ls.some((l) => /still here/.test(l)));
    a.resize(80, 24);
    await a.waitFor('back at 80x24', (l) => l.length === 24 && /^[●*] bob\s*│/.test(l[1] ?? ''));
    // the UI still works after all that
    a.type('after the resize', 'Enter');
    await b.waitLine('a message after the resize', /alice: after the resize$/);
  });

  it('/quit ends the program with 0 and gives the terminal back', async () => {
    a.type('/quit', 'Enter');
    assert.equal(await a.exit(), 0, await a.stderr());
    // endwin() left the alternate screen: the chat screen is gone
    assert.ok(!a.capture().includes('›'), a.capture());
    b.type('', 'C-c');
    assert.equal(await b.exit(), 0, await b.stderr());
  });
});
