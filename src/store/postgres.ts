/**
 * The Store for several proxy replicas: PostgreSQL through a pg Pool.
 *
 * - Migrations run in ONE transaction holding a transaction-level advisory lock, so any
 *   number of replicas may start at once: one applies the missing versions, the others
 *   wait, then find nothing left to do. PostgreSQL DDL is transactional: a failed
 *   migration leaves no trace.
 * - Multi-step writes run in a transaction on one pooled connection; read-modify-write
 *   paths lock the row (`FOR UPDATE`) so concurrent replicas cannot lose an update.
 * - Every statement is a named prepared statement with an explicit column list, prepared
 *   once per connection.
 * - Errors: integrity violations (SQLSTATE class 23) are STORE_CONSTRAINT; connection
 *   failures, server shutdown, pool timeouts, deadlocks and serialization failures are
 *   STORE_UNAVAILABLE (try again); anything else is INTERNAL. The original is the cause.
 * - Changes: see postgres-changes.ts. Each write NOTIFYs inside its transaction and
 *   announces locally after COMMIT; other replicas hear it through LISTEN.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { KubegateError } from '../errors.js';
import { createChangeListeners, type ChangeListeners } from './changes.js';
import { postgresMigrations } from './migrations.js';
import { CHANGE_CHANNEL, changePayload, listenForChanges, settledWithin, type ChangeFeed } from './postgres-changes.js';
import {
  CLUSTER_COLUMNS,
  IDENTITY_COLUMNS,
  MEMBERSHIP_COLUMNS,
  PROVIDER_CONFIG_COLUMNS,
  TOKEN_COLUMNS,
  USER_COLUMNS,
  USER_GROUPS_COLUMNS,
  aceJson,
  change,
  checkDate,
  checkIdentity,
  checkNewCluster,
  checkNewMembership,
  checkNewProviderConfig,
  checkNewToken,
  checkNewUser,
  checkString,
  checkSubjects,
  checkTokenFilter,
  checkUserGroups,
  clusterFromRow,
  distinctChanges,
  identityFromRow,
  membershipFromRow,
  patchCluster,
  patchUser,
  providerConfigFromRow,
  sealCredentials,
  sealSettings,
  tokenFromRow,
  userFromRow,
  userGroupsFromRow,
  type ClusterRow,
  type IdentityRow,
  type MembershipRow,
  type ProviderConfigRow,
  type TokenRow,
  type UserGroupsRow,
  type UserRow,
} from './records.js';
import type { SecretBox } from './secret-box.js';
import type {
  ChangeListener,
  Cluster,
  ClusterPatch,
  Identity,
  Membership,
  NewCluster,
  NewMembership,
  NewProviderConfig,
  NewToken,
  NewUser,
  ProviderConfig,
  Store,
  StoreChange,
  SubjectKind,
  Token,
  TokenFilter,
  User,
  UserGroups,
  UserPatch,
} from './store.js';

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:5432/db?sslmode=…`, or `host=/socket/dir` for a unix socket. */
  readonly connectionString: string;
  readonly secretBox: SecretBox;
  /** Pool size; default 10. */
  readonly maxConnections?: number;
  /** How long to wait for a new connection or a `ping` answer (STORE_UNAVAILABLE after), and for `close`; default 5000. */
  readonly connectTimeoutMs?: number;
  /** How often the change notification connection is checked for a silent failure; default 15000. */
  readonly notificationCheckIntervalMs?: number;
  /**
   * Receives errors no caller can be told about: a lost or malformed change notification, an
   * idle pooled connection that died, a change listener that threw, a failed touchToken.
   */
  readonly onError?: (error: unknown) => void;
}

/** Arbitrary, fixed: the advisory lock that serializes kubegate migrations across replicas. */
const MIGRATION_LOCK_KEY = 0x6b67_6d67;
const APPLICATION_NAME = 'kubegate';

