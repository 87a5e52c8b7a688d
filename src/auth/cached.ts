/**
 * A caching decorator for a TokenAuthenticator, after kube-apiserver's cached token
 * authenticator, for the proxy's hot path (token → keyed SHA3 digest → LRU hit, no I/O).
 *
 * - Keys are keyed SHA3-256 digests of the token (and the requested audiences) under random
 *   32-byte keys made per instance, so raw tokens never sit in the cache as keys, and a heap
 *   dump reveals nothing that can be replayed. SHA3 with the key as prefix is a MAC (no length
 *   extension, unlike SHA-2), and as one call of `crypto.hash` it costs a fraction of an HMAC
 *   object per lookup — measurable on the webhook, where the lookup is most of a review.
 * - `authenticated` answers live `successTtlMs`, but never past the token's `expiresAt`;
 *   `unauthenticated` answers live `failureTtlMs`; `error` answers are never cached, so an
 *   outage is retried by the next request. A TTL of 0 turns that kind of caching off.
 * - Expiry is checked against the injected wall clock (`now`, Date.now by default) on every
 *   hit, rather than by lru-cache's TTL timer: token expiry is wall-clock time, and tests
 *   step the clock instead of sleeping. lru-cache only bounds the size (least recently used
 *   entries go first); an expired entry is dropped when it is next looked up or evicted.
 * - Concurrent misses for one key share one inner call (single flight).
 * - invalidateToken(name) drops every entry for that token name — successes, and failures
 *   whose token had that name on the wire, so a token synced just after a "not found"
 *   works at once. invalidateUser(id) drops every success for that user. Any invalidation
 *   also forgets the lookups in flight and stops them from being stored, so an answer read
 *   before a revocation cannot be cached after it.
 * - Cached answers are frozen copies; one request cannot change what another receives.
 * - How long an answer lives, and the index by token and user name, come from
 *   answer-lifetime.ts, which the webhook's answer cache shares.
 */
