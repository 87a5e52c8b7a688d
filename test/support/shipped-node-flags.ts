/**
 * The Node/V8 flags kubegate ships with (`--max-semi-space-size=N`, README "Operating →
 * Memory"), read from the places that start it: the shebang of src/cmd/main.ts (which tsc
 * keeps in dist/cmd/main.js, the `kubegate` bin) and the `npm start` script. The shebang is
 * where the value is written; test/integration/node-flags.test.ts checks that every other
 * start path (npm start, the Dockerfile's ENTRYPOINT, deploy/) gives the same flags, and
 * the bench starts each tree's proxy with its own `npm start` flags.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const SHEBANG = /^#!\/usr\/bin\/env(?: -S)? node((?: [^ \n]+)*)\n/;

/** The node flags in the `#!/usr/bin/env -S node …` first line of `source`; throws when there is no such line. */
export function shebangNodeFlags(source: string): string[] {
  const match = SHEBANG.exec(source);
  if (match === null) throw new Error(`not a node script: ${JSON.stringify(source.slice(0, 80))}`);
  return match[1]!.split(' ').filter((flag) => flag !== '');
}

/** The node flags of `<repo>/package.json`'s `start` script (`node <flags> <entry> proxy`). */
export function startScriptNodeFlags(repo: string): string[] {
  const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
  const words = (manifest.scripts['start'] ?? '').split(/\s+/).filter((word) => word !== '');
  const entry = words.indexOf(manifest.bin['kubegate'] ?? '');
  if (words[0] !== 'node' || entry < 0) throw new Error(`the start script of ${repo} does not run node on the kubegate bin: ${manifest.scripts['start']}`);
  return words.slice(1, entry);
}
