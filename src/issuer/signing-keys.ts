/**
 * The issuer's signing keys: created, rotated and retired lazily, in the store, so that
 * every worker and replica signs with the same key and publishes the same set.
 *
 * Design note — rotation with overlap, without a coordinator:
 * - Keys form generations 1, 2, …; the store keeps at most one key per generation, so two
 *   replicas that find the newest key due at the same moment create one successor between
 *   them (the loser reads the winner's).
 * - A key is due for a successor `rotation` after it was created. The successor is
 *   *published* at once but *signs* only `PUBLISH_AHEAD_MS` later: every replica re-reads
 *   the keys at least every `RELOAD_AFTER_MS`, so by the time any replica signs with a new
 *   key, every replica's JWKS already contains it (and an API server that sees an unknown
 *   `kid` re-fetches the JWKS from whichever replica it reaches).
 * - The signing key is the newest key older than `PUBLISH_AHEAD_MS` (the very first key
 *   signs at once: there is nothing to be published ahead of).
 * - A superseded key stays published until every token it can have signed has expired
 *   (its successor's start of signing + the token lifetime + a minute of clock skew); then
 *   it is deleted. So a token stays verifiable for its whole life across a rotation.
 * - Private keys exist in memory (imported once per key) and sealed in the store; the JWKS
 *   carries public halves only.
 * Nothing here runs on a timer: work happens when a token is signed or the JWKS is served.
 * jose is imported then too (as by issuer.ts): a proxy that never issues a JWT never loads it.
 */
import type { CryptoKey, JWK } from 'jose';
import type { SigningKey, Store } from '../store/store.js';
import { SIGNING_ALGORITHM } from './claims.js';

/** A new key is published this long before it signs. */
export const PUBLISH_AHEAD_MS = 10 * 60_000;
/** The keys are re-read from the store at least this often (other replicas rotate too). */
export const RELOAD_AFTER_MS = 60_000;
/** Clock skew allowed for on top of the token lifetime before a superseded key is dropped. */
const SKEW_MS = 60_000;

export interface KeyRingOptions {
  readonly store: Store;
  /** How long a key signs before its successor takes over. */
  readonly rotationMs: number;
  /** The longest lifetime of a token signed with these keys. */
  readonly tokenTtlMs: number;
  readonly now: () => Date;
}

export interface ActiveKey {
  readonly kid: string;
  readonly algorithm: string;
  readonly privateKey: CryptoKey;
}

export interface KeyRing {
  /** The key to sign with now, creating the first key or a successor when one is due. */
  signingKey(): Promise<ActiveKey>;
  /** The public keys to publish now (JWKS `keys`). */
  publicKeys(): Promise<JWK[]>;
}

export function createKeyRing(options: KeyRingOptions): KeyRing {
  const { store, rotationMs, tokenTtlMs, now } = options;
  let keys: SigningKey[] = [];
  let loadedAt = Number.NEGATIVE_INFINITY;
  let pending: Promise<void> | undefined;
  const imported = new Map<string, Promise<CryptoKey>>();

  /** Re-reads the keys when stale, rotates when due, drops retired keys. Single flight. */
  function refresh(): Promise<void> {
    const at = now().getTime();
    const newest = keys.at(-1);
    const fresh = at - loadedAt < RELOAD_AFTER_MS && newest !== undefined && at - newest.createdAt.getTime() < rotationMs;
    if (fresh) return Promise.resolve();
    pending ??= (async () => {
      try {
        keys = await store.listSigningKeys();
        loadedAt = at;
        const latest = keys.at(-1);
        if (latest === undefined || at - latest.createdAt.getTime() >= rotationMs) {
          await store.createSigningKey(await newKey((latest?.generation ?? 0) + 1, new Date(at)));
          keys = await store.listSigningKeys();
        }
        await retire(at);
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  }

  /** Deletes superseded keys whose tokens have all expired. */
  async function retire(at: number): Promise<void> {
    const kept: SigningKey[] = [];
    for (const [index, key] of keys.entries()) {
      const successor = keys[index + 1];
      const publishedUntil = successor === undefined ? Infinity : successor.createdAt.getTime() + PUBLISH_AHEAD_MS + tokenTtlMs + SKEW_MS;
      if (at < publishedUntil) {
        kept.push(key);
        continue;
      }
      imported.delete(key.kid);
      await store.deleteSigningKey(key.kid);
    }
    keys = kept;
  }

  function signer(at: number): SigningKey {
    const ready = keys.filter((key) => at - key.createdAt.getTime() >= PUBLISH_AHEAD_MS);
    const key = ready.at(-1) ?? keys[0];
    if (key === undefined) throw new TypeError('the key ring holds no key after a refresh');
    return key;
  }

  return {
    async signingKey() {
      await refresh();
      const key = signer(now().getTime());
      let privateKey = imported.get(key.kid);
      if (privateKey === undefined) {
        const jwk = JSON.parse(key.privateJwk) as JWK;
        privateKey = import('jose').then(({ importJWK }) => importJWK(jwk, key.algorithm) as Promise<CryptoKey>);
        imported.set(key.kid, privateKey);
      }
      return { kid: key.kid, algorithm: key.algorithm, privateKey: await privateKey };
    },
    async publicKeys() {
      await refresh();
      return keys.map((key) => JSON.parse(key.publicJwk) as JWK);
    },
  };
}

async function newKey(generation: number, createdAt: Date): Promise<SigningKey> {
  const { calculateJwkThumbprint, exportJWK, generateKeyPair } = await import('jose');
  const pair = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const publicJwk = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = await exportJWK(pair.privateKey);
  return {
    kid,
    generation,
    algorithm: SIGNING_ALGORITHM,
    publicJwk: JSON.stringify({ ...publicJwk, kid, alg: SIGNING_ALGORITHM, use: 'sig' }),
    privateJwk: JSON.stringify({ ...privateJwk, kid, alg: SIGNING_ALGORITHM }),
    createdAt,
  };
}
