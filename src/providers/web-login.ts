/**
 * Server-side facts of logins that happen at an identity provider's site (OIDC, GitHub): the
 * OAuth `state` with the OIDC `nonce` and the PKCE code verifier of a browser login, the
 * one-time code of the CLI loopback flow, and the provider's device code of a device login.
 *
 * Design notes (why it works across processes, and why it fails closed):
 * - No shared memory: each pending login is SEALED into the value the client carries (the
 *   `state` parameter, the exchange code, the device handle) with AES-256-GCM under a key
 *   derived (HKDF-SHA256) from the secret key every replica and worker already shares (the
 *   SecretBox key). Whichever process the callback lands on can open it; nobody without the
 *   key can read it (the PKCE verifier and the provider's device code stay secret) or forge
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
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { calculatePKCECodeChallenge } from 'openid-client';
import type * as z from 'zod';
import type { AccessPolicy } from './access.js';
import type { ProviderLoginResult } from './identity.js';

/** What one browser login needs at the provider; `state` is the sealed pending login. */
export interface WebLoginRequest {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  /** The proxy's callback URL, `<public URL>/v1/login/<provider>/callback`. */
  readonly redirectUri: string;
}

/** The start of a device login (RFC 8628), as the provider answered it. */
export interface DeviceLoginStart {
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete: string | undefined;
  readonly expiresInSeconds: number;
  readonly intervalSeconds: number;
  /** The provider's device code: sealed into the client's handle, never readable by it. */
  readonly deviceCode: string;
}

export type DevicePollResult = ProviderLoginResult | { readonly outcome: 'pending'; readonly slowDown: boolean };

/**
 * A provider whose logins happen at its own site (OIDC, GitHub): the proxy sends the browser
 * there and completes the login on the callback. Answers follow the password contract
 * (src/providers/provider.ts): an outage is `error` (PROVIDER_UNAVAILABLE), never
 * `unauthenticated`; a refused or replayed callback is `error` with LOGIN_CALLBACK_INVALID
 * or LOGIN_DENIED, which the routes answer with that 4xx.
 */
export interface WebLoginProvider {
  readonly name: string;
  /** `oidc`, `github`. */
  readonly type: string;
  /** Who may log in; absent means unrestricted. */
  readonly access?: AccessPolicy;
  /** Where to send the browser. Throws PROVIDER_UNAVAILABLE when the provider cannot be reached. */
  authorizationUrl(request: WebLoginRequest): Promise<URL>;
  /**
   * Exchanges the callback's code. `callbackUrl` is `redirectUri` with the query the callback
   * arrived with (never built from the request's Host header).
   */
  completeWebLogin(request: WebLoginRequest, callbackUrl: URL): Promise<ProviderLoginResult>;
  /** Present when the provider offers the device flow. Throws PROVIDER_UNAVAILABLE. */
  startDeviceLogin?(): Promise<DeviceLoginStart>;
  /** One poll of the provider's token endpoint for `deviceCode`. */
  pollDeviceLogin?(deviceCode: string): Promise<DevicePollResult>;
}

/** A random key of 32 bytes, base64url: a nonce, a PKCE verifier. */
function randomKey(): string {
  return randomBytes(32).toString('base64url');
}

/** The secrets of one browser login, made when it starts and sealed into its `state`. */
export interface WebLoginSecrets {
  readonly nonce: string;
  /** PKCE verifier (RFC 7636): 32 random bytes, base64url. */
  readonly codeVerifier: string;
}

export function newWebLoginSecrets(): WebLoginSecrets {
  return { nonce: randomKey(), codeVerifier: randomKey() };
}

/** The S256 PKCE challenge of a verifier. */
export function pkceChallenge(codeVerifier: string): Promise<string> {
  return calculatePKCECodeChallenge(codeVerifier);
}

// --- sealed login state ---------------------------------------------------------------------

export const LOGIN_STATE_KEY_BYTES = 32;
const HKDF_SALT = 'kubegate';
const HKDF_INFO = 'kubegate login state v1';
const FORMAT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
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
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(additionalData(purpose, provider));
      const plaintext = JSON.stringify({ e: now() + ttlMs, p: payload });
      const sealed = Buffer.concat([Buffer.of(FORMAT_VERSION), iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64url');
      if (sealed.length > MAX_SEALED_LENGTH) throw new TypeError('the sealed login state is too long');
      return sealed;
    },
    open(purpose, provider, sealed, schema) {
      if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_LENGTH || !BASE64URL.test(sealed)) return undefined;
      const bytes = Buffer.from(sealed, 'base64url');
      if (bytes.toString('base64url') !== sealed || bytes.length < 1 + IV_BYTES + TAG_BYTES || bytes[0] !== FORMAT_VERSION) return undefined;
      const iv = bytes.subarray(1, 1 + IV_BYTES);
      let plaintext: string;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(additionalData(purpose, provider));
        decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
        plaintext = Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        return undefined;
      }
      let envelope: unknown;
      try {
        envelope = JSON.parse(plaintext);
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

export interface ExpiringMapOptions {
  /** Most entries held; the oldest are dropped beyond it, so memory stays flat under a flood. */
  readonly maxEntries: number;
  /** Milliseconds since the epoch; Date.now by default. */
  readonly now?: () => number;
}

/** A bounded map whose entries vanish at their own expiry (this process only). */
export interface ExpiringMap<T> {
  get(key: string): T | undefined;
  set(key: string, value: T, expiresAtMs: number): void;
  delete(key: string): void;
  /** Entries held now (expired ones included until touched or evicted). */
  readonly size: number;
}

export function createExpiringMap<T>(options: ExpiringMapOptions): ExpiringMap<T> {
  if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) throw new TypeError('maxEntries must be a positive whole number');
  const now = options.now ?? Date.now;
  const entries = new Map<string, { readonly value: T; readonly expiresAtMs: number }>();
  return {
    get(key) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (now() >= entry.expiresAtMs) {
        entries.delete(key);
        return undefined;
      }
      return entry.value;
    },
    set(key, value, expiresAtMs) {
      entries.delete(key);
      // Maps keep insertion order: the first key is the oldest entry.
      while (entries.size >= options.maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
      entries.set(key, { value, expiresAtMs });
    },
    delete(key) {
      entries.delete(key);
    },
    get size() {
      return entries.size;
    },
  };
}

/** The sealed values this process has consumed, until they expire (see the replay note above). */
export interface UsedLoginStates {
  /** Records `id` as used; false when it already was (a replay). */
  markUsed(id: string, expiresAtMs: number): boolean;
  isUsed(id: string): boolean;
}

export function createUsedLoginStates(options: ExpiringMapOptions): UsedLoginStates {
  const used = createExpiringMap<true>(options);
  return {
    markUsed(id, expiresAtMs) {
      if (used.get(id) !== undefined) return false;
      used.set(id, true, expiresAtMs);
      return true;
    },
    isUsed: (id) => used.get(id) !== undefined,
  };
}
