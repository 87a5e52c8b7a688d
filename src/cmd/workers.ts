/**
 * `kubegate proxy --workers N`: N worker processes (node:cluster) share the listening socket.
 *
 * Design note. The primary takes the data dir lock (held for every worker) and opens the
 * proxy's data once (proxy-data.ts: data dir, secret key file, store migrations, the
 * bootstrap admin, whose generated password is written to one file, TLS material), because
 * those first-start steps must not race, and only then forks the workers, which run the
 * ordinary proxy (startProxy) and find everything in place. The primary serves no request itself; it
 *   - relays store changes: SQLite announces a write only inside the process that made it,
 *     so each worker's store is decorated with relayChanges (src/store/relay.ts); the
 *     primary broadcasts a worker's changes to the others and answers once every live
 *     worker has delivered them, so a revocation answered by one worker is already in
 *     force in all of them (PostgreSQL fans out by itself and is left alone);
 *   - aggregates /metrics: its prom-client AggregatorRegistry collects every worker's
 *     registry and sums them. The primary itself serves the separate metrics listener
 *     (`metrics.listen`; the workers open none); a worker scraped on the main listener
 *     (with `metrics.bearerTokenFile`) asks the primary for the same sum;
 *   - restarts a worker that dies after it was serving (a bounded number of times), and
 *     stops everything when one fails before it ever served (a bad listen address, say);
 *   - on SIGTERM/SIGINT, sends SIGTERM to every worker (each stops gracefully: ends its
 *     watches cleanly, finishes in-flight requests) and exits once they have exited;
 *   - on SIGHUP, sends SIGHUP to every worker, which reopens its audit file.
 * Each worker is a replica of its own for agent tunnels: a tunnel lands on one worker, and
 * the others reach it over a peer link to that worker's own peer listener (the shared
 * socket would hand the link to any worker).
 * Caches stay per process; the login failure rate limit is shared, since its counters are in
 * the store. The background jobs (sync, cluster probes, group refresh, provider health) run
 * in the one worker that holds the store's background job lease, as among replicas (each
 * worker tries for it like a replica), and what they find reaches the others as store job
 * reports through the same relay.
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { mkdirSync } from 'node:fs';
import { AggregatorRegistry } from 'prom-client';
import type { PrometheusContentType, Registry } from 'prom-client';
import type { ProxyConfig } from '../config/proxy.js';
import { KubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import { installReopenHandler, installSignalHandlers, startMetricsServer } from '../server.js';
import { readSecretFile } from '../config/secret-file.js';
import { relayChanges } from '../store/relay.js';
import type { ChangeChannel } from '../store/relay.js';
import { lockProxyDataDir, openProxyData } from './proxy-data.js';
import type { Store, StoreChange } from '../store/store.js';

export interface RunWorkersDeps {
  readonly logger: Logger;
  /**
   * startProxy of ./proxy.js, passed in (with the little of its types a worker needs) so
   * that the two modules do not import each other.
   */
  readonly startProxy: (
    config: ProxyConfig,
    deps: { readonly logger: Logger; readonly registry: Registry; readonly dataDirLockedByPrimary: true; readonly ownPeerListener: true; readonly wrapStore: (store: Store) => Store },
  ) => Promise<{ stop(): Promise<void>; reopenFiles(): void }>;
}

export interface WorkerTimings {
  /** How long a publisher waits for the other workers to deliver its changes. Default 2000. */
  readonly relayTimeoutMs?: number;
  /** How long the primary waits for workers to stop before killing them. Default 30000. */
  readonly stopTimeoutMs?: number;
}

/** Messages between the primary and the workers (all carry `kubegate`). */
type RelayMessage =
  | { readonly kubegate: 'changes'; readonly id: number; readonly changes: readonly StoreChange[] }
  | { readonly kubegate: 'delivered'; readonly id: number }
  | { readonly kubegate: 'published'; readonly id: number }
  | { readonly kubegate: 'metrics'; readonly id: number; readonly text?: string; readonly error?: string };

const DEFAULT_RELAY_TIMEOUT_MS = 2000;
const DEFAULT_STOP_TIMEOUT_MS = 30_000;
const METRICS_TIMEOUT_MS = 10_000;
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 60_000;

/** Runs the primary (in the first process) or a worker (in a forked one). */
export async function runProxyWorkers(config: ProxyConfig, deps: RunWorkersDeps, timings: WorkerTimings = {}): Promise<void> {
  if (cluster.isPrimary) await runPrimary(config, deps.logger, timings);
  else await runWorker(config, deps, timings);
}

// --- primary -------------------------------------------------------------------------------

interface PendingRelay {
  readonly origin: Worker;
  readonly originId: number;
  readonly waiting: Set<number>;
  readonly timer: NodeJS.Timeout;
}

