/**
 * The webhook's one cache: whole TokenReview answers by request body, retired per token and
 * per user. The same bytes from the API server get the same answer, written as a prebuilt
 * response body — no JSON parse, no token digest, no serialization on a hit; a miss verifies
 * the token (verify.ts) and remembers the reply, with no second cache behind it.
 *
 * Design note — why an answer may be reused, and for how long:
 * - The answer to a review is a function of the request body (apiVersion, token,
 *   spec.audiences: every input the handler reads from the request is in it), of the
 *   webhook's fixed settings (its audiences), and of the verifier's answer for that token.
 *   Headers do not enter it: the only one read (`content-type`) is checked before the body.
 * - So an entry lives as long as the verifier's answer may be reused (auth/answer-lifetime.ts:
 *   the success TTL capped by the token's `expiresAt`, the failure TTL for rejections — of the
 *   verifier's outcome, so an audience mismatch of a valid token lives as its success would),
 *   and errors (undecided reviews) are never stored: the API server asks again.
 * - Retired precisely: every entry is indexed by the token name it was answered for (a
 *   success's token, or the name on the wire of a rejected one, so that a token synced just
 *   after a rejection works at once) and by a success's user. `invalidateToken` (the token's
 *   ClusterAuthToken or Secret changed or went away) and `invalidateUser` (its attribute did)
 *   drop exactly those entries, at once; other tokens' answers stay. An answer whose
 *   verification was in flight during any invalidation is not stored (`epoch`): it may have
 *   read the objects from before the change. Only `$1` (scrypt) verifications ever wait across
 *   a turn of the event loop; `$2`/`$3` ones finish before another event can arrive.
 * - One token in two bodies (other audiences, the other apiVersion, other whitespace, a second
 *   API server) is two entries and two verifications: for `$2`/`$3` one SHA-256/SHA3-512 of
 *   the secret (a few µs, about what a keyed digest of the token to find a shared entry by
 *   would cost); a `$1` token's scrypt (~50 ms) is done once and remembered per stored hash by
 *   slow-hashes.ts, which also makes concurrent reviews of one token share one scrypt. There is
 *   no single flight here: reviews of one body that arrive together (one socket read) each
 *   verify before either is remembered, which for `$2`/`$3` is a hash each, as cheap as the
 *   bookkeeping that would share it.
 * - Keys are base64 SHA-256 digests of a random per-process 32-byte key ‖ the body: no raw
 *   token is ever a key, and a heap dump holds nothing replayable. SHA-256 with the key as a
 *   prefix is open to length extension only for someone who sees a digest; they never leave
 *   this process (keys are only compared here, in a Map).
 * - Size: an LRU of `maxEntries` (least recently used go first); bodies larger than
 *   MAX_BODY_BYTES are answered but not remembered, so an entry is a few hundred bytes.
 */
import { hash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { answerExpiresAt, assertAnswerTtls, KeyIndex } from '../auth/answer-lifetime.js';
import type { AnswerTtls } from '../auth/answer-lifetime.js';
import type { AuthResult } from '../auth/authenticator.js';

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
  /** The user a success was answered for (indexed, with `tokenName`, to retire it). */
  readonly userName: string | undefined;
}

export interface AnswerCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
}

export interface AnswerCacheOptions extends AnswerTtls {
  readonly maxEntries: number;
  /** The wall clock (ms since the epoch) expiries are read against; Date.now by default. */
  readonly now?: (() => number) | undefined;
}

export interface AnswerCache {
  /** The body's key: keyed digest of its bytes; undefined when the body is too large to remember. */
  keyOf(body: Buffer): string | undefined;
  /** The fresh answer for `key` (a hit), or undefined (a miss). */
  get(key: string): RememberedAnswer | undefined;
  /** Changes with every invalidation: take it before verifying, give it to `remember`. */
  readonly epoch: number;
  /**
   * Remembers `reply` for `key`, for as long as `verified` (the verifier's answer) may be
   * reused, unless an invalidation happened since `epoch` was taken. `answer` is the review's
   * own (an audience mismatch makes an authenticated token's review unauthenticated);
   * `replyBytes` is the reply's length in bytes; `tokenName` the name on the wire.
   */
  remember(key: string, epoch: number, verified: AuthResult, answer: AuthResult, reply: string, replyBytes: number, tokenName: string | undefined): void;
  /** Drops every answer given for token `name` (successes, and rejections of that name); answers how many. */
  invalidateToken(name: string): number;
  /** Drops every success of user `userName` (UserInfo.name); answers how many. */
  invalidateUser(userName: string): number;
  stats(): AnswerCacheStats;
}

export function createAnswerCache(options: AnswerCacheOptions): AnswerCache {
  if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) throw new TypeError('maxEntries must be a positive whole number');
  assertAnswerTtls(options);
  const ttls: AnswerTtls = { successTtlMs: options.successTtlMs, failureTtlMs: options.failureTtlMs };
  const now = options.now ?? Date.now;
  const secret = randomBytes(32);
  // secret ‖ body is hashed from one scratch buffer: no allocation per key.
  const scratch = Buffer.alloc(secret.length + MAX_BODY_BYTES);
  secret.copy(scratch);
  const byToken = new KeyIndex();
  const byUser = new KeyIndex();
  const entries = new LRUCache<string, Entry>({
    max: options.maxEntries,
    // Runs synchronously whenever an entry leaves: evicted, deleted or replaced.
    dispose: (entry, key) => {
      if (entry.tokenName !== undefined) byToken.remove(entry.tokenName, key);
      if (entry.userName !== undefined) byUser.remove(entry.userName, key);
    },
  });
  let epoch = 0;
  let hits = 0;
  let misses = 0;

  function drop(keys: readonly string[]): number {
    epoch++;
    for (const key of keys) entries.delete(key);
    return keys.length;
  }

  return {
    keyOf(body) {
      if (body.length > MAX_BODY_BYTES) return undefined;
      body.copy(scratch, secret.length);
      return hash('sha256', scratch.subarray(0, secret.length + body.length), 'base64');
    },
    get(key) {
      const entry = entries.get(key);
      if (entry !== undefined) {
        if (now() < entry.expiresAtMs) {
          hits++;
          return entry;
        }
        entries.delete(key);
      }
      misses++;
      return undefined;
    },
    get epoch() {
      return epoch;
    },
    remember(key, epochTaken, verified, answer, reply, replyBytes, tokenName) {
      if (answer.outcome === 'error' || epochTaken !== epoch) return;
      const expiresAtMs = answerExpiresAt(verified, now(), ttls);
      if (expiresAtMs === undefined) return;
      const code = answer.outcome === 'unauthenticated' ? answer.code : undefined;
      const userName = verified.outcome === 'authenticated' ? verified.user.name : undefined;
      entries.set(key, { body: reply, bodyBytes: replyBytes, outcome: answer.outcome, tokenName, code, expiresAtMs, userName });
      if (tokenName !== undefined) byToken.add(tokenName, key);
      if (userName !== undefined) byUser.add(userName, key);
    },
    invalidateToken: (name) => drop(byToken.keysOf(name)),
    invalidateUser: (userName) => drop(byUser.keysOf(userName)),
    stats: () => ({ hits, misses, entries: entries.size }),
  };
}
