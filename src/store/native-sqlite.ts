/**
 * better-sqlite3, loaded when first needed. It is a native module and an optional
 * dependency: where it could not be built at install time, the CLI and a proxy on
 * PostgreSQL still work, and a proxy on SQLite says what is missing instead of crashing.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { KubegateError } from '../errors.js';

/** The error for a SQLite proxy without the module. */
export function sqliteModuleMissing(cause: unknown): KubegateError {
  return new KubegateError(
    'CONFIG_INVALID',
    "store.type: the SQLite store needs the better-sqlite3 module, which is not installed or was not built (building it needs python3, make, g++ and Node's headers, which node-gyp downloads from nodejs.org unless npm_config_nodedir names an installed Node; `npm ci --foreground-scripts` shows why it failed); reinstall kubegate with those, or use PostgreSQL (store.url)",
    { field: 'store.type', cause },
  );
}

/** The better-sqlite3 constructor; CONFIG_INVALID (sqliteModuleMissing) when it cannot be loaded. */
export function loadBetterSqlite3(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    throw sqliteModuleMissing(error);
  }
}
