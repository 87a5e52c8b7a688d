/**
 * The claims of the JWTs the proxy issues for the `jwt` authorized-endpoint mode, named
 * once: the issuer writes them (issuer.ts) and the API server configuration maps them
 * (authentication-config.ts), so the two cannot drift apart.
 *
 * | claim | value | Kubernetes identity |
 * |---|---|---|
 * | `iss` | the proxy's public URL | which authenticator verifies the token |
 * | `aud` | the cluster ID | the token is for that one cluster |
 * | `sub` | the kubegate user ID (`u-…`) | uid, and the username with `identity.kubernetesUsername: id` |
 * | `kubegate_username` | the Kubernetes user name (`ldap:alice`, `alice@example.org`), only when not `id` | username (no prefix) |
 * | `groups` | provider groups (`ldap:cn=ops,…`), never a `system:` one | groups (no prefix); the API server adds `system:authenticated` |
 * | `preferred_username` | the login name | extra `kubegate.io/login-name` |
 * | `kubegate_provider` | the provider of the login | extra `kubegate.io/provider` |
 * | `kubegate_token` | the name of the kubegate token that obtained the JWT | extra `kubegate.io/token-name` |
 * | `iat`, `nbf`, `exp`, `jti` | issue time, not-before (= iat), expiry, random ID | |
 */
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME } from '../auth/user.js';
import type { KubernetesUsernameFormat } from '../config/identity.js';

/** The stable user ID: always the uid, and the username when users are named by ID. */
export const CLAIM_USER_ID = 'sub';
/** The Kubernetes user name when the installation names users other than by ID (auth/principal.ts). */
export const CLAIM_KUBERNETES_USERNAME = 'kubegate_username';

/** The claim the API server takes the username from, for `identity.kubernetesUsername`. */
export function usernameClaimFor(format: KubernetesUsernameFormat): string {
  return format === 'id' ? CLAIM_USER_ID : CLAIM_KUBERNETES_USERNAME;
}
export const CLAIM_GROUPS = 'groups';
export const CLAIM_LOGIN_NAME = 'preferred_username';
export const CLAIM_PROVIDER = 'kubegate_provider';
export const CLAIM_TOKEN_NAME = 'kubegate_token';

/** The extras the API server derives from claims: the same keys the proxy impersonates. */
export const EXTRA_CLAIMS: readonly { readonly key: string; readonly claim: string }[] = [
  { key: EXTRA_LOGIN_NAME, claim: CLAIM_LOGIN_NAME },
  { key: EXTRA_PROVIDER, claim: CLAIM_PROVIDER },
  { key: EXTRA_TOKEN_NAME, claim: CLAIM_TOKEN_NAME },
];

/** The one JWS algorithm the issuer signs with (classic `--oidc-signing-algs` defaults to RS256, so it is named there). */
export const SIGNING_ALGORITHM = 'ES256';
