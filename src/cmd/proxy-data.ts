/**
 * The proxy's data dir and what is in it, opened the same way by the single process
 * (proxy.ts: startProxy) and by the primary of `--workers N` (workers.ts, which opens it
 * once, before forking, so that no two workers race on a first start): data dir (0700) →
 * the data dir lock (SQLite only) → secret key (configured, or the key file, made on first
 * start) → store (migrated) → the bootstrap admin → TLS serving material (an operator's
 * files, or the proxy's own CA and certificate, made on first start; only then is
 * @peculiar/x509 loaded).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyConfig } from '../config/proxy.js';
import { KubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import { bootstrapConfiguredAdmin } from '../proxy/bootstrap.js';
import { lockDataDir, type DataDirLock } from '../store/data-dir-lock.js';
import { openStoreWithKey, type SecretKeySource } from '../store/open.js';
import type { Store } from '../store/store.js';

/**
 * With SQLite, one proxy process (or one primary and its workers) per data dir: see
 * store/data-dir-lock.ts. PostgreSQL replicas share their store by design and take no lock.
 */
export function lockProxyDataDir(config: ProxyConfig): DataDirLock | undefined {
  return config.store.type === 'sqlite' ? lockDataDir(config.dataDir) : undefined;
}

/** The configured key, else the key file (`<dataDir>/secret.key` by default). */
function secretKeySource(config: ProxyConfig): SecretKeySource {
  return config.secretKey !== undefined ? { key: config.secretKey } : { file: config.secretKeyFile ?? join(config.dataDir, 'secret.key') };
}

export interface ServingTls {
  readonly certPem: string;
  readonly keyPem: string;
  /** PEM of the CA that signed the serving certificate, or null for a configured certificate. */
  readonly caPem: string | null;
}

export interface ProxyData {
  /** The at-rest secret key (32 bytes), shared by every worker and replica. */
  readonly secretKey: Buffer;
  /** The opened store; the caller closes it. */
  readonly store: Store;
  readonly tls: ServingTls;
  /** The data dir lock this call took (SQLite, and not already held by a primary); the caller releases it. */
  readonly dataDirLock: DataDirLock | undefined;
}

export interface OpenProxyDataOptions {
  /** Decorates the opened store (a worker relays its changes to the other workers). */
  readonly wrapStore?: ((store: Store) => Store) | undefined;
  /** The primary of `--workers N` holds the data dir lock for its workers (and itself). */
  readonly dataDirLockedByPrimary?: boolean | undefined;
}

export async function openProxyData(config: ProxyConfig, logger: Logger, options: OpenProxyDataOptions = {}): Promise<ProxyData> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const dataDirLock = options.dataDirLockedByPrimary === true ? undefined : lockProxyDataDir(config);
  let opened: Awaited<ReturnType<typeof openStoreWithKey>>;
  try {
    opened = await openStoreWithKey(config.store, secretKeySource(config), {
      onError: (error) => logger.warn({ err: error }, 'store background error'),
    });
  } catch (error) {
    dataDirLock?.release();
    throw error;
  }
  const store = options.wrapStore?.(opened.store) ?? opened.store;
  try {
    await bootstrapConfiguredAdmin(store, config, logger);
    return { secretKey: opened.secretKey, store, tls: await servingTls(config), dataDirLock };
  } catch (error) {
    await store.close();
    dataDirLock?.release();
    throw error;
  }
}

async function servingTls(config: ProxyConfig): Promise<ServingTls> {
  const { certFile, keyFile } = config.tls;
  if (certFile !== undefined && keyFile !== undefined) {
    try {
      return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8'), caPem: null };
    } catch (error) {
      throw new KubegateError('CONFIG_INVALID', `tls: cannot read the certificate or key file`, { field: 'tls.certFile', cause: error });
    }
  }
  const { loadOrCreateServingMaterial } = await import('../pki/serving-material.js');
  const material = await loadOrCreateServingMaterial(join(config.dataDir, 'tls'), { sans: config.tls.sans });
  return { certPem: material.certPem, keyPem: material.keyPem, caPem: material.caCertPem };
}
