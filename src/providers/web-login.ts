/**
 * The contract of logins that happen at an identity provider's site (OIDC, GitHub): what
 * one browser login needs there (the OAuth `state`, the OIDC `nonce`, the PKCE code
 * verifier), the device flow's answers, and the provider interface. How a pending login
 * travels between processes — sealed into what the client carries — is login-state.ts.
 */
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
  /** Resolves when the provider's site answers as it should, else throws the reason (health.ts). */
  checkHealth?(): Promise<void>;
}

/** The secrets of one browser login, made when it starts and sealed into its `state`. */
export interface WebLoginSecrets {
  readonly nonce: string;
  /** PKCE verifier (RFC 7636): 32 random bytes, base64url (openid-client's helpers make both). */
  readonly codeVerifier: string;
}

/**
 * openid-client (and oauth4webapi under it) is loaded at the first browser login, not at
 * start-up: a proxy with only password providers never needs it (BENCHMARKS.md, "kubegate's
 * memory"). The CLI's browser login uses the same helpers.
 */
export async function newWebLoginSecrets(): Promise<WebLoginSecrets> {
  const { randomNonce, randomPKCECodeVerifier } = await import('openid-client');
  return { nonce: randomNonce(), codeVerifier: randomPKCECodeVerifier() };
}

/** A PKCE verifier alone (the CLI's loopback login with the proxy). */
export async function newPkceVerifier(): Promise<string> {
  const { randomPKCECodeVerifier } = await import('openid-client');
  return randomPKCECodeVerifier();
}

/** The S256 PKCE challenge of a verifier. */
export async function pkceChallenge(codeVerifier: string): Promise<string> {
  const { calculatePKCECodeChallenge } = await import('openid-client');
  return calculatePKCECodeChallenge(codeVerifier);
}
