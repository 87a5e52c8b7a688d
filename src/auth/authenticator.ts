/**
 * The authenticator contract shared by the proxy and the webhook.
 *
 * A token authenticator answers with exactly one of three outcomes:
 *
 * - `authenticated`: the token is good; `user` is the identity to use. `token` describes
 *   the credential (name, expiry, cluster scope) so that caches never outlive it and the
 *   proxy can refuse a cluster-scoped token on another cluster.
 * - `unauthenticated`: the authenticator is sure the token is not good (unknown, wrong
 *   secret, expired, disabled, or simply not a token it understands). `code` says why, for
 *   logs and metrics; clients only ever see a generic 401.
 * - `error`: the authenticator could not decide (store or provider unreachable, corrupt
 *   stored hash). This is never "unauthenticated": a provider outage must not look like a
 *   wrong password, and it must not be cached as a rejection.
 *
 * Implementations do not throw for any of these; `union` and `cached` still guard against
 * a throw by turning it into `error`.
 */
import type { ErrorCode, KubegateError } from '../errors.js';
import type { UserInfo } from './user.js';

export interface TokenFacts {
  /** The token's name (the part before the colon), used for revocation and audit. */
  readonly name: string;
  /** When the token stops being valid, or null if it never expires. */
  readonly expiresAt: Date | null;
  /** The cluster a cluster-scoped token is limited to, or null for a global token. */
  readonly clusterId: string | null;
}

export interface Authenticated {
  readonly outcome: 'authenticated';
  readonly user: UserInfo;
  readonly token: TokenFacts;
}

export interface Unauthenticated {
  readonly outcome: 'unauthenticated';
  readonly code: ErrorCode;
}

export interface Undecided {
  readonly outcome: 'error';
  readonly error: KubegateError;
}

export type AuthResult = Authenticated | Unauthenticated | Undecided;

export interface AuthenticateOptions {
  /** Audiences the caller requires (TokenReview `spec.audiences`); empty means any. */
  readonly audiences?: readonly string[];
}

export interface TokenAuthenticator {
  authenticateToken(token: string, options?: AuthenticateOptions): Promise<AuthResult>;
}

export function authenticated(user: UserInfo, token: TokenFacts): Authenticated {
  return { outcome: 'authenticated', user, token };
}

export function unauthenticated(code: ErrorCode): Unauthenticated {
  return { outcome: 'unauthenticated', code };
}

export function undecided(error: KubegateError): Undecided {
  return { outcome: 'error', error };
}
