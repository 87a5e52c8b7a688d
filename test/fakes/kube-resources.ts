/**
 * Generic stored objects for the fake kube-apiserver: Namespaces, ServiceAccounts,
 * ConfigMaps, Secrets, Deployments, the RBAC kinds, and the Rancher custom resources
 * (ClusterAuthToken, ClusterUserAttribute) that the webhook reads and the proxy's sync
 * writes — everything an import manifest creates, and what `kubectl apply` does with it.
 *
 * Design note: strict where a client can get it wrong. Every write bumps the server-wide
 * resourceVersion and is kept as an event; a list answers the current resourceVersion; a
 * watch replays events newer than the requested resourceVersion and then streams, or — when
 * that version was compacted away — answers what kube-apiserver answers: HTTP 200 and one
 * ERROR event carrying a 410 `Expired` Status (or, when asked, a plain 410 answer). Creates
 * into a missing namespace are 404, duplicates 409 AlreadyExists, replaces with a stale
 * resourceVersion 409 Conflict. PATCH takes JSON merge patches, and strategic merge patches
 * for the built-in kinds (kube-strategic-merge.ts; 415 for custom resources, as for CRDs).
 * Fields the schema of a built-in kind does not know are dropped, or refused (400) with
 * `fieldValidation=Strict`, which kubectl sends. Writes are checked as kube-apiserver checks
 * them (kube-validation.ts): a body whose
 * apiVersion/kind is not the URL's resource is 400, an invalid name, a RoleBinding whose
 * roleRef changes, a Deployment whose selector does not match its template are 422. A
 * Secret's `stringData` is folded into `data`; `?dryRun=All` answers without storing.
 * Deleting a Namespace deletes what is in it at once (no Terminating phase). Equality label
 * selectors are honoured on list and watch; a namespaced kind can be listed across
 * namespaces. Lists are in key order and chunked with `limit`/`continue` as the real
 * server chunks them (kube-list-chunks.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { FakeListChunker } from './kube-list-chunks.js';
import { failureStatus, objectNotFoundStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';
import { decodeAgainstSchema, definitionOf, definitions } from './kube-schemas.js';
import { PatchError, strategicMergePatch } from './kube-strategic-merge.js';
import { normalizeObject, validateObject } from './kube-validation.js';

export interface FakeResourceKind {
  /** `''` for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
}

export const fakeResourceKinds: readonly FakeResourceKind[] = [
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'] },
  { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true, shortNames: ['sa'] },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true, shortNames: ['deploy'] },
  { group: 'cluster.cattle.io', version: 'v3', plural: 'clusterauthtokens', kind: 'ClusterAuthToken', namespaced: true },
  { group: 'cluster.cattle.io', version: 'v3', plural: 'clusteruserattributes', kind: 'ClusterUserAttribute', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', kind: 'ClusterRole', namespaced: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', kind: 'Role', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', kind: 'RoleBinding', namespaced: true },
];

export interface FakeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly creationTimestamp?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly [field: string]: unknown;
}

export type FakeObjectEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface StoredObjectEvent {
  readonly resourceVersion: number;
  readonly type: FakeObjectEventType;
  readonly plural: string;
  readonly object: FakeObject;
}

interface ObjectWatch {
  readonly plural: string;
  readonly namespace: string | undefined;
  readonly selector: (object: FakeObject) => boolean;
  readonly response: ServerResponse;
}

/** What a route answers: a JSON body with a status, or "I streamed it myself". */
export type ResourceAnswer = { readonly status: number; readonly body: unknown } | { readonly streamed: true };

export interface ResourceRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly contentType: string | undefined;
  readonly body: Buffer;
  readonly response: ServerResponse;
}

const groupPath = /^\/apis\/([^/]+)\/([^/]+)\/(?:namespaces\/([^/]+)\/)?([^/]+)(?:\/([^/]+))?$/;
const corePath = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?([^/]+)(?:\/([^/]+))?$/;

export type ResourceTarget = { kind: FakeResourceKind; namespace: string | undefined; name: string | undefined };

export class FakeResourceStore {
  private readonly objectsByKey = new Map<string, FakeObject>();
  private readonly events: StoredObjectEvent[] = [];
  private readonly watches = new Set<ObjectWatch>();
  /** Watches from a resourceVersion below this are answered 410. */
  private compactedBelow = 0;
  /** Answer an expired watch with HTTP 410 instead of an ERROR event. */
  expiredWatchAsHttp410 = false;
  /** Called before each list request (not watches) is answered: a test's hook to change objects or expire continue tokens mid-list. */
  onListPage: ((page: { readonly plural: string; readonly continued: boolean }) => void) | undefined;
  private readonly chunker = new FakeListChunker<FakeObject>();

