/**
 * The identity provider contract for password logins (local users now; LDAP and Active
 * Directory later). A provider only answers "who is this?"; the login route turns the answer
 * into a kubegate user and a token.
 *
 * Three outcomes, as for token authenticators (src/auth/authenticator.ts):
 * - `authenticated`: the credentials are good; `identity` describes the person at the
 *   provider. `groups` are already provider-prefixed (providerGroup), so no provider can
 *   produce a `system:` group or one that looks like another provider's.
 * - `unauthenticated`: wrong username or password, or no such user. Callers cannot tell
 *   these apart, and neither can a stopwatch: providers do the same work either way.
 * - `error`: the provider could not decide (directory down, corrupt stored hash). Never
 *   reported as a wrong password, and never counted as a failed login.
 */
import type { KubegateError } from '../errors.js';

export interface ProviderIdentity {
  /** The stable ID at the provider (local: the user ID; LDAP: the DN; …). */
  readonly providerUserId: string;
  /** The name the person logs in with at the provider. */
  readonly loginName: string;
  readonly displayName: string;
  /** Provider-prefixed groups, e.g. `ldap:cn=ops,ou=groups,dc=example,dc=org`. */
  readonly groups: readonly string[];
  /**
   * Set only by providers whose accounts ARE kubegate users (the local provider): the login
   * uses this user directly and links no identity.
   */
  readonly userId?: string;
}

export type ProviderLoginResult =
  | { readonly outcome: 'authenticated'; readonly identity: ProviderIdentity }
  | { readonly outcome: 'unauthenticated' }
  | { readonly outcome: 'error'; readonly error: KubegateError };

export interface PasswordProvider {
  /** The configured name, also the group prefix and the `provider` of issued tokens. */
  readonly name: string;
  /** `local`, `ldap`, `activedirectory`, … */
  readonly type: string;
  authenticatePassword(username: string, password: string): Promise<ProviderLoginResult>;
}

/** The local provider also owns the password policy for the passwords kubegate stores. */
export interface LocalProvider extends PasswordProvider {
  readonly type: 'local';
  /** Fewest characters (Unicode code points after NFC) a new local password may have. */
  readonly minPasswordLength: number;
  /**
   * Checks `password` against the policy and hashes it. Throws BAD_REQUEST naming `field`
   * when it is too short or too long.
   */
  hashNewPassword(password: string, field: string): Promise<string>;
}

export interface ProviderRegistry {
  /** The enabled provider of that name, or undefined. */
  get(name: string): PasswordProvider | undefined;
  /** Every enabled provider, in configuration order. */
  list(): readonly PasswordProvider[];
  /** The local provider, always present (enabled for logins or not): the password policy. */
  readonly local: LocalProvider;
}
