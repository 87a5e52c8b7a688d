/**
 * The Store contract: everything kubegate persists, behind one interface with two real
 * implementations (SQLite, the embedded default; PostgreSQL, for several proxy replicas).
 * One contract test suite (test/integration/store.contract.test.ts) runs against both.
 *
 * Rules every implementation keeps:
 * - Every method is atomic: a failed call leaves nothing half-written.
 * - Token and agent secrets never reach the store, only their hashes (`tokenHash`, `secretHash`).
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
  /**
   * The user's verified e-mail address (auth/email.ts: domain lower case), or null: set by
   * an admin for local users, refreshed from the provider at each login otherwise. Unique
   * among users, ignoring case.
   */
  readonly email: string | null;
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
  readonly email?: string | null;
}

export interface UserPatch {
  readonly displayName?: string;
  readonly globalRole?: GlobalRole;
  readonly enabled?: boolean;
  readonly passwordHash?: string | null;
  /** An address another user holds (in any case) is STORE_CONSTRAINT. */
  readonly email?: string | null;
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

/**
 * `direct`: the proxy dials the cluster's API server with the registered credentials.
 * `agent`: an agent in the cluster dials out to the proxy and holds a tunnel; the proxy
 * keeps no credentials for it.
 */
export type ClusterMode = 'direct' | 'agent';

export type ClusterCredentials =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'clientCertificate'; readonly certPem: string; readonly keyPem: string };

export interface AceNode {
  readonly name: string;
  /** Host or IP of a control-plane node; the context server is `https://<address>:6443`. */
  readonly address: string;
}

/**
 * How a cluster's API server authenticates kubegate users on its authorized endpoint:
 * `webhook` — kubegate's TokenReview webhook, with the cluster-scoped tokens synced into the
 * cluster; `jwt` — the API server verifies short-lived JWTs from the proxy's issuer itself
 * (src/issuer/), nothing token-related is synced.
 */
export type AceMode = 'webhook' | 'jwt';

/** What `takeLoginFailure` answered; `windowStart` (epoch ms) names the window a place is in. */
export type LoginFailureTake =
  | { readonly taken: true; readonly windowStart: number }
  /** `firstRefusal`: the window refuses for the first time (its limit just tripped). */
  | { readonly taken: false; readonly retryAfterSeconds: number; readonly firstRefusal: boolean };

export interface AceSettings {
  readonly enabled: boolean;
  /** Absent: `webhook` (what every cluster registered before the JWT mode uses). */
  readonly mode?: AceMode;
  readonly fqdn: string | null;
  /** PEM CA for the FQDN endpoint (base64 in the API, PEM here), or null. */
  readonly caPem: string | null;
  readonly nodes: readonly AceNode[];
}

/** The cluster's authorized-endpoint mode (`webhook` when not set). */
export function aceModeOf(ace: AceSettings): AceMode {
  return ace.mode ?? 'webhook';
}

export interface Cluster {
  /** DNS-label ID chosen by the admin, used in `/k8s/clusters/<id>`. */
  readonly id: string;
  readonly displayName: string;
  /** API server URL, `https://host[:port][/path]`; may be '' for an agent-mode cluster (its agent reports it). */
  readonly server: string;
  readonly mode: ClusterMode;
  /** PEM CA bundle to verify the API server, or null to use the system roots. */
  readonly caPem: string | null;
  /** Decrypted credentials of the proxy's impersonate-only identity in that cluster; null for an agent-mode cluster. */
  readonly credentials: ClusterCredentials | null;
  readonly insecureSkipTlsVerify: boolean;
  readonly ace: AceSettings;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /**
   * Set while the cluster is being deleted: nobody may use it any more, and the sync is
   * removing kubegate's objects from it; the cluster is deleted once that succeeded.
   */
  readonly deletingSince: Date | null;
  /**
   * The sync may have objects in the cluster: set before its first write there, cleared
   * after it removed them (endpoint turned off, cluster deleted).
   */
  readonly syncHoldsObjects: boolean;
}

