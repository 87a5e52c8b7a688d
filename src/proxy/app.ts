/**
 * The proxy's REST API as one express application, without listening: the process hands it
 * every request that is not `/k8s/clusters/…`, `/healthz`, `/readyz`, `/metrics` or the web
 * console's (`/console/…`, which calls this app in process: src/console/api-client.ts).
 *
 * Assembly, in order: response headers common to every answer (`Cache-Control: no-store` —
 * answers carry tokens and per-user data; `X-Content-Type-Options: nosniff`) → the audit
 * trail of administrative actions and logins (api/audit.ts) → JSON body
 * gate (415 / 413 / 400, see validation.ts) → unauthenticated routes (`/v1/cacerts`,
 * `/v1/login`, `/v1/providers`) → authenticated routes (each route authenticates itself,
 * so a method or path that does not exist is a 405 / 404 for anyone) → 404 → the one error
 * handler (error-response.ts).
 *
 * The client address used for login limits is the socket's, or from `X-Forwarded-For` when
 * the socket's peer is one of `trustedProxies` (client-address.ts); express's `trust proxy`
 * stays off.
 * Routes reach everything through the context object (context.ts); nothing is global.
 *
 * Routes (lists answer `{"items": [...]}`; errors `{"error":{"code","message"[,"field"]}}`):
 *   GET    /v1/cacerts                          proxy CA PEM (text/plain)          public
 *   GET    /v1/providers                        providers that take logins         public
 *   POST   /v1/login                            {provider,username,password,ttl?}  public
 *   DELETE /v1/login-limits?username=…[&provider=…] | ?address=…                admin
 *   GET    /v1/login/:provider[/callback] · POST …/exchange · …/device[/token]   public
 *                                              (OIDC, GitHub: see api/browser-login.ts)
 *   GET    /v1/me · POST /v1/me/password        caller; own local password
 *   POST|GET /v1/users · GET|PATCH|DELETE /v1/users/:id                        admin
 *   POST|GET /v1/tokens (?userId= admin) · DELETE /v1/tokens/:name
 *   POST|GET /v1/clusters · GET /v1/clusters/:id · PATCH|DELETE (admin)
 *   POST|GET /v1/clusters/:id/members · DELETE /v1/clusters/:id/members/:kind/:name
 *   GET    /v1/clusters/:id/kubeconfig[?ttl=30d]               (application/yaml)
 *   GET    /v1/clusters/:id/import · GET|DELETE /v1/clusters/:id/agent-credentials[/:name] admin
 *   GET    /v1/import/<registration token>.yaml · POST /v1/agent/register    (see api/agents.ts)
 *   GET    /.well-known/openid-configuration · GET /openid/v1/jwks             public
 *   POST   /v1/clusters/:id/jwt · GET /v1/clusters/:id/authentication-config (see api/issuer.ts)
 * Every route but the public ones needs `Authorization: Bearer <global token>`.
 */
import express from 'express';
import type { Express } from 'express';
import { KubegateError } from '../errors.js';
import { clientAddressResolver } from './client-address.js';
import { createLoginRateLimiter, createStoreFailureCounter } from './login-rate-limit.js';
import { agentRoutes } from './api/agents.js';
import { clusterRoutes } from './api/clusters.js';
import type { ApiServices, ProxyApiContext } from './api/context.js';
import { apiAuditTrail } from './api/audit.js';
import { apiErrorHandler, methodNotAllowed, notFound } from './api/error-response.js';
import { issuerRoutes } from './api/issuer.js';
import { kubeconfigRoutes } from './api/kubeconfig.js';
import { loginRoutes } from './api/login.js';
import { memberRoutes } from './api/members.js';
import { tokenRoutes } from './api/tokens.js';
import { userRoutes } from './api/users.js';
import { webLoginRoutes } from './api/browser-login.js';
import { jsonBody } from './api/validation.js';

export type { ProxyApiConfig, ProxyApiContext } from './api/context.js';

export function createProxyApp(ctx: ProxyApiContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  const services: ApiServices = {
    limiter: createLoginRateLimiter({
      ...ctx.config.loginRateLimit,
      // In the store, so every worker and replica on it counts against the same limits.
      counters: (kind) => createStoreFailureCounter({ store: ctx.store, counter: kind, windowSeconds: ctx.config.loginRateLimit.windowSeconds, now: () => ctx.now().getTime() }),
    }),
    clientAddress: clientAddressResolver(ctx.config.trustedProxies),
  };

  app.use((_request, response, next) => {
    response.setHeader('Cache-Control', 'no-store');
    response.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });
  app.use(apiAuditTrail(ctx.audit, services.clientAddress));
  app.use(jsonBody());

  const v1 = express.Router();
  v1.route('/cacerts')
    .get((_request, response) => {
      if (ctx.caPem === null) throw new KubegateError('NOT_FOUND', 'the proxy has no CA of its own: its serving certificate was supplied by the operator');
      response.type('text/plain').send(ctx.caPem);
    })
    .all(methodNotAllowed('GET'));
  v1.use(loginRoutes(ctx, services));
  v1.use(webLoginRoutes(ctx));
  v1.use(userRoutes(ctx, services));
  v1.use(tokenRoutes(ctx));
  v1.use(clusterRoutes(ctx));
  v1.use(memberRoutes(ctx));
  v1.use(kubeconfigRoutes(ctx));
  v1.use(agentRoutes(ctx));
  app.use('/v1', v1);
  app.use(issuerRoutes(ctx));

  app.use(notFound);
  app.use(apiErrorHandler(ctx.logger));
  return app;
}
