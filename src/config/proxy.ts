/**
 * Configuration of `kubegate proxy`: read (YAML file, environment, flags) → decode and apply
 * defaults (zod) → cross-field checks → deep freeze. Durations are written like `30d` and
 * resolved to seconds here (`tokens.kubeconfigTtlSeconds`), so no other part parses them.
 *
 * README.md, section "Configuration", documents every field; keep the two in step.
 */
import { KUBERNETES_USERNAME_FORMATS, RESERVED_PROVIDER_PREFIXES } from './identity.js';
import type { KubernetesUsernameFormat } from './identity.js';
import { join } from 'node:path';
import * as z from 'zod';
import { isKubegateError } from '../errors.js';
import { REDACTED } from '../log.js';
import { parseSecretKey } from '../store/secret-box.js';
import {
  authCacheSchema,
  checkBothOrNeither,
  durationSeconds,
  filePath,
  hostNameOrIp,
  listenAddress,
  logLevel,
  metricsListenAddress,
  numberFromText,
  tlsFiles,
  wholeNumber,
} from './fields.js';
import type { AuthCacheConfig, LogLevel, MetricsConfig } from './fields.js';
import { parseCidr } from './cidr.js';
import { formatHost, formatHostPort, parseListenAddress } from './listen.js';
import { collectOverrides, layerConfig, readConfigFile } from './source.js';
import type { LoadConfigOptions, OverrideSpec } from './source.js';
import { deepFreeze, parseLayeredConfig } from './validate.js';
import type { ConfigIssue } from './validate.js';

export interface SqliteStoreConfig {
  readonly type: 'sqlite';
  /** Absolute path of the database file. */
  readonly path: string;
}

export interface PostgresStoreConfig {
  readonly type: 'postgres';
  /** `postgres://…`; contains a password: never log it (see configForLog). */
  readonly url: string;
}

export interface ProviderConfig {
  readonly name: string;
  readonly type: string;
  readonly enabled: boolean;
  /** Checked by the provider itself when it is created. */
  readonly settings: Readonly<Record<string, unknown>>;
}

