/**
 * Configuration of `kubegate agent`, the cluster agent that dials out to the proxy. Same
 * pipeline as the other processes: file < environment < flags → zod → frozen.
 *
 * Defaults fit the import manifest: in a pod the API server is the one named by
 * KUBERNETES_SERVICE_HOST/PORT, verified against the service account CA and reached with the
 * service account token (re-read when the kubelet rotates it); the credential lives in the
 * Secret `kubegate-agent` of the pod's namespace. Outside a cluster (or in tests) the API
 * server, its CA and token file, and a credential directory are given explicitly.
 *
 * Probes and metrics follow the proxy's policy: `healthListen` (the pod IP, for the kubelet)
 * answers `/healthz` and `/readyz` to anyone, but `/metrics` only with
 * `metrics.bearerTokenFile` set and to a scrape presenting that token; metrics otherwise live
 * on `metrics.listen`, loopback by default.
 */
import { hostname } from 'node:os';
import * as z from 'zod';
import { filePath, listenAddress, logLevel, metricsListenAddress } from './fields.js';
import type { LogLevel, MetricsConfig } from './fields.js';
import { collectOverrides, layerConfig, readConfigFile } from './source.js';
import type { ConfigEnvironment, ConfigOverride, LoadConfigOptions, OverrideSpec } from './source.js';
import { deepFreeze, parseLayeredConfig } from './validate.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface AgentConfig {
  /** `https://…` of the kubegate proxy. */
  readonly proxyUrl: string;
  /** PEM CA of the proxy; undefined → the system roots. */
  readonly proxyCaFile: string | undefined;
  /** The cluster ID this agent serves (as registered in the proxy). */
  readonly clusterId: string;
  /** This agent instance's ID (the pod name). */
  readonly agentId: string;
  readonly credential:
    | { readonly kind: 'secret'; readonly namespace: string; readonly name: string }
    | { readonly kind: 'directory'; readonly directory: string };
  readonly apiServer: {
    /** `https://host:port` of this cluster's API server. */
    readonly url: string;
    readonly caFile: string;
    readonly tokenFile: string;
    /** TLS server name to verify; default the URL's host. */
    readonly serverName: string;
  };
  /**
   * Liveness (`/healthz`) and readiness (`/readyz`: a tunnel is up) over plain HTTP for the
   * kubelet; `/metrics` there only with `metrics.bearerTokenFile` (and that token).
   */
  readonly healthListen: string;
  /** `/metrics`: the separate listener (loopback by default) and the scrape token. */
  readonly metrics: MetricsConfig;
  readonly log: { readonly level: LogLevel };
}

export interface AgentConfigFlags {
  readonly proxyUrl?: string | undefined;
  readonly proxyCaFile?: string | undefined;
  readonly cluster?: string | undefined;
  readonly agentId?: string | undefined;
  readonly credentialDir?: string | undefined;
  readonly credentialSecret?: string | undefined;
  readonly namespace?: string | undefined;
  readonly apiServer?: string | undefined;
  readonly apiCaFile?: string | undefined;
  readonly apiTokenFile?: string | undefined;
  readonly apiServerName?: string | undefined;
  readonly healthListen?: string | undefined;
  readonly metricsListen?: string | undefined;
  readonly metricsBearerTokenFile?: string | undefined;
  readonly logLevel?: string | undefined;
}

const dnsLabel = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { error: 'must be a DNS label (lower-case letters, digits, -)' });
const httpsUrl = z
  .string()
  .refine((text) => URL.canParse(text) && new URL(text).protocol === 'https:', { error: 'must be an https:// URL' })
  .refine((text) => !URL.canParse(text) || (new URL(text).username === '' && new URL(text).search === ''), { error: 'must not carry credentials or a query' });

const agentSchema = z.strictObject({
  proxyUrl: httpsUrl,
  proxyCaFile: filePath.optional(),
  clusterId: dnsLabel,
  agentId: z.string().regex(/^[A-Za-z0-9._-]{1,253}$/, { error: 'must be letters, digits, ., _ or - (at most 253)' }),
  credential: z
    .strictObject({
      directory: filePath.optional(),
      secret: dnsLabel.default('kubegate-agent'),
      namespace: dnsLabel.optional(),
    })
    .prefault({}),
  apiServer: z
    .strictObject({
      url: httpsUrl.optional(),
      caFile: filePath.default(`${SERVICE_ACCOUNT_DIR}/ca.crt`),
      tokenFile: filePath.default(`${SERVICE_ACCOUNT_DIR}/token`),
      serverName: z.string().min(1).max(253).optional(),
    })
    .prefault({}),
  healthListen: listenAddress('0.0.0.0:8081'),
  metrics: z.strictObject({ listen: metricsListenAddress('127.0.0.1:9464'), bearerTokenFile: filePath.optional() }).prefault({}),
  log: z.strictObject({ level: logLevel }).prefault({}),
});

