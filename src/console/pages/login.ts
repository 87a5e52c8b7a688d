/**
 * Logging in and out of the console.
 *
 *   GET  /console/login                          the form (password providers) and a button per browser provider
 *   POST /console/login                          {provider, username, password, _csrf} → POST /v1/login
 *   GET  /console/login/:provider/start          browser providers: PKCE verifier cookie → /v1/login/:provider?console_challenge=
 *   GET  /console/login/:provider/complete?code= the API's callback sends the browser here; code + verifier → /exchange
 *   POST /console/logout                         revokes the session's token (DELETE /v1/tokens/:name), drops the cookie
 *
 * Before a session exists, the login form's CSRF token is bound to a random pre-login
 * cookie, so another site cannot log a browser in as someone else (login CSRF). A browser
 * login is bound to the browser that started it by the PKCE verifier in an HttpOnly cookie:
 * the code the provider's callback hands over is worthless without it. The start is a link,
 * not a form: the policy's `form-action 'self'` would stop a form's redirect to the provider.
 */
import { createHash } from 'node:crypto';
import { Router } from 'express';
import type { Request, Response } from 'express';
import { KubegateError, toKubegateError } from '../../errors.js';
import type { ProviderSummary } from '../api-types.js';
import { itemsOf } from '../api-client.js';
import type { ConsoleContext } from '../context.js';
import { formField, paramOf, remoteAddressOf, sessionOf } from '../context.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { CONSOLE_BASE, csrfField, renderPage } from '../layout.js';
import type { Flash } from '../layout.js';
import {
  CSRF_FIELD,
  LOGIN_VERIFIER_COOKIE,
  PRELOGIN_COOKIE,
  SESSION_COOKIE,
  appendCookie,
  cookie,
  isSameOriginRequest,
  randomCookieValue,
  readCookie,
} from '../security.js';
import { LOGIN_PATH, csrfRefused, endSession, requireSession, sessionUser, startSession } from '../session.js';

/** How long a browser login may take at the provider (as the API's own state lifetime). */
const BROWSER_LOGIN_SECONDS = 10 * 60;
const PROVIDER_NAME = /^[a-z][a-z0-9-]{0,31}$/;

async function providers(ctx: ConsoleContext): Promise<ProviderSummary[]> {
  return itemsOf<ProviderSummary>(await ctx.api.call('GET', '/v1/providers'));
}

function loginForm(all: readonly ProviderSummary[], csrf: string, username: string): Html {
  const password = all.filter((provider) => provider.login === 'password');
  const browser = all.filter((provider) => provider.login === 'browser');
  return html`<div class="login"><section class="card">
<h1>Log in to kubegate</h1>
${
  password.length === 0
    ? undefined
    : html`<form class="stack" method="post" action="${LOGIN_PATH}">
${csrfField(csrf)}
${
  password.length === 1
    ? html`<input type="hidden" name="provider" value="${password[0]!.name}">`
    : html`<label for="provider">Identity provider
<select id="provider" name="provider">${password.map((provider) => html`<option value="${provider.name}">${provider.name} (${provider.type})</option>`)}</select></label>`
}
<label for="username">Username<input id="username" name="username" type="text" autocomplete="username" required value="${username}"></label>
<label for="password">Password<input id="password" name="password" type="password" autocomplete="current-password" required></label>
<div><button type="submit">Log in</button></div>
</form>`
}
${
  browser.length === 0
    ? undefined
    : html`<div class="providers" role="group" aria-label="Log in at your identity provider">
${password.length === 0 ? undefined : html`<p class="muted">or</p>`}
${browser.map(
  (provider) => html`<a class="button secondary" href="${CONSOLE_BASE}/login/${encodeURIComponent(provider.name)}/start">Log in with ${provider.name} (${provider.type === 'github' ? 'GitHub' : 'OIDC'})</a>`,
)}
</div>`
}
</section></div>`;
}

