/**
 * Accepts ID tokens of one OIDC issuer as bearer tokens (the proxy's `oidcBearer`), so that
 * `kubectl --token=<id_token>` or an oidc-login plugin works through the proxy.
 *
 * It lives with the OIDC provider (discovery, claim rules) and plugs into the proxy's token
 * chain as one more TokenAuthenticator (src/auth/token-chain.ts): providers depend on the
 * authentication library, never the other way round.
 *
 * Checks, in order, all before any store access: three base64url segments (else
 * TOKEN_MALFORMED, so the union tries the others) → header `alg` on the allow-list of
 * asymmetric algorithms (never `none`, never HS*: a shared-secret algorithm would let anyone
 * holding the client secret mint tokens) → `iss` is the configured issuer (a foreign token
 * costs no JWKS fetch) → jose `jwtVerify` with the issuer's remote JWKS (cached; one
 * refetch on an unknown `kid`, which is how key rotation is picked up), `iss`, `aud` among
 * the configured audiences, `exp`/`iat`/`sub` required, a small clock tolerance.
 *
 * Identity is the same as for a web login of the same `sub`: the kubegate user is found by
 * the identity link (provider, sub) that the login created; a subject that never logged in
 * through the proxy is IDENTITY_NOT_LINKED (unauthenticated): the bearer path never creates
 * users. Links are cached (bounded, `linkCacheTtlMs`); the user itself is read each time
 * (the cached authenticator in front keeps that off the hot path), so a disabled or deleted
 * user stops at once. Groups are the token's groups claim, prefixed; with
 * `groupsFromUserinfo` (groups not in the token) the groups stored at the last login. The
 * token's verified e-mail address (claims.ts) is recorded on the user when it differs from
 * the recorded one (`recordEmail`, the login's own rule: proxy/api/login.ts), so the
 * `email` user name follows the issuer on this path too.
 *
 * Outcomes: a bad signature, wrong audience, foreign issuer, bad `alg` → OIDC_TOKEN_INVALID;
 * expired → TOKEN_EXPIRED; JWKS or discovery unreachable, store down → error (undecided),
 * never a rejection.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { authenticated, unauthenticated, undecided } from '../../auth/authenticator.js';
import type { AuthResult, TokenAuthenticator } from '../../auth/authenticator.js';
import type { IdentityLookups } from '../../auth/lookups.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME, makeUserInfo } from '../../auth/user.js';
import { KubegateError, isKubegateError, toKubegateError } from '../../errors.js';
import { groupsFromClaims, subjectOf, verifiedEmailOf } from './claims.js';
import type { OidcBearerSource } from './oidc.js';

/** Asymmetric JWS algorithms accepted; `none` and HS* never are. */
const ACCEPTED_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
]);

/** Longest bearer token looked at; an ID token is a few KiB. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface OidcBearerAuthenticatorOptions {
  readonly source: OidcBearerSource;
  readonly lookups: IdentityLookups;
  /** Leeway for `exp`/`iat`/`nbf`; default 5 s. */
  readonly clockToleranceSeconds?: number;
  /** How long a (provider, sub) → user link is remembered; default 60 s. */
  readonly linkCacheTtlMs?: number;
  /** Least time between two JWKS fetches triggered by an unknown `kid`; default 30 s. */
  readonly jwksCooldownMs?: number;
  /** Wall clock; `() => new Date()` by default. */
  readonly now?: () => Date;
  /** Records the token's verified e-mail address (undefined: none), as the provider vouches for it, on the user, when it differs from the recorded one. */
  readonly recordEmail?: (userId: string, provider: string, email: string | undefined) => Promise<void>;
}