async function runPrimary(config: ProxyConfig, logger: Logger, timings: WorkerTimings): Promise<void> {
  const relayTimeoutMs = timings.relayTimeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS;
  const stopTimeoutMs = timings.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Held for the primary's lifetime, for every worker (they start with dataDirLockedByPrimary).
  const dataDirLock = lockProxyDataDir(config);
  try {
    // The first-start steps, once, before any worker exists to race on them.
    await (await openProxyData(config, logger, { dataDirLockedByPrimary: true })).store.close();
  } catch (error) {
    dataDirLock?.release();
    throw error;
  }

  const aggregator = new AggregatorRegistry<PrometheusContentType>();
  const pending = new Map<number, PendingRelay>();
  const serving = new Set<number>();
  const restarts: number[] = [];
  let nextRelayId = 1;
  let stopping = false;
  let announced = false;

  function live(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && worker.isConnected());
  }

  function settle(id: number): void {
    const entry = pending.get(id);
    if (entry === undefined) return;
    pending.delete(id);
    clearTimeout(entry.timer);
    if (entry.origin.isConnected()) entry.origin.send({ kubegate: 'published', id: entry.originId } satisfies RelayMessage);
  }

  function broadcast(origin: Worker, originId: number, changes: readonly StoreChange[]): void {
    const id = nextRelayId++;
    const others = live().filter((worker) => worker.id !== origin.id);
    const timer = setTimeout(() => {
      logger.warn({ workers: [...(pending.get(id)?.waiting ?? [])] }, 'workers did not confirm a store change in time');
      settle(id);
    }, relayTimeoutMs);
    pending.set(id, { origin, originId, waiting: new Set(others.map((worker) => worker.id)), timer });
    for (const worker of others) worker.send({ kubegate: 'changes', id, changes } satisfies RelayMessage);
    if (others.length === 0) settle(id);
  }

  function forgetWorker(worker: Worker): void {
    for (const [id, entry] of pending) {
      entry.waiting.delete(worker.id);
      if (entry.origin.id === worker.id) {
        clearTimeout(entry.timer);
        pending.delete(id);
      } else if (entry.waiting.size === 0) settle(id);
    }
  }

  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isRelayMessage(message)) return;
    switch (message.kubegate) {
      case 'changes':
        broadcast(worker, message.id, message.changes);
        break;
      case 'delivered': {
        const entry = pending.get(message.id);
        entry?.waiting.delete(worker.id);
        if (entry !== undefined && entry.waiting.size === 0) settle(message.id);
        break;
      }
      case 'metrics':
        aggregator.clusterMetrics().then(
          (text) => worker.isConnected() && worker.send({ kubegate: 'metrics', id: message.id, text } satisfies RelayMessage),
          (error: unknown) =>
            worker.isConnected() &&
            worker.send({ kubegate: 'metrics', id: message.id, error: error instanceof Error ? error.message : String(error) } satisfies RelayMessage),
        );
        break;
      default:
        break;
    }
  });

  const allServing = new Promise<void>((resolve, reject) => {
    cluster.on('listening', (worker: Worker, address) => {
      serving.add(worker.id);
      if (!announced && serving.size >= config.workers) {
        announced = true;
        logger.info(
          { workers: live().map((w) => w.process.pid), address: `${address.address ?? ''}:${address.port}`, metricsUrl: metricsServer?.url },
          'kubegate proxy workers are serving',
        );
        resolve();
      }
    });
    cluster.on('exit', (worker: Worker, code: number | null, signal: string | null) => {
      forgetWorker(worker);
      const wasServing = serving.delete(worker.id);
      if (stopping) return;
      logger.error({ pid: worker.process.pid, code, signal }, 'worker process exited');
      const now = Date.now();
      while (restarts.length > 0 && (restarts[0] ?? 0) < now - RESTART_WINDOW_MS) restarts.shift();
      if (!wasServing || restarts.length >= MAX_RESTARTS) {
        const error = new KubegateError('INTERNAL', 'a worker process failed; stopping every worker');
        void stopEverything().then(() => {
          process.exitCode = 1;
        });
        reject(error);
        return;
      }
      restarts.push(now);
      cluster.fork();
    });
  });

  async function stopAll(): Promise<void> {
    stopping = true;
    const workers = live();
    const exited = workers.map((worker) => new Promise<void>((resolve) => worker.process.once('exit', () => resolve())));
    for (const worker of workers) worker.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const worker of live()) worker.process.kill('SIGKILL');
    }, stopTimeoutMs);
    await Promise.all(exited);
    clearTimeout(timer);
    for (const entry of pending.values()) clearTimeout(entry.timer);
    pending.clear();
    dataDirLock?.release();
  }

  const metricsServer =
    config.metrics.listen === undefined
      ? undefined
      : await startMetricsServer({
          listen: config.metrics.listen,
          registry: { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
          metricsBearerToken: config.metrics.bearerTokenFile === undefined ? undefined : readSecretFile(config.metrics.bearerTokenFile, 'metrics.bearerTokenFile'),
          logger,
        });
  async function stopEverything(): Promise<void> {
    metricsServer?.markShuttingDown();
    await stopAll();
    await metricsServer?.close();
  }

  installSignalHandlers(stopEverything, logger);
  installReopenHandler(() => {
    for (const worker of live()) worker.process.kill('SIGHUP');
  }, logger);
  for (let i = 0; i < config.workers; i++) cluster.fork();
  await allServing;
}

