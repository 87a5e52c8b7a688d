/**
 * The embedded Store: one SQLite file through better-sqlite3, for a single proxy process.
 *
 * - WAL journal, foreign keys on, a busy timeout, `synchronous = NORMAL` (durable at every
 *   checkpoint, safe against corruption; a power cut may lose the last few commits).
 * - Migrations run under an IMMEDIATE transaction at open, so two processes opening the
 *   same file one after the other (or at once) apply each one exactly once.
 * - better-sqlite3 is synchronous: every method runs to completion in one turn of the event
 *   loop, so a multi-step write inside `db.transaction(...).immediate()` can never
 *   interleave with another call. Statements are prepared once and cached by their SQL.
 * - Times are integer milliseconds since the epoch, flags 0/1, JSON as text.
 * - Changes are announced to this process's listeners after commit. SQLite has no way to
 *   tell other processes; run PostgreSQL for several replicas.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { KubegateError } from '../errors.js';
import { createChangeListeners, type ChangeListeners } from './changes.js';
import { sqliteMigrations } from './migrations.js';
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
  type ClusterValues,
  type IdentityRow,
  type MembershipRow,
  type ProviderConfigRow,
  type TokenRow,
  type UserGroupsRow,
  type UserRow,
  type UserValues,
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

export interface SqliteStoreOptions {
  /** The database file (parent directories are created, mode 0700), or `:memory:`. */
  readonly path: string;
  readonly secretBox: SecretBox;
  /** How long a write waits for another connection's lock; default 5000. */
  readonly busyTimeoutMs?: number;
  /** Receives errors no caller can be told about: a change listener that threw, a failed touchToken. */
  readonly onError?: (error: unknown) => void;
}

type Row = Record<string, unknown>;
type Param = string | number | null;