export function loginRoutes(ctx: ConsoleContext): Router {
  const router = Router();

  /** The pre-login cookie's value, set when the browser has none. */
  function prelogin(request: Request, response: Response): string {
    const existing = readCookie(request, PRELOGIN_COOKIE);
    if (existing !== undefined && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const value = randomCookieValue();
    appendCookie(response, cookie(PRELOGIN_COOKIE, value, ctx.sessionTtlSeconds));
    return value;
  }

  async function showLogin(request: Request, response: Response, options: { flash?: Flash; status?: number; username?: string } = {}): Promise<void> {
    const csrf = ctx.csrf.tokenFor('login', prelogin(request, response));
    const body = renderPage({ title: 'Log in', flash: options.flash }, loginForm(await providers(ctx), csrf, options.username ?? ''));
    response.status(options.status ?? 200).type('text/html; charset=utf-8').send(body);
  }

  function loginFailed(error: unknown): Flash {
    return { kind: 'error', message: toKubegateError(error).message };
  }

  function statusOf(error: unknown): number {
    return toKubegateError(error).status;
  }

  router.get('/login', async (request, response) => {
    const token = readCookie(request, SESSION_COOKIE);
    if (token !== undefined) {
      // Still logged in? Then the clusters page; else the cookie is dropped on the way.
      if ((await sessionUser(ctx, token)) !== undefined) {
        response.redirect(303, `${CONSOLE_BASE}/`);
        return;
      }
      endSession(response);
    }
    await showLogin(request, response);
  });

  router.post('/login', async (request, response) => {
    const binding = readCookie(request, PRELOGIN_COOKIE);
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (binding === undefined || !isSameOriginRequest(request) || !ctx.csrf.verify('login', binding, body[CSRF_FIELD])) {
      await showLogin(request, response, { flash: loginFailed(csrfRefused()), status: 403 });
      return;
    }
    const username = typeof body['username'] === 'string' ? body['username'] : '';
    try {
      const answer = await ctx.api.call('POST', '/v1/login', {
        body: { provider: formField(request, 'provider'), username: formField(request, 'username'), password: formField(request, 'password'), ttl: ctx.sessionTtlSeconds },
        remoteAddress: remoteAddressOf(ctx, request),
      });
      const { token, expiresAt } = answer.json as { token: string; expiresAt: string | null };
      appendCookie(response, cookie(PRELOGIN_COOKIE, '', 0));
      startSession(response, token, expiresAt, ctx.sessionTtlSeconds);
      response.redirect(303, `${CONSOLE_BASE}/`);
    } catch (error) {
      await showLogin(request, response, { flash: loginFailed(error), status: statusOf(error), username });
    }
  });

  router.get('/login/:provider/start', (request, response) => {
    const provider = paramOf(request, 'provider');
    if (!PROVIDER_NAME.test(provider)) throw new KubegateError('PROVIDER_UNKNOWN');
    const verifier = randomCookieValue();
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    appendCookie(response, cookie(LOGIN_VERIFIER_COOKIE, verifier, BROWSER_LOGIN_SECONDS));
    const query = new URLSearchParams({ console_challenge: challenge, ttl: String(ctx.sessionTtlSeconds) });
    response.redirect(303, `/v1/login/${encodeURIComponent(provider)}?${query.toString()}`);
  });

  router.get('/login/:provider/complete', async (request, response) => {
    const provider = paramOf(request, 'provider');
    const verifier = readCookie(request, LOGIN_VERIFIER_COOKIE);
    const code = request.query['code'];
    appendCookie(response, cookie(LOGIN_VERIFIER_COOKIE, '', 0));
    try {
      if (!PROVIDER_NAME.test(provider) || verifier === undefined || typeof code !== 'string') throw new KubegateError('LOGIN_STATE_INVALID');
      const answer = await ctx.api.call('POST', `/v1/login/${encodeURIComponent(provider)}/exchange`, {
        body: { code, code_verifier: verifier },
        remoteAddress: remoteAddressOf(ctx, request),
      });
      const { token, expiresAt } = answer.json as { token: string; expiresAt: string | null };
      startSession(response, token, expiresAt, ctx.sessionTtlSeconds);
      response.redirect(303, `${CONSOLE_BASE}/`);
    } catch (error) {
      await showLogin(request, response, { flash: loginFailed(error), status: statusOf(error) });
    }
  });

  router.post('/logout', requireSession(ctx), async (_request, response) => {
    const session = sessionOf(response);
    // Revoked on the server: the cookie is worthless from now on, wherever it was copied.
    await ctx.api.call('DELETE', `/v1/tokens/${encodeURIComponent(session.me.tokenName)}`, { token: session.token });
    endSession(response);
    response.redirect(303, LOGIN_PATH);
  });

  return router;
}
