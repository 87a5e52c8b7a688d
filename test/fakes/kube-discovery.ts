/**
 * Discovery documents of the fake kube-apiserver (`/api/v1`, `/apis`, `/apis/<group>`,
 * `/apis/<group>/<version>`), derived from the kinds it stores (kube-resources.ts) plus the
 * pods it serves itself, so kubectl can map every kind it is given to a resource.
 *
 * Design note: the legacy (unaggregated) documents only. kubectl ≥ 1.26 asks for the
 * aggregated `apidiscovery.k8s.io` form first, in the same Accept header as plain JSON;
 * a server answering plain `application/json` is taken as one without aggregated
 * discovery, and kubectl then reads each group version, as it does with older servers.
 */
import { fakeResourceKinds } from './kube-resources.js';
import type { FakeResourceKind } from './kube-resources.js';

const allVerbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const podResources = [
  { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: allVerbs, shortNames: ['po'], categories: ['all'] },
  { name: 'pods/attach', singularName: '', namespaced: true, kind: 'PodAttachOptions', verbs: ['create', 'get'] },
  { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
  { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
  { name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
  { name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] },
];

function resourceEntry(kind: FakeResourceKind): object {
  return {
    name: kind.plural,
    singularName: kind.kind.toLowerCase(),
    namespaced: kind.namespaced,
    kind: kind.kind,
    verbs: kind.kind === 'Namespace' ? allVerbs.filter((verb) => verb !== 'deletecollection') : allVerbs,
    ...(kind.shortNames === undefined ? {} : { shortNames: kind.shortNames }),
    ...(kind.kind === 'Deployment' ? { categories: ['all'] } : {}),
  };
}

function groupVersionOf(kind: FakeResourceKind): string {
  return kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
}

export function coreV1Resources(): object {
  const core = fakeResourceKinds.filter((kind) => kind.group === '');
  return { kind: 'APIResourceList', groupVersion: 'v1', resources: [...core.map(resourceEntry), ...podResources] };
}

function groupEntry(name: string): { name: string; versions: object[]; preferredVersion: object | undefined } {
  const versions = [...new Set(fakeResourceKinds.filter((kind) => kind.group === name).map((kind) => kind.version))].map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions, preferredVersion: versions[0] };
}

export function apiGroupList(): object {
  const groups = [...new Set(fakeResourceKinds.map((kind) => kind.group).filter((group) => group !== ''))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupEntry) };
}

/** `/apis/<group>` or `/apis/<group>/<version>`, or undefined when the fake serves no such group version. */
export function groupDiscovery(path: string): object | undefined {
  const match = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (match === null) return undefined;
  const [, group, version] = match as unknown as [string, string, string | undefined];
  const kinds = fakeResourceKinds.filter((kind) => kind.group === group && (version === undefined || kind.version === version));
  if (kinds.length === 0) return undefined;
  if (version === undefined) return { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(group) };
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersionOf(kinds[0]!), resources: kinds.map(resourceEntry) };
}
