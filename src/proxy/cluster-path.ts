/**
 * Parsing of `/k8s/clusters/<id>/<rest>?<query>`, the one place that decides which cluster a
 * request goes to and which path it asks for there.
 *
 * Design note (fail closed): nothing forwarded is decoded or normalised. The cluster ID must
 * be a DNS label exactly as written, so `%61`, `a%2fb` or `..` can never name a cluster. The
 * rest of the path is forwarded byte for byte, so it is refused (400) when a server or proxy
 * behind us could read it as something else — a cluster's `server` URL may carry a path
 * prefix (`https://lb/tenant-a`), and a load balancer there that decodes the path once more
 * would resolve `/tenant-a/%252e%252e/tenant-b` outside its prefix. So each segment is
 * percent-decoded again and again until it no longer changes (at most MAX_DECODE_ROUNDS
 * times; a segment still changing then is refused too), and the path is refused when any of
 * those spellings is a `.` or `..` segment (also before a `;` parameter, as some servers
 * read `..;`), contains a `/`, `\` or NUL, or is not UTF-8 (overlong forms such as `%c0%ae`
 * are read as `.` by lax decoders). Raw backslashes, empty segments (`//`) and `#` are
 * refused as well. kube-apiserver never produces any of these: object names cannot contain
 * `/`, `%` or be `.`/`..` (apimachinery's path segment rule), and selectors live in the
 * query. Other encodings (`%3A`, `%40`, `%20`, UTF-8) pass untouched, and the query string is
 * kept exactly as received.
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
/** Raw characters no forwarded path may hold: a backslash, a fragment, an empty segment. */
const UNSAFE_RAW = /[\\#]|\/\//;
/** What no decoded spelling of a segment may contain. */
const UNSAFE_DECODED = /[/\\\0]/;
const DOT_SEGMENT = /^\.{1,2}(?:;|$)/;
const PERCENT_ESCAPE = /%([0-9a-f]{2})/gi;
/** More rounds than any real path needs; a segment still changing after them is refused. */
const MAX_DECODE_ROUNDS = 4;
const utf8 = new TextDecoder('utf-8', { fatal: true });
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
  if (!isSafePath(rest)) {
    throw new KubegateError('BAD_REQUEST', 'the path contains dot segments, empty segments or encoded separators');
  }
  const path = rest.length === 0 ? '/' : rest;
  return { clusterId, path, query, longRunning: isLongRunning(path, query) };
}

/**
 * Paths without any character that a refusal below needs (`.`, `%`, `\`, `#`, NUL) and
 * without `//`: every segment is safe as it is. Most kubectl paths; the rest are checked
 * segment by segment.
 */
const PLAIN_PATH = /^(?:\/[^/.%\\#\0]+)*\/?$/;

/** `/segment/segment…` as received: see the design note for what is refused. */
function isSafePath(rest: string): boolean {
  if (PLAIN_PATH.test(rest)) return true;
  if (UNSAFE_RAW.test(rest)) return false;
  const segments = rest.split('/');
  // segments[0] is the empty text before the leading `/`.
  for (let i = 1; i < segments.length; i++) {
    if (!isSafeSegment(segments[i] as string)) return false;
  }
  return true;
}

function isSafeSegment(segment: string): boolean {
  let spelling = segment;
  for (let round = 0; ; round++) {
    if (DOT_SEGMENT.test(spelling) || UNSAFE_DECODED.test(spelling)) return false;
    if (!spelling.includes('%')) return true;
    const decoded = percentDecode(spelling);
    if (decoded === undefined) return false;
    if (decoded === spelling) return true;
    if (round === MAX_DECODE_ROUNDS) return false;
    spelling = decoded;
  }
}

/**
 * One round of percent-decoding, leaving `%` signs that start no escape as they are; undefined
 * when the escapes spell bytes that are not UTF-8.
 */
function percentDecode(text: string): string | undefined {
  const latin1 = text.replace(PERCENT_ESCAPE, (_escape, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  if (latin1 === text) return text;
  try {
    return utf8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    return undefined;
  }
}

/** True for requests Kubernetes itself exempts from its request timeout. */
export function isLongRunning(path: string, query: string): boolean {
  return LONG_RUNNING_PATH.test(path) || (query.length > 0 && LONG_RUNNING_QUERY.test(query));
}
