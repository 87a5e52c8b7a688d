/**
 * `POST /apis/authorization.k8s.io/v1/subjectaccessreviews` as kube-apiserver serves it, for
 * the fake API server: the proxy asks a cluster this before it honours `kubectl --as`.
 *
 * Design note: strict where the real server is strict and where a client can get it wrong —
 * only POST (405); a body that is not JSON, or whose apiVersion/kind is not
 * `authorization.k8s.io/v1` `SubjectAccessReview`, is 400 BadRequest; then the validation of
 * pkg/apis/authorization/validation answers 422 Invalid for metadata that is not empty (a
 * review has no name), a spec with neither `user` nor `groups`, and a spec with both or
 * neither of `resourceAttributes` and `nonResourceAttributes`. Creating a review is itself
 * authorized: only the configured token's identity, not impersonated, may (as if RBAC gave
 * it `create subjectaccessreviews` and nobody else), and not at all when the fake is told
 * so; anyone else gets the 403 Status RBAC writes. A valid review is recorded, decided by
 * the test's policy (default: nothing is allowed, as in a cluster without grants) and
 * answered 201 with the review and its `status`.
 */
import type { EffectiveUser } from './kube-identity.js';
import { failureStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';

export const SUBJECT_ACCESS_REVIEW_PATH = '/apis/authorization.k8s.io/v1/subjectaccessreviews';

export interface FakeResourceAttributes {
  readonly verb?: string;
  readonly group?: string;
  readonly version?: string;
  readonly resource?: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
}

export interface RecordedSubjectAccessReview {
  /** Who created the review (the caller's own name). */
  readonly requester: string;
  readonly user: string;
  readonly uid: string | undefined;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
  readonly resourceAttributes: FakeResourceAttributes | undefined;
  readonly nonResourceAttributes: { readonly path?: string; readonly verb?: string } | undefined;
}

/** The decision for one review: a boolean, or the status fields to answer with. */
export type FakeAccessPolicy = (review: RecordedSubjectAccessReview) => boolean | { readonly allowed: boolean; readonly denied?: boolean; readonly reason?: string };

export type AccessReviewAnswer = { readonly status: number; readonly body: unknown };

/** Denies everything: a cluster where nobody was granted anything. */
export const denyAll: FakeAccessPolicy = () => false;

/**
 * Answers one request to SUBJECT_ACCESS_REVIEW_PATH. `creator` is the authenticated caller;
 * `mayCreate` whether RBAC lets it create reviews. A valid review is passed to `record`.
 */
export function answerSubjectAccessReview(
  method: string,
  body: Buffer,
  creator: EffectiveUser,
  mayCreate: boolean,
  policy: FakeAccessPolicy,
  record: (review: RecordedSubjectAccessReview) => void,
): AccessReviewAnswer {
  if (method !== 'POST') return status(failureStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  if (!mayCreate || creator.impersonated) {
    return status(
      failureStatus(
        403,
        'Forbidden',
        `subjectaccessreviews.authorization.k8s.io is forbidden: User "${creator.username}" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope`,
        { kind: 'subjectaccessreviews' },
      ),
    );
  }
  let review: Record<string, unknown>;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    review = parsed as Record<string, unknown>;
  } catch {
    return status(failureStatus(400, 'BadRequest', 'the body of the request was in an unknown format'));
  }
  if (review['apiVersion'] !== 'authorization.k8s.io/v1' || review['kind'] !== 'SubjectAccessReview') {
    return status(failureStatus(400, 'BadRequest', `the object provided is unrecognized (must be of type SubjectAccessReview, apiVersion authorization.k8s.io/v1): ${JSON.stringify(review['apiVersion'])} ${JSON.stringify(review['kind'])}`));
  }
  const metadata = review['metadata'];
  if (metadata !== undefined && !(isObject(metadata) && Object.values(metadata).every((value) => value === '' || value === null))) {
    return invalid('metadata', 'must be empty');
  }
  const spec = isObject(review['spec']) ? review['spec'] : {};
  const user = typeof spec['user'] === 'string' ? spec['user'] : '';
  const groups = Array.isArray(spec['groups']) ? spec['groups'].filter((group): group is string => typeof group === 'string') : [];
  const resourceAttributes = isObject(spec['resourceAttributes']) ? (spec['resourceAttributes'] as FakeResourceAttributes) : undefined;
  const nonResourceAttributes = isObject(spec['nonResourceAttributes']) ? (spec['nonResourceAttributes'] as { path?: string; verb?: string }) : undefined;
  if (resourceAttributes !== undefined && nonResourceAttributes !== undefined) {
    return invalid('spec.nonResourceAttributes', 'cannot be specified in combination with resourceAttributes');
  }
  if (resourceAttributes === undefined && nonResourceAttributes === undefined) {
    return invalid('spec.resourceAttributes', 'exactly one of nonResourceAttributes or resourceAttributes must be specified');
  }
  if (user === '' && groups.length === 0) return invalid('spec.user', 'at least one of user or group must be specified');
  const extra = isObject(spec['extra']) ? (spec['extra'] as Record<string, readonly string[]>) : {};
  const recorded: RecordedSubjectAccessReview = {
    requester: creator.username,
    user,
    uid: typeof spec['uid'] === 'string' ? spec['uid'] : undefined,
    groups,
    extra,
    resourceAttributes,
    nonResourceAttributes,
  };
  record(recorded);
  const decision = policy(recorded);
  const statusFields = typeof decision === 'boolean' ? { allowed: decision } : decision;
  return { status: 201, body: { ...review, metadata: { creationTimestamp: null }, status: statusFields } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function status(kubeStatus: KubeStatus): AccessReviewAnswer {
  return { status: kubeStatus.code, body: kubeStatus };
}

function invalid(field: string, detail: string): AccessReviewAnswer {
  return status(
    failureStatus(422, 'Invalid', `SubjectAccessReview.authorization.k8s.io "" is invalid: ${field}: Invalid value: ${detail}`, {
      kind: 'SubjectAccessReview',
      causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: ${detail}`, field }],
    }),
  );
}
