/**
 * The one place that chooses a Store implementation from configuration, and that pairs a
 * store with its secret key.
 *
 * Design note (issue #15.7): the embedded default keeps its key in `<dataDir>/secret.key`.
 * A missing key file used to be replaced by a new key silently — and then no sealed value
 * (cluster credentials, provider settings) could ever be opened again. Now a new key file
 * is written only once the store is known to hold nothing sealed: the store is opened with
 * a candidate key first, and if it holds sealed values the start is refused
 * (SECRET_KEY_MISSING) and no file is written, so the operator can still restore the real
 * key. A key file another process created meanwhile wins (creation is exclusive).
 *
 * The SQLite store is loaded only when configured: better-sqlite3 is a native module (an
 * optional dependency), so the CLI (`kubegate login`, `kubegate token`) and a proxy on
 * PostgreSQL work on a machine where it could not be built. The PostgreSQL store (and pg)
 * is loaded only when configured too: a proxy on SQLite never holds it in memory.
 */
import { randomBytes } from 'node:crypto';
import { KubegateError } from '../errors.js';
import { sqliteModuleMissing } from './native-sqlite.js';
import { SECRET_KEY_BYTES, createKeyFile, createSecretBox, parseSecretKey, readKeyFile, type SecretBox } from './secret-box.js';
import type { Store } from './store.js';

export type StoreConfig = { readonly type: 'sqlite'; readonly path: string } | { readonly type: 'postgres'; readonly url: string };

export interface OpenStoreOptions {
  /** Receives errors no caller can be told about (see SqliteStoreOptions / PostgresStoreOptions). */
  readonly onError?: (error: unknown) => void;
}

/** Opens (and migrates) the configured store; STORE_UNAVAILABLE when it cannot be reached. */
export async function openStore(config: StoreConfig, secretBox: SecretBox, options: OpenStoreOptions = {}): Promise<Store> {
  switch (config.type) {
    case 'sqlite': {
      const { openSqliteStore } = await loadSqliteStore();
      return openSqliteStore({ path: config.path, secretBox, ...options });
    }
    case 'postgres': {
      const { openPostgresStore } = await import('./postgres.js');
      return openPostgresStore({ connectionString: config.url, secretBox, ...options });
    }
    default:
      throw new TypeError(`unknown store type ${JSON.stringify((config as { type: unknown }).type)}`);
  }
}

/** Where the secret key comes from: the configured base64 key, else the key file. */
export type SecretKeySource = { readonly key: string } | { readonly file: string };

/** Opens the store with its secret key, creating the key file only where that loses nothing (see the design note). */
export async function openStoreWithKey(
  config: StoreConfig,
  source: SecretKeySource,
  options: OpenStoreOptions = {},
): Promise<{ readonly store: Store; readonly secretKey: Buffer }> {
  if ('key' in source) {
    const secretKey = parseSecretKey(source.key);
    return { store: await openStore(config, createSecretBox(secretKey), options), secretKey };
  }
  const existing = readKeyFile(source.file);
  if (existing !== undefined) return { store: await openStore(config, createSecretBox(existing), options), secretKey: existing };

  const candidate = randomBytes(SECRET_KEY_BYTES);
  const store = await openStore(config, createSecretBox(candidate), options);
  try {
    if (await store.hasSealedSecrets()) {
      throw new KubegateError(
        'SECRET_KEY_MISSING',
        `the secret key file ${source.file} is missing, but the store holds cluster credentials or provider settings sealed with it: ` +
          'restore the file from a backup (or set secretKey / KUBEGATE_SECRET_KEY to the same key), or start with an empty data dir',
        { field: 'secretKey' },
      );
    }
    const secretKey = createKeyFile(source.file, candidate);
    if (secretKey.equals(candidate)) return { store, secretKey };
    // Another process created the file first: use its key, as it does.
    await store.close();
    return { store: await openStore(config, createSecretBox(secretKey), options), secretKey };
  } catch (error) {
    await store.close();
    throw error;
  }
}

async function loadSqliteStore(): Promise<typeof import('./sqlite.js')> {
  try {
    return await import('./sqlite.js');
  } catch (error) {
    throw sqliteModuleMissing(error);
  }
}
