/**
 * Whether each cluster's API server answers, for `GET /v1/clusters/:id`.
 *
 * Design note: probing happens in the background, never on a request. Every
 * `intervalSeconds` each cluster the directory knows gets one `GET /version` through the
 * upstream pool — the same agent, CA and impersonate-only credentials the forwarding path
 * uses, so "reachable" means "the proxy can reach it" — bounded by `timeoutMs`. A round
 * does not start while the previous one is still running. Answers are kept per cluster in
 * `records` (default in memory; the proxy's are the store's job reports, so that every
 * replica shows what the one running the rounds found: `sharedClusterStatusRecords`) and
 * pruned when a cluster disappears. Rounds run only where `start()` was called (the
 * background job lease holder); `probe()` and `reportCredentialRefused()` work anywhere.
 * Error texts are short, fixed phrases plus a system error code (`ECONNREFUSED`,
 * `CERT_HAS_EXPIRED`) or an HTTP status: enough for an operator, nothing of the upstream's
 * body.
 *
 * A 401 means the API server answers but refuses the proxy's credential (a wrong token
 * authenticates nobody, whatever the path): the cluster is reachable and unhealthy,
 * `credential: 'refused'`. The forwarding path reports the same thing the moment a user's
 * request meets it (`reportCredentialRefused`), so the status does not wait for the next
 * round; the next probe that gets through marks the credential accepted again.
 */
import type { Logger } from '../log.js';
import type { JobReports, Report } from '../store/job-reports.js';
import type { Cluster } from '../store/store.js';
import type { ClusterRegistry } from './registry.js';
import type { UpstreamPool } from './upstreams.js';
import { describeUnreachable, requestUpstreamJson, UpstreamAnswerError } from './upstream-request.js';

export interface ClusterStatus {
  readonly reachable: boolean;
  /** `gitVersion` from /version, when reachable. */
  readonly version?: string;
  readonly checkedAt: Date;
  /** Whether the API server accepted the proxy's credential (`unknown` when it could not be asked). */
  readonly credential: 'accepted' | 'refused' | 'unknown';
  /** Why it is not reachable or not healthy. */
  readonly error?: string;
}

/** Reachable with the proxy's credential accepted: requests can be forwarded. */
export function isHealthy(status: ClusterStatus): boolean {
  return status.reachable && status.credential === 'accepted';
}

const CREDENTIAL_REFUSED = "the API server refused the proxy's credential (HTTP 401)";

/** Where the monitor keeps its answers. */
export interface ClusterStatusRecords {
  get(clusterId: string): ClusterStatus | undefined;
  set(clusterId: string, status: ClusterStatus): void;
  /** The cluster is gone. */
  delete(clusterId: string): void;
  /** The clusters that have an answer. */
  keys(): Iterable<string>;
}

export interface ClusterStatusMonitorOptions {
  readonly directory: Pick<ClusterRegistry, 'listClusters' | 'getCluster'>;
  readonly upstreams: Pick<UpstreamPool, 'get'>;
  /** Time between rounds. Default 30. */
  readonly intervalSeconds?: number;
  /** Limit for one probe, connection included. Default 5000. */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
  readonly now?: () => Date;
  /** Default: in this process's memory. */
  readonly records?: ClusterStatusRecords;
}

export interface ClusterStatusMonitor {
  /** The last answer for the cluster, or undefined when it was never probed. */
  get(clusterId: string): ClusterStatus | undefined;
  /** Probes one cluster now (e.g. just after it was added); resolves with its new status. */
  probe(clusterId: string): Promise<ClusterStatus | undefined>;
  /** The forwarding path saw the cluster answer 401 to the proxy's credential: unhealthy now. */
  reportCredentialRefused(clusterId: string): void;
  /** Probes every cluster now; resolves when the round is over. */
  probeAll(): Promise<void>;
  /** Starts the periodic rounds (the first one at once). */
  start(): void;
  /** Stops the rounds and cancels probes in flight; `probe()` still works. May be followed by `start()`. */
  stop(): void;
}

const DEFAULT_INTERVAL_SECONDS = 30;
const DEFAULT_TIMEOUT_MS = 5000;

