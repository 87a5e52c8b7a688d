/**
 * Whether a cluster's registered credential can do what the proxy needs, checked once when
 * an admin registers the cluster or changes how it is reached (`POST`/`PATCH
 * /v1/clusters`), so a wrong token or missing RBAC shows in the answer instead of in the
 * first user's kubectl.
 *
 * Design note: the proxy needs exactly the right to impersonate what it sends — users,
 * groups, uids and its three extras (src/auth/user.ts) — and to create SubjectAccessReviews
 * (how `kubectl --as` is decided by the cluster; deploy/proxy/downstream-rbac.yaml grants
 * the same), and it asks the API server itself with one SelfSubjectAccessReview per
 * right, as the registered identity, through the upstream pool (so the CA and TLS settings
 * are checked too). A 401 means the credential is refused. The answer never stops the
 * registration: a cluster may be registered before its RBAC is applied; the result says
 * what is missing.
 */
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME } from '../auth/user.js';
import { isKubegateError } from '../errors.js';
import type { Cluster } from '../store/store.js';
import { describeUnreachable, requestUpstreamJson } from './upstream-request.js';
import type { UpstreamPool } from './upstreams.js';

export interface AccessRight {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
}

export interface CheckedRight extends AccessRight {
  readonly allowed: boolean;
}

export interface CredentialCheck {
  /** The credential authenticates and every right is allowed. */
  readonly ok: boolean;
  readonly credential: 'accepted' | 'refused' | 'unknown';
  readonly checkedAt: Date;
  /** The rights asked about, with the answers (empty when the API server could not be asked). */
  readonly rights: readonly CheckedRight[];
  /** What is wrong, in a sentence safe to show. */
  readonly error?: string;
}

/** What the forwarding path and the sync send as `Impersonate-*` (impersonate.ts). */
export const REQUIRED_RIGHTS: readonly AccessRight[] = Object.freeze([
  { verb: 'impersonate', group: '', resource: 'users' },
  { verb: 'impersonate', group: '', resource: 'groups' },
  { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'uids' },
  ...[EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME].map((key) => ({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: key })),
  { verb: 'create', group: 'authorization.k8s.io', resource: 'subjectaccessreviews' },
]);

const SSAR_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
const DEFAULT_TIMEOUT_MS = 5000;

export interface CredentialCheckOptions {
  readonly upstreams: Pick<UpstreamPool, 'get'>;
  /** Limit for the whole check. Default 5000. */
  readonly timeoutMs?: number;
  readonly now?: () => Date;
}

/** Asks the cluster's API server, as the proxy, whether it may do what the proxy needs. Never throws. */
export async function checkClusterCredential(cluster: Cluster, options: CredentialCheckOptions): Promise<CredentialCheck> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const checkedAt = (options.now ?? (() => new Date()))();
  const failed = (credential: CredentialCheck['credential'], error: string): CredentialCheck => ({ ok: false, credential, checkedAt, rights: [], error });
  const rights: CheckedRight[] = [];
  try {
    const upstream = options.upstreams.get(cluster);
    for (const right of REQUIRED_RIGHTS) {
      const answer = await requestUpstreamJson(upstream, { method: 'POST', path: SSAR_PATH, body: accessReview(right) }, signal);
      if (answer.status === 401) return failed('refused', "the API server refused the proxy's credential (HTTP 401)");
      const allowed = (answer.body as { status?: { allowed?: unknown } } | undefined)?.status?.allowed;
      if (answer.status !== 201 || typeof allowed !== 'boolean') {
        return failed('accepted', `the API server answered a SelfSubjectAccessReview with HTTP ${answer.status}`);
      }
      rights.push({ ...right, allowed });
    }
  } catch (error) {
    if (isKubegateError(error, 'CLUSTER_DISCONNECTED')) return failed('unknown', 'no agent of the cluster is connected');
    return failed('unknown', describeUnreachable(error, signal));
  }
  const missing = rights.filter((right) => !right.allowed);
  if (missing.length === 0) return { ok: true, credential: 'accepted', checkedAt, rights };
  const names = missing.map((right) => `${right.verb} ${right.resource}${right.subresource === undefined ? '' : `/${right.subresource}`}`).join(', ');
  return {
    ok: false,
    credential: 'accepted',
    checkedAt,
    rights,
    error: `the proxy's identity may not ${names} in the cluster: apply deploy/proxy/downstream-rbac.yaml there`,
  };
}

function accessReview(right: AccessRight): object {
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: {
      resourceAttributes: {
        verb: right.verb,
        group: right.group,
        resource: right.resource,
        ...(right.subresource === undefined ? {} : { subresource: right.subresource }),
      },
    },
  };
}
