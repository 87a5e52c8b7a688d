/**
 * The proxy → cluster sync: keeps every cluster the proxy reaches (directly or through an
 * agent's tunnel) holding the membership ClusterRoleBindings the store implies, and those
 * with the authorized endpoint on (mode `webhook`) also the ClusterAuthTokens, Secrets and
 * ClusterUserAttributes (desired.ts), through the cluster's registered, impersonate-only
 * credentials plus the writes deploy/proxy/downstream-rbac.yaml grants.
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
 * - Every cluster gets the role bindings, so membership roles mean the same everywhere. Token
 *   state goes only where the endpoint is on in mode `webhook`; the ownership stamp records
 *   whether any may be there (ownership.ts), so a cluster whose endpoint is turned off has
 *   it removed (retried until that succeeds), and one that never had it is never asked
 *   about those kinds (it may have neither their CRDs nor the Role to read them). Token
 *   changes concern only clusters holding token state. An agent-mode cluster without a
 *   tunnel is not a failure: its status says CLUSTER_DISCONNECTED (a debug line, no retry
 *   loop), and its agent connecting schedules it. The store remembers whether the sync may
 *   have objects in a cluster (`syncHoldsObjects`, set before its first write there): a
 *   cluster deleted before that is forgotten without contacting it.
 * - A cluster being deleted (`deletingSince`) has its objects removed the same way, with
 *   retries until it succeeds, and only then is it deleted from the store: until then its
 *   tokens can still be revoked, and nobody can use it (clusters/registry.ts).
 * - Ownership (ownership.ts): objects carry this installation's ID and the cluster ID, and
 *   only ours are pruned; a copy of this installation that another copy has superseded in a
 *   cluster writes nothing there (SYNC_SUPERSEDED) unless started with `takeOver`.
 * - A failing cluster logs one warning per streak (its code and message, no stack), then
 *   debug lines, and one line when it recovers.
 * - One process of the installation syncs: the proxy starts the sync where it holds the
 *   background job lease (store/lease.ts) and stops it when the lease is lost, so each
 *   change reaches each cluster once, not once per replica. Each new status goes to
 *   `onStatus` (the proxy stores it as a job report, status-report.ts), so every replica
 *   shows it; a new holder's failure keeps the last success recorded there (`recordedStatus`).
 * - Token use through the authorized endpoint: the webhook stamps `lastUsedAt` on the
 *   ClusterAuthToken in the cluster (it never writes to the proxy, which may be down); each
 *   reconcile, which lists those objects anyway, copies stamps newer than the store's into it
 *   (`copyTokenUses`), so `GET /v1/tokens` shows that use at the next pass.
 */
import type { Logger } from '../log.js';
import { createKubeClient } from '../kube/client.js';
import { endpointFromUpstream } from '../clusters/endpoint.js';
import type { UpstreamPool } from '../clusters/upstreams.js';
import { aceModeOf } from '../store/store.js';
import type { Cluster, Membership, Store, StoreChange, Token, User } from '../store/store.js';
import { kubernetesUsername } from '../auth/principal.js';
import type { KubernetesUsernameFormat } from '../config/identity.js';
import { toKubegateError } from '../errors.js';
import { DEFAULT_ROLE_NAMES, desiredState, groupsKey } from './desired.js';
import type { DesiredState, RoleNames } from './desired.js';
import { randomBytes } from 'node:crypto';
import type { ObjectOwner } from '../kube/rancher.js';
import { EPOCHS_KEPT, claimCluster, recordAceObjectsRemoved, releaseCluster } from './ownership.js';
import { reconcileCluster } from './reconcile.js';
import type { AceObjects, ReconcileCounts } from './reconcile.js';

/** The store setting holding this installation's ID (generated once). */
export const INSTALLATION_ID_SETTING = 'installation.id';

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
  /**
   * Take over clusters whose ownership stamp another copy of this installation wrote
   * (`sync.takeOver`): once per cluster in this process. Default false.
   */
  readonly takeOver?: boolean;
  /** How users are named to Kubernetes (`identity.kubernetesUsername`): binding subjects and tokens follow. Default `id`. */
  readonly kubernetesUsername?: KubernetesUsernameFormat;
  /** Enabled providers of type `local`: the providers a user with a password logs in with. */
  readonly localProviders?: readonly string[];
  readonly now?: () => Date;
  /** Told every new status of a cluster (after each attempt). */
  readonly onStatus?: (clusterId: string, status: ClusterSyncStatus) => void;
  /**
   * The cluster's last status as the installation recorded it (the shared job report), from
   * whichever process synced then: a failed attempt keeps its last success and object counts
   * across a lease hand-over or a restart. Default: this process's own last status only.
   */
  readonly recordedStatus?: (clusterId: string) => ClusterSyncStatus | undefined;
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
  /** kubegate objects there of other installations or cluster IDs (left alone), at the last success. */
  readonly foreignObjects?: number;
  /** Objects not written at the last success because another installation or cluster ID holds the name. */
  readonly conflicts?: number;
}

