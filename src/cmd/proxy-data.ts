/**
 * What `kubegate proxy` keeps in its data dir and who may use it, shared by the single
 * process (proxy.ts) and the primary of `--workers N` (workers.ts).
 */
import { join } from 'node:path';
import type { ProxyConfig } from '../config/proxy.js';
import { lockDataDir, type DataDirLock } from '../store/data-dir-lock.js';
import type { SecretKeySource } from '../store/open.js';

/**
 * With SQLite, one proxy process (or one primary and its workers) per data dir: see
 * store/data-dir-lock.ts. PostgreSQL replicas share their store by design and take no lock.
 */
export function lockProxyDataDir(config: ProxyConfig): DataDirLock | undefined {
  return config.store.type === 'sqlite' ? lockDataDir(config.dataDir) : undefined;
}

/** The configured key, else the key file (`<dataDir>/secret.key` by default). */
export function secretKeySource(config: ProxyConfig): SecretKeySource {
  return config.secretKey !== undefined ? { key: config.secretKey } : { file: config.secretKeyFile ?? join(config.dataDir, 'secret.key') };
}
