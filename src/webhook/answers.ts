/**
 * Warm TokenReview answers by request body: the same bytes from the API server get the same
 * answer, written as a prebuilt response body — no JSON parse, no token digest, no
 * serialization on a hit.
 *
 * Design note — why an answer may be reused, and for how long:
 * - The answer to a review is a function of the request body (apiVersion, token,
 *   spec.audiences: every input the handler reads from the request is in it), of the
 *   webhook's fixed settings (its audiences), and of the token cache's answer for that token.
 *   Headers do not enter it: the only one read (`content-type`) is checked before the body.
 * - So an entry lives exactly as long as the token cache's answer it was built from: until
 *   that answer's expiry (`expiresAtOf`: success TTL capped by the token's `expiresAt`, failure
 *   TTL for rejections), and only while the token cache's `generation` is the one the answer
 *   was read in — any invalidation (a token's objects or a user's attribute changed or went
 *   away) retires every entry at once, as do the lookups in flight. A revocation costs the
 *   other tokens one ordinary review each, and nothing is ever answered from before it.
 * - Errors (undecided reviews) are never stored, as the token cache never stores them; an
 *   answer the token cache did not store (TTL 0, invalidated during its lookup) is not either.
 * - Keys are base64 SHA-256 digests of a random per-process 32-byte key ‖ the body: no raw
 *   token is ever a key, and a heap dump holds nothing replayable. SHA-256, not the token
 *   cache's SHA3: a third of the cost, and length extension needs a digest that never leaves
 *   this process (keys are only compared here, in a Map).
 * - Size: an LRU of `maxEntries` (least recently used go first); bodies larger than
 *   MAX_BODY_BYTES are not remembered, so an entry is a few hundred bytes.
 */
import { hash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { AuthResult, TokenAuthenticator } from '../auth/authenticator.js';
import type { CachedAuthenticator } from '../auth/cached.js';

/** Review bodies past this size are answered but not remembered (kube-apiserver's are ~1 KB at most). */
const MAX_BODY_BYTES = 4096;

/** A remembered answer: what to write, and what a hit still does (count, stamp use, log). */
export interface RememberedAnswer {
  /** The whole response body (a serialized TokenReview); a string, so that Node writes it and the head in one chunk. */
  readonly body: string;
  /** Its length in bytes. */
  readonly bodyBytes: number;
  readonly outcome: 'authenticated' | 'unauthenticated';
  /** The token's name (never its secret): stamped as used when authenticated, logged at debug. */
  readonly tokenName: string | undefined;
  /** Why an unauthenticated review was refused, for the debug log. */
  readonly code: string | undefined;
}

interface Entry extends RememberedAnswer {
  readonly expiresAtMs: number;
  readonly generation: number;
}

export interface AnswerCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
}

export interface AnswerCacheOptions {
  /** The token cache answers are read from; entries live no longer than its answers. */
  readonly tokenCache: Pick<CachedAuthenticator, 'generation' | 'expiresAtOf'> & TokenAuthenticator;
  readonly maxEntries: number;
  /** The token cache's clock (ms since the epoch); Date.now by default. */
  readonly now?: (() => number) | undefined;
}

export interface AnswerCache {
  /** The body's key: keyed digest of its bytes; undefined when the body is too large to remember. */
  keyOf(body: Buffer): string | undefined;
  /** The fresh answer for `key` (a hit), or undefined (a miss). */
  get(key: string): RememberedAnswer | undefined;
  /** The token cache's generation now: take it before asking the token cache. */
  readonly generation: number;
  /**
   * Remembers `reply` for `key` when `verified` (the token cache's own answer) is still cached
   * and no invalidation happened since `generation` was taken. `answer` is the review's own
   * (an audience mismatch makes an authenticated token's review unauthenticated); `replyBytes`
   * is the reply's length in bytes.
   */
  remember(key: string, generation: number, verified: AuthResult, answer: AuthResult, reply: string, replyBytes: number, tokenName: string | undefined): void;
  stats(): AnswerCacheStats;
}

export function createAnswerCache(options: AnswerCacheOptions): AnswerCache {
  if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) throw new TypeError('maxEntries must be a positive whole number');
  const { tokenCache } = options;
  const now = options.now ?? Date.now;
  const secret = randomBytes(32);
  // secret ‖ body is hashed from one scratch buffer: no allocation per key.
  const scratch = Buffer.alloc(secret.length + MAX_BODY_BYTES);
  secret.copy(scratch);
  const entries = new LRUCache<string, Entry>({ max: options.maxEntries });
  let hits = 0;
  let misses = 0;
  return {
    keyOf(body) {
      if (body.length > MAX_BODY_BYTES) return undefined;
      body.copy(scratch, secret.length);
      return hash('sha256', scratch.subarray(0, secret.length + body.length), 'base64');
    },
    get(key) {
      const entry = entries.get(key);
      if (entry !== undefined) {
        if (entry.generation === tokenCache.generation && now() < entry.expiresAtMs) {
          hits++;
          return entry;
        }
        entries.delete(key);
      }
      misses++;
      return undefined;
    },
    get generation() {
      return tokenCache.generation;
    },
    remember(key, generation, verified, answer, reply, replyBytes, tokenName) {
      if (answer.outcome === 'error' || generation !== tokenCache.generation) return;
      const expiresAtMs = tokenCache.expiresAtOf(verified);
      if (expiresAtMs === undefined || !(now() < expiresAtMs)) return;
      const code = answer.outcome === 'unauthenticated' ? answer.code : undefined;
      entries.set(key, { body: reply, bodyBytes: replyBytes, outcome: answer.outcome, tokenName, code, expiresAtMs, generation });
    },
    stats: () => ({ hits, misses, entries: entries.size }),
  };
}
