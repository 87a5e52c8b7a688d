/**
 * Token expiry arithmetic. Lifetimes are whole seconds (see duration.ts); `expiresAt` null
 * means "never". An unusable expiry (an invalid Date) counts as expired: Rancher also
 * rejects a token whose `expiresAt` does not parse, and failing closed is the safe reading.
 */
import { KubegateError } from '../errors.js';
import { formatDuration } from './duration.js';

function assertValidDate(value: Date, what: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${what} must be a valid Date`);
}

/**
 * `now` + `ttlSeconds`. Throws DURATION_INVALID when `ttlSeconds` is not a positive whole
 * number, TTL_TOO_LONG when it exceeds `maxSeconds` (a configured maximum).
 */
export function expiresAtFrom(now: Date, ttlSeconds: number, maxSeconds: number): Date {
  assertValidDate(now, 'now');
  if (!Number.isSafeInteger(maxSeconds) || maxSeconds <= 0) {
    throw new TypeError('maxSeconds must be a positive whole number');
  }
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new KubegateError('DURATION_INVALID', 'the lifetime must be a positive whole number of seconds');
  }
  if (ttlSeconds > maxSeconds) {
    throw new KubegateError(
      'TTL_TOO_LONG',
      `the requested lifetime of ${formatDuration(ttlSeconds)} exceeds the maximum of ${formatDuration(maxSeconds)}`,
    );
  }
  return new Date(now.getTime() + ttlSeconds * 1000);
}

/** Whether a token with `expiresAt` is expired at `now`. The expiry instant itself is expired. */
export function isExpired(expiresAt: Date | null, now: Date): boolean {
  assertValidDate(now, 'now');
  if (expiresAt === null) return false;
  const expiresAtMs = expiresAt.getTime();
  return Number.isNaN(expiresAtMs) || now.getTime() >= expiresAtMs;
}
