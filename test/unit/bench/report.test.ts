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

/** The recorded run's idle rows with these figures: one round each (a number), several (a list), or none (null). */
function idleChecks(perConnection: Record<string, number | readonly number[] | null>): Map<string, boolean | null> {
  const idle = recorded.idle.map((row) => {
    const figure = perConnection[row.target];
    const rounds = figure === undefined || figure === null ? [] : typeof figure === 'number' ? [figure] : figure;
    return { ...row, perConnectionBytes: rounds.length === 0 ? null : ([...rounds].sort((a, b) => a - b)[Math.floor((rounds.length - 1) / 2)] as number), roundSlopesBytes: rounds };
  });
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

test('per idle connection against the Go peer: met only when every round is at or below its best round, and overlapping rounds say so', () => {
  assert.equal(idleChecks({ 'go-reverseproxy': [30_000, 31_000], kubegate: [29_000, 30_000] }).get('kubegate'), true);
  assert.equal(idleChecks({ 'go-reverseproxy': [30_000, 31_000], kubegate: [29_000, 30_500] }).get('kubegate'), false);
  const measured = checkTargets({ ...recorded, idle: recorded.idle.map((row) => ({ ...row, perConnectionBytes: 30_000, roundSlopesBytes: row.target === 'kubegate' ? [29_000, 31_000] : [30_000, 30_500] })) })
    .filter((check) => check.target === 'kubegate' && check.goal.startsWith('per idle connection'))
    .map((check) => check.measured);
  assert.deepEqual(measured, ['29.3 KB [28.3–30.3] vs 29.3 KB [29.3–29.8] (rounds overlap: undecided)']);
});
