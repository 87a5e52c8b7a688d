/**
 * Top functions by self time in each .cpuprofile of a directory (as left by
 * `npm run bench -- --cpu-prof`): `node --import tsx bench/profile-summary.ts DIR [TOP]`.
 * Samples are wall-clock while the thread runs JavaScript or native code; `(idle)` is the
 * event loop waiting.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const [dir, topText] = process.argv.slice(2);
if (dir === undefined) throw new TypeError('usage: profile-summary.ts DIR [TOP]');
const top = Number(topText ?? 25);
for (const file of readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, index) => {
    const node = nodes.get(id);
    if (node === undefined) return;
    const frame = node.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    const delta = profile.timeDeltas[index] ?? 0;
    selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
    totalUs += delta;
  });
  process.stdout.write(`${file}: ${(totalUs / 1e6).toFixed(1)} s sampled\n`);
  for (const [key, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`  ${((us / totalUs) * 100).toFixed(1).padStart(5)} %  ${key}\n`);
  }
}