export interface NewCluster {
  readonly id: string;
  readonly displayName?: string;
  readonly server: string;
  /** Default `direct`. */
  readonly mode?: ClusterMode;
  readonly caPem?: string | null;
  /** Required for a `direct` cluster, absent or null for an `agent` one (BAD_REQUEST otherwise). */
  readonly credentials?: ClusterCredentials | null;
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

export type AgentSecretKind = 'registration' | 'agent';

/**
 * A secret an agent presents: a one-time `registration` secret (put in the agent's
 * install manifest) that is exchanged for the agent's own long-lived `agent` credential.
 */
export interface AgentSecret {
  /** Public part, unique (`r-…` or `a-…`, chosen by the caller). */
  readonly name: string;
  readonly kind: AgentSecretKind;
  readonly clusterId: string;
  /** Versioned hash of the secret (`$3:…`); the secret itself is never stored. */
  readonly secretHash: string;
  readonly description: string;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
}

export interface NewAgentSecret {
  readonly name: string;
  readonly kind: AgentSecretKind;
  readonly clusterId: string;
  readonly secretHash: string;
  readonly description?: string;
  readonly expiresAt?: Date | null;
}

export interface AgentSecretFilter {
  readonly clusterId?: string;
  readonly kind?: AgentSecretKind;
}

/** An agent's tunnel held by one proxy replica: for routing across replicas and for the cluster status. */
export interface TunnelRecord {
  readonly clusterId: string;
  /** The agent's instance ID (its pod name). */
  readonly agentId: string;
  /** The proxy replica holding the tunnel. */
  readonly replicaId: string;
  /** Where other replicas reach that replica. */
  readonly peerUrl: string;
  readonly agentVersion: string;
  readonly kubernetesVersion: string;
  readonly connectedAt: Date;
  readonly heartbeatAt: Date;
}

export interface TunnelFilter {
  readonly clusterId?: string;
  readonly replicaId?: string;
}

/**
 * A key the token issuer signs JWTs with (src/issuer/). Keys form a sequence of
 * generations; the private half is sealed at rest. Writes are not announced: readers reload
 * the keys within a minute, and a new key is published well before it signs anything.
 */
export interface SigningKey {
  /** Key ID (`kid`), the JWK thumbprint. */
  readonly kid: string;
  /** 1, 2, …: at most one key per generation. */
  readonly generation: number;
  /** JWS algorithm, e.g. `ES256`. */
  readonly algorithm: string;
  /** The public JWK as JSON text. */
  readonly publicJwk: string;
  /** The private JWK as JSON text (decrypted; sealed at rest). */
  readonly privateJwk: string;
  readonly createdAt: Date;
}

export type NewSigningKey = Omit<SigningKey, 'createdAt'> & { readonly createdAt: Date };

/**
 * What a background job reports for every replica to serve (src/store/job-reports.ts):
 * `cluster-probe` (a cluster's reachability, clusters/status.ts) and `cluster-sync` (its
 * sync's last outcome, sync/sync.ts), subject = the cluster ID, removed with the cluster;
 * `provider-health` (providers/health.ts), subject = the provider name.
 */
export type ReportJob = 'cluster-probe' | 'cluster-sync' | 'provider-health';

/** One job's last report about one subject: a JSON object the job itself encodes and decodes. */
export interface JobReport {
  readonly job: ReportJob;
  readonly subject: string;
  readonly report: Readonly<Record<string, unknown>>;
}

/**
 * `resync` carries no key: changes may have been missed (a replica's PostgreSQL notification
 * connection was down and has come back), so every cache built from the store must be
 * dropped or reloaded.
 */
export type ChangeKind = 'user' | 'identity' | 'token' | 'cluster' | 'membership' | 'provider' | 'groups' | 'agent' | 'tunnel' | 'report' | 'resync';

/**
 * What changed; `key` is the object's ID (user ID, token name, cluster ID, provider name,
 * agent secret name; the cluster ID for a tunnel; `<job>/<subject>` for a job report).
 */
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
  /** The user holding the e-mail address `email`, compared ignoring case. */
  getUserByEmail(email: string): Promise<User | undefined>;
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
  /** Deletes the cluster with its memberships, the tokens scoped to it, its agent secrets, tunnels and job reports. */
  deleteCluster(id: string): Promise<boolean>;
  /** Sets `deletingSince` (kept when already set); undefined for an unknown cluster. */
  markClusterDeleting(id: string, at: Date): Promise<Cluster | undefined>;
  /** Sets `syncHoldsObjects`; false for an unknown cluster. Not announced (only the sync reads it). */
  setClusterSyncHoldsObjects(id: string, holds: boolean): Promise<boolean>;

  // installation settings (not announced)
  /** The value stored under `key`; stores `value` first when there is none. Atomic. */
  ensureSetting(key: string, value: string): Promise<string>;
  /**
   * Records a new sync epoch (the proxy adds one per start) and keeps only the `keep`
   * newest; answers the kept epochs, newest first.
   */
  addSyncEpoch(epoch: string, at: Date, keep: number): Promise<string[]>;
  /** The kept sync epochs, newest first. */
  listSyncEpochs(): Promise<string[]>;

