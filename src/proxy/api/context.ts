/**
 * Everything the REST API's routes depend on, in one object handed to createProxyApp. Tests
 * build it with a real store and real authenticators; nothing is reached through module
 * state.
 */
import type { ClusterSyncStatus } from '../../sync/sync.js';
import type { CachedAuthenticator } from '../../auth/cached.js';
import type { ProxyConfig } from '../../config/proxy.js';
import type { Logger } from '../../log.js';
import type { ProxyMetrics } from '../../metrics.js';
import type { ProviderHealth } from '../../providers/health.js';
import type { ProviderRegistry } from '../../providers/provider.js';
import type { TokenIssuer } from '../../issuer/issuer.js';
import type { Cluster, Store } from '../../store/store.js';
import type { ClusterStatusMonitor } from '../../clusters/status.js';
import type { CredentialCheck } from '../../clusters/credential-check.js';
import type { ClusterRegistry } from '../../clusters/registry.js';
import type { ClientAddressOf } from '../client-address.js';
import type { LoginRateLimiter } from '../login-rate-limit.js';
import type { ApiAuditEvent } from './audit-event.js';

/** The parts of the proxy configuration the REST API reads (a whole ProxyConfig fits). */
export type ProxyApiConfig = Pick<ProxyConfig, 'tokens' | 'loginRateLimit' | 'trustedProxies' | 'agents' | 'sync'>;

export interface ProxyApiContext {
  readonly store: Store;
  /** Clusters and memberships; routes that change them await `refresh()` before answering. */
  readonly directory: ClusterRegistry;
  /** The cached token authenticator; revocation calls `invalidateToken` / `invalidateUser`. */
  readonly authenticator: CachedAuthenticator;
  readonly providers: ProviderRegistry;
  /** The JWT issuer of the `jwt` authorized-endpoint mode (keys in the store). */
  readonly issuer: TokenIssuer;
  readonly config: ProxyApiConfig;
  /**
   * The proxy's base URL as clients reach it (no trailing slash), for kubeconfigs. A
   * function: with `listen` on port 0 it is known only once the server is bound.
   */
  readonly publicUrl: () => string;
  /**
   * The CA that signed the proxy's serving certificate (PEM), put into kubeconfigs and
   * served at /v1/cacerts; null for an operator-supplied certificate that clients verify
   * with their system roots (kubeconfigs then carry no CA, /v1/cacerts is 404).
   */
  readonly caPem: string | null;
  readonly logger: Logger;
  /** Where audit events of administrative actions and logins go (the audit trail). */
  readonly audit: (event: ApiAuditEvent) => void;
  readonly metrics?: ProxyMetrics | undefined;
  readonly clusterStatus: Pick<ClusterStatusMonitor, 'get' | 'probe'>;
  /** The last background health check of an enabled provider (admins see it in GET /v1/providers). */
  readonly providerHealth?: (name: string) => ProviderHealth | undefined;
  /** Asks a direct cluster whether the registered credential may do what the proxy needs (credential-check.ts). */
  readonly checkCredential: (cluster: Cluster) => Promise<CredentialCheck>;
  /** State of the sync to the cluster (authorized endpoint), or undefined when it has none. */
  readonly syncStatus?: (clusterId: string) => ClusterSyncStatus | undefined;
  /**
   * Removes kubegate's objects from a cluster marked as being deleted, then deletes it from
   * the store (the sync's syncNow); rejects while that fails (the sync retries by itself).
   * Absent (no sync): the cluster is deleted from the store at once.
   */
  readonly removeCluster?: (clusterId: string) => Promise<void>;
  /**
   * The key pending browser/device logins are sealed with (deriveLoginStateKey of the shared
   * secret key, src/providers/login-state.ts): the same in every worker and replica, so a
   * callback may land on any of them. Required: there is no per-process fallback.
   */
  readonly loginStateKey: Buffer;
  readonly now: () => Date;
}

/** What createProxyApp builds once for the routes that need it. */
export interface ApiServices {
  /** Failed-login limits, shared by POST /v1/login and POST /v1/me/password. */
  readonly limiter: LoginRateLimiter;
  /** The client's address (the socket's, or from a trusted proxy's X-Forwarded-For). */
  readonly clientAddress: ClientAddressOf;
}
