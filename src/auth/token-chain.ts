/**
 * The proxy's token chain, built in one expression (as kube-apiserver builds its own):
 *
 *   cache( group( union( kubegate tokens, …other bearer tokens ) ) )
 *
 * - kubegate tokens are checked against the lookups given (kubegate-tokens.ts);
 * - other bearer tokens (the `oidcBearer` issuer's ID tokens, src/providers/oidc/bearer.ts)
 *   are tried after them, by the union's rules (union.ts);
 * - `system:authenticated` is added inside the cache, so a hit costs nothing more;
 * - the cache (cached.ts) keeps the hot path free of I/O; its invalidation methods are how
 *   revocation reaches it.
 * The proxy's entry point and the tests build it here and nowhere else, so they cannot drift.
 */
import type { TokenAuthenticator } from './authenticator.js';
import { cachedAuthenticator } from './cached.js';
import type { CachedAuthenticator } from './cached.js';
import { withAuthenticatedGroup } from './groups.js';
import { kubegateTokenAuthenticator } from './kubegate-tokens.js';
import type { TokenLookups } from './lookups.js';
import { unionAuthenticator } from './union.js';
import { withKubernetesUsername } from './principal.js';
import type { KubernetesUsernameFormat } from '../config/identity.js';

export interface TokenChainOptions {
  readonly lookups: TokenLookups;
  /** Other bearer tokens accepted after kubegate's own (the OIDC bearer); none by default. */
  readonly otherTokens?: readonly TokenAuthenticator[];
  /** How long an `authenticated` answer is reused, capped by the token's expiry. 0 = never. */
  readonly successTtlMs: number;
  /** How long an `unauthenticated` answer is reused. 0 = never. */
  readonly failureTtlMs: number;
  /** Most cached answers kept. */
  readonly maxEntries: number;
  /** Least time between two `lastUsedAt` writes for one token; default 60 s, 0 = never write. */
  readonly touchIntervalMs?: number;
  /** Told when a background `lastUsedAt` write fails. */
  readonly onTouchError?: (error: unknown) => void;
  /** The Kubernetes user name of every user (`identity.kubernetesUsername`); default `id`. */
  readonly kubernetesUsername?: KubernetesUsernameFormat;
  /** The wall clock for token expiry and cache lifetimes; `() => new Date()` by default. For tests. */
  readonly now?: () => Date;
}

export function createTokenChain(options: TokenChainOptions): CachedAuthenticator {
  const { now } = options;
  const kubegateTokens = kubegateTokenAuthenticator({
    lookups: options.lookups,
    now,
    touchIntervalMs: options.touchIntervalMs,
    onTouchError: options.onTouchError,
  });
  const named = withKubernetesUsername(unionAuthenticator([kubegateTokens, ...(options.otherTokens ?? [])]), options.kubernetesUsername ?? 'id', options.lookups);
  return cachedAuthenticator(withAuthenticatedGroup(named), {
    successTtlMs: options.successTtlMs,
    failureTtlMs: options.failureTtlMs,
    maxEntries: options.maxEntries,
    now: now === undefined ? undefined : () => now().getTime(),
  });
}