export interface ClusterSync {
  start(): void;
  stop(): void;
  /**
   * Reconciles one cluster now (for a cluster being deleted: removes kubegate's objects from
   * it, then deletes it from the store); resolves when done, rejects with its error.
   */
  syncNow(clusterId: string): Promise<void>;
  /** This installation's ID (generated and stored at the first call). */
  installationId(): Promise<string>;
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
  /** `takeOver` was used for this cluster (it applies once). */
  claimed: boolean;
  /** Foreign objects seen there were logged (once). */
  foreignLogged: boolean;
  /** The error last logged at warn level, so that a streak logs once. */
  loggedError: string | undefined;
}

const NOTHING: DesiredState = { tokens: [], secrets: [], attributes: [], bindings: [], nextExpiry: null };

const MAX_TIMER_MS = 2 ** 31 - 1;

export function createClusterSync(options: ClusterSyncOptions): ClusterSync {
  const { store, upstreams, logger } = options;
  const namespace = options.namespace ?? 'cattle-system';
  const roleNames: RoleNames = { ...DEFAULT_ROLE_NAMES, ...(options.roleNames ?? {}) };
  const resyncIntervalMs = options.resyncIntervalMs ?? 300_000;
  const initialBackoffMs = options.initialBackoffMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  const now = options.now ?? (() => new Date());
  const takeOver = options.takeOver ?? false;
  const format = options.kubernetesUsername ?? 'id';
  const localProviders = options.localProviders ?? [];
  const onStatus = options.onStatus ?? (() => undefined);
  const states = new Map<string, ClusterState>();
  let identity: Promise<string> | undefined;
  let stopped = true;
  let unsubscribe: (() => void) | undefined;
  let resyncTimer: NodeJS.Timeout | undefined;

  function stateOf(clusterId: string): ClusterState {
    let state = states.get(clusterId);
    if (state === undefined) {
      state = {
        running: null,
        again: false,
        retryTimer: undefined,
        expiryTimer: undefined,
        failures: 0,
        status: undefined,
        tokenNames: new Set(),
        userIds: new Set(),
        claimed: false,
        foreignLogged: false,
        loggedError: undefined,
      };
      states.set(clusterId, state);
    }
    return state;
  }

  /** The installation ID, and (once per process) a new sync epoch: see ownership.ts. */
  function installationId(): Promise<string> {
    identity ??= (async () => {
      const id = await store.ensureSetting(INSTALLATION_ID_SETTING, `i-${randomBytes(10).toString('hex')}`);
      await store.addSyncEpoch(randomBytes(12).toString('hex'), now(), EPOCHS_KEPT);
      return id;
    })();
    identity.catch(() => {
      identity = undefined;
    });
    return identity;
  }

  async function computeDesired(cluster: Cluster, owner: ObjectOwner, withTokens: boolean): Promise<{ desired: DesiredState; tokens: readonly Token[] }> {
    // Token state only for the endpoint in mode `webhook`; in mode `jwt` the API server verifies
    // the proxy's JWTs itself, and without the endpoint there is nothing to verify in the cluster.
    const [tokens, memberships] = await Promise.all([withTokens ? store.listTokens({ clusterId: cluster.id }) : [], store.listMemberships(cluster.id)]);
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
    const memberNames = format === 'id' ? undefined : await namesOfMembers(memberships);
    const desired = desiredState({ namespace, owner, tokens, users, groups, memberships, roleNames, now: now(), kubernetesUsername: format, ...(memberNames === undefined ? {} : { memberNames }) });
    return { desired, tokens };
  }

  /**
   * Copies the webhook's `lastUsedAt` stamps (reconcile.ts `tokenUses`) into the store, so
   * `GET /v1/tokens` shows use through the authorized endpoint too: only stamps newer than
   * the store's (touchToken never moves it back, announces nothing and never throws).
   */
  async function copyTokenUses(tokens: readonly Token[], uses: ReadonlyMap<string, Date>): Promise<void> {
    for (const token of tokens) {
      const used = uses.get(token.name);
      if (used !== undefined && (token.lastUsedAt === null || used > token.lastUsedAt)) await store.touchToken(token.name, used);
    }
  }

  /**
   * The Kubernetes user names of User members (principal.ts): one per provider each logs in
   * with — with `email`, the one address of a user that has one.
   */
  async function namesOfMembers(memberships: readonly Membership[]): Promise<Map<string, readonly string[]>> {
    const names = new Map<string, readonly string[]>();
    for (const membership of memberships) {
      if (membership.subjectKind !== 'User') continue;
      const user = await store.getUser(membership.subjectName);
      if (user === undefined) continue;
      const providers = new Set((await store.listIdentities(user.id)).map((identity) => identity.provider));
      if (user.passwordHash !== null) for (const provider of localProviders) providers.add(provider);
      const userNames: string[] = [];
      for (const provider of [...providers].sort()) {
        try {
          userNames.push(kubernetesUsername(format, { id: user.id, login: user.username, provider, email: user.email }));
        } catch {
          // A reserved name is never bound (the proxy refuses to authenticate it too).
        }
      }
      names.set(user.id, [...new Set(userNames)]);
    }
    return names;
  }

  async function reconcileOnce(clusterId: string, state: ClusterState): Promise<void> {
    const cluster = await store.getCluster(clusterId);
    if (cluster === undefined) {
      forget(clusterId);
      return;
    }
    const deleting = cluster.deletingSince !== null;
    if (deleting && !cluster.syncHoldsObjects) {
      // Nothing of ours there: nothing to contact the cluster for.
      await finishDeletion(clusterId, 0);
      return;
    }
    const withTokens = !deleting && cluster.ace.enabled && aceModeOf(cluster.ace) === 'webhook';
    const attemptAt = now();
    try {
      const owner: ObjectOwner = { installationId: await installationId(), clusterId };
      const client = createKubeClient(endpointFromUpstream(upstreams.get(cluster), { impersonateUser: SYNC_USER }));
      const epochs = await store.listSyncEpochs();
      const useTakeOver = takeOver && !state.claimed;
      if (!deleting && !cluster.syncHoldsObjects) await store.setClusterSyncHoldsObjects(clusterId, true);
      const claim = await claimCluster(client, { namespace, owner, epochs, takeOver: useTakeOver, cleanup: deleting, writesAceObjects: withTokens });
      state.claimed ||= useTakeOver;
      if (claim.outcome === 'taken-over') logger.warn({ cluster: clusterId }, 'cluster taken over from another copy of this installation (sync.takeOver)');
      const { desired, tokens } = deleting ? { desired: NOTHING, tokens: [] } : await computeDesired(cluster, owner, withTokens);
      const aceObjects: AceObjects = withTokens ? 'sync' : claim.aceObjects ? 'remove' : 'skip';
      const { counts: changes, tokenUses } = await reconcileCluster(client, namespace, desired, { owner, aceObjects });
      await copyTokenUses(tokens, tokenUses);
      if (deleting) {
        await releaseCluster(client, namespace, owner);
        await store.setClusterSyncHoldsObjects(clusterId, false);
        await finishDeletion(clusterId, changes.deleted);
        return;
      }
      if (aceObjects === 'remove' && claim.stamp !== undefined) await recordAceObjectsRemoved(client, namespace, owner, claim.stamp);
      state.failures = 0;
      state.tokenNames = new Set(desired.tokens.map((token) => token.metadata.name));
      state.userIds = new Set(desired.attributes.map((attribute) => attribute.metadata.name));
      state.status = {
        ok: true,
        lastAttemptAt: attemptAt,
        lastSuccessAt: attemptAt,
        consecutiveFailures: 0,
        objects: { tokens: desired.tokens.length, users: desired.attributes.length, bindings: desired.bindings.length },
        lastChanges: changes,
        foreignObjects: changes.foreign,
        conflicts: changes.conflicts,
      };
      onStatus(clusterId, state.status);
      if (state.loggedError !== undefined) logger.info({ cluster: clusterId }, 'cluster sync recovered');
      state.loggedError = undefined;
      if (changes.created + changes.updated + changes.deleted > 0) logger.info({ cluster: clusterId, ...changes }, 'cluster sync applied changes');
      if ((changes.foreign > 0 || changes.conflicts > 0) && !state.foreignLogged) {
        state.foreignLogged = true;
        logger.warn(
          { cluster: clusterId, foreign: changes.foreign, conflicts: changes.conflicts },
          'the cluster holds kubegate objects of another installation or cluster ID; they are left alone (objects whose names they hold are not written)',
        );
      }
      armExpiryTimer(clusterId, state, desired.nextExpiry);
    } catch (error) {
      const failure = toKubegateError(error);
      const reason = `${failure.code}: ${failure.message}`;
      state.failures++;
      // The recorded status includes this process's own (onStatus records it) and, after a
      // hand-over, the previous holder's.
      const previous = options.recordedStatus?.(clusterId) ?? state.status;
      state.status = {
        ok: false,
        lastAttemptAt: attemptAt,
        lastSuccessAt: previous?.lastSuccessAt ?? null,
        error: reason,
        consecutiveFailures: state.failures,
        ...(previous?.objects === undefined ? {} : { objects: previous.objects }),
      };
      onStatus(clusterId, state.status);
      if (failure.code === 'CLUSTER_DISCONNECTED') {
        // An agent-mode cluster without a tunnel: not a failure to retry, a wait. Its agent
        // connecting (a `tunnel` change) schedules the next attempt.
        logger.debug({ cluster: clusterId }, 'cluster sync waits for an agent of the cluster to connect');
        throw failure;
      }
      if (state.loggedError === reason) {
        logger.debug({ cluster: clusterId, error: reason, failures: state.failures }, 'cluster sync failed again; will retry');
      } else {
        state.loggedError = reason;
        logger.warn({ cluster: clusterId, error: reason, failures: state.failures }, 'cluster sync failed; will retry with backoff');
      }
      armRetry(clusterId, state);
      throw failure;
    }
  }

  async function finishDeletion(clusterId: string, removed: number): Promise<void> {
    await store.deleteCluster(clusterId);
    forget(clusterId);
    logger.info({ cluster: clusterId, removedObjects: removed }, 'cluster deleted');
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

  /** The last failure to list clusters that was logged (one warning per streak, no stack). */
  let listFailureLogged: string | undefined;

  async function scheduleAll(): Promise<void> {
    try {
      for (const cluster of await store.listClusters()) schedule(cluster.id);
      if (listFailureLogged !== undefined) logger.info('cluster sync can list clusters again');
      listFailureLogged = undefined;
    } catch (error) {
      const failure = toKubegateError(error);
      const reason = `${failure.code}: ${failure.message}`;
      if (reason === listFailureLogged) {
        logger.debug({ error: reason }, 'cluster sync could not list clusters again');
      } else {
        listFailureLogged = reason;
        // Unknown errors keep their stack for the first line of a streak only.
        logger.warn({ error: reason, ...(failure.code === 'INTERNAL' ? { err: error } : {}) }, 'cluster sync could not list clusters; will retry at the next resync');
      }
    }
  }

  /** The clusters a change concerns: known ones when the change names what they hold, else all. */
  function onChange(change: StoreChange): void {
    switch (change.kind) {
      case 'cluster':
      case 'membership':
        schedule(change.key);
        return;
      case 'tunnel': {
        // An agent connected: a cluster that waited for one (or was never reached) syncs now.
        const state = states.get(change.key);
        if (state === undefined || state.status?.ok !== true) schedule(change.key);
        return;
      }
      case 'token': {
        const holders = [...states].filter(([, state]) => state.tokenNames.has(change.key)).map(([id]) => id);
        if (holders.length > 0) {
          for (const id of holders) schedule(id);
          return;
        }
        void store.getToken(change.key).then(
          async (token) => {
            if (token === undefined) return void scheduleAll();
            if (token.clusterId === null) return;
            // Only a cluster holding token state cares about a new token.
            const cluster = await store.getCluster(token.clusterId);
            if (cluster !== undefined && cluster.ace.enabled && aceModeOf(cluster.ace) === 'webhook') schedule(cluster.id);
          },
          () => void scheduleAll(),
        );
        return;
      }
      case 'identity':
        // A user's first login through a provider gives it a name there (provider:login).
        if (format !== 'id') void scheduleAll();
        return;
      case 'user':
      case 'groups': {
        const holders = [...states].filter(([, state]) => state.userIds.has(change.key)).map(([id]) => id);
        for (const id of holders) schedule(id);
        // A user's name may have changed (`email`: a new address): the clusters binding it re-bind.
        if (change.kind === 'user' && format !== 'id') {
          void store.listMembershipsOf({ users: [change.key], groups: [] }).then(
            (memberships) => {
              for (const clusterId of new Set(memberships.map((membership) => membership.clusterId))) if (!holders.includes(clusterId)) schedule(clusterId);
            },
            () => void scheduleAll(),
          );
        }
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
      installationId().catch((error: unknown) => logger.warn({ error: toKubegateError(error).message }, 'cluster sync could not read the installation ID; will retry'));
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
    installationId,
    status: (clusterId) => states.get(clusterId)?.status,
  };
}
