/**
 * `kubegate token`, the kubeconfig exec credential plugin: prints a
 * `client.authentication.k8s.io/v1` ExecCredential for one cluster.
 *
 * The credential is a cluster-scoped API token (valid on that cluster only, through the
 * proxy and on its authorized endpoint), minted with the user's login token and never
 * outliving it: a leaked cache file opens one cluster until the login ends. Both tokens are
 * cached (src/cli/token-cache.ts) and replaced `REFRESH_BEFORE_EXPIRY_MS` before they
 * expire; `expirationTimestamp` is set that much earlier too, so kubectl calls the plugin
 * again exactly when a fresh token is due. A login token the proxy no longer accepts
 * (revoked) is dropped and the login done again, once.
 *
 * A cached cluster token is confirmed with the proxy (`GET /v1/me`) when it was last
 * confirmed more than `RECHECK_AFTER_MS` ago, so a revoked one is replaced within that time
 * instead of being handed to kubectl until it expires. When the proxy cannot be reached the
 * cached token is handed out as it is: the authorized cluster endpoint must keep working
 * while the proxy is down.
 *
 * `--jwt` (the `jwt` authorized-endpoint mode): the credential is a short-lived JWT for the
 * cluster (`POST /v1/clusters/:id/jwt` with the login token), which the cluster's API server
 * verifies itself. It is cached and replaced once less than a fifth of its life is left
 * (at least 10 s before it expires), and kubectl is told to ask again at that moment. There
 * is nothing to confirm (it expires within minutes); while the proxy cannot be reached a
 * cached JWT is handed out until it expires.
 */
import { KubegateError, isKubegateError } from '../errors.js';
import { loginToProxy } from './login.js';
import type { CliLogin, CliLoginOptions } from './login.js';
import type { CachedToken, TokenCache } from './token-cache.js';

const EXEC_CREDENTIAL_API_VERSION = 'client.authentication.k8s.io/v1';
/** A cached token is replaced this long before it expires. */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;
/** A cached cluster token is confirmed with the proxy again after this long. */
const RECHECK_AFTER_MS = 60_000;
/** Shortest cluster token worth minting. */
const MIN_CLUSTER_TOKEN_SECONDS = 60;

export interface ClusterCredentialOptions extends CliLoginOptions {
  readonly cache: TokenCache;
  readonly cluster: string;
  readonly now?: () => number;
}

/** The login token for the proxy + provider: cached, or a fresh login (then cached). */
export async function loginToken(options: CliLoginOptions & { readonly cache: TokenCache }, forceLogin = false): Promise<CachedToken> {
  if (!forceLogin) {
    const cached = await options.cache.read({ server: options.client.server, provider: options.provider ?? '' }, REFRESH_BEFORE_EXPIRY_MS);
    if (cached !== undefined) return cached;
  }
  return (await freshLogin(options)).token;
}

/**
 * A login, cached under the provider asked for and, when none was named (the proxy's only
 * provider was taken), also under the provider that answered: the exec kubeconfig names it
 * (`--provider local`), so `kubegate login <url>` followed by kubectl finds that login.
 */
export async function freshLogin(options: CliLoginOptions & { readonly cache: TokenCache }): Promise<CliLogin> {
  const login = await loginToProxy(options);
  const key = { server: options.client.server, provider: options.provider ?? '' };
  await options.cache.write(key, login.token);
  if (options.provider === undefined) await options.cache.write({ ...key, provider: login.provider }, login.token);
  return login;
}

/** The cluster-scoped token for `cluster`: cached, or minted with the login token. */
export async function clusterCredential(options: ClusterCredentialOptions): Promise<CachedToken> {
  const now = options.now ?? Date.now;
  const key = { server: options.client.server, provider: options.provider ?? '', cluster: options.cluster };
  const cached = await options.cache.read(key, REFRESH_BEFORE_EXPIRY_MS);
  if (cached !== undefined) {
    const confirmed = await confirm(options, cached, now);
    if (confirmed !== undefined) {
      if (confirmed !== cached) await options.cache.write(key, confirmed);
      return confirmed;
    }
    await options.cache.remove(key);
  }

  let login = await loginToken(options);
  let minted: CachedToken;
  try {
    minted = await mint(options, login, now);
  } catch (error) {
    if (!isKubegateError(error, 'UNAUTHENTICATED')) throw error;
    login = await loginToken(options, true);
    minted = await mint(options, login, now);
  }
  await options.cache.write(key, minted);
  return minted;
}

/**
 * `token` if it needs no check or the proxy still accepts it (re-stamped), undefined when the
 * proxy refuses it (401). A proxy that cannot be reached or answers otherwise leaves the
 * token as it is.
 */
