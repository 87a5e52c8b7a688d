/**
 * `kubegate webhook`: the in-cluster TokenReview webhook (drop-in for Rancher's
 * kube-api-auth), wired in one place.
 *
 * config → logger → API server endpoint (kubeconfig, or in-cluster) → source (informers on
 * ClusterAuthTokens, ClusterUserAttributes, Secrets of the namespace) → verifier → one cache
 * of answers by request body (keyed SHA-256 digests as keys; a token's answers dropped when its
 * objects change, a user's when its attribute changes) → handler →
 * server (plain HTTP on loopback by default, HTTPS with --tls-cert/--tls-key). The server listens at once; `/readyz` turns ready, and reviews are
 * decided, only after every resource was listed (before that a review answers an uncached
 * error, so the API server asks again).
 */
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { loadWebhookConfig } from '../config/webhook.js';
import type { WebhookConfig, WebhookConfigFlags } from '../config/webhook.js';
import type { LoadConfigOptions } from '../config/source.js';
import { KubegateError } from '../errors.js';
import { createKubeClient } from '../kube/client.js';
import type { KubeEndpoint } from '../kube/client.js';
import { loadKubeEndpoint } from '../kube/endpoint.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { createWebhookMetrics } from '../metrics.js';
import { DEFAULT_BODY_TIMEOUT_MS, installReopenHandler, installSignalHandlers, startMetricsServer, startServer } from '../server.js';
import type { MetricsServer } from '../server.js';
import { readSecretFile } from '../config/secret-file.js';
import { createAnswerCache } from '../webhook/answers.js';
import { createWebhookHandler } from '../webhook/app.js';
import { createKubernetesSource } from '../webhook/sources/kubernetes.js';
import type { KubernetesSource } from '../webhook/sources/kubernetes.js';
import { createWebhookVerifier } from '../webhook/verify.js';

export interface RunningWebhook {
  /** `http(s)://host:port` the webhook is bound to. */
  readonly url: string;
  readonly registry: Registry;
  /** `http://host:port` of the separate metrics listener, or undefined without one. */
  readonly metricsUrl: string | undefined;
  readonly source: KubernetesSource;
  stop(): Promise<void>;
}

export interface StartWebhookDeps {
  readonly logger: Logger;
  /** The API server to read from; default: from config.kubeconfig (or in-cluster). */
  readonly endpoint?: KubeEndpoint;
  /** Informer tuning, for tests. */
  readonly informer?: { readonly minWatchTimeoutSeconds?: number; readonly initialBackoffMs?: number };
  /** How long a TokenReview body may take to arrive; default DEFAULT_BODY_TIMEOUT_MS (tests shorten it). */
  readonly bodyTimeoutMs?: number;
}

export async function runWebhook(options: LoadConfigOptions<WebhookConfigFlags>): Promise<void> {
  const config = loadWebhookConfig(options);
  const logger = createLogger({ level: config.log.level, name: 'webhook' });
  const webhook = await startWebhook(config, { logger });
  installSignalHandlers(() => webhook.stop(), logger);
  // The webhook writes no file of its own: SIGHUP is only acknowledged, never fatal.
  installReopenHandler(() => undefined, logger);
}

export async function startWebhook(config: WebhookConfig, deps: StartWebhookDeps): Promise<RunningWebhook> {
  const { logger } = deps;
  // The kubeconfig's path (absolute once loaded) is logged; the log censor keeps a path, never contents.
  logger.info(
    { listen: config.listen, namespace: config.namespace, kubeconfig: config.kubeconfig, inCluster: config.kubeconfig === undefined, tls: config.tls.certFile !== undefined },
    'starting kubegate webhook',
  );
  const tls = readTls(config);
  const endpoint = deps.endpoint ?? (await loadKubeEndpoint(config.kubeconfig));
  const client = createKubeClient(endpoint);
  const registry = new Registry();
  // Read at scrape time: the cache and the handler are created below.
  const metrics = createWebhookMetrics(registry, {
    answerCache: () => answers.stats(),
    reviews: () => handler.reviewCounts(),
    stamps: () => source?.stampStats(),
  });

  // The cache is created before the source so that the source's change callbacks can reach it.
  let source: KubernetesSource | undefined;
  const verifier = createWebhookVerifier({
    source: {
      get ready() {
        return source?.ready ?? false;
      },
      clusterAuthToken: (name) => source?.clusterAuthToken(name),
      clusterUserAttribute: (name) => source?.clusterUserAttribute(name),
      secretHash: (name) => source?.secretHash(name),
    },
  });
  // Answers by request body, kept as long as a verification may be reused and retired per token and user (webhook/answers.ts).
  const answers = createAnswerCache({
    successTtlMs: config.cache.successTtlSeconds * 1000,
    failureTtlMs: config.cache.failureTtlSeconds * 1000,
    maxEntries: config.cache.maxEntries,
  });
  source = createKubernetesSource({
    client,
    namespace: config.namespace,
    logger,
    metrics,
    stamps: config.stamps,
    onTokenChanged: (name) => answers.invalidateToken(name),
    onUserChanged: (userName, tokenNames) => {
      answers.invalidateUser(userName);
      // Rejections are kept by token name: drop those of the user's tokens too.
      for (const name of tokenNames) answers.invalidateToken(name);
    },
    ...(deps.informer ?? {}),
  });
  source.start();
  void source.synced().then(() => logger.info(source?.counts() ?? {}, 'webhook objects listed; ready'));

  // /metrics: on the webhook's own listener (loopback by default), or only on a listener
  // of its own when `metrics.listen` is set; with the token file, only for that token.
  const metricsBearerToken =
    config.metrics.bearerTokenFile === undefined ? undefined : readSecretFile(config.metrics.bearerTokenFile, 'metrics.bearerTokenFile');
  const handler = createWebhookHandler({
    authenticator: verifier,
    source,
    metrics,
    logger,
    metricsBearerToken,
    audiences: config.audiences,
    answers,
    ...(config.metrics.listen === undefined ? { registry } : {}),
  });
  let server;
  let metricsServer: MetricsServer | undefined;
  try {
    if (config.metrics.listen !== undefined) metricsServer = await startMetricsServer({ listen: config.metrics.listen, registry, metricsBearerToken, logger });
    const bodyTimeoutMs = deps.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
    server = await startServer({ listen: config.listen, setting: 'listen', tls, logger, handler, bodyTimeoutMs: () => bodyTimeoutMs });
  } catch (error) {
    await metricsServer?.close();
    source.stop();
    throw error;
  }
  logger.info({ url: server.url, metricsUrl: metricsServer?.url }, 'kubegate webhook is serving');

  let stopping: Promise<void> | undefined;
  const running = source;
  return {
    url: server.url,
    registry,
    metricsUrl: metricsServer?.url,
    source: running,
    stop() {
      stopping ??= (async () => {
        handler.markShuttingDown();
        metricsServer?.markShuttingDown();
        await server.close();
        await metricsServer?.close();
        running.stop();
        endpoint.agent.destroy();
      })();
      return stopping;
    },
  };
}

function readTls(config: WebhookConfig): { cert: string; key: string } | undefined {
  const { certFile, keyFile } = config.tls;
  if (certFile === undefined || keyFile === undefined) return undefined;
  try {
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', 'tls: cannot read the certificate or key file', { field: 'tls.certFile', cause });
  }
}