  constructor(
    private readonly nextResourceVersion: () => number,
    private readonly currentResourceVersion: () => number,
    private readonly changed: () => void,
  ) {}

  get openWatches(): number {
    return this.watches.size;
  }

  namespaceExists(name: string): boolean {
    return this.get('namespaces', undefined, name) !== undefined;
  }

  /**
   * The resource kind and names a path addresses, or undefined when it is not one of ours.
   * A namespaced kind without a namespace in the path is the list across all namespaces.
   */
  match(path: string): ResourceTarget | undefined {
    const group = groupPath.exec(path);
    const core = group === null ? corePath.exec(path) : null;
    if (group === null && core === null) return undefined;
    const [groupName, version, namespace, plural, name] = group !== null ? group.slice(1) : ['', 'v1', ...core!.slice(1)];
    const kind = fakeResourceKinds.find((candidate) => candidate.group === groupName && candidate.version === version && candidate.plural === plural);
    if (kind === undefined) return undefined;
    if (!kind.namespaced && namespace !== undefined) return undefined;
    if (kind.namespaced && namespace === undefined && name !== undefined) return undefined;
    return { kind, namespace: decode(namespace), name: decode(name) };
  }

  /** Objects of one resource, optionally of one namespace. */
  list(plural: string, namespace?: string): FakeObject[] {
    return [...this.objectsByKey.entries()]
      .filter(([key]) => key.startsWith(`${plural}/${namespace === undefined ? '' : `${namespace}/`}`))
      .map(([, object]) => object);
  }

  get(plural: string, namespace: string | undefined, name: string): FakeObject | undefined {
    return this.objectsByKey.get(keyOf(plural, namespace, name));
  }

  /** Creates or replaces an object as a test setup step (no checks), announcing the event. */
  put(plural: string, object: FakeObject): FakeObject {
    const kind = kindOf(plural);
    const existing = this.get(plural, object.metadata.namespace, object.metadata.name);
    return this.store(kind, object, existing === undefined ? 'ADDED' : 'MODIFIED', existing);
  }

  /** Deletes an object as a test step; false when it did not exist. */
  remove(plural: string, namespace: string | undefined, name: string): boolean {
    const existing = this.get(plural, namespace, name);
    if (existing === undefined) return false;
    this.delete(plural, existing);
    return true;
  }

  /**
   * Forgets the event history: every later watch from an older resourceVersion gets 410, and
   * open watches are ended so that their clients come back with their old version. Continue
   * tokens of lists begun before expire (410) too.
   */
  compact(): void {
    this.compactedBelow = this.currentResourceVersion() + 1;
    this.events.length = 0;
    this.chunker.expire();
    this.endWatches();
  }

  /** Every continue token handed out so far is answered 410 Expired from now on (what compaction does to them). */
  expireContinueTokens(): void {
    this.chunker.expire();
  }

  /** Ends every open watch (a dropped connection, from the client's side: a clean end). */
  endWatches(): void {
    for (const watch of this.watches) {
      this.watches.delete(watch);
      watch.response.end();
    }
    this.changed();
  }

  destroyWatches(): void {
    for (const watch of this.watches) {
      this.watches.delete(watch);
      watch.response.destroy();
    }
  }

