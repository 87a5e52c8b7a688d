/**
 * API tokens: `POST /v1/tokens` (a new `api` token for the caller, optionally limited to a
 * cluster the caller can use; the secret is in this answer only), `GET /v1/tokens` (the
 * caller's tokens; admins may ask for another user's with `?userId=`) and
 * `DELETE /v1/tokens/:name` (own tokens; admins any).
 *
 * Revocation takes effect on the next request: the row is deleted and the cached answers
 * for that token name are dropped in this process (other replicas drop theirs when they
 * hear the store's change). A token that is not the caller's is "not found" to a non-admin.
 * Races (issue #16.5): an authentication lookup under way during the revocation is never
 * cached (auth/cached.ts), and a request whose lookup succeeded just before it is refused
 * when its admission ends, not forwarded (proxy/forward.ts); open streams are cut.
 */
import { Router } from 'express';
import * as z from 'zod';
import { isUserId } from '../../auth/user.js';
import { KubegateError } from '../../errors.js';
import { MAX_TOKEN_NAME_LENGTH, tryParseToken } from '../../tokens/format.js';
import { audited, auditTarget } from './audit.js';
import { authenticate, callerOf } from './authenticate.js';
import { visibleCluster } from './cluster-access.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { expiryFor, issueToken, tokenView } from './issue-token.js';
import { parseBody, parseQuery, plainText, ttlInput, ttlSeconds } from './validation.js';

const createTokenBody = z.strictObject({
  description: plainText(0, 256).optional(),
  ttl: ttlInput.optional(),
  cluster: z.string().min(1).max(63).optional(),
});

const listTokensQuery = z.strictObject({ userId: z.string().min(1).max(64).optional() });

export function tokenRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx);
  const { tokens } = ctx.config;

  router
    .route('/tokens')
    .post(audited('token.create'), auth, async (request, response) => {
      const caller = callerOf(response);
      const body = parseBody(createTokenBody, request.body);
      const ttl = body.ttl === undefined ? tokens.apiTtlSeconds : ttlSeconds(body.ttl, 'ttl');
      expiryFor(ctx, ttl, tokens.apiMaxTtlSeconds);
      const clusterId = body.cluster === undefined ? null : visibleCluster(ctx, caller, body.cluster, 'cluster').cluster.id;
      const issued = await issueToken(ctx, {
        userId: caller.user.id,
        provider: caller.provider,
        kind: 'api',
        clusterId,
        description: body.description ?? '',
        ttlSeconds: ttl,
        maxTtlSeconds: tokens.apiMaxTtlSeconds,
      });
      auditTarget(response, { tokenName: issued.stored.name, kind: 'api', cluster: issued.stored.clusterId, owner: caller.user.id });
      response.status(201).json({
        name: issued.stored.name,
        token: issued.token,
        expiresAt: issued.stored.expiresAt?.toISOString() ?? null,
        cluster: issued.stored.clusterId,
      });
    })
    .get(auth, async (request, response) => {
      const caller = callerOf(response);
      const query = parseQuery(listTokensQuery, request.query);
      const userId = query.userId ?? caller.user.id;
      if (userId !== caller.user.id && !caller.isAdmin) throw new KubegateError('FORBIDDEN', "only admins may list another user's tokens");
      const list = isUserId(userId) ? await ctx.store.listTokens({ userId }) : [];
      response.json({ items: list.map(tokenView) });
    })
    .all(methodNotAllowed('GET', 'POST'));

  router
    .route('/tokens/:name')
    .delete(audited('token.revoke', (params) => ({ tokenName: (params['name'] ?? '').slice(0, MAX_TOKEN_NAME_LENGTH) })), auth, async (request, response) => {
      const caller = callerOf(response);
      const name = request.params['name'] ?? '';
      const notFound = new KubegateError('NOT_FOUND', 'no such token');
      if (name.length > MAX_TOKEN_NAME_LENGTH || tryParseToken(`${name}:x`)?.name !== name) throw notFound;
      const token = await ctx.store.getToken(name);
      if (token === undefined || (token.userId !== caller.user.id && !caller.isAdmin)) throw notFound;
      auditTarget(response, { owner: token.userId });
      await ctx.store.deleteToken(name);
      ctx.authenticator.invalidateToken(name);
      response.status(204).end();
    })
    .all(methodNotAllowed('DELETE'));

  return router;
}
