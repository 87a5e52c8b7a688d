/**
 * What kube-apiserver does to a built-in object before storing it, for the kinds the fake
 * stores: conversion-time normalization (a Secret's `stringData` folded into base64 `data`,
 * a Namespace's finalizer and phase) and the validation that answers 422 Invalid.
 *
 * Design note: the checks are the ones a manifest can trip over — name formats (RFC 1123
 * labels for Namespaces, subdomains for most kinds, path segments for RBAC), RBAC rules
 * without verbs or API groups, bindings whose roleRef or subjects are malformed or whose
 * roleRef changes (it is immutable), Deployments whose selector does not select their own
 * template or changes. Messages follow kube-apiserver's `<Kind>.<group> "<name>" is
 * invalid: <field>: <problem>`, which kubectl prints as it is.
 */
import { failureStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';
import type { FakeObject, FakeResourceKind } from './kube-resources.js';

type Json = Record<string, any>;

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** The object as stored, or the message of a 400 (the body cannot be decoded). */
export function normalizeObject(kind: string, object: FakeObject): FakeObject | string {
  if (kind === 'Secret') {
    const data: Record<string, unknown> = { ...((object['data'] as Json | undefined) ?? {}) };
    for (const [key, value] of Object.entries(data)) {
      if (typeof value !== 'string' || !base64.test(value)) return `Secret in version "v1" cannot be handled as a Secret: illegal base64 data in data[${JSON.stringify(key)}]`;
    }
    for (const [key, value] of Object.entries((object['stringData'] as Json | undefined) ?? {})) {
      if (typeof value !== 'string') return `Secret in version "v1" cannot be handled as a Secret: stringData[${JSON.stringify(key)}] must be a string`;
      data[key] = Buffer.from(value, 'utf8').toString('base64');
    }
    const { stringData: _folded, ...rest } = object;
    return { ...rest, type: object['type'] ?? 'Opaque', ...(Object.keys(data).length > 0 ? { data } : {}) } as FakeObject;
  }
  if (kind === 'Namespace') {
    const spec = (object['spec'] as Json | undefined) ?? {};
    return { ...object, spec: { ...spec, finalizers: spec['finalizers'] ?? ['kubernetes'] }, status: { phase: 'Active' } };
  }
  return object;
}

/** A 422 Invalid Status when kube-apiserver would refuse to store the object. */
export function validateObject(kind: FakeResourceKind, object: FakeObject, existing: FakeObject | undefined): KubeStatus | undefined {
  const problems = [...nameProblems(kind, object.metadata.name), ...kindProblems(kind.kind, object as Json, existing as Json | undefined)];
  if (problems.length === 0) return undefined;
  const qualified = kind.group === '' ? kind.kind : `${kind.kind}.${kind.group}`;
  return failureStatus(422, 'Invalid', `${qualified} "${object.metadata.name}" is invalid: ${problems.map((problem) => `${problem.field}: ${problem.message}`).join(', ')}`, {
    name: object.metadata.name,
    kind: kind.kind,
    causes: problems.map((problem) => ({ reason: 'FieldValueInvalid', message: problem.message, field: problem.field })),
  });
}

interface Problem {
  readonly field: string;
  readonly message: string;
}

function nameProblems(kind: FakeResourceKind, name: string): Problem[] {
  const invalid = (rule: string): Problem[] => [{ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(name)}: ${rule}` }];
  if (kind.kind === 'Namespace') return dnsLabel.test(name) && name.length <= 63 ? [] : invalid('a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\'');
  if (kind.group === RBAC_GROUP) return name === '.' || name === '..' || /[/%]/.test(name) ? invalid('may not be \'.\' or \'..\' and may not contain \'/\' or \'%\'') : [];
  return dnsSubdomain.test(name) && name.length <= 253 ? [] : invalid('a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\'');
}

function kindProblems(kind: string, object: Json, existing: Json | undefined): Problem[] {
  switch (kind) {
    case 'ClusterRole':
    case 'Role':
      return ruleProblems(object['rules'], kind === 'Role');
    case 'ClusterRoleBinding':
    case 'RoleBinding':
      return bindingProblems(kind, object, existing);
    case 'Deployment':
      return deploymentProblems(object, existing);
    default:
      return [];
  }
}

function ruleProblems(rules: unknown, namespaced: boolean): Problem[] {
  const problems: Problem[] = [];
  for (const [index, rule] of (Array.isArray(rules) ? (rules as Json[]) : []).entries()) {
    const at = `rules[${index}]`;
    if (!Array.isArray(rule['verbs']) || rule['verbs'].length === 0) problems.push({ field: `${at}.verbs`, message: 'Required value: verbs must contain at least one value' });
    const nonResource = Array.isArray(rule['nonResourceURLs']) && rule['nonResourceURLs'].length > 0;
    if (nonResource && namespaced) problems.push({ field: `${at}.nonResourceURLs`, message: 'Invalid value: namespaced rules cannot apply to non-resource URLs' });
    if (!nonResource && (!Array.isArray(rule['apiGroups']) || rule['apiGroups'].length === 0)) {
      problems.push({ field: `${at}.apiGroups`, message: 'Required value: resource rules must supply at least one api group' });
    }
  }
  return problems;
}

function bindingProblems(kind: string, object: Json, existing: Json | undefined): Problem[] {
  const problems: Problem[] = [];
  const roleRef = (object['roleRef'] ?? {}) as Json;
  const allowedKinds = kind === 'ClusterRoleBinding' ? ['ClusterRole'] : ['Role', 'ClusterRole'];
  if (roleRef['apiGroup'] !== RBAC_GROUP) problems.push({ field: 'roleRef.apiGroup', message: `Unsupported value: ${JSON.stringify(roleRef['apiGroup'] ?? '')}: supported values: "${RBAC_GROUP}"` });
  if (!allowedKinds.includes(roleRef['kind'])) problems.push({ field: 'roleRef.kind', message: `Unsupported value: ${JSON.stringify(roleRef['kind'] ?? '')}: supported values: ${allowedKinds.map((name) => `"${name}"`).join(', ')}` });
  if (typeof roleRef['name'] !== 'string' || roleRef['name'] === '') problems.push({ field: 'roleRef.name', message: 'Required value' });
  if (existing !== undefined && JSON.stringify(existing['roleRef']) !== JSON.stringify(object['roleRef'])) {
    problems.push({ field: 'roleRef', message: `Invalid value: ${JSON.stringify(object['roleRef'])}: cannot change roleRef` });
  }
  for (const [index, subject] of (Array.isArray(object['subjects']) ? (object['subjects'] as Json[]) : []).entries()) {
    const at = `subjects[${index}]`;
    if (typeof subject['name'] !== 'string' || subject['name'] === '') problems.push({ field: `${at}.name`, message: 'Required value' });
    if (subject['kind'] === 'ServiceAccount') {
      if ((subject['apiGroup'] ?? '') !== '') problems.push({ field: `${at}.apiGroup`, message: `Unsupported value: ${JSON.stringify(subject['apiGroup'])}: supported values: ""` });
      if (kind === 'ClusterRoleBinding' && (typeof subject['namespace'] !== 'string' || subject['namespace'] === '')) problems.push({ field: `${at}.namespace`, message: 'Required value' });
    } else if (subject['kind'] === 'User' || subject['kind'] === 'Group') {
      if (subject['apiGroup'] !== RBAC_GROUP) problems.push({ field: `${at}.apiGroup`, message: `Unsupported value: ${JSON.stringify(subject['apiGroup'] ?? '')}: supported values: "${RBAC_GROUP}"` });
    } else {
      problems.push({ field: `${at}.kind`, message: `Unsupported value: ${JSON.stringify(subject['kind'] ?? '')}: supported values: "ServiceAccount", "User", "Group"` });
    }
  }
  return problems;
}

function deploymentProblems(object: Json, existing: Json | undefined): Problem[] {
  const problems: Problem[] = [];
  const spec = (object['spec'] ?? {}) as Json;
  const matchLabels = (spec['selector']?.['matchLabels'] ?? {}) as Record<string, string>;
  const templateLabels = (spec['template']?.['metadata']?.['labels'] ?? {}) as Record<string, string>;
  if (Object.keys(matchLabels).length === 0 && !(Array.isArray(spec['selector']?.['matchExpressions']) && spec['selector']['matchExpressions'].length > 0)) {
    problems.push({ field: 'spec.selector', message: 'Invalid value: empty selector is invalid for deployment' });
  } else if (!Object.entries(matchLabels).every(([key, value]) => templateLabels[key] === value)) {
    problems.push({ field: 'spec.template.metadata.labels', message: `Invalid value: ${JSON.stringify(templateLabels)}: \`selector\` does not match template \`labels\`` });
  }
  if (typeof spec['replicas'] === 'number' && spec['replicas'] < 0) problems.push({ field: 'spec.replicas', message: `Invalid value: ${spec['replicas']}: must be greater than or equal to 0` });
  if (!Array.isArray(spec['template']?.['spec']?.['containers']) || spec['template']['spec']['containers'].length === 0) {
    problems.push({ field: 'spec.template.spec.containers', message: 'Required value' });
  }
  if (existing !== undefined && JSON.stringify(existing['spec']?.['selector']) !== JSON.stringify(spec['selector'])) {
    problems.push({ field: 'spec.selector', message: `Invalid value: ${JSON.stringify(spec['selector'])}: field is immutable` });
  }
  return problems;
}