export interface ProxyConfig {
  /** `HOST:PORT`. */
  readonly listen: string;
  /** Absolute. */
  readonly dataDir: string;
  /**
   * The base URL put in kubeconfigs, without a trailing slash. Undefined only when it is not
   * set and `listen` uses port 0; the caller then uses the bound address.
   */
  readonly externalUrl: string | undefined;
  readonly tls: {
    readonly certFile: string | undefined;
    readonly keyFile: string | undefined;
    readonly sans: readonly string[];
  };
  readonly store: SqliteStoreConfig | PostgresStoreConfig;
  /** Base64 32-byte key for secrets at rest; undefined → `secretKeyFile`. */
  readonly secretKey: string | undefined;
  /** Where the key is kept when `secretKey` is not given (sqlite only). */
  readonly secretKeyFile: string | undefined;
  readonly bootstrap: {
    readonly username: string;
    readonly password: string | undefined;
    /** Recovery: set the bootstrap user's password to `password` at start (see bootstrap.ts). */
    readonly resetPassword: boolean;
  };
  readonly tokens: {
    readonly loginTtlSeconds: number;
    readonly kubeconfigTtlSeconds: number;
    readonly kubeconfigMaxTtlSeconds: number;
    readonly apiTtlSeconds: number;
    readonly apiMaxTtlSeconds: number;
  };
  readonly authCache: AuthCacheConfig;
  /** Failed logins: `maxFailures` per username, `maxFailuresPerAddress` per client address. */
  readonly loginRateLimit: { readonly maxFailures: number; readonly maxFailuresPerAddress: number; readonly windowSeconds: number };
  /** CIDRs of reverse proxies whose `X-Forwarded-For` names the client (see src/proxy/client-address.ts). */
  readonly trustedProxies: readonly string[];
  readonly upstream: { readonly connectTimeoutSeconds: number; readonly requestTimeoutSeconds: number; readonly idleTimeoutSeconds: number };
  readonly workers: number;
  /**
   * `/metrics`: on a separate listener (`listen`, the default) and/or, with a bearer token
   * from `bearerTokenFile`, on the main listener too. Without the token file the main
   * listener does not serve it.
   */
  readonly metrics: MetricsConfig;
  /** `file` undefined → standard output. */
  readonly audit: { readonly enabled: boolean; readonly file: string | undefined };
  /** `slowRequestMs`: forwarded requests at least this long are logged with their timings; 0 = off. */
  readonly log: { readonly level: LogLevel; readonly slowRequestMs: number };
  readonly providers: readonly ProviderConfig[];
  /** Background re-reading of provider groups (LDAP, GitHub, OIDC). */
  readonly groupRefresh: { readonly maxAgeSeconds: number; readonly intervalSeconds: number };
  /** Background health checks of the enabled providers (src/providers/health.ts). */
  readonly providerHealth: { readonly intervalSeconds: number; readonly timeoutSeconds: number };
  /**
   * The background jobs (sync, cluster probes, group refresh, provider health) run in the one
   * process that holds a store lease of `leaseSeconds` (src/store/lease.ts).
   */
  readonly background: { readonly leaseSeconds: number };
  /** Sync to clusters with the authorized endpoint on (tokens, user attributes, role bindings). */
  readonly sync: {
    /** Namespace of the Rancher-compatible objects in each cluster. */
    readonly namespace: string;
    readonly resyncIntervalSeconds: number;
    /** ClusterRole bound for each membership role. */
    readonly roleNames: { readonly owner: string; readonly member: string; readonly viewer: string };
    /** Write to clusters another copy of this installation (restored/copied data) has written to since. */
    readonly takeOver: boolean;
  };
  /** How users are named to Kubernetes (proxy, webhook, JWTs, role bindings alike). */
  readonly identity: {
    readonly kubernetesUsername: KubernetesUsernameFormat;
    /** The user extras the proxy path forwards (Impersonate-Extra-*); undefined: all of kubegate's own. */
    readonly forwardedExtras: readonly string[] | undefined;
  };
  /** Accept ID tokens of this OIDC provider as bearer tokens on the cluster path. */
  readonly oidcBearer: { readonly provider: string } | undefined;
  /** Agent-mode clusters: what import manifests contain, and how replicas reach each other's tunnels. */
  readonly agents: {
    /** Container image of `kubegate agent` in import manifests. */
    readonly image: string;
    readonly replicas: number;
    /** Lifetime of a registration token (the import command). */
    readonly registrationTtlSeconds: number;
    /**
     * `https://host:port` at which other proxy replicas reach this one for tunnels it holds;
     * undefined → derived from the bound address (one replica, or tests).
     */
    readonly peerUrl: string | undefined;
  };
  /** The web console under /console/ (src/console/). */
  readonly console: {
    readonly enabled: boolean;
    /** Lifetime of a console session: its login token and its cookie. */
    readonly sessionTtlSeconds: number;
  };
  /** The JWT issuer for the `jwt` authorized-endpoint mode (src/issuer/). */
  readonly issuer: {
    /** Lifetime of an issued JWT: bounds how long revocation takes on that path. */
    readonly tokenTtlSeconds: number;
    /** How long one signing key signs before the next one takes over. */
    readonly keyRotationSeconds: number;
  };
}

/**
 * The flags `kubegate proxy` accepts for settings (commander's camelCase keys). The secret key
 * and the bootstrap password have none, so that they never show in a process list.
 */
export interface ProxyConfigFlags {
  readonly listen?: string | undefined;
  readonly dataDir?: string | undefined;
  /** Prefer KUBEGATE_STORE_URL: a flag, and the password in it, shows in the process list. */
  readonly storeUrl?: string | undefined;
  readonly externalUrl?: string | undefined;
  readonly logLevel?: string | undefined;
  readonly workers?: string | number | undefined;
  readonly metricsListen?: string | undefined;
}

/** Same pattern as provider names in src/auth/user.ts (they prefix group names). */
const PROVIDER_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
const PROVIDER_NAME_PROBLEM = 'must be 1–32 lower-case letters, digits or "-", starting with a letter';

const providerName = z.string().regex(PROVIDER_NAME_PATTERN, { error: PROVIDER_NAME_PROBLEM });

const providerSchema = z.strictObject({
  name: providerName,
  type: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, { error: 'must be a provider type such as local, ldap, github or oidc' }),
  enabled: z.boolean().default(true),
  settings: z.record(z.string(), z.unknown()).default({}),
});