import { hash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { tryParseToken } from '../tokens/format.js';
import { answerExpiresAt, assertAnswerTtls, KeyIndex } from './answer-lifetime.js';
import type { AuthenticateOptions, Authenticated, AuthResult, TokenAuthenticator, Unauthenticated } from './authenticator.js';
import type { AnswerTtls } from './answer-lifetime.js';
import { authenticateGuarded } from './guard.js';

export interface CachedAuthenticatorOptions extends AnswerTtls {
  /** Most entries kept; the least recently used go first. */
  readonly maxEntries: number;
  /** The wall clock in milliseconds since the epoch; Date.now by default. For tests. */
  readonly now?: (() => number) | undefined;
}

export interface CachedAuthenticatorStats {
  /** Answers served from the cache. */
  readonly hits: number;
  /** Lookups that called the inner authenticator. */
  readonly misses: number;
  /** Lookups that joined a concurrent inner call for the same key instead of making one. */
  readonly sharedLookups: number;
  /** Entries held now (expired ones included until they are looked up or evicted). */
  readonly entries: number;
}

export interface CachedAuthenticator extends TokenAuthenticator {
  /**
   * The cached answer for `token`, synchronously, when there is a fresh one (counted as a
   * hit); undefined otherwise — then `authenticateToken` is the way. For the proxy's hot
   * path, which then admits a known token without waiting for a promise.
   */
  cachedAnswer(token: string, options?: AuthenticateOptions): AuthResult | undefined;
  /** Drops every entry for token `name`; answers how many were dropped. */
  invalidateToken(name: string): number;
  /** Drops every success for user `userId` (UserInfo.name); answers how many were dropped. */
  invalidateUser(userId: string): number;
  /** Drops everything. */
  clear(): void;
  stats(): CachedAuthenticatorStats;
}

type CachedResult = Authenticated | Unauthenticated;

interface Entry {
  readonly result: CachedResult;
  readonly expiresAtMs: number;
  readonly tokenName: string | undefined;
  readonly userName: string | undefined;
}

/** The two per-instance keys: one for plain lookups, one for audience-bound ones (base64 of 32 random bytes each). */
export interface CacheKeySecrets {
  readonly plain: string;
  readonly withAudiences: string;
}

export function newCacheKeySecrets(): CacheKeySecrets {
  return { plain: randomBytes(32).toString('base64'), withAudiences: randomBytes(32).toString('base64') };
}

/**
 * The cache key for `token` requested with `audiences`: base64 SHA3-256 of key ‖ message.
 * Without audiences (the hot path) the message is the token alone; with audiences it is
 * `JSON(audiences) ‖ 0x00 ‖ token` under the other key. The keys have a fixed length, JSON
 * never holds a raw NUL, and the two kinds use independent keys, so no two requests share a key.
 */
export function cacheKeyFor(secrets: CacheKeySecrets, token: string, audiences?: readonly string[]): string {
  if (audiences === undefined || audiences.length === 0) return hash('sha3-256', secrets.plain + token, 'base64');
  return hash('sha3-256', `${secrets.withAudiences}${JSON.stringify(audiences)}\x00${token}`, 'base64');
}

function freezeResult(result: CachedResult): CachedResult {
  if (result.outcome === 'unauthenticated') return Object.freeze({ ...result });
  return Object.freeze({ ...result, token: Object.freeze({ ...result.token }) });
}

class CachedTokenAuthenticator implements CachedAuthenticator {
  readonly #inner: TokenAuthenticator;
  readonly #ttls: AnswerTtls;
  readonly #now: () => number;
  readonly #keySecrets = newCacheKeySecrets();
  readonly #cache: LRUCache<string, Entry>;
  readonly #byToken = new KeyIndex();
  readonly #byUser = new KeyIndex();
  readonly #inFlight = new Map<string, Promise<AuthResult>>();
  /** Bumped by every invalidation; a lookup started in an older epoch is not stored. */
  #epoch = 0;
  #hits = 0;
  #misses = 0;
  #sharedLookups = 0;

  constructor(inner: TokenAuthenticator, options: CachedAuthenticatorOptions) {
    assertAnswerTtls(options);
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new TypeError('maxEntries must be a positive whole number');
    }
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('now must be a function');
    this.#inner = inner;
    this.#ttls = { successTtlMs: options.successTtlMs, failureTtlMs: options.failureTtlMs };
    this.#now = options.now ?? Date.now;
    this.#cache = new LRUCache<string, Entry>({
      max: options.maxEntries,
      // Runs synchronously whenever an entry leaves: evicted, deleted, replaced or cleared.
      dispose: (entry, key) => {
        if (entry.tokenName !== undefined) this.#byToken.remove(entry.tokenName, key);
        if (entry.userName !== undefined) this.#byUser.remove(entry.userName, key);
      },
    });
  }

  cachedAnswer(token: string, options?: AuthenticateOptions): AuthResult | undefined {
    return this.#fresh(cacheKeyFor(this.#keySecrets, token, options?.audiences));
  }

  authenticateToken(token: string, options?: AuthenticateOptions): Promise<AuthResult> {
    const key = cacheKeyFor(this.#keySecrets, token, options?.audiences);
    const cached = this.#fresh(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) {
      this.#sharedLookups++;
      return pending;
    }
    this.#misses++;
    const lookup: Promise<AuthResult> = this.#lookUp(key, token, options).finally(() => {
      if (this.#inFlight.get(key) === lookup) this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, lookup);
    return lookup;
  }

  /** The entry's answer when it has not expired (a hit); an expired entry is dropped. */
  #fresh(key: string): CachedResult | undefined {
    const entry = this.#cache.get(key);
    if (entry === undefined) return undefined;
    if (this.#now() < entry.expiresAtMs) {
      this.#hits++;
      return entry.result;
    }
    this.#cache.delete(key);
    return undefined;
  }

  async #lookUp(key: string, token: string, options: AuthenticateOptions | undefined): Promise<AuthResult> {
    const epoch = this.#epoch;
    const result = await authenticateGuarded(this.#inner, token, options);
    if (result.outcome === 'error') return result;
    const shared = freezeResult(result);
    if (epoch === this.#epoch) this.#store(key, token, shared);
    return shared;
  }

  #store(key: string, token: string, result: CachedResult): void {
    const expiresAtMs = answerExpiresAt(result, this.#now(), this.#ttls);
    if (expiresAtMs === undefined) return;
    const tokenName = result.outcome === 'authenticated' ? result.token.name : tryParseToken(token)?.name;
    const userName = result.outcome === 'authenticated' ? result.user.name : undefined;
    this.#cache.set(key, { result, expiresAtMs, tokenName, userName });
    if (tokenName !== undefined) this.#byToken.add(tokenName, key);
    if (userName !== undefined) this.#byUser.add(userName, key);
  }

  #forgetInFlight(): void {
    this.#epoch++;
    this.#inFlight.clear();
  }

  invalidateToken(name: string): number {
    this.#forgetInFlight();
    const keys = this.#byToken.keysOf(name);
    for (const key of keys) this.#cache.delete(key);
    return keys.length;
  }

  invalidateUser(userId: string): number {
    this.#forgetInFlight();
    const keys = this.#byUser.keysOf(userId);
    for (const key of keys) this.#cache.delete(key);
    return keys.length;
  }

  clear(): void {
    this.#forgetInFlight();
    this.#cache.clear();
    this.#byToken.clear();
    this.#byUser.clear();
  }

  stats(): CachedAuthenticatorStats {
    return { hits: this.#hits, misses: this.#misses, sharedLookups: this.#sharedLookups, entries: this.#cache.size };
  }
}

export function cachedAuthenticator(inner: TokenAuthenticator, options: CachedAuthenticatorOptions): CachedAuthenticator {
  return new CachedTokenAuthenticator(inner, options);
}
