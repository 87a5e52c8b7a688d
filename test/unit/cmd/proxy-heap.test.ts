/**
 * keepYoungGenerationSmall (src/cmd/proxy-heap.ts): after it, V8's new space stays at the size
 * it had however much short-lived garbage the process makes, and an operator's own
 * semi-space flags win. Each case runs in a child process, whose heap is its own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { keepYoungGenerationSmall } from '../../../src/cmd/proxy-heap.js';

const MODULE = new URL('../../../src/cmd/proxy-heap.ts', import.meta.url).href;

/** Churns objects, some of which survive a few scavenges (as requests in flight do), then reports the new space's size. */
const CHILD = `
import { getHeapSpaceStatistics } from 'node:v8';
const { keepYoungGenerationSmall } = await import(${JSON.stringify(MODULE)});
const newSpaceBytes = () => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size;
const applied = process.env.KEEP_SMALL === '1' ? keepYoungGenerationSmall() : null;
const atCall = newSpaceBytes();
let live = [];
for (let i = 0; i < 3_000_000; i++) {
  live.push({ i, text: 'chunk ' + i });
  if (live.length > 20_000) live = [];
}
process.stdout.write(JSON.stringify({ applied, atCallBytes: atCall, newSpaceBytes: newSpaceBytes() }));
`;

interface ChildReport {
  readonly applied: boolean | null;
  /** The new space's size right after the call (or where it would have been). */
  readonly atCallBytes: number;
  /** Its size after the churn. */
  readonly newSpaceBytes: number;
}

function runChild(nodeOptions: readonly string[], keepSmall: boolean): ChildReport {
  const result = spawnSync(process.execPath, ['--import', 'tsx', ...nodeOptions, '--input-type=module', '-e', CHILD], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '', KEEP_SMALL: keepSmall ? '1' : '0' },
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as ChildReport;
}

describe('keepYoungGenerationSmall', () => {
  it("keeps the new space at the size it had, where V8 would grow it to 16 MiB semi-spaces, so dead Buffers' memory is freed sooner", () => {
    const grown = runChild([], false);
    const kept = runChild([], true);
    assert.equal(kept.applied, true);
    assert.ok(kept.newSpaceBytes <= kept.atCallBytes, `new space ${kept.newSpaceBytes} bytes, ${kept.atCallBytes} at the call`);
    assert.ok(grown.newSpaceBytes > 4 * grown.atCallBytes, `without it the new space grows (${grown.atCallBytes} → ${grown.newSpaceBytes} bytes)`);
  });

  it("leaves the heap alone when the operator set semi-space flags on the node command line, because the operator's choice wins", () => {
    const operator = runChild(['--max-semi-space-size=8'], true);
    assert.equal(operator.applied, false);
    assert.ok(operator.newSpaceBytes > operator.atCallBytes, `the new space grows toward the operator's 8 MiB semi-spaces (${operator.atCallBytes} → ${operator.newSpaceBytes} bytes)`);
  });

  it('leaves the heap alone when NODE_OPTIONS sets them', () => {
    assert.equal(keepYoungGenerationSmall([], '--max-old-space-size=512 --max-semi-space-size=16'), false);
    assert.equal(keepYoungGenerationSmall(['--min-semi-space-size=4'], ''), false);
  });
});
