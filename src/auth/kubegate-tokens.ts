/**
 * Authenticates tokens that kubegate issued, against the lookups it is given (the store, in
 * the proxy): the miss path behind the proxy's token cache.
 *
 * parse `[ext/]name:secret` → token row by name → hash check (constant time) → expiry →
 * user enabled → the user's cached provider groups → UserInfo
 * { name: user ID, uid: user ID, groups: provider groups, extra: login name, provider,
 *   token name }. `system:authenticated` is added by the group decorator, not here.
 *
 * A store outage or an unusable stored hash is `error` (could not decide), never a
 * rejection: the cache does not keep errors, so the next request tries again.
 * Use is recorded on the token (`lastUsedAt`) at most once per `touchIntervalMs` per token,
 * in the background; the answer never waits for that write.
 */
import { KubegateError, isKubegateError, toKubegateError } from '../errors.js';
import { tryParseToken } from '../tokens/format.js';
import { verifySecret } from '../tokens/hash.js';
import { isExpired } from '../tokens/expiry.js';
import { authenticated, unauthenticated, undecided } from './authenticator.js';
import type { AuthResult, TokenAuthenticator } from './authenticator.js';
import type { TokenLookups } from './lookups.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME, makeUserInfo } from './user.js';

export interface KubegateTokenAuthenticatorOptions {
  readonly lookups: TokenLookups;
  /** Wall clock; `() => new Date()` by default. */
  readonly now?: (() => Date) | undefined;
  /** Least time between two `lastUsedAt` writes for one token; default 60 s, 0 = never write. */
  readonly touchIntervalMs?: number | undefined;
  /** Told when a background `lastUsedAt` write fails. */
  readonly onTouchError?: ((error: unknown) => void) | undefined;
}

export function kubegateTokenAuthenticator(options: KubegateTokenAuthenticatorOptions): TokenAuthenticator {
  const { lookups } = options;
  const now = options.now ?? (() => new Date());
  const touchIntervalMs = options.touchIntervalMs ?? 60_000;
  const lastTouched = new Map<string, number>();

  function touch(name: string, at: Date): void {
    if (touchIntervalMs <= 0) return;
    const previous = lastTouched.get(name);
    if (previous !== undefined && at.getTime() - previous < touchIntervalMs) return;
    lastTouched.set(name, at.getTime());
    if (lastTouched.size > 100_000) lastTouched.clear();
    lookups.touchToken(name, at).catch((error: unknown) => options.onTouchError?.(error));
  }

  async function authenticateToken(raw: string): Promise<AuthResult> {
    const parsed = tryParseToken(raw);
    if (!parsed) return unauthenticated('TOKEN_MALFORMED');
    try {
      const token = await lookups.getToken(parsed.name);
      if (!token) return unauthenticated('TOKEN_INVALID');
      if (!(await verifySecret(parsed.secret, token.tokenHash))) return unauthenticated('TOKEN_INVALID');
      const at = now();
      if (isExpired(token.expiresAt, at)) return unauthenticated('TOKEN_EXPIRED');
      const user = await lookups.getUser(token.userId);
      if (!user) return unauthenticated('TOKEN_INVALID');
      if (!user.enabled) return unauthenticated('USER_DISABLED');
      const groups = await lookups.getUserGroups(user.id, token.provider);
      touch(token.name, at);
      return authenticated(
        makeUserInfo({
          name: user.id,
          uid: user.id,
          groups: groups?.groups ?? [],
          extra: {
            [EXTRA_LOGIN_NAME]: [user.username],
            [EXTRA_PROVIDER]: [token.provider],
            [EXTRA_TOKEN_NAME]: [token.name],
          },
        }),
        { name: token.name, expiresAt: token.expiresAt, clusterId: token.clusterId },
      );
    } catch (error) {
      if (isKubegateError(error)) return undecided(error);
      return undecided(new KubegateError('AUTH_UNDECIDED', undefined, { cause: toKubegateError(error) }));
    }
  }

  return { authenticateToken };
}
