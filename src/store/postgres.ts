/**
 * The Store for several proxy replicas: PostgreSQL through a pg Pool. The queries live in
 * sql-store.ts; this file is the PostgreSQL dialect of it.
 *
 * - Migrations run in ONE transaction holding a transaction-level advisory lock, so any
 *   number of replicas may start at once: one applies the missing versions, the others
 *   wait, then find nothing left to do. PostgreSQL DDL is transactional: a failed
 *   migration leaves no trace.
 * - Multi-step writes run in a transaction on one pooled connection; read-modify-write
 *   paths lock the row (`FOR UPDATE`) so concurrent replicas cannot lose an update.
 * - Every statement is a named prepared statement (the shared `?` placeholders become
 *   `$1…$n`), prepared once per connection.
 * - Errors: integrity violations (SQLSTATE class 23) are STORE_CONSTRAINT; connection
 *   failures, server shutdown, pool timeouts, deadlocks and serialization failures are
 *   STORE_UNAVAILABLE (try again); anything else is INTERNAL. The original is the cause.
 * - Changes: see postgres-changes.ts. Each write NOTIFYs inside its transaction and
 *   announces locally after COMMIT; other replicas hear it through LISTEN.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { KubegateError } from '../errors.js';
import { createChangeListeners } from './changes.js';
import { postgresMigrations } from './migrations.js';
import { describeStartupError } from './postgres-startup.js';
import { CHANGE_CHANNEL, changePayload, listenForChanges, settledWithin, type ChangeFeed } from './postgres-changes.js';
import type { SecretBox } from './secret-box.js';
import { createSqlStore, type SqlDialect, type SqlParam, type SqlRunner, type Written } from './sql-store.js';
import type { Store } from './store.js';

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
    const dialect = new PostgresDialect(pool, onError, instanceId, feed, connectTimeoutMs);
    return createSqlStore({ dialect, secretBox: options.secretBox, listeners, onError });
  } catch (error) {
    await pool.end().catch(() => {});
    throw describeStartupError(error, options.connectionString) ?? toStoreError(error);
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

class PostgresDialect implements SqlDialect {
  readonly kind = 'postgres' as const;
  readonly lockRow = ' FOR UPDATE';
  /** The server's clock (the transaction's start), the same for every replica. */
  readonly now = 'now()';
  readonly #pool: pg.Pool;
  readonly #onError: (error: unknown) => void;
  readonly #instanceId: string;
  readonly #feed: ChangeFeed;
  readonly #connectTimeoutMs: number;
  readonly #statements = new Map<string, { name: string; text: string }>();

  constructor(pool: pg.Pool, onError: (error: unknown) => void, instanceId: string, feed: ChangeFeed, connectTimeoutMs: number) {
    this.#pool = pool;
    this.#onError = onError;
    this.#instanceId = instanceId;
    this.#feed = feed;
    this.#connectTimeoutMs = connectTimeoutMs;
  }

  oneOf(column: string): string {
    return `${column} = ANY (?::text[])`;
  }

  nowPlus(): string {
    return "(now() + ?::double precision * interval '1 millisecond')";
  }

  async all<R>(sql: string, params: readonly SqlParam[]): Promise<R[]> {
    try {
      return await this.#run<R>(this.#pool, sql, params);
    } catch (error) {
      throw toStoreError(error);
    }
  }

  /**
   * Runs `work` in one transaction on one connection; its changes are NOTIFYed inside the
   * transaction, so other replicas hear them only if it commits.
   */
  async transaction<T>(work: (tx: SqlRunner) => Promise<Written<T>>): Promise<Written<T>> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw toStoreError(error);
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const outcome = await work({ all: <R>(sql: string, params: readonly SqlParam[]) => this.#run<R>(client, sql, params) });
      if (outcome.changes.length > 0) {
        await this.#run(client, 'SELECT pg_notify(?, payload) FROM unnest(?::text[]) AS payload', [
          CHANGE_CHANNEL,
          outcome.changes.map((change) => changePayload(this.#instanceId, change)),
        ]);
      }
      await client.query('COMMIT');
      return outcome;
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

  /** Also STORE_UNAVAILABLE when the database does not answer within the connect timeout (a hung network). */
  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KubegateError('STORE_UNAVAILABLE', 'the database did not answer in time')), this.#connectTimeoutMs);
    });
    try {
      await Promise.race([this.all('SELECT 1 AS ok', []), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.#feed.close();
    await settledWithin(this.#pool.end().catch(this.#onError), this.#connectTimeoutMs);
  }

  /**
   * PostgreSQL text cannot hold NUL, so no stored value equals a string containing one (and
   * writes refuse such strings before they get here): a statement with such a parameter
   * matches nothing, and such array elements match nothing, instead of failing the query.
   */
  async #run<R>(db: Queryable, sql: string, params: readonly SqlParam[]): Promise<R[]> {
    if (params.some((param) => typeof param === 'string' && param.includes('\u0000'))) return [];
    const values = params.map((param) => (Array.isArray(param) ? param.filter((item: string) => !item.includes('\u0000')) : param)) as Param[];
    const { name, text } = this.#statement(sql);
    return (await db.query<R & pg.QueryResultRow>({ name, text, values })).rows;
  }

  /** A named prepared statement: parsed and planned once per pooled connection. */
  #statement(sql: string): { name: string; text: string } {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = { name: `kubegate_${this.#statements.size + 1}`, text: numberedPlaceholders(sql) };
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

/** `?` → `$1`, `$2`, … outside quoted literals and identifiers. */
function numberedPlaceholders(sql: string): string {
  let n = 0;
  let quote: string | undefined;
  let text = '';
  for (const char of sql) {
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') {
      quote = char;
    } else if (char === '?') {
      text += `$${(n += 1)}`;
      continue;
    }
    text += char;
  }
  return text;
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
