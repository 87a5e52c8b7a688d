/**
 * The one Store over SQL: every query and every row mapping is written here once, and a
 * small dialect seam (`SqlDialect`, implemented by sqlite.ts and postgres.ts) says how to
 * run it.
 *
 * Design note: why a seam of our own and not a query builder (Kysely has both dialects).
 * The two databases already agree on almost everything these queries use — `INSERT … ON
 * CONFLICT … DO UPDATE … excluded.`, `RETURNING`, `count(*)` — so plain SQL strings can be
 * shared as they are. What differs is small and fixed: placeholders (`?` here, turned into
 * `$n` by the PostgreSQL dialect), parameter encoding (Date, boolean and string arrays:
 * SQLite takes integers and JSON text), "one of these strings" (`json_each` vs `ANY`),
 * row locks (`FOR UPDATE`, which SQLite neither has nor needs: its writes are serialized),
 * how a transaction runs (SQLite must never wait on a lock on the event loop, see
 * sqlite.ts) and how its changes reach other processes (PostgreSQL NOTIFY inside the
 * transaction). A query builder would replace readable SQL by a typed mirror of the
 * schema to keep in step with the migrations, a dependency on every hot query, and still
 * need its own driver for SQLite's non-blocking writes. Here a schema change touches the
 * migration (migrations.ts, per dialect), the row type and mapper (records.ts), and the
 * query below.
 *
 * Contract reminders (store.ts): checks run before any SQL, so a bad call writes nothing;
 * multi-step writes run in one transaction and lock the rows they rewrite; changes are
 * announced after commit and before the call resolves.
 */
import { KubegateError } from '../errors.js';
import type { ChangeListeners } from './changes.js';
import {
  AGENT_SECRET_COLUMNS,
  CLUSTER_COLUMNS,
  IDENTITY_COLUMNS,
  JOB_REPORT_COLUMNS,
  MEMBERSHIP_COLUMNS,
  PROVIDER_CONFIG_COLUMNS,
  SIGNING_KEY_COLUMNS,
  TOKEN_COLUMNS,
  TUNNEL_COLUMNS,
  USER_COLUMNS,
  USER_GROUPS_COLUMNS,
  aceJson,
  agentSecretFromRow,
  change,
  checkAgentSecretFilter,
  checkDate,
  checkIdentity,
  checkJobReport,
  checkLease,
  checkNewAgentSecret,
  checkNewCluster,
  checkNewMembership,
  checkNewProviderConfig,
  checkNewSigningKey,
  checkNewToken,
  checkNewUser,
  checkReportJob,
  checkString,
  checkSubjects,
  checkTokenFilter,
  checkTunnel,
  checkTunnelFilter,
  checkUserGroups,
  clusterFromRow,
  distinctChanges,
  identityFromRow,
  jobReportFromRow,
  membershipFromRow,
  patchCluster,
  patchUser,
  providerConfigFromRow,
  sealCredentials,
  sealSettings,
  signingKeyFromRow,
  tokenFromRow,
  tunnelChanged,
  tunnelFromRow,
  userFromRow,
  userGroupsFromRow,
  type AgentSecretRow,
  type ClusterRow,
  type IdentityRow,
  type JobReportRow,
  type MembershipRow,
  type ProviderConfigRow,
  type SigningKeyRow,
  type TokenRow,
  type TunnelRow,
  type UserGroupsRow,
  type UserRow,
} from './records.js';
import type { SecretBox } from './secret-box.js';
import type {
  AgentSecret,
  AgentSecretFilter,
  ChangeListener,
  Cluster,
  ClusterPatch,
  Identity,
  JobReport,
  LoginFailureTake,
  Membership,
  NewAgentSecret,
  NewCluster,
  NewMembership,
  NewProviderConfig,
  NewSigningKey,
  NewToken,
  NewUser,
  ProviderConfig,
  ReportJob,
  SigningKey,
  Store,
  StoreChange,
  SubjectKind,
  Token,
  TokenFilter,
  TunnelFilter,
  TunnelRecord,
  User,
  UserGroups,
  UserPatch,
} from './store.js';

/** A statement parameter; each dialect encodes these for its driver. */
export type SqlParam = string | number | boolean | Date | null | readonly string[];

/** Runs one statement, written with `?` placeholders, and answers its rows. */
export interface SqlRunner {
  all<R>(sql: string, params: readonly SqlParam[]): Promise<R[]>;
}

/** What a write transaction produced: its result and the changes to announce. */
export interface Written<T> {
  readonly result: T;
  readonly changes: readonly StoreChange[];
}

/** How one database runs the shared queries. Errors come out as store errors (store.ts). */
export interface SqlDialect extends SqlRunner {
  readonly kind: Store['kind'];
  /** Appended to a SELECT of a row the transaction will rewrite: ` FOR UPDATE`, or '' where writes are serialized. */
  readonly lockRow: string;
  /** A condition: `column` equals one of the strings of one array parameter. */
  oneOf(column: string): string;
  /**
   * The database's time now plus one parameter (milliseconds), as the dialect stores times:
   * leases are timed by the database's clock, never by the replicas' (which may disagree).
   */
  nowPlus(): string;
  /** The database's time now, as the dialect stores times. */
  readonly now: string;
  /**
   * Runs `work` in one transaction. Its (distinct) changes are published to other processes
   * only if it commits; local listeners are told by the store after this resolves.
   */
  transaction<T>(work: (tx: SqlRunner) => Promise<Written<T>>): Promise<Written<T>>;
  /** Resolves when the database answers; STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface SqlStoreOptions {
  readonly dialect: SqlDialect;
  readonly secretBox: SecretBox;
  /** Local delivery; a PostgreSQL store also feeds other replicas' changes into it. */
  readonly listeners: ChangeListeners;
  /** Receives errors no caller can be told about (a failed touchToken). */
  readonly onError: (error: unknown) => void;
}

