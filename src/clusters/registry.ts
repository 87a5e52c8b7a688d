/**
 * The cluster directory: every cluster and membership, held in memory so the forwarding
 * path can answer "which cluster?" and "may this user use it?" without I/O.
 *
 * The directory loads everything from the store at start, then reloads when the store
 * announces a `cluster` or `membership` change (in this process, or from another replica
 * through PostgreSQL NOTIFY), and on a slow timer as a safety net. Reloads are
 * single-flight: changes arriving during a reload schedule exactly one more. Between a
 * committed change and the end of the reload that follows it, lookups see the previous
 * state; the API handlers that make changes await `refresh()` before answering, so a
 * client never sees its own change missing.
 *
 * Authorization is membership: the user ID, or any of the user's groups, named as a member
 * of the cluster. When several match, the strongest role wins (owner > member > viewer).
 * A cluster being deleted has no members any more: nobody may use it.
 */
import type { UserInfo } from '../auth/user.js';
import type { Cluster, ClusterRole, Membership, Store } from '../store/store.js';

const ROLE_RANK: Readonly<Record<ClusterRole, number>> = { viewer: 1, member: 2, owner: 3 };

interface ClusterEntry {
  readonly cluster: Cluster;
  readonly users: ReadonlyMap<string, ClusterRole>;
  readonly groups: ReadonlyMap<string, ClusterRole>;
}

export interface ClusterRegistryOptions {
  /** Safety-net reload interval; 0 disables the timer (tests). */
  readonly reloadIntervalMs?: number;
  /** Called when a reload fails; the directory keeps its previous state. */
  readonly onReloadError?: (error: unknown) => void;
}

export interface ClusterRegistry {
  getCluster(id: string): Cluster | undefined;
  listClusters(): Cluster[];
  /** The caller's strongest role in the cluster, or null when not a member. */
  roleOf(user: UserInfo, clusterId: string): ClusterRole | null;
  /** Reloads from the store now; resolves when the new state is visible. */
  refresh(): Promise<void>;
  close(): void;
}

export async function createClusterRegistry(store: Store, options: ClusterRegistryOptions = {}): Promise<ClusterRegistry> {
  let entries = new Map<string, ClusterEntry>();
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;

  async function load(): Promise<void> {
    const clusters = await store.listClusters();
    const next = new Map<string, ClusterEntry>();
    const memberships = await Promise.all(clusters.map((cluster) => store.listMemberships(cluster.id)));
    clusters.forEach((cluster, index) => {
      next.set(cluster.id, buildEntry(cluster, memberships[index] ?? []));
    });
    entries = next;
  }

  function refresh(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await load();
        } while (again && !closed);
      } finally {
        running = null;
      }
    })();
    return running;
  }

  await load();

  const unsubscribe = store.subscribe((change) => {
    if (change.kind === 'cluster' || change.kind === 'membership' || change.kind === 'resync') {
      refresh().catch((error: unknown) => options.onReloadError?.(error));
    }
  });
  const interval = options.reloadIntervalMs ?? 60_000;
  const timer =
    interval > 0
      ? setInterval(() => {
          refresh().catch((error: unknown) => options.onReloadError?.(error));
        }, interval)
      : undefined;
  timer?.unref();

  return {
    getCluster: (id) => entries.get(id)?.cluster,
    listClusters: () => [...entries.values()].map((entry) => entry.cluster),
    roleOf(user, clusterId) {
      const entry = entries.get(clusterId);
      if (!entry || entry.cluster.deletingSince !== null) return null;
      let best: ClusterRole | null = entry.users.get(user.name) ?? null;
      if (best === 'owner') return best;
      for (const group of user.groups) {
        const role = entry.groups.get(group);
        if (role !== undefined && (best === null || ROLE_RANK[role] > ROLE_RANK[best])) best = role;
      }
      return best;
    },
    refresh,
    close() {
      closed = true;
      unsubscribe();
      if (timer) clearInterval(timer);
    },
  };
}

function buildEntry(cluster: Cluster, memberships: readonly Membership[]): ClusterEntry {
  const users = new Map<string, ClusterRole>();
  const groups = new Map<string, ClusterRole>();
  for (const membership of memberships) {
    (membership.subjectKind === 'User' ? users : groups).set(membership.subjectName, membership.role);
  }
  return { cluster, users, groups };
}