export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  if (typeof options?.path !== 'string' || options.path.length === 0) throw new TypeError('SqliteStoreOptions.path is required');
  if (options.secretBox === undefined) throw new TypeError('SqliteStoreOptions.secretBox is required');
  const inMemory = options.path === ':memory:';
  let db: Database.Database;
  try {
    if (!inMemory) mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
    db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
  } catch (error) {
    throw new KubegateError('STORE_UNAVAILABLE', 'the SQLite database cannot be opened', { cause: error });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  } catch (error) {
    db.close();
    const storeError = toStoreError(error);
    throw storeError instanceof KubegateError ? storeError : new KubegateError('STORE_UNAVAILABLE', 'the SQLite database cannot be prepared', { cause: error });
  }
  if (!inMemory) restrictFileModes(options.path);
  return new SqliteStore(db, options.secretBox, options.onError ?? (() => {}));
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER NOT NULL PRIMARY KEY,
      name       TEXT    NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT`);
    const applied = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const migration of sqliteMigrations) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
    }
  }).immediate();
}

/**
 * The database holds token hashes and sealed secrets: keep it, its WAL and shared memory
 * private. Best effort: a file the operator set up differently (and we may not chmod) stays so.
 */
function restrictFileModes(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if (existsSync(file)) chmodSync(file, 0o600);
    } catch {
      // not ours to change
    }
  }
}

class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #secretBox: SecretBox;
  readonly #onError: (error: unknown) => void;
  readonly #listeners: ChangeListeners;
  readonly #statements = new Map<string, Database.Statement<Param[]>>();
  #closed = false;

  constructor(db: Database.Database, secretBox: SecretBox, onError: (error: unknown) => void) {
    this.#db = db;
    this.#secretBox = secretBox;
    this.#onError = onError;
    this.#listeners = createChangeListeners(onError);
  }

  // --- users -------------------------------------------------------------------------------

  async createUser(user: NewUser): Promise<User> {
    const values = checkNewUser(user);
    const now = Date.now();
    return this.#write(() => {
      const row = this.#one<UserRow>(
        `INSERT INTO users (id, username, display_name, global_role, enabled, password_hash, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${USER_COLUMNS}`,
        [values.id, values.username, values.displayName, values.globalRole, flag(values.enabled), values.passwordHash, now, now],
      );
      return { result: userFromRow(row!), changes: [change('user', values.id)] };
    });
  }

  async getUser(id: string): Promise<User | undefined> {
    const row = this.#read(() => this.#one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`, [checkString(id, 'id')]));
    return row && userFromRow(row);
  }

  async getUserByUsername(username: string): Promise<User | undefined> {
    const row = this.#read(() => this.#one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE username = ?`, [checkString(username, 'username')]));
    return row && userFromRow(row);
  }

  async listUsers(): Promise<User[]> {
    return this.#read(() => this.#all<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY username`, [])).map(userFromRow);
  }

  async updateUser(id: string, patch: UserPatch): Promise<User | undefined> {
    checkString(id, 'id');
    return this.#write(() => {
      const current = this.#one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`, [id]);
      if (current === undefined) return { result: undefined, changes: [] };
      const values: UserValues = patchUser(userFromRow(current), patch);
      const row = this.#one<UserRow>(
        `UPDATE users SET display_name = ?, global_role = ?, enabled = ?, password_hash = ?, updated_at = ?
         WHERE id = ? RETURNING ${USER_COLUMNS}`,
        [values.displayName, values.globalRole, flag(values.enabled), values.passwordHash, Date.now(), id],
      );
      return { result: userFromRow(row!), changes: [change('user', id)] };
    });
  }

  async deleteUser(id: string): Promise<boolean> {
    checkString(id, 'id');
    return this.#write(() => {
      if (this.#one('SELECT id FROM users WHERE id = ?', [id]) === undefined) return { result: false, changes: [] };
      const tokens = this.#all<{ name: string }>('DELETE FROM tokens WHERE user_id = ? RETURNING name', [id]);
      const memberships = this.#all<{ cluster_id: string }>(
        `DELETE FROM memberships WHERE subject_kind = 'User' AND subject_name = ? RETURNING cluster_id`,
        [id],
      );
      const identities = this.#all('DELETE FROM identities WHERE user_id = ? RETURNING provider', [id]);
      const groups = this.#all('DELETE FROM user_groups WHERE user_id = ? RETURNING provider', [id]);
      this.#run('DELETE FROM users WHERE id = ?', [id]);
      const changes: StoreChange[] = [change('user', id)];
      if (identities.length > 0) changes.push(change('identity', id));
      if (groups.length > 0) changes.push(change('groups', id));
      for (const token of tokens) changes.push(change('token', token.name));
      for (const membership of memberships) changes.push(change('membership', membership.cluster_id));
      return { result: true, changes };
    });
  }

  async countUsers(): Promise<number> {
    return this.#read(() => Number(this.#one<{ count: number }>('SELECT count(*) AS count FROM users', [])!.count));
  }

  // --- identities --------------------------------------------------------------------------

  async linkIdentity(identity: Omit<Identity, 'createdAt'>): Promise<Identity> {
    const values = checkIdentity(identity);
    return this.#write(() => {
      // Re-linking to the same user refreshes the login name; linking to another user is refused.
      const row = this.#one<IdentityRow>(
        `INSERT INTO identities (provider, provider_user_id, user_id, login_name, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (provider, provider_user_id) DO UPDATE SET login_name = excluded.login_name
         WHERE identities.user_id = excluded.user_id
         RETURNING ${IDENTITY_COLUMNS}`,
        [values.provider, values.providerUserId, values.userId, values.loginName, Date.now()],
      );
      if (row === undefined) {
        throw new KubegateError('STORE_CONSTRAINT', 'the identity is already linked to another user');
      }
      return { result: identityFromRow(row), changes: [change('identity', values.userId)] };
    });
  }

  async findIdentity(provider: string, providerUserId: string): Promise<Identity | undefined> {
    const row = this.#read(() =>
      this.#one<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities WHERE provider = ? AND provider_user_id = ?`, [
        checkString(provider, 'provider'),
        checkString(providerUserId, 'providerUserId'),
      ]),
    );
    return row && identityFromRow(row);
  }

  async listIdentities(userId: string): Promise<Identity[]> {
    return this.#read(() =>
      this.#all<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities WHERE user_id = ? ORDER BY provider, provider_user_id`, [checkString(userId, 'userId')]),
    ).map(identityFromRow);
  }

  // --- tokens ------------------------------------------------------------------------------

  async createToken(token: NewToken): Promise<Token> {
    const values = checkNewToken(token);
    return this.#write(() => {
      const row = this.#one<TokenRow>(
        `INSERT INTO tokens (name, token_hash, user_id, kind, provider, cluster_id, description, expires_at, last_used_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) RETURNING ${TOKEN_COLUMNS}`,
        [values.name, values.tokenHash, values.userId, values.kind, values.provider, values.clusterId, values.description, millis(values.expiresAt), Date.now()],
      );
      return { result: tokenFromRow(row!), changes: [change('token', values.name)] };
    });
  }

  async getToken(name: string): Promise<Token | undefined> {
    const row = this.#read(() => this.#one<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE name = ?`, [checkString(name, 'name')]));
    return row && tokenFromRow(row);
  }

  async listTokens(filter: TokenFilter = {}): Promise<Token[]> {
    const where = tokenWhere(checkTokenFilter(filter));
    return this.#read(() => this.#all<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens ${where.sql} ORDER BY created_at, name`, where.params)).map(tokenFromRow);
  }

  async deleteToken(name: string): Promise<boolean> {
    checkString(name, 'name');
    return this.#write(() => {
      const deleted = this.#all('DELETE FROM tokens WHERE name = ? RETURNING name', [name]).length > 0;
      return { result: deleted, changes: deleted ? [change('token', name)] : [] };
    });
  }

  async deleteTokens(filter: TokenFilter): Promise<string[]> {
    const where = tokenWhere(checkTokenFilter(filter));
    if (where.params.length === 0) throw new TypeError('deleteTokens needs a filter with at least one field');
    return this.#deleteTokensWhere(where.sql, where.params);
  }

  async deleteExpiredTokens(now: Date): Promise<string[]> {
    return this.#deleteTokensWhere('WHERE expires_at IS NOT NULL AND expires_at <= ?', [checkDate(now, 'now').getTime()]);
  }

  async touchToken(name: string, at: Date): Promise<void> {
    checkString(name, 'name');
    const time = checkDate(at, 'at').getTime();
    try {
      this.#read(() =>
        this.#run('UPDATE tokens SET last_used_at = ? WHERE name = ? AND (last_used_at IS NULL OR last_used_at < ?)', [time, name, time]),
      );
    } catch (error) {
      this.#onError(error);
    }
  }

  #deleteTokensWhere(where: string, params: Param[]): string[] {
    return this.#write(() => {
      const names = this.#all<{ name: string }>(`DELETE FROM tokens ${where} RETURNING name`, params)
        .map((row) => row.name)
        .sort();
      return { result: names, changes: names.map((name) => change('token', name)) };
    });
  }

  // --- clusters ----------------------------------------------------------------------------

  async createCluster(cluster: NewCluster): Promise<Cluster> {
    const values = checkNewCluster(cluster);
    const credentials = sealCredentials(this.#secretBox, values.credentials);
    const now = Date.now();
    return this.#write(() => {
      const row = this.#one<ClusterRow>(
        `INSERT INTO clusters (id, display_name, server, ca_pem, credentials_sealed, insecure_skip_tls_verify, ace, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${CLUSTER_COLUMNS}`,
        [values.id, values.displayName, values.server, values.caPem, credentials, flag(values.insecureSkipTlsVerify), aceJson(values.ace), now, now],
      );
      return { result: clusterFromRow(row!, this.#secretBox), changes: [change('cluster', values.id)] };
    });
  }

  async getCluster(id: string): Promise<Cluster | undefined> {
    const row = this.#read(() => this.#one<ClusterRow>(`SELECT ${CLUSTER_COLUMNS} FROM clusters WHERE id = ?`, [checkString(id, 'id')]));
    return row && clusterFromRow(row, this.#secretBox);
  }

  async listClusters(): Promise<Cluster[]> {
    return this.#read(() => this.#all<ClusterRow>(`SELECT ${CLUSTER_COLUMNS} FROM clusters ORDER BY id`, [])).map((row) => clusterFromRow(row, this.#secretBox));
  }

  async updateCluster(id: string, patch: ClusterPatch): Promise<Cluster | undefined> {
    checkString(id, 'id');
    return this.#write(() => {
      const current = this.#one<ClusterRow>(`SELECT ${CLUSTER_COLUMNS} FROM clusters WHERE id = ?`, [id]);
      if (current === undefined) return { result: undefined, changes: [] };
      const values: ClusterValues = patchCluster(clusterFromRow(current, this.#secretBox), patch);
      const row = this.#one<ClusterRow>(
        `UPDATE clusters SET display_name = ?, server = ?, ca_pem = ?, credentials_sealed = ?, insecure_skip_tls_verify = ?, ace = ?, updated_at = ?
         WHERE id = ? RETURNING ${CLUSTER_COLUMNS}`,
        [
          values.displayName,
          values.server,
          values.caPem,
          sealCredentials(this.#secretBox, values.credentials),
          flag(values.insecureSkipTlsVerify),
          aceJson(values.ace),
          Date.now(),
          id,
        ],
      );
      return { result: clusterFromRow(row!, this.#secretBox), changes: [change('cluster', id)] };
    });
  }

  async deleteCluster(id: string): Promise<boolean> {
    checkString(id, 'id');
    return this.#write(() => {
      if (this.#one('SELECT id FROM clusters WHERE id = ?', [id]) === undefined) return { result: false, changes: [] };
      const tokens = this.#all<{ name: string }>('DELETE FROM tokens WHERE cluster_id = ? RETURNING name', [id]);
      const memberships = this.#all('DELETE FROM memberships WHERE cluster_id = ? RETURNING cluster_id', [id]);
      this.#run('DELETE FROM clusters WHERE id = ?', [id]);
      const changes: StoreChange[] = [change('cluster', id)];
      if (memberships.length > 0) changes.push(change('membership', id));
      for (const token of tokens) changes.push(change('token', token.name));
      return { result: true, changes };
    });
  }

  // --- memberships -------------------------------------------------------------------------

  async putMembership(membership: NewMembership): Promise<Membership> {
    const values = checkNewMembership(membership);
    return this.#write(() => {
      const row = this.#one<MembershipRow>(
        `INSERT INTO memberships (cluster_id, subject_kind, subject_name, role, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (cluster_id, subject_kind, subject_name) DO UPDATE SET role = excluded.role
         RETURNING ${MEMBERSHIP_COLUMNS}`,
        [values.clusterId, values.subjectKind, values.subjectName, values.role, Date.now()],
      );
      return { result: membershipFromRow(row!), changes: [change('membership', values.clusterId)] };
    });
  }

  async listMemberships(clusterId: string): Promise<Membership[]> {
    return this.#read(() =>
      this.#all<MembershipRow>(`SELECT ${MEMBERSHIP_COLUMNS} FROM memberships WHERE cluster_id = ? ORDER BY subject_kind, subject_name`, [checkString(clusterId, 'clusterId')]),
    ).map(membershipFromRow);
  }

  async listMembershipsOf(subjects: { readonly users: readonly string[]; readonly groups: readonly string[] }): Promise<Membership[]> {
    const { users, groups } = checkSubjects(subjects);
    if (users.length === 0 && groups.length === 0) return [];
    return this.#read(() =>
      this.#all<MembershipRow>(
        `SELECT ${MEMBERSHIP_COLUMNS} FROM memberships
         WHERE (subject_kind = 'User' AND subject_name IN (SELECT value FROM json_each(?)))
            OR (subject_kind = 'Group' AND subject_name IN (SELECT value FROM json_each(?)))
         ORDER BY cluster_id, subject_kind, subject_name`,
        [JSON.stringify(users), JSON.stringify(groups)],
      ),
    ).map(membershipFromRow);
  }

  async deleteMembership(clusterId: string, subjectKind: SubjectKind, subjectName: string): Promise<boolean> {
    const params = [checkString(clusterId, 'clusterId'), checkString(subjectKind, 'subjectKind'), checkString(subjectName, 'subjectName')];
    return this.#write(() => {
      const deleted =
        this.#all('DELETE FROM memberships WHERE cluster_id = ? AND subject_kind = ? AND subject_name = ? RETURNING cluster_id', params).length > 0;
      return { result: deleted, changes: deleted ? [change('membership', clusterId)] : [] };
    });
  }

  // --- identity provider configurations ----------------------------------------------------

  async putProviderConfig(config: NewProviderConfig): Promise<ProviderConfig> {
    const values = checkNewProviderConfig(config);
    const settings = sealSettings(this.#secretBox, values.settings);
    return this.#write(() => {
      const row = this.#one<ProviderConfigRow>(
        `INSERT INTO provider_configs (name, type, enabled, settings_sealed, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET type = excluded.type, enabled = excluded.enabled,
           settings_sealed = excluded.settings_sealed, updated_at = excluded.updated_at
         RETURNING ${PROVIDER_CONFIG_COLUMNS}`,
        [values.name, values.type, flag(values.enabled), settings, Date.now()],
      );
      return { result: providerConfigFromRow(row!, this.#secretBox), changes: [change('provider', values.name)] };
    });
  }

  async getProviderConfig(name: string): Promise<ProviderConfig | undefined> {
    const row = this.#read(() => this.#one<ProviderConfigRow>(`SELECT ${PROVIDER_CONFIG_COLUMNS} FROM provider_configs WHERE name = ?`, [checkString(name, 'name')]));
    return row && providerConfigFromRow(row, this.#secretBox);
  }

  async listProviderConfigs(): Promise<ProviderConfig[]> {
    return this.#read(() => this.#all<ProviderConfigRow>(`SELECT ${PROVIDER_CONFIG_COLUMNS} FROM provider_configs ORDER BY name`, [])).map((row) =>
      providerConfigFromRow(row, this.#secretBox),
    );
  }

  async deleteProviderConfig(name: string): Promise<boolean> {
    checkString(name, 'name');
    return this.#write(() => {
      const deleted = this.#all('DELETE FROM provider_configs WHERE name = ? RETURNING name', [name]).length > 0;
      return { result: deleted, changes: deleted ? [change('provider', name)] : [] };
    });
  }

  // --- group cache -------------------------------------------------------------------------

  async putUserGroups(groups: UserGroups): Promise<void> {
    const values = checkUserGroups(groups);
    this.#write(() => {
      this.#run(
        `INSERT INTO user_groups (user_id, provider, group_names, refreshed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, provider) DO UPDATE SET group_names = excluded.group_names, refreshed_at = excluded.refreshed_at`,
        [values.userId, values.provider, JSON.stringify(values.groups), values.refreshedAt.getTime()],
      );
      return { result: undefined, changes: [change('groups', values.userId)] };
    });
  }

  async getUserGroups(userId: string, provider: string): Promise<UserGroups | undefined> {
    const row = this.#read(() =>
      this.#one<UserGroupsRow>(`SELECT ${USER_GROUPS_COLUMNS} FROM user_groups WHERE user_id = ? AND provider = ?`, [
        checkString(userId, 'userId'),
        checkString(provider, 'provider'),
      ]),
    );
    return row && userGroupsFromRow(row);
  }

  // --- lifecycle ---------------------------------------------------------------------------

  async ping(): Promise<void> {
    this.#read(() => this.#one('SELECT 1 AS ok', []));
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#listeners.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#statements.clear();
    this.#db.close();
  }

  // --- plumbing ----------------------------------------------------------------------------

  #statement(sql: string): Database.Statement<Param[]> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare<Param[]>(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #one<T = Row>(sql: string, params: Param[]): T | undefined {
    return this.#statement(sql).get(...params) as T | undefined;
  }

  #all<T = Row>(sql: string, params: Param[]): T[] {
    return this.#statement(sql).all(...params) as T[];
  }

  #run(sql: string, params: Param[]): void {
    this.#statement(sql).run(...params);
  }

  #read<T>(work: () => T): T {
    this.#assertOpen();
    try {
      return work();
    } catch (error) {
      throw toStoreError(error);
    }
  }

  /** Runs `work` in one IMMEDIATE transaction, then announces its changes. */
  #write<T>(work: () => { result: T; changes: StoreChange[] }): T {
    this.#assertOpen();
    let outcome: { result: T; changes: StoreChange[] };
    try {
      outcome = this.#db.transaction(work).immediate();
    } catch (error) {
      throw toStoreError(error);
    }
    this.#listeners.announce(distinctChanges(outcome.changes));
    return outcome.result;
  }

  #assertOpen(): void {
    if (this.#closed) throw new KubegateError('STORE_UNAVAILABLE', 'the store is closed');
  }
}

