/**
 * The identity provider contract for password logins (local users, LDAP, Active Directory;
 * OIDC and GitHub log in at their own site: web-login.ts). A provider only answers "who is
 * this?"; the login route turns the answer into a kubegate user and a token. The answers'
 * types are in identity.ts, which every provider module can import without a cycle.
 *
 * Three outcomes, as for token authenticators (src/auth/authenticator.ts):
 * - `authenticated`: the credentials are good; `identity` describes the person at the
 *   provider. `groups` are already provider-prefixed (providerGroup), so no provider can
 *   produce a `system:` group or one that looks like another provider's.
 * - `unauthenticated`: wrong username or password, or no such user. Callers cannot tell
 *   these apart, and neither can a stopwatch: providers do the same work either way.
 * - `disabled`: the password is right, but the directory marks the account disabled (AD's
 *   `userAccountControl` bit): the login answers 403 USER_DISABLED. Only ever reported after
 *   the password was proven, so it tells a guesser nothing.
 * - `error`: the provider could not decide (directory down, corrupt stored hash). Never
 *   reported as a wrong password, and never counted as a failed login.
 *
 * Providers backed by a directory also answer `refreshIdentity` (the background group
 * refresh, src/providers/group-refresh.ts) and may restrict who logs in (`access`,
 * src/providers/access.ts).
 */
import type { AccessPolicy } from './access.js';
import type { ProviderLoginResult, ProviderRefreshResult } from './identity.js';
import type { WebLoginProvider } from './web-login.js';

export type { ProviderIdentity, ProviderLoginResult, ProviderRefreshResult } from './identity.js';

export interface PasswordProvider {
  /** The configured name, also the group prefix and the `provider` of issued tokens. */
  readonly name: string;
  /** `local`, `ldap`, `activedirectory`, … */
  readonly type: string;
  authenticatePassword(username: string, password: string): Promise<ProviderLoginResult>;
  /** Who may log in besides having a correct password; absent means unrestricted. */
  readonly access?: AccessPolicy;
  /** Looks a person up again by `providerUserId` (no password); absent when the provider cannot. */
  refreshIdentity?(providerUserId: string): Promise<ProviderRefreshResult>;
  /**
   * The canonical spelling of one of this provider's group names (without the provider
   * prefix), so that a membership written by hand matches the groups logins produce; absent
   * when names are already canonical. LDAP: `CN=Ops, OU=Groups,…` → `cn=ops,ou=groups,…`.
   */
  canonicalGroupName?(group: string): string;
  /**
   * Whether the provider can serve logins now (for the background health check, health.ts):
   * resolves when it can, throws with the reason when it cannot. Absent: nothing to check
   * (local users live in the store).
   */
  checkHealth?(): Promise<void>;
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
  /** The enabled browser/device-login provider (OIDC, GitHub) of that name; absent: none. */
  webLogin?(name: string): WebLoginProvider | undefined;
  /** Every enabled browser/device-login provider, in configuration order; absent: none. */
  listWebLogin?(): readonly WebLoginProvider[];
}
