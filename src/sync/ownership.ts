/**
 * Which kubegate may write to a cluster: the ownership stamp.
 *
 * Design note: labels (kube/rancher.ts) keep two *different* installations, or two cluster
 * IDs, apart. A restored or copied data dir is the same installation (same store, same
 * installation ID), so labels cannot tell it from the original, and both would prune what
 * the other wrote. Time can: every proxy start adds a random *sync epoch* to the store (the
 * newest `EPOCHS_KEPT` are kept), and the sync keeps, per cluster, a ConfigMap
 * `kubegate-owner-<digest>` in the sync namespace holding the installation ID, the cluster
 * ID and the newest epoch it has seen. Before every write to a cluster the sync reads it:
 * - missing: this installation never wrote here (or someone removed it): create it;
 * - an epoch of our history: ours — advance it to our newest if it is older (another
 *   replica, or our own previous run, wrote it);
 * - an epoch we never had: another copy of this installation wrote it after this copy's
 *   data was taken. The copy that notices leaves the cluster alone (SYNC_SUPERSEDED) until
 *   an operator starts it with `sync.takeOver`, which rewrites the stamp once per cluster.
 * So a restored backup, or a copy whose original has restarted since, refuses at its first
 * sync; a copy started first stops its original at the original's next sync, which then
 * reports SYNC_SUPERSEDED. Either way, never two writers unnoticed.
 * Replicas sharing one PostgreSQL share the epoch history, so a rolling restart is fine.
 *
 * The stamp also records whether the authorized endpoint's objects (ClusterAuthTokens, their
 * Secrets, ClusterUserAttributes) may be in the cluster (`aceObjects`): written `true` before
 * the first of them is, and `false` once they were removed. Role bindings go to every
 * cluster, the endpoint's objects only to some: the record tells the sync whether a cluster
 * without the endpoint still needs cleaning, without listing kinds that may not exist there
 * (no CRDs) or that it may not read (no Role in the namespace). A stamp from before the record
 * existed counts as `true`, so a cleanup is never skipped on a guess.
 */
import { createHash } from 'node:crypto';
import { KubegateError } from '../errors.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { kubeStatusCode } from '../kube/client.js';
import { configMapsPath, managedMeta } from '../kube/rancher.js';
import type { ObjectOwner } from '../kube/rancher.js';

/** Sync epochs kept in the store (one per proxy start, workers and replicas included). */
export const EPOCHS_KEPT = 64;

export interface ConfigMap extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

export interface StampOptions {
  readonly namespace: string;
  readonly owner: ObjectOwner;
  /** This installation's recent epochs, newest first (never empty). */
  readonly epochs: readonly string[];
  /** Rewrite a stamp of an unknown epoch (`sync.takeOver`). */
  readonly takeOver: boolean;
  /** Cleaning up: a missing stamp means nothing to prove, and none is created. */
  readonly cleanup?: boolean;
  /** The endpoint's objects are about to be written: the stamp must say so first. */
  readonly writesAceObjects?: boolean;
}

export type StampOutcome = 'created' | 'current' | 'advanced' | 'taken-over' | 'absent';

export interface Claim {
  readonly outcome: StampOutcome;
  /**
   * Whether the endpoint's objects may be in the cluster, as the stamp said before this claim
   * (true also when it cannot tell: an old stamp, or none while cleaning up).
   */
  readonly aceObjects: boolean;
  /** The stamp as it now is in the cluster (undefined when `absent`). */
  readonly stamp: ConfigMap | undefined;
}

const ACE_OBJECTS_KEY = 'aceObjects';

export function ownershipStampName(owner: ObjectOwner): string {
  return `kubegate-owner-${createHash('sha256').update(`${owner.installationId}\0${owner.clusterId}`).digest('hex').slice(0, 20)}`;
}

/** Checks and refreshes the stamp; throws SYNC_SUPERSEDED when another copy owns the cluster. */
export async function claimCluster(client: KubeClient, options: StampOptions): Promise<Claim> {
  const { namespace, owner, epochs } = options;
  const newest = epochs[0];
  if (newest === undefined) throw new TypeError('epochs must not be empty');
  const name = ownershipStampName(owner);
  const path = configMapsPath(namespace, name);
  const current = await client.get<ConfigMap>(path);
  if (current === undefined) {
    if (options.cleanup === true) return { outcome: 'absent', aceObjects: true, stamp: undefined };
    const stamp = stampObject(namespace, owner, newest, options.writesAceObjects === true);
    try {
      return { outcome: 'created', aceObjects: false, stamp: await client.create(configMapsPath(namespace), stamp) };
    } catch (error) {
      if (kubeStatusCode(error) !== 404) throw error;
      throw new KubegateError(
        'KUBE_API_FAILED',
        `namespace ${namespace} does not exist in the cluster: the sync keeps its ownership stamp there (apply deploy/proxy/downstream-rbac.yaml, or a fresh import for an agent-mode cluster)`,
        { cause: error },
      );
    }
  }
  const epoch = current.data?.['epoch'] ?? '';
  const recorded = current.data?.[ACE_OBJECTS_KEY] !== 'false';
  const aceObjects = recorded || options.writesAceObjects === true;
  if (epoch === newest && aceObjects === recorded) return { outcome: 'current', aceObjects: recorded, stamp: current };
  const ours = epochs.includes(epoch);
  if (!ours && !options.takeOver) {
    throw new KubegateError(
      'SYNC_SUPERSEDED',
      `cluster ${owner.clusterId}: another copy of this kubegate installation (a restored or copied data dir or database, or the original of this copy) has written to it since this copy's data was taken; this copy leaves the cluster alone. To make this copy the one that writes, restart it with sync.takeOver: true (KUBEGATE_SYNC_TAKE_OVER=true) and stop the other`,
    );
  }
  // A stale resourceVersion (409) means another writer got there first: the next attempt re-reads.
  const stamp = await client.replace(path, stampObject(namespace, owner, newest, aceObjects, current.metadata.resourceVersion));
  return { outcome: epoch === newest ? 'current' : ours ? 'advanced' : 'taken-over', aceObjects: recorded, stamp };
}

/** Records in the stamp that the endpoint's objects were removed (after a successful cleanup). */
export async function recordAceObjectsRemoved(client: KubeClient, namespace: string, owner: ObjectOwner, stamp: ConfigMap): Promise<void> {
  if (stamp.data?.[ACE_OBJECTS_KEY] === 'false') return;
  const epoch = stamp.data?.['epoch'] ?? '';
  await client.replace(configMapsPath(namespace, stamp.metadata.name), stampObject(namespace, owner, epoch, false, stamp.metadata.resourceVersion));
}

function stampObject(namespace: string, owner: ObjectOwner, epoch: string, aceObjects: boolean, resourceVersion?: string): ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { ...managedMeta(ownershipStampName(owner), namespace, owner), ...(resourceVersion === undefined ? {} : { resourceVersion }) },
    data: { installationId: owner.installationId, clusterId: owner.clusterId, epoch, [ACE_OBJECTS_KEY]: String(aceObjects) },
  };
}

/** Removes the stamp after a cleanup; false when there was none. */
export async function releaseCluster(client: KubeClient, namespace: string, owner: ObjectOwner): Promise<boolean> {
  try {
    return await client.delete(configMapsPath(namespace, ownershipStampName(owner)));
  } catch (error) {
    if (kubeStatusCode(error) === 404) return false;
    throw error;
  }
}