async function confirm(options: ClusterCredentialOptions, token: CachedToken, now: () => number): Promise<CachedToken | undefined> {
  if (token.checkedAt !== undefined && now() - Date.parse(token.checkedAt) < RECHECK_AFTER_MS) return token;
  let status: number;
  try {
    status = (await options.client.send('GET', '/v1/me', { token: token.token })).status;
  } catch {
    return token;
  }
  if (status === 401) return undefined;
  return status === 200 ? { ...token, checkedAt: new Date(now()).toISOString() } : token;
}

async function mint(options: ClusterCredentialOptions, login: CachedToken, now: () => number): Promise<CachedToken> {
  const body: Record<string, unknown> = { cluster: options.cluster, description: 'kubegate token (kubeconfig exec plugin)' };
  if (login.expiresAt !== null) {
    const seconds = Math.floor((Date.parse(login.expiresAt) - now()) / 1000);
    if (seconds < MIN_CLUSTER_TOKEN_SECONDS) throw new KubegateError('UNAUTHENTICATED', 'the login token is about to expire');
    body['ttl'] = seconds;
  }
  const response = await options.client.call('POST', '/v1/tokens', { token: login.token, body });
  const { token, expiresAt } = (response.body ?? {}) as { token?: unknown; expiresAt?: unknown };
  if (typeof token !== 'string') throw new KubegateError('INTERNAL', 'the proxy answered without a token');
  return { token, expiresAt: typeof expiresAt === 'string' ? expiresAt : null, checkedAt: new Date(now()).toISOString() };
}

/** The cluster's JWT: cached while it has enough life left, else fetched with the login token. */
export async function clusterJwt(options: ClusterCredentialOptions): Promise<CachedToken> {
  const now = options.now ?? Date.now;
  const key = { server: options.client.server, provider: options.provider ?? '', cluster: options.cluster, kind: 'jwt' as const };
  const cached = await options.cache.read(key, 0);
  if (cached !== undefined && now() < refreshAt(cached)) return cached;
  let fresh: CachedToken;
  try {
    try {
      fresh = await fetchJwt(options, await loginToken(options));
    } catch (error) {
      if (!isKubegateError(error, 'UNAUTHENTICATED')) throw error;
      fresh = await fetchJwt(options, await loginToken(options, true));
    }
  } catch (error) {
    // The proxy is down: the API server still accepts the cached JWT until it expires.
    if (cached !== undefined && isKubegateError(error, 'PROVIDER_UNAVAILABLE')) return cached;
    throw error;
  }
  await options.cache.write(key, fresh);
  return fresh;
}

/** When a JWT is due for replacement: a fifth of its life (at least 10 s) before it expires. */
export function refreshAt(token: CachedToken): number {
  if (token.expiresAt === null) return Number.POSITIVE_INFINITY;
  const expiresAt = Date.parse(token.expiresAt);
  const issuedAt = token.issuedAt === undefined ? Number.NaN : Date.parse(token.issuedAt);
  const lifetime = Number.isNaN(issuedAt) ? 0 : expiresAt - issuedAt;
  return expiresAt - Math.max(lifetime / 5, 10_000);
}

async function fetchJwt(options: ClusterCredentialOptions, login: CachedToken): Promise<CachedToken> {
  const response = await options.client.call('POST', `/v1/clusters/${encodeURIComponent(options.cluster)}/jwt`, { token: login.token });
  const { token, expiresAt, issuedAt } = (response.body ?? {}) as { token?: unknown; expiresAt?: unknown; issuedAt?: unknown };
  if (typeof token !== 'string' || typeof expiresAt !== 'string' || typeof issuedAt !== 'string') {
    throw new KubegateError('INTERNAL', 'the proxy answered without a token and its lifetime');
  }
  return { token, expiresAt, issuedAt };
}

/**
 * The ExecCredential kubectl reads from the plugin's stdout. kubectl runs the plugin again at
 * `expirationTimestamp`: `refreshAtMs` (when the token is due for replacement), or, when that
 * has passed already (a cached token handed out while the proxy is down), its expiry.
 */
export function execCredential(token: CachedToken, refreshAtMs?: number, now: () => number = Date.now): Record<string, unknown> {
  const status: Record<string, unknown> = { token: token.token };
  if (token.expiresAt !== null) {
    const expiresAt = Date.parse(token.expiresAt);
    const askAgainAt = refreshAtMs ?? expiresAt - REFRESH_BEFORE_EXPIRY_MS;
    status['expirationTimestamp'] = new Date(askAgainAt > now() ? askAgainAt : expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return { apiVersion: EXEC_CREDENTIAL_API_VERSION, kind: 'ExecCredential', status };
}
