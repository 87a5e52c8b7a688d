/**
 * The proxy as an OIDC-style token issuer that cluster API servers trust natively (the
 * `jwt` authorized-endpoint mode): short-lived JWTs for one cluster each, the discovery
 * document and the JWKS an API server reads to verify them.
 *
 * Design note — what the API server verifies and what stays with the proxy:
 * - The proxy decides *whether* a JWT is issued (a valid kubegate token, an enabled user, a
 *   member of the cluster; the route checks this) and *what identity* it carries: exactly
 *   the identity the proxy path impersonates for the same kubegate token, so a request
 *   through either path meets the same RBAC (claims.ts maps claim to identity).
 * - The API server verifies signature, `iss`, `aud` (= its cluster ID, so a JWT for one
 *   cluster is useless on another) and `exp` itself, with keys it fetched from the JWKS: it
 *   needs no call to kubegate per request and keeps working while the proxy is down, until
 *   the JWT expires. Revocation (token revoked, user disabled, membership removed) therefore
 *   takes effect at once for new JWTs and after at most the JWT lifetime for issued ones.
 * - Groups never include a `system:` name: provider data is refused such names already,
 *   and `system:authenticated` is added by the API server itself.
 * - jose is imported at the first JWT, not at start-up (signing-keys.ts too): most proxies
 *   never issue one.
 */
import { randomUUID } from 'node:crypto';
import type { JWK } from 'jose';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME } from '../auth/user.js';
import type { UserInfo } from '../auth/user.js';
import type { Store } from '../store/store.js';
import { CLAIM_GROUPS, CLAIM_KUBERNETES_USERNAME, CLAIM_LOGIN_NAME, CLAIM_PROVIDER, CLAIM_TOKEN_NAME, SIGNING_ALGORITHM, usernameClaimFor } from './claims.js';
import { kubernetesNameOf } from '../auth/principal.js';
import type { KubernetesUsernameFormat } from '../config/identity.js';
import { createKeyRing } from './signing-keys.js';

export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/openid/v1/jwks';

export interface TokenIssuerOptions {
  readonly store: Store;
  /** The issuer URL (`iss`): the proxy's public URL, known once the server is bound. */
  readonly issuerUrl: () => string;
  readonly tokenTtlSeconds: number;
  readonly keyRotationSeconds: number;
  /** How users are named to Kubernetes; default `id`. */
  readonly kubernetesUsername?: KubernetesUsernameFormat;
  readonly now?: () => Date;
}

export interface IssuedJwt {
  readonly token: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface TokenIssuer {
  readonly issuerUrl: () => string;
  readonly tokenTtlSeconds: number;
  /** The claim the API server must take the username from (`sub` or `kubegate_username`). */
  readonly usernameClaim: string;
  /**
   * A JWT for `clusterId` carrying `user` (an identity the proxy authenticated: name = user
   * ID, provider groups, kubegate extras). The caller has checked that it may have one.
   */
  issue(user: UserInfo, clusterId: string): Promise<IssuedJwt>;
  /** The OpenID discovery document served at DISCOVERY_PATH. */
  discovery(): Record<string, unknown>;
  /** The JWKS served at JWKS_PATH: every key a live token can be signed with. */
  jwks(): Promise<{ keys: JWK[] }>;
}

export function createTokenIssuer(options: TokenIssuerOptions): TokenIssuer {
  const now = options.now ?? (() => new Date());
  const ring = createKeyRing({
    store: options.store,
    rotationMs: options.keyRotationSeconds * 1000,
    tokenTtlMs: options.tokenTtlSeconds * 1000,
    now,
  });

  const format = options.kubernetesUsername ?? 'id';

  return {
    issuerUrl: options.issuerUrl,
    tokenTtlSeconds: options.tokenTtlSeconds,
    usernameClaim: usernameClaimFor(format),
    async issue(user, clusterId) {
      const [key, { SignJWT }] = await Promise.all([ring.signingKey(), import('jose')]);
      const issuedAt = Math.floor(now().getTime() / 1000);
      const expiresAt = issuedAt + options.tokenTtlSeconds;
      const token = await new SignJWT({
        [CLAIM_GROUPS]: user.groups.filter((group) => !group.toLowerCase().startsWith('system:')),
        [CLAIM_LOGIN_NAME]: firstExtra(user, EXTRA_LOGIN_NAME),
        [CLAIM_PROVIDER]: firstExtra(user, EXTRA_PROVIDER),
        [CLAIM_TOKEN_NAME]: firstExtra(user, EXTRA_TOKEN_NAME),
        ...(format === 'id' ? {} : { [CLAIM_KUBERNETES_USERNAME]: kubernetesNameOf(user) }),
      })
        .setProtectedHeader({ alg: key.algorithm, kid: key.kid, typ: 'JWT' })
        .setIssuer(options.issuerUrl())
        .setSubject(user.name)
        .setAudience(clusterId)
        .setIssuedAt(issuedAt)
        .setNotBefore(issuedAt)
        .setExpirationTime(expiresAt)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, issuedAt: new Date(issuedAt * 1000), expiresAt: new Date(expiresAt * 1000) };
    },
    discovery() {
      const issuer = options.issuerUrl();
      return {
        issuer,
        jwks_uri: `${issuer}${JWKS_PATH}`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: [SIGNING_ALGORITHM],
        claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', CLAIM_GROUPS, CLAIM_LOGIN_NAME, CLAIM_PROVIDER, CLAIM_TOKEN_NAME, ...(format === 'id' ? [] : [CLAIM_KUBERNETES_USERNAME])],
      };
    },
    async jwks() {
      return { keys: await ring.publicKeys() };
    },
  };
}

/** The first value of an extra the proxy sets, '' when absent. */
function firstExtra(user: UserInfo, key: string): string {
  return user.extra[key]?.[0] ?? '';
}