/** A namespace or ClusterRole name: a DNS label or subdomain, as Kubernetes requires. */
const kubernetesName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9.:-]{0,251}[a-z0-9])?$/, { error: 'must be a Kubernetes object name (lower case, digits, "-", ".", ":")' });

/** A user extra key as Kubernetes spells them (lower case, DNS-subdomain-like, an optional path). */
const EXTRA_KEY = /^[a-z0-9]([a-z0-9._/-]{0,126}[a-z0-9])?$/;

const postgresUrl = z.string().refine(isPostgresUrl, { error: 'must be a postgres:// or postgresql:// URL' });

const proxySchema = z.strictObject({
  listen: listenAddress('0.0.0.0:8443'),
  dataDir: filePath.prefault('./data'),
  externalUrl: z
    .string()
    .refine(isHttpsUrl, { error: 'must be an https:// URL without query or fragment' })
    .transform((url) => url.replace(/\/+$/, ''))
    .optional(),
  tls: z
    .strictObject({ ...tlsFiles, sans: z.array(hostNameOrIp).min(1).default(['localhost', '127.0.0.1']) })
    .superRefine(checkBothOrNeither)
    .prefault({}),
  store: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('sqlite'), path: filePath.optional() }),
      z.strictObject({ type: z.literal('postgres'), url: postgresUrl }),
    ])
    .prefault({ type: 'sqlite' }),
  secretKey: z
    .string()
    .refine(isSecretKey, { error: 'must be 32 random bytes in base64 (openssl rand -base64 32)' })
    .optional(),
  bootstrap: z
    .strictObject({
      username: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, { error: 'must be 1–64 letters, digits, ".", "_", "@" or "-"' })
        .default('admin'),
      password: z.string().min(8).max(1024).optional(),
      resetPassword: z.boolean().default(false),
    })
    .superRefine((value, ctx) => {
      if (value.resetPassword && value.password === undefined) {
        ctx.addIssue({ code: 'custom', path: ['resetPassword'], message: 'needs bootstrap.password (KUBEGATE_BOOTSTRAP_PASSWORD), the password to set' });
      }
    })
    .prefault({}),
  tokens: z
    .strictObject({
      loginTtl: durationSeconds('16h'),
      kubeconfigTtl: durationSeconds('30d'),
      kubeconfigMaxTtl: durationSeconds('90d'),
      apiTtl: durationSeconds('30d'),
      apiMaxTtl: durationSeconds('90d'),
    })
    .prefault({}),
  authCache: authCacheSchema({ successTtl: '10s', failureTtl: '5s' }),
  loginRateLimit: z
    .strictObject({
      maxFailures: wholeNumber(1, 1000).default(5),
      maxFailuresPerAddress: wholeNumber(1, 100_000).default(100),
      windowSeconds: wholeNumber(1, 86_400).default(300),
    })
    .prefault({}),
  trustedProxies: z
    .array(z.string().refine((text) => parseCidr(text) !== undefined, { error: 'must be an IP address or CIDR such as 10.0.0.0/8 or 2001:db8::/32' }))
    .default([]),
  upstream: z
    .strictObject({
      connectTimeoutSeconds: wholeNumber(1, 300).default(10),
      requestTimeoutSeconds: wholeNumber(1, 3600).default(60),
      // Below kube-apiserver's own keep-alive IdleTimeout (90 s): kubegate closes first.
      idleTimeoutSeconds: wholeNumber(1, 3600).default(60),
    })
    .prefault({}),
  workers: wholeNumber(1, 64).default(1),
  metrics: z.strictObject({ listen: metricsListenAddress('127.0.0.1:9464'), bearerTokenFile: filePath.optional() }).prefault({}),
  audit: z.strictObject({ enabled: z.boolean().default(true), file: filePath.optional() }).prefault({}),
  log: z.strictObject({ level: logLevel, slowRequestMs: wholeNumber(0, 3_600_000).default(0) }).prefault({}),
  providers: z.array(providerSchema).prefault([{ name: 'local', type: 'local' }]),
  oidcBearer: z.strictObject({ provider: providerName }).optional(),
  console: z.strictObject({ enabled: z.boolean().default(true), sessionTtl: durationSeconds('8h') }).prefault({}),
  groupRefresh: z
    .strictObject({ maxAge: durationSeconds('1h'), interval: durationSeconds('5m') })
    .prefault({}),
  providerHealth: z
    .strictObject({
      interval: durationSeconds('1m').refine((seconds) => seconds >= 1 && seconds <= 86_400, { error: 'must be between 1s and 24h' }),
      timeout: durationSeconds('10s').refine((seconds) => seconds >= 1 && seconds <= 300, { error: 'must be between 1s and 5m' }),
    })
    .prefault({}),
  background: z
    .strictObject({
      leaseDuration: durationSeconds('15s').refine((seconds) => seconds >= 3 && seconds <= 300, { error: 'must be between 3s and 5m' }),
    })
    .prefault({}),
  agents: z
    .strictObject({
      image: z.string().min(1).max(512).regex(/^[^\s]+$/, { error: 'must be a container image reference' }).default('kubegate:latest'),
      replicas: wholeNumber(1, 10).default(2),
      registrationTtl: durationSeconds('1h'),
      peerUrl: z
        .string()
        .refine((text) => URL.canParse(text) && new URL(text).protocol === 'https:' && new URL(text).pathname === '/', { error: 'must be https://host:port' })
        .optional(),
    })
    .prefault({}),
  issuer: z
    .strictObject({
      tokenTtl: durationSeconds('5m').refine((seconds) => seconds >= 60 && seconds <= 3600, { error: 'must be between 1m and 1h' }),
      keyRotation: durationSeconds('7d').refine((seconds) => seconds >= 3600 && seconds <= 365 * 86_400, { error: 'must be between 1h and 365d' }),
    })
    .prefault({}),
  identity: z
    .strictObject({
      kubernetesUsername: z.enum(KUBERNETES_USERNAME_FORMATS, { error: `must be one of ${KUBERNETES_USERNAME_FORMATS.join(', ')}` }).default('id'),
      forwardedExtras: z.array(z.string().regex(EXTRA_KEY, { error: 'must be a lower-case extra key such as kubegate.io/login-name' })).max(16).optional(),
    })
    .prefault({}),
  sync: z
    .strictObject({
      namespace: kubernetesName.default('cattle-system'),
      resyncInterval: durationSeconds('5m'),
      roleNames: z
        .strictObject({
          owner: kubernetesName.default('cluster-admin'),
          member: kubernetesName.default('edit'),
          viewer: kubernetesName.default('view'),
        })
        .prefault({}),
      takeOver: z.boolean().default(false),
    })
    .prefault({}),
});

