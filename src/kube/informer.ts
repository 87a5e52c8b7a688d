/**
 * An informer: one resource's objects held in memory by list + watch, like client-go's
 * reflector.
 *
 * list → replace the cache (announcing adds, updates and deletes against what was held) →
 * watch from the list's resourceVersion, applying each event and remembering its
 * resourceVersion (bookmarks included) → when the server ends the watch (`timeoutSeconds`,
 * randomised so that many informers do not reconnect together), watch again from where it
 * stopped. A 410 Gone (answered to the watch request, or as an ERROR event) means the
 * resourceVersion is too old: list again. Any other failure (connection refused, 5xx, a cut
 * connection) is retried with exponential backoff and jitter, from the last resourceVersion
 * when there is one. `synced()` resolves after the first full list; until then the cache
 * must not be trusted for "not found".
 *
 * The list is read in pages (kube/client.ts) and applied only once its last page arrived:
 * a list that fails on any page — its continue token expiring more often than the client
 * starts over included — leaves the cache as it was and is retried with backoff like any
 * failure (a 410 from a list is not a watch's "too old": listing again at once would only
 * repeat it).
 *
 * A watch's 410 ("too old") re-lists at once only when the watch before it was good — it
 * delivered an event or ran to its timeout — since the last such re-list. An API server that
 * answers every watch 410 right after a list (broken, or hostile) would otherwise have the
 * informer list the whole collection again and again without a pause; the second 410 in a row
 * is a failure like any other, re-listed after the backoff.
 */
import type { KubeClient, KubeObject, KubeStatusObject, WatchEvent } from './client.js';
import { kubeStatusCode } from './client.js';

export type InformerEventType = 'added' | 'updated' | 'deleted';

export interface InformerOptions {
  /** The collection path, e.g. `/api/v1/namespaces/ns/secrets`. */
  readonly path: string;
  readonly labelSelector?: string;
  /** Watch duration the server is asked for: a random value in [min, 2·min). Default 300. */
  readonly minWatchTimeoutSeconds?: number;
  /** First retry delay after a failure. Default 200. */
  readonly initialBackoffMs?: number;
  /** Longest retry delay. Default 30 000. */
  readonly maxBackoffMs?: number;
  /** Reduces each object before it is held (drop what must not be kept, e.g. Secret data). */
  readonly transform?: (object: KubeObject) => KubeObject;
  /** Called for every change of the cache, after it is applied. */
  readonly onChange?: (type: InformerEventType, object: KubeObject, previous: KubeObject | undefined) => void;
  /** Called when a watch is restarted after a failure or expiry (not after a normal timeout). */
  readonly onRestart?: (reason: 'expired' | 'failed') => void;
  /** Called with each failure before the retry. */
  readonly onError?: (error: unknown) => void;
}

export interface Informer<T extends KubeObject> {
  get(name: string): T | undefined;
  list(): T[];
  readonly size: number;
  /** Resolves after the first complete list. */
  synced(): Promise<void>;
  readonly hasSynced: boolean;
  /** Starts the list/watch loop (once). */
  start(): void;
  /** Stops the loop and ends the open watch. */
  stop(): void;
}

export function createInformer<T extends KubeObject>(client: KubeClient, options: InformerOptions): Informer<T> {
  const minTimeout = options.minWatchTimeoutSeconds ?? 300;
  const initialBackoffMs = options.initialBackoffMs ?? 200;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const objects = new Map<string, T>();
  const transform = (object: T): T => (options.transform === undefined ? object : (options.transform(object) as T));
  let resourceVersion: string | undefined;
  let hasSynced = false;
  let started = false;
  const stopper = new AbortController();
  let markSynced: () => void = () => undefined;
  const syncedPromise = new Promise<void>((resolve) => {
    markSynced = resolve;
  });

  function apply(type: InformerEventType, object: T): void {
    const name = object.metadata.name;
    const previous = objects.get(name);
    if (type === 'deleted') {
      if (previous === undefined) return;
      objects.delete(name);
      options.onChange?.('deleted', object, previous);
      return;
    }
    objects.set(name, object);
    options.onChange?.(previous === undefined ? 'added' : 'updated', object, previous);
  }

  async function relist(): Promise<void> {
    const list = await client.list<T>(options.path, options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }, transform);
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(item.metadata.name);
      const previous = objects.get(item.metadata.name);
      if (previous?.metadata.resourceVersion !== item.metadata.resourceVersion || previous === undefined) apply('added', item);
    }
    for (const [name, object] of [...objects]) if (!seen.has(name)) apply('deleted', object);
    resourceVersion = list.metadata.resourceVersion;
    if (!hasSynced) {
      hasSynced = true;
      markSynced();
    }
  }

  /** True from a 410's immediate re-list until a watch is good again (see the design note). */
  let relistedOnExpiry = false;

  async function watchOnce(): Promise<void> {
    const timeoutSeconds = minTimeout + Math.floor(Math.random() * minTimeout);
    let expired = false;
    await client.watch<T>(
      options.path,
      {
        ...(resourceVersion === undefined ? {} : { resourceVersion }),
        timeoutSeconds,
        ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
        signal: stopper.signal,
      },
      (event: WatchEvent<T>) => {
        if (expired) return;
        if (event.type === 'ERROR') {
          const status = event.object as KubeStatusObject;
          expired = true;
          throw new WatchExpired(status.code ?? 0);
        }
        relistedOnExpiry = false;
        const object = event.object as T;
        if (event.type !== 'BOOKMARK') apply(event.type === 'DELETED' ? 'deleted' : 'added', transform(object));
        if (object.metadata?.resourceVersion !== undefined) resourceVersion = object.metadata.resourceVersion;
      },
    );
  }

  async function run(): Promise<void> {
    let backoffMs = initialBackoffMs;
    let needList = true;
    while (!stopper.signal.aborted) {
      try {
        if (needList) {
          await relist();
          needList = false;
        }
        await watchOnce();
        relistedOnExpiry = false;
        backoffMs = initialBackoffMs;
      } catch (error) {
        if (stopper.signal.aborted) return;
        const code = error instanceof WatchExpired ? error.code : kubeStatusCode(error);
        if (code === 410 && !needList && !relistedOnExpiry) {
          needList = true;
          relistedOnExpiry = true;
          options.onRestart?.('expired');
          continue;
        }
        if (error instanceof WatchExpired || (code === 410 && relistedOnExpiry)) needList = true;
        options.onError?.(error);
        options.onRestart?.('failed');
        if (resourceVersion === undefined) needList = true;
        await sleep(backoffMs * (0.5 + Math.random()), stopper.signal);
        backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
      }
    }
  }

  return {
    get: (name) => objects.get(name),
    list: () => [...objects.values()],
    get size() {
      return objects.size;
    },
    synced: () => syncedPromise,
    get hasSynced() {
      return hasSynced;
    },
    start() {
      if (started) return;
      started = true;
      void run();
    },
    stop() {
      stopper.abort();
    },
  };
}

/** A watch ERROR event; 410 means "list again". */
class WatchExpired extends Error {
  constructor(readonly code: number) {
    super(`the watch reported an error (code ${code})`);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
