/**
 * Which clusters a caller may see. A cluster is visible to its members (directly or through
 * a group) and to admins; to anyone else it does not exist: the answer is the same 404
 * whether the ID is unknown or merely not theirs, so cluster IDs do not leak. A cluster being
 * deleted has no members (clusters/registry.ts): only admins see it, and only the routes
 * that show or delete it accept it (CLUSTER_DELETING elsewhere).
 */
import { KubegateError } from '../../errors.js';
import type { Cluster, ClusterRole } from '../../store/store.js';
import { CLUSTER_ID_PATTERN } from '../cluster-path.js';
import type { Caller } from './authenticate.js';
import type { ProxyApiContext } from './context.js';

export interface VisibleCluster {
  readonly cluster: Cluster;
  /** The caller's own role; null for an admin who is not a member. */
  readonly role: ClusterRole | null;
}

export interface VisibleClusterOptions {
  /** Accept a cluster being deleted (showing or deleting it); otherwise CLUSTER_DELETING. */
  readonly deleting?: 'allow';
}

/** The cluster if the caller may see it; NOT_FOUND otherwise (field `field` when given). */
export function visibleCluster(ctx: Pick<ProxyApiContext, 'directory'>, caller: Caller, id: string, field?: string, options: VisibleClusterOptions = {}): VisibleCluster {
  const notFound = new KubegateError('NOT_FOUND', 'no such cluster', field === undefined ? {} : { field });
  if (!CLUSTER_ID_PATTERN.test(id)) throw notFound;
  const cluster = ctx.directory.getCluster(id);
  if (cluster === undefined) throw notFound;
  const role = ctx.directory.roleOf(caller.identity, id);
  if (role === null && !caller.isAdmin) throw notFound;
  if (cluster.deletingSince !== null && options.deleting !== 'allow') {
    throw new KubegateError('CLUSTER_DELETING', `cluster ${cluster.id} is being deleted`, field === undefined ? {} : { field });
  }
  return { cluster, role };
}

/** Admins, and owners of the cluster, may manage its members. */
export function canManageMembers(caller: Caller, visible: VisibleCluster): boolean {
  return caller.isAdmin || visible.role === 'owner';
}
