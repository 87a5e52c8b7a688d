/**
 * The idle scenario's least-squares line (bench/scenarios.ts `fitLine`): memory per idle
 * connection is its slope, so the slope, its standard error and the intercept must be right.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitLine } from '../../../bench/scenarios.js';

test('points on a line give its slope and intercept, with no error', () => {
  const fit = fitLine([
    [2000, 1_000_000 + 2000 * 30_000],
    [4000, 1_000_000 + 4000 * 30_000],
    [6000, 1_000_000 + 6000 * 30_000],
    [8000, 1_000_000 + 8000 * 30_000],
  ]);
  assert.equal(fit.slope, 30_000);
  assert.equal(fit.intercept, 1_000_000);
  assert.equal(fit.slopeStdError, 0);
});

test('scattered points give the least-squares slope and its standard error', () => {
  // y = 1, 3, 2, 4 at x = 1..4: slope 0.8, intercept 0.5, residuals −0.3, 0.9, −0.9, 0.3.
  const fit = fitLine([
    [1, 1],
    [2, 3],
    [3, 2],
    [4, 4],
  ]);
  assert.ok(Math.abs(fit.slope - 0.8) < 1e-12);
  assert.ok(Math.abs(fit.intercept - 0.5) < 1e-12);
  assert.ok(Math.abs(fit.slopeStdError - Math.sqrt(1.8 / 2 / 5)) < 1e-12);
});
