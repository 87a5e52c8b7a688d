/**
 * The proxy → cluster sync: keeps every cluster with the authorized endpoint on holding the
 * ClusterAuthTokens, Secrets, ClusterUserAttributes and membership ClusterRoleBindings that
 * the store implies (desired.ts), through the cluster's registered, impersonate-only
 * credentials plus the namespaced writes deploy/proxy/downstream-rbac.yaml grants.
 *
 * Design note:
 * - Event driven: a store change (token issued or revoked, user disabled, groups refreshed,
 *   membership or cluster changed — from this process or, with PostgreSQL, another replica)
 *   schedules the clusters it concerns; a revoked token is gone from its cluster in the time
 *   of one reconcile (a few requests). A full resync every `resyncIntervalMs` repairs drift
 *   (objects edited or deleted in the cluster), and a timer at the next token expiry
 *   removes expired tokens on time.
 * - Per cluster, reconciles are single-flight: changes arriving during one schedule exactly
 *   one more. A failing cluster (unreachable, CRDs missing) is retried with exponential
 *   backoff (`initialBackoffMs` doubling to `maxBackoffMs`, with jitter) and its error kept
 *   in `status()`; it never blocks other clusters, and nothing here is on a request's path.
 * - A cluster whose endpoint is turned off has its kubegate-managed objects removed once.
 */
import type { Logger } from '../log.js';
import { createKubeClient } from '../kube/client.js';
import { endpointFromUpstream } from '../clusters/endpoint.js';
import type { UpstreamPool } from '../clusters/upstreams.js';
import type { Cluster, Store, StoreChange, User } from '../store/store.js';
import { toKubegateError } from '../errors.js';
import { DEFAULT_ROLE_NAMES, desiredState, groupsKey } from './desired.js';
import type { DesiredState, RoleNames } from './desired.js';
import { reconcileCluster } from './reconcile.js';
import type { ReconcileCounts } from './reconcile.js';

/**
 * The Kubernetes user the sync writes as, through impersonation. deploy/proxy/downstream-rbac.yaml
 * grants the sync's writes to this user, never to the proxy's own identity: a forwarded
 * request that somehow lost its impersonation headers still runs with no rights at all.
 * kubegate user names are always `u-…`, so no kubegate user can be this one.
 */
export const SYNC_USER = 'kubegate:sync';

export interface ClusterSyncOptions {
  readonly store: Store;
  readonly upstreams: Pick<UpstreamPool, 'get'>;
  readonly logger: Logger;
  /** Where the Rancher objects go. Default `cattle-system`. */
  readonly namespace?: string;
  /** ClusterRole per membership role. Default owner → cluster-admin, member → edit, viewer → view. */
  readonly roleNames?: Partial<RoleNames>;
  /** Full resync period. Default 300 000. */
  readonly resyncIntervalMs?: number;
  /** First retry delay for a failing cluster. Default 1000. */
  readonly initialBackoffMs?: number;
  /** Longest retry delay. Default 60 000. */
  readonly maxBackoffMs?: number;
  readonly now?: () => Date;
}

export interface ClusterSyncStatus {
  readonly ok: boolean;
  readonly lastAttemptAt: Date;
  readonly lastSuccessAt: Date | null;
  /** Why the last attempt failed (safe to show: codes and resource names only). */
  readonly error?: string;
  readonly consecutiveFailures: number;
  /** Objects the cluster should hold after the last successful reconcile. */
  readonly objects?: { readonly tokens: number; readonly users: number; readonly bindings: number };
  readonly lastChanges?: ReconcileCounts;
}

export interface ClusterSync {
  start(): void;
  stop(): void;
  /** Reconciles one cluster now; resolves when done (rejects with its error). */
  syncNow(clusterId: string): Promise<void>;
  /** The last outcome for a cluster, or undefined when never attempted. */
  status(clusterId: string): ClusterSyncStatus | undefined;
}