const PROXY_OVERRIDES: readonly OverrideSpec[] = [
  { path: ['listen'], env: 'KUBEGATE_LISTEN', flag: 'listen' },
  { path: ['dataDir'], env: 'KUBEGATE_DATA_DIR', flag: 'dataDir' },
  { path: ['store'], env: 'KUBEGATE_STORE_URL', flag: 'storeUrl', toValue: storeFromUrl },
  { path: ['secretKey'], env: 'KUBEGATE_SECRET_KEY' },
  { path: ['bootstrap', 'password'], env: 'KUBEGATE_BOOTSTRAP_PASSWORD' },
  { path: ['bootstrap', 'resetPassword'], env: 'KUBEGATE_BOOTSTRAP_RESET_PASSWORD', toValue: booleanFromText },
  { path: ['externalUrl'], env: 'KUBEGATE_EXTERNAL_URL', flag: 'externalUrl' },
  { path: ['agents', 'peerUrl'], env: 'KUBEGATE_PEER_URL' },
  { path: ['log', 'level'], env: 'KUBEGATE_LOG_LEVEL', flag: 'logLevel' },
  { path: ['log', 'slowRequestMs'], env: 'KUBEGATE_LOG_SLOW_REQUEST_MS', toValue: numberFromText },
  { path: ['workers'], env: 'KUBEGATE_WORKERS', flag: 'workers', toValue: numberFromText },
  { path: ['sync', 'takeOver'], env: 'KUBEGATE_SYNC_TAKE_OVER', toValue: booleanFromText },
  { path: ['metrics', 'listen'], env: 'KUBEGATE_METRICS_LISTEN', flag: 'metricsListen' },
];

/**
 * Loads, validates and freezes the proxy configuration. Throws CONFIG_UNREADABLE (the file)
 * or CONFIG_INVALID (every problem at once, each starting with where it is); TypeError for
 * an unknown key in `flags`.
 */
