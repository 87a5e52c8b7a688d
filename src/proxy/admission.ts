/**
 * Admission: whether a request to `/k8s/clusters/<id>/…` may go to that cluster, and with
 * which headers. A function of the request head and the lookups it is given; it touches no
 * socket, so every refusal is tested as a row of a table (test/unit/proxy/admission.test.ts).
 *
 * Design note (fail closed). One order, for requests and upgrades alike:
 * path (cluster ID and a path that cannot escape it) → headers (client credentials and
 * hop-by-hop headers dropped; `Connection` naming a protected header refused) → for upgrades,
 * the `Origin` check (CVE-2019-13209) → bearer token → authenticate (401 / 503) → a
 * cluster-scoped token on another cluster (401) → client `Impersonate-*` parsed (400 when
 * malformed; 403 when the proxy has no `impersonation` review — both after authentication so
 * the audit names who tried) → membership (403) → what the role allows (a viewer only reads,
 * role-verbs.ts: 403) → cluster lookup (404) → for a client `Impersonate-*` request
 * (`kubectl --as`), the target cluster's own answer through its own upstream
 * (impersonation-review.ts: 403 naming every denial, 503 when it cannot tell).
 * Membership is checked before existence on purpose: a caller who is not a member gets the
 * same 403 whether or not the cluster exists, so cluster IDs do not leak; only callers whom
 * `authorize` accepts (members, and whoever the caller's policy lets see every cluster) can
 * see a 404. The upstream request then carries the sanitized client headers, the upstream's
 * `Host`, the proxy's own credentials and the `Impersonate-*` headers of the authenticated
 * user — identity headers are added last, after every strip, so nothing can remove them.
 * When the client's impersonation was allowed, those headers carry the requested identity
 * instead, and nothing of the kubegate user: as with kube-apiserver's nested impersonation,
 * the request then runs as the requested identity alone.
 *
 * A refusal says what to send (a KubegateError, which becomes a Kubernetes Status) and, for
 * the audit record, what was learnt before it: the cluster and path, who the caller was,
 * and the precise reason authentication failed (TOKEN_EXPIRED, TOKEN_INVALID…) where the
 * client only ever sees a generic 401. Admission never throws.
 */
import type { AuthResult, TokenAuthenticator, TokenFacts } from '../auth/authenticator.js';
import type { UserInfo } from '../auth/user.js';
import type { Upstream, UpstreamPool } from '../clusters/upstreams.js';
import { isKubegateError, KubegateError, toKubegateError, type ErrorCode } from '../errors.js';
import type { Cluster, ClusterRole } from '../store/store.js';
import { parseClusterPath, type ClusterPath } from './cluster-path.js';
import { acceptsImpersonateUid, impersonationHeaders, requestedIdentity, withForwardedExtras, withoutImpersonateUid } from './impersonate.js';
import type { ImpersonationDecision, ImpersonationReview } from './impersonation-review.js';
import { roleRefusal } from './role-verbs.js';
import { sanitizeRequest } from './sanitize.js';

/** What admission looks at: the request line and headers, nothing of the connection. */
export interface RequestHead {
  readonly method: string;
  /** The request target, e.g. `/k8s/clusters/dev/api/v1/pods?watch=1`. */
  readonly url: string;
  /** Flat `[name, value, …]` as received, every duplicate and spelling kept. */
  readonly rawHeaders: readonly string[];
  /** An HTTP upgrade (exec, attach, port-forward over SPDY or WebSocket). */
  readonly upgrade: boolean;
}

