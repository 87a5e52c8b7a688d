/**
 * What identity providers answer: the person at the provider, and the outcome of a login or
 * of a refresh. The contracts that use these (provider.ts, web-login.ts) and the access
 * policy (access.ts) import them from here; see provider.ts for what each outcome means.
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
   * The person's e-mail address as the provider vouches for it (OIDC: `email` with
   * `email_verified`; LDAP: the directory's attribute; GitHub: the primary verified one),
   * normalised (auth/email.ts); absent when there is none that kubegate accepts. A login
   * records it on the user (proxy/api/login.ts).
   */
  readonly email?: string;
  /**
   * The provider vouched for an address kubegate does not accept (auth/email.ts: a non-ASCII
   * one, a quoted local part…): none is recorded, and the login logs a warning (never the
   * address) instead of failing.
   */
  readonly emailRefused?: true;
  /**
   * Set only by providers whose accounts ARE kubegate users (the local provider): the login
   * uses this user directly and links no identity.
   */
  readonly userId?: string;
}

export type ProviderLoginResult =
  | { readonly outcome: 'authenticated'; readonly identity: ProviderIdentity }
  | { readonly outcome: 'unauthenticated' }
  | { readonly outcome: 'disabled' }
  | { readonly outcome: 'error'; readonly error: KubegateError };

/**
 * The current state of a known person at the provider: `found` (with `enabled` false for an
 * account the directory disables), `gone` (deleted, moved out of the search base, no longer
 * matching the filters), or `error` (could not decide: keep what is known, ask again later).
 */
export type ProviderRefreshResult =
  | { readonly outcome: 'found'; readonly identity: ProviderIdentity; readonly enabled: boolean }
  | { readonly outcome: 'gone' }
  | { readonly outcome: 'error'; readonly error: KubegateError };
