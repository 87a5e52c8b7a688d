/**
 * `kubegate proxy`: the whole process, wired in one place.
 *
 * config → logger → proxy data (data dir and its lock, secret key, store, bootstrap admin,
 * TLS material: proxy-data.ts) → cluster directory → providers → token chain
 * cache(group(union(kubegate tokens, OIDC bearer))) → tunnels → forwarder → REST app →
 * web console (on the REST app) → server. Requests are dispatched by path before express
 * sees them:
 *   /k8s/clusters/…           → forwarder (the hot path: no express, no I/O on a cache hit)
 *   /healthz /readyz          → health handler
 *   /metrics                  → health handler only with `metrics.bearerTokenFile` (the
 *                               scrape must present that token), else the REST API's 404
 *   /, /console/…             → the web console (`console.enabled`), which calls the REST API in process
 *   everything else           → the express REST API
 * `/metrics` is served on the separate `metrics.listen` listener (plain HTTP, loopback by
 * default), which serves nothing else but `/healthz` and `/readyz`.
 * Store change announcements (local, or from other replicas through PostgreSQL) invalidate
 * the token cache and end the open streams of a revoked token, a disabled user or a removed
 * membership, so that revocation is immediate on every path (requests still in admission at
 * that moment are refused too: see forward.ts); when a group refresh removes the group that
 * granted a membership, the open streams that relied on it end too.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import type { TokenAuthenticator } from '../auth/authenticator.js';
import { createTokenChain } from '../auth/token-chain.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME } from '../auth/user.js';
import { KubegateError } from '../errors.js';
import { configForLog, loadProxyConfig } from '../config/proxy.js';
import type { ProxyConfig, ProxyConfigFlags } from '../config/proxy.js';
import type { LoadConfigOptions } from '../config/source.js';
import { formatHost, formatHostPort, parseListenAddress } from '../config/listen.js';
import { readSecretFile } from '../config/secret-file.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { createProxyMetrics, createTunnelMetrics } from '../metrics.js';
import { createPeerLinks, derivePeerKey, type PeerLinks } from '../clusters/peers.js';
import { startTunnelPresence } from '../clusters/tunnel-presence.js';
import { createTunnelHub } from '../clusters/tunnels.js';
import { createTunnelEndpoint } from '../proxy/tunnel-endpoint.js';
import { createConsoleApp, deriveConsoleKey, isConsolePath } from '../console/app.js';
import { createTokenIssuer } from '../issuer/issuer.js';
import { createProxyApp } from '../proxy/app.js';
import { clientAddressResolver } from '../proxy/client-address.js';
import { isClusterPath } from '../proxy/cluster-path.js';
import { createClusterStatus, sharedClusterStatusRecords } from '../clusters/status.js';
import { checkClusterCredential } from '../clusters/credential-check.js';
import { createClusterRegistry } from '../clusters/registry.js';
import { createForwarder, type OpenStream } from '../proxy/forward.js';
import { createImpersonationReviewer } from '../proxy/impersonation-review.js';
import { roleRefusal } from '../proxy/role-verbs.js';
import { createAuditSink, forwardMetrics } from '../proxy/audit-trail.js';
import { createUpstreamPool } from '../clusters/upstreams.js';
import { createClusterSync } from '../sync/sync.js';
import type { ClusterSync } from '../sync/sync.js';
import { whenClusterRemoved } from '../sync/removal.js';
import { sharedSyncStatus } from '../sync/status-report.js';
import { createGroupRefresher, revokeDisabledProviders } from '../providers/group-refresh.js';
import { createProviderHealthMonitor, sharedProviderHealthRecords, upOf } from '../providers/health.js';
import { createProviders, type ProviderRegistry } from '../providers/index.js';
import { deriveLoginStateKey } from '../providers/login-state.js';
import { recordVerifiedEmail } from '../providers/verified-email.js';
import { loadJobReports } from '../store/job-reports.js';
import { holdLease } from '../store/lease.js';
import type { ClusterRole, Store } from '../store/store.js';
import { openProxyData } from './proxy-data.js';
import { runProxyWorkers } from './workers.js';
import { createHealthHandler, createLongRunningRegistry, DEFAULT_BODY_TIMEOUT_MS, installReopenHandler, installSignalHandlers, startMetricsServer, startServer } from '../server.js';
import type { RunningServer } from '../server.js';
import { writeStatus } from '../kube/status.js';

/** The store lease whose holder runs the background jobs. */
const BACKGROUND_LEASE = 'background-jobs';
/** How long a replica that does not sync waits for the holder to remove a deleted cluster (the API answers 202 sooner). */
const REMOVAL_WAIT_MS = 30_000;

