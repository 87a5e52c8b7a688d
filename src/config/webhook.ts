/**
 * Configuration of `kubegate webhook`, the in-cluster TokenReview webhook (a drop-in for
 * Rancher's kube-api-auth, hence its defaults: `127.0.0.1:6440`, namespace `cattle-system`,
 * in-cluster credentials when no kubeconfig is given). Same pipeline as the proxy's:
 * file < environment < flags → zod → frozen, durations resolved to seconds.
 */
import * as z from 'zod';
import { authCacheSchema, checkBothOrNeither, filePath, listenAddress, logLevel, metricsListenAddress, tlsFiles, wholeNumber } from './fields.js';
import type { AuthCacheConfig, LogLevel, MetricsConfig } from './fields.js';
import { collectOverrides, layerConfig, readConfigFile } from './source.js';
import type { LoadConfigOptions, OverrideSpec } from './source.js';
import { deepFreeze, parseLayeredConfig } from './validate.js';

export interface WebhookConfig {
  /** `HOST:PORT`. */
  readonly listen: string;
  /** Absolute path; undefined → in-cluster service account credentials. */
  readonly kubeconfig: string | undefined;
  /** Where ClusterAuthTokens, ClusterUserAttributes and their Secrets live. */
  readonly namespace: string;
  /** Both undefined → plain HTTP, as kube-api-auth serves. */
  readonly tls: { readonly certFile: string | undefined; readonly keyFile: string | undefined };
  readonly cache: AuthCacheConfig;
  /**
   * Audiences kubegate tokens are valid for (TokenReview `spec.audiences`); empty: none of
   * their own, so the API server's default audience applies (no `status.audiences` is sent).
   */
  readonly audiences: readonly string[];
  /**
   * `/metrics`: on the webhook's own listener (loopback by default, as kube-api-auth) when
   * `listen` is none (the default), else only on that separate listener; with
   * `bearerTokenFile`, only for scrapes presenting that token.
   */
  readonly metrics: MetricsConfig;
  /**
   * The `lastUsedAt` stamps' budget: at most `perSecond` merge PATCHes per second on average
   * (0: never stamp), the rest waiting, at most `maxQueued` tokens; uses past that are dropped.
   */
  readonly stamps: { readonly perSecond: number; readonly maxQueued: number };
  readonly log: { readonly level: LogLevel };
}

/** The flags `kubegate webhook` accepts for settings (commander's camelCase keys). */
export interface WebhookConfigFlags {
  readonly listen?: string | undefined;
  readonly kubeconfig?: string | undefined;
  readonly namespace?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly logLevel?: string | undefined;
}

const webhookSchema = z.strictObject({
  listen: listenAddress('127.0.0.1:6440'),
  kubeconfig: filePath.optional(),
  namespace: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { error: 'must be a Kubernetes namespace name (a DNS label)' })
    .default('cattle-system'),
  tls: z.strictObject(tlsFiles).superRefine(checkBothOrNeither).prefault({}),
  cache: authCacheSchema({ successTtl: '10s', failureTtl: '2s' }),
  audiences: z
    .array(z.string().min(1).max(512).regex(/^[^\s,]+$/, { error: 'must not contain spaces or commas' }))
    .max(32)
    .default([]),
  metrics: z.strictObject({ listen: metricsListenAddress('none'), bearerTokenFile: filePath.optional() }).prefault({}),
  stamps: z.strictObject({ perSecond: wholeNumber(0, 10_000).default(20), maxQueued: wholeNumber(1, 1_000_000).default(10_000) }).prefault({}),
  log: z.strictObject({ level: logLevel }).prefault({}),
});

const WEBHOOK_OVERRIDES: readonly OverrideSpec[] = [
  { path: ['listen'], env: 'KUBEGATE_WEBHOOK_LISTEN', flag: 'listen' },
  { path: ['kubeconfig'], env: 'KUBEGATE_KUBECONFIG', flag: 'kubeconfig' },
  { path: ['namespace'], env: 'KUBEGATE_NAMESPACE', flag: 'namespace' },
  { path: ['tls', 'certFile'], env: 'KUBEGATE_WEBHOOK_TLS_CERT', flag: 'tlsCert' },
  { path: ['tls', 'keyFile'], env: 'KUBEGATE_WEBHOOK_TLS_KEY', flag: 'tlsKey' },
  { path: ['log', 'level'], env: 'KUBEGATE_LOG_LEVEL', flag: 'logLevel' },
  { path: ['audiences'], env: 'KUBEGATE_WEBHOOK_AUDIENCES', toValue: (text) => text.split(',').map((audience) => audience.trim()).filter((audience) => audience !== '') },
];

/**
 * Loads, validates and freezes the webhook configuration. Throws CONFIG_UNREADABLE or
 * CONFIG_INVALID (every problem at once); TypeError for an unknown key in `flags`.
 * An empty `--kubeconfig ""` means in-cluster, as with kube-api-auth.
 */
export function loadWebhookConfig(options: LoadConfigOptions<WebhookConfigFlags> = {}): WebhookConfig {
  const file = options.file === undefined ? undefined : readConfigFile(options.file);
  const flags = options.flags?.kubeconfig === '' ? { ...options.flags, kubeconfig: undefined } : (options.flags ?? {});
  const layered = layerConfig(file, collectOverrides(WEBHOOK_OVERRIDES, options.env ?? process.env, flags));
  const input = parseLayeredConfig(webhookSchema, layered);
  return deepFreeze({
    listen: input.listen,
    kubeconfig: input.kubeconfig,
    namespace: input.namespace,
    tls: { certFile: input.tls.certFile, keyFile: input.tls.keyFile },
    cache: {
      successTtlSeconds: input.cache.successTtl,
      failureTtlSeconds: input.cache.failureTtl,
      maxEntries: input.cache.maxEntries,
    },
    audiences: [...new Set(input.audiences)],
    metrics: { listen: input.metrics.listen, bearerTokenFile: input.metrics.bearerTokenFile },
    stamps: { perSecond: input.stamps.perSecond, maxQueued: input.stamps.maxQueued },
    log: { level: input.log.level },
  });
}