export interface AdmissionDeps {
  readonly authenticator: TokenAuthenticator;
  /** Synchronous, from the in-memory cluster directory. */
  readonly getCluster: (clusterId: string) => Cluster | undefined;
  /** Synchronous, cached: the caller's role in the cluster, or null when not allowed in. */
  readonly authorize: (user: UserInfo, clusterId: string) => ClusterRole | null;
  readonly upstreams: Pick<UpstreamPool, 'get'>;
  /**
   * Origins (`https://kubegate.example.com[:port]`) from which browser upgrades are accepted.
   * An upgrade carrying any other `Origin` is refused; requests without `Origin` (kubectl)
   * are not affected. Read when an upgrade carries an `Origin` (it may be a getter, e.g. for
   * a public URL known only after listen); entries that are not origins never match.
   */
  readonly allowedOrigins: readonly string[];
  /**
   * Asks the target cluster whether the caller may act as the identity its `Impersonate-*`
   * headers request. Without it, such requests are refused (IMPERSONATION_REFUSED).
   */
  readonly impersonation?: ImpersonationReview | undefined;
  /**
   * The cluster's `gitVersion` as last probed (clusters/status.ts), or undefined when not
   * known: `Impersonate-Uid` goes only to API servers from 1.22 on, which know the header.
   */
  readonly clusterVersion?: ((clusterId: string) => string | undefined) | undefined;
  /**
   * The extras of the caller's own identity that are forwarded (`Impersonate-Extra-*`);
   * undefined forwards all it has. Extras a client asks for with `--as-user-extra` are
   * reviewed by the cluster instead.
   */
  readonly forwardedExtras?: ReadonlySet<string> | undefined;
}

/** What was learnt about a request before it was admitted or refused, for the audit record. */
export interface AdmissionFacts {
  /** The target, once the path parsed. */
  readonly target: ClusterPath | undefined;
  /** Watches, follows and every upgrade. */
  readonly longRunning: boolean;
  /** The authenticated caller, once authenticated. */
  readonly user: UserInfo | undefined;
  readonly token: TokenFacts | undefined;
  readonly role: ClusterRole | null;
  /** The identity the caller asked to act as (`kubectl --as`), once its headers parsed. */
  readonly impersonated: UserInfo | undefined;
}

export interface Admitted extends AdmissionFacts {
  readonly admitted: true;
  readonly target: ClusterPath;
  readonly user: UserInfo;
  readonly token: TokenFacts;
  readonly role: ClusterRole;
  readonly upstream: Upstream;
  /** The headers for the upstream request, flat `[name, value, …]`, identity last. */
  readonly headers: string[];
  /** The request has a body to stream upstream (framing is the forwarding client's). */
  readonly hasBody: boolean;
}

export interface Refused extends AdmissionFacts {
  readonly admitted: false;
  /** What the client is sent (as a Status). */
  readonly error: KubegateError;
  /** Why, for the audit: more precise than `error.code` when authentication said no. */
  readonly code: ErrorCode;
}

export type Admission = Admitted | Refused;

const BEARER_PREFIX = /^bearer +/i;

