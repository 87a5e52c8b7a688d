/**
 * The OIDC identity provider (openid-client v6): browser logins with the authorization code
 * flow and PKCE, device logins (RFC 8628) for terminals, and the facts the ID-token bearer
 * authenticator (bearer.ts) needs to accept this issuer's tokens.
 *
 * Design notes:
 * - Discovery is lazy and single-flight: the proxy starts even when the issuer is down, a
 *   failed discovery is not remembered (the next login tries again) and a successful one is
 *   kept for the life of the process.
 * - `checkHealth` (the background health check) discovers afresh and fetches the JWKS, so
 *   it tells whether the issuer answers now, not whether it once did.
 * - The issuer must be https. `allowInsecureIssuerForTests: true` lets openid-client talk
 *   plain http (its `allowInsecureRequests`); it exists for the test suite's loopback
 *   oidc-provider and must never be set in production.
 * - `state`, `nonce` and the PKCE verifier are made and kept by the caller (web-login.ts
 *   makes them, login-state.ts seals them into `state`); here they are only checked: openid-client compares the
 *   callback's `state`, sends the verifier and checks the ID token's `nonce`, `iss`, `aud`,
 *   `exp` and `iat`.
 * - Errors: the user declining → LOGIN_DENIED; a refused code (replayed, expired, wrong
 *   verifier) or a bad ID token → LOGIN_CALLBACK_INVALID; an unreachable or misbehaving
 *   provider → PROVIDER_UNAVAILABLE. None is ever "wrong password".
 *
 * Settings (`providers[].settings`, type `oidc`):
 *   issuer (https URL), clientId, clientSecret (omit for a public client), scopes (default
 *   openid profile email), usernameClaim (default preferred_username, falling back to sub),
 *   groupsClaim (default groups), groupsFromUserinfo (read groups from the userinfo
 *   endpoint instead of the ID token), emailClaim (default email; taken only with
 *   `email_verified: true`, claims.ts), assumeEmailVerified (default false: an issuer that
 *   never sends email_verified and whose addresses are trusted), audiences (accepted `aud` of bearer ID tokens,
 *   default [clientId]), timeoutSeconds (default 10), accessMode/allowedPrincipals
 *   (src/providers/access.ts), allowInsecureIssuerForTests (test-only, default false).
 */
import * as client from 'openid-client';
import * as z from 'zod';
import type { ProviderConfig } from '../../config/proxy.js';
import { KubegateError, isKubegateError, toKubegateError } from '../../errors.js';
import { accessSettingsShape, createAccessPolicy } from '../access.js';
import type { AccessPolicy } from '../access.js';
import type { ProviderLoginResult, ProviderRegistry } from '../provider.js';
import { parseProviderSettings } from '../settings.js';
import type { DeviceLoginStart, DevicePollResult, WebLoginProvider, WebLoginRequest } from '../web-login.js';
import { pkceChallenge } from '../web-login.js';
import { groupsFromClaims, identityFromClaims } from './claims.js';
import type { ClaimNames } from './claims.js';

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const claimName = z.string().min(1).max(128);

const oidcSettingsSchema = z
  .strictObject({
    issuer: z.string().refine(isHttpUrl, { error: 'must be an https:// URL' }),
    clientId: z.string().min(1).max(512),
    clientSecret: z.string().min(1).max(4096).optional(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, { error: 'must be a scope token' })).min(1).default(['openid', 'profile', 'email']),
    usernameClaim: claimName.default('preferred_username'),
    groupsClaim: claimName.default('groups'),
    emailClaim: claimName.default('email'),
    assumeEmailVerified: z.boolean().default(false),
    groupsFromUserinfo: z.boolean().default(false),
    audiences: z.array(z.string().min(1).max(512)).min(1).optional(),
    timeoutSeconds: z.number().int().min(1).max(120).default(10),
    allowInsecureIssuerForTests: z.boolean().default(false),
    ...accessSettingsShape,
  })
  .superRefine((settings, context) => {
    if (!settings.scopes.includes('openid')) context.addIssue({ code: 'custom', path: ['scopes'], message: 'must include openid' });
    if (!settings.allowInsecureIssuerForTests && new URL(settings.issuer).protocol !== 'https:') {
      context.addIssue({ code: 'custom', path: ['issuer'], message: 'must be an https:// URL' });
    }
  });

/** What the bearer authenticator needs from the provider. */
export interface OidcBearerSource extends ClaimNames {
  readonly name: string;
  /** The issuer exactly as configured (the `iss` every ID token must carry). */
  readonly issuer: string;
  /** Accepted `aud` values of bearer ID tokens. */
  readonly audiences: readonly string[];
  /** Bearer tokens take groups from their claims; false means the stored login groups. */
  readonly groupsInIdToken: boolean;
  /** The issuer's JWKS URL, from discovery. Throws PROVIDER_UNAVAILABLE. */
  jwksUri(): Promise<URL>;
}