function tokenWhere(filter: TokenFilter): { sql: string; params: Param[] } {
  const clauses: string[] = [];
  const params: Param[] = [];
  if (filter.userId !== undefined) {
    clauses.push('user_id = ?');
    params.push(filter.userId);
  }
  if (filter.clusterId !== undefined) {
    clauses.push('cluster_id = ?');
    params.push(filter.clusterId);
  }
  if (filter.provider !== undefined) {
    clauses.push('provider = ?');
    params.push(filter.provider);
  }
  return { sql: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

function flag(value: boolean): number {
  return value ? 1 : 0;
}

function millis(date: Date | null): number | null {
  return date === null ? null : date.getTime();
}

const UNAVAILABLE_CODES = ['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_FULL', 'SQLITE_READONLY', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_PERM'];

/** SQLite errors as store errors; our own errors (KubegateError, TypeError) pass through. */
function toStoreError(error: unknown): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  if (error.code.startsWith('SQLITE_CONSTRAINT')) return new KubegateError('STORE_CONSTRAINT', undefined, { cause: error });
  if (UNAVAILABLE_CODES.some((code) => error.code === code || error.code.startsWith(`${code}_`))) {
    return new KubegateError('STORE_UNAVAILABLE', undefined, { cause: error });
  }
  return new KubegateError('INTERNAL', undefined, { cause: error });
}