/** Decides whether `head` may go to its cluster. Never throws; `now` is for tests. */
export async function admit(head: RequestHead, deps: AdmissionDeps, now: () => number = Date.now): Promise<Admission> {
  let target: ClusterPath | undefined;
  let longRunning = head.upgrade;
  let user: UserInfo | undefined;
  let token: TokenFacts | undefined;
  let role: ClusterRole | null = null;
  let impersonated: UserInfo | undefined;
  const refuse = (cause: unknown, code?: ErrorCode): Refused => {
    const error = toKubegateError(cause);
    return { admitted: false, error, code: code ?? error.code, target, longRunning, user, token, role, impersonated };
  };

  try {
    target = parseClusterPath(head.url);
    longRunning ||= target.longRunning;
    const clean = sanitizeRequest(head.rawHeaders, head.upgrade);
    if (head.upgrade && clean.origin !== undefined && !isAllowedOrigin(deps.allowedOrigins, clean.origin)) {
      return refuse(new KubegateError('ORIGIN_REFUSED'));
    }
    const tokenText = bearerToken(clean.authorization);
    if (tokenText === undefined) return refuse(new KubegateError('UNAUTHENTICATED'));

    let result: AuthResult;
    try {
      result = await deps.authenticator.authenticateToken(tokenText);
    } catch (cause) {
      return refuse(new KubegateError('AUTH_UNDECIDED', undefined, { cause }));
    }
    if (result.outcome === 'unauthenticated') return refuse(new KubegateError('UNAUTHENTICATED'), result.code);
    if (result.outcome === 'error') return refuse(new KubegateError('AUTH_UNDECIDED', undefined, { cause: result.error }));
    user = result.user;
    token = result.token;
    if (token.expiresAt !== null && token.expiresAt.getTime() <= now()) return refuse(new KubegateError('UNAUTHENTICATED'), 'TOKEN_EXPIRED');
    if (token.clusterId !== null && token.clusterId !== target.clusterId) return refuse(new KubegateError('TOKEN_WRONG_CLUSTER'));
    impersonated = clean.impersonation.length === 0 ? undefined : requestedIdentity(clean.impersonation);
    if (impersonated !== undefined && deps.impersonation === undefined) return refuse(new KubegateError('IMPERSONATION_REFUSED'));

    const allowed = deps.authorize(user, target.clusterId);
    if (allowed === null) return refuse(new KubegateError('FORBIDDEN'));
    role = allowed;
    const readOnly = roleRefusal(allowed, { method: head.method, path: target.path, upgrade: head.upgrade });
    if (readOnly !== undefined) return refuse(readOnly);
    const cluster = deps.getCluster(target.clusterId);
    if (cluster === undefined) return refuse(new KubegateError('NOT_FOUND'));
    const upstream = deps.upstreams.get(cluster);
    const version = deps.clusterVersion?.(target.clusterId);
    const uidAccepted = acceptsImpersonateUid(version);
    if (!uidAccepted && impersonated !== undefined && impersonated.uid !== '') {
      return refuse(new KubegateError('IMPERSONATION_INVALID', `the cluster's API server (${version ?? ''}) is older than 1.22 and does not know Impersonate-Uid`));
    }
    if (impersonated !== undefined && deps.impersonation !== undefined) {
      let decision: ImpersonationDecision;
      try {
        decision = await deps.impersonation.review(upstream, withForwardedExtras(user, deps.forwardedExtras), impersonated);
      } catch (cause) {
        return refuse(isKubegateError(cause, 'IMPERSONATION_UNVERIFIED') ? cause : new KubegateError('IMPERSONATION_UNVERIFIED', undefined, { cause }));
      }
      if (!decision.allowed) {
        return refuse(new KubegateError('IMPERSONATION_DENIED', `the cluster does not allow you to impersonate ${decision.denied.join(', ')}`));
      }
    }

    const headers = clean.headers;
    headers.push('Host', upstream.hostHeader);
    pushAll(headers, upstream.authHeaders);
    const identityHeaders = impersonated === undefined ? impersonationHeaders(user, deps.forwardedExtras) : impersonationHeaders(impersonated);
    pushAll(headers, uidAccepted ? identityHeaders : withoutImpersonateUid(identityHeaders));
    return { admitted: true, target, longRunning, user, token, role: allowed, impersonated, upstream, headers, hasBody: clean.hasBody };
  } catch (cause) {
    // A malformed path or header, an unusable cluster configuration, or a bug: its catalog
    // error (an unknown error becomes INTERNAL).
    return refuse(cause);
  }
}

/** The normalised allow-list of each `allowedOrigins` array seen (arrays are not copied). */
const normalisedOrigins = new WeakMap<readonly string[], ReadonlySet<string>>();

function isAllowedOrigin(allowed: readonly string[], origin: string): boolean {
  let origins = normalisedOrigins.get(allowed);
  if (origins === undefined) {
    origins = new Set(allowed.map(normalizeOrigin).filter((entry) => entry !== ''));
    normalisedOrigins.set(allowed, origins);
  }
  return origins.has(origin.toLowerCase());
}

/** `https://Host:443/` → `https://host`; `''` for anything that is not an http(s) origin. */
function normalizeOrigin(origin: string): string {
  if (!URL.canParse(origin)) return '';
  const url = new URL(origin);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return '';
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') return '';
  return url.origin.toLowerCase();
}

/** The token of an `Authorization: Bearer <token>` header (scheme in any case), if any. */
function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = BEARER_PREFIX.exec(authorization);
  if (match === null) return undefined;
  const token = authorization.slice(match[0].length).trim();
  return token.length > 0 ? token : undefined;
}

function pushAll(target: string[], source: readonly string[]): void {
  for (const item of source) target.push(item);
}
