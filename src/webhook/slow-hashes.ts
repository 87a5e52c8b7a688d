/**
 * Secret checks against stored hashes, with `$1` (scrypt) ones done once per secret and hash.
 *
 * Design note — why a second, tiny cache beside the answer cache (answers.ts):
 * - The answer cache is keyed by request body, so one token in two bodies (other audiences,
 *   the other apiVersion, other whitespace, a second API server) is verified twice. For `$2`/
 *   `$3` that is one SHA-256/SHA3-512 of the secret, a few µs: nothing is remembered. For a
 *   Rancher `$1` hash it is a scrypt, ~50 ms of a thread-pool thread, and once per token
 *   and body shape — and again after every change of the token or its user, which retires
 *   its answers — would be a price no review should pay twice.
 * - What is remembered is only that a secret matches a hash: a fact about the two alone,
 *   never an answer. Whether the token is enabled, unexpired, and whose user it is are read by
 *   the verifier on every review, from the objects held now.
 * - Remembered per PreparedHash object (a WeakMap): the source makes a new one whenever the
 *   token's Secret (or its deprecated `hash` field) changes, so a changed or deleted hash
 *   forgets what was checked against it by construction, and the memory is bounded by the
 *   hashes held: one matching secret per hash.
 * - Only the secret that matched is remembered, as its SHA3-256 under a random per-process
 *   key (no raw secret, nothing replayable in a heap dump), compared in constant time. A wrong
 *   secret is checked again every time: guessing costs what it always did, and the memory does
 *   not grow with guesses (its rejection is still cached by body, answers.ts).
 * - Single flight: concurrent checks of one secret against one hash share one scrypt (a new
 *   kubeconfig's first burst, or one token in several bodies at once).
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { verifyPrepared } from '../tokens/hash.js';
import type { PreparedHash } from '../tokens/hash.js';

interface SlowHashMemo {
  /** Keyed digest of the secret that matched, once one did. */
  matched: Buffer | undefined;
  /** Checks running now, by the base64 of the secret's keyed digest. */
  readonly running: Map<string, Promise<boolean>>;
}

export interface SecretChecker {
  /** verifyPrepared(secret, prepared): the same answer or rejection; a `$1` match is remembered. */
  check(secret: string, prepared: PreparedHash): Promise<boolean>;
}

export function createSecretChecker(): SecretChecker {
  const key = randomBytes(32).toString('base64');
  const memos = new WeakMap<PreparedHash, SlowHashMemo>();

  async function checkSlow(secret: string, prepared: PreparedHash): Promise<boolean> {
    let memo = memos.get(prepared);
    if (memo === undefined) {
      memo = { matched: undefined, running: new Map() };
      memos.set(prepared, memo);
    }
    const digest = hash('sha3-256', key + secret, 'buffer');
    if (memo.matched !== undefined && timingSafeEqual(memo.matched, digest)) return true;
    const id = digest.toString('base64');
    let running = memo.running.get(id);
    if (running === undefined) {
      const started = verifyPrepared(secret, prepared).then((matches) => {
        if (matches) (memo as SlowHashMemo).matched = digest;
        return matches;
      });
      running = started.finally(() => (memo as SlowHashMemo).running.delete(id));
      memo.running.set(id, running);
    }
    return running;
  }

  return {
    check: (secret, prepared) => (prepared.version === 1 ? checkSlow(secret, prepared) : verifyPrepared(secret, prepared)),
  };
}
