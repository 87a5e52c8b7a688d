/**
 * `kubegate agent`: the cluster agent, wired in one place.
 *
 * config → logger → the API server target (address, service account CA and token files) →
 * credential store (the `kubegate-agent` Secret, or a directory outside a cluster) → the
 * dial loop (agent/agent.ts) → a plain HTTP health server for the kubelet: `/healthz`
 * (alive), `/readyz` (a tunnel is up), and `/metrics` only with `metrics.bearerTokenFile`
 * (the scrape must present that token) → the separate metrics listener `metrics.listen`
 * (loopback by default; `/metrics`, `/healthz`, `/readyz`), as the proxy does. The agent
 * accepts no other connection.
 */
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { startAgent, type RunningAgent } from '../agent/agent.js';
import { createApiServerTarget } from '../agent/api-server.js';
import { directoryCredentialStore, secretCredentialStore, type CredentialStore } from '../agent/credentials.js';
import { readSecretFile } from '../config/secret-file.js';
import { loadAgentConfig, type AgentConfig, type AgentConfigFlags } from '../config/agent.js';
import type { LoadConfigOptions } from '../config/source.js';
import { KubegateError } from '../errors.js';
import { createKubeClient } from '../kube/client.js';
import { createLogger, type Logger } from '../log.js';
import { createAgentMetrics } from '../metrics.js';
import { createHealthHandler, installSignalHandlers, startMetricsServer, startServer, type MetricsServer, type RunningServer } from '../server.js';
import { KUBEGATE_VERSION } from '../version.js';

export interface RunningAgentProcess {
  readonly agent: RunningAgent;
  /** `http://host:port` of the health server. */
  readonly healthUrl: string;
  /** `http://host:port` of the separate metrics listener, or undefined without one. */
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

export async function runAgent(options: LoadConfigOptions<AgentConfigFlags>): Promise<void> {
  const config = loadAgentConfig(options);
  const logger = createLogger({ level: config.log.level, name: 'agent' });
  const running = await startAgentProcess(config, { logger });
  installSignalHandlers(() => running.stop(), logger);
}

export async function startAgentProcess(config: AgentConfig, deps: { readonly logger: Logger; readonly backoff?: { initialMs?: number; maxMs?: number } }): Promise<RunningAgentProcess> {
  const { logger } = deps;
  logger.info(
    { proxy: config.proxyUrl, cluster: config.clusterId, agent: config.agentId, apiServer: config.apiServer.url, credential: config.credential.kind, version: KUBEGATE_VERSION },
    'starting kubegate agent',
  );
  const metricsBearerToken =
    config.metrics.bearerTokenFile === undefined ? undefined : readSecretFile(config.metrics.bearerTokenFile, 'metrics.bearerTokenFile');
  const apiServer = createApiServerTarget(config.apiServer);
  const credentials: CredentialStore =
    config.credential.kind === 'directory'
      ? directoryCredentialStore(config.credential.directory)
      : secretCredentialStore(createKubeClient(apiServer.endpoint), config.credential.namespace, config.credential.name);
  const registry = new Registry();
  let agent: RunningAgent | undefined;
  const metrics = createAgentMetrics(registry, { connected: () => agent?.connected() ?? false });
  agent = startAgent({
    proxyUrl: config.proxyUrl,
    proxyCaPem: readProxyCa(config),
    clusterId: config.clusterId,
    agentId: config.agentId,
    version: KUBEGATE_VERSION,
    apiServer,
    credentials,
    logger,
    metrics,
    ...(deps.backoff === undefined ? {} : { backoff: deps.backoff }),
  });
  const running = agent;
  const ready = async (): Promise<void> => {
    if (!running.connected()) throw new KubegateError('NOT_READY', 'no tunnel to the proxy yet');
  };
  // The probes' listener serves /metrics only to scrapes that present the configured token.
  const health = createHealthHandler({ ready, ...(metricsBearerToken === undefined ? {} : { registry, metricsBearerToken }) });
  let server: RunningServer | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    server = await startServer({
      listen: config.healthListen,
      setting: 'healthListen',
      logger: logger.child({ listener: 'health' }),
      handler(req, res) {
        if (!health(req, res)) {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found\n');
        }
      },
    });
    if (config.metrics.listen !== undefined) {
      metricsServer = await startMetricsServer({ listen: config.metrics.listen, registry, metricsBearerToken, ready, logger });
    }
  } catch (error) {
    await running.stop();
    await server?.close();
    throw error;
  }
  const healthServer = server;
  let stopping: Promise<void> | undefined;
  return {
    agent: running,
    healthUrl: healthServer.url,
    metricsUrl: metricsServer?.url,
    stop() {
      stopping ??= (async () => {
        health.markShuttingDown();
        metricsServer?.markShuttingDown();
        await running.stop();
        await Promise.all([healthServer.close(), metricsServer?.close()]);
      })();
      return stopping;
    },
  };
}

function readProxyCa(config: AgentConfig): string | undefined {
  if (config.proxyCaFile === undefined) return undefined;
  try {
    return readFileSync(config.proxyCaFile, 'utf8');
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', `proxyCaFile: cannot read ${config.proxyCaFile}`, { field: 'proxyCaFile', cause });
  }
}