  handle(request: ResourceRequest, target: ResourceTarget): ResourceAnswer {
    const { kind, namespace, name } = target;
    const { method } = request;
    const allNamespaces = kind.namespaced && namespace === undefined;
    if (name === undefined) {
      if (method === 'GET') {
        const selector = parseLabelSelector(request.query.get('labelSelector'));
        if (typeof selector === 'string') return statusAnswer(failureStatus(400, 'BadRequest', selector));
        if (isTrue(request.query.get('watch'))) return this.watch(request, kind, namespace, selector);
        this.onListPage?.({ plural: kind.plural, continued: (request.query.get('continue') ?? '') !== '' });
        const page = this.chunker.page({
          prefix: `${kind.plural}/${namespace === undefined ? '' : `${namespace}/`}`,
          selector: request.query.get('labelSelector') ?? '',
          current: () => (namespace === undefined ? this.list(kind.plural) : this.list(kind.plural, namespace)).filter(selector),
          resourceVersion: String(this.currentResourceVersion()),
          query: request.query,
        });
        if (!page.ok) return statusAnswer(page.status);
        return { status: 200, body: { apiVersion: apiVersionOf(kind), kind: `${kind.kind}List`, metadata: page.metadata, items: page.items } };
      }
      if (method === 'POST' && !allNamespaces) return this.create(request, kind, namespace);
      return methodNotAllowed();
    }
    const existing = this.get(kind.plural, namespace, name);
    const dryRun = isDryRun(request.query);
    switch (method) {
      case 'GET':
        return existing === undefined ? statusAnswer(objectNotFoundStatus(resourceName(kind), name)) : { status: 200, body: existing };
      case 'DELETE':
        if (existing === undefined) return statusAnswer(objectNotFoundStatus(resourceName(kind), name));
        return { status: 200, body: dryRun ? existing : this.delete(kind.plural, existing) };
      case 'PUT':
        return this.replace(request, kind, namespace, name, existing);
      case 'PATCH':
        return this.patch(request, kind, name, existing);
      default:
        return methodNotAllowed();
    }
  }