type Param = string | number | boolean | Date | null | readonly string[];

export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  if (typeof options?.connectionString !== 'string' || options.connectionString.length === 0) {
    throw new TypeError('PostgresStoreOptions.connectionString is required');
  }
  if (options.secretBox === undefined) throw new TypeError('PostgresStoreOptions.secretBox is required');
  const onError = options.onError ?? (() => {});
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    // Notice a peer that vanished without closing the connection (network partition, failover).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: APPLICATION_NAME,
  });
  // An idle pooled connection that dies emits here; without a handler it would crash the process.
  pool.on('error', onError);
  const instanceId = randomBytes(8).toString('hex');
  const listeners = createChangeListeners(onError);
  try {
    await migrate(pool);
    const feed = await listenForChanges({
      connectionString: options.connectionString,
      instanceId,
      connectTimeoutMs,
      onChange: (change) => listeners.announce([change]),
      onError,
      checkIntervalMs: options.notificationCheckIntervalMs,
    });
    return new PostgresStore(pool, options.secretBox, onError, listeners, instanceId, feed, connectTimeoutMs);
  } catch (error) {
    await pool.end().catch(() => {});
    throw toStoreError(error);
  }
}

async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER     NOT NULL PRIMARY KEY,
      name       TEXT        NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL
    )`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    for (const migration of postgresMigrations) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())', [migration.version, migration.name]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/** The part of pg's Pool and PoolClient that queries need. */
interface Queryable {
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig<Param[]>): Promise<pg.QueryResult<R>>;
}

class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #secretBox: SecretBox;
  readonly #onError: (error: unknown) => void;
  readonly #listeners: ChangeListeners;
  readonly #instanceId: string;
  readonly #feed: ChangeFeed;
  readonly #connectTimeoutMs: number;
  readonly #statementNames = new Map<string, string>();
  #closed = false;

  constructor(
    pool: pg.Pool,
    secretBox: SecretBox,
    onError: (error: unknown) => void,
    listeners: ChangeListeners,
    instanceId: string,
    feed: ChangeFeed,
    connectTimeoutMs: number,
  ) {
    this.#pool = pool;
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#secretBox = secretBox;
    this.#onError = onError;
    this.#listeners = listeners;
    this.#instanceId = instanceId;
    this.#feed = feed;
  }

  // --- users -------------------------------------------------------------------------------

  async createUser(user: NewUser): Promise<User> {
    const values = checkNewUser(user);
    const now = new Date();
    return this.#write(async (db) => {
      const row = await this.#one<UserRow>(
        db,
        `INSERT INTO users (id, username, display_name, global_role, enabled, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ${USER_COLUMNS}`,
        [values.id, values.username, values.displayName, values.globalRole, values.enabled, values.passwordHash, now],
      );
      return { result: userFromRow(row!), changes: [change('user', values.id)] };
    });
  }

  async getUser(id: string): Promise<User | undefined> {
    const row = await this.#read<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [checkString(id, 'id')]);
    return row[0] && userFromRow(row[0]);
  }

  async getUserByUsername(username: string): Promise<User | undefined> {
    const row = await this.#read<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE username = $1`, [checkString(username, 'username')]);
    return row[0] && userFromRow(row[0]);
  }

  async listUsers(): Promise<User[]> {
    return (await this.#read<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY username`, [])).map(userFromRow);
  }

  async updateUser(id: string, patch: UserPatch): Promise<User | undefined> {
    checkString(id, 'id');
    return this.#write(async (db) => {
      const current = await this.#one<UserRow>(db, `SELECT ${USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE`, [id]);
      if (current === undefined) return { result: undefined, changes: [] };
      const values = patchUser(userFromRow(current), patch);
      const row = await this.#one<UserRow>(
        db,
        `UPDATE users SET display_name = $2, global_role = $3, enabled = $4, password_hash = $5, updated_at = $6
         WHERE id = $1 RETURNING ${USER_COLUMNS}`,
        [id, values.displayName, values.globalRole, values.enabled, values.passwordHash, new Date()],
      );
      return { result: userFromRow(row!), changes: [change('user', id)] };
    });
  }

  async deleteUser(id: string): Promise<boolean> {
    checkString(id, 'id');
    return this.#write(async (db) => {
      if ((await this.#one(db, 'SELECT id FROM users WHERE id = $1 FOR UPDATE', [id])) === undefined) return { result: false, changes: [] };
      const tokens = await this.#all<{ name: string }>(db, 'DELETE FROM tokens WHERE user_id = $1 RETURNING name', [id]);
      const memberships = await this.#all<{ cluster_id: string }>(
        db,
        `DELETE FROM memberships WHERE subject_kind = 'User' AND subject_name = $1 RETURNING cluster_id`,
        [id],
      );
      const identities = await this.#all(db, 'DELETE FROM identities WHERE user_id = $1 RETURNING provider', [id]);
      const groups = await this.#all(db, 'DELETE FROM user_groups WHERE user_id = $1 RETURNING provider', [id]);
      await this.#all(db, 'DELETE FROM users WHERE id = $1 RETURNING id', [id]);
      const changes: StoreChange[] = [change('user', id)];
      if (identities.length > 0) changes.push(change('identity', id));
      if (groups.length > 0) changes.push(change('groups', id));
      for (const token of tokens) changes.push(change('token', token.name));
      for (const membership of memberships) changes.push(change('membership', membership.cluster_id));
      return { result: true, changes };
    });
  }

  async countUsers(): Promise<number> {
    const rows = await this.#read<{ count: string }>('SELECT count(*) AS count FROM users', []);
    return Number(rows[0]!.count);
  }

  // --- identities --------------------------------------------------------------------------

  async linkIdentity(identity: Omit<Identity, 'createdAt'>): Promise<Identity> {
    const values = checkIdentity(identity);
    return this.#write(async (db) => {
      // Re-linking to the same user refreshes the login name; linking to another user is refused.
      const row = await this.#one<IdentityRow>(
        db,
        `INSERT INTO identities (provider, provider_user_id, user_id, login_name, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (provider, provider_user_id) DO UPDATE SET login_name = excluded.login_name
         WHERE identities.user_id = excluded.user_id
         RETURNING ${IDENTITY_COLUMNS}`,
        [values.provider, values.providerUserId, values.userId, values.loginName, new Date()],
      );
      if (row === undefined) {
        throw new KubegateError('STORE_CONSTRAINT', 'the identity is already linked to another user');
      }
      return { result: identityFromRow(row), changes: [change('identity', values.userId)] };
    });
  }

  async findIdentity(provider: string, providerUserId: string): Promise<Identity | undefined> {
    const rows = await this.#read<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities WHERE provider = $1 AND provider_user_id = $2`, [
      checkString(provider, 'provider'),
      checkString(providerUserId, 'providerUserId'),
    ]);
    return rows[0] && identityFromRow(rows[0]);
  }

  async listIdentities(userId: string): Promise<Identity[]> {
    const rows = await this.#read<IdentityRow>(
      `SELECT ${IDENTITY_COLUMNS} FROM identities WHERE user_id = $1 ORDER BY provider, provider_user_id`,
      [checkString(userId, 'userId')],
    );
    return rows.map(identityFromRow);
  }

  // --- tokens ------------------------------------------------------------------------------

  async createToken(token: NewToken): Promise<Token> {
    const values = checkNewToken(token);
    return this.#write(async (db) => {
      const row = await this.#one<TokenRow>(
        db,
        `INSERT INTO tokens (name, token_hash, user_id, kind, provider, cluster_id, description, expires_at, last_used_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9) RETURNING ${TOKEN_COLUMNS}`,
        [values.name, values.tokenHash, values.userId, values.kind, values.provider, values.clusterId, values.description, values.expiresAt, new Date()],
      );
      return { result: tokenFromRow(row!), changes: [change('token', values.name)] };
    });
  }

  async getToken(name: string): Promise<Token | undefined> {
    const rows = await this.#read<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE name = $1`, [checkString(name, 'name')]);
    return rows[0] && tokenFromRow(rows[0]);
  }

  async listTokens(filter: TokenFilter = {}): Promise<Token[]> {
    const where = tokenWhere(checkTokenFilter(filter));
    const rows = await this.#read<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens ${where.sql} ORDER BY created_at, name`, where.params);
    return rows.map(tokenFromRow);
  }

  async deleteToken(name: string): Promise<boolean> {
    checkString(name, 'name');
    return this.#write(async (db) => {
      const deleted = (await this.#all(db, 'DELETE FROM tokens WHERE name = $1 RETURNING name', [name])).length > 0;
      return { result: deleted, changes: deleted ? [change('token', name)] : [] };
    });
  }

  async deleteTokens(filter: TokenFilter): Promise<string[]> {
    const where = tokenWhere(checkTokenFilter(filter));
    if (where.params.length === 0) throw new TypeError('deleteTokens needs a filter with at least one field');
    return this.#deleteTokensWhere(where.sql, where.params);
  }

  async deleteExpiredTokens(now: Date): Promise<string[]> {
    return this.#deleteTokensWhere('WHERE expires_at IS NOT NULL AND expires_at <= $1', [checkDate(now, 'now')]);
  }

  async touchToken(name: string, at: Date): Promise<void> {
    checkString(name, 'name');
    const time = checkDate(at, 'at');
    try {
      await this.#read('UPDATE tokens SET last_used_at = $2 WHERE name = $1 AND (last_used_at IS NULL OR last_used_at < $2)', [name, time]);
    } catch (error) {
      this.#onError(error);
    }
  }

  async #deleteTokensWhere(where: string, params: Param[]): Promise<string[]> {
    return this.#write(async (db) => {
      const rows = await this.#all<{ name: string }>(db, `DELETE FROM tokens ${where} RETURNING name`, params);
      const names = rows.map((row) => row.name).sort();
      return { result: names, changes: names.map((name) => change('token', name)) };
    });
  }

  // --- clusters ----------------------------------------------------------------------------

  async createCluster(cluster: NewCluster): Promise<Cluster> {
    const values = checkNewCluster(cluster);
    const credentials = sealCredentials(this.#secretBox, values.credentials);
    const now = new Date();
    return this.#write(async (db) => {
      const row = await this.#one<ClusterRow>(
        db,
        `INSERT INTO clusters (id, display_name, server, ca_pem, credentials_sealed, insecure_skip_tls_verify, ace, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING ${CLUSTER_COLUMNS}`,
        [values.id, values.displayName, values.server, values.caPem, credentials, values.insecureSkipTlsVerify, aceJson(values.ace), now],
      );
      return { result: clusterFromRow(row!, this.#secretBox), changes: [change('cluster', values.id)] };
    });
  }

  async getCluster(id: string): Promise<Cluster | undefined> {
    const rows = await this.#read<ClusterRow>(`SELECT ${CLUSTER_COLUMNS} FROM clusters WHERE id = $1`, [checkString(id, 'id')]);
    return rows[0] && clusterFromRow(rows[0], this.#secretBox);
  }

  async listClusters(): Promise<Cluster[]> {
    const rows = await this.#read<ClusterRow>(`SELECT ${CLUSTER_COLUMNS} FROM clusters ORDER BY id`, []);
    return rows.map((row) => clusterFromRow(row, this.#secretBox));
  }

  async updateCluster(id: string, patch: ClusterPatch): Promise<Cluster | undefined> {
    checkString(id, 'id');
    return this.#write(async (db) => {
      const current = await this.#one<ClusterRow>(db, `SELECT ${CLUSTER_COLUMNS} FROM clusters WHERE id = $1 FOR UPDATE`, [id]);
      if (current === undefined) return { result: undefined, changes: [] };
      const values = patchCluster(clusterFromRow(current, this.#secretBox), patch);
      const row = await this.#one<ClusterRow>(
        db,
        `UPDATE clusters SET display_name = $2, server = $3, ca_pem = $4, credentials_sealed = $5, insecure_skip_tls_verify = $6,
           ace = $7, updated_at = $8
         WHERE id = $1 RETURNING ${CLUSTER_COLUMNS}`,
        [
          id,
          values.displayName,
          values.server,
          values.caPem,
          sealCredentials(this.#secretBox, values.credentials),
          values.insecureSkipTlsVerify,
          aceJson(values.ace),
          new Date(),
        ],
      );
      return { result: clusterFromRow(row!, this.#secretBox), changes: [change('cluster', id)] };
    });
  }

  async deleteCluster(id: string): Promise<boolean> {
    checkString(id, 'id');
    return this.#write(async (db) => {
      if ((await this.#one(db, 'SELECT id FROM clusters WHERE id = $1 FOR UPDATE', [id])) === undefined) return { result: false, changes: [] };
      const tokens = await this.#all<{ name: string }>(db, 'DELETE FROM tokens WHERE cluster_id = $1 RETURNING name', [id]);
      const memberships = await this.#all(db, 'DELETE FROM memberships WHERE cluster_id = $1 RETURNING cluster_id', [id]);
      await this.#all(db, 'DELETE FROM clusters WHERE id = $1 RETURNING id', [id]);
      const changes: StoreChange[] = [change('cluster', id)];
      if (memberships.length > 0) changes.push(change('membership', id));
      for (const token of tokens) changes.push(change('token', token.name));
      return { result: true, changes };
    });
  }

  // --- memberships -------------------------------------------------------------------------

  async putMembership(membership: NewMembership): Promise<Membership> {
    const values = checkNewMembership(membership);
    return this.#write(async (db) => {
      const row = await this.#one<MembershipRow>(
        db,
        `INSERT INTO memberships (cluster_id, subject_kind, subject_name, role, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (cluster_id, subject_kind, subject_name) DO UPDATE SET role = excluded.role
         RETURNING ${MEMBERSHIP_COLUMNS}`,
        [values.clusterId, values.subjectKind, values.subjectName, values.role, new Date()],
      );
      return { result: membershipFromRow(row!), changes: [change('membership', values.clusterId)] };
    });
  }

  async listMemberships(clusterId: string): Promise<Membership[]> {
    const rows = await this.#read<MembershipRow>(
      `SELECT ${MEMBERSHIP_COLUMNS} FROM memberships WHERE cluster_id = $1 ORDER BY subject_kind, subject_name`,
      [checkString(clusterId, 'clusterId')],
    );
    return rows.map(membershipFromRow);
  }

  async listMembershipsOf(subjects: { readonly users: readonly string[]; readonly groups: readonly string[] }): Promise<Membership[]> {
    const { users, groups } = checkSubjects(subjects);
    if (users.length === 0 && groups.length === 0) return [];
    const rows = await this.#read<MembershipRow>(
      `SELECT ${MEMBERSHIP_COLUMNS} FROM memberships
       WHERE (subject_kind = 'User' AND subject_name = ANY ($1::text[]))
          OR (subject_kind = 'Group' AND subject_name = ANY ($2::text[]))
       ORDER BY cluster_id, subject_kind, subject_name`,
      [users, groups],
    );
    return rows.map(membershipFromRow);
  }

  async deleteMembership(clusterId: string, subjectKind: SubjectKind, subjectName: string): Promise<boolean> {
    const params = [checkString(clusterId, 'clusterId'), checkString(subjectKind, 'subjectKind'), checkString(subjectName, 'subjectName')];
    return this.#write(async (db) => {
      const rows = await this.#all(
        db,
        'DELETE FROM memberships WHERE cluster_id = $1 AND subject_kind = $2 AND subject_name = $3 RETURNING cluster_id',
        params,
      );
      const deleted = rows.length > 0;
      return { result: deleted, changes: deleted ? [change('membership', clusterId)] : [] };
    });
  }

  // --- identity provider configurations ----------------------------------------------------

  async putProviderConfig(config: NewProviderConfig): Promise<ProviderConfig> {
    const values = checkNewProviderConfig(config);
    const settings = sealSettings(this.#secretBox, values.settings);
    return this.#write(async (db) => {
      const row = await this.#one<ProviderConfigRow>(
        db,
        `INSERT INTO provider_configs (name, type, enabled, settings_sealed, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET type = excluded.type, enabled = excluded.enabled,
           settings_sealed = excluded.settings_sealed, updated_at = excluded.updated_at
         RETURNING ${PROVIDER_CONFIG_COLUMNS}`,
        [values.name, values.type, values.enabled, settings, new Date()],
      );
      return { result: providerConfigFromRow(row!, this.#secretBox), changes: [change('provider', values.name)] };
    });
  }

  async getProviderConfig(name: string): Promise<ProviderConfig | undefined> {
    const rows = await this.#read<ProviderConfigRow>(`SELECT ${PROVIDER_CONFIG_COLUMNS} FROM provider_configs WHERE name = $1`, [
      checkString(name, 'name'),
    ]);
    return rows[0] && providerConfigFromRow(rows[0], this.#secretBox);
  }

  async listProviderConfigs(): Promise<ProviderConfig[]> {
    const rows = await this.#read<ProviderConfigRow>(`SELECT ${PROVIDER_CONFIG_COLUMNS} FROM provider_configs ORDER BY name`, []);
    return rows.map((row) => providerConfigFromRow(row, this.#secretBox));
  }

  async deleteProviderConfig(name: string): Promise<boolean> {
    checkString(name, 'name');
    return this.#write(async (db) => {
      const deleted = (await this.#all(db, 'DELETE FROM provider_configs WHERE name = $1 RETURNING name', [name])).length > 0;
      return { result: deleted, changes: deleted ? [change('provider', name)] : [] };
    });
  }

  // --- group cache -------------------------------------------------------------------------

  async putUserGroups(groups: UserGroups): Promise<void> {
    const values = checkUserGroups(groups);
    await this.#write(async (db) => {
      await this.#all(
        db,
        `INSERT INTO user_groups (user_id, provider, group_names, refreshed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, provider) DO UPDATE SET group_names = excluded.group_names, refreshed_at = excluded.refreshed_at`,
        [values.userId, values.provider, JSON.stringify(values.groups), values.refreshedAt],
      );
      return { result: undefined, changes: [change('groups', values.userId)] };
    });
  }

  async getUserGroups(userId: string, provider: string): Promise<UserGroups | undefined> {
    const rows = await this.#read<UserGroupsRow>(`SELECT ${USER_GROUPS_COLUMNS} FROM user_groups WHERE user_id = $1 AND provider = $2`, [
      checkString(userId, 'userId'),
      checkString(provider, 'provider'),
    ]);
    return rows[0] && userGroupsFromRow(rows[0]);
  }

  // --- lifecycle ---------------------------------------------------------------------------

  /** Also STORE_UNAVAILABLE when the database does not answer within the connect timeout (a hung network). */
  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KubegateError('STORE_UNAVAILABLE', 'the database did not answer in time')), this.#connectTimeoutMs);
    });
    try {
      await Promise.race([this.#read('SELECT 1 AS ok', []), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#listeners.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#feed.close();
    await settledWithin(this.#pool.end().catch(this.#onError), this.#connectTimeoutMs);
  }

  // --- plumbing ----------------------------------------------------------------------------

  /** A named prepared statement: parsed and planned once per pooled connection. */
  #query(sql: string, params: Param[]): pg.QueryConfig<Param[]> {
    let name = this.#statementNames.get(sql);
    if (name === undefined) {
      name = `kubegate_${this.#statementNames.size + 1}`;
      this.#statementNames.set(sql, name);
    }
    return { name, text: sql, values: params };
  }

  /**
   * PostgreSQL text cannot hold NUL, so no stored value equals a string containing one (and
   * writes refuse such strings before they get here): a statement with such a parameter
   * matches nothing, and such array elements match nothing, instead of failing the query.
   */
  async #all<R extends pg.QueryResultRow = Record<string, unknown>>(db: Queryable, sql: string, params: Param[]): Promise<R[]> {
    if (params.some((param) => typeof param === 'string' && param.includes('\u0000'))) return [];
    const storable = params.map((param) => (Array.isArray(param) ? param.filter((item: string) => !item.includes('\u0000')) : param));
    return (await db.query<R>(this.#query(sql, storable))).rows;
  }

  async #one<R extends pg.QueryResultRow = Record<string, unknown>>(db: Queryable, sql: string, params: Param[]): Promise<R | undefined> {
    return (await this.#all<R>(db, sql, params))[0];
  }

  /** One statement outside a transaction. */
  async #read<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: Param[]): Promise<R[]> {
    this.#assertOpen();
    try {
      return await this.#all<R>(this.#pool as Queryable, sql, params);
    } catch (error) {
      throw toStoreError(error);
    }
  }

  /**
   * Runs `work` in one transaction on one connection; its changes are NOTIFYed inside the
   * transaction (delivered to other replicas only if it commits) and announced to this
   * instance's listeners after COMMIT.
   */
  async #write<T>(work: (db: Queryable) => Promise<{ result: T; changes: StoreChange[] }>): Promise<T> {
    this.#assertOpen();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw toStoreError(error);
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const outcome = await work(client as Queryable);
      const changes = distinctChanges(outcome.changes);
      if (changes.length > 0) {
        await this.#all(client as Queryable, 'SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload', [
          CHANGE_CHANNEL,
          changes.map((change) => changePayload(this.#instanceId, change)),
        ]);
      }
      await client.query('COMMIT');
      this.#listeners.announce(changes);
      return outcome.result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw toStoreError(error);
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.release(broken);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new KubegateError('STORE_UNAVAILABLE', 'the store is closed');
  }
}