export function createSqlStore(options: SqlStoreOptions): Store {
  return new SqlStore(options);
}

class SqlStore implements Store {
  readonly kind: Store['kind'];
  readonly #db: SqlDialect;
  readonly #secretBox: SecretBox;
  readonly #listeners: ChangeListeners;
  readonly #onError: (error: unknown) => void;
  #closed = false;
  /** When each login failure counter last deleted its closed windows (epoch ms). */
  readonly #loginFailuresPrunedAt = new Map<string, number>();

  constructor(options: SqlStoreOptions) {
    this.#db = options.dialect;
    this.kind = options.dialect.kind;
    this.#secretBox = options.secretBox;
    this.#listeners = options.listeners;
    this.#onError = options.onError;
  }

  // --- users -------------------------------------------------------------------------------

  async createUser(user: NewUser): Promise<User> {
    const values = checkNewUser(user);
    const now = new Date();
    return this.#write(async (tx) => {
      const row = await one<UserRow>(
        tx,
        `INSERT INTO users (id, username, display_name, global_role, enabled, password_hash, email, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${USER_COLUMNS}`,
        [values.id, values.username, values.displayName, values.globalRole, values.enabled, values.passwordHash, values.email, now, now],
      );
      return { result: userFromRow(row!), changes: [change('user', values.id)] };
    });
  }

  async getUser(id: string): Promise<User | undefined> {
    const row = await this.#one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`, [checkString(id, 'id')]);
    return row && userFromRow(row);
  }

  async getUserByUsername(username: string): Promise<User | undefined> {
    const row = await this.#one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE username = ?`, [checkString(username, 'username')]);
    return row && userFromRow(row);
  }

  async getUserByEmail(email: string): Promise<User | undefined> {
    // lower() of both sides: the unique index is on lower(email) (migration 6), ASCII only in both dialects.
    const row = await this.#one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE lower(email) = lower(?)`, [checkString(email, 'email')]);
    return row && userFromRow(row);
  }

  async listUsers(): Promise<User[]> {
    return (await this.#all<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY username`, [])).map(userFromRow);
  }

  async updateUser(id: string, patch: UserPatch): Promise<User | undefined> {
    checkString(id, 'id');
    return this.#write(async (tx) => {
      const current = await one<UserRow>(tx, `SELECT ${USER_COLUMNS} FROM users WHERE id = ?${this.#db.lockRow}`, [id]);
      if (current === undefined) return { result: undefined, changes: [] };
      const values = patchUser(userFromRow(current), patch);
      const row = await one<UserRow>(
        tx,
        `UPDATE users SET display_name = ?, global_role = ?, enabled = ?, password_hash = ?, email = ?, updated_at = ?
         WHERE id = ? RETURNING ${USER_COLUMNS}`,
        [values.displayName, values.globalRole, values.enabled, values.passwordHash, values.email, new Date(), id],
      );
      return { result: userFromRow(row!), changes: [change('user', id)] };
    });
  }

  async deleteUser(id: string): Promise<boolean> {
    checkString(id, 'id');
    return this.#write(async (tx) => {
      if ((await one(tx, `SELECT id FROM users WHERE id = ?${this.#db.lockRow}`, [id])) === undefined) return { result: false, changes: [] };
      const tokens = await tx.all<{ name: string }>('DELETE FROM tokens WHERE user_id = ? RETURNING name', [id]);
      const memberships = await tx.all<{ cluster_id: string }>(
        `DELETE FROM memberships WHERE subject_kind = 'User' AND subject_name = ? RETURNING cluster_id`,
        [id],
      );
      const identities = await tx.all('DELETE FROM identities WHERE user_id = ? RETURNING provider', [id]);
      const groups = await tx.all('DELETE FROM user_groups WHERE user_id = ? RETURNING provider', [id]);
      await tx.all('DELETE FROM users WHERE id = ? RETURNING id', [id]);
      const changes: StoreChange[] = [change('user', id)];
      if (identities.length > 0) changes.push(change('identity', id));
      if (groups.length > 0) changes.push(change('groups', id));
      for (const token of tokens) changes.push(change('token', token.name));
      for (const membership of memberships) changes.push(change('membership', membership.cluster_id));
      return { result: true, changes };
    });
  }

  async countUsers(): Promise<number> {
    const row = await this.#one<{ count: number | string }>('SELECT count(*) AS count FROM users', []);
    return Number(row!.count);
  }

  // --- identities --------------------------------------------------------------------------

  async linkIdentity(identity: Omit<Identity, 'createdAt'>): Promise<Identity> {
    const values = checkIdentity(identity);
    return this.#write(async (tx) => {
      // Re-linking to the same user refreshes the login name; linking to another user is refused.
      const row = await one<IdentityRow>(
        tx,
        `INSERT INTO identities (provider, provider_user_id, user_id, login_name, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (provider, provider_user_id) DO UPDATE SET login_name = excluded.login_name
         WHERE identities.user_id = excluded.user_id
         RETURNING ${IDENTITY_COLUMNS}`,
        [values.provider, values.providerUserId, values.userId, values.loginName, new Date()],
      );
      if (row === undefined) throw new KubegateError('STORE_CONSTRAINT', 'the identity is already linked to another user');
      return { result: identityFromRow(row), changes: [change('identity', values.userId)] };
    });
  }

  async findIdentity(provider: string, providerUserId: string): Promise<Identity | undefined> {
    const row = await this.#one<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities WHERE provider = ? AND provider_user_id = ?`, [
      checkString(provider, 'provider'),
      checkString(providerUserId, 'providerUserId'),
    ]);
    return row && identityFromRow(row);
  }

  async listIdentities(userId: string): Promise<Identity[]> {
    const rows = await this.#all<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities WHERE user_id = ? ORDER BY provider, provider_user_id`, [
      checkString(userId, 'userId'),
    ]);
    return rows.map(identityFromRow);
  }

  // --- tokens ------------------------------------------------------------------------------

  async createToken(token: NewToken): Promise<Token> {
    const values = checkNewToken(token);
    return this.#write(async (tx) => {
      const row = await one<TokenRow>(
        tx,
        `INSERT INTO tokens (name, token_hash, user_id, kind, provider, cluster_id, description, expires_at, last_used_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) RETURNING ${TOKEN_COLUMNS}`,
        [values.name, values.tokenHash, values.userId, values.kind, values.provider, values.clusterId, values.description, values.expiresAt, new Date()],
      );
      return { result: tokenFromRow(row!), changes: [change('token', values.name)] };
    });
  }

  async getToken(name: string): Promise<Token | undefined> {
    const row = await this.#one<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE name = ?`, [checkString(name, 'name')]);
    return row && tokenFromRow(row);
  }

  async listTokens(filter: TokenFilter = {}): Promise<Token[]> {
    const where = tokenWhere(checkTokenFilter(filter));
    return (await this.#all<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens ${where.sql} ORDER BY created_at, name`, where.params)).map(tokenFromRow);
  }

  async deleteToken(name: string): Promise<boolean> {
    checkString(name, 'name');
    return this.#write(async (tx) => {
      const deleted = (await tx.all('DELETE FROM tokens WHERE name = ? RETURNING name', [name])).length > 0;
      return { result: deleted, changes: deleted ? [change('token', name)] : [] };
    });
  }

  async deleteTokens(filter: TokenFilter): Promise<string[]> {
    const where = tokenWhere(checkTokenFilter(filter));
    if (where.params.length === 0) throw new TypeError('deleteTokens needs a filter with at least one field');
    return this.#deleteTokensWhere(where.sql, where.params);
  }

  async deleteExpiredTokens(now: Date): Promise<string[]> {
    return this.#deleteTokensWhere('WHERE expires_at IS NOT NULL AND expires_at <= ?', [checkDate(now, 'now')]);
  }

  async touchToken(name: string, at: Date): Promise<void> {
    await this.#touch('tokens', checkString(name, 'name'), checkDate(at, 'at'));
  }

  async #deleteTokensWhere(where: string, params: readonly SqlParam[]): Promise<string[]> {
    return this.#write(async (tx) => {
      const names = (await tx.all<{ name: string }>(`DELETE FROM tokens ${where} RETURNING name`, params)).map((row) => row.name).sort();
      return { result: names, changes: names.map((name) => change('token', name)) };
    });
  }

  // --- clusters ----------------------------------------------------------------------------

  async createCluster(cluster: NewCluster): Promise<Cluster> {
    const values = checkNewCluster(cluster);
    const credentials = sealCredentials(this.#secretBox, values.credentials);
    const now = new Date();
    return this.#write(async (tx) => {
      const row = await one<ClusterRow>(
        tx,
        `INSERT INTO clusters (id, display_name, server, mode, ca_pem, credentials_sealed, insecure_skip_tls_verify, ace, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${CLUSTER_COLUMNS}`,
        [values.id, values.displayName, values.server, values.mode, values.caPem, credentials, values.insecureSkipTlsVerify, aceJson(values.ace), now, now],
      );
      return { result: clusterFromRow(row!, this.#secretBox), changes: [change('cluster', values.id)] };
    });
  }

  async getCluster(id: string): Promise<Cluster | undefined> {
    const row = await this.#one<ClusterRow>(`SELECT ${CLUSTER_COLUMNS} FROM clusters WHERE id = ?`, [checkString(id, 'id')]);
    return row && clusterFromRow(row, this.#secretBox);
  }

  async listClusters(): Promise<Cluster[]> {
    return (await this.#all<ClusterRow>(`SELECT ${CLUSTER_COLUMNS} FROM clusters ORDER BY id`, [])).map((row) => clusterFromRow(row, this.#secretBox));
  }

  async updateCluster(id: string, patch: ClusterPatch): Promise<Cluster | undefined> {
    checkString(id, 'id');
    return this.#write(async (tx) => {
      const current = await one<ClusterRow>(tx, `SELECT ${CLUSTER_COLUMNS} FROM clusters WHERE id = ?${this.#db.lockRow}`, [id]);
      if (current === undefined) return { result: undefined, changes: [] };
      const values = patchCluster(clusterFromRow(current, this.#secretBox), patch);
      const row = await one<ClusterRow>(
        tx,
        `UPDATE clusters SET display_name = ?, server = ?, mode = ?, ca_pem = ?, credentials_sealed = ?, insecure_skip_tls_verify = ?, ace = ?, updated_at = ?
         WHERE id = ? RETURNING ${CLUSTER_COLUMNS}`,
        [
          values.displayName,
          values.server,
          values.mode,
          values.caPem,
          sealCredentials(this.#secretBox, values.credentials),
          values.insecureSkipTlsVerify,
          aceJson(values.ace),
          new Date(),
          id,
        ],
      );
      return { result: clusterFromRow(row!, this.#secretBox), changes: [change('cluster', id)] };
    });
  }

  async deleteCluster(id: string): Promise<boolean> {
    checkString(id, 'id');
    return this.#write(async (tx) => {
      if ((await one(tx, `SELECT id FROM clusters WHERE id = ?${this.#db.lockRow}`, [id])) === undefined) return { result: false, changes: [] };
      const tokens = await tx.all<{ name: string }>('DELETE FROM tokens WHERE cluster_id = ? RETURNING name', [id]);
      const memberships = await tx.all('DELETE FROM memberships WHERE cluster_id = ? RETURNING cluster_id', [id]);
      const secrets = await tx.all<{ name: string }>('DELETE FROM agent_secrets WHERE cluster_id = ? RETURNING name', [id]);
      const tunnels = await tx.all('DELETE FROM tunnels WHERE cluster_id = ? RETURNING agent_id', [id]);
      const reports = await tx.all<{ job: string }>(`DELETE FROM job_reports WHERE subject = ? AND job IN ('cluster-probe', 'cluster-sync') RETURNING job`, [id]);
      await tx.all('DELETE FROM clusters WHERE id = ? RETURNING id', [id]);
      const changes: StoreChange[] = [change('cluster', id)];
      for (const report of reports) changes.push(change('report', `${report.job}/${id}`));
      if (memberships.length > 0) changes.push(change('membership', id));
      if (tunnels.length > 0) changes.push(change('tunnel', id));
      for (const token of tokens) changes.push(change('token', token.name));
      for (const secret of secrets) changes.push(change('agent', secret.name));
      return { result: true, changes };
    });
  }

  async markClusterDeleting(id: string, at: Date): Promise<Cluster | undefined> {
    checkString(id, 'id');
    return this.#write(async (tx) => {
      const row = await one<ClusterRow>(
        tx,
        `UPDATE clusters SET deleting_since = COALESCE(deleting_since, ?) WHERE id = ? RETURNING ${CLUSTER_COLUMNS}`,
        [at, id],
      );
      if (row === undefined) return { result: undefined, changes: [] };
      return { result: clusterFromRow(row, this.#secretBox), changes: [change('cluster', id)] };
    });
  }

  async setClusterSyncHoldsObjects(id: string, holds: boolean): Promise<boolean> {
    checkString(id, 'id');
    if (typeof holds !== 'boolean') throw new TypeError('holds must be a boolean');
    return this.#write(async (tx) => {
      const rows = await tx.all('UPDATE clusters SET sync_holds_objects = ? WHERE id = ? RETURNING id', [holds, id]);
      return { result: rows.length > 0, changes: [] };
    });
  }

  // --- installation settings -----------------------------------------------------------------

  async ensureSetting(key: string, value: string): Promise<string> {
    const params = [checkString(key, 'key'), checkString(value, 'value')];
    return this.#write(async (tx) => {
      await tx.all('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key', params);
      const row = await one<{ value: string }>(tx, 'SELECT value FROM settings WHERE key = ?', [params[0]!]);
      return { result: row!.value, changes: [] };
    });
  }

  async addSyncEpoch(epoch: string, at: Date, keep: number): Promise<string[]> {
    const value = checkString(epoch, 'epoch');
    if (!Number.isInteger(keep) || keep < 1) throw new TypeError('keep must be a positive integer');
    return this.#write(async (tx) => {
      await tx.all('INSERT INTO sync_epochs (epoch, created_at) VALUES (?, ?) RETURNING epoch', [value, at]);
      const kept = await tx.all<{ epoch: string }>('SELECT epoch FROM sync_epochs ORDER BY created_at DESC, epoch LIMIT ?', [keep]);
      const names = kept.map((row) => row.epoch);
      await tx.all(`DELETE FROM sync_epochs WHERE NOT (${this.#db.oneOf('epoch')}) RETURNING epoch`, [names]);
      return { result: names, changes: [] };
    });
  }

  async listSyncEpochs(): Promise<string[]> {
    return (await this.#all<{ epoch: string }>('SELECT epoch FROM sync_epochs ORDER BY created_at DESC, epoch', [])).map((row) => row.epoch);
  }

  // --- login failure counters ----------------------------------------------------------------

  async takeLoginFailure(counter: string, key: string, limit: number, windowSeconds: number, now: Date): Promise<LoginFailureTake> {
    const params = [checkString(counter, 'counter'), checkString(key, 'key')] as const;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive whole number');
    if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1) throw new TypeError('windowSeconds must be a positive whole number');
    const at = checkDate(now, 'now').getTime();
    const windowMs = windowSeconds * 1000;
    const taken = await this.#write<LoginFailureTake>(async (tx) => {
      // This key's closed window goes first (the row this transaction locks anyway).
      await tx.all('DELETE FROM login_failures WHERE counter = ? AND key = ? AND window_start <= ? RETURNING key', [...params, at - windowMs]);
      await tx.all(
        'INSERT INTO login_failures (counter, key, window_start, places, refused) VALUES (?, ?, ?, 0, ?) ON CONFLICT (counter, key) DO NOTHING RETURNING key',
        [...params, at, false],
      );
      // Locked: a concurrent take of the same key on another connection waits for this one.
      const row = (await one<{ window_start: number | string; places: number | string; refused: boolean | number }>(
        tx,
        `SELECT window_start, places, refused FROM login_failures WHERE counter = ? AND key = ?${this.#db.lockRow}`,
        params,
      ))!;
      const windowStart = Number(row.window_start);
      if (Number(row.places) >= limit) {
        const firstRefusal = !row.refused;
        if (firstRefusal) await tx.all('UPDATE login_failures SET refused = ? WHERE counter = ? AND key = ?', [true, ...params]);
        return { result: { taken: false, retryAfterSeconds: Math.max(1, Math.ceil((windowStart + windowMs - at) / 1000)), firstRefusal }, changes: [] };
      }
      await tx.all('UPDATE login_failures SET places = places + 1 WHERE counter = ? AND key = ?', params);
      return { result: { taken: true, windowStart }, changes: [] };
    });
    this.#pruneLoginFailures(params[0], at, windowMs);
    return taken;
  }

  /**
   * Deletes the closed windows of other keys, at most once per window length per counter and
   * outside the take's transaction (so it never holds a lock a take waits for); best effort.
   */
  #pruneLoginFailures(counter: string, at: number, windowMs: number): void {
    if (at - (this.#loginFailuresPrunedAt.get(counter) ?? -Infinity) < windowMs) return;
    this.#loginFailuresPrunedAt.set(counter, at);
    this.#write(async (tx) => {
      await tx.all('DELETE FROM login_failures WHERE counter = ? AND window_start <= ? RETURNING key', [counter, at - windowMs]);
      return { result: undefined, changes: [] };
    }).catch(this.#onError);
  }

  async giveBackLoginFailure(counter: string, key: string, windowStart: number): Promise<void> {
    const params = [checkString(counter, 'counter'), checkString(key, 'key'), checkWindowStart(windowStart)];
    await this.#write(async (tx) => {
      await tx.all('UPDATE login_failures SET places = places - 1 WHERE counter = ? AND key = ? AND window_start = ? AND places > 0', params);
      return { result: undefined, changes: [] };
    });
  }

  async forgetLoginFailures(counter: string, key: string, windowStart?: number): Promise<void> {
    const params: SqlParam[] = [checkString(counter, 'counter'), checkString(key, 'key')];
    if (windowStart !== undefined) params.push(checkWindowStart(windowStart));
    await this.#write(async (tx) => {
      await tx.all(`DELETE FROM login_failures WHERE counter = ? AND key = ?${windowStart === undefined ? '' : ' AND window_start = ?'} RETURNING key`, params);
      return { result: undefined, changes: [] };
    });
  }

  // --- memberships -------------------------------------------------------------------------

  async putMembership(membership: NewMembership): Promise<Membership> {
    const values = checkNewMembership(membership);
    return this.#write(async (tx) => {
      const row = await one<MembershipRow>(
        tx,
        `INSERT INTO memberships (cluster_id, subject_kind, subject_name, role, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (cluster_id, subject_kind, subject_name) DO UPDATE SET role = excluded.role
         RETURNING ${MEMBERSHIP_COLUMNS}`,
        [values.clusterId, values.subjectKind, values.subjectName, values.role, new Date()],
      );
      return { result: membershipFromRow(row!), changes: [change('membership', values.clusterId)] };
    });
  }

  async listMemberships(clusterId: string): Promise<Membership[]> {
    const rows = await this.#all<MembershipRow>(`SELECT ${MEMBERSHIP_COLUMNS} FROM memberships WHERE cluster_id = ? ORDER BY subject_kind, subject_name`, [
      checkString(clusterId, 'clusterId'),
    ]);
    return rows.map(membershipFromRow);
  }

  async listMembershipsOf(subjects: { readonly users: readonly string[]; readonly groups: readonly string[] }): Promise<Membership[]> {
    const { users, groups } = checkSubjects(subjects);
    if (users.length === 0 && groups.length === 0) return [];
    const rows = await this.#all<MembershipRow>(
      `SELECT ${MEMBERSHIP_COLUMNS} FROM memberships
       WHERE (subject_kind = 'User' AND ${this.#db.oneOf('subject_name')})
          OR (subject_kind = 'Group' AND ${this.#db.oneOf('subject_name')})
       ORDER BY cluster_id, subject_kind, subject_name`,
      [users, groups],
    );
    return rows.map(membershipFromRow);
  }

  async deleteMembership(clusterId: string, subjectKind: SubjectKind, subjectName: string): Promise<boolean> {
    const params = [checkString(clusterId, 'clusterId'), checkString(subjectKind, 'subjectKind'), checkString(subjectName, 'subjectName')];
    return this.#write(async (tx) => {
      const rows = await tx.all('DELETE FROM memberships WHERE cluster_id = ? AND subject_kind = ? AND subject_name = ? RETURNING cluster_id', params);
      const deleted = rows.length > 0;
      return { result: deleted, changes: deleted ? [change('membership', clusterId)] : [] };
    });
  }

  // --- identity provider configurations ----------------------------------------------------

  async putProviderConfig(config: NewProviderConfig): Promise<ProviderConfig> {
    const values = checkNewProviderConfig(config);
    const settings = sealSettings(this.#secretBox, values.settings);
    return this.#write(async (tx) => {
      const row = await one<ProviderConfigRow>(
        tx,
        `INSERT INTO provider_configs (name, type, enabled, settings_sealed, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET type = excluded.type, enabled = excluded.enabled,
           settings_sealed = excluded.settings_sealed, updated_at = excluded.updated_at
         RETURNING ${PROVIDER_CONFIG_COLUMNS}`,
        [values.name, values.type, values.enabled, settings, new Date()],
      );
      return { result: providerConfigFromRow(row!, this.#secretBox), changes: [change('provider', values.name)] };
    });
  }

  async getProviderConfig(name: string): Promise<ProviderConfig | undefined> {
    const row = await this.#one<ProviderConfigRow>(`SELECT ${PROVIDER_CONFIG_COLUMNS} FROM provider_configs WHERE name = ?`, [checkString(name, 'name')]);
    return row && providerConfigFromRow(row, this.#secretBox);
  }

  async listProviderConfigs(): Promise<ProviderConfig[]> {
    const rows = await this.#all<ProviderConfigRow>(`SELECT ${PROVIDER_CONFIG_COLUMNS} FROM provider_configs ORDER BY name`, []);
    return rows.map((row) => providerConfigFromRow(row, this.#secretBox));
  }

  async deleteProviderConfig(name: string): Promise<boolean> {
    checkString(name, 'name');
    return this.#write(async (tx) => {
      const deleted = (await tx.all('DELETE FROM provider_configs WHERE name = ? RETURNING name', [name])).length > 0;
      return { result: deleted, changes: deleted ? [change('provider', name)] : [] };
    });
  }

  // --- group cache -------------------------------------------------------------------------

  async putUserGroups(groups: UserGroups): Promise<void> {
    const values = checkUserGroups(groups);
    await this.#write(async (tx) => {
      await tx.all(
        `INSERT INTO user_groups (user_id, provider, group_names, refreshed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, provider) DO UPDATE SET group_names = excluded.group_names, refreshed_at = excluded.refreshed_at`,
        [values.userId, values.provider, JSON.stringify(values.groups), values.refreshedAt],
      );
      return { result: undefined, changes: [change('groups', values.userId)] };
    });
  }

  async getUserGroups(userId: string, provider: string): Promise<UserGroups | undefined> {
    const row = await this.#one<UserGroupsRow>(`SELECT ${USER_GROUPS_COLUMNS} FROM user_groups WHERE user_id = ? AND provider = ?`, [
      checkString(userId, 'userId'),
      checkString(provider, 'provider'),
    ]);
    return row && userGroupsFromRow(row);
  }

  // --- agent secrets -----------------------------------------------------------------------

  async createAgentSecret(secret: NewAgentSecret): Promise<AgentSecret> {
    const values = checkNewAgentSecret(secret);
    return this.#write(async (tx) => ({ result: await insertAgentSecret(tx, values), changes: [change('agent', values.name)] }));
  }

  async getAgentSecret(name: string): Promise<AgentSecret | undefined> {
    const row = await this.#one<AgentSecretRow>(`SELECT ${AGENT_SECRET_COLUMNS} FROM agent_secrets WHERE name = ?`, [checkString(name, 'name')]);
    return row && agentSecretFromRow(row);
  }

  async listAgentSecrets(filter: AgentSecretFilter): Promise<AgentSecret[]> {
    const where = whereEqual(checkAgentSecretFilter(filter), { clusterId: 'cluster_id', kind: 'kind' });
    const rows = await this.#all<AgentSecretRow>(`SELECT ${AGENT_SECRET_COLUMNS} FROM agent_secrets ${where.sql} ORDER BY created_at, name`, where.params);
    return rows.map(agentSecretFromRow);
  }

  async deleteAgentSecret(name: string): Promise<boolean> {
    checkString(name, 'name');
    return this.#write(async (tx) => {
      const deleted = (await tx.all('DELETE FROM agent_secrets WHERE name = ? RETURNING name', [name])).length > 0;
      return { result: deleted, changes: deleted ? [change('agent', name)] : [] };
    });
  }

  async exchangeRegistration(registrationName: string, credential: NewAgentSecret): Promise<AgentSecret | undefined> {
    checkString(registrationName, 'registrationName');
    const values = checkNewAgentSecret(credential);
    if (values.kind !== 'agent') throw new TypeError('exchangeRegistration creates a credential of kind agent');
    const now = new Date();
    return this.#write(async (tx) => {
      // The DELETE decides who wins: of two concurrent exchanges, only one deletes the row.
      const registration = await one<{ cluster_id: string }>(
        tx,
        `DELETE FROM agent_secrets WHERE name = ? AND kind = 'registration' AND (expires_at IS NULL OR expires_at > ?) RETURNING cluster_id`,
        [registrationName, now],
      );
      if (registration === undefined) return { result: undefined, changes: [] };
      if (registration.cluster_id !== values.clusterId) throw new TypeError('the credential must be for the cluster of the registration secret');
      const created = await insertAgentSecret(tx, values);
      return { result: created, changes: [change('agent', registrationName), change('agent', values.name)] };
    });
  }

  async touchAgentSecret(name: string, at: Date): Promise<void> {
    await this.#touch('agent_secrets', checkString(name, 'name'), checkDate(at, 'at'));
  }

  // --- tunnels -----------------------------------------------------------------------------

  async putTunnel(tunnel: TunnelRecord): Promise<TunnelRecord> {
    const values = checkTunnel(tunnel);
    return this.#write(async (tx) => {
      const current = await one<TunnelRow>(
        tx,
        `SELECT ${TUNNEL_COLUMNS} FROM tunnels WHERE cluster_id = ? AND agent_id = ? AND replica_id = ?${this.#db.lockRow}`,
        [values.clusterId, values.agentId, values.replicaId],
      );
      const row = await one<TunnelRow>(
        tx,
        `INSERT INTO tunnels (cluster_id, agent_id, replica_id, peer_url, agent_version, kubernetes_version, connected_at, heartbeat_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (cluster_id, agent_id, replica_id) DO UPDATE SET peer_url = excluded.peer_url, agent_version = excluded.agent_version,
           kubernetes_version = excluded.kubernetes_version, connected_at = excluded.connected_at, heartbeat_at = excluded.heartbeat_at
         RETURNING ${TUNNEL_COLUMNS}`,
        [values.clusterId, values.agentId, values.replicaId, values.peerUrl, values.agentVersion, values.kubernetesVersion, values.connectedAt, values.heartbeatAt],
      );
      const put = tunnelFromRow(row!);
      // A heartbeat alone tells no cache anything new: it must not flood NOTIFY every few seconds.
      const announce = current === undefined || tunnelChanged(tunnelFromRow(current), put);
      return { result: put, changes: announce ? [change('tunnel', values.clusterId)] : [] };
    });
  }

  async deleteTunnel(clusterId: string, agentId: string, replicaId: string): Promise<boolean> {
    const params = [checkString(clusterId, 'clusterId'), checkString(agentId, 'agentId'), checkString(replicaId, 'replicaId')];
    return this.#write(async (tx) => {
      const deleted = (await tx.all('DELETE FROM tunnels WHERE cluster_id = ? AND agent_id = ? AND replica_id = ? RETURNING cluster_id', params)).length > 0;
      return { result: deleted, changes: deleted ? [change('tunnel', clusterId)] : [] };
    });
  }

  async listTunnels(filter: TunnelFilter = {}): Promise<TunnelRecord[]> {
    const where = whereEqual(checkTunnelFilter(filter), { clusterId: 'cluster_id', replicaId: 'replica_id' });
    const rows = await this.#all<TunnelRow>(`SELECT ${TUNNEL_COLUMNS} FROM tunnels ${where.sql} ORDER BY cluster_id, agent_id, replica_id`, where.params);
    return rows.map(tunnelFromRow);
  }

  async deleteStaleTunnels(before: Date): Promise<TunnelRecord[]> {
    const time = checkDate(before, 'before');
    return this.#write(async (tx) => {
      const tunnels = (await tx.all<TunnelRow>(`DELETE FROM tunnels WHERE heartbeat_at < ? RETURNING ${TUNNEL_COLUMNS}`, [time]))
        .map(tunnelFromRow)
        .sort(byTunnelKey);
      return { result: tunnels, changes: tunnels.map((tunnel) => change('tunnel', tunnel.clusterId)) };
    });
  }

  // --- issuer signing keys ------------------------------------------------------------------

  async createSigningKey(key: NewSigningKey): Promise<SigningKey | undefined> {
    const values = checkNewSigningKey(key);
    const sealed = this.#secretBox.seal(values.privateJwk);
    return this.#write(async (tx) => {
      // The generation decides who wins: of two replicas rotating at once, one inserts.
      const row = await one<SigningKeyRow>(
        tx,
        `INSERT INTO signing_keys (kid, generation, algorithm, public_jwk, private_jwk_sealed, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (generation) DO NOTHING RETURNING ${SIGNING_KEY_COLUMNS}`,
        [values.kid, values.generation, values.algorithm, values.publicJwk, sealed, values.createdAt],
      );
      return { result: row === undefined ? undefined : signingKeyFromRow(row, this.#secretBox), changes: [] };
    });
  }

  async listSigningKeys(): Promise<SigningKey[]> {
    const rows = await this.#all<SigningKeyRow>(`SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY generation`, []);
    return rows.map((row) => signingKeyFromRow(row, this.#secretBox));
  }

  async deleteSigningKey(kid: string): Promise<boolean> {
    checkString(kid, 'kid');
    return this.#write(async (tx) => ({ result: (await tx.all('DELETE FROM signing_keys WHERE kid = ? RETURNING kid', [kid])).length > 0, changes: [] }));
  }

  // --- background job reports --------------------------------------------------------------

  async putJobReport(job: ReportJob, subject: string, report: Readonly<Record<string, unknown>>): Promise<void> {
    const values = checkJobReport(job, subject, report);
    await this.#write(async (tx) => {
      // A probe or sync that ended after its cluster was deleted leaves no report behind.
      if (values.job !== 'provider-health' && (await one(tx, `SELECT id FROM clusters WHERE id = ?${this.#db.lockRow}`, [values.subject])) === undefined) {
        return { result: undefined, changes: [] };
      }
      await tx.all(
        `INSERT INTO job_reports (job, subject, report) VALUES (?, ?, ?)
         ON CONFLICT (job, subject) DO UPDATE SET report = excluded.report RETURNING job`,
        [values.job, values.subject, values.json],
      );
      return { result: undefined, changes: [change('report', `${values.job}/${values.subject}`)] };
    });
  }

  async getJobReport(job: ReportJob, subject: string): Promise<JobReport | undefined> {
    const row = await this.#one<JobReportRow>(`SELECT ${JOB_REPORT_COLUMNS} FROM job_reports WHERE job = ? AND subject = ?`, [
      checkReportJob(job),
      checkString(subject, 'subject'),
    ]);
    return row && jobReportFromRow(row);
  }

  async listJobReports(): Promise<JobReport[]> {
    return (await this.#all<JobReportRow>(`SELECT ${JOB_REPORT_COLUMNS} FROM job_reports ORDER BY job, subject`, [])).map(jobReportFromRow);
  }

  // --- the background job lease ----------------------------------------------------------------

  async takeLease(name: string, holder: string, durationMs: number): Promise<string> {
    const values = checkLease(name, holder, durationMs);
    return this.#write(async (tx) => {
      // One statement decides: free, lapsed, or already this holder's → (re)taken; else untouched.
      const taken = await one<{ holder: string }>(
        tx,
        `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ${this.#db.nowPlus()})
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= ${this.#db.now}
         RETURNING holder`,
        [values.name, values.holder, values.durationMs],
      );
      if (taken !== undefined) return { result: taken.holder, changes: [] };
      const current = await one<{ holder: string }>(tx, 'SELECT holder FROM leases WHERE name = ?', [values.name]);
      return { result: current!.holder, changes: [] };
    });
  }

  async releaseLease(name: string, holder: string): Promise<boolean> {
    const params = [checkString(name, 'name'), checkString(holder, 'holder')];
    return this.#write(async (tx) => ({ result: (await tx.all('DELETE FROM leases WHERE name = ? AND holder = ? RETURNING name', params)).length > 0, changes: [] }));
  }

  // --- lifecycle ---------------------------------------------------------------------------

  async hasSealedSecrets(): Promise<boolean> {
    const row = await this.#one<{ sealed: number | string }>(
      `SELECT (SELECT count(*) FROM clusters WHERE credentials_sealed IS NOT NULL) + (SELECT count(*) FROM provider_configs) AS sealed`,
      [],
    );
    return Number(row!.sealed) > 0;
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    await this.#db.ping();
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#listeners.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#db.close();
  }

  // --- plumbing ----------------------------------------------------------------------------

  /** Records use of a token or agent secret: best effort, never moves lastUsedAt backwards, announces nothing. */
  async #touch(table: 'tokens' | 'agent_secrets', name: string, at: Date): Promise<void> {
    try {
      await this.#write(async (tx) => {
        await tx.all(`UPDATE ${table} SET last_used_at = ? WHERE name = ? AND (last_used_at IS NULL OR last_used_at < ?)`, [at, name, at]);
        return { result: undefined, changes: [] };
      });
    } catch (error) {
      this.#onError(error);
    }
  }

  /** One statement outside a transaction. */
  async #all<R>(sql: string, params: readonly SqlParam[]): Promise<R[]> {
    this.#assertOpen();
    return this.#db.all<R>(sql, params);
  }

  async #one<R>(sql: string, params: readonly SqlParam[]): Promise<R | undefined> {
    return (await this.#all<R>(sql, params))[0];
  }

  /** Runs `work` in one transaction, then announces its changes here. */
  async #write<T>(work: (tx: SqlRunner) => Promise<Written<T>>): Promise<T> {
    this.#assertOpen();
    const outcome = await this.#db.transaction(async (tx) => {
      const { result, changes } = await work(tx);
      return { result, changes: distinctChanges(changes) };
    });
    this.#listeners.announce(outcome.changes);
    return outcome.result;
  }

  #assertOpen(): void {
    if (this.#closed) throw new KubegateError('STORE_UNAVAILABLE', 'the store is closed');
  }
}

