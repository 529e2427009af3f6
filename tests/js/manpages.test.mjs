// manpages.test.mjs - docs/man/echolink.1 documents every command of
// `echolink --help`, and both manual pages render without groff warnings.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { SOURCE_DIR } from './lib/server.mjs';

const ECHOLINK = process.env.ECHOLINK || path.join(SOURCE_DIR, 'build-test', 'bin', 'echolink');

describe('manual pages', () => {
  it('echolink(1) names every command of echolink --help', () => {
    const help = execFileSync(ECHOLINK, ['--help'], { encoding: 'utf8' });
    const page = readFileSync(path.join(SOURCE_DIR, 'docs/man/echolink.1'), 'utf8').replace(/\\-/g, '-');
    // the commands: first word of each indented line of the command sections
    const commands = new Set();
    for (const line of help.split('\n')) {
      const m = /^ {2}([a-z][a-z-]+)\b/.exec(line);
      if (m) commands.add(m[1]);
    }
    for (const extra of ['accept', 'refuse', 'remove', 'block', 'unblock', 'import', 'group']) commands.add(extra);
    assert.ok(commands.size >= 25, `found only ${commands.size} commands in --help`);
    const missing = [...commands].filter((c) => !new RegExp(`\\b${c}\\b`).test(page));
    assert.deepEqual(missing, [], 'commands missing from docs/man/echolink.1');
  });

  for (const page of ['echolink.1', 'echolinkd.8']) {
    it(`${page} renders without groff warnings`, () => {
      const out = execFileSync('groff', ['-man', '-ww', '-z', path.join(SOURCE_DIR, 'docs/man', page)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.equal(out, '');
    });
  }
});
