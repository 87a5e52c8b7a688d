/**
 * `DELETE /v1/clusters/:id` on a process that does not run the sync (another one holds the
 * background job lease): the cluster, marked as being deleted, is cleaned and deleted by the
 * sync of the lease holder, which hears of the mark through the store. This process waits
 * for the store to forget the cluster (its `cluster` announcement), instead of contacting
 * the cluster itself — two processes removing the same objects at once would race.
 */
import { KubegateError } from '../errors.js';
import type { Store } from '../store/store.js';

/**
 * Resolves once the store no longer has the cluster; rejects after `timeoutMs` (the
 * holder's sync keeps retrying after that by itself).
 */
export function whenClusterRemoved(store: Pick<Store, 'getCluster' | 'subscribe'>, clusterId: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      if (error === undefined) resolve();
      else reject(error);
    };
    const check = (): void => {
      store.getCluster(clusterId).then(
        (cluster) => {
          if (cluster === undefined) finish();
        },
        (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
      );
    };
    const timer = setTimeout(() => finish(new KubegateError('INTERNAL', 'the cluster is not removed yet; the sync keeps trying')), timeoutMs);
    timer.unref();
    const unsubscribe = store.subscribe((change) => {
      if ((change.kind === 'cluster' && change.key === clusterId) || change.kind === 'resync') check();
    });
    check();
  });
}