  private create(request: ResourceRequest, kind: FakeResourceKind, namespace: string | undefined): ResourceAnswer {
    const input = parseObject(request.body);
    if (typeof input === 'string') return statusAnswer(failureStatus(400, 'BadRequest', input));
    const typeMismatch = checkType(input, kind);
    if (typeMismatch !== undefined) return statusAnswer(typeMismatch);
    const name = input.metadata?.name;
    if (typeof name !== 'string' || name === '') {
      return statusAnswer(failureStatus(422, 'Invalid', `${kind.kind} "" is invalid: metadata.name: Required value: name or generateName is required`));
    }
    if (namespace !== undefined && !this.namespaceExists(namespace)) return statusAnswer(objectNotFoundStatus('namespaces', namespace));
    const bodyNamespace = input.metadata?.namespace;
    if (namespace !== undefined && bodyNamespace !== undefined && bodyNamespace !== '' && bodyNamespace !== namespace) {
      return statusAnswer(failureStatus(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'));
    }
    if (this.get(kind.plural, namespace, name) !== undefined) {
      return statusAnswer(failureStatus(409, 'AlreadyExists', `${resourceName(kind)} "${name}" already exists`, { name, kind: kind.plural }));
    }
    // A cluster-scoped object's namespace is cleared, as kube-apiserver clears it.
    const { namespace: _ignored, ...metadata } = input.metadata ?? {};
    const object = { ...input, apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { ...metadata, name, ...(namespace === undefined ? {} : { namespace }) } } as FakeObject;
    return this.write(request, kind, object, undefined, 201);
  }

  private replace(request: ResourceRequest, kind: FakeResourceKind, namespace: string | undefined, name: string, existing: FakeObject | undefined): ResourceAnswer {
    const input = parseObject(request.body);
    if (typeof input === 'string') return statusAnswer(failureStatus(400, 'BadRequest', input));
    const typeMismatch = checkType(input, kind);
    if (typeMismatch !== undefined) return statusAnswer(typeMismatch);
    if (input.metadata?.name !== name) return statusAnswer(failureStatus(400, 'BadRequest', 'the name of the object does not match the name on the URL'));
    if (existing === undefined) return statusAnswer(objectNotFoundStatus(resourceName(kind), name));
    const requested = input.metadata.resourceVersion;
    if (requested !== undefined && requested !== '' && requested !== existing.metadata.resourceVersion) {
      return statusAnswer(
        failureStatus(409, 'Conflict', `Operation cannot be fulfilled on ${resourceName(kind)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: kind.plural }),
      );
    }
    const object = { ...input, apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { ...input.metadata, ...(namespace === undefined ? {} : { namespace }) } } as FakeObject;
    return this.write(request, kind, object, existing, 200);
  }

  private patch(request: ResourceRequest, kind: FakeResourceKind, name: string, existing: FakeObject | undefined): ResourceAnswer {
    const contentType = (request.contentType ?? '').split(';')[0]!.trim();
    const schemaName = definitionOf(kind.group, kind.version, kind.kind);
    const accepted = ['application/merge-patch+json', ...(schemaName === undefined ? [] : ['application/strategic-merge-patch+json'])];
    if (!accepted.includes(contentType)) {
      return statusAnswer(failureStatus(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`));
    }
    if (existing === undefined) return statusAnswer(objectNotFoundStatus(resourceName(kind), name));
    let patch: unknown;
    try {
      patch = JSON.parse(request.body.toString('utf8'));
    } catch {
      return statusAnswer(failureStatus(400, 'BadRequest', 'the request body is not valid JSON'));
    }
    let merged: FakeObject;
    try {
      merged = (contentType === 'application/merge-patch+json' ? mergePatch(existing, patch) : strategicMergePatch(existing, patch, definitions[schemaName!])) as FakeObject;
    } catch (error) {
      if (error instanceof PatchError) return statusAnswer(failureStatus(error.code, error.code === 400 ? 'BadRequest' : 'Invalid', error.message));
      throw error;
    }
    const patchedName = merged.metadata?.name;
    if (patchedName !== undefined && patchedName !== name) {
      return statusAnswer(failureStatus(400, 'BadRequest', `the name of the object (${String(patchedName)}) does not match the name on the URL (${name})`));
    }
    const object = { ...merged, apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { ...merged.metadata, name: existing.metadata.name, namespace: existing.metadata.namespace } } as FakeObject;
    return this.write(request, kind, object, existing, 200);
  }

  /** Normalizes and validates a create or update, then stores it (unless it is a dry run). */
  private write(request: ResourceRequest, kind: FakeResourceKind, input: FakeObject, existing: FakeObject | undefined, status: number): ResourceAnswer {
    const schemaName = definitionOf(kind.group, kind.version, kind.kind);
    const decoded = schemaName === undefined ? { value: input, unknownFields: [] } : decodeAgainstSchema(input, definitions[schemaName]);
    if (decoded.unknownFields.length > 0 && request.query.get('fieldValidation') === 'Strict') {
      const fields = decoded.unknownFields.map((field) => `unknown field ${JSON.stringify(field)}`).join(', ');
      return statusAnswer(failureStatus(400, 'BadRequest', `${kind.kind} in version "${kind.version}" cannot be handled as a ${kind.kind}: strict decoding error: ${fields}`));
    }
    const object = normalizeObject(kind.kind, decoded.value as FakeObject);
    if (typeof object === 'string') return statusAnswer(failureStatus(400, 'BadRequest', object));
    const invalid = validateObject(kind, object, existing);
    if (invalid !== undefined) return statusAnswer(invalid);
    if (isDryRun(request.query)) return { status, body: object };
    return { status, body: this.store(kind, object, existing === undefined ? 'ADDED' : 'MODIFIED', existing) };
  }
  private watch(request: ResourceRequest, kind: FakeResourceKind, namespace: string | undefined, selector: (object: FakeObject) => boolean): ResourceAnswer {
    const { response, query } = request;
    const from = query.get('resourceVersion');
    const fromVersion = from === null || from === '' ? undefined : Number(from);
    const expired = fromVersion !== undefined && fromVersion !== 0 && fromVersion < this.compactedBelow - 1;
    const expiredStatus = failureStatus(410, 'Expired', `too old resource version: ${from ?? ''} (${this.compactedBelow - 1})`);
    if (expired && this.expiredWatchAsHttp410) return statusAnswer(expiredStatus);
    response.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    response.flushHeaders();
    if (expired) {
      response.end(`${JSON.stringify({ type: 'ERROR', object: expiredStatus })}\n`);
      return { streamed: true };
    }
    const watch: ObjectWatch = { plural: kind.plural, namespace, selector, response };
    if (fromVersion === undefined || fromVersion === 0) {
      for (const object of namespace === undefined ? this.list(kind.plural) : this.list(kind.plural, namespace)) {
        if (selector(object)) response.write(`${JSON.stringify({ type: 'ADDED', object })}\n`);
      }
    } else {
      for (const event of this.events) if (event.resourceVersion > fromVersion) this.send(watch, event);
    }
    this.watches.add(watch);
    this.changed();
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
    const timer =
      timeoutSeconds > 0
        ? setTimeout(() => {
            this.watches.delete(watch);
            response.end();
          }, timeoutSeconds * 1000)
        : undefined;
    response.on('close', () => {
      if (timer !== undefined) clearTimeout(timer);
      this.watches.delete(watch);
      this.changed();
    });
    return { streamed: true };
  }

  private send(watch: ObjectWatch, event: StoredObjectEvent): void {
    if (watch.plural !== event.plural) return;
    if (watch.namespace !== undefined && event.object.metadata.namespace !== watch.namespace) return;
    if (!watch.selector(event.object)) return;
    watch.response.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
  }

  private store(kind: FakeResourceKind, object: FakeObject, type: FakeObjectEventType, existing: FakeObject | undefined): FakeObject {
    const resourceVersion = this.nextResourceVersion();
    const stored: FakeObject = {
      ...object,
      apiVersion: apiVersionOf(kind),
      kind: kind.kind,
      metadata: {
        ...object.metadata,
        uid: existing?.metadata.uid ?? randomUUID(),
        creationTimestamp: existing?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        resourceVersion: String(resourceVersion),
      },
    };
    this.objectsByKey.set(keyOf(kind.plural, stored.metadata.namespace, stored.metadata.name), stored);
    this.announce({ resourceVersion, type, plural: kind.plural, object: stored });
    return stored;
  }

  private delete(plural: string, existing: FakeObject): FakeObject {
    if (plural === 'namespaces') {
      // What the namespace controller does once the Namespace is Terminating, at once.
      for (const kind of fakeResourceKinds.filter((candidate) => candidate.namespaced)) {
        for (const object of this.list(kind.plural, existing.metadata.name)) this.delete(kind.plural, object);
      }
    }
    const resourceVersion = this.nextResourceVersion();
    this.objectsByKey.delete(keyOf(plural, existing.metadata.namespace, existing.metadata.name));
    const gone: FakeObject = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(resourceVersion) } };
    this.announce({ resourceVersion, type: 'DELETED', plural, object: gone });
    return gone;
  }

