/**
 * Generic stored objects for the fake kube-apiserver: Secrets, ClusterRoleBindings and the
 * Rancher custom resources (ClusterAuthToken, ClusterUserAttribute) that the webhook reads
 * and the proxy's sync writes.
 *
 * Design note: strict where a client can get it wrong. Every write bumps the server-wide
 * resourceVersion and is kept as an event; a list answers the current resourceVersion; a
 * watch replays events newer than the requested resourceVersion and then streams, or — when
 * that version was compacted away — answers what kube-apiserver answers: HTTP 200 and one
 * ERROR event carrying a 410 `Expired` Status (or, when asked, a plain 410 answer). Creates
 * into a missing namespace are 404, duplicates 409 AlreadyExists, replaces with a stale
 * resourceVersion 409 Conflict; PATCH takes JSON merge patches only (415 otherwise).
 * Equality label selectors are honoured on list and watch.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { failureStatus, objectNotFoundStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';

export interface FakeResourceKind {
  /** `''` for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const fakeResourceKinds: readonly FakeResourceKind[] = [
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: 'cluster.cattle.io', version: 'v3', plural: 'clusterauthtokens', kind: 'ClusterAuthToken', namespaced: true },
  { group: 'cluster.cattle.io', version: 'v3', plural: 'clusteruserattributes', kind: 'ClusterUserAttribute', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false },
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

export class FakeResourceStore {
  private readonly objectsByKey = new Map<string, FakeObject>();
  private readonly events: StoredObjectEvent[] = [];
  private readonly watches = new Set<ObjectWatch>();
  /** Watches from a resourceVersion below this are answered 410. */
  private compactedBelow = 0;
  /** Answer an expired watch with HTTP 410 instead of an ERROR event. */
  expiredWatchAsHttp410 = false;

  constructor(
    private readonly nextResourceVersion: () => number,
    private readonly currentResourceVersion: () => number,
    private readonly namespaceExists: (name: string) => boolean,
    private readonly changed: () => void,
  ) {}

  get openWatches(): number {
    return this.watches.size;
  }

  /** The resource kind and names a path addresses, or undefined when it is not one of ours. */
  match(path: string): { kind: FakeResourceKind; namespace: string | undefined; name: string | undefined } | undefined {
    const group = groupPath.exec(path);
    if (group !== null) {
      const [, groupName, version, namespace, plural, name] = group;
      const kind = fakeResourceKinds.find((candidate) => candidate.group === groupName && candidate.version === version && candidate.plural === plural);
      if (kind === undefined || kind.namespaced !== (namespace !== undefined)) return undefined;
      return { kind, namespace: decode(namespace), name: decode(name) };
    }
    const core = corePath.exec(path);
    if (core !== null) {
      const [, namespace, plural, name] = core;
      const kind = fakeResourceKinds.find((candidate) => candidate.group === '' && candidate.plural === plural);
      if (kind === undefined || namespace === undefined) return undefined;
      return { kind, namespace: decode(namespace), name: decode(name) };
    }
    return undefined;
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
   * open watches are ended so that their clients come back with their old version.
   */
  compact(): void {
    this.compactedBelow = this.currentResourceVersion() + 1;
    this.events.length = 0;
    this.endWatches();
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

  handle(request: ResourceRequest, target: { kind: FakeResourceKind; namespace: string | undefined; name: string | undefined }): ResourceAnswer {
    const { kind, namespace, name } = target;
    const { method } = request;
    if (name === undefined) {
      if (method === 'GET') {
        const selector = parseLabelSelector(request.query.get('labelSelector'));
        if (typeof selector === 'string') return statusAnswer(failureStatus(400, 'BadRequest', selector));
        if (isTrue(request.query.get('watch'))) return this.watch(request, kind, namespace, selector);
        const items = (namespace === undefined ? this.list(kind.plural) : this.list(kind.plural, namespace)).filter(selector);
        return { status: 200, body: { apiVersion: apiVersionOf(kind), kind: `${kind.kind}List`, metadata: { resourceVersion: String(this.currentResourceVersion()) }, items } };
      }
      if (method === 'POST') return this.create(request, kind, namespace);
      return statusAnswer(failureStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
    }
    const existing = this.get(kind.plural, namespace, name);
    switch (method) {
      case 'GET':
        return existing === undefined ? statusAnswer(objectNotFoundStatus(kind.plural, name)) : { status: 200, body: existing };
      case 'DELETE':
        if (existing === undefined) return statusAnswer(objectNotFoundStatus(kind.plural, name));
        return { status: 200, body: this.delete(kind.plural, existing) };
      case 'PUT':
        return this.replace(request, kind, namespace, name, existing);
      case 'PATCH':
        return this.patch(request, kind, name, existing);
      default:
        return statusAnswer(failureStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
    }
  }

  private create(request: ResourceRequest, kind: FakeResourceKind, namespace: string | undefined): ResourceAnswer {
    const input = parseObject(request.body);
    if (typeof input === 'string') return statusAnswer(failureStatus(400, 'BadRequest', input));
    const name = input.metadata?.name;
    if (typeof name !== 'string' || name === '') {
      return statusAnswer(failureStatus(422, 'Invalid', `${kind.kind} "" is invalid: metadata.name: Required value: name or generateName is required`));
    }
    if (namespace !== undefined && !this.namespaceExists(namespace)) return statusAnswer(objectNotFoundStatus('namespaces', namespace));
    if (input.metadata?.namespace !== undefined && input.metadata.namespace !== namespace) {
      return statusAnswer(failureStatus(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'));
    }
    if (this.get(kind.plural, namespace, name) !== undefined) {
      return statusAnswer(failureStatus(409, 'AlreadyExists', `${kind.plural}.${kind.group} "${name}" already exists`, { name, kind: kind.plural }));
    }
    const object = { ...input, apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { ...input.metadata, name, ...(namespace === undefined ? {} : { namespace }) } } as FakeObject;
    return { status: 201, body: this.store(kind, object, 'ADDED', undefined) };
  }

  private replace(request: ResourceRequest, kind: FakeResourceKind, namespace: string | undefined, name: string, existing: FakeObject | undefined): ResourceAnswer {
    const input = parseObject(request.body);
    if (typeof input === 'string') return statusAnswer(failureStatus(400, 'BadRequest', input));
    if (input.metadata?.name !== name) return statusAnswer(failureStatus(400, 'BadRequest', 'the name of the object does not match the name on the URL'));
    if (existing === undefined) return statusAnswer(objectNotFoundStatus(kind.plural, name));
    const requested = input.metadata.resourceVersion;
    if (requested !== undefined && requested !== '' && requested !== existing.metadata.resourceVersion) {
      return statusAnswer(
        failureStatus(409, 'Conflict', `Operation cannot be fulfilled on ${kind.plural}.${kind.group} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: kind.plural }),
      );
    }
    const object = { ...input, apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { ...input.metadata, ...(namespace === undefined ? {} : { namespace }) } } as FakeObject;
    return { status: 200, body: this.store(kind, object, 'MODIFIED', existing) };
  }

  private patch(request: ResourceRequest, kind: FakeResourceKind, name: string, existing: FakeObject | undefined): ResourceAnswer {
    if ((request.contentType ?? '').split(';')[0]!.trim() !== 'application/merge-patch+json') {
      return statusAnswer(failureStatus(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json`));
    }
    if (existing === undefined) return statusAnswer(objectNotFoundStatus(kind.plural, name));
    let patch: unknown;
    try {
      patch = JSON.parse(request.body.toString('utf8'));
    } catch {
      return statusAnswer(failureStatus(400, 'BadRequest', 'the request body is not valid JSON'));
    }
    const merged = mergePatch(existing, patch) as FakeObject;
    const object = { ...merged, metadata: { ...merged.metadata, name: existing.metadata.name, namespace: existing.metadata.namespace } } as FakeObject;
    return { status: 200, body: this.store(kind, object, 'MODIFIED', existing) };
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
