/**
 * In-process delivery of store changes to `subscribe` listeners.
 *
 * A store announces a write's changes right after its transaction commits and before the
 * call resolves, so a caller that awaited a revocation knows its own caches have heard of
 * it. A listener that throws must not fail a write that is already committed, nor keep
 * the other listeners from hearing it: its error goes to `onError`.
 */
import type { ChangeListener, StoreChange } from './store.js';

export interface ChangeListeners {
  subscribe(listener: ChangeListener): () => void;
  announce(changes: readonly StoreChange[]): void;
  /** Forgets every listener (the store is closing). */
  clear(): void;
}

export function createChangeListeners(onError: (error: unknown) => void): ChangeListeners {
  const listeners = new Set<ChangeListener>();
  return {
    subscribe(listener: ChangeListener): () => void {
      if (typeof listener !== 'function') throw new TypeError('a change listener must be a function');
      // A wrapper, so that subscribing the same function twice gives two independent subscriptions.
      const entry: ChangeListener = (change) => listener(change);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    announce(changes: readonly StoreChange[]): void {
      for (const change of changes) {
        for (const listener of [...listeners]) {
          try {
            listener({ kind: change.kind, key: change.key });
          } catch (error) {
            onError(error);
          }
        }
      }
    },
    clear(): void {
      listeners.clear();
    },
  };
}
