/**
 * Pending logins at an identity provider's site (web-login.ts): the OAuth `state` with the
 * OIDC `nonce` and the PKCE code verifier of a browser login, the one-time code of the CLI
 * loopback flow, and the provider's device code of a device login.
 *
 * Design notes (why it works across processes, and why it fails closed):
 * - No shared memory: each pending login is SEALED into the value the client carries (the
 *   `state` parameter, the exchange code, the device handle) with AES-256-GCM under a key
 *   derived (HKDF-SHA256) from the secret key every replica and worker already shares (the
 *   secret box's key). Whichever process the callback lands on can open it; nobody without
 *   the key can read it (the PKCE verifier and the provider's device code stay secret) or forge
 *   or alter it (any changed byte fails the GCM tag).
 * - Bound to its use: the purpose (`state` / `exchange` / `device`) and the provider name are
 *   the additional authenticated data, so a state of one provider is refused by another and
 *   an exchange code is not a state. The expiry is inside the sealed payload, measured on the
 *   injected clock; an expired value opens as nothing.
 * - Encoding is canonical: base64url without padding, and a value whose re-encoding differs
 *   (trailing bits, appended characters) is refused before decryption.
 * - Replay: sealed values are bearer values until they expire, so each process also keeps the
 *   IDs (the random IV) of the values it has consumed in a bounded, expiring set. That set is
 *   per process — a replay that lands on another worker is not caught by it — which is
 *   acceptable because it is defence in depth only: a replayed `state` comes with an
 *   authorization code the provider already redeemed (codes are single-use there), and an
 *   exchange code is worthless without the CLI's PKCE verifier.
 */
import { hkdfSync } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type * as z from 'zod';
import { ENVELOPE_IV_BYTES, ENVELOPE_KEY_BYTES, ENVELOPE_TAG_BYTES, openBytes, sealBytes } from '../crypto/envelope.js';

const LOGIN_STATE_KEY_BYTES = ENVELOPE_KEY_BYTES;
const HKDF_SALT = 'kubegate';
const HKDF_INFO = 'kubegate login state v1';
const FORMAT_VERSION = 1;
/**
 * Longest sealed value (characters): a bound on work for garbage input. A `state` holds the
 * callback URL and a CLI loopback URL (at most 2048 characters), so this leaves room for an
 * external URL of about 1500 characters.
 */
export const MAX_SEALED_LENGTH = 6144;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** What a sealed value is for; part of the authenticated data. */
export type LoginStatePurpose = 'state' | 'exchange' | 'device';

/**
 * The key login state is sealed with, derived from the process's at-rest secret key (32
 * bytes) with HKDF-SHA256, so it is never the key stored secrets are encrypted with.
 */
export function deriveLoginStateKey(secretKey: Buffer): Buffer {
  if (!Buffer.isBuffer(secretKey) || secretKey.length < 32) throw new TypeError('deriveLoginStateKey needs a secret key of at least 32 bytes');
  return Buffer.from(hkdfSync('sha256', secretKey, HKDF_SALT, HKDF_INFO, LOGIN_STATE_KEY_BYTES));
}

export interface OpenedLoginState<T> {
  /** Unique per sealed value (its IV, base64url): the key of the used-state set. */
  readonly id: string;
  readonly expiresAtMs: number;
  readonly payload: T;
}

export interface LoginStateSealer {
  /** Seals `payload` (JSON-serialisable) for `purpose` at `provider`, valid for `ttlMs`. */
  seal(purpose: LoginStatePurpose, provider: string, payload: unknown, ttlMs: number): string;
  /**
   * The payload of a value sealed by `seal` with the same key, purpose and provider, not
   * expired and matching `schema`; undefined for anything else (never throws on input).
   */
  open<S extends z.ZodType>(purpose: LoginStatePurpose, provider: string, sealed: unknown, schema: S): OpenedLoginState<z.output<S>> | undefined;
}

export interface LoginStateSealerOptions {
  /** 32 bytes, from deriveLoginStateKey. */
  readonly key: Buffer;
  /** Milliseconds since the epoch; Date.now by default. */
  readonly now?: () => number;
}

