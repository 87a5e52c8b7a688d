/**
 * The benchmark's targets check (bench/report.ts) on a recorded run: a memory figure that is
 * no measurement — none, zero, or negative because a GC ran while it was taken — never
 * counts as a goal met, while a real figure is judged as before.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { checkTargets } from '../../../bench/report.js';
import type { BenchResults } from '../../../bench/report.js';

const recorded = JSON.parse(readFileSync(new URL('../../../bench/recorded/2026-12-05-final.json', import.meta.url), 'utf8')) as BenchResults;

function idleChecks(perConnection: Record<string, number | null>): Map<string, boolean | null> {
  const idle = recorded.idle.map((row) => (row.target in perConnection ? { ...row, perConnectionBytes: perConnection[row.target] ?? null } : row));
  const checks = checkTargets({ ...recorded, idle });
  return new Map(checks.filter((check) => check.goal.startsWith('per idle connection')).map((check) => [check.target, check.met]));
}

test('a negative, zero or missing idle-connection figure is never a goal met; a real one below the Go peer is', () => {
  const met = idleChecks({ 'go-reverseproxy': 17_000, kubegate: -24_000, 'kubegate-w2': 0, 'kubegate-agent': null, 'native-core': 16_000 });
  assert.equal(met.get('kubegate'), false);
  assert.equal(met.get('kubegate-w2'), false);
  assert.equal(met.get('kubegate-agent'), false);
  assert.equal(met.get('native-core'), true);
});

test("without a usable figure for the Go peer, no row is judged against it", () => {
  assert.equal(idleChecks({ 'go-reverseproxy': -5_000, kubegate: 16_000 }).size, 0);
});
