/**
 * A thin typed client for the Kubernetes API: get, list, watch, create, replace, merge-patch
 * and delete of JSON objects at a path, over an endpoint that says how to reach one API
 * server (host, agent, credentials).
 *
 * Design note: why not @kubernetes/client-node's ListWatch/Watch. Measured against its
 * 1.3.0 source: ListWatch stops for good on any error but 410 (no reconnect, no backoff);
 * Watch sends no `timeoutSeconds`, so a silently dead connection is noticed only by TCP
 * keep-alive; and the proxy's sync must reach each cluster through the proxy's own upstream
 * pool (one agent per cluster, its CA and impersonate-only credentials), which a
 * client-node KubeConfig cannot reuse. So client-node loads kubeconfig and in-cluster
 * credentials (kube/endpoint.ts), and this file speaks HTTP. The informer on top of it is
 * kube/informer.ts.
 *
 * Errors are KubegateError KUBE_API_FAILED with a short, safe message (HTTP status and the
 * Status `reason`, never a body) and `kubeStatus` holding the status code and reason, so
 * callers branch on 404/409/410 without parsing text. Response bodies are bounded (16 MiB).
 *
 * Lists are read in chunks, as client-go's pager and kubectl read them: `?limit=500`, then
 * `?limit=500&continue=<token>` until a page has no `metadata.continue`. The API server
 * serves every page from the snapshot of the first, and the list's resourceVersion is the
 * last page's. So the 16 MiB bound applies to one page, and a resource of any size can be
 * listed (60,000 ClusterAuthTokens are about 17 MB, in 120 requests). `list` returns only
 * once the last page arrived: a failure on any page fails the whole list, and the caller
 * keeps what it had. A continue token the server no longer honours (410 Expired: etcd
 * compacted past the snapshot, after about five minutes) starts the list over, from a new
 * snapshot, at most twice; client-go falls back to one unpaged list instead, which is the
 * very request that cannot be answered within the bound. `map` reduces each item as its page
 * arrives, so a caller that keeps little (Secret names and hashes) never holds every
 * object whole.
 *
 * A broken or hostile API server (a downstream cluster's, listed by the central proxy's sync)
 * must not make a list hold the process: the pages of one list may add up to `maxListBytes`
 * (256 MiB by default, some 900,000 tokens), so a list whose continue tokens never end stops
 * there; a continue token answered twice in one list (a loop of any length) is refused at
 * once; and an item that is not an object with a name is refused before `map` sees it. Each
 * fails the whole list, so callers keep what they had.
 */
import type http from 'node:http';
import { createInterface } from 'node:readline';
import { KubegateError } from '../errors.js';

/** How to reach one API server. */
export interface KubeEndpoint {
  /** `https.request` or `http.request`. */
  readonly request: (options: http.RequestOptions) => http.ClientRequest;
  readonly agent: http.Agent;
  readonly hostname: string;
  readonly port: number;
  /** `Host` header value. */
  readonly hostHeader: string;
  /** Path of the server URL without trailing slash (`''` for `https://host:6443`). */
  readonly pathPrefix: string;
  /** Credentials per request (`Authorization: Bearer …`), read fresh each time. */
  headers(): Promise<Readonly<Record<string, string>>> | Readonly<Record<string, string>>;
}

export interface KubeObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly uid?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly creationTimestamp?: string;
}

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: KubeObjectMeta;
}