export interface RunningProxy {
  /** `https://host:port` the proxy is bound to (loopback for a wildcard bind). */
  readonly url: string;
  /** The URL put in kubeconfigs. */
  readonly publicUrl: string;
  /** PEM of the CA that signed the serving certificate, or null for a configured certificate. */
  readonly caPem: string | null;
  readonly store: Store;
  readonly registry: Registry;
  /** `http://host:port` of the separate metrics listener, or undefined without one. */
  readonly metricsUrl: string | undefined;
  /** Pushes tokens, user attributes and role bindings to clusters with the authorized endpoint on (while this process holds the background job lease). */
  readonly sync: ClusterSync;
  /** Whether this process holds the background job lease and runs the background jobs now. */
  holdsBackgroundLease(): boolean;
  /** Reopens the audit file (SIGHUP, after logrotate moved it away). */
  reopenFiles(): void;
  stop(): Promise<void>;
}

export interface StartProxyDeps {
  readonly logger: Logger;
  /** The registry /metrics serves (a worker's cluster-wide one); default a new Registry. */
  readonly registry?: Registry;
  /** Decorates the opened store (a worker relays its changes to the other workers). */
  readonly wrapStore?: (store: Store) => Store;
  /** The primary of `--workers N` holds the data dir lock for its workers (see lockProxyDataDir). */
  readonly dataDirLockedByPrimary?: boolean;
  /**
   * Serve peer links on a listener of this process's own (a `--workers N` worker): the main
   * socket is shared by every worker, so a peer link sent to it could land on one that does
   * not hold the tunnel.
   */
  readonly ownPeerListener?: boolean;
  /** How long a REST API or console request body may take; default DEFAULT_BODY_TIMEOUT_MS (tests shorten it). */
  readonly bodyTimeoutMs?: number;
}

export async function runProxy(options: LoadConfigOptions<ProxyConfigFlags>): Promise<void> {
  const config = loadProxyConfig(options);
  const logger = createLogger({ level: config.log.level, name: 'proxy' });
  if (config.workers > 1) {
    await runProxyWorkers(config, { logger, startProxy });
    return;
  }
  const proxy = await startProxy(config, { logger });
  installSignalHandlers(() => proxy.stop(), logger);
  installReopenHandler(() => proxy.reopenFiles(), logger);
}