  private announce(event: StoredObjectEvent): void {
    this.events.push(event);
    for (const watch of this.watches) this.send(watch, event);
    this.changed();
  }
}

function statusAnswer(status: KubeStatus): ResourceAnswer {
  return { status: status.code, body: status };
}

function methodNotAllowed(): ResourceAnswer {
  return statusAnswer(failureStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
}

/** `secrets`, `deployments.apps`: how kube-apiserver names a resource in its messages. */
export function resourceName(kind: FakeResourceKind): string {
  return kind.group === '' ? kind.plural : `${kind.plural}.${kind.group}`;
}

function isDryRun(query: URLSearchParams): boolean {
  return query.getAll('dryRun').includes('All');
}

/** A body of another kind or version than the URL's resource is refused, as the decoder refuses it. */
function checkType(input: Partial<FakeObject>, kind: FakeResourceKind): KubeStatus | undefined {
  const apiVersion = apiVersionOf(kind);
  if (input.apiVersion !== undefined && input.apiVersion !== apiVersion) {
    return failureStatus(400, 'BadRequest', `the API version in the data (${String(input.apiVersion)}) does not match the expected API version (${apiVersion})`);
  }
  if (input.kind !== undefined && input.kind !== kind.kind) {
    return failureStatus(400, 'BadRequest', `${String(input.kind)} in version "${kind.version}" cannot be handled as a ${kind.kind}: the kind in the data does not match the resource`);
  }
  return undefined;
}

function kindOf(plural: string): FakeResourceKind {
  const kind = fakeResourceKinds.find((candidate) => candidate.plural === plural);
  if (kind === undefined) throw new TypeError(`the fake kube-apiserver does not store ${plural}`);
  return kind;
}

function apiVersionOf(kind: FakeResourceKind): string {
  return kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
}

function keyOf(plural: string, namespace: string | undefined, name: string): string {
  return namespace === undefined ? `${plural}/${name}` : `${plural}/${namespace}/${name}`;
}

function decode(part: string | undefined): string | undefined {
  return part === undefined ? undefined : decodeURIComponent(part);
}

function isTrue(value: string | null): boolean {
  return value !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

function parseObject(body: Buffer): (Partial<FakeObject> & { metadata?: Partial<FakeObject['metadata']> }) | string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'the request body must be a JSON object';
    return parsed as Partial<FakeObject>;
  } catch {
    return 'the request body is not valid JSON';
  }
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function parseLabelSelector(selector: string | null): ((object: FakeObject) => boolean) | string {
  if (selector === null || selector.trim() === '') return () => true;
  const tests: Array<(object: FakeObject) => boolean> = [];
  for (const requirement of selector.split(',').map((part) => part.trim())) {
    const match = /^([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(requirement);
    if (match === null) return `the fake kube-apiserver supports only equality label selectors, not ${JSON.stringify(requirement)}`;
    const [, key, operator, value] = match as unknown as [string, string, string, string];
    tests.push((object) => (object.metadata.labels?.[key] === value) !== (operator === '!='));
  }
  return (object) => tests.every((test) => test(object));
}
