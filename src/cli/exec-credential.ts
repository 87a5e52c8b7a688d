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
 */
import { KubegateError, isKubegateError } from '../errors.js';
import { loginToProxy } from './login.js';
import type { CliLoginOptions } from './login.js';
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
  const key = { server: options.client.server, provider: options.provider ?? '' };
  if (!forceLogin) {
    const cached = await options.cache.read(key, REFRESH_BEFORE_EXPIRY_MS);
    if (cached !== undefined) return cached;
  }
  const login = await loginToProxy(options);
  await options.cache.write(key, login.token);
  return login.token;
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

/** The ExecCredential kubectl reads from the plugin's stdout. */
export function execCredential(token: CachedToken): Record<string, unknown> {
  const status: Record<string, unknown> = { token: token.token };
  if (token.expiresAt !== null) {
    status['expirationTimestamp'] = new Date(Date.parse(token.expiresAt) - REFRESH_BEFORE_EXPIRY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return { apiVersion: EXEC_CREDENTIAL_API_VERSION, kind: 'ExecCredential', status };
}
