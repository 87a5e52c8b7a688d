/**
 * Chunked lists (`?limit=N`, `?continue=<token>`) for the fake kube-apiserver's stored
 * objects, as kube-apiserver serves them from etcd.
 *
 * Design note: what a client can get wrong, the fake refuses as the real server does.
 * - A list with `limit` answers at most that many items, in key order (namespace/name, as
 *   etcd's range read returns them), with `metadata.continue` when more remain and
 *   `metadata.remainingItemCount` when no selector filtered them. Every page of one list
 *   comes from the snapshot taken for its first page, and carries that snapshot's
 *   `resourceVersion`: writes in between are not in the list; the watch from that version
 *   delivers them.
 * - The continue token is opaque to the client (base64 of JSON, as the real one is); it
 *   names the snapshot, the last key served and the request's label selector. A token that
 *   is not one, or that comes from another resource, namespace or selector, is 400
 *   BadRequest; `resourceVersion` beside `continue` is 400 as well. (The real server does
 *   not have to encode the selector, but it may reject a changed one: the fake does, so
 *   that a client that changes its query mid-list is caught.)
 * - Snapshots are kept until `expire()` (what etcd compaction does to the real server's
 *   tokens, after about five minutes) or until 256 newer lists pushed them out. A token of
 *   a snapshot gone is answered 410 with the `Expired` Status the real server sends, its
 *   `metadata.continue` an inconsistent token for the rest of the current objects.
 * - `limit` that is not an integer is 400; `limit` ≤ 0 means no limit (one answer).
 */
import { randomUUID } from 'node:crypto';
import { failureStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';

export interface ChunkedObject {
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

export interface ListQuery<T extends ChunkedObject> {
  /** The key prefix of the resource and namespace listed (`secrets/`, `secrets/ns/`). */
  readonly prefix: string;
  /** The request's `labelSelector` as sent (`''` when none). */
  readonly selector: string;
  /** Objects matching the request now, in any order: read for a first page only. */
  readonly current: () => readonly T[];
  readonly resourceVersion: string;
  readonly query: URLSearchParams;
}

export type ListPage<T> =
  | { readonly ok: true; readonly items: readonly T[]; readonly metadata: { readonly resourceVersion: string; readonly continue?: string; readonly remainingItemCount?: number } }
  | { readonly ok: false; readonly status: KubeStatus };

interface Snapshot<T> {
  readonly prefix: string;
  readonly selector: string;
  readonly resourceVersion: string;
  /** Sorted by key. */
  readonly items: readonly T[];
}

interface TokenContent {
  readonly v: string;
  readonly snapshot: string;
  readonly prefix: string;
  readonly selector: string;
  readonly start: string;
}

const TOKEN_VERSION = 'fake.k8s.io/v1';
const MAX_SNAPSHOTS = 256;
const EXPIRED_MESSAGE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

export class FakeListChunker<T extends ChunkedObject> {
  private readonly snapshots = new Map<string, Snapshot<T>>();

  /** Every continue token handed out so far is answered 410 Expired from now on. */
  expire(): void {
    this.snapshots.clear();
  }

  page(request: ListQuery<T>): ListPage<T> {
    const limit = parseLimit(request.query.get('limit'));
    if (limit === undefined) return refuse(`limit: Invalid value: ${JSON.stringify(request.query.get('limit'))}: must be an integer`);
    const token = request.query.get('continue') ?? '';
    if (token === '') {
      const items = [...request.current()].sort((a, b) => compare(keyOf(a), keyOf(b)));
      if (limit <= 0) return { ok: true, items, metadata: { resourceVersion: request.resourceVersion } };
      return this.serve(this.remember({ prefix: request.prefix, selector: request.selector, resourceVersion: request.resourceVersion, items }), '', limit);
    }
    if ((request.query.get('resourceVersion') ?? '') !== '') return refuse('specifying resource version is not allowed when using continue');
    const content = decodeToken(token);
    if (content === undefined) return refuse('invalid continue token: not a continue token of this server');
    if (content.prefix !== request.prefix || content.selector !== request.selector) {
      return refuse('invalid continue token: the token was issued for another resource, namespace or label selector');
    }
    const snapshot = this.snapshots.get(content.snapshot);
    if (snapshot === undefined) {
      const rest = [...request.current()].filter((item) => compare(keyOf(item), content.start) > 0).sort((a, b) => compare(keyOf(a), keyOf(b)));
      const inconsistent = this.remember({ prefix: request.prefix, selector: request.selector, resourceVersion: request.resourceVersion, items: rest });
      const status = failureStatus(410, 'Expired', EXPIRED_MESSAGE);
      return { ok: false, status: { ...status, metadata: { continue: encodeToken({ v: TOKEN_VERSION, snapshot: inconsistent.id, prefix: request.prefix, selector: request.selector, start: '' }) } } };
    }
    return this.serve({ id: content.snapshot, snapshot }, content.start, limit <= 0 ? Number.POSITIVE_INFINITY : limit);
  }

  private remember(snapshot: Snapshot<T>): { id: string; snapshot: Snapshot<T> } {
    const id = randomUUID();
    this.snapshots.set(id, snapshot);
    for (const oldest of this.snapshots.keys()) {
      if (this.snapshots.size <= MAX_SNAPSHOTS) break;
      this.snapshots.delete(oldest);
    }
    return { id, snapshot };
  }

  private serve({ id, snapshot }: { id: string; snapshot: Snapshot<T> }, start: string, limit: number): ListPage<T> {
    const from = start === '' ? 0 : firstAfter(snapshot.items, start);
    const items = snapshot.items.slice(from, from + limit);
    const remaining = snapshot.items.length - from - items.length;
    if (remaining === 0) {
      this.snapshots.delete(id);
      return { ok: true, items, metadata: { resourceVersion: snapshot.resourceVersion } };
    }
    const last = keyOf(items[items.length - 1]!);
    return {
      ok: true,
      items,
      metadata: {
        resourceVersion: snapshot.resourceVersion,
        continue: encodeToken({ v: TOKEN_VERSION, snapshot: id, prefix: snapshot.prefix, selector: snapshot.selector, start: last }),
        ...(snapshot.selector === '' ? { remainingItemCount: remaining } : {}),
      },
    };
  }
}

function refuse(message: string): ListPage<never> {
  return { ok: false, status: failureStatus(400, 'BadRequest', message) };
}

/** The limit asked for (0 when none), or undefined when it is not an integer. */
function parseLimit(value: string | null): number | undefined {
  if (value === null || value === '') return 0;
  return /^-?\d{1,18}$/.test(value) ? Number(value) : undefined;
}

function keyOf(object: ChunkedObject): string {
  return object.metadata.namespace === undefined ? object.metadata.name : `${object.metadata.namespace}/${object.metadata.name}`;
}

/** Byte order, as etcd compares keys. */
function compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Index of the first item whose key sorts after `key`. */
function firstAfter<T extends ChunkedObject>(items: readonly T[], key: string): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compare(keyOf(items[middle]!), key) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function encodeToken(content: TokenContent): string {
  return Buffer.from(JSON.stringify(content), 'utf8').toString('base64url');
}

function decodeToken(token: string): TokenContent | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<TokenContent>;
    const fields = [parsed.snapshot, parsed.prefix, parsed.selector, parsed.start];
    if (parsed.v !== TOKEN_VERSION || fields.some((field) => typeof field !== 'string')) return undefined;
    return parsed as TokenContent;
  } catch {
    return undefined;
  }
}
