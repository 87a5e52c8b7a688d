/**
 * Several token authenticators tried in order, like kube-apiserver's union authenticator.
 *
 * - The first `authenticated` answer wins, even if an earlier member could not decide.
 * - If nobody authenticates and at least one member answered `error`, the union answers
 *   `error`: an outage must not look like a rejection. One error is passed on unchanged (its
 *   code, e.g. STORE_UNAVAILABLE, stays visible); several become AUTH_UNDECIDED whose cause
 *   is an AggregateError of all of them, in member order.
 * - Otherwise the union answers `unauthenticated` with the first code that is not
 *   TOKEN_MALFORMED — a member that recognised the token's format knows more than one that
 *   did not — or TOKEN_MALFORMED when every member said so.
 * A member that throws counts as `error` (see guard.ts).
 */
import { KubegateError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { unauthenticated, undecided } from './authenticator.js';
import type { AuthResult, TokenAuthenticator } from './authenticator.js';
import { authenticateGuarded } from './guard.js';

export function unionAuthenticator(authenticators: readonly TokenAuthenticator[]): TokenAuthenticator {
  if (!Array.isArray(authenticators) || authenticators.length === 0) {
    throw new TypeError('unionAuthenticator needs at least one authenticator');
  }
  const members = [...authenticators];
  return {
    async authenticateToken(token, options): Promise<AuthResult> {
      let errors: KubegateError[] | undefined;
      let code: ErrorCode | undefined;
      for (const member of members) {
        const result = await authenticateGuarded(member, token, options);
        if (result.outcome === 'authenticated') return result;
        if (result.outcome === 'error') (errors ??= []).push(result.error);
        else if (code === undefined || code === 'TOKEN_MALFORMED') code = result.code;
      }
      if (errors !== undefined) {
        if (errors.length === 1) return undecided(errors[0]!);
        return undecided(
          new KubegateError('AUTH_UNDECIDED', `${errors.length} authenticators could not decide`, {
            cause: new AggregateError(errors, 'authenticator errors'),
          }),
        );
      }
      return unauthenticated(code ?? 'UNAUTHENTICATED');
    },
  };
}
