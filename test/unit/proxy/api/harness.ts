/**
 * Builds the REST API the way the proxy does, for route tests: a real SQLite store in a temp
 * directory, the real token chain (createTokenChain, as the proxy builds it) with a long
 * success TTL (so a test that passes after a revocation proves the cache was invalidated,
 * not expired), the
 * real directory, providers and cluster status monitor, a steppable clock, and a logger
 * whose lines are kept for inspection. Users and tokens for setting up are written straight
 * into the store (hashing a password per user would make every test slow); logins go
 * through HTTP where the login itself is under test.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import { Registry } from 'prom-client';
import { hashPassword } from '../../../../src/auth/password.js';
import { createTokenChain } from '../../../../src/auth/token-chain.js';
import { newUserId } from '../../../../src/auth/user.js';
import { createLogger } from '../../../../src/log.js';
import { createProxyMetrics } from '../../../../src/metrics.js';
import type { ProxyMetrics } from '../../../../src/metrics.js';
import { createCertificateAuthority } from '../../../../src/pki/certificates.js';
import { createProviders } from '../../../../src/providers/index.js';
import { deriveLoginStateKey } from '../../../../src/providers/login-state.js';
import type { ProviderRegistry } from '../../../../src/providers/provider.js';
import { createTokenIssuer } from '../../../../src/issuer/issuer.js';
import { createProxyApp } from '../../../../src/proxy/app.js';
import type { ApiAuditEvent } from '../../../../src/proxy/api/audit-event.js';
import type { ProxyApiContext } from '../../../../src/proxy/app.js';
import { createClusterStatus } from '../../../../src/clusters/status.js';
import type { ClusterStatusMonitor } from '../../../../src/clusters/status.js';
import { createClusterRegistry } from '../../../../src/clusters/registry.js';
import type { ClusterRegistry } from '../../../../src/clusters/registry.js';
import { createUpstreamPool } from '../../../../src/clusters/upstreams.js';
import { checkClusterCredential } from '../../../../src/clusters/credential-check.js';
import type { UpstreamPool } from '../../../../src/clusters/upstreams.js';
import { createSecretBox } from '../../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../../src/store/sqlite.js';
import type { GlobalRole, Store, TokenKind, User } from '../../../../src/store/store.js';
import { generateToken } from '../../../../src/tokens/generate.js';
import { hashSecret } from '../../../../src/tokens/hash.js';

export const PUBLIC_URL = 'https://kubegate.example.test:8443';
/** The password of every user made with `addUser` (longer than the default minimum of 12). */
export const PASSWORD = 'correct horse battery staple';

let passwordHash: Promise<string> | undefined;
let proxyCa: Promise<string> | undefined;

