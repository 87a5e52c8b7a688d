/**
 * Adds `system:authenticated` to every authenticated user, like kube-apiserver's
 * authenticated-group adder. The UserInfo is copied (withGroups), never mutated: a cache may
 * share it between requests. Copies are memoised per input UserInfo (which is frozen, so
 * the copy stays right), so a cached user costs no allocation per request even when this
 * decorator sits outside the cache.
 */
import { authenticated } from './authenticator.js';
import type { AuthResult, TokenAuthenticator } from './authenticator.js';
import { authenticateGuarded } from './guard.js';
import { SYSTEM_AUTHENTICATED, withGroups } from './user.js';
import type { UserInfo } from './user.js';

export function withAuthenticatedGroup(inner: TokenAuthenticator): TokenAuthenticator {
  const withGroup = new WeakMap<UserInfo, UserInfo>();
  return {
    async authenticateToken(token, options): Promise<AuthResult> {
      const result = await authenticateGuarded(inner, token, options);
      if (result.outcome !== 'authenticated') return result;
      let user = withGroup.get(result.user);
      if (user === undefined) {
        user = withGroups(result.user, [SYSTEM_AUTHENTICATED]);
        withGroup.set(result.user, user);
      }
      return user === result.user ? result : authenticated(user, result.token);
    },
  };
}
