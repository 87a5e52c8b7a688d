/**
 * The fake API server's answer to `kubectl auth can-i`: SelfSubjectAccessReview
 * (authorization.k8s.io v1) decided by RBAC over the ClusterRoleBindings and ClusterRoles it
 * holds — so a test sees what the bindings kubegate's sync wrote actually grant.
 *
 * Strict where kubegate could get it wrong: only POST, only a SelfSubjectAccessReview body
 * (JSON, or protobuf as kubectl sends it: the fields the review needs are decoded) of the
 * URL's version, `spec.resourceAttributes` or `spec.nonResourceAttributes` required
 * (400 otherwise). Subjects match as kube-apiserver matches them: a User by exact name, a
 * Group by exact name among the caller's groups (which include `system:authenticated`).
 * The caller's own requests are not authorized by it (the fake allows every authenticated
 * request); only the review answers.
 *
 * A roleRef to a ClusterRole the fake does not hold falls back to a built-in definition of
 * the default roles, simplified: `cluster-admin` everything; `edit` the read and write verbs
 * on every resource; `view` get/list/watch on everything but Secrets. Unknown roles grant
 * nothing.
 */
import type { FakeUser } from './kube-identity.js';
import { failureStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';
import type { FakeObject } from './kube-resources.js';

export const SELF_SUBJECT_ACCESS_REVIEW_PATH = /^\/apis\/authorization\.k8s\.io\/(v1|v1beta1)\/selfsubjectaccessreviews$/;

interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

interface ResourceAttributes {
  readonly verb?: string;
  readonly group?: string;
  readonly resource?: string;
  readonly subresource?: string;
  readonly name?: string;
  readonly namespace?: string;
}

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'update', 'patch', 'delete', 'deletecollection'];

const BUILT_IN_ROLES: Readonly<Record<string, readonly PolicyRule[]>> = {
  'cluster-admin': [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }, { nonResourceURLs: ['*'], verbs: ['*'] }],
  edit: [{ apiGroups: ['*'], resources: ['*'], verbs: [...READ, ...WRITE] }],
  view: [
    { apiGroups: [''], resources: ['pods', 'pods/log', 'pods/status', 'services', 'endpoints', 'configmaps', 'events', 'namespaces', 'serviceaccounts', 'persistentvolumeclaims'], verbs: READ },
    { apiGroups: ['apps'], resources: ['deployments', 'replicasets', 'statefulsets', 'daemonsets'], verbs: READ },
    { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], verbs: READ },
  ],
};

interface Review {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly spec?: { resourceAttributes?: ResourceAttributes; nonResourceAttributes?: { path?: string; verb?: string } } | undefined;
}

const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Length-delimited fields (wire type 2) of one protobuf message by field number; undefined when malformed. */
function protobufFields(message: Buffer): Map<number, Buffer> | undefined {
  const fields = new Map<number, Buffer>();
  let offset = 0;
  const varint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift < 35 && offset < message.length; shift += 7) {
      const byte = message[offset++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    return undefined;
  };
  while (offset < message.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const wireType = key % 8;
    if (wireType === 0) {
      if (varint() === undefined) return undefined;
    } else if (wireType === 2) {
      const length = varint();
      if (length === undefined || offset + length > message.length) return undefined;
      fields.set(Math.floor(key / 8), message.subarray(offset, offset + length));
      offset += length;
    } else {
      return undefined;
    }
  }
  return fields;
}

/** runtime.Unknown{typeMeta{apiVersion, kind}, raw: SelfSubjectAccessReview{metadata, spec{resourceAttributes, nonResourceAttributes}}}. */
function reviewFromProtobuf(envelope: Buffer): Review | undefined {
  const unknown = protobufFields(envelope);
  const typeMeta = protobufFields(unknown?.get(1) ?? Buffer.alloc(0));
  const object = protobufFields(unknown?.get(2) ?? Buffer.alloc(0));
  const spec = protobufFields(object?.get(2) ?? Buffer.alloc(0));
  if (typeMeta === undefined || spec === undefined) return undefined;
  const text = (fields: Map<number, Buffer>, number: number): string | undefined => fields.get(number)?.toString('utf8');
  const resource = spec.get(1) === undefined ? undefined : protobufFields(spec.get(1)!);
  const nonResource = spec.get(2) === undefined ? undefined : protobufFields(spec.get(2)!);
  const strip = (value: object): Record<string, unknown> => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
  return {
    apiVersion: text(typeMeta, 1),
    kind: text(typeMeta, 2),
    spec: strip({
      resourceAttributes:
        resource === undefined
          ? undefined
          : strip({ namespace: text(resource, 1), verb: text(resource, 2), group: text(resource, 3), resource: text(resource, 5), subresource: text(resource, 6), name: text(resource, 7) }),
      nonResourceAttributes: nonResource === undefined ? undefined : strip({ path: text(nonResource, 1), verb: text(nonResource, 2) }),
    }) as Review['spec'],
  };
}

