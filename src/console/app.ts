/**
 * The web console: server-rendered HTML pages under `/console/`, served by `kubegate proxy`
 * on the same origin as the REST API, and working without JavaScript (the console ships
 * none). Every action is a call to the REST API (api-client.ts): the console adds pages,
 * forms, a session cookie and CSRF protection, and no rule of its own about who may do what.
 *
 * Assembly, in order: security headers on every answer (security.ts) → `/` sends browsers
 * (Accept: text/html) to `/console/`, anyone else to the REST API → the stylesheet → form
 * bodies (urlencoded, 64 KiB) → login/logout → the pages (each route checks the session and,
 * for POSTs, the CSRF token: session.ts) → 404 page → the one error handler: a session the API
 * no longer accepts goes back to the login page; any other error is a page with the catalog
 * message and status (unknown errors: the generic INTERNAL message, detail only in the log).
 *
 * Pages:
 *   /console/login, /console/logout                       pages/login.ts
 *   /console/  (my clusters, kubeconfig downloads)        pages/clusters.ts
 *   /console/tokens                                       pages/tokens.ts
 *   /console/clusters/:id/members                         pages/members.ts  (admins, owners)
 *   /console/admin/users | clusters | providers           pages/users.ts, manage-clusters.ts, providers.ts (admins)
 */
import type { IncomingMessage, RequestListener } from 'node:http';
import express from 'express';
import type { ErrorRequestHandler, Express, RequestHandler } from 'express';
import { KubegateError, toKubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import { inProcessApi } from './api-client.js';
import type { ConsoleContext } from './context.js';
import { html } from './html.js';
import { CONSOLE_BASE, ICON_PATH, STYLESHEET_PATH, renderPage } from './layout.js';
import { clusterRoutes } from './pages/clusters.js';
import { loginRoutes } from './pages/login.js';
import { manageClusterRoutes } from './pages/manage-clusters.js';
import { memberRoutes } from './pages/members.js';
import { providerRoutes } from './pages/providers.js';
import { tokenRoutes } from './pages/tokens.js';
import { userRoutes } from './pages/users.js';
import { createCsrfTokens, setSecurityHeaders } from './security.js';
import { LOGIN_PATH, endSession } from './session.js';
import { CONSOLE_CSS, CONSOLE_ICON } from './styles.js';

export { deriveConsoleKey } from './security.js';

export interface ConsoleOptions {
  /** The REST API's request handler (createProxyApp): every console action goes through it. */
  readonly api: RequestListener;
  /** From deriveConsoleKey(secret key): the same in every worker and replica. */
  readonly key: Buffer;
  /** Lifetime of a console session (its login token and cookie). */
  readonly sessionTtlSeconds: number;
  readonly logger: Logger;
  /**
   * The browser's address, handed to the API for its login limits and audit trail: the same
   * resolver as the API's (trusted proxies' X-Forwarded-For); default the socket's peer.
   */
  readonly clientAddress?: ((request: IncomingMessage) => string | undefined) | undefined;
}

const FORM_BODY_LIMIT = 64 * 1024;

/** Whether the console answers this request path: `/`, `/console` and below. */
export function isConsolePath(url: string): boolean {
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  return path === '/' || path === CONSOLE_BASE || path.startsWith(`${CONSOLE_BASE}/`);
}

export function createConsoleApp(options: ConsoleOptions): Express {
  const ctx: ConsoleContext = {
    api: inProcessApi(options.api),
    csrf: createCsrfTokens(options.key),
    sessionTtlSeconds: options.sessionTtlSeconds,
    logger: options.logger,
    clientAddress: options.clientAddress ?? ((request) => request.socket.remoteAddress),
  };
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  app.use((_request, response, next) => {
    setSecurityHeaders(response);
    next();
  });

  app.all('/', (request, response) => {
    if ((request.method === 'GET' || request.method === 'HEAD') && request.accepts(['application/json', 'text/html']) === 'text/html') {
      response.redirect(302, `${CONSOLE_BASE}/`);
      return;
    }
    options.api(request, response);
  });
  app.get(CONSOLE_BASE, (request, response, next) => {
    // Without strict routing, `/console/` matches here too.
    if (request.path === CONSOLE_BASE) response.redirect(301, `${CONSOLE_BASE}/`);
    else next();
  });
  app.get(STYLESHEET_PATH, (_request, response) => {
    response.type('text/css; charset=utf-8').send(CONSOLE_CSS);
  });
  app.get(ICON_PATH, (_request, response) => {
    response.type('image/svg+xml').send(CONSOLE_ICON);
  });

  const pages = express.Router();
  pages.use(express.urlencoded({ extended: false, limit: FORM_BODY_LIMIT, parameterLimit: 100 }));
  pages.use(loginRoutes(ctx));
  pages.use(clusterRoutes(ctx));
  pages.use(tokenRoutes(ctx));
  pages.use(memberRoutes(ctx));
  pages.use(userRoutes(ctx));
  pages.use(manageClusterRoutes(ctx));
  pages.use(providerRoutes(ctx));
  app.use(CONSOLE_BASE, pages);

  app.use(notFound);
  app.use(errorPage(options.logger));
  return app;
}

const notFound: RequestHandler = () => {
  throw new KubegateError('NOT_FOUND', 'there is no such page');
};

function errorPage(logger: Logger): ErrorRequestHandler {
  return (error: unknown, request, response, _next) => {
    const failure = consoleError(error);
    const where = { method: request.method, path: request.path, code: failure.code };
    if (failure.status >= 500) logger.error({ ...where, err: failure.cause ?? failure }, 'console request failed');
    else logger.debug(where, 'console request refused');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    if (failure.code === 'UNAUTHENTICATED') {
      endSession(response);
      response.redirect(303, LOGIN_PATH);
      return;
    }
    const content = html`<h1>${failure.status === 404 ? 'Not found' : 'Something went wrong'}</h1>
<p>${failure.message}</p><p><a href="${CONSOLE_BASE}/">Back to my clusters</a></p>`;
    response
      .status(failure.status)
      .type('text/html; charset=utf-8')
      .send(renderPage({ title: 'Error', flash: { kind: 'error', message: `${failure.code}: ${failure.message}` } }, content));
  };
}

/** Errors of the body parser become catalog errors; unknown ones INTERNAL. */
function consoleError(error: unknown): KubegateError {
  if (error instanceof KubegateError) return error;
  const { type } = (error ?? {}) as { type?: unknown };
  if (type === 'entity.too.large') return new KubegateError('PAYLOAD_TOO_LARGE', 'the form is larger than 64 KiB', { cause: error });
  if (typeof type === 'string' && type.startsWith('entity.')) return new KubegateError('BAD_REQUEST', 'the form could not be read', { cause: error });
  if (type === 'parameters.too.many') return new KubegateError('BAD_REQUEST', 'the form has too many fields', { cause: error });
  return toKubegateError(error);
}