function tokenWhere(filter: TokenFilter): { sql: string; params: Param[] } {
  const clauses: string[] = [];
  const params: Param[] = [];
  for (const [field, column] of [
    ['userId', 'user_id'],
    ['clusterId', 'cluster_id'],
    ['provider', 'provider'],
  ] as const) {
    const value = filter[field];
    if (value === undefined) continue;
    params.push(value);
    clauses.push(`${column} = $${params.length}`);
  }
  return { sql: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** SQLSTATEs that mean "the database cannot serve this now; try again". */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '53300', '40001', '40P01']);
/** pg reports these without a code. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Cannot use a pool after calling end on the pool',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

/** pg errors as store errors; our own errors (KubegateError, TypeError from checks) pass through. */
function toStoreError(error: unknown): unknown {
  if (error instanceof KubegateError || error instanceof TypeError) return error;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string') {
    if (code.startsWith('23')) return new KubegateError('STORE_CONSTRAINT', undefined, { cause: error });
    if (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code)) {
      return new KubegateError('STORE_UNAVAILABLE', undefined, { cause: error });
    }
  }
  const message = error instanceof Error ? error.message : '';
  if (UNAVAILABLE_MESSAGES.some((text) => message.includes(text))) {
    return new KubegateError('STORE_UNAVAILABLE', undefined, { cause: error });
  }
  return new KubegateError('INTERNAL', undefined, { cause: error });
}
