/**
 * The embedded Store: one SQLite file through better-sqlite3, for a single proxy process
 * (or the workers of one, see relay.ts). The queries live in sql-store.ts; this file is
 * the SQLite dialect of it.
 *
 * - WAL journal, foreign keys on, `synchronous = NORMAL` (durable at every checkpoint, safe
 *   against corruption; a power cut may lose the last few commits).
 * - Two connections: writes go through one, strictly one transaction after another (a
 *   queue: better-sqlite3 calls are synchronous, but the shared queries await between
 *   statements, and two transactions must never interleave on one connection); reads go
 *   through the other, so they never see a write transaction that has not committed, and
 *   never wait behind one (WAL readers do not block on writers).
 * - Nothing waits for a lock on the event loop (issue #16.1). better-sqlite3 is synchronous,
 *   and SQLite's own busy timeout sleeps inside the call: a write waiting for another
 *   process's lock used to freeze every request of the proxy — cached-token requests
 *   included — for the whole 5 s timeout. So both connections have a busy timeout of 0: a
 *   statement that finds the database locked fails at once with SQLITE_BUSY, and is tried
 *   again after a timer (1 ms, doubling up to 25 ms) until `busyTimeoutMs` has passed,
 *   then fails with STORE_UNAVAILABLE; the event loop keeps turning in between. Writes
 *   take the lock with `BEGIN IMMEDIATE` first, so a busy write transaction is retried
 *   whole before any of its statements ran. Chosen over a worker thread: an uncontended
 *   statement stays a direct call (a worker costs a message round trip and a copy of every
 *   row on each read, the hot path's cache misses included), and the failure mode is the
 *   same — a write that cannot get the lock in time is STORE_UNAVAILABLE (503).
 *   Measured (shared 2-core machine, best of 4 runs) with another connection holding
 *   `BEGIN IMMEDIATE` for 1 s: the longest event-loop stall went from 5,020 ms (and the
 *   write failed) to under 10 ms (and the write succeeded once the lock was released);
 *   uncontended calls cost the same within noise (getToken 19.5 → 23 µs, touchToken 63 →
 *   81 µs, createUser 195 → 155 µs).
 * - Migrations run under an IMMEDIATE transaction at open, so two processes opening the
 *   same file one after the other (or at once) apply each one exactly once.
 * - Times are integer milliseconds since the epoch, flags 0/1, JSON and string arrays as text.
 * - Changes are announced to this process's listeners after commit. SQLite has no way to
 *   tell other processes; run PostgreSQL for several replicas.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { KubegateError } from '../errors.js';
import { createChangeListeners } from './changes.js';
import { sqliteMigrations } from './migrations.js';
import type { SecretBox } from './secret-box.js';
import { createSqlStore, type SqlDialect, type SqlParam, type SqlRunner, type Written } from './sql-store.js';
import type { Store } from './store.js';

export interface SqliteStoreOptions {
  /** The database file; parent directories are created (mode 0700). */
  readonly path: string;
  readonly secretBox: SecretBox;
  /** How long a write waits for another connection's lock; default 5000. */
  readonly busyTimeoutMs?: number;
  /** Receives errors no caller can be told about: a change listener that threw, a failed touchToken. */
  readonly onError?: (error: unknown) => void;
}

type Driven = string | number | null;

export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  if (typeof options?.path !== 'string' || options.path.length === 0) throw new TypeError('SqliteStoreOptions.path is required');
  if (options.secretBox === undefined) throw new TypeError('SqliteStoreOptions.secretBox is required');
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const writer = connect(options.path);
  let reader: Database.Database | undefined;
  try {
    await unlessBusy(() => {
      writer.pragma('journal_mode = WAL');
      writer.pragma('synchronous = NORMAL');
      migrate(writer);
    }, busyTimeoutMs);
    reader = connect(options.path);
    reader.pragma('query_only = ON');
  } catch (error) {
    writer.close();
    reader?.close();
    const storeError = toStoreError(error);
    throw storeError instanceof KubegateError ? storeError : new KubegateError('STORE_UNAVAILABLE', 'the SQLite database cannot be prepared', { cause: error });
  }
  restrictFileModes(options.path);
  const onError = options.onError ?? (() => {});
  return createSqlStore({ dialect: new SqliteDialect(writer, reader, busyTimeoutMs), secretBox: options.secretBox, listeners: createChangeListeners(onError), onError });
}

/** A connection that never waits for a lock itself: see `unlessBusy`. */
function connect(path: string): Database.Database {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    return new Database(path, { timeout: 0 });
  } catch (error) {
    throw new KubegateError('STORE_UNAVAILABLE', 'the SQLite database cannot be opened', { cause: error });
  }
}

