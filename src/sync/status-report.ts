/**
 * The sync's per-cluster status as a store job report (`cluster-sync`): the process that
 * syncs (the background job lease holder) records each new status, and every replica and
 * worker reads it from its copy of the reports (store/job-reports.ts), so `GET
 * /v1/clusters/:id` answers the same everywhere. A report that does not decode counts as
 * none ("not synced yet").
 */
import type { JobReports, Report } from '../store/job-reports.js';
import type { ClusterSyncStatus } from './sync.js';

export interface SharedSyncStatus {
  record(clusterId: string, status: ClusterSyncStatus): void;
  get(clusterId: string): ClusterSyncStatus | undefined;
}

export function sharedSyncStatus(reports: JobReports): SharedSyncStatus {
  return {
    record(clusterId, status) {
      void reports.put('cluster-sync', clusterId, {
        ok: status.ok,
        lastAttemptAt: status.lastAttemptAt.toISOString(),
        lastSuccessAt: status.lastSuccessAt?.toISOString() ?? null,
        consecutiveFailures: status.consecutiveFailures,
        ...(status.error === undefined ? {} : { error: status.error }),
        ...(status.objects === undefined ? {} : { objects: { ...status.objects } }),
        ...(status.foreignObjects === undefined ? {} : { foreignObjects: status.foreignObjects }),
        ...(status.conflicts === undefined ? {} : { conflicts: status.conflicts }),
      });
    },
    get(clusterId) {
      const report = reports.get('cluster-sync', clusterId);
      return report === undefined ? undefined : syncStatusFromReport(report);
    },
  };
}

function syncStatusFromReport(report: Report): ClusterSyncStatus | undefined {
  const { ok, lastAttemptAt, lastSuccessAt, consecutiveFailures, error, objects, foreignObjects, conflicts } = report;
  const attemptAt = dateOf(lastAttemptAt);
  const successAt = lastSuccessAt === null ? null : dateOf(lastSuccessAt);
  if (typeof ok !== 'boolean' || attemptAt === undefined || successAt === undefined || !isCount(consecutiveFailures)) return undefined;
  const counts = objects as { tokens?: unknown; users?: unknown; bindings?: unknown } | undefined;
  const objectCounts =
    typeof counts === 'object' && counts !== null && isCount(counts.tokens) && isCount(counts.users) && isCount(counts.bindings)
      ? { tokens: counts.tokens, users: counts.users, bindings: counts.bindings }
      : undefined;
  return {
    ok,
    lastAttemptAt: attemptAt,
    lastSuccessAt: successAt,
    consecutiveFailures,
    ...(typeof error === 'string' ? { error } : {}),
    ...(objectCounts === undefined ? {} : { objects: objectCounts }),
    ...(isCount(foreignObjects) ? { foreignObjects } : {}),
    ...(isCount(conflicts) ? { conflicts } : {}),
  };
}

function dateOf(value: unknown): Date | undefined {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? new Date(value) : undefined;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
