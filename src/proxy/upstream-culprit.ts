/**
 * Which side is to blame when forwarding fails, told so that kubectl prints it.
 *
 * Design note. By the time a request reaches a cluster, kubegate has authenticated the user
 * and the upstream request carries the proxy's own credential plus `Impersonate-*` headers.
 * So an upstream **401** can only mean that the cluster refused the *proxy's* credential (a
 * rotated or expired ServiceAccount token, a revoked client certificate, an agent's stale
 * service-account token): relayed as is, kubectl would tell the user "You must be logged
 * in", which sends them to fix the wrong thing. It becomes a 502 `CLUSTER_CREDENTIAL_REFUSED`
 * naming the cluster, and the cluster's status is marked unhealthy at once. A 403 is an RBAC
 * answer about the impersonated user and passes through untouched, as does every other
 * status. Only the head is looked at: the 401's small body is discarded, never a stream.
 *
 * Failures of the proxy's own making (unreachable, timeout, no agent) carry the cluster's ID
 * and the system error code in their message, which is safe to show: only members of the
 * cluster get this far.
 */
import { errorCatalog, isKubegateError, KubegateError, type ErrorCode } from '../errors.js';

/** Told when a cluster refused the proxy's credential (the cluster status marks it unhealthy). */
export type CredentialRefusedReport = (clusterId: string) => void;

/**
 * The refusal to answer instead of the upstream's answer, or undefined when the answer is
 * to be relayed. Reports the refused credential through `report`.
 */
export function credentialRefusal(clusterId: string, via: 'direct' | 'agent', upstreamStatus: number, report?: CredentialRefusedReport): KubegateError | undefined {
  if (upstreamStatus !== 401) return undefined;
  report?.(clusterId);
  const whose = via === 'agent' ? "the service account token of the cluster's kubegate agent" : "the proxy's credential for it";
  const fix = via === 'agent' ? 'check the kubegate agent in that cluster' : `an administrator must register a valid one (PATCH /v1/clusters/${clusterId})`;
  return new KubegateError('CLUSTER_CREDENTIAL_REFUSED', `the API server of cluster "${clusterId}" refused ${whose}: ${fix}`);
}

/** Codes whose message names the cluster once forwarding has started. */
const CLUSTER_FAILURES: ReadonlySet<ErrorCode> = new Set(['UPSTREAM_UNREACHABLE', 'UPSTREAM_TIMEOUT', 'CLUSTER_DISCONNECTED']);

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|HOSTNAME|ALTNAME/;

/**
 * A failure to reach the cluster as a KubegateError whose message names the cluster and
 * the system error code (`ECONNREFUSED`, `CERT_HAS_EXPIRED`…), never the raw error text.
 */
export function upstreamFailure(clusterId: string, err: unknown): KubegateError {
  if (isKubegateError(err)) return namingCluster(err, clusterId);
  const code = systemCode(err);
  const what = code !== undefined && TLS_ERROR.test(code) ? "its API server's TLS certificate could not be verified" : 'its API server could not be reached';
  return new KubegateError('UPSTREAM_UNREACHABLE', `cluster "${clusterId}": ${what}${code === undefined ? '' : ` (${code})`}`, { cause: err });
}

/** `err` with the cluster's ID in its message, when it is a failure to reach the cluster still carrying its catalog message. */
export function namingCluster(err: KubegateError, clusterId: string): KubegateError {
  if (clusterId === '' || !CLUSTER_FAILURES.has(err.code) || err.message !== errorCatalog[err.code].message) return err;
  return new KubegateError(err.code, `cluster "${clusterId}": ${err.message}`, { cause: err.cause ?? err });
}

function systemCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(code) ? code : undefined;
}
