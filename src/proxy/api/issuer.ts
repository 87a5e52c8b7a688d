/**
 * The token issuer's routes (the `jwt` authorized-endpoint mode, src/issuer/):
 *
 *   GET  /.well-known/openid-configuration   discovery document               public
 *   GET  /openid/v1/jwks                      the public signing keys          public
 *   POST /v1/clusters/:id/jwt                 a short-lived JWT for the caller  members
 *   GET  /v1/clusters/:id/authentication-config[?version=v1beta1|v1alpha1|v1]  members, admin
 *
 * Who gets a JWT: a caller with a global kubegate token (cluster-scoped tokens are refused
 * by `authenticate`, as everywhere in the REST API) whose user is enabled and who is a
 * member of the cluster — the same rule as the proxy path, where an admin who is not a
 * member is refused too. `authenticate` reads the user from the store on every call, so a
 * disabled user or a revoked token gets no new JWT from the very next request.
 * The JWT carries the identity `authenticate` produced: the identity the proxy impersonates.
 */
import { Router } from 'express';
import * as z from 'zod';
import { KubegateError } from '../../errors.js';
import { AUTHENTICATION_CONFIG_VERSIONS, DEFAULT_CA_FILE, authenticationConfiguration, oidcFlags } from '../../issuer/authentication-config.js';
import { DISCOVERY_PATH, JWKS_PATH } from '../../issuer/issuer.js';
import { aceModeOf } from '../../store/store.js';
import { authenticate, callerOf } from './authenticate.js';
import { visibleCluster } from './cluster-access.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { parseQuery } from './validation.js';

const authenticationConfigQuery = z.strictObject({ version: z.enum(AUTHENTICATION_CONFIG_VERSIONS).optional() });

export function issuerRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router
    .route(DISCOVERY_PATH)
    .get((_request, response) => {
      response.json(ctx.issuer.discovery());
    })
    .all(methodNotAllowed('GET'));

  router
    .route(JWKS_PATH)
    .get(async (_request, response) => {
      response.json(await ctx.issuer.jwks());
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/v1/clusters/:id/jwt')
    .post(auth, async (request, response) => {
      const caller = callerOf(response);
      const { cluster, role } = visibleCluster(ctx, caller, request.params['id'] ?? '');
      if (role === null) throw new KubegateError('FORBIDDEN', 'only members of the cluster get tokens for it');
      const issued = await ctx.issuer.issue(caller.identity, cluster.id);
      response.status(201).json({
        token: issued.token,
        cluster: cluster.id,
        issuedAt: issued.issuedAt.toISOString(),
        expiresAt: issued.expiresAt.toISOString(),
      });
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/v1/clusters/:id/authentication-config')
    .get(auth, (request, response) => {
      const { cluster } = visibleCluster(ctx, callerOf(response), request.params['id'] ?? '');
      const query = parseQuery(authenticationConfigQuery, request.query);
      const input = { issuerUrl: ctx.issuer.issuerUrl(), clusterId: cluster.id, caPem: ctx.caPem, usernameClaim: ctx.issuer.usernameClaim };
      response.json({
        cluster: cluster.id,
        aceMode: aceModeOf(cluster.ace),
        issuer: input.issuerUrl,
        audience: cluster.id,
        tokenTtlSeconds: ctx.issuer.tokenTtlSeconds,
        authenticationConfiguration: authenticationConfiguration({ ...input, version: query.version ?? 'v1beta1' }),
        oidcFlags: oidcFlags(input),
        caFile: ctx.caPem === null ? null : DEFAULT_CA_FILE,
        caPem: ctx.caPem,
      });
    })
    .all(methodNotAllowed('GET'));

  return router;
}