const AGENT_OVERRIDES: readonly OverrideSpec[] = [
  { path: ['proxyUrl'], env: 'KUBEGATE_PROXY_URL', flag: 'proxyUrl' },
  { path: ['proxyCaFile'], env: 'KUBEGATE_PROXY_CA_FILE', flag: 'proxyCaFile' },
  { path: ['clusterId'], env: 'KUBEGATE_CLUSTER_ID', flag: 'cluster' },
  { path: ['agentId'], env: 'KUBEGATE_AGENT_ID', flag: 'agentId' },
  { path: ['credential', 'directory'], env: 'KUBEGATE_CREDENTIAL_DIR', flag: 'credentialDir' },
  { path: ['credential', 'secret'], env: 'KUBEGATE_CREDENTIAL_SECRET', flag: 'credentialSecret' },
  { path: ['credential', 'namespace'], env: 'KUBEGATE_NAMESPACE', flag: 'namespace' },
  { path: ['apiServer', 'url'], env: 'KUBEGATE_API_SERVER', flag: 'apiServer' },
  { path: ['apiServer', 'caFile'], env: 'KUBEGATE_API_CA_FILE', flag: 'apiCaFile' },
  { path: ['apiServer', 'tokenFile'], env: 'KUBEGATE_API_TOKEN_FILE', flag: 'apiTokenFile' },
  { path: ['apiServer', 'serverName'], env: 'KUBEGATE_API_SERVER_NAME', flag: 'apiServerName' },
  { path: ['healthListen'], env: 'KUBEGATE_AGENT_HEALTH_LISTEN', flag: 'healthListen' },
  { path: ['metrics', 'listen'], env: 'KUBEGATE_METRICS_LISTEN', flag: 'metricsListen' },
  { path: ['metrics', 'bearerTokenFile'], env: 'KUBEGATE_METRICS_BEARER_TOKEN_FILE', flag: 'metricsBearerTokenFile' },
  { path: ['log', 'level'], env: 'KUBEGATE_LOG_LEVEL', flag: 'logLevel' },
];

/**
 * Loads, validates and freezes the agent configuration. Throws CONFIG_UNREADABLE or
 * CONFIG_INVALID (every problem at once, each with its field).
 */
export function loadAgentConfig(options: LoadConfigOptions<AgentConfigFlags> = {}): AgentConfig {
  const env = options.env ?? process.env;
  const file = options.file === undefined ? undefined : readConfigFile(options.file);
  const overrides = collectOverrides(AGENT_OVERRIDES, env, options.flags ?? {});
  const layered = layerConfig(file, [...inClusterDefaults(env), ...overrides]);
  const input = parseLayeredConfig(agentSchema, layered, (valid) => [
    ...(valid.apiServer !== undefined && valid.apiServer.url === undefined
      ? [{ path: ['apiServer', 'url'], problem: 'is required outside a cluster (KUBERNETES_SERVICE_HOST is not set)' }]
      : []),
    ...(valid.metrics?.listen !== undefined && valid.metrics.listen === valid.healthListen && !valid.healthListen.endsWith(':0')
      ? [{ path: ['metrics', 'listen'], problem: 'must differ from healthListen (metrics are not served anonymously beside the probes)' }]
      : []),
  ]);
  const url = new URL(input.apiServer.url as string);
  const namespace = input.credential.namespace ?? 'kubegate-system';
  return deepFreeze({
    proxyUrl: input.proxyUrl.replace(/\/+$/, ''),
    proxyCaFile: input.proxyCaFile,
    clusterId: input.clusterId,
    agentId: input.agentId,
    credential:
      input.credential.directory !== undefined
        ? { kind: 'directory' as const, directory: input.credential.directory }
        : { kind: 'secret' as const, namespace, name: input.credential.secret },
    apiServer: {
      url: url.origin,
      caFile: input.apiServer.caFile,
      tokenFile: input.apiServer.tokenFile,
      serverName: input.apiServer.serverName ?? (url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname),
    },
    healthListen: input.healthListen,
    metrics: { listen: input.metrics.listen, bearerTokenFile: input.metrics.bearerTokenFile },
    log: { level: input.log.level },
  });
}

/**
 * Defaults that come from the pod: the API server from KUBERNETES_SERVICE_HOST/PORT, the
 * namespace from POD_NAMESPACE, the agent ID from POD_NAME (else the host name). They sit
 * below the file, the other variables and the flags.
 */
function inClusterDefaults(env: ConfigEnvironment): ConfigOverride[] {
  const defaults: ConfigOverride[] = [];
  const host = env['KUBERNETES_SERVICE_HOST'];
  if (host !== undefined && host !== '') {
    const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
    defaults.push({ path: ['apiServer', 'url'], value: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, origin: 'KUBERNETES_SERVICE_HOST' });
    defaults.push({ path: ['apiServer', 'serverName'], value: 'kubernetes.default.svc', origin: 'KUBERNETES_SERVICE_HOST' });
  }
  const namespace = env['POD_NAMESPACE'];
  if (namespace !== undefined && namespace !== '') defaults.push({ path: ['credential', 'namespace'], value: namespace, origin: 'POD_NAMESPACE' });
  defaults.push({ path: ['agentId'], value: env['POD_NAME'] ?? hostname(), origin: env['POD_NAME'] === undefined ? 'host name' : 'POD_NAME' });
  return defaults;
}
