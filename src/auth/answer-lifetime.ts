/**
 * How long a cached authentication answer may be reused, and the index that retires answers by
 * token or user name — shared by the proxy's token cache (cached.ts) and the webhook's answer
 * cache (webhook/answers.ts), so that both keep an answer exactly as long.
 *
 * - `authenticated`: `successTtlMs`, but never past the token's `expiresAt` (an unparsable
 *   expiry gives NaN, and such a success is not kept at all);
 * - `unauthenticated`: `failureTtlMs`;
 * - `error`: never — an outage is retried by the next request.
 * A TTL of 0 turns that kind of caching off.
 */
import type { AuthResult } from './authenticator.js';

export interface AnswerTtls {
  /** How long an `authenticated` answer is reused, capped by the token's expiry. 0 = never. */
  readonly successTtlMs: number;
  /** How long an `unauthenticated` answer is reused. 0 = never. */
  readonly failureTtlMs: number;
}

/** Throws a TypeError naming the TTL that is not a finite, non-negative number of milliseconds. */
export function assertAnswerTtls(ttls: AnswerTtls): void {
  for (const [value, what] of [
    [ttls.successTtlMs, 'successTtlMs'],
    [ttls.failureTtlMs, 'failureTtlMs'],
  ] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`${what} must be a finite, non-negative number of milliseconds`);
    }
  }
}

/** Until when (ms, the clock `now` is read from) `result`, answered at `now`, may be reused; undefined: not at all. */
export function answerExpiresAt(result: AuthResult, now: number, ttls: AnswerTtls): number | undefined {
  let expiresAtMs: number;
  if (result.outcome === 'authenticated') {
    if (ttls.successTtlMs === 0) return undefined;
    expiresAtMs = now + ttls.successTtlMs;
    if (result.token.expiresAt !== null) expiresAtMs = Math.min(expiresAtMs, result.token.expiresAt.getTime());
  } else if (result.outcome === 'unauthenticated') {
    if (ttls.failureTtlMs === 0) return undefined;
    expiresAtMs = now + ttls.failureTtlMs;
  } else {
    return undefined;
  }
  return expiresAtMs > now ? expiresAtMs : undefined;
}

/** Sets of cache keys by a name (token name or user ID), kept in step with the cache by its owner. */
export class KeyIndex {
  readonly #keys = new Map<string, Set<string>>();

  add(name: string, key: string): void {
    const keys = this.#keys.get(name);
    if (keys === undefined) this.#keys.set(name, new Set([key]));
    else keys.add(key);
  }

  remove(name: string, key: string): void {
    const keys = this.#keys.get(name);
    if (keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) this.#keys.delete(name);
  }

  keysOf(name: string): string[] {
    return [...(this.#keys.get(name) ?? [])];
  }

  clear(): void {
    this.#keys.clear();
  }
}
