/**
 * The Store contract: everything kubegate persists, behind one interface with two real
 * implementations (SQLite, the embedded default; PostgreSQL, for several proxy replicas).
 * One contract test suite (test/integration/store.contract.test.ts) runs against both.
 *
 * Rules every implementation keeps:
 * - Every method is atomic: a failed call leaves nothing half-written.
 * - Token secrets never reach the store, only their hashes (`tokenHash`).
 * - Cluster credentials and provider configs are encrypted at rest with the SecretBox the
 *   store is given; callers see plaintext.
 * - Objects returned are fresh copies; mutating one changes nothing stored.
 * - A missing object is `undefined` from get*, `false` from delete*; a uniqueness clash is
 *   a KubegateError `STORE_CONSTRAINT`; an unreachable database is `STORE_UNAVAILABLE`.
 * - Every committed change is announced to `subscribe` listeners, in this process and (for
 *   PostgreSQL) in every other process sharing the database, so caches on all replicas are
 *   invalidated on revocation, disable and membership change.
 */

export type GlobalRole = 'admin' | 'user';
export type TokenKind = 'login' | 'api' | 'kubeconfig';
export type SubjectKind = 'User' | 'Group';
export type ClusterRole = 'owner' | 'member' | 'viewer';

export interface User {
  /** Stable ID, `u-` + 12 base32 characters; the Kubernetes username. */
  readonly id: string;
  /** Login name shown to people (unique among local users). */
  readonly username: string;
  readonly displayName: string;
  readonly globalRole: GlobalRole;
  readonly enabled: boolean;
  /** scrypt hash of a local password (`$scrypt$…`), or null for provider-only users. */
  readonly passwordHash: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewUser {
  readonly id: string;
  readonly username: string;
  readonly displayName?: string;
  readonly globalRole?: GlobalRole;
  readonly enabled?: boolean;
  readonly passwordHash?: string | null;
}

export interface UserPatch {
  readonly displayName?: string;
  readonly globalRole?: GlobalRole;
  readonly enabled?: boolean;
  readonly passwordHash?: string | null;
}

/** A link from a provider's stable user ID (LDAP DN, GitHub numeric ID, OIDC `sub`) to a user. */
export interface Identity {
  readonly provider: string;
  readonly providerUserId: string;
  readonly userId: string;
  /** The login name at the provider when last seen. */
  readonly loginName: string;
  readonly createdAt: Date;
}

export interface Token {
  /** Public part of the token, `t-` + random; unique. */
  readonly name: string;
  /** Versioned hash of the secret (`$3:1:…`). The secret itself is never stored. */
  readonly tokenHash: string;
  readonly userId: string;
  readonly kind: TokenKind;
  /** Provider the user logged in with when the token was issued (e.g. `local`, `corp-ldap`). */
  readonly provider: string;
  /** Cluster the token is limited to, or null for a global token. */
  readonly clusterId: string | null;
  readonly description: string;
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly createdAt: Date;
}

export interface NewToken {
  readonly name: string;
  readonly tokenHash: string;
  readonly userId: string;
  readonly kind: TokenKind;
  readonly provider: string;
  readonly clusterId?: string | null;
  readonly description?: string;
  readonly expiresAt?: Date | null;
}

export interface TokenFilter {
  readonly userId?: string;
  readonly clusterId?: string;
  readonly provider?: string;
}

export type ClusterCredentials =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'clientCertificate'; readonly certPem: string; readonly keyPem: string };

export interface AceNode {
  readonly name: string;
  /** Host or IP of a control-plane node; the context server is `https://<address>:6443`. */
  readonly address: string;
}

export interface AceSettings {
  readonly enabled: boolean;
  readonly fqdn: string | null;
  /** PEM CA for the FQDN endpoint (base64 in the API, PEM here), or null. */
  readonly caPem: string | null;
  readonly nodes: readonly AceNode[];
}

