/**
 * Parsing of `/k8s/clusters/<id>/<rest>?<query>`, the one place that decides which cluster a
 * request goes to and which path it asks for there.
 *
 * Design note (fail closed): nothing is decoded or normalised. The cluster ID must be a DNS
 * label exactly as written, so `%61`, `a%2fb` or `..` can never name a cluster. The rest of
 * the path is forwarded byte for byte, so it is refused (400) when a server or proxy behind
 * us could read it as something else: a `.` or `..` segment, raw or percent-encoded (also
 * double-encoded), an encoded slash or backslash, a raw backslash, an encoded NUL, an empty
 * segment (`//`), or a `#`. kube-apiserver never needs any of these, and refusing them means
 * `/k8s/clusters/a/../b/api` cannot reach cluster b through any normalisation downstream.
 * The query string is kept exactly as received.
 */
import { KubegateError } from '../errors.js';

const CLUSTER_PATH_PREFIX = '/k8s/clusters/';

/** A Kubernetes-style DNS label (RFC 1123): lower-case alphanumerics and `-`, at most 63. */
export const CLUSTER_ID_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface ClusterPath {
  readonly clusterId: string;
  /** The path to ask the cluster for, starting with `/` (`/` when the URL stops at the ID). */
  readonly path: string;
  /** The raw query including its `?`, or `''`. */
  readonly query: string;
  /** Watches, log streams, exec/attach/port-forward and service proxying: no request timeout. */
  readonly longRunning: boolean;
}

/** Characters that make an ID refused as malformed (400) rather than unknown (404). */
const SUSPICIOUS_ID = /[.%\\]/;
/**
 * Anything in the forwarded path that a server could resolve to another path: dot segments
 * (raw, `%2e`, `%252e`), encoded `/` and `\` (also double-encoded), raw `\`, encoded NUL,
 * empty segments and fragments.
 */
const UNSAFE_PATH = /(?:^|\/)(?:\.|%2e|%252e){1,2}(?:\/|$)|%(?:25)?(?:2f|5c|00)|[\\#]|\/\//i;
/** kube-apiserver's default `--long-running-request-regexp`, plus `watch=`/`follow=` queries. */
const LONG_RUNNING_PATH = /(?:\/|^)(?:(?:watch|proxy)(?:\/|$)|(?:logs?|portforward|exec|attach)\/?$)/;
const LONG_RUNNING_QUERY = /[?&](?:watch|follow)=(?:1|t|true)(?:&|$)/i;

export function isClusterPath(url: string): boolean {
  return url.startsWith(CLUSTER_PATH_PREFIX);
}

/**
 * Splits a request target. Throws KubegateError: NOT_FOUND when it is not a cluster path or
 * the ID cannot be a cluster ID, BAD_REQUEST when the path could escape its cluster.
 */
export function parseClusterPath(url: string): ClusterPath {
  const queryStart = url.indexOf('?');
  const pathPart = queryStart < 0 ? url : url.slice(0, queryStart);
  const query = queryStart < 0 ? '' : url.slice(queryStart);
  if (!pathPart.startsWith(CLUSTER_PATH_PREFIX)) throw new KubegateError('NOT_FOUND');

  const idEnd = pathPart.indexOf('/', CLUSTER_PATH_PREFIX.length);
  const clusterId = idEnd < 0 ? pathPart.slice(CLUSTER_PATH_PREFIX.length) : pathPart.slice(CLUSTER_PATH_PREFIX.length, idEnd);
  if (clusterId.length === 0 || SUSPICIOUS_ID.test(clusterId)) {
    throw new KubegateError('BAD_REQUEST', 'the cluster ID in the path is malformed');
  }
  if (!CLUSTER_ID_PATTERN.test(clusterId)) throw new KubegateError('NOT_FOUND');

  const rest = idEnd < 0 ? '' : pathPart.slice(idEnd);
  if (UNSAFE_PATH.test(rest)) {
    throw new KubegateError('BAD_REQUEST', 'the path contains dot segments, empty segments or encoded separators');
  }
  const path = rest.length === 0 ? '/' : rest;
  return { clusterId, path, query, longRunning: isLongRunning(path, query) };
}

/** True for requests Kubernetes itself exempts from its request timeout. */
export function isLongRunning(path: string, query: string): boolean {
  return LONG_RUNNING_PATH.test(path) || (query.length > 0 && LONG_RUNNING_QUERY.test(query));
}
