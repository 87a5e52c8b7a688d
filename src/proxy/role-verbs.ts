/**
 * What a membership role lets a request do through the proxy, whatever the cluster's own RBAC
 * says: a second line of defence behind the ClusterRoleBindings the sync writes
 * (sync/desired.ts), for a cluster whose bindings are not there yet, were edited, or that the
 * sync cannot reach.
 *
 * Design note: only `viewer` is limited here — owners and members may write, and how much is
 * the cluster's RBAC to say. A viewer may read: GET, HEAD and OPTIONS (get, list, watch, logs,
 * discovery). Everything else is a write and refused, as are
 * - every upgrade (exec, attach, port-forward: they act in a container whatever the method);
 * - the `proxy` subresources of pods, services and nodes (and the old `/api/v1/proxy/…`):
 *   a GET there reaches an application or the kubelet, not an object, and may change things;
 * with one exception: the *self* reviews kubectl sends as POST to ask the API server about the
 * caller only — `kubectl auth can-i` (SelfSubjectAccessReview, SelfSubjectRulesReview in
 * authorization.k8s.io) and `kubectl auth whoami` (SelfSubjectReview in
 * authentication.k8s.io). They create nothing and answer only about the caller. Only their
 * exact path is accepted (cluster-scoped, any API version): any other spelling is refused,
 * never guessed at.
 */
import { KubegateError } from '../errors.js';
import type { ClusterRole } from '../store/store.js';

const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

const SELF_REVIEW = /^\/apis\/(?:authorization\.k8s\.io\/v\d+(?:(?:alpha|beta)\d+)?\/(?:selfsubjectaccessreviews|selfsubjectrulesreviews)|authentication\.k8s\.io\/v\d+(?:(?:alpha|beta)\d+)?\/selfsubjectreviews)$/;

const PROXY_SUBRESOURCE = /^\/api\/v1\/(?:proxy(?:\/|$)|(?:namespaces\/[^/]+\/(?:pods|services)|nodes)\/[^/]+\/proxy(?:\/|$))/;

export interface RoleRequest {
  readonly method: string;
  /** The path asked of the cluster (after `/k8s/clusters/<id>`), without the query. */
  readonly path: string;
  readonly upgrade: boolean;
}

/** Why `role` may not make this request (ROLE_READ_ONLY), or undefined when it may. */
export function roleRefusal(role: ClusterRole, request: RoleRequest): KubegateError | undefined {
  if (role !== 'viewer') return undefined;
  const what = request.upgrade
    ? 'exec, attach and port-forward are refused'
    : READ_METHODS.has(request.method)
      ? PROXY_SUBRESOURCE.test(request.path)
        ? 'the proxy subresources are refused'
        : undefined
      : request.method === 'POST' && SELF_REVIEW.test(request.path)
        ? undefined
        : `${request.method} is refused`;
  if (what === undefined) return undefined;
  return new KubegateError('ROLE_READ_ONLY', `your role on this cluster is viewer, which may only read: ${what}`);
}