  // login failure counters (not announced; shared by every process on this store)
  /**
   * Takes a place in the fixed window of `counter`/`key` (opened at the first place, closed
   * `windowSeconds` later), or refuses when it holds `limit` places already. Atomic across
   * processes: no two callers both get the last place.
   */
  takeLoginFailure(counter: string, key: string, limit: number, windowSeconds: number, now: Date): Promise<LoginFailureTake>;
  /** Gives a place back to the window that opened at `windowStart`, unless that window is gone. */
  giveBackLoginFailure(counter: string, key: string, windowStart: number): Promise<void>;
  /** Forgets the key's window; with `windowStart`, only when that window is still the current one. */
  forgetLoginFailures(counter: string, key: string, windowStart?: number): Promise<void>;

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

  // agent secrets (announced as `agent`, key = secret name)
  createAgentSecret(secret: NewAgentSecret): Promise<AgentSecret>;
  getAgentSecret(name: string): Promise<AgentSecret | undefined>;
  listAgentSecrets(filter: AgentSecretFilter): Promise<AgentSecret[]>;
  deleteAgentSecret(name: string): Promise<boolean>;
  /**
   * Atomically deletes the registration secret `registrationName` (kind `registration`) and
   * creates `credential` (kind `agent`, same cluster: a TypeError otherwise); undefined when
   * the registration secret no longer exists (used once, revoked, or pruned) or has expired
   * — so a registration token can be exchanged exactly once even under concurrency.
   */
  exchangeRegistration(registrationName: string, credential: NewAgentSecret): Promise<AgentSecret | undefined>;
  /** Records use; best effort, and does not announce a change. */
  touchAgentSecret(name: string, at: Date): Promise<void>;

  // tunnels (announced as `tunnel`, key = cluster ID)
  /**
   * Creates or replaces the tunnel (clusterId, agentId, replicaId). A put that only moves
   * `heartbeatAt` of an existing tunnel announces nothing: heartbeats come every few seconds.
   */
  putTunnel(tunnel: Omit<TunnelRecord, never>): Promise<TunnelRecord>;
  deleteTunnel(clusterId: string, agentId: string, replicaId: string): Promise<boolean>;
  listTunnels(filter?: TunnelFilter): Promise<TunnelRecord[]>;
  /** Deletes tunnels whose heartbeat is older than `before` (a replica that died); returns them. */
  deleteStaleTunnels(before: Date): Promise<TunnelRecord[]>;

  // issuer signing keys (not announced, see SigningKey)
  /** Creates the key; undefined when a key of that generation already exists (another replica rotated first). */
  createSigningKey(key: NewSigningKey): Promise<SigningKey | undefined>;
  /** Every key, oldest generation first. */
  listSigningKeys(): Promise<SigningKey[]>;
  deleteSigningKey(kid: string): Promise<boolean>;

  // background job reports (announced as `report`, key `<job>/<subject>`)
  /**
   * Creates or replaces the job's report about the subject (a JSON object of at most 16 KiB);
   * a cluster job's report about a cluster the store does not have is not written.
   */
  putJobReport(job: ReportJob, subject: string, report: Readonly<Record<string, unknown>>): Promise<void>;
  getJobReport(job: ReportJob, subject: string): Promise<JobReport | undefined>;
  /** Every report, by job and subject. */
  listJobReports(): Promise<JobReport[]>;

  // the background job lease (not announced; see src/store/lease.ts)
  /**
   * Takes the lease `name` for `holder` for `durationMs` from now by the database's clock —
   * when it is free, expired, or `holder`'s already (a renewal) — in one atomic statement.
   * Answers the holder afterwards: `holder` itself when taken or renewed, else the other one.
   */
  takeLease(name: string, holder: string, durationMs: number): Promise<string>;
  /** Gives the lease up at once (a graceful stop), if `holder` holds it; false otherwise. */
  releaseLease(name: string, holder: string): Promise<boolean>;

  // lifecycle
  /**
   * Whether anything is stored sealed with the secret box (cluster credentials, provider
   * settings): a missing key file must not be replaced by a new key then (it could open none of it).
   */
  hasSealedSecrets(): Promise<boolean>;
  /** Resolves when the database answers; rejects with STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /** Registers a change listener; returns the function that removes it. */
  subscribe(listener: ChangeListener): () => void;
  close(): Promise<void>;
}
