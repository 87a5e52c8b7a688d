/**
 * Server-side state of logins that happen at an identity provider's site (OIDC, GitHub):
 * the OAuth `state`, the OIDC `nonce` and the PKCE code verifier of a browser login, and
 * the provider's device code of a device login.
 *
 * Design notes (why it fails closed):
 * - The secrets never leave the proxy. The browser carries only `state` (a random 256-bit
 *   key into this map); a device-login client carries only an opaque random handle. The
 *   PKCE verifier and the nonce stay here, so a stolen callback URL is useless without them.
 * - Single use: `take` removes the entry before anyone acts on it, so a replayed callback
 *   (the same `state` a second time) finds nothing and is refused with LOGIN_STATE_INVALID,
 *   even if the first use is still in flight.
 * - Bounded and expiring: at most `maxEntries` (the oldest are dropped first, so a flood of
 *   started logins cannot grow memory) and each lives `ttlMs` at most, measured on the
 *   injected clock.
 * - In memory, per process: a login must finish on the replica that started it. That is the
 *   case with one proxy process (`workers: 1`); several replicas behind a load balancer need
 *   session affinity for `/v1/login/*`.
 */
import { randomBytes } from 'node:crypto';
import { calculatePKCECodeChallenge } from 'openid-client';
import type { AccessPolicy } from './access.js';
import type { ProviderLoginResult } from './provider.js';

/** What one browser login needs at the provider; `state` is the key of the pending login. */
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
  /** The provider's device code: kept by the proxy, never sent to the client. */
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

export interface PendingLoginStoreOptions {
  /** Most logins waiting at once; the oldest are dropped beyond it. */
  readonly maxEntries: number;
  /** How long a started login may take to come back. */
  readonly ttlMs: number;
  /** Milliseconds since the epoch; Date.now by default. */
  readonly now?: () => number;
}

export interface PendingLoginStore<T> {
  /** Keeps `value` under a fresh random key (256 bits, base64url) and returns the key. */
  put(value: T): string;
  /** Like put, for a value that contains its own key (a login request carries its `state`). */
  putWithKey(build: (key: string) => T): string;
  /** The value under `key`, removed: a second take of the same key finds nothing. */
  take(key: string): T | undefined;
  /** The value under `key` without removing it (device logins are polled several times). */
  peek(key: string): T | undefined;
  /** Removes `key`. */
  delete(key: string): void;
  /** Entries held now (expired ones included until touched or evicted). */
  readonly size: number;
}

/** A random key of 32 bytes, base64url: the OAuth `state`, a device handle. */
export function randomKey(): string {
  return randomBytes(32).toString('base64url');
}

export function createPendingLoginStore<T>(options: PendingLoginStoreOptions): PendingLoginStore<T> {
  if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) throw new TypeError('maxEntries must be a positive whole number');
  if (!(options.ttlMs > 0)) throw new TypeError('ttlMs must be positive');
  const now = options.now ?? Date.now;
  const entries = new Map<string, { readonly value: T; readonly expiresAtMs: number }>();

  function live(key: string): T | undefined {
    if (typeof key !== 'string') return undefined;
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (now() >= entry.expiresAtMs) {
      entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  function putWithKey(build: (key: string) => T): string {
    const key = randomKey();
    // Maps keep insertion order: the first key is the oldest login.
    while (entries.size >= options.maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done === true) break;
      entries.delete(oldest.value);
    }
    entries.set(key, { value: build(key), expiresAtMs: now() + options.ttlMs });
    return key;
  }

  return {
    put: (value) => putWithKey(() => value),
    putWithKey,
    take(key) {
      const value = live(key);
      entries.delete(key);
      return value;
    },
    peek: live,
    delete(key) {
      entries.delete(key);
    },
    get size() {
      return entries.size;
    },
  };
}

/** The secrets of one browser login, made when it starts and kept server-side. */
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