export interface KubeList<T extends KubeObject> {
  readonly metadata: { readonly resourceVersion?: string };
  readonly items: readonly T[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent<T extends KubeObject> {
  readonly type: WatchEventType;
  /** The object; for ERROR, a Status (`code` 410 = the resourceVersion is too old). */
  readonly object: T | KubeStatusObject;
}

export interface KubeStatusObject {
  readonly kind: 'Status';
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly metadata?: unknown;
}

export interface WatchOptions {
  readonly resourceVersion?: string;
  readonly timeoutSeconds?: number;
  readonly labelSelector?: string;
  readonly signal?: AbortSignal;
}

export interface ListOptions {
  readonly labelSelector?: string;
}

/** Items asked for per list request: client-go's pager and kubectl ask for 500. */
export const DEFAULT_LIST_PAGE_SIZE = 500;
/** A list whose continue token expires is started over at most this often. */
const MAX_LIST_RESTARTS = 2;

export interface KubeApiFailure {
  /** HTTP status, or 0 when the request failed before an answer. */
  readonly code: number;
  /** The Status `reason` (`NotFound`, `AlreadyExists`, `Expired`, `Gone`…), when given. */
  readonly reason: string | undefined;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_LIST_BYTES = 256 * 1024 * 1024;
const MAX_WATCH_LINE_BYTES = 4 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const SAFE_REASON = /^[A-Za-z]{1,64}$/;

/** KUBE_API_FAILED with the failure attached as `kubeStatus`. */
export class KubeApiError extends KubegateError {
  readonly kubeStatus: KubeApiFailure;
  constructor(failure: KubeApiFailure, what: string, cause?: unknown) {
    const detail = failure.code === 0 ? noAnswer(cause) : `HTTP ${failure.code}${failure.reason === undefined ? '' : ` ${failure.reason}`}`;
    super('KUBE_API_FAILED', `${what}: ${detail}`, { cause });
    this.kubeStatus = failure;
  }
}

/** Why a request got no answer: a timeout, or the system error code (`ECONNREFUSED`, a TLS code), never the error's text. */
function noAnswer(cause: unknown): string {
  const { name, code } = (cause ?? {}) as { name?: unknown; code?: unknown };
  if (name === 'AbortError' || name === 'TimeoutError') return 'no answer in time';
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(code) ? `no answer (${code})` : 'no answer';
}

/** The HTTP status of a KubeApiError (0 without an answer), or undefined for anything else. */
export function kubeStatusCode(error: unknown): number | undefined {
  return error instanceof KubeApiError ? error.kubeStatus.code : undefined;
}

export interface KubeClientOptions {
  /** Limit for ordinary requests (not watches). Default 30 000. */
  readonly timeoutMs?: number;
  /** Items per list request (`limit`). Default DEFAULT_LIST_PAGE_SIZE. */
  readonly listPageSize?: number;
  /** Largest answer body (a list page). Default 16 MiB. */
  readonly maxBodyBytes?: number;
  /** Largest sum of one list's pages (see the design note). Default 256 MiB. */
  readonly maxListBytes?: number;
}

export interface KubeClient {
  /** The object, or undefined on 404. */
  get<T extends KubeObject>(path: string): Promise<T | undefined>;
  /**
   * Every object of the collection, read page by page (see the design note); `map` reduces
   * each item as it arrives. Rejects when any page fails: nothing partial is returned.
   */
  list<T extends KubeObject, U extends KubeObject = T>(path: string, options?: ListOptions, map?: (item: T) => U): Promise<KubeList<U>>;
  /**
   * Watches from `resourceVersion`, calling `onEvent` per event; resolves when the server
   * ends the watch (timeout) or `signal` aborts, rejects on a failed request (410 too).
   */
  watch<T extends KubeObject>(path: string, options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): Promise<void>;
  create<T extends KubeObject>(path: string, object: T): Promise<T>;
  replace<T extends KubeObject>(path: string, object: T): Promise<T>;
  /** JSON merge patch (RFC 7386). */
  mergePatch<T extends KubeObject>(path: string, patch: unknown): Promise<T>;
  /** true when deleted, false on 404. */
  delete(path: string): Promise<boolean>;
}

export function createKubeClient(endpoint: KubeEndpoint, options: KubeClientOptions = {}): KubeClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const listPageSize = options.listPageSize ?? DEFAULT_LIST_PAGE_SIZE;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const maxListBytes = options.maxListBytes ?? MAX_LIST_BYTES;
  if (!Number.isSafeInteger(listPageSize) || listPageSize < 1) throw new TypeError('listPageSize must be a positive integer');

  async function send(method: string, path: string, body: unknown, contentType: string | undefined, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const credentials = await endpoint.headers();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string | number> = { ...credentials, Host: endpoint.hostHeader, Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = contentType ?? 'application/json';
      headers['Content-Length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const request = endpoint.request({
        method,
        hostname: endpoint.hostname,
        port: endpoint.port,
        path: endpoint.pathPrefix + path,
        headers,
        agent: endpoint.agent,
        ...(signal === undefined ? {} : { signal }),
      });
      request.on('error', (error) => reject(new KubeApiError({ code: 0, reason: undefined }, `${method} ${path.split('?')[0]} failed`, error)));
      request.once('response', resolve);
      request.end(payload);
    });
  }

