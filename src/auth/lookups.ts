/**
 * The few reads (and the one write) authentication needs, declared here so that the
 * authentication library knows nothing of the store: a token by name, a user, a user's
 * provider groups, an identity link, and recording a token's use. The store satisfies this
 * interface as it is; tests can hand in a map.
 *
 * Only the fields authentication reads are named: a record with more fields fits.
 */

export interface TokenRecord {
  /** Public part of the token (before the colon). */
  readonly name: string;
  /** Versioned hash of the secret (src/tokens/hash.ts). */
  readonly tokenHash: string;
  readonly userId: string;
  /** The provider the user logged in with when the token was issued. */
  readonly provider: string;
  /** The cluster a cluster-scoped token is limited to, or null. */
  readonly clusterId: string | null;
  readonly expiresAt: Date | null;
}

export interface UserRecord {
  /** Stable user ID: the Kubernetes username. */
  readonly id: string;
  /** The login name, carried as an extra. */
  readonly username: string;
  readonly enabled: boolean;
  /** The verified e-mail address, or null/absent (the `email` user name, principal.ts). */
  readonly email?: string | null;
}

export interface GroupsRecord {
  /** Already provider-prefixed. */
  readonly groups: readonly string[];
}

export interface IdentityLinkRecord {
  readonly userId: string;
}

export interface AuthLookups {
  getToken(name: string): Promise<TokenRecord | undefined>;
  getUser(id: string): Promise<UserRecord | undefined>;
  getUserGroups(userId: string, provider: string): Promise<GroupsRecord | undefined>;
  /** The user linked to `providerUserId` at `provider` (an earlier web login made the link). */
  findIdentity(provider: string, providerUserId: string): Promise<IdentityLinkRecord | undefined>;
  /** Records that token `name` was used at `at` (best effort, in the background). */
  touchToken(name: string, at: Date): Promise<void>;
}

/** What kubegate's own tokens are checked against. */
export type TokenLookups = Pick<AuthLookups, 'getToken' | 'getUser' | 'getUserGroups' | 'touchToken'>;

/** What a bearer ID token is mapped to a user with. */
export type IdentityLookups = Pick<AuthLookups, 'findIdentity' | 'getUser' | 'getUserGroups'>;
