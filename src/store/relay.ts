/**
 * Store changes relayed between processes that share one SQLite file (`kubegate proxy
 * --workers N`), which SQLite itself cannot tell about each other's writes.
 *
 * Design note: `relayChanges(store, channel)` decorates a Store. Every change the store
 * announces locally (its own writes) is also published on the channel; changes arriving
 * from the channel (other processes' writes) are delivered to this decorator's
 * subscribers, beside the store's own announcements. A write resolves only once its
 * changes have been delivered to every other process (or the channel gave up waiting), so
 * a caller that awaited a revocation knows that no process serves the revoked token from a
 * cache any more — the same promise the Store contract makes within one process.
 *
 * PostgreSQL already tells every store instance through LISTEN/NOTIFY; relaying there
 * would deliver each change twice, so a PostgreSQL store is returned undecorated.
 */
import { createChangeListeners } from './changes.js';
import type { ChangeListener, Store, StoreChange } from './store.js';

/** How one process reaches the others (node:cluster IPC in production). */
export interface ChangeChannel {
  /**
   * Sends changes made here to every other process; resolves when each has delivered them
   * to its subscribers, or when the channel stops waiting (a process that died or hangs).
   */
  publish(changes: readonly StoreChange[]): Promise<void>;
  /** Registers the receiver of other processes' changes; returns the function that removes it. */
  receive(handler: (changes: readonly StoreChange[]) => void): () => void;
}

export interface RelayOptions {
  /** A listener that throws (the store's own listeners report theirs the same way). */
  readonly onError?: (error: unknown) => void;
}

export function relayChanges(store: Store, channel: ChangeChannel, options: RelayOptions = {}): Store {
  if (store.kind === 'postgres') return store;
  const onError = options.onError ?? (() => undefined);
  const remote = createChangeListeners(onError);
  let published = 0;
  let delivered: Promise<void> = Promise.resolve();

  const stopPublishing = store.subscribe((change) => {
    published++;
    const sent = channel.publish([change]).catch(onError);
    delivered = Promise.all([delivered, sent]).then(() => undefined);
  });
  const stopReceiving = channel.receive((changes) => remote.announce(changes));

  function subscribe(listener: ChangeListener): () => void {
    const local = store.subscribe(listener);
    const fromOthers = remote.subscribe(listener);
    return () => {
      local();
      fromOthers();
    };
  }

  async function close(): Promise<void> {
    stopPublishing();
    stopReceiving();
    remote.clear();
    await store.close();
  }

  /** Any store method: when the call published changes, it resolves after their delivery. */
  function relayed(method: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
    return (...args: unknown[]) => {
      const before = published;
      const result = method.apply(store, args);
      if (!(result instanceof Promise)) return result;
      return result.then(async (value: unknown) => {
        if (published !== before) await delivered;
        return value;
      });
    };
  }

  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      if (property === 'subscribe') return subscribe;
      if (property === 'close') return close;
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let method = wrapped.get(property);
      if (method === undefined) {
        method = relayed(value as (...args: unknown[]) => unknown);
        wrapped.set(property, method);
      }
      return method;
    },
  });
}