export function loadProxyConfig(options: LoadConfigOptions<ProxyConfigFlags> = {}): ProxyConfig {
  const file = options.file === undefined ? undefined : readConfigFile(options.file);
  const overrides = collectOverrides(PROXY_OVERRIDES, options.env ?? process.env, options.flags ?? {});
  const layered = layerConfig(file, overrides);
  const input = parseLayeredConfig(proxySchema, layered, crossCheck);
  return deepFreeze(toProxyConfig(input));
}

type ProxyInput = z.output<typeof proxySchema>;

function crossCheck(input: Partial<ProxyInput>, invalid: ReadonlySet<string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { tokens, store, providers, oidcBearer } = input;
  if (tokens !== undefined && input.console !== undefined && input.console.sessionTtl > Math.max(tokens.loginTtl, tokens.apiMaxTtl)) {
    issues.push({ path: ['console', 'sessionTtl'], problem: 'must not be longer than tokens.loginTtl or tokens.apiMaxTtl, the longest login the proxy issues' });
  }
  if (tokens !== undefined && tokens.kubeconfigTtl > tokens.kubeconfigMaxTtl) {
    issues.push({ path: ['tokens', 'kubeconfigTtl'], problem: 'must not be longer than tokens.kubeconfigMaxTtl' });
  }
  if (tokens !== undefined && tokens.apiTtl > tokens.apiMaxTtl) {
    issues.push({ path: ['tokens', 'apiTtl'], problem: 'must not be longer than tokens.apiMaxTtl' });
  }
  if (store?.type === 'postgres' && input.secretKey === undefined && !invalid.has('secretKey')) {
    issues.push({
      path: ['secretKey'],
      problem: 'is required with the postgres store, so that every replica shares the same key',
    });
  }
  const seen = new Set<string>();
  providers?.forEach((provider, index) => {
    if (seen.has(provider.name)) issues.push({ path: ['providers', index, 'name'], problem: 'is used by another provider' });
    seen.add(provider.name);
    const format = input.identity?.kubernetesUsername ?? 'id';
    if (format !== 'id' && RESERVED_PROVIDER_PREFIXES.includes(provider.name)) {
      issues.push({ path: ['providers', index, 'name'], problem: `must not be ${provider.name} with identity.kubernetesUsername ${format} (its users would be named ${provider.name}:…, a reserved name space)` });
    }
  });
  if (oidcBearer !== undefined && providers !== undefined) {
    const target = providers.find((provider) => provider.name === oidcBearer.provider);
    if (target === undefined || target.type !== 'oidc' || !target.enabled) {
      issues.push({ path: ['oidcBearer', 'provider'], problem: 'must name an enabled provider of type oidc' });
    }
  }
  return issues;
}

