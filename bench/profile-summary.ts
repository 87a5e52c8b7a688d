/**
 * Top functions in each .cpuprofile of a directory (as left by `npm run bench -- --cpu-prof`):
 * `node --import tsx bench/profile-summary.ts DIR [TOP] [--inclusive] [--last S] [--requests N]`.
 * Samples are wall-clock while the thread runs JavaScript or native code; `(idle)` is the
 * event loop waiting. By default each function's self time, as a share of all samples; with
 * `--inclusive`, the time spent in a function and everything it called, as a share of the
 * samples that were not idle; `--last S` keeps only the samples of the profile's last S
 * seconds (start-up left out: a profile ends when its process stops after the load); with
 * `--requests N` (the requests the process served in that time), also each time divided by
 * N — µs per request, how BENCHMARKS.md attributes a request's cost function by function.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { inclusive: { type: 'boolean', default: false }, last: { type: 'string' }, requests: { type: 'string' } },
});
const [dir, topText] = positionals;
if (dir === undefined) throw new TypeError('usage: profile-summary.ts DIR [TOP] [--inclusive] [--last S] [--requests N]');
const top = Number(topText ?? 25);
const requests = values.requests === undefined ? undefined : Number(values.requests);
if (requests !== undefined && !(requests > 0)) throw new TypeError('--requests must be a positive number');
const lastUs = values.last === undefined ? Number.POSITIVE_INFINITY : Number(values.last) * 1e6;
if (!(lastUs > 0)) throw new TypeError('--last must be a positive number of seconds');

function frameName(node: ProfileNode): string {
  const frame = node.callFrame;
  return `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
}

for (const file of readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const timeUs = new Map<string, number>();
  let totalUs = 0;
  let busyUs = 0;
  const endUs = profile.timeDeltas.reduce((sum, delta) => sum + delta, 0);
  let atUs = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    atUs += delta;
    const node = nodes.get(id);
    if (node === undefined || atUs < endUs - lastUs) return;
    totalUs += delta;
    if (!values.inclusive) {
      const key = frameName(node);
      timeUs.set(key, (timeUs.get(key) ?? 0) + delta);
      return;
    }
    if (node.callFrame.functionName === '(idle)') return;
    busyUs += delta;
    // Every function on the sample's stack, once even when it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const key = frameName(nodes.get(at) as ProfileNode);
      if (seen.has(key)) continue;
      seen.add(key);
      timeUs.set(key, (timeUs.get(key) ?? 0) + delta);
    }
  });
  const base = values.inclusive ? busyUs : totalUs;
  process.stdout.write(`${file}: ${(totalUs / 1e6).toFixed(1)} s sampled${values.inclusive ? `, ${(busyUs / 1e6).toFixed(1)} s not idle` : ''}\n`);
  for (const [key, us] of [...timeUs].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const perRequest = requests === undefined ? '' : `${(us / requests).toFixed(1).padStart(8)} µs/req`;
    process.stdout.write(`  ${((us / base) * 100).toFixed(1).padStart(5)} %${perRequest}  ${key}\n`);
  }
}
