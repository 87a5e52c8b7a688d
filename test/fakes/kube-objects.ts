/**
 * The Kubernetes objects the fake API server serves, shaped like the real ones: Status
 * errors, discovery documents, pods, and server-side printing Tables.
 *
 * Design note: kubectl is picky in specific places — `kind`/`apiVersion` on every object,
 * `metadata.resourceVersion` on lists (it watches from it), a Running pod with containers
 * before `exec`/`logs`, and Table column definitions for `get`. Everything else is kept
 * minimal. Objects are plain JSON so tests can compare them.
 */
import { randomInt, randomUUID } from 'node:crypto';

export interface KubeStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  /** `continue`: on a 410 Expired list, a token for the rest of the list as it is now. */
  readonly metadata: { readonly continue?: string };
  readonly status: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly details?: { readonly name?: string; readonly kind?: string; readonly causes?: ReadonlyArray<{ reason: string; message: string; field?: string }> };
  readonly code: number;
}

export function failureStatus(code: number, reason: string, message: string, details?: KubeStatus['details']): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** What kube-apiserver answers for a path no handler serves. */
export function pathNotFoundStatus(): KubeStatus {
  return failureStatus(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function objectNotFoundStatus(resource: string, name: string): KubeStatus {
  return failureStatus(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
}

export function unauthorizedStatus(): KubeStatus {
  return failureStatus(401, 'Unauthorized', 'Unauthorized');
}

export interface FakeContainer {
  readonly name: string;
  readonly image: string;
}

export interface FakePod {
  readonly apiVersion: 'v1';
  readonly kind: 'Pod';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly resourceVersion: string;
    readonly creationTimestamp: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly spec: { readonly containers: readonly FakeContainer[]; readonly nodeName: string };
  readonly status: {
    readonly phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
    readonly podIP: string;
    readonly containerStatuses: ReadonlyArray<{ name: string; ready: boolean; restartCount: number; image: string }>;
  };
}

export interface MakePodOptions {
  readonly namespace?: string;
  readonly phase?: FakePod['status']['phase'];
  readonly containers?: readonly string[];
  readonly podIP?: string;
  readonly nodeName?: string;
  readonly labels?: Record<string, string>;
  readonly createdAt?: Date;
}

/** A pod as the API server would return it (resourceVersion is set by the fake on store). */
export function makePod(name: string, options: MakePodOptions = {}): FakePod {
  const containers = (options.containers ?? ['app']).map((container) => ({ name: container, image: `registry.example/${container}:1` }));
  const phase = options.phase ?? 'Running';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: options.namespace ?? 'default',
      uid: randomUUID(),
      resourceVersion: '0',
      creationTimestamp: (options.createdAt ?? new Date(Date.now() - 5 * 60_000)).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ...(options.labels ? { labels: { ...options.labels } } : {}),
    },
    spec: { containers, nodeName: options.nodeName ?? 'node-1' },
    status: {
      phase,
      podIP: options.podIP ?? `10.42.${randomInt(0, 256)}.${randomInt(1, 255)}`,
      containerStatuses: containers.map((container) => ({ name: container.name, ready: phase === 'Running', restartCount: 0, image: container.image })),
    },
  };
}

export function withResourceVersion(pod: FakePod, resourceVersion: string): FakePod {
  return { ...pod, metadata: { ...pod.metadata, resourceVersion } };
}

export function podList(pods: readonly FakePod[], resourceVersion: string): object {
  return { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion }, items: pods };
}

// --- server-side printing ------------------------------------------------------------------

const podColumns = [
  { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
  { name: 'Ready', type: 'string', format: '', description: 'The aggregate readiness state of this pod for accepting traffic.', priority: 0 },
  { name: 'Status', type: 'string', format: '', description: 'The aggregate status of the containers in this pod.', priority: 0 },
  { name: 'Restarts', type: 'string', format: '', description: 'The number of times the containers in this pod have been restarted.', priority: 0 },
  { name: 'Age', type: 'string', format: '', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.', priority: 0 },
  { name: 'IP', type: 'string', format: '', description: 'IP address allocated to the pod.', priority: 1 },
  { name: 'Node', type: 'string', format: '', description: 'NodeName is a request to schedule this pod onto a specific node.', priority: 1 },
] as const;

/** The `as=Table` version a client asked for in Accept, or undefined for a plain object. */
export function requestedTableVersion(accept: string | undefined): 'v1' | 'v1beta1' | undefined {
  if (accept === undefined) return undefined;
  for (const mediaRange of accept.split(',')) {
    const [type, ...parameterParts] = mediaRange.split(';').map((part) => part.trim());
    if (type !== 'application/json') continue;
    const parameters = new Map(parameterParts.map((part) => part.split('=', 2) as [string, string]));
    if (parameters.get('as') !== 'Table' || parameters.get('g') !== 'meta.k8s.io') continue;
    const version = parameters.get('v');
    if (version === 'v1' || version === 'v1beta1') return version;
  }
  return undefined;
}

/** Whether Accept allows a JSON answer (kube-apiserver answers 406 otherwise). */
export function acceptsJson(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return accept.split(',').some((mediaRange) => {
    const type = mediaRange.split(';')[0]!.trim();
    return type === 'application/json' || type === 'application/*' || type === '*/*';
  });
}

function age(creationTimestamp: string, now: number): string {
  const seconds = Math.max(0, Math.floor((now - Date.parse(creationTimestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

function podRow(pod: FakePod, now: number): object {
  const ready = pod.status.containerStatuses.filter((status) => status.ready).length;
  const restarts = pod.status.containerStatuses.reduce((sum, status) => sum + status.restartCount, 0);
  return {
    cells: [
      pod.metadata.name,
      `${ready}/${pod.spec.containers.length}`,
      pod.status.phase,
      String(restarts),
      age(pod.metadata.creationTimestamp, now),
      pod.status.podIP,
      pod.spec.nodeName,
    ],
    object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: pod.metadata },
  };
}

export function podTable(pods: readonly FakePod[], resourceVersion: string, version: 'v1' | 'v1beta1', includeColumns = true): object {
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${version}`,
    metadata: { resourceVersion },
    ...(includeColumns ? { columnDefinitions: podColumns } : {}),
    rows: pods.map((pod) => podRow(pod, now)),
  };
}

// --- discovery -----------------------------------------------------------------------------

export interface KubeVersion {
  readonly major: string;
  readonly minor: string;
  readonly gitVersion: string;
}

export function versionInfo(version: KubeVersion): object {
  return {
    major: version.major,
    minor: version.minor,
    gitVersion: version.gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'go1.23.0',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

/** An Active Namespace, as kube-apiserver stores one (the fake stamps uid and resourceVersion). */
export function namespaceObject(name: string): { apiVersion: 'v1'; kind: 'Namespace'; metadata: { name: string }; spec: object; status: object } {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}