function toProxyConfig(input: ProxyInput): ProxyConfig {
  const store: SqliteStoreConfig | PostgresStoreConfig =
    input.store.type === 'sqlite'
      ? { type: 'sqlite', path: input.store.path ?? join(input.dataDir, 'kubegate.db') }
      : { type: 'postgres', url: input.store.url };
  return {
    listen: input.listen,
    dataDir: input.dataDir,
    externalUrl: input.externalUrl ?? deriveExternalUrl(input.listen, input.tls.sans[0] ?? 'localhost'),
    tls: { certFile: input.tls.certFile, keyFile: input.tls.keyFile, sans: [...input.tls.sans] },
    store,
    secretKey: input.secretKey,
    secretKeyFile: input.secretKey === undefined ? join(input.dataDir, 'secret.key') : undefined,
    bootstrap: { username: input.bootstrap.username, password: input.bootstrap.password, resetPassword: input.bootstrap.resetPassword },
    tokens: {
      loginTtlSeconds: input.tokens.loginTtl,
      kubeconfigTtlSeconds: input.tokens.kubeconfigTtl,
      kubeconfigMaxTtlSeconds: input.tokens.kubeconfigMaxTtl,
      apiTtlSeconds: input.tokens.apiTtl,
      apiMaxTtlSeconds: input.tokens.apiMaxTtl,
    },
    authCache: {
      successTtlSeconds: input.authCache.successTtl,
      failureTtlSeconds: input.authCache.failureTtl,
      maxEntries: input.authCache.maxEntries,
    },
    loginRateLimit: { ...input.loginRateLimit },
    trustedProxies: [...input.trustedProxies],
    upstream: { ...input.upstream },
    workers: input.workers,
    metrics: { listen: input.metrics.listen, bearerTokenFile: input.metrics.bearerTokenFile },
    audit: { enabled: input.audit.enabled, file: input.audit.file },
    log: { level: input.log.level, slowRequestMs: input.log.slowRequestMs },
    providers: input.providers.map((provider) => ({ ...provider, settings: structuredClone(provider.settings) })),
    oidcBearer: input.oidcBearer === undefined ? undefined : { provider: input.oidcBearer.provider },
    identity: {
      kubernetesUsername: input.identity.kubernetesUsername,
      forwardedExtras: input.identity.forwardedExtras === undefined ? undefined : [...new Set(input.identity.forwardedExtras)],
    },
    console: { enabled: input.console.enabled, sessionTtlSeconds: input.console.sessionTtl },
    groupRefresh: { maxAgeSeconds: input.groupRefresh.maxAge, intervalSeconds: input.groupRefresh.interval },
    providerHealth: { intervalSeconds: input.providerHealth.interval, timeoutSeconds: input.providerHealth.timeout },
    background: { leaseSeconds: input.background.leaseDuration },
    sync: {
      namespace: input.sync.namespace,
      resyncIntervalSeconds: input.sync.resyncInterval,
      roleNames: { ...input.sync.roleNames },
      takeOver: input.sync.takeOver,
    },
    issuer: { tokenTtlSeconds: input.issuer.tokenTtl, keyRotationSeconds: input.issuer.keyRotation },
    agents: {
      image: input.agents.image,
      replicas: input.agents.replicas,
      registrationTtlSeconds: input.agents.registrationTtl,
      peerUrl: input.agents.peerUrl?.replace(/\/+$/, ''),
    },
  };
}

/** `https://<first SAN>:<listen port>`; undefined when the port is chosen at bind time. */
function deriveExternalUrl(listen: string, san: string): string | undefined {
  const port = parseListenAddress(listen)?.port ?? 0;
  if (port === 0) return undefined;
  return port === 443 ? `https://${formatHost(san)}` : `https://${formatHostPort(san, port)}`;
}

/** `true`/`false` from the environment; anything else is left for the schema to refuse. */
function booleanFromText(text: string): boolean | string {
  const normalized = text.trim().toLowerCase();
  return normalized === 'true' ? true : normalized === 'false' ? false : text;
}

/** KUBEGATE_STORE_URL / --store-url: `postgres://…` selects postgres, `sqlite:PATH` sqlite. */
function storeFromUrl(text: string): unknown {
  return text.startsWith('sqlite:') ? { type: 'sqlite', path: text.slice('sqlite:'.length) } : { type: 'postgres', url: text };
}

function isPostgresUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'postgres:' || url.protocol === 'postgresql:';
  } catch {
    return false;
  }
}

function isHttpsUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.hostname !== '' && url.search === '' && url.hash === '' && url.username === '';
  } catch {
    return false;
  }
}

function isSecretKey(text: string): boolean {
  try {
    parseSecretKey(text);
    return true;
  } catch (error) {
    if (isKubegateError(error, 'SECRET_KEY_INVALID')) return false;
    throw error;
  }
}

/**
 * A copy of the configuration that is safe to log: the secret key, the bootstrap password,
 * the database password and provider settings are replaced.
 */
export function configForLog(config: ProxyConfig): Record<string, unknown> {
  const store =
    config.store.type === 'postgres' ? { type: 'postgres', url: withoutPassword(config.store.url) } : { ...config.store };
  return {
    ...config,
    store,
    secretKey: config.secretKey === undefined ? undefined : REDACTED,
    bootstrap: { username: config.bootstrap.username, password: config.bootstrap.password === undefined ? undefined : REDACTED, resetPassword: config.bootstrap.resetPassword },
    providers: config.providers.map(({ name, type, enabled }) => ({ name, type, enabled })),
  };
}

function withoutPassword(text: string): string {
  const url = new URL(text);
  if (url.password !== '') url.password = 'REDACTED';
  for (const key of [...url.searchParams.keys()]) {
    if (/pass|secret|key/i.test(key)) url.searchParams.set(key, 'REDACTED');
  }
  return url.toString();
}
