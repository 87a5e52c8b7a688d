/**
 * Calls a TokenAuthenticator so that it cannot break its caller: a throw (synchronous or a
 * rejected promise) or an answer that is not one of the three outcomes becomes `error`.
 * The contract says members never throw; the decorators still refuse to trust that, because
 * a throw escaping an auth chain would turn into a 500 or, worse, an unhandled rejection.
 */
import { KubegateError, toKubegateError } from '../errors.js';
import { undecided } from './authenticator.js';
import type { AuthenticateOptions, AuthResult, TokenAuthenticator } from './authenticator.js';

export async function authenticateGuarded(
  authenticator: TokenAuthenticator,
  token: string,
  options: AuthenticateOptions | undefined,
): Promise<AuthResult> {
  let result: AuthResult;
  try {
    result = await authenticator.authenticateToken(token, options);
  } catch (error) {
    return undecided(toKubegateError(error));
  }
  const outcome = (result as Partial<AuthResult> | null | undefined)?.outcome;
  if (outcome === 'authenticated' || outcome === 'unauthenticated' || outcome === 'error') return result;
  return undecided(new KubegateError('INTERNAL', 'an authenticator answered with no outcome'));
}
