/**
 * `kubegate agent`: the cluster agent, wired in one place.
 *
 * config → logger → the API server target (address, service account CA and token files) →
 * credential store (the `kubegate-agent` Secret, or a directory outside a cluster) → the
 * dial loop (agent/agent.ts) → a plain HTTP health server: `/healthz` (alive), `/readyz`
 * (a tunnel is up), `/metrics`. The agent accepts no other connection.
 */
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { startAgent, type RunningAgent } from '../agent/agent.js';
import { createApiServerTarget } from '../agent/api-server.js';
import { directoryCredentialStore, secretCredentialStore, type CredentialStore } from '../agent/credentials.js';
import { loadAgentConfig, type AgentConfig, type AgentConfigFlags } from '../config/agent.js';
import type { LoadConfigOptions } from '../config/source.js';
import { KubegateError } from '../errors.js';
import { createKubeClient } from '../kube/client.js';
import { createLogger, type Logger } from '../log.js';
import { createAgentMetrics } from '../metrics.js';
import { createHealthHandler, installSignalHandlers, startServer } from '../server.js';
import { KUBEGATE_VERSION } from '../version.js';

export interface RunningAgentProcess {
  readonly agent: RunningAgent;
  /** `http://host:port` of the health server. */
  readonly healthUrl: string;
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
  const health = createHealthHandler({
    registry,
    ready: async () => {
      if (!running.connected()) throw new KubegateError('NOT_READY', 'no tunnel to the proxy yet');
    },
  });
  let server;
  try {
    server = await startServer({
      listen: config.healthListen,
      logger,
      handler(req, res) {
        if (!health(req, res)) {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found\n');
        }
      },
    });
  } catch (error) {
    await running.stop();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    agent: running,
    healthUrl: server.url,
    stop() {
      stopping ??= (async () => {
        health.markShuttingDown();
        await running.stop();
        await server.close();
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
