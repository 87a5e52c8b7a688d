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
import type { CachedAuthenticator } from '../auth/cached.js';
import type { UserInfo } from '../auth/user.js';
import type { Upstream, UpstreamPool } from '../clusters/upstreams.js';
import { isKubegateError, KubegateError, toKubegateError, type ErrorCode } from '../errors.js';
import type { Cluster, ClusterRole } from '../store/store.js';
import { parseClusterPath, type ClusterPath } from './cluster-path.js';
import { acceptsImpersonateUid, impersonationHeaders, requestedIdentity, withForwardedExtras, withoutImpersonateUid } from './impersonate.js';
import type { ImpersonationDecision, ImpersonationReview } from './impersonation-review.js';
import { roleRefusal } from './role-verbs.js';
import { sanitizeRequest, type SanitizedRequest } from './sanitize.js';

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
  /** With `cachedAnswer` (the token cache), a known token is admitted without a promise. */
  readonly authenticator: TokenAuthenticator & Partial<Pick<CachedAuthenticator, 'cachedAnswer'>>;
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

/**
 * Decides whether `head` may go to its cluster. Never throws; `now` is for tests. A token the
 * authenticator answers from its cache (`cachedAnswer`) is decided synchronously, without a
 * promise or a microtask: that is every request of a busy proxy but a token's first. A
 * token it has to look up, and a client impersonation the cluster must review, answer a
 * promise.
 */
export function admit(head: RequestHead, deps: AdmissionDeps, now: () => number = Date.now): Admission | Promise<Admission> {
  return new AdmissionRun(head, deps, now).start();
}

/** One request's admission: what it learnt so far (for the audit of a refusal) and its steps. */
class AdmissionRun implements AdmissionFacts {
  target: ClusterPath | undefined;
  longRunning: boolean;
  user: UserInfo | undefined;
  token: TokenFacts | undefined;
  role: ClusterRole | null = null;
  impersonated: UserInfo | undefined;

  constructor(
    readonly head: RequestHead,
    readonly deps: AdmissionDeps,
    readonly now: () => number,
  ) {
    this.longRunning = head.upgrade;
  }

  refuse(cause: unknown, code?: ErrorCode): Refused {
    const error = toKubegateError(cause);
    const { target, longRunning, user, token, role, impersonated } = this;
    return { admitted: false, error, code: code ?? error.code, target, longRunning, user, token, role, impersonated };
  }

  /** Path, headers, origin and bearer token; then the token's answer, from the cache when it has one. */
  start(): Admission | Promise<Admission> {
    const { head, deps } = this;
    let target: ClusterPath;
    let clean: SanitizedRequest;
    let tokenText: string;
    try {
      target = parseClusterPath(head.url);
      this.target = target;
      this.longRunning ||= target.longRunning;
      clean = sanitizeRequest(head.rawHeaders, head.upgrade);
      if (head.upgrade && clean.origin !== undefined && !isAllowedOrigin(deps.allowedOrigins, clean.origin)) {
        return this.refuse(new KubegateError('ORIGIN_REFUSED'));
      }
      const bearer = bearerToken(clean.authorization);
      if (bearer === undefined) return this.refuse(new KubegateError('UNAUTHENTICATED'));
      tokenText = bearer;
      const cached = deps.authenticator.cachedAnswer?.(tokenText);
      if (cached !== undefined) return this.authenticated(target, clean, cached);
    } catch (cause) {
      // A malformed path or header, or a bug: its catalog error (an unknown error becomes INTERNAL).
      return this.refuse(cause);
    }
    let lookup: Promise<AuthResult>;
    try {
      lookup = deps.authenticator.authenticateToken(tokenText);
    } catch (cause) {
      return this.refuse(authUndecided(cause));
    }
    return lookup.then(
      (result) => this.authenticated(target, clean, result),
      (cause: unknown) => this.refuse(authUndecided(cause)),
    );
  }