export interface OidcProvider extends WebLoginProvider {
  readonly type: 'oidc';
  readonly bearer: OidcBearerSource;
  startDeviceLogin(): Promise<DeviceLoginStart>;
  pollDeviceLogin(deviceCode: string): Promise<DevicePollResult>;
}

/** Creates the provider; discovery happens on first use. Throws CONFIG_INVALID (`settings.x`). */
export function createOidcProvider(config: ProviderConfig): OidcProvider {
  if (config.type !== 'oidc') throw new TypeError('createOidcProvider needs a provider of type oidc');
  const settings = parseProviderSettings(oidcSettingsSchema, config.settings);
  const access: AccessPolicy = createAccessPolicy(settings, { providerName: config.name });
  const names: ClaimNames = { usernameClaim: settings.usernameClaim, groupsClaim: settings.groupsClaim, emailClaim: settings.emailClaim, assumeEmailVerified: settings.assumeEmailVerified };
  const scope = settings.scopes.join(' ');
  let discovering: Promise<client.Configuration> | undefined;

  /** A fresh discovery (the issuer's metadata), never the kept one. */
  function fetchDiscovery(): Promise<client.Configuration> {
    return client.discovery(
      new URL(settings.issuer),
      settings.clientId,
      settings.clientSecret,
      settings.clientSecret === undefined ? client.None() : client.ClientSecretBasic(settings.clientSecret),
      {
        execute: settings.allowInsecureIssuerForTests ? [client.allowInsecureRequests] : [],
        timeout: settings.timeoutSeconds,
      },
    );
  }

  function discover(): Promise<client.Configuration> {
    discovering ??= fetchDiscovery()
      .then((configuration) => {
        configuration.timeout = settings.timeoutSeconds;
        return configuration;
      })
      .catch((error: unknown) => {
        discovering = undefined;
        throw new KubegateError('PROVIDER_UNAVAILABLE', 'the OIDC issuer discovery failed', { cause: error });
      });
    return discovering;
  }

  async function identityResult(
    configuration: client.Configuration,
    tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  ): Promise<ProviderLoginResult> {
    const claims = tokens.claims();
    if (claims === undefined) throw new KubegateError('LOGIN_CALLBACK_INVALID', 'the identity provider returned no ID token');
    let groups: string[] | undefined;
    if (settings.groupsFromUserinfo) {
      const userinfo = await client.fetchUserInfo(configuration, tokens.access_token, claims.sub);
      groups = groupsFromClaims(config.name, userinfo, settings.groupsClaim);
    }
    return { outcome: 'authenticated', identity: identityFromClaims(config.name, claims, names, groups) };
  }

  async function authorizationUrl(request: WebLoginRequest): Promise<URL> {
    const configuration = await discover();
    return client.buildAuthorizationUrl(configuration, {
      redirect_uri: request.redirectUri,
      response_type: 'code',
      scope,
      state: request.state,
      nonce: request.nonce,
      code_challenge: await pkceChallenge(request.codeVerifier),
      code_challenge_method: 'S256',
    });
  }

  async function completeWebLogin(request: WebLoginRequest, callbackUrl: URL): Promise<ProviderLoginResult> {
    try {
      const configuration = await discover();
      const tokens = await client.authorizationCodeGrant(
        configuration,
        callbackUrl,
        { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true },
      );
      return await identityResult(configuration, tokens);
    } catch (error) {
      return { outcome: 'error', error: classifyError(error) };
    }
  }

  async function startDeviceLogin(): Promise<DeviceLoginStart> {
    const configuration = await discover();
    if (configuration.serverMetadata().device_authorization_endpoint === undefined) {
      throw new KubegateError('LOGIN_METHOD_UNSUPPORTED', 'the OIDC issuer does not offer the device flow');
    }
    let answer: client.DeviceAuthorizationResponse;
    try {
      answer = await client.initiateDeviceAuthorization(configuration, { scope });
    } catch (error) {
      throw classifyError(error);
    }
    return {
      userCode: answer.user_code,
      verificationUri: answer.verification_uri,
      verificationUriComplete: answer.verification_uri_complete,
      expiresInSeconds: answer.expires_in,
      intervalSeconds: answer.interval ?? 5,
      deviceCode: answer.device_code,
    };
  }

  async function pollDeviceLogin(deviceCode: string): Promise<DevicePollResult> {
    try {
      const configuration = await discover();
      const tokens = await client.genericGrantRequest(configuration, DEVICE_CODE_GRANT, { device_code: deviceCode });
      return await identityResult(configuration, tokens);
    } catch (error) {
      if (error instanceof client.ResponseBodyError) {
        if (error.error === 'authorization_pending') return { outcome: 'pending', slowDown: false };
        if (error.error === 'slow_down') return { outcome: 'pending', slowDown: true };
        if (error.error === 'access_denied' || error.error === 'expired_token') {
          return { outcome: 'error', error: new KubegateError('LOGIN_DENIED', 'the device login was declined or has expired', { cause: error }) };
        }
      }
      return { outcome: 'error', error: classifyError(error) };
    }
  }

  const bearer: OidcBearerSource = Object.freeze({
    name: config.name,
    issuer: settings.issuer,
    audiences: Object.freeze([...(settings.audiences ?? [settings.clientId])]),
    groupsInIdToken: !settings.groupsFromUserinfo,
    ...names,
    async jwksUri(): Promise<URL> {
      const uri = (await discover()).serverMetadata().jwks_uri;
      if (uri === undefined) throw new KubegateError('PROVIDER_UNAVAILABLE', 'the OIDC issuer publishes no jwks_uri');
      return new URL(uri);
    },
  });

  /** Discovery answers now, and its JWKS is a key set: what logins and bearer tokens need. */
  async function checkHealth(): Promise<void> {
    let configuration: client.Configuration;
    try {
      configuration = await fetchDiscovery();
    } catch (error) {
      throw new KubegateError('PROVIDER_UNAVAILABLE', 'the OIDC issuer discovery failed', { cause: error });
    }
    const uri = configuration.serverMetadata().jwks_uri;
    if (uri === undefined) throw new KubegateError('PROVIDER_UNAVAILABLE', 'the OIDC issuer publishes no jwks_uri');
    let response: Response;
    try {
      response = await fetch(uri, { redirect: 'error', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(settings.timeoutSeconds * 1000) });
    } catch (error) {
      throw new KubegateError('PROVIDER_UNAVAILABLE', 'the OIDC issuer JWKS cannot be fetched', { cause: error });
    }
    const body: unknown = response.status === 200 ? await response.json().catch(() => undefined) : await response.body?.cancel();
    if (response.status !== 200) throw new KubegateError('PROVIDER_UNAVAILABLE', `the OIDC issuer JWKS answered HTTP ${response.status}`);
    const keys = typeof body === 'object' && body !== null ? (body as { keys?: unknown }).keys : undefined;
    if (!Array.isArray(keys) || keys.length === 0) throw new KubegateError('PROVIDER_UNAVAILABLE', 'the OIDC issuer JWKS holds no keys');
  }

  return Object.freeze({
    name: config.name,
    type: 'oidc' as const,
    access,
    bearer,
    authorizationUrl,
    completeWebLogin,
    startDeviceLogin,
    pollDeviceLogin,
    checkHealth,
  });
}

