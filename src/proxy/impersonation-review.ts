/**
 * Whether a kubegate user may act as the identity it asks for (`kubectl --as`), decided by
 * the cluster the request goes to.
 *
 * Design note (nested impersonation, fail closed). kube-apiserver lets a caller impersonate
 * only what its authorizer allows for verb `impersonate`; the proxy does the same one level
 * up, and asks the only authority that knows: the target cluster. For each requested
 * attribute (impersonate.ts: the user or ServiceAccount, each group, each extra value, the
 * uid) it POSTs a `SubjectAccessReview` (authorization.k8s.io/v1) to **that cluster's own
 * upstream** — the one the request will be forwarded to, direct or through its agent's
 * tunnel — with the proxy's credential (which needs `create subjectaccessreviews`) and no
 * `Impersonate-*` header, and `spec` set to the kubegate user exactly as the proxy would
 * impersonate it (name, uid, groups with `system:authenticated`, the extras it forwards). Never another
 * cluster, never a local store: a grant in cluster A says nothing about cluster B
 * (CVE-2026-44945 asked the wrong cluster). The reviews run in parallel; every denial is
 * named; any failure to get an answer — no connection, a non-2xx answer (the proxy's
 * credential lacking the right, say), an answer without a boolean `status.allowed` — makes
 * the decision IMPERSONATION_UNVERIFIED, and the request is never forwarded.
 *
 * Decisions (allowed, or denied with what was denied) are cached for `ttlMs` (5 s), keyed by
 * cluster, the kubegate user's whole identity and the requested identity, so a burst of
 * `kubectl --as` requests costs one round of reviews; failures are never cached. Concurrent
 * identical lookups share one round. RBAC changes inside the cluster are seen within the
 * TTL. `invalidateUser` (the user changed, was disabled or deleted, its groups were
 * refreshed), `invalidateCluster` and `clear` drop entries at once and keep a round already
 * in flight from being stored. A revoked token needs nothing here: it no longer
 * authenticates, so its entries can never be reached.
 */
import { kubernetesNameOf } from '../auth/principal.js';
import { LRUCache } from 'lru-cache';
import { SYSTEM_AUTHENTICATED, type UserInfo } from '../auth/user.js';
import { endpointFromUpstream } from '../clusters/endpoint.js';
import type { Upstream } from '../clusters/upstreams.js';
import { KubegateError } from '../errors.js';
import { createKubeClient, KubeApiError, type KubeObject } from '../kube/client.js';
import { describeAttribute, impersonationAttributes, type ImpersonationAttribute } from './impersonate.js';

export type ImpersonationDecision = { readonly allowed: true } | { readonly allowed: false; readonly denied: readonly string[] };

export interface ImpersonationReview {
  /**
   * Asks the cluster of `upstream` whether `user` may impersonate `requested`. Resolves with
   * the decision; rejects with KubegateError IMPERSONATION_UNVERIFIED when it cannot tell.
   */
  review(upstream: Upstream, user: UserInfo, requested: UserInfo): Promise<ImpersonationDecision>;
}

export interface ImpersonationReviewer extends ImpersonationReview {
  /** Drops the decisions about kubegate user `userName`; answers how many. */
  invalidateUser(userName: string): number;
  /** Drops the decisions of cluster `clusterId`; answers how many. */
  invalidateCluster(clusterId: string): number;
  clear(): void;
}

export interface ImpersonationReviewerOptions {
  /** How long a decision is reused. Default 5000; 0 = never. */
  readonly ttlMs?: number;
  /** Most decisions kept. Default 10000. */
  readonly maxEntries?: number;
  /** Limit for one SubjectAccessReview request. Default 10000. */
  readonly timeoutMs?: number;
  /** The clock for the TTL (tests step it). Default Date.now. */
  readonly now?: () => number;
}

interface CachedDecision {
  readonly decision: ImpersonationDecision;
  readonly expiresAt: number;
  readonly userName: string;
  readonly clusterId: string;
}

interface SubjectAccessReviewAnswer extends KubeObject {
  readonly status?: { readonly allowed?: unknown };
}

const SUBJECT_ACCESS_REVIEWS = '/apis/authorization.k8s.io/v1/subjectaccessreviews';
const DEFAULT_TTL_MS = 5000;
const DEFAULT_MAX_ENTRIES = 10_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const ALLOWED: ImpersonationDecision = Object.freeze({ allowed: true });