interface ClusterState {
  running: Promise<void> | null;
  again: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  failures: number;
  status: ClusterSyncStatus | undefined;
  /** Tokens and users synced last time, to route store changes. */
  tokenNames: Set<string>;
  userIds: Set<string>;
  /** Whether kubegate objects may exist there (to clean up once when the endpoint is turned off). */
  populated: boolean;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export function createClusterSync(options: ClusterSyncOptions): ClusterSync {
  const { store, upstreams, logger } = options;
  const namespace = options.namespace ?? 'cattle-system';
  const roleNames: RoleNames = { ...DEFAULT_ROLE_NAMES, ...(options.roleNames ?? {}) };
  const resyncIntervalMs = options.resyncIntervalMs ?? 300_000;
  const initialBackoffMs = options.initialBackoffMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  const now = options.now ?? (() => new Date());
  const states = new Map<string, ClusterState>();
  let stopped = true;
  let unsubscribe: (() => void) | undefined;
  let resyncTimer: NodeJS.Timeout | undefined;

  function stateOf(clusterId: string): ClusterState {
    let state = states.get(clusterId);
    if (state === undefined) {
      state = { running: null, again: false, retryTimer: undefined, expiryTimer: undefined, failures: 0, status: undefined, tokenNames: new Set(), userIds: new Set(), populated: true };
      states.set(clusterId, state);
    }
    return state;
  }

  async function computeDesired(cluster: Cluster): Promise<DesiredState> {
    if (!cluster.ace.enabled) {
      return { tokens: [], secrets: [], attributes: [], bindings: [], nextExpiry: null };
    }
    const [tokens, memberships] = await Promise.all([store.listTokens({ clusterId: cluster.id }), store.listMemberships(cluster.id)]);
    const users = new Map<string, User>();
    const groups = new Map<string, readonly string[]>();
    for (const userId of new Set(tokens.map((token) => token.userId))) {
      const user = await store.getUser(userId);
      if (user !== undefined) users.set(userId, user);
    }
    for (const key of new Set(tokens.map((token) => groupsKey(token.userId, token.provider)))) {
      const [userId, provider] = key.split('\n') as [string, string];
      const cached = await store.getUserGroups(userId, provider);
      if (cached !== undefined) groups.set(key, cached.groups);
    }
    return desiredState({ namespace, tokens, users, groups, memberships, roleNames, now: now() });
  }

  async function reconcileOnce(clusterId: string, state: ClusterState): Promise<void> {
    const cluster = await store.getCluster(clusterId);
    if (cluster === undefined) {
      forget(clusterId);
      return;
    }
    if (!cluster.ace.enabled && !state.populated) return;
    const attemptAt = now();
    try {
      const desired = await computeDesired(cluster);
      const client = createKubeClient(endpointFromUpstream(upstreams.get(cluster), { impersonateUser: SYNC_USER }));
      const changes = await reconcileCluster(client, namespace, desired);
      state.failures = 0;
      state.populated = cluster.ace.enabled;
      state.tokenNames = new Set(desired.tokens.map((token) => token.metadata.name));
      state.userIds = new Set(desired.attributes.map((attribute) => attribute.metadata.name));
      state.status = {
        ok: true,
        lastAttemptAt: attemptAt,
        lastSuccessAt: attemptAt,
        consecutiveFailures: 0,
        objects: { tokens: desired.tokens.length, users: desired.attributes.length, bindings: desired.bindings.length },
        lastChanges: changes,
      };
      if (changes.created + changes.updated + changes.deleted > 0) logger.info({ cluster: clusterId, ...changes }, 'cluster sync applied changes');
      armExpiryTimer(clusterId, state, desired.nextExpiry);
    } catch (error) {
      const failure = toKubegateError(error);
      state.failures++;
      state.status = {
        ok: false,
        lastAttemptAt: attemptAt,
        lastSuccessAt: state.status?.lastSuccessAt ?? null,
        error: `${failure.code}: ${failure.message}`,
        consecutiveFailures: state.failures,
        ...(state.status?.objects === undefined ? {} : { objects: state.status.objects }),
      };
      logger.warn({ cluster: clusterId, err: error, failures: state.failures }, 'cluster sync failed; will retry');
      armRetry(clusterId, state);
      throw failure;
    }
  }

  function armRetry(clusterId: string, state: ClusterState): void {
    if (stopped || state.retryTimer !== undefined) return;
    const delay = Math.min(initialBackoffMs * 2 ** Math.min(state.failures - 1, 30), maxBackoffMs) * (0.5 + Math.random());
    state.retryTimer = setTimeout(() => {
      state.retryTimer = undefined;
      schedule(clusterId);
    }, delay);
    state.retryTimer.unref();
  }

  function armExpiryTimer(clusterId: string, state: ClusterState, nextExpiry: Date | null): void {
    if (state.expiryTimer !== undefined) clearTimeout(state.expiryTimer);
    state.expiryTimer = undefined;
    if (stopped || nextExpiry === null) return;
    const delay = Math.max(0, nextExpiry.getTime() - now().getTime()) + 50;
    if (delay > MAX_TIMER_MS) return;
    state.expiryTimer = setTimeout(() => {
      state.expiryTimer = undefined;
      schedule(clusterId);
    }, delay);
    state.expiryTimer.unref();
  }

  function run(clusterId: string): Promise<void> {
    const state = stateOf(clusterId);
    if (state.running !== null) {
      state.again = true;
      return state.running;
    }
    if (state.retryTimer !== undefined) {
      clearTimeout(state.retryTimer);
      state.retryTimer = undefined;
    }
    const running = (async () => {
      try {
        do {
          state.again = false;
          await reconcileOnce(clusterId, state);
        } while (state.again && !stopped);
      } finally {
        state.running = null;
      }
    })();
    state.running = running;
    return running;
  }

  function schedule(clusterId: string): void {
    if (stopped) return;
    run(clusterId).catch(() => undefined);
  }

  function forget(clusterId: string): void {
    const state = states.get(clusterId);
    if (state === undefined) return;
    if (state.retryTimer !== undefined) clearTimeout(state.retryTimer);
    if (state.expiryTimer !== undefined) clearTimeout(state.expiryTimer);
    states.delete(clusterId);
  }

  async function scheduleAll(): Promise<void> {
    try {
      for (const cluster of await store.listClusters()) {
        if (cluster.ace.enabled || states.get(cluster.id)?.populated === true) schedule(cluster.id);
      }
    } catch (error) {
      logger.warn({ err: error }, 'cluster sync could not list clusters; will retry at the next resync');
    }
  }

  /** The clusters a change concerns: known ones when the change names what they hold, else all. */
  function onChange(change: StoreChange): void {
    switch (change.kind) {
      case 'cluster':
      case 'membership':
        if (states.has(change.key)) schedule(change.key);
        else
          void store.getCluster(change.key).then(
            (cluster) => {
              if (cluster?.ace.enabled === true) schedule(cluster.id);
            },
            () => undefined,
          );
        return;
      case 'token': {
        const holders = [...states].filter(([, state]) => state.tokenNames.has(change.key)).map(([id]) => id);
        if (holders.length > 0) {
          for (const id of holders) schedule(id);
          return;
        }
        void store.getToken(change.key).then(
          (token) => {
            if (token?.clusterId != null) schedule(token.clusterId);
            else if (token === undefined) void scheduleAll();
          },
          () => void scheduleAll(),
        );
        return;
      }
      case 'user':
      case 'groups': {
        const holders = [...states].filter(([, state]) => state.userIds.has(change.key)).map(([id]) => id);
        for (const id of holders) schedule(id);
        // A user's first cluster token announces itself as a `token` change; nothing more to do.
        return;
      }
      default:
        return;
    }
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      unsubscribe = store.subscribe(onChange);
      void scheduleAll();
      resyncTimer = setInterval(() => void scheduleAll(), resyncIntervalMs);
      resyncTimer.unref();
    },
    stop() {
      stopped = true;
      unsubscribe?.();
      unsubscribe = undefined;
      if (resyncTimer !== undefined) clearInterval(resyncTimer);
      for (const id of [...states.keys()]) {
        const state = states.get(id)!;
        if (state.retryTimer !== undefined) clearTimeout(state.retryTimer);
        if (state.expiryTimer !== undefined) clearTimeout(state.expiryTimer);
        state.retryTimer = undefined;
        state.expiryTimer = undefined;
      }
    },
    syncNow: (clusterId) => run(clusterId),
    status: (clusterId) => states.get(clusterId)?.status,
  };
}