async function one<R = Record<string, unknown>>(runner: SqlRunner, sql: string, params: readonly SqlParam[]): Promise<R | undefined> {
  return (await runner.all<R>(sql, params))[0];
}

async function insertAgentSecret(tx: SqlRunner, values: Required<NewAgentSecret>): Promise<AgentSecret> {
  const row = await one<AgentSecretRow>(
    tx,
    `INSERT INTO agent_secrets (name, kind, cluster_id, secret_hash, description, created_at, expires_at, last_used_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, NULL) RETURNING ${AGENT_SECRET_COLUMNS}`,
    [values.name, values.kind, values.clusterId, values.secretHash, values.description, new Date(), values.expiresAt],
  );
  return agentSecretFromRow(row!);
}

function checkWindowStart(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError('windowStart must be epoch milliseconds');
  return value;
}

function tokenWhere(filter: TokenFilter): { sql: string; params: SqlParam[] } {
  return whereEqual(filter, { userId: 'user_id', clusterId: 'cluster_id', provider: 'provider' });
}

/** `WHERE column = ? AND …` for the defined fields of a checked filter; '' when none is. */
function whereEqual<F extends object>(filter: F, columns: { readonly [K in keyof F]-?: string }): { sql: string; params: SqlParam[] } {
  const clauses: string[] = [];
  const params: SqlParam[] = [];
  for (const field of Object.keys(columns) as (keyof F)[]) {
    const value = filter[field];
    if (value === undefined) continue;
    params.push(value as SqlParam);
    clauses.push(`${columns[field]} = ?`);
  }
  return { sql: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

function byTunnelKey(a: TunnelRecord, b: TunnelRecord): number {
  const key = (tunnel: TunnelRecord): string => `${tunnel.clusterId}\u0000${tunnel.agentId}\u0000${tunnel.replicaId}`;
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}