export function createImpersonationReviewer(options: ImpersonationReviewerOptions = {}): ImpersonationReviewer {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  const cache = new LRUCache<string, CachedDecision>({ max: options.maxEntries ?? DEFAULT_MAX_ENTRIES });
  const inFlight = new Map<string, Promise<ImpersonationDecision>>();
  /** Bumped by every invalidation: a round that started before one is not stored. */
  let generation = 0;

  async function ask(upstream: Upstream, user: UserInfo, requested: UserInfo): Promise<ImpersonationDecision> {
    const client = createKubeClient(endpointFromUpstream(upstream), { timeoutMs });
    const subject = subjectOf(user);
    const attributes = impersonationAttributes(requested);
    const answers = await Promise.allSettled(attributes.map((attribute) => reviewOne(client, subject, attribute)));
    const denied = attributes.filter((_, index) => {
      const answer = answers[index]!;
      return answer.status === 'fulfilled' && !answer.value;
    });
    if (denied.length > 0) return Object.freeze({ allowed: false, denied: Object.freeze(denied.map(describeAttribute)) });
    const failure = answers.find((answer): answer is PromiseRejectedResult => answer.status === 'rejected');
    if (failure !== undefined) throw unverified(failure.reason);
    return ALLOWED;
  }

  function review(upstream: Upstream, user: UserInfo, requested: UserInfo): Promise<ImpersonationDecision> {
    const key = cacheKey(upstream.clusterId, user, requested);
    const cached = cache.get(key);
    if (cached !== undefined) {
      if (cached.expiresAt > now()) return Promise.resolve(cached.decision);
      cache.delete(key);
    }
    const pending = inFlight.get(key);
    if (pending !== undefined) return pending;
    const started = generation;
    const round = ask(upstream, user, requested).then(
      (decision) => {
        if (inFlight.get(key) === round) inFlight.delete(key);
        if (ttlMs > 0 && started === generation) {
          cache.set(key, { decision, expiresAt: now() + ttlMs, userName: user.name, clusterId: upstream.clusterId });
        }
        return decision;
      },
      (error: unknown) => {
        if (inFlight.get(key) === round) inFlight.delete(key);
        throw error;
      },
    );
    inFlight.set(key, round);
    return round;
  }

  function invalidate(matches: (entry: CachedDecision) => boolean): number {
    generation++;
    inFlight.clear();
    let dropped = 0;
    for (const [key, entry] of cache.entries()) {
      if (!matches(entry)) continue;
      cache.delete(key);
      dropped++;
    }
    return dropped;
  }

  return {
    review,
    invalidateUser: (userName) => invalidate((entry) => entry.userName === userName),
    invalidateCluster: (clusterId) => invalidate((entry) => entry.clusterId === clusterId),
    clear: () => {
      invalidate(() => true);
    },
  };
}

interface Subject {
  readonly user: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** The kubegate user as the cluster sees it through the proxy's impersonation (which adds `system:authenticated`). */
function subjectOf(user: UserInfo): Subject {
  const groups = user.groups.includes(SYSTEM_AUTHENTICATED) ? user.groups : [...user.groups, SYSTEM_AUTHENTICATED];
  return {
    user: kubernetesNameOf(user),
    ...(user.uid.length > 0 ? { uid: user.uid } : {}),
    groups,
    ...(Object.keys(user.extra).length > 0 ? { extra: user.extra } : {}),
  };
}

/** true when allowed, false when not; rejects when the cluster gives no usable answer. */
async function reviewOne(client: ReturnType<typeof createKubeClient>, subject: Subject, attribute: ImpersonationAttribute): Promise<boolean> {
  const resourceAttributes = {
    verb: 'impersonate',
    group: attribute.group,
    version: 'v1',
    resource: attribute.resource,
    ...(attribute.subresource === '' ? {} : { subresource: attribute.subresource }),
    ...(attribute.namespace === '' ? {} : { namespace: attribute.namespace }),
    name: attribute.name,
  };
  // A SubjectAccessReview has no name: its metadata must be empty.
  const body = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', metadata: {}, spec: { resourceAttributes, ...subject } } as unknown as KubeObject;
  const answer = await client.create<SubjectAccessReviewAnswer>(SUBJECT_ACCESS_REVIEWS, body as SubjectAccessReviewAnswer);
  const allowed = answer?.status?.allowed;
  if (typeof allowed !== 'boolean') throw new Error('the SubjectAccessReview answer has no boolean status.allowed');
  return allowed;
}

function unverified(cause: unknown): KubegateError {
  if (cause instanceof KubeApiError && (cause.kubeStatus.code < 200 || cause.kubeStatus.code > 299) && cause.kubeStatus.code !== 0) {
    const { code, reason } = cause.kubeStatus;
    const hint = code === 401 || code === 403 ? " (may the proxy's credential create subjectaccessreviews in that cluster?)" : '';
    return new KubegateError('IMPERSONATION_UNVERIFIED', `the cluster answered the SubjectAccessReview with HTTP ${code}${reason === undefined ? '' : ` ${reason}`}${hint}`, { cause });
  }
  return new KubegateError('IMPERSONATION_UNVERIFIED', undefined, { cause });
}

function cacheKey(clusterId: string, user: UserInfo, requested: UserInfo): string {
  return JSON.stringify([clusterId, user.name, user.uid, user.groups, user.extra, requested.name, requested.uid, requested.groups, requested.extra]);
}
