/**
 * `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` asked by the proxy's own
 * (token) identity, as kube-apiserver answers it, for the fake server; other callers' self
 * reviews are decided from the fake's RBAC objects (kube-authorization.ts).
 *
 * Design note: strict where the real one is. The body must be JSON (415 otherwise), decode
 * as `authorization.k8s.io/v1` `SelfSubjectAccessReview` (400 with the decoder's message
 * otherwise), and its spec must hold exactly one of `resourceAttributes` and
 * `nonResourceAttributes` (422 Invalid, as the registry's validation says). Attribute fields
 * are strings. The answer is 201 with the review and its `status.allowed`. The fake's RBAC:
 * the token identity may impersonate users, groups, service accounts, uids and user extras
 * while the fake allows impersonation, and create SubjectAccessReviews while it allows those
 * (kube-access-review.ts), and nothing else; nobody else may do anything.
 */
import { failureStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';
import type { EffectiveUser } from './kube-identity.js';

export const SELF_SUBJECT_ACCESS_REVIEWS_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

const RESOURCE_FIELDS = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'] as const;
const IMPERSONABLE_CORE = new Set(['users', 'groups', 'serviceaccounts']);
const IMPERSONABLE_AUTHENTICATION = new Set(['uids', 'userextras']);

export interface AccessReviewRequest {
  readonly contentType: string | undefined;
  readonly body: Buffer;
  readonly user: EffectiveUser;
  /** The token identity may impersonate (the fake's `allowImpersonation`). */
  readonly impersonationAllowed: boolean;
  /** The token identity may create SubjectAccessReviews (the fake's `allowAccessReviews`). */
  readonly accessReviewsAllowed: boolean;
}

/** The status and body to answer. */
export function answerProxyIdentityAccessReview(request: AccessReviewRequest): { readonly status: number; readonly body: object } {
  const mediaType = (request.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    return refusal(failureStatus(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`));
  }
  let review: Record<string, any>;
  try {
    review = JSON.parse(request.body.toString('utf8'));
  } catch (error) {
    return refusal(failureStatus(400, 'BadRequest', `couldn't get version/kind; json parse error: ${(error as Error).message}`));
  }
  if (typeof review !== 'object' || review === null || Array.isArray(review)) return refusal(failureStatus(400, 'BadRequest', "couldn't get version/kind; json parse error"));
  if (review['apiVersion'] !== 'authorization.k8s.io/v1' || review['kind'] !== 'SelfSubjectAccessReview') {
    return refusal(failureStatus(400, 'BadRequest', `the API version in the data (${String(review['apiVersion'])}) does not match the expected API version (authorization.k8s.io/v1)`));
  }
  const spec = review['spec'];
  const resource = spec?.resourceAttributes;
  const nonResource = spec?.nonResourceAttributes;
  if ((resource === undefined) === (nonResource === undefined)) {
    return refusal(invalid('spec.resourceAttributes', 'exactly one of nonResourceAttributes or resourceAttributes must be specified'));
  }
  const attributes: Record<string, unknown> = resource ?? nonResource;
  if (typeof attributes !== 'object' || attributes === null) return refusal(failureStatus(400, 'BadRequest', 'SelfSubjectAccessReview in version "v1" cannot be handled: attributes must be an object'));
  const fields = resource === undefined ? (['path', 'verb'] as const) : RESOURCE_FIELDS;
  for (const [field, value] of Object.entries(attributes)) {
    if (!(fields as readonly string[]).includes(field)) continue;
    if (typeof value !== 'string') {
      return refusal(failureStatus(400, 'BadRequest', `SelfSubjectAccessReview in version "v1" cannot be handled as a SelfSubjectAccessReview: json: cannot unmarshal ${typeof value} into Go struct field of type string`));
    }
  }
  const allowed = resource !== undefined && isAllowed(request, resource as Record<string, string | undefined>);
  return {
    status: 201,
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      metadata: { creationTimestamp: null },
      spec,
      status: allowed ? { allowed: true, reason: 'RBAC: allowed by ClusterRoleBinding "kubegate-proxy-impersonator"' } : { allowed: false },
    },
  };
}

function isAllowed(request: AccessReviewRequest, attributes: Record<string, string | undefined>): boolean {
  const { user } = request;
  if (user.impersonated || user.authenticatedBy !== 'token') return false;
  const group = attributes['group'] ?? '';
  const resource = attributes['resource'] ?? '';
  if (attributes['verb'] === 'create') return request.accessReviewsAllowed && group === 'authorization.k8s.io' && resource === 'subjectaccessreviews';
  if (attributes['verb'] !== 'impersonate' || !request.impersonationAllowed) return false;
  return (group === '' && IMPERSONABLE_CORE.has(resource)) || (group === 'authentication.k8s.io' && IMPERSONABLE_AUTHENTICATION.has(resource));
}

function invalid(field: string, message: string): KubeStatus {
  return failureStatus(422, 'Invalid', `SelfSubjectAccessReview.authorization.k8s.io "" is invalid: ${field}: Invalid value: "null": ${message}`, {
    kind: 'SelfSubjectAccessReview.authorization.k8s.io',
    causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: "null": ${message}`, field }],
  });
}

function refusal(status: KubeStatus): { readonly status: number; readonly body: object } {
  return { status: status.code, body: status };
}