export class Clock {
  ms = Date.now();
  readonly now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

export interface HarnessOptions {
  readonly loginRateLimit?: { maxFailures: number; maxFailuresPerAddress: number; windowSeconds: number };
  readonly trustedProxies?: readonly string[];
  /** Replaces the providers made from an empty configuration. */
  readonly providers?: (store: Store) => Promise<ProviderRegistry>;
  /** Omit the proxy CA, as with an operator-supplied serving certificate. */
  readonly withoutCa?: boolean;
}

export interface TestUser {
  readonly user: User;
  /** A global login token for the user. */
  readonly token: string;
}

export interface Harness {
  readonly app: Express;
  readonly ctx: ProxyApiContext;
  readonly store: Store;
  readonly directory: ClusterRegistry;
  readonly clusterStatus: ClusterStatusMonitor;
  readonly metrics: ProxyMetrics;
  readonly registry: Registry;
  readonly clock: Clock;
  /** Every log line written so far, as JSON text. */
  readonly logs: string[];
  /** Every audit event of the REST API so far. */
  readonly audit: ApiAuditEvent[];
  readonly caPem: string | null;
  readonly admin: TestUser;
  /** A user with the password PASSWORD and a login token. */
  addUser(username: string, options?: { globalRole?: GlobalRole; enabled?: boolean }): Promise<TestUser>;
  /** A token for `userId` written straight into the store. */
  addToken(userId: string, options?: { kind?: TokenKind; clusterId?: string | null; expiresAt?: Date | null }): Promise<string>;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'kubegate-api-'));
  const clock = new Clock();
  const logs: string[] = [];
  const audit: ApiAuditEvent[] = [];
  const logger = createLogger({ level: 'debug', name: 'test', destination: { write: (line: string) => void logs.push(line) } });
  let store: Store | undefined;
  let directory: ClusterRegistry | undefined;
  let upstreams: UpstreamPool | undefined;
  let clusterStatus: ClusterStatusMonitor | undefined;
  async function close(): Promise<void> {
    clusterStatus?.stop();
    upstreams?.close();
    directory?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  }
  try {
    store = await openSqliteStore({ path: join(dir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
    const openStore = store;
    directory = await createClusterRegistry(store, { reloadIntervalMs: 0 });
    upstreams = createUpstreamPool({ connectTimeoutMs: 2000 });
    clusterStatus = createClusterStatus({ directory, upstreams, timeoutMs: 2000, logger, now: clock.now });
    const authenticator = createTokenChain({
      lookups: store,
      successTtlMs: 3_600_000,
      failureTtlMs: 5_000,
      maxEntries: 1000,
      touchIntervalMs: 0,
      now: clock.now,
    });
    const registry = new Registry();
    const metrics = createProxyMetrics(registry);
    const caPem = options.withoutCa === true ? null : await (proxyCa ??= createCertificateAuthority({ commonName: 'kubegate test CA', validityDays: 1 }).then((ca) => ca.certPem));
    const ctx: ProxyApiContext = {
      store,
      directory,
      authenticator,
      providers: await (options.providers?.(store) ?? createProviders([], { store })),
      issuer: createTokenIssuer({ store, issuerUrl: () => PUBLIC_URL, tokenTtlSeconds: 300, keyRotationSeconds: 7 * 86_400, now: clock.now }),
      config: {
        tokens: {
          loginTtlSeconds: 16 * 3600,
          kubeconfigTtlSeconds: 30 * 86_400,
          kubeconfigMaxTtlSeconds: 90 * 86_400,
          apiTtlSeconds: 30 * 86_400,
          apiMaxTtlSeconds: 90 * 86_400,
        },
        loginRateLimit: options.loginRateLimit ?? { maxFailures: 5, maxFailuresPerAddress: 100, windowSeconds: 300 },
        trustedProxies: options.trustedProxies ?? [],
        agents: { image: 'kubegate:test', replicas: 2, registrationTtlSeconds: 3600, peerUrl: undefined },
        sync: { namespace: 'cattle-system', resyncIntervalSeconds: 300, roleNames: { owner: 'cluster-admin', member: 'edit', viewer: 'view' }, takeOver: false },
      },
      publicUrl: () => PUBLIC_URL,
      loginStateKey: deriveLoginStateKey(randomBytes(32)),
      caPem,
      logger,
      audit: (event) => void audit.push(event),
      metrics,
      clusterStatus,
      checkCredential: (cluster) => checkClusterCredential(cluster, { upstreams: upstreams!, timeoutMs: 2000, now: clock.now }),
      now: clock.now,
    };

    async function addToken(userId: string, tokenOptions: { kind?: TokenKind; clusterId?: string | null; expiresAt?: Date | null } = {}): Promise<string> {
      const generated = generateToken();
      await openStore.createToken({
        name: generated.name,
        tokenHash: hashSecret(generated.secret),
        userId,
        kind: tokenOptions.kind ?? 'login',
        provider: 'local',
        clusterId: tokenOptions.clusterId ?? null,
        expiresAt: tokenOptions.expiresAt === undefined ? new Date(clock.ms + 3_600_000) : tokenOptions.expiresAt,
      });
      return generated.token;
    }

    async function addUser(username: string, userOptions: { globalRole?: GlobalRole; enabled?: boolean } = {}): Promise<TestUser> {
      const user = await openStore.createUser({
        id: newUserId(),
        username,
        globalRole: userOptions.globalRole ?? 'user',
        enabled: userOptions.enabled ?? true,
        passwordHash: await (passwordHash ??= hashPassword(PASSWORD)),
      });
      return { user, token: await addToken(user.id) };
    }

    const admin = await addUser('root', { globalRole: 'admin' });
    return {
      app: createProxyApp(ctx),
      ctx,
      store,
      directory,
      clusterStatus,
      metrics,
      registry,
      clock,
      logs,
      audit,
      caPem,
      admin,
      addUser,
      addToken,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

export function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}

/** The `error` member of a REST API error body, asserting the shape. */
export function errorOf(body: unknown): { code: string; message: string; field?: string } {
  const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } }).error;
  if (error === undefined || typeof error.code !== 'string' || typeof error.message !== 'string') {
    throw new Error(`not an error body: ${JSON.stringify(body)}`);
  }
  return error as { code: string; message: string; field?: string };
}
