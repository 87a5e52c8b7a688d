/**
 * One proxy per SQLite data dir (issue #15.5): a second `npm start` on the same directory
 * would share the database with no relay of changes (a token revoked in one process keeps
 * working in the other's cache) and race on the key file and TLS material.
 *
 * Design note: the lock is an exclusive lock the operating system holds for this process,
 * so it can never be left stale — not after a crash, not after kill -9: the kernel drops
 * a dead process's locks. It is taken through SQLite, which already handles POSIX lock
 * quirks (a lock lost when any descriptor of the file closes, two connections in one
 * process): `<dataDir>/proxy.lock` is a small SQLite database opened in EXCLUSIVE locking
 * mode and written once, after which the connection keeps its exclusive lock until it
 * closes. A second proxy finds it locked at once (busy timeout 0). `<dataDir>/proxy.pid`
 * holds the holder's PID for the refusal message only; the lock alone decides. In worker
 * mode the primary holds the lock for its workers.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { KubegateError } from '../errors.js';
import { loadBetterSqlite3 } from './native-sqlite.js';

export interface DataDirLock {
  /** Gives the lock up (also happens when the process ends, however it ends). */
  release(): void;
}

/** Takes the data dir's lock; DATA_DIR_LOCKED when another process holds it. The directory must exist. */
export function lockDataDir(dataDir: string): DataDirLock {
  const lockFile = join(dataDir, 'proxy.lock');
  const pidFile = join(dataDir, 'proxy.pid');
  const Sqlite = loadBetterSqlite3();
  let db: Database.Database | undefined;
  try {
    db = new Sqlite(lockFile, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS held (pid INTEGER NOT NULL)');
    db.exec(`DELETE FROM held; INSERT INTO held (pid) VALUES (${process.pid})`);
  } catch (error) {
    db?.close();
    if (error instanceof Sqlite.SqliteError && error.code.startsWith('SQLITE_BUSY')) {
      const holder = readHolder(pidFile);
      throw new KubegateError(
        'DATA_DIR_LOCKED',
        `dataDir: ${dataDir} is in use by another kubegate proxy${holder === undefined ? '' : ` (pid ${holder})`}: ` +
          'stop that one, or give this one another data dir (--data-dir, KUBEGATE_DATA_DIR)',
        { field: 'dataDir', cause: error },
      );
    }
    throw new KubegateError('CONFIG_INVALID', `dataDir: cannot create the lock file ${lockFile}`, { field: 'dataDir', cause: error });
  }
  writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
  const held = db;
  let released = false;
  return {
    release(): void {
      if (released) return;
      released = true;
      held.close();
    },
  };
}

function readHolder(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