/** Applies missing migrations with foreign keys off (a table rebuild must not cascade), checking them before commit. */
function migrate(db: Database.Database): void {
  db.pragma('foreign_keys = OFF');
  try {
    applyMigrations(db);
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

function applyMigrations(db: Database.Database): void {
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
    if ((db.pragma('foreign_key_check') as unknown[]).length > 0) throw new KubegateError('INTERNAL', 'a migration left rows that break a foreign key');
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

class SqliteDialect implements SqlDialect {
  readonly kind = 'sqlite' as const;
  readonly lockRow = '';
  /** Epoch milliseconds, from the (one) machine's clock: SQLite is local to it. */
  readonly now = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
  readonly #writer: Connection;
  readonly #reader: Connection;
  readonly #busyTimeoutMs: number;
  /** The tail of the write queue: each transaction starts when the previous one settled. */
  #writes: Promise<unknown> = Promise.resolve();

  constructor(writer: Database.Database, reader: Database.Database, busyTimeoutMs: number) {
    this.#writer = new Connection(writer);
    this.#reader = new Connection(reader);
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  oneOf(column: string): string {
    return `${column} IN (SELECT value FROM json_each(?))`;
  }

  nowPlus(): string {
    return `(${this.now} + ?)`;
  }

  async all<R>(sql: string, params: readonly SqlParam[]): Promise<R[]> {
    try {
      return await unlessBusy(() => this.#reader.all<R>(sql, params), this.#busyTimeoutMs);
    } catch (error) {
      throw toStoreError(error);
    }
  }

  transaction<T>(work: (tx: SqlRunner) => Promise<Written<T>>): Promise<Written<T>> {
    const run = this.#writes.then(() => this.#transaction(work));
    this.#writes = run.catch(() => undefined);
    return run;
  }

  async #transaction<T>(work: (tx: SqlRunner) => Promise<Written<T>>): Promise<Written<T>> {
    const writer = this.#writer;
    try {
      await unlessBusy(() => writer.exec('BEGIN IMMEDIATE'), this.#busyTimeoutMs);
    } catch (error) {
      throw toStoreError(error);
    }
    try {
      const outcome = await work({ all: async <R>(sql: string, params: readonly SqlParam[]) => writer.all<R>(sql, params) });
      writer.exec('COMMIT');
      return outcome;
    } catch (error) {
      writer.rollback();
      throw toStoreError(error);
    }
  }

  async ping(): Promise<void> {
    await this.all('SELECT 1 AS ok', []);
  }

  async close(): Promise<void> {
    await this.#writes;
    this.#writer.close();
    this.#reader.close();
  }
}

/** One better-sqlite3 connection with its statements prepared once, by their SQL. */
class Connection {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement<Driven[]>>();

  constructor(db: Database.Database) {
    this.#db = db;
  }

  all<R>(sql: string, params: readonly SqlParam[]): R[] {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare<Driven[]>(sql);
      this.#statements.set(sql, statement);
    }
    const values = params.map(driven);
    if (statement.reader) return statement.all(...values) as R[];
    statement.run(...values);
    return [];
  }

  exec(sql: string): void {
    this.#db.exec(sql);
  }

  rollback(): void {
    if (!this.#db.inTransaction) return;
    try {
      this.#db.exec('ROLLBACK');
    } catch {
      // SQLite rolled back already (it does on some errors)
    }
  }

  close(): void {
    this.#statements.clear();
    this.#db.close();
  }
}

const MAX_RETRY_DELAY_MS = 25;

/**
 * Runs `attempt` (synchronous, and failing at once on a lock: busy timeout 0) until it does
 * not fail with SQLITE_BUSY, waiting on timers between tries so the event loop keeps
 * turning; STORE_UNAVAILABLE once `timeoutMs` has passed.
 */
async function unlessBusy<T>(attempt: () => T, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delayMs = 1; ; delayMs = Math.min(delayMs * 2, MAX_RETRY_DELAY_MS)) {
    try {
      return attempt();
    } catch (error) {
      if (!(error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY'))) throw error;
      if (Date.now() >= deadline) {
        throw new KubegateError('STORE_UNAVAILABLE', 'the SQLite database stayed locked by another connection', { cause: error });
      }
      await delay(delayMs);
    }
  }
}

function driven(param: SqlParam): Driven {
  if (param instanceof Date) return param.getTime();
  if (typeof param === 'boolean') return param ? 1 : 0;
  if (Array.isArray(param)) return JSON.stringify(param);
  return param as Driven;
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
