/**
 * `npm start` must start the proxy at once: compiling on every start took 11 s, while the
 * compiled entry point starts in under a second. dist/ is built once, by `prepare`, which
 * `npm ci` (and `npm pack`) run; `npm start` only runs it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  bin: Record<string, string>;
};

test('npm start runs the built entry point and never rebuilds, because a rebuild costs every start ten seconds', () => {
  assert.equal(manifest.scripts['prestart'], undefined);
  // Node's flags, if any, between (an older tree shipped one; the bench runs each tree with its own).
  const words = (manifest.scripts['start'] ?? '').split(' ');
  assert.equal(words[0], 'node');
  assert.deepEqual(words.slice(-2), [manifest.bin['kubegate'], 'proxy']);
  assert.ok(words.slice(1, -2).every((word) => word.startsWith('--')), manifest.scripts['start']);
});

test('npm ci builds dist/ once through prepare, so a fresh clone can `npm ci && npm start`', () => {
  assert.equal(manifest.scripts['prepare'], 'npm run build');
  assert.match(manifest.scripts['build'] ?? '', /^tsc -p tsconfig\.build\.json$/);
});