export interface ReviewAnswer {
  readonly status: number;
  readonly body: object;
}

/** The answer to a SelfSubjectAccessReview POSTed by `user`. */
export function answerSelfSubjectAccessReview(version: string, method: string, body: Buffer, user: FakeUser, objects: (plural: string) => FakeObject[]): ReviewAnswer {
  const bad = (message: string): ReviewAnswer => ({ status: 400, body: failureStatus(400, 'BadRequest', message) as KubeStatus });
  if (method !== 'POST') return { status: 405, body: failureStatus(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`) };
  let review: Review;
  if (body.subarray(0, 4).equals(PROTOBUF_MAGIC)) {
    // kubectl sends built-in kinds as protobuf (application/vnd.kubernetes.protobuf); the answer is JSON, which it accepts too.
    const decoded = reviewFromProtobuf(body.subarray(4));
    if (decoded === undefined) return bad('the protobuf body cannot be decoded');
    review = decoded;
  } else {
    try {
      review = JSON.parse(body.toString('utf8')) as Review;
    } catch {
      return bad('the body is not JSON');
    }
  }
  if (review.kind !== 'SelfSubjectAccessReview' || review.apiVersion !== `authorization.k8s.io/${version}`) return bad(`expected a SelfSubjectAccessReview of authorization.k8s.io/${version}`);
  const spec = review.spec ?? {};
  if (spec.resourceAttributes === undefined && spec.nonResourceAttributes === undefined) return bad('spec.resourceAttributes or spec.nonResourceAttributes is required');
  const rules = rulesOf(user, objects);
  const allowed =
    spec.resourceAttributes !== undefined
      ? rules.some((rule) => allowsResource(rule, spec.resourceAttributes!))
      : rules.some((rule) => allowsNonResource(rule, spec.nonResourceAttributes!));
  return {
    status: 201,
    body: { apiVersion: `authorization.k8s.io/${version}`, kind: 'SelfSubjectAccessReview', metadata: { creationTimestamp: null }, spec, status: { allowed, ...(allowed ? { reason: 'RBAC: allowed by ClusterRoleBinding' } : {}) } },
  };
}

/** The rules of every ClusterRoleBinding naming the user or one of its groups. */
function rulesOf(user: FakeUser, objects: (plural: string) => FakeObject[]): PolicyRule[] {
  const roles = new Map(objects('clusterroles').map((role) => [role.metadata.name, (role['rules'] ?? []) as PolicyRule[]]));
  const rules: PolicyRule[] = [];
  for (const binding of objects('clusterrolebindings')) {
    const subjects = (binding['subjects'] ?? []) as Array<{ kind: string; name: string }>;
    const matches = subjects.some((subject) => (subject.kind === 'User' && subject.name === user.username) || (subject.kind === 'Group' && user.groups.includes(subject.name)));
    if (!matches) continue;
    const roleName = (binding['roleRef'] as { name: string }).name;
    rules.push(...(roles.get(roleName) ?? BUILT_IN_ROLES[roleName] ?? []));
  }
  return rules;
}

const has = (list: readonly string[] | undefined, value: string): boolean => list !== undefined && (list.includes('*') || list.includes(value));

function allowsResource(rule: PolicyRule, attributes: ResourceAttributes): boolean {
  const resource = attributes.subresource ? `${attributes.resource ?? ''}/${attributes.subresource}` : (attributes.resource ?? '');
  if (!has(rule.verbs, attributes.verb ?? '') || !has(rule.apiGroups, attributes.group ?? '') || !has(rule.resources, resource)) return false;
  return rule.resourceNames === undefined || rule.resourceNames.length === 0 || (attributes.name !== undefined && rule.resourceNames.includes(attributes.name));
}

function allowsNonResource(rule: PolicyRule, attributes: { path?: string; verb?: string }): boolean {
  return has(rule.verbs, attributes.verb ?? '') && has(rule.nonResourceURLs, attributes.path ?? '');
}