export function createClusterStatus(options: ClusterStatusMonitorOptions): ClusterStatusMonitor {
  const intervalSeconds = options.intervalSeconds ?? DEFAULT_INTERVAL_SECONDS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(intervalSeconds) || intervalSeconds <= 0) throw new TypeError('intervalSeconds must be positive');
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError('timeoutMs must be positive');
  const now = options.now ?? (() => new Date());
  const statuses: ClusterStatusRecords = options.records ?? new Map<string, ClusterStatus>();
  let stopper = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;

  async function probeCluster(cluster: Cluster): Promise<ClusterStatus> {
    const stopping = stopper.signal;
    const signal = AbortSignal.any([stopping, AbortSignal.timeout(timeoutMs)]);
    let status: ClusterStatus;
    try {
      const version = await fetchVersion(cluster, options.upstreams, signal);
      status = { reachable: true, ...(version === undefined ? {} : { version }), checkedAt: now(), credential: 'accepted' };
    } catch (error) {
      status =
        error instanceof CredentialRefused
          ? { reachable: true, checkedAt: now(), credential: 'refused', error: CREDENTIAL_REFUSED }
          : { reachable: false, checkedAt: now(), credential: 'unknown', error: describeUnreachable(error, signal) };
      // Every round: the short reason only, never a stack.
      options.logger?.debug({ cluster: cluster.id, error: status.error }, 'cluster probe failed');
    }
    // A cluster deleted (or a monitor stopped) while its probe ran keeps no status.
    if (options.directory.getCluster(cluster.id) !== undefined && !stopping.aborted) statuses.set(cluster.id, status);
    return status;
  }

  function probeAll(): Promise<void> {
    round ??= (async () => {
      try {
        const clusters = options.directory.listClusters();
        const known = new Set(clusters.map((cluster) => cluster.id));
        for (const id of [...statuses.keys()]) if (!known.has(id)) statuses.delete(id);
        await Promise.all(clusters.map(probeCluster));
      } finally {
        round = undefined;
      }
    })();
    return round;
  }

  return {
    get: (clusterId) => statuses.get(clusterId),
    async probe(clusterId) {
      const cluster = options.directory.getCluster(clusterId);
      return cluster === undefined ? undefined : probeCluster(cluster);
    },
    probeAll,
    reportCredentialRefused(clusterId) {
      if (options.directory.getCluster(clusterId) === undefined) return;
      const previous = statuses.get(clusterId);
      if (previous?.credential === 'refused') return;
      options.logger?.warn({ cluster: clusterId }, "the cluster refused the proxy's credential: marked unhealthy");
      const version = previous?.version;
      statuses.set(clusterId, { reachable: true, ...(version === undefined ? {} : { version }), checkedAt: now(), credential: 'refused', error: CREDENTIAL_REFUSED });
    },
    start() {
      if (timer !== undefined) return;
      void probeAll();
      timer = setInterval(() => void probeAll(), intervalSeconds * 1000);
      timer.unref();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      stopper.abort();
      // Probes asked for later (a registered cluster, a tunnel) still run.
      stopper = new AbortController();
    },
  };
}

/**
 * The monitor's records as the store's job reports (`cluster-probe`): written by whichever
 * process probed, read by every process. A report that does not decode counts as none.
 */
export function sharedClusterStatusRecords(reports: JobReports): ClusterStatusRecords {
  /** Decoded once per report object: the forwarding path reads the version per request. */
  const decoded = new WeakMap<Report, ClusterStatus | null>();
  return {
    get(clusterId) {
      const report = reports.get('cluster-probe', clusterId);
      if (report === undefined) return undefined;
      let status = decoded.get(report);
      if (status === undefined) {
        status = clusterStatusFromReport(report);
        decoded.set(report, status);
      }
      return status ?? undefined;
    },
    set(clusterId, status) {
      void reports.put('cluster-probe', clusterId, {
        reachable: status.reachable,
        ...(status.version === undefined ? {} : { version: status.version }),
        checkedAt: status.checkedAt.toISOString(),
        credential: status.credential,
        ...(status.error === undefined ? {} : { error: status.error }),
      });
    },
    // The store deletes a cluster's reports with the cluster: nothing to prune here.
    delete: () => undefined,
    keys: () => [],
  };
}

function clusterStatusFromReport(report: Report): ClusterStatus | null {
  const { reachable, version, checkedAt, credential, error } = report;
  if (typeof reachable !== 'boolean' || typeof checkedAt !== 'string' || Number.isNaN(Date.parse(checkedAt))) return null;
  if (credential !== 'accepted' && credential !== 'refused' && credential !== 'unknown') return null;
  return {
    reachable,
    ...(typeof version === 'string' ? { version } : {}),
    checkedAt: new Date(checkedAt),
    credential,
    ...(typeof error === 'string' ? { error } : {}),
  };
}

/** `GET /version` on the cluster; resolves with gitVersion, rejects on any failure. */
async function fetchVersion(cluster: Cluster, upstreams: Pick<UpstreamPool, 'get'>, signal: AbortSignal): Promise<string | undefined> {
  const answer = await requestUpstreamJson(upstreams.get(cluster), { method: 'GET', path: '/version' }, signal);
  if (answer.status === 401) throw new CredentialRefused(CREDENTIAL_REFUSED);
  if (answer.status !== 200) throw new UpstreamAnswerError(`the API server answered HTTP ${answer.status}`);
  if (typeof answer.body !== 'object' || answer.body === null) throw new UpstreamAnswerError('the /version answer is not JSON');
  const version = (answer.body as { gitVersion?: unknown }).gitVersion;
  return typeof version === 'string' && version.length <= 128 ? version : undefined;
}

/** The API server answered 401 to the proxy's credential. */
class CredentialRefused extends UpstreamAnswerError {}