  async function readBody(response: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodyBytes) {
        response.destroy();
        throw new KubeApiError({ code: response.statusCode ?? 0, reason: undefined }, 'the answer is too large');
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  function failureOf(status: number, body: Buffer): KubeApiFailure {
    let reason: string | undefined;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { reason?: unknown };
      if (typeof parsed.reason === 'string' && SAFE_REASON.test(parsed.reason)) reason = parsed.reason;
    } catch {
      reason = undefined;
    }
    return { code: status, reason };
  }

  async function call(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; raw: Buffer }> {
    const response = await send(method, path, body, contentType, AbortSignal.timeout(timeoutMs));
    const status = response.statusCode ?? 0;
    try {
      return { status, raw: await readBody(response) };
    } catch (error) {
      throw error instanceof KubeApiError ? error : new KubeApiError({ code: status, reason: undefined }, `${method} failed`, error);
    }
  }

  function parse<T>(method: string, status: number, raw: Buffer): T {
    try {
      return JSON.parse(raw.toString('utf8')) as T;
    } catch (error) {
      throw new KubeApiError({ code: status, reason: undefined }, `${method}: the answer is not JSON`, error);
    }
  }

  async function expectOk<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const { status, raw } = await call(method, path, body, contentType);
    if (status < 200 || status > 299) throw new KubeApiError(failureOf(status, raw), `${method} ${resourceOf(path)}`);
    return parse<T>(method, status, raw);
  }

  /** One list attempt: every page of one snapshot, or `expired` when a continue token was answered 410. */
  async function listOnce<T extends KubeObject, U extends KubeObject>(path: string, listOptions: ListOptions, map: (item: T) => U): Promise<KubeList<U> | 'expired'> {
    const items: U[] = [];
    const tokens = new Set<string>();
    let token = '';
    let listBytes = 0;
    for (;;) {
      const query = new URLSearchParams({ limit: String(listPageSize) });
      if (listOptions.labelSelector !== undefined) query.set('labelSelector', listOptions.labelSelector);
      if (token !== '') query.set('continue', token);
      const { status, raw } = await call('GET', `${path}?${query.toString()}`);
      if (status < 200 || status > 299) {
        if (token !== '' && status === 410) return 'expired';
        throw new KubeApiError(failureOf(status, raw), `LIST ${resourceOf(path)}`);
      }
      const broken = (what: string): KubeApiError => new KubeApiError({ code: status, reason: undefined }, `LIST ${resourceOf(path)}: ${what}`);
      listBytes += raw.length;
      if (listBytes > maxListBytes) throw broken(`the list is larger than ${maxListBytes} bytes`);
      const page = parse<(KubeList<T> & { metadata?: { continue?: unknown } }) | null>('GET', status, raw);
      if (page === null || typeof page !== 'object' || !Array.isArray(page.items)) throw broken('the answer has no items');
      for (const item of page.items) {
        if (!isNamedObject(item)) throw broken('an item is not an object with a name');
        items.push(map(item));
      }
      const next = page.metadata?.continue;
      if (typeof next !== 'string' || next === '') {
        const resourceVersion = page.metadata?.resourceVersion;
        return { metadata: resourceVersion === undefined ? {} : { resourceVersion }, items };
      }
      if (tokens.has(next)) throw broken('the server answered a continue token of this list again');
      tokens.add(next);
      token = next;
    }
  }

  return {
    async get<T extends KubeObject>(path: string): Promise<T | undefined> {
      const { status, raw } = await call('GET', path);
      if (status === 404) return undefined;
      if (status < 200 || status > 299) throw new KubeApiError(failureOf(status, raw), `GET ${resourceOf(path)}`);
      return parse<T>('GET', status, raw);
    },
    async list<T extends KubeObject, U extends KubeObject = T>(path: string, listOptions: ListOptions = {}, map?: (item: T) => U): Promise<KubeList<U>> {
      const reduce = map ?? ((item: T) => item as unknown as U);
      for (let restarts = 0; ; restarts++) {
        const list = await listOnce(path, listOptions, reduce);
        if (list !== 'expired') return list;
        if (restarts === MAX_LIST_RESTARTS) {
          throw new KubeApiError({ code: 410, reason: 'Expired' }, `LIST ${resourceOf(path)}: the continue token expired ${MAX_LIST_RESTARTS + 1} times in a row`);
        }
      }
    },
    async watch<T extends KubeObject>(path: string, watchOptions: WatchOptions, onEvent: (event: WatchEvent<T>) => void): Promise<void> {
      const query = new URLSearchParams({ watch: '1', allowWatchBookmarks: 'true' });
      if (watchOptions.resourceVersion !== undefined) query.set('resourceVersion', watchOptions.resourceVersion);
      if (watchOptions.timeoutSeconds !== undefined) query.set('timeoutSeconds', String(watchOptions.timeoutSeconds));
      if (watchOptions.labelSelector !== undefined) query.set('labelSelector', watchOptions.labelSelector);
      const response = await send('GET', `${path}?${query.toString()}`, undefined, undefined, watchOptions.signal);
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        const body = await readBody(response).catch(() => Buffer.alloc(0));
        throw new KubeApiError(failureOf(status, body), `WATCH ${resourceOf(path)}`);
      }
      await new Promise<void>((resolve, reject) => {
        const lines = createInterface({ input: response, crlfDelay: Infinity });
        let failed = false;
        /** `asIs`: an error thrown by onEvent, handed back unchanged. */
        const fail = (error: unknown, asIs = false): void => {
          if (failed) return;
          failed = true;
          lines.close();
          response.destroy();
          reject(asIs || error instanceof KubeApiError ? error : new KubeApiError({ code: 200, reason: undefined }, `WATCH ${resourceOf(path)} broke`, error));
        };
        lines.on('line', (line) => {
          if (line.length === 0 || failed) return;
          if (line.length > MAX_WATCH_LINE_BYTES) return fail(new KubeApiError({ code: 200, reason: undefined }, 'a watch event is too large'));
          let event: WatchEvent<T>;
          try {
            event = JSON.parse(line) as WatchEvent<T>;
          } catch (error) {
            return fail(new KubeApiError({ code: 200, reason: undefined }, 'a watch event is not JSON', error));
          }
          try {
            onEvent(event);
          } catch (error) {
            fail(error, true);
          }
        });
        // readline re-emits its input's errors: both must be handled.
        const onError = (error: unknown): void => {
          if (watchOptions.signal?.aborted) resolve();
          else fail(error);
        };
        response.on('error', onError);
        lines.on('error', onError);
        response.once('aborted', () => {
          if (watchOptions.signal?.aborted) resolve();
          else fail(new Error('the watch connection was cut'));
        });
        lines.once('close', () => {
          if (!failed) resolve();
        });
      });
    },
    create<T extends KubeObject>(path: string, object: T): Promise<T> {
      return expectOk<T>('POST', path, object);
    },
    replace<T extends KubeObject>(path: string, object: T): Promise<T> {
      return expectOk<T>('PUT', path, object);
    },
    mergePatch<T extends KubeObject>(path: string, patch: unknown): Promise<T> {
      return expectOk<T>('PATCH', path, patch, 'application/merge-patch+json');
    },
    async delete(path: string): Promise<boolean> {
      const { status, raw } = await call('DELETE', path);
      if (status === 404) return false;
      if (status < 200 || status > 299) throw new KubeApiError(failureOf(status, raw), `DELETE ${resourceOf(path)}`);
      return true;
    },
  };
}

/** Whether a list item has what every object has: metadata with a name. */
function isNamedObject(item: unknown): boolean {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return false;
  const metadata = (item as { metadata?: unknown }).metadata;
  return metadata !== null && typeof metadata === 'object' && typeof (metadata as { name?: unknown }).name === 'string';
}

/** `…/namespaces/ns/clusterauthtokens/t-1` → `clusterauthtokens`: the resource, never a name. */
function resourceOf(path: string): string {
  const parts = path.split('?')[0]!.split('/').filter((part) => part !== '');
  const namespaced = parts.indexOf('namespaces');
  const index = namespaced !== -1 && parts.length > namespaced + 2 ? namespaced + 2 : parts.length >= 4 && parts[0] === 'apis' ? 3 : 2;
  return parts[index] ?? 'resource';
}
