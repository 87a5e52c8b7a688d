/**
 * The one place that chooses a Store implementation from configuration.
 */
import { openPostgresStore } from './postgres.js';
import type { SecretBox } from './secret-box.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './store.js';

export type StoreConfig = { readonly type: 'sqlite'; readonly path: string } | { readonly type: 'postgres'; readonly url: string };

export interface OpenStoreOptions {
  /** Receives errors no caller can be told about (see SqliteStoreOptions / PostgresStoreOptions). */
  readonly onError?: (error: unknown) => void;
}

/** Opens (and migrates) the configured store; STORE_UNAVAILABLE when it cannot be reached. */
export async function openStore(config: StoreConfig, secretBox: SecretBox, options: OpenStoreOptions = {}): Promise<Store> {
  switch (config.type) {
    case 'sqlite':
      return openSqliteStore({ path: config.path, secretBox, ...options });
    case 'postgres':
      return openPostgresStore({ connectionString: config.url, secretBox, ...options });
    default:
      throw new TypeError(`unknown store type ${JSON.stringify((config as { type: unknown }).type)}`);
  }
}
