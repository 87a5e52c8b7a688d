/**
 * Console sessions: the session cookie holds a kubegate `login` token; each request checks it
 * with the REST API (`GET /v1/me`), so a revoked token, a disabled user or an expired session
 * ends the console session at once, on every replica. A token the API does not accept, or a
 * cluster-scoped one (no console login ever makes one), is dropped and the browser sent to
 * the login page.
 *
 * Every request that is not GET or HEAD must carry the session's CSRF token and must not come
 * from another site (security.ts); otherwise it is refused with 403 before the API is asked
 * anything.
 */
import type { RequestHandler, Response } from 'express';
import { KubegateError } from '../errors.js';
import type { Me } from './api-types.js';
import type { ConsoleContext } from './context.js';
import { setSession } from './context.js';
import { CONSOLE_BASE } from './layout.js';
import { CSRF_FIELD, SESSION_COOKIE, appendCookie, cookie, isSameOriginRequest, readCookie } from './security.js';

export const LOGIN_PATH = `${CONSOLE_BASE}/login`;

/** Sets the session cookie for a fresh login token, valid until the token expires. */
export function startSession(response: Response, token: string, expiresAt: string | null, fallbackSeconds: number): void {
  const seconds = expiresAt === null ? fallbackSeconds : Math.floor((Date.parse(expiresAt) - Date.now()) / 1000);
  appendCookie(response, cookie(SESSION_COOKIE, token, Math.min(seconds, fallbackSeconds)));
}

export function endSession(response: Response): void {
  appendCookie(response, cookie(SESSION_COOKIE, '', 0));
}

/** A token the cookie may hold: `name:secret` in cookie-safe characters. */
function plausibleToken(value: string | undefined): value is string {
  return value !== undefined && value.length <= 512 && /^[A-Za-z0-9._~/-]+:[A-Za-z0-9._~-]+$/.test(value);
}

/** The refusal of a state-changing request without a valid CSRF token or from another site. */
export function csrfRefused(): KubegateError {
  return new KubegateError('FORBIDDEN', 'the form did not come from this console or has expired (CSRF check failed); reload the page and try again');
}

/**
 * The user of a session token, or undefined when the API does not take it (401) or it is
 * cluster-scoped. Any other answer is AUTH_UNDECIDED: an outage is not a logout.
 */
export async function sessionUser(ctx: ConsoleContext, token: string): Promise<Me | undefined> {
  if (!plausibleToken(token)) return undefined;
  const answer = await ctx.api.send('GET', '/v1/me', { token });
  if (answer.status === 401) return undefined;
  if (answer.status !== 200) throw new KubegateError('AUTH_UNDECIDED');
  const me = answer.json as Me & { cluster: string | null };
  return me.cluster === null ? me : undefined;
}

export function requireSession(ctx: ConsoleContext): RequestHandler {
  return async (request, response, next) => {
    const token = readCookie(request, SESSION_COOKIE);
    const toLogin = (): void => {
      if (token !== undefined) endSession(response);
      response.redirect(303, LOGIN_PATH);
    };
    if (token === undefined) {
      toLogin();
      return;
    }
    const me = await sessionUser(ctx, token);
    if (me === undefined) {
      toLogin();
      return;
    }
    const csrf = ctx.csrf.tokenFor('session', token);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const body = (request.body ?? {}) as Record<string, unknown>;
      if (!isSameOriginRequest(request) || !ctx.csrf.verify('session', token, body[CSRF_FIELD])) throw csrfRefused();
    }
    setSession(response, { token, me, csrf });
    next();
  };
}