export function oidcBearerAuthenticator(options: OidcBearerAuthenticatorOptions): TokenAuthenticator {
  const { source, lookups } = options;
  const now = options.now ?? (() => new Date());
  const clockTolerance = options.clockToleranceSeconds ?? 5;
  const links = new LRUCache<string, string>({ max: 10_000, ttl: options.linkCacheTtlMs ?? 60_000 });
  let keySet: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  function jwks(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    keySet ??= source.jwksUri().then(
      (uri) => createRemoteJWKSet(uri, { cooldownDuration: options.jwksCooldownMs ?? 30_000, timeoutDuration: 5000 }),
      (error: unknown) => {
        keySet = undefined;
        throw error;
      },
    );
    return keySet;
  }

  async function userIdOf(sub: string): Promise<string | undefined> {
    const cached = links.get(sub);
    if (cached !== undefined) return cached;
    const link = await lookups.findIdentity(source.name, sub);
    if (link !== undefined) links.set(sub, link.userId);
    return link?.userId;
  }

  async function verify(token: string): Promise<{ readonly payload: JWTPayload } | { readonly refused: AuthResult }> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      return { refused: unauthenticated('TOKEN_MALFORMED') };
    }
    if (typeof header.alg !== 'string' || !ACCEPTED_ALGORITHMS.includes(header.alg)) return { refused: unauthenticated('OIDC_TOKEN_INVALID') };
    if (unverified.iss !== source.issuer) return { refused: unauthenticated('OIDC_TOKEN_INVALID') };
    try {
      const { payload } = await jwtVerify(token, await jwks(), {
        issuer: source.issuer,
        audience: [...source.audiences],
        algorithms: [...ACCEPTED_ALGORITHMS],
        requiredClaims: ['exp', 'iat', 'sub'],
        clockTolerance,
        currentDate: now(),
      });
      return { payload };
    } catch (error) {
      if (error instanceof errors.JWTExpired) return { refused: unauthenticated('TOKEN_EXPIRED') };
      if (REJECTIONS.some((kind) => error instanceof kind)) return { refused: unauthenticated('OIDC_TOKEN_INVALID') };
      if (isKubegateError(error)) return { refused: undecided(error) };
      return { refused: undecided(new KubegateError('PROVIDER_UNAVAILABLE', "the OIDC issuer's keys could not be fetched", { cause: error })) };
    }
  }

  async function authenticateToken(token: string): Promise<AuthResult> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return unauthenticated('TOKEN_MALFORMED');
    // A tagged answer, never "payload or result": a signed claim named `outcome` must not
    // be mistaken for an answer.
    const verified = await verify(token);
    if ('refused' in verified) return verified.refused;
    const { payload } = verified;
    let sub: string;
    try {
      sub = subjectOf(payload);
    } catch {
      return unauthenticated('OIDC_TOKEN_INVALID');
    }
    try {
      const userId = await userIdOf(sub);
      if (userId === undefined) return unauthenticated('IDENTITY_NOT_LINKED');
      const user = await lookups.getUser(userId);
      if (user === undefined) {
        links.delete(sub);
        return unauthenticated('IDENTITY_NOT_LINKED');
      }
      if (!user.enabled) return unauthenticated('USER_DISABLED');
      const email = verifiedEmailOf(payload, source);
      if (options.recordEmail !== undefined && (email ?? null) !== (user.email ?? null)) await options.recordEmail(user.id, source.name, email);
      const groups = source.groupsInIdToken
        ? groupsFromClaims(source.name, payload, source.groupsClaim)
        : ((await lookups.getUserGroups(user.id, source.name))?.groups ?? []);
      const name = tokenName(source.name, token);
      return authenticated(
        makeUserInfo({
          name: user.id,
          uid: user.id,
          groups,
          extra: { [EXTRA_LOGIN_NAME]: [user.username], [EXTRA_PROVIDER]: [source.name], [EXTRA_TOKEN_NAME]: [name] },
        }),
        { name, expiresAt: new Date((payload.exp ?? 0) * 1000), clusterId: null },
      );
    } catch (error) {
      return undecided(isKubegateError(error) ? error : new KubegateError('AUTH_UNDECIDED', undefined, { cause: toKubegateError(error) }));
    }
  }

  return { authenticateToken };
}

/** jose errors that mean "this token is not acceptable" (as opposed to "could not check"). */
const REJECTIONS = [
  errors.JWTClaimValidationFailed,
  errors.JWSSignatureVerificationFailed,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
  errors.JWSInvalid,
  errors.JWTInvalid,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
] as const;

/**
 * The name audit records and caches use for an ID token: the provider and a short hash of
 * the token, never the token (its signature alone would not be a secret, but there is no
 * reason to keep any part of it).
 */
function tokenName(provider: string, token: string): string {
  return `${provider}/id-token-${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
}