export interface Cluster {
  /** DNS-label ID chosen by the admin, used in `/k8s/clusters/<id>`. */
  readonly id: string;
  readonly displayName: string;
  /** API server URL, `https://host[:port][/path]`. */
  readonly server: string;
  /** PEM CA bundle to verify the API server, or null to use the system roots. */
  readonly caPem: string | null;
  /** Decrypted credentials of the proxy's impersonate-only identity in that cluster. */
  readonly credentials: ClusterCredentials;
  readonly insecureSkipTlsVerify: boolean;
  readonly ace: AceSettings;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewCluster {
  readonly id: string;
  readonly displayName?: string;
  readonly server: string;
  readonly caPem?: string | null;
  readonly credentials: ClusterCredentials;
  readonly insecureSkipTlsVerify?: boolean;
  readonly ace?: AceSettings;
}

export type ClusterPatch = Partial<Omit<NewCluster, 'id'>>;

export interface Membership {
  readonly clusterId: string;
  readonly subjectKind: SubjectKind;
  /** A user ID for `User`; the group exactly as it appears in identities for `Group`. */
  readonly subjectName: string;
  readonly role: ClusterRole;
  readonly createdAt: Date;
}

export interface NewMembership {
  readonly clusterId: string;
  readonly subjectKind: SubjectKind;
  readonly subjectName: string;
  readonly role: ClusterRole;
}

export interface ProviderConfig {
  /** Provider name, also the group prefix: `local`, `corp-ldap`, `github`, `okta`. */
  readonly name: string;
  /** `local` | `ldap` | `activedirectory` | `github` | `oidc`. */
  readonly type: string;
  readonly enabled: boolean;
  /** Type-specific settings, secrets included; encrypted at rest. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly updatedAt: Date;
}

export interface NewProviderConfig {
  readonly name: string;
  readonly type: string;
  readonly enabled: boolean;
  readonly settings: Readonly<Record<string, unknown>>;
}

/** Provider groups cached per user and provider, refreshed in the background. */
export interface UserGroups {
  readonly userId: string;
  readonly provider: string;
  /** Already provider-prefixed, e.g. `ldap:cn=ops,ou=groups,dc=example,dc=org`. */
  readonly groups: readonly string[];
  readonly refreshedAt: Date;
}

/**
 * `resync` carries no key: changes may have been missed (a replica's PostgreSQL notification
 * connection was down and has come back), so every cache built from the store must be
 * dropped or reloaded.
 */
export type ChangeKind = 'user' | 'identity' | 'token' | 'cluster' | 'membership' | 'provider' | 'groups' | 'resync';

/** What changed; `key` is the object's ID (user ID, token name, cluster ID, provider name). */
export interface StoreChange {
  readonly kind: ChangeKind;
  readonly key: string;
}

export type ChangeListener = (change: StoreChange) => void;

export interface Store {
  /** `sqlite` or `postgres`, for logs and `/readyz`. */
  readonly kind: 'sqlite' | 'postgres';

  // users
  createUser(user: NewUser): Promise<User>;
  getUser(id: string): Promise<User | undefined>;
  getUserByUsername(username: string): Promise<User | undefined>;
  listUsers(): Promise<User[]>;
  updateUser(id: string, patch: UserPatch): Promise<User | undefined>;
  /** Deletes the user with its identities, tokens, group cache and User memberships. */
  deleteUser(id: string): Promise<boolean>;
  countUsers(): Promise<number>;

  // identities
  linkIdentity(identity: Omit<Identity, 'createdAt'>): Promise<Identity>;
  findIdentity(provider: string, providerUserId: string): Promise<Identity | undefined>;
  listIdentities(userId: string): Promise<Identity[]>;

  // tokens
  createToken(token: NewToken): Promise<Token>;
  getToken(name: string): Promise<Token | undefined>;
  listTokens(filter?: TokenFilter): Promise<Token[]>;
  deleteToken(name: string): Promise<boolean>;
  /** Deletes every token matching the filter; returns the names deleted. */
  deleteTokens(filter: TokenFilter): Promise<string[]>;
  /** Deletes tokens whose expiry is at or before `now`; returns the names deleted. */
  deleteExpiredTokens(now: Date): Promise<string[]>;
  /** Records use; best effort, and does not announce a change. */
  touchToken(name: string, at: Date): Promise<void>;

  // clusters
  createCluster(cluster: NewCluster): Promise<Cluster>;
  getCluster(id: string): Promise<Cluster | undefined>;
  listClusters(): Promise<Cluster[]>;
  updateCluster(id: string, patch: ClusterPatch): Promise<Cluster | undefined>;
  /** Deletes the cluster with its memberships and the tokens scoped to it. */
  deleteCluster(id: string): Promise<boolean>;

  // memberships
  /** Creates or replaces the role of one subject in one cluster. */
  putMembership(membership: NewMembership): Promise<Membership>;
  listMemberships(clusterId: string): Promise<Membership[]>;
  /** Every membership of the given subjects, across all clusters. */
  listMembershipsOf(subjects: { readonly users: readonly string[]; readonly groups: readonly string[] }): Promise<Membership[]>;
  deleteMembership(clusterId: string, subjectKind: SubjectKind, subjectName: string): Promise<boolean>;

  // identity provider configurations
  putProviderConfig(config: NewProviderConfig): Promise<ProviderConfig>;
  getProviderConfig(name: string): Promise<ProviderConfig | undefined>;
  listProviderConfigs(): Promise<ProviderConfig[]>;
  deleteProviderConfig(name: string): Promise<boolean>;

  // group cache
  putUserGroups(groups: Omit<UserGroups, never>): Promise<void>;
  getUserGroups(userId: string, provider: string): Promise<UserGroups | undefined>;

  // lifecycle
  /** Resolves when the database answers; rejects with STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /** Registers a change listener; returns the function that removes it. */
  subscribe(listener: ChangeListener): () => void;
  close(): Promise<void>;
}