export async function startProxy(config: ProxyConfig, deps: StartProxyDeps): Promise<RunningProxy> {
  const { logger } = deps;
  if (config.workers > 1) {
    throw new TypeError('startProxy runs one process: runProxy forks the workers of `workers: N`, each of which runs startProxy');
  }
  logger.info({ config: configForLog(config) }, 'starting kubegate proxy');
  const { secretKey, store, tls, dataDirLock } = await openProxyData(config, logger, {
    wrapStore: deps.wrapStore,
    dataDirLockedByPrimary: deps.dataDirLockedByPrimary,
  });
  const cleanups: (() => void | Promise<void>)[] = [() => dataDirLock?.release(), () => store.close()];
  try {
    const registry = deps.registry ?? new Registry();
    // Read at scrape time; `forwarder` and `tokenCache` are created below.
    const metrics = createProxyMetrics(registry, {
      authCache: () => tokenCache.stats(),
      activeStreams: () => forwarder.openStreamCounts(),
      providerUp: () => checkedProviders.map((provider) => [provider.name, upOf(providerHealth.get(provider.name))] as const),
      backgroundLeader: () => backgroundJobs.held(),
      upstreams: () => upstreams.stats(),
    });
    // What the background jobs found, as every process serves it.
    const reports = await loadJobReports(store, { onError: (error) => logger.warn({ err: error }, 'a background job report could not be read or written') });
    cleanups.push(() => reports.close());
    const directory = await createClusterRegistry(store, {
      onReloadError: (error) => logger.warn({ err: error }, 'cluster directory reload failed; keeping the previous state'),
    });
    cleanups.push(() => directory.close());

    const providers = await createProviders(config.providers, { store, logger });
    // Tokens issued through a provider that is no longer enabled stop working now.
    await revokeDisabledProviders({ store, providers, logger });
    // Provider groups are re-read in the background; users gone or disabled there lose their tokens.
    const groupRefresher = createGroupRefresher({
      store,
      providers,
      logger,
      maxAgeSeconds: config.groupRefresh.maxAgeSeconds,
      intervalSeconds: config.groupRefresh.intervalSeconds,
    });
    cleanups.push(() => groupRefresher.stop());
    // Provider health is checked in the background, never per request.
    const checkedProviders = [...providers.list(), ...(providers.listWebLogin?.() ?? [])];
    const providerHealth = createProviderHealthMonitor({
      providers: checkedProviders,
      configs: config.providers,
      intervalMs: config.providerHealth.intervalSeconds * 1000,
      timeoutMs: config.providerHealth.timeoutSeconds * 1000,
      logger,
      records: sharedProviderHealthRecords(reports),
    });
    cleanups.push(() => providerHealth.stop());
    // `oidcBearer`: that issuer's ID tokens are accepted next to kubegate tokens (jose and
    // openid-client are loaded only then).
    const oidcBearer = config.oidcBearer === undefined ? undefined : await createOidcBearer(config.oidcBearer.provider, providers, store, logger);
    const tokenCache = createTokenChain({
      lookups: store,
      otherTokens: oidcBearer === undefined ? [] : [oidcBearer.authenticator],
      successTtlMs: config.authCache.successTtlSeconds * 1000,
      failureTtlMs: config.authCache.failureTtlSeconds * 1000,
      maxEntries: config.authCache.maxEntries,
      kubernetesUsername: config.identity.kubernetesUsername,
      onTouchError: (error) => logger.debug({ err: error }, 'recording token use failed'),
    });

    // Agent-mode clusters: tunnels held here, and those other replicas hold (peer links).
    const replicaId = `${hostname().slice(0, 60)}-${randomBytes(4).toString('hex')}`;
    let peers: PeerLinks | undefined;
    const hub = createTunnelHub({
      remote: {
        credentials: (clusterId) => peers?.credentials(clusterId),
        dial: (clusterId) => (peers === undefined ? Promise.reject(new KubegateError('CLUSTER_DISCONNECTED')) : peers.dial(clusterId)),
      },
      onError: (message, details) => logger.warn(details, message),
    });
    cleanups.push(() => hub.close());
    const tunnelMetrics = createTunnelMetrics(registry, { stats: () => hub.stats() });
    peers = createPeerLinks({ store, hub, replicaId, key: derivePeerKey(secretKey), caPem: tls.caPem ?? undefined, logger });
    cleanups.push(() => peers?.close());

    const upstreams = createUpstreamPool({
      connectTimeoutMs: config.upstream.connectTimeoutSeconds * 1000,
      freeSocketTimeoutMs: config.upstream.idleTimeoutSeconds * 1000,
      tunnels: hub,
    });
    cleanups.push(() => upstreams.close());
    const clusterStatus = createClusterStatus({ directory, upstreams, logger, records: sharedClusterStatusRecords(reports) });
    cleanups.push(() => clusterStatus.stop());
    // A tunnel coming or going changes what the cluster's status says: probe it now.
    cleanups.push(hub.subscribe((clusterId) => void clusterStatus.probe(clusterId).catch(() => undefined)));
    const tunnelEndpoint = createTunnelEndpoint({ store, getCluster: directory.getCluster, hub, logger, metrics: tunnelMetrics });
    const syncStatus = sharedSyncStatus(reports);
    const sync = createClusterSync({
      store,
      upstreams,
      logger,
      namespace: config.sync.namespace,
      roleNames: config.sync.roleNames,
      resyncIntervalMs: config.sync.resyncIntervalSeconds * 1000,
      takeOver: config.sync.takeOver,
      kubernetesUsername: config.identity.kubernetesUsername,
      localProviders: config.providers.filter((provider) => provider.type === 'local' && provider.enabled).map((provider) => provider.name),
      onStatus: (clusterId, status) => syncStatus.record(clusterId, status),
      recordedStatus: (clusterId) => syncStatus.get(clusterId),
    });
    cleanups.push(() => sync.stop());

    // The background jobs run in the one process of the installation that holds the lease.
    const backgroundJobs = holdLease({
      store,
      name: BACKGROUND_LEASE,
      holder: replicaId,
      durationMs: config.background.leaseSeconds * 1000,
      logger,
      onAcquired() {
        sync.start();
        clusterStatus.start();
        groupRefresher.start();
        providerHealth.start();
      },
      async onLost() {
        sync.stop();
        clusterStatus.stop();
        await Promise.all([groupRefresher.stop(), providerHealth.stop()]);
      },
    });
    cleanups.push(() => backgroundJobs.stop());
    // A single proxy starts its jobs before it serves.
    await backgroundJobs.ready;

    const audit = createAuditSink(config.audit);
    cleanups.push(() => audit.close());
    const longRunning = createLongRunningRegistry();

    // The public URL is known only once the port is bound when listen uses port 0.
    let publicUrl = config.externalUrl ?? '';
    // `kubectl --as`: decided by the target cluster (SubjectAccessReview), cached for seconds.
    const impersonation = createImpersonationReviewer();
    const forwarder = createForwarder(
      {
        authenticator: tokenCache,
        getCluster: directory.getCluster,
        authorize: directory.roleOf,
        upstreams,
        impersonation,
        clusterVersion: (clusterId) => clusterStatus.get(clusterId)?.version,
        forwardedExtras: new Set(config.identity.forwardedExtras ?? [EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME]),
        audit: audit.write,
        logger,
        get allowedOrigins() {
          return publicUrl === '' ? [] : [new URL(publicUrl).origin];
        },
        metrics: forwardMetrics(metrics, (clusterId) => directory.getCluster(clusterId) !== undefined),
        longRunning,
        credentialRefused: clusterStatus.reportCredentialRefused,
      },
      { idleTimeoutMs: config.upstream.requestTimeoutSeconds * 1000, slowRequestMs: config.log.slowRequestMs === 0 ? undefined : config.log.slowRequestMs },
    );

    /**
     * A user's groups changed (a background refresh, a login): each open stream whose groups
     * are the ones stored for a provider — a kubegate token's (its token's provider), an
     * `oidcBearer` ID token's with `groupsFromUserinfo` — is checked again with the groups now
     * stored, and ends if its membership came from a group the user lost. (Streams of an ID
     * token whose groups are claims keep the groups their token carries until it expires;
     * membership changes, the user's disabling or deletion and the expiry still end them.)
     */
    async function closeStreamsOutsideNewGroups(userId: string): Promise<void> {
      const groupsByToken = new Map<string, readonly string[]>();
      for (const stream of forwarder.openStreams()) {
        if (stream.user.name !== userId || groupsByToken.has(stream.tokenName)) continue;
        const token = await store.getToken(stream.tokenName);
        const provider = token === undefined ? oidcBearer?.storedGroupsProviderOf(stream) : token.userId === userId ? token.provider : undefined;
        if (provider === undefined) continue;
        groupsByToken.set(stream.tokenName, (await store.getUserGroups(userId, provider))?.groups ?? []);
      }
      forwarder.closeStreams((stream) => {
        const groups = groupsByToken.get(stream.tokenName);
        return stream.user.name === userId && groups !== undefined && !roleStillAdmits(directory.roleOf({ ...stream.user, groups }, stream.clusterId), stream);
      }, 'FORBIDDEN');
    }

    const unsubscribe = store.subscribe((change) => {
      switch (change.kind) {
        case 'token':
          tokenCache.invalidateToken(change.key);
          // A deleted token's open watches and exec sessions end now, not when they idle out.
          void store.getToken(change.key).then(
            (token) => {
              if (!token) forwarder.closeStreams((stream) => stream.tokenName === change.key);
            },
            () => undefined,
          );
          break;
        case 'user':
          tokenCache.invalidateUser(change.key);
          impersonation.invalidateUser(change.key);
          void store.getUser(change.key).then(
            (user) => {
              if (!user || !user.enabled) forwarder.closeStreams((stream) => stream.user.name === change.key);
            },
            () => undefined,
          );
          break;
        case 'groups':
          tokenCache.invalidateUser(change.key);
          impersonation.invalidateUser(change.key);
          void closeStreamsOutsideNewGroups(change.key).catch((error: unknown) => logger.warn({ err: error }, 'checking open streams after a group change failed'));
          break;
        case 'cluster':
        case 'membership':
          // Once the directory has the change: a removed member's (or a removed cluster's)
          // open watches and exec sessions end now, and requests in admission are refused.
          void directory.refresh().then(
            () => {
              if (change.kind === 'cluster') impersonation.invalidateCluster(change.key);
              if (change.kind === 'cluster' && !directory.getCluster(change.key)) {
                upstreams.evict(change.key);
                hub.disconnect({ clusterId: change.key });
              }
              forwarder.closeStreams((stream) => !roleStillAdmits(directory.roleOf(stream.user, stream.clusterId), stream), 'FORBIDDEN');
            },
            () => undefined,
          );
          break;
        case 'agent':
          // A revoked agent credential's tunnels end now, on every replica.
          void store.getAgentSecret(change.key).then(
            (secret) => {
              if (!secret) hub.disconnect({ agentSecretName: change.key });
            },
            () => undefined,
          );
          break;
        case 'resync':
          // Changes may have been missed: nothing cached may be trusted any more.
          tokenCache.clear();
          impersonation.clear();
          break;
        default:
          break;
      }
    });
    cleanups.push(unsubscribe);

    const app = createProxyApp({
      store,
      directory,
      authenticator: tokenCache,
      providers,
      issuer: createTokenIssuer({
        store,
        issuerUrl: () => publicUrl,
        tokenTtlSeconds: config.issuer.tokenTtlSeconds,
        keyRotationSeconds: config.issuer.keyRotationSeconds,
        kubernetesUsername: config.identity.kubernetesUsername,
      }),
      config,
      publicUrl: () => publicUrl,
      caPem: tls.caPem,
      logger,
      audit: audit.writeEvent,
      metrics,
      clusterStatus,
      checkCredential: (cluster) => checkClusterCredential(cluster, { upstreams }),
      syncStatus: (clusterId) => syncStatus.get(clusterId),
      providerHealth: (name) => providerHealth.get(name),
      // The lease holder's sync cleans the cluster; elsewhere, wait for it to have done so.
      removeCluster: (clusterId) => (backgroundJobs.held() ? sync.syncNow(clusterId) : whenClusterRemoved(store, clusterId, REMOVAL_WAIT_MS)),
      // Every worker and replica derives the same key: a login may finish on any of them.
      loginStateKey: deriveLoginStateKey(secretKey),
      now: () => new Date(),
    });
    const webConsole = config.console.enabled
      ? createConsoleApp({
          api: app,
          key: deriveConsoleKey(secretKey),
          sessionTtlSeconds: config.console.sessionTtlSeconds,
          logger,
          clientAddress: clientAddressResolver(config.trustedProxies),
        })
      : undefined;
    const metricsBearerToken =
      config.metrics.bearerTokenFile === undefined ? undefined : readSecretFile(config.metrics.bearerTokenFile, 'metrics.bearerTokenFile');
    const ready = (): Promise<void> => store.ping();
    // The main listener serves /metrics only to scrapes that present the configured token.
    const health = createHealthHandler({ ready, ...(metricsBearerToken === undefined ? {} : { registry, metricsBearerToken }) });
    const metricsServer =
      config.metrics.listen === undefined ? undefined : await startMetricsServer({ listen: config.metrics.listen, registry, metricsBearerToken, ready, logger });
    if (metricsServer !== undefined) cleanups.push(() => metricsServer.close());

    const server = await startServer({
      listen: config.listen,
      setting: 'listen',
      tls: { cert: tls.certPem, key: tls.keyPem },
      logger,
      longRunning,
      // Cluster paths stream their bodies upstream, and peer links carry forwarded connections.
      bodyTimeoutMs: (req) => (isClusterPath(req.url ?? '/') || peers?.matches(req.url ?? '/') === true ? undefined : (deps.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS)),
      handler(req, res) {
        const url = req.url ?? '/';
        if (isClusterPath(url)) {
          forwarder.handleRequest(req, res);
          return;
        }
        if (peers?.matches(url) === true) {
          peers.handleRequest(req, res);
          return;
        }
        if (health(req, res)) return;
        if (webConsole !== undefined && isConsolePath(url)) webConsole(req, res);
        else app(req, res);
      },
      onUpgrade(req, socket, head) {
        const url = req.url ?? '/';
        if (isClusterPath(url)) forwarder.handleUpgrade(req, socket, head);
        else if (tunnelEndpoint.matches(url)) tunnelEndpoint.handleUpgrade(req, socket, head);
        else if (peers?.matches(url) === true) peers.handleUpgrade(req, socket, head);
        else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      },
    });
    // Other replicas reach this one at the configured peer URL, or (one replica, tests) at the
    // bound address; a worker at the same host on its own peer port.
    const peerServer = deps.ownPeerListener === true ? await startPeerServer(config, tls, peers, logger) : undefined;
    if (peerServer !== undefined) cleanups.push(() => peerServer.close());
    const peerUrl = advertisedPeerUrl(config, peerServer?.address().port ?? server.address().port);
    const presence = startTunnelPresence({ store, hub, replicaId, peerUrl: () => peerUrl, logger });
    cleanups.push(() => presence.stop());
    if (publicUrl === '') {
      const { port } = server.address();
      publicUrl = `https://${formatHost(config.tls.sans[0] ?? 'localhost')}:${port}`;
    }
    logger.info({ url: server.url, publicUrl, store: store.kind }, 'kubegate proxy is serving');

    let stopping: Promise<void> | undefined;
    return {
      url: server.url,
      get publicUrl() {
        return publicUrl;
      },
      caPem: tls.caPem,
      store,
      registry,
      metricsUrl: metricsServer?.url,
      sync,
      holdsBackgroundLease: () => backgroundJobs.held(),
      reopenFiles: () => audit.reopen(),
      stop() {
        stopping ??= (async () => {
          health.markShuttingDown();
          metricsServer?.markShuttingDown();
          const serverClosed = server.close();
          // Agents are told at once (GOAWAY) rather than when the grace period cuts their
          // connections: a tunnel is an upgraded connection of this server, which would
          // otherwise hold the stop for all of it. Streams in flight get the tunnel's own
          // grace; the agent dials again (another replica, or this proxy once it is back).
          hub.close();
          await serverClosed;
          await runCleanups(cleanups, logger);
        })();
        return stopping;
      },
    };
  } catch (error) {
    await runCleanups(cleanups, logger);
    throw error;
  }
}