  /** Everything after the token's answer: expiry, scope, membership, role, cluster, impersonation. */
  authenticated(target: ClusterPath, clean: SanitizedRequest, result: AuthResult): Admission | Promise<Admission> {
    const { head, deps } = this;
    try {
      if (result.outcome === 'unauthenticated') return this.refuse(new KubegateError('UNAUTHENTICATED'), result.code);
      if (result.outcome === 'error') return this.refuse(authUndecided(result.error));
      const { user, token } = result;
      this.user = user;
      this.token = token;
      if (token.expiresAt !== null && token.expiresAt.getTime() <= this.now()) return this.refuse(new KubegateError('UNAUTHENTICATED'), 'TOKEN_EXPIRED');
      if (token.clusterId !== null && token.clusterId !== target.clusterId) return this.refuse(new KubegateError('TOKEN_WRONG_CLUSTER'));
      const impersonated = clean.impersonation.length === 0 ? undefined : requestedIdentity(clean.impersonation);
      this.impersonated = impersonated;
      if (impersonated !== undefined && deps.impersonation === undefined) return this.refuse(new KubegateError('IMPERSONATION_REFUSED'));

      const role = deps.authorize(user, target.clusterId);
      if (role === null) return this.refuse(new KubegateError('FORBIDDEN'));
      this.role = role;
      const readOnly = roleRefusal(role, { method: head.method, path: target.path, upgrade: head.upgrade });
      if (readOnly !== undefined) return this.refuse(readOnly);
      const cluster = deps.getCluster(target.clusterId);
      if (cluster === undefined) return this.refuse(new KubegateError('NOT_FOUND'));
      const upstream = deps.upstreams.get(cluster);
      const version = deps.clusterVersion?.(target.clusterId);
      const uidAccepted = acceptsImpersonateUid(version);
      if (!uidAccepted && impersonated !== undefined && impersonated.uid !== '') {
        return this.refuse(new KubegateError('IMPERSONATION_INVALID', `the cluster's API server (${version ?? ''}) is older than 1.22 and does not know Impersonate-Uid`));
      }
      if (impersonated !== undefined && deps.impersonation !== undefined) {
        return this.reviewed(deps.impersonation, upstream, impersonated).then((refusal) => refusal ?? this.admitted(target, clean, upstream, uidAccepted));
      }
      return this.admitted(target, clean, upstream, uidAccepted);
    } catch (cause) {
      // A malformed `Impersonate-*` header, an unusable cluster configuration, or a bug.
      return this.refuse(cause);
    }
  }

  /** The cluster's own answer to the caller's impersonation: undefined when allowed, else the refusal. */
  async reviewed(review: ImpersonationReview, upstream: Upstream, impersonated: UserInfo): Promise<Refused | undefined> {
    let decision: ImpersonationDecision;
    try {
      decision = await review.review(upstream, withForwardedExtras(this.user as UserInfo, this.deps.forwardedExtras), impersonated);
    } catch (cause) {
      return this.refuse(isKubegateError(cause, 'IMPERSONATION_UNVERIFIED') ? cause : new KubegateError('IMPERSONATION_UNVERIFIED', undefined, { cause }));
    }
    if (decision.allowed) return undefined;
    return this.refuse(new KubegateError('IMPERSONATION_DENIED', `the cluster does not allow you to impersonate ${decision.denied.join(', ')}`));
  }

  /** The upstream request's headers: the sanitized client's, `Host`, the proxy's credential, identity last. */
  admitted(target: ClusterPath, clean: SanitizedRequest, upstream: Upstream, uidAccepted: boolean): Admission {
    try {
      const user = this.user as UserInfo;
      const impersonated = this.impersonated;
      const headers = clean.headers;
      headers.push('Host', upstream.hostHeader);
      pushAll(headers, upstream.authHeaders);
      const identityHeaders = impersonated === undefined ? impersonationHeaders(user, this.deps.forwardedExtras) : impersonationHeaders(impersonated);
      pushAll(headers, uidAccepted ? identityHeaders : withoutImpersonateUid(identityHeaders));
      const { longRunning, token, role } = this;
      return { admitted: true, target, longRunning, user, token: token as TokenFacts, role: role as ClusterRole, impersonated, upstream, headers, hasBody: clean.hasBody };
    } catch (cause) {
      // An identity that HTTP cannot carry unchanged (IDENTITY_NAME_INVALID), or a bug.
      return this.refuse(cause);
    }
  }
}

function authUndecided(cause: unknown): KubegateError {
  return new KubegateError('AUTH_UNDECIDED', undefined, { cause });
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
