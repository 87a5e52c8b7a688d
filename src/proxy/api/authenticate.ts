/**
 * Who is calling the REST API.
 *
 * `Authorization: Bearer <token>` goes through the same cached authenticator as the
 * forwarding path; then the user is loaded from the store (the REST API is not the hot
 * path), so a role change or a disable shows at once even while a success is still cached.
 *
 * Design notes (fail closed):
 * - No token, a malformed header, or any `unauthenticated` answer → 401 UNAUTHENTICATED,
 *   whatever the reason (the reason is for logs, not for callers). An authenticator that
 *   could not decide → 503 AUTH_UNDECIDED, never a 401 that would make a client drop a good
 *   token.
 * - A cluster-scoped token (a kubeconfig token, or an API token limited to one cluster)
 *   is refused here (403): otherwise it could mint an unscoped token for itself, and the
 *   scope would mean nothing. The one exception is `GET /v1/me` (`allowClusterScoped`),
 *   which only reads who the token is: the exec plugin uses it to check a cached token.
 * - Admin means the global role `admin` in the store, never a particular username.
 */
import type { RequestHandler, Response } from 'express';
import type { TokenFacts } from '../../auth/authenticator.js';
import { EXTRA_PROVIDER } from '../../auth/user.js';
import type { UserInfo } from '../../auth/user.js';
import { KubegateError } from '../../errors.js';
import type { User } from '../../store/store.js';
import { parseBearer } from '../../tokens/format.js';
import type { ProxyApiContext } from './context.js';

export interface Caller {
  /** The user as stored now. */
  readonly user: User;
  /** The identity the token authenticated as (groups decide cluster roles). */
  readonly identity: UserInfo;
  readonly token: TokenFacts;
  /** The provider the token was issued through; new tokens inherit it. */
  readonly provider: string;
  readonly isAdmin: boolean;
}

const CALLER = 'kubegateCaller';

/** 401 with the challenge that tells clients which scheme to use. */
function unauthenticated(response: Response, message: string): KubegateError {
  response.setHeader('WWW-Authenticate', 'Bearer');
  return new KubegateError('UNAUTHENTICATED', message);
}

export interface AuthenticateOptions {
  /** Accept cluster-scoped tokens too; only for routes that read the caller's own identity. */
  readonly allowClusterScoped?: boolean;
}

/** Authenticates the request; later handlers read the caller with callerOf. */
export function authenticate(ctx: ProxyApiContext, options: AuthenticateOptions = {}): RequestHandler {
  return async (request, response, next) => {
    let credential: string | undefined;
    try {
      credential = parseBearer(request.headers.authorization);
    } catch {
      throw unauthenticated(response, 'the Authorization header is malformed');
    }
    if (credential === undefined) throw unauthenticated(response, 'a Bearer token is required');
    const result = await ctx.authenticator.authenticateToken(credential);
    if (result.outcome === 'error') throw new KubegateError('AUTH_UNDECIDED', undefined, { cause: result.error });
    if (result.outcome === 'unauthenticated') throw unauthenticated(response, 'the token is not valid');
    const user = await ctx.store.getUser(result.user.name);
    if (user === undefined || !user.enabled) throw unauthenticated(response, 'the token is not valid');
    if (result.token.clusterId !== null && options.allowClusterScoped !== true) {
      throw new KubegateError('FORBIDDEN', 'a cluster-scoped token cannot be used for the REST API');
    }
    const caller: Caller = Object.freeze({
      user,
      identity: result.user,
      token: result.token,
      provider: result.user.extra[EXTRA_PROVIDER]?.[0] ?? ctx.providers.local.name,
      isAdmin: user.globalRole === 'admin',
    });
    response.locals[CALLER] = caller;
    next();
  };
}

/**
 * For public routes that show an admin more: a request without a token stays anonymous, and
 * so does one whose token does not authenticate (the route then answers what anyone gets,
 * never a 401 a client without a valid token could not act on).
 */
export function authenticateIfPresent(ctx: ProxyApiContext): RequestHandler {
  const strict = authenticate(ctx);
  return async (request, response, next) => {
    if (request.headers.authorization !== undefined) {
      try {
        await strict(request, response, () => undefined);
      } catch {
        response.removeHeader('WWW-Authenticate');
      }
    }
    next();
  };
}

/** The authenticated caller; a TypeError when `authenticate` did not run first. */
export function callerOf(response: Response): Caller {
  const caller: unknown = response.locals[CALLER];
  if (caller === undefined) throw new TypeError('callerOf: the route is missing the authenticate middleware');
  return caller as Caller;
}

/** The authenticated caller, or undefined when `authenticate` did not (yet) accept one. */
export function callerIfAny(response: Response): Caller | undefined {
  return response.locals[CALLER] as Caller | undefined;
}

/** 403 unless the caller's global role is admin. */
export const requireAdmin: RequestHandler = (_request, response, next) => {
  if (!callerOf(response).isAdmin) throw new KubegateError('FORBIDDEN', 'this needs the global role admin');
  next();
};