interface OidcBearer {
  readonly authenticator: TokenAuthenticator;
  /**
   * For a stream admitted with one of its ID tokens (not a stored token): the provider whose
   * stored groups are the stream's groups (`groupsFromUserinfo`), or undefined when the
   * token's own claims are (they cannot change before it expires).
   */
  storedGroupsProviderOf(stream: OpenStream): string | undefined;
}

/** The authenticator of `oidcBearer`: that OIDC provider's ID tokens as bearer tokens. */
async function createOidcBearer(providerName: string, providers: ProviderRegistry, store: Store, logger: Logger): Promise<OidcBearer> {
  const [{ oidcBearerSource }, { oidcBearerAuthenticator }] = await Promise.all([import('../providers/oidc/oidc.js'), import('../providers/oidc/bearer.js')]);
  const source = oidcBearerSource(providers, providerName);
  return {
    authenticator: oidcBearerAuthenticator({
      source,
      lookups: store,
      recordEmail: async (userId, provider, email) => void (await recordVerifiedEmail(store, logger, userId, provider, email)),
    }),
    storedGroupsProviderOf: (stream) => (!source.groupsInIdToken && stream.user.extra[EXTRA_PROVIDER]?.[0] === source.name ? source.name : undefined),
  };
}

/**
 * Whether an open stream may go on under the role its user now has on its cluster: none ends
 * it, and so does a role that would refuse the request now (role-verbs.ts) — for a viewer,
 * every upgrade (exec, attach, port-forward) and every held answer of a `proxy` subresource.
 * A viewer's watches and logs go on.
 */
