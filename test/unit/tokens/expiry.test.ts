import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isKubegateError } from '../../../src/errors.js';
import { expiresAtFrom, isExpired } from '../../../src/tokens/expiry.js';

const NOW = new Date('2025-01-01T00:00:00Z');
const DAY = 86_400;

describe('expiresAtFrom', () => {
  it('adds the lifetime in seconds to now', () => {
    assert.equal(expiresAtFrom(NOW, 30 * DAY, 90 * DAY).toISOString(), '2025-01-31T00:00:00.000Z');
  });

  it('accepts a lifetime equal to the maximum', () => {
    assert.equal(expiresAtFrom(NOW, 90 * DAY, 90 * DAY).getTime(), NOW.getTime() + 90 * DAY * 1000);
  });

  it('refuses a lifetime above the maximum with TTL_TOO_LONG, naming both in readable units', () => {
    assert.throws(
      () => expiresAtFrom(NOW, 91 * DAY, 90 * DAY),
      (error: unknown) => isKubegateError(error, 'TTL_TOO_LONG') && /91d/.test(error.message) && /90d/.test(error.message),
    );
  });

  it('refuses a zero, negative or fractional lifetime with DURATION_INVALID, because it may come from a request body', () => {
    for (const ttl of [0, -5, 1.5, Number.NaN]) {
      assert.throws(() => expiresAtFrom(NOW, ttl, 90 * DAY), (error: unknown) => isKubegateError(error, 'DURATION_INVALID'));
    }
  });

  it('treats a bad maximum or clock as a programming error', () => {
    assert.throws(() => expiresAtFrom(NOW, 10, 0), TypeError);
    assert.throws(() => expiresAtFrom(new Date(Number.NaN), 10, 100), TypeError);
  });

  it('does not modify the Date it was given', () => {
    const now = new Date(NOW);
    expiresAtFrom(now, 10, 100);
    assert.equal(now.getTime(), NOW.getTime());
  });
});

describe('isExpired', () => {
  it('treats null as never expiring', () => {
    assert.equal(isExpired(null, NOW), false);
  });

  it('is false before the expiry and true from the expiry instant on', () => {
    assert.equal(isExpired(new Date(NOW.getTime() + 1), NOW), false);
    assert.equal(isExpired(NOW, NOW), true);
    assert.equal(isExpired(new Date(NOW.getTime() - 1), NOW), true);
  });

  it('treats an invalid expiry as expired, because an unparsable expiresAt must fail closed (as in Rancher)', () => {
    assert.equal(isExpired(new Date('not a date'), NOW), true);
  });
});