// --- worker --------------------------------------------------------------------------------

async function runWorker(config: ProxyConfig, deps: RunWorkersDeps, timings: WorkerTimings): Promise<void> {
  const { logger } = deps;
  const channel = createWorkerChannel(timings.relayTimeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS);
  const registry = new ClusterWideRegistry(channel.requestMetrics);
  AggregatorRegistry.setRegistries([registry]);
  const proxy = await deps.startProxy(
    // The primary serves the metrics listener for all of them.
    { ...config, workers: 1, metrics: { ...config.metrics, listen: undefined } },
    {
      logger,
      registry,
      dataDirLockedByPrimary: true,
      ownPeerListener: true,
      wrapStore: (store) => relayChanges(store, channel, { onError: (error) => logger.warn({ err: error }, 'relaying a store change failed') }),
    },
  );
  // Ctrl-C reaches the whole process group; the primary turns it into one SIGTERM per
  // worker, so a worker ignores SIGINT itself (a second signal would skip the graceful stop).
  process.on('SIGINT', () => undefined);
  installSignalHandlers(
    async () => {
      await proxy.stop();
      channel.close();
    },
    logger,
    { signals: ['SIGTERM'] },
  );
  installReopenHandler(() => proxy.reopenFiles(), logger);
}

interface WorkerChannel extends ChangeChannel {
  requestMetrics(): Promise<string>;
  close(): void;
}

function createWorkerChannel(relayTimeoutMs: number): WorkerChannel {
  const waiting = new Map<number, (message: RelayMessage) => void>();
  const handlers = new Set<(changes: readonly StoreChange[]) => void>();
  let nextId = 1;

  const onMessage = (message: unknown): void => {
    if (!isRelayMessage(message)) return;
    if (message.kubegate === 'changes') {
      for (const handler of handlers) handler(message.changes);
      send({ kubegate: 'delivered', id: message.id });
      return;
    }
    waiting.get(message.id)?.(message);
  };
  process.on('message', onMessage);

  function send(message: RelayMessage): void {
    if (process.connected) process.send?.(message);
  }

  /** Sends a request and waits for the answer with the same id (undefined on timeout). */
  function ask(message: RelayMessage, timeoutMs: number): Promise<RelayMessage | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(message.id);
        resolve(undefined);
      }, timeoutMs);
      waiting.set(message.id, (answer) => {
        clearTimeout(timer);
        waiting.delete(message.id);
        resolve(answer);
      });
      send(message);
    });
  }

  return {
    async publish(changes) {
      const answer = await ask({ kubegate: 'changes', id: nextId++, changes }, relayTimeoutMs + 500);
      if (answer === undefined) throw new KubegateError('INTERNAL', 'the primary process did not confirm a store change');
    },
    receive(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async requestMetrics() {
      const answer = await ask({ kubegate: 'metrics', id: nextId++ }, METRICS_TIMEOUT_MS);
      if (answer?.kubegate !== 'metrics' || answer.text === undefined) {
        throw new KubegateError('INTERNAL', 'the primary process did not answer with the metrics of every worker');
      }
      return answer.text;
    },
    close() {
      process.off('message', onMessage);
      handlers.clear();
    },
  };
}

/**
 * A worker's registry: its own metrics are registered here and handed to the primary for
 * aggregation (getMetricsAsJSON), while `metrics()` — what /metrics serves — answers the
 * sum over every worker.
 */
class ClusterWideRegistry extends AggregatorRegistry<PrometheusContentType> {
  readonly #requestMetrics: () => Promise<string>;
  constructor(requestMetrics: () => Promise<string>) {
    super();
    this.#requestMetrics = requestMetrics;
  }
  override metrics(): Promise<string> {
    return this.#requestMetrics();
  }
}

function isRelayMessage(message: unknown): message is RelayMessage {
  return typeof message === 'object' && message !== null && typeof (message as { kubegate?: unknown }).kubegate === 'string';
}