function roleStillAdmits(role: ClusterRole | null, stream: OpenStream): boolean {
  return role !== null && roleRefusal(role, stream) === undefined;
}

/** A listener that serves peer links only (see StartProxyDeps.ownPeerListener). */
function startPeerServer(config: ProxyConfig, tls: { readonly certPem: string; readonly keyPem: string }, peers: PeerLinks, logger: Logger): Promise<RunningServer> {
  const host = parseListenAddress(config.listen)?.host ?? '0.0.0.0';
  return startServer({
    listen: formatHostPort(host, 0),
    exclusive: true,
    tls: { cert: tls.certPem, key: tls.keyPem },
    logger: logger.child({ listener: 'peers' }),
    // Peer links carry forwarded connections, whose bodies stream.
    bodyTimeoutMs: () => undefined,
    handler(req, res) {
      if (peers.matches(req.url ?? '/')) peers.handleRequest(req, res);
      else writeStatus(res, new KubegateError('NOT_FOUND'));
    },
    onUpgrade(req, socket, head) {
      if (peers.matches(req.url ?? '/')) peers.handleUpgrade(req, socket, head);
      else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    },
  });
}

/** Where other replicas reach this one's peer links: the configured peer URL's host (or the certificate's first name) at `port`. */
function advertisedPeerUrl(config: ProxyConfig, port: number): string {
  const host = config.agents.peerUrl === undefined ? formatHost(config.tls.sans[0] ?? 'localhost') : new URL(config.agents.peerUrl).host.replace(/:\d+$/, '');
  return `https://${host}:${port}`;
}

async function runCleanups(cleanups: readonly (() => void | Promise<void>)[], logger: Logger): Promise<void> {
  for (const cleanup of [...cleanups].reverse()) {
    try {
      await cleanup();
    } catch (error) {
      logger.warn({ err: error }, 'cleanup step failed during stop');
    }
  }
}