export function createLoginStateSealer(options: LoginStateSealerOptions): LoginStateSealer {
  if (!Buffer.isBuffer(options.key) || options.key.length !== LOGIN_STATE_KEY_BYTES) throw new TypeError('the login state key must be 32 bytes');
  const key = Buffer.from(options.key);
  const now = options.now ?? Date.now;

  function additionalData(purpose: LoginStatePurpose, provider: string): Buffer {
    return Buffer.from(`${HKDF_INFO}\0${purpose}\0${provider}`, 'utf8');
  }

  return {
    seal(purpose, provider, payload, ttlMs) {
      if (!(ttlMs > 0)) throw new TypeError('ttlMs must be positive');
      const { iv, body } = sealBytes(key, JSON.stringify({ e: now() + ttlMs, p: payload }), additionalData(purpose, provider));
      const sealed = Buffer.concat([Buffer.of(FORMAT_VERSION), iv, body]).toString('base64url');
      if (sealed.length > MAX_SEALED_LENGTH) throw new TypeError('the sealed login state is too long');
      return sealed;
    },
    open(purpose, provider, sealed, schema) {
      if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_LENGTH || !BASE64URL.test(sealed)) return undefined;
      const bytes = Buffer.from(sealed, 'base64url');
      if (bytes.toString('base64url') !== sealed || bytes.length < 1 + ENVELOPE_IV_BYTES + ENVELOPE_TAG_BYTES || bytes[0] !== FORMAT_VERSION) return undefined;
      const iv = bytes.subarray(1, 1 + ENVELOPE_IV_BYTES);
      const plaintext = openBytes(key, { iv, body: bytes.subarray(1 + ENVELOPE_IV_BYTES) }, additionalData(purpose, provider));
      if (plaintext === undefined) return undefined;
      let envelope: unknown;
      try {
        envelope = JSON.parse(plaintext.toString('utf8'));
      } catch {
        return undefined;
      }
      const { e: expiresAtMs, p: payload } = (envelope ?? {}) as { e?: unknown; p?: unknown };
      if (typeof expiresAtMs !== 'number' || !(now() < expiresAtMs)) return undefined;
      const parsed = schema.safeParse(payload);
      if (!parsed.success) return undefined;
      return { id: iv.toString('base64url'), expiresAtMs, payload: parsed.data };
    },
  };
}

// --- per-process bookkeeping ----------------------------------------------------------------

export interface ExpiringCacheOptions {
  /** Most entries held; the least recently used go first, so memory stays flat under a flood. */
  readonly maxEntries: number;
  /** Milliseconds since the epoch; Date.now by default. */
  readonly now?: (() => number) | undefined;
}

/**
 * A bounded map (this process only) whose entries vanish at the expiry given to `set`:
 * lru-cache with a TTL per entry, on the injected clock (tests step it instead of sleeping).
 */
export class ExpiringCache<T extends {}> {
  readonly #cache: LRUCache<string, T>;
  readonly #now: () => number;

  constructor(options: ExpiringCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) throw new TypeError('maxEntries must be a positive whole number');
    this.#now = options.now ?? Date.now;
    // ttlResolution 0: every look-up reads the clock (no cached "now" between steps).
    this.#cache = new LRUCache<string, T>({ max: options.maxEntries, ttlResolution: 0, perf: { now: this.#now } });
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** Holds `value` until `expiresAtMs`; one already past its expiry is not held. */
  set(key: string, value: T, expiresAtMs: number): void {
    const ttl = expiresAtMs - this.#now();
    if (ttl > 0) this.#cache.set(key, value, { ttl });
    else this.#cache.delete(key);
  }

  delete(key: string): void {
    this.#cache.delete(key);
  }

  /** Entries held now (expired ones included until looked up or evicted). */
  get size(): number {
    return this.#cache.size;
  }
}

/** The sealed values this process has consumed, until they expire (see the replay note above). */
export interface UsedLoginStates {
  /** Records `id` as used; false when it already was (a replay). */
  markUsed(id: string, expiresAtMs: number): boolean;
  isUsed(id: string): boolean;
}

export function createUsedLoginStates(options: ExpiringCacheOptions): UsedLoginStates {
  const used = new ExpiringCache<true>(options);
  return {
    markUsed(id, expiresAtMs) {
      if (used.get(id) !== undefined) return false;
      used.set(id, true, expiresAtMs);
      return true;
    },
    isUsed: (id) => used.get(id) !== undefined,
  };
}