/**
 * The bearer facts of the enabled OIDC provider `name` (the proxy's `oidcBearer`). Throws
 * CONFIG_INVALID (field `oidcBearer.provider`) when there is no such provider.
 */
export function oidcBearerSource(providers: Pick<ProviderRegistry, 'webLogin'>, name: string): OidcBearerSource {
  const provider = providers.webLogin?.(name);
  if (provider === undefined || provider.type !== 'oidc' || !('bearer' in provider)) {
    throw new KubegateError('CONFIG_INVALID', 'oidcBearer.provider must name an enabled provider of type oidc', { field: 'oidcBearer.provider' });
  }
  return (provider as OidcProvider).bearer;
}

/** An openid-client failure as a catalog error (see the design notes). */
function classifyError(error: unknown): KubegateError {
  if (isKubegateError(error)) return error;
  if (error instanceof client.AuthorizationResponseError) {
    return error.error === 'access_denied'
      ? new KubegateError('LOGIN_DENIED', undefined, { cause: error })
      : new KubegateError('LOGIN_CALLBACK_INVALID', undefined, { cause: error });
  }
  if (error instanceof client.ResponseBodyError) {
    return error.status >= 500
      ? new KubegateError('PROVIDER_UNAVAILABLE', undefined, { cause: error })
      : new KubegateError('LOGIN_CALLBACK_INVALID', undefined, { cause: error });
  }
  if (error instanceof client.ClientError && error.code !== undefined && REFUSED_RESPONSE_CODES.has(error.code)) {
    return new KubegateError('LOGIN_CALLBACK_INVALID', undefined, { cause: error });
  }
  const wrapped = toKubegateError(error);
  return wrapped.code === 'INTERNAL' ? new KubegateError('PROVIDER_UNAVAILABLE', undefined, { cause: error }) : wrapped;
}

/** openid-client codes for an answer that is well-formed but must not be accepted. */
const REFUSED_RESPONSE_CODES = new Set(['OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED', 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED', 'OAUTH_INVALID_RESPONSE']);

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '' && url.username === '' && url.hash === '';
  } catch {
    return false;
  }
}
