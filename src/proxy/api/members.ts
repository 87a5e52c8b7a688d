/**
 * Cluster membership: `POST|GET /v1/clusters/:id/members` and
 * `DELETE /v1/clusters/:id/members/:kind/:name`.
 *
 * Members and admins may list; admins and the cluster's owners may change. A `User`
 * subject is a kubegate user ID that exists; a `Group` subject is a group exactly as
 * identities carry it (provider-prefixed, e.g. `ldap:cn=ops,…`), never a `system:` name —
 * so no membership can grant a cluster to every authenticated user. Group names may
 * contain `/` (GitHub teams): in the DELETE path they are percent-encoded.
 */
import { Router } from 'express';
import * as z from 'zod';
import { assertProviderName, isUserId } from '../../auth/user.js';
import { KubegateError, isKubegateError } from '../../errors.js';
import type { Membership } from '../../store/store.js';
import { audited, auditTarget, idParam } from './audit.js';
import { authenticate, callerOf } from './authenticate.js';
import { canManageMembers, visibleCluster } from './cluster-access.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { hasControlCharacters, parseBody } from './validation.js';

const subjectKind = z.enum(['User', 'Group']);
const memberBody = z.strictObject({
  kind: subjectKind,
  name: z.string().min(1).max(1024),
  role: z.enum(['owner', 'member', 'viewer']),
});

function memberView(membership: Membership): Record<string, unknown> {
  return {
    kind: membership.subjectKind,
    name: membership.subjectName,
    role: membership.role,
    createdAt: membership.createdAt.toISOString(),
  };
}

export function memberRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx);
  const { store, directory } = ctx;
  const auditRemoval = audited('member.remove', (params) => ({
    clusterId: (params['id'] ?? '').slice(0, 64),
    kind: (params['kind'] ?? '').slice(0, 16),
    name: (params['name'] ?? '').slice(0, 1024),
  }));

  router
    .route('/clusters/:id/members')
    .post(audited('member.add', idParam('clusterId')), auth, async (request, response) => {
      const caller = callerOf(response);
      const visible = visibleCluster(ctx, caller, request.params['id'] ?? '');
      if (!canManageMembers(caller, visible)) throw new KubegateError('FORBIDDEN', "only admins and the cluster's owners may change its members");
      const body = parseBody(memberBody, request.body);
      if (body.kind === 'User') {
        if (!isUserId(body.name) || (await store.getUser(body.name)) === undefined) {
          throw new KubegateError('BAD_REQUEST', 'name must be the ID of an existing user', { field: 'name' });
        }
      } else {
        try {
          assertProviderName(body.name, 'name');
        } catch (error) {
          if (isKubegateError(error)) throw new KubegateError(error.code, error.message, { field: 'name' });
          throw error;
        }
      }
      const subjectName = body.kind === 'Group' ? canonicalGroup(ctx, body.name) : body.name;
      auditTarget(response, { kind: body.kind, name: subjectName, role: body.role });
      const membership = await store.putMembership({ clusterId: visible.cluster.id, subjectKind: body.kind, subjectName, role: body.role });
      await directory.refresh();
      response.status(201).json(memberView(membership));
    })
    .get(auth, async (request, response) => {
      const visible = visibleCluster(ctx, callerOf(response), request.params['id'] ?? '');
      response.json({ items: (await store.listMemberships(visible.cluster.id)).map(memberView) });
    })
    .all(methodNotAllowed('GET', 'POST'));

  router
    .route('/clusters/:id/members/:kind/:name')
    .delete(auditRemoval, auth, async (request, response) => {
      const caller = callerOf(response);
      const visible = visibleCluster(ctx, caller, request.params['id'] ?? '');
      if (!canManageMembers(caller, visible)) throw new KubegateError('FORBIDDEN', "only admins and the cluster's owners may change its members");
      const kind = subjectKind.safeParse(request.params['kind']);
      const notFound = new KubegateError('NOT_FOUND', 'no such member');
      if (!kind.success) throw notFound;
      const name = request.params['name'] ?? '';
      if (hasControlCharacters(name)) throw notFound;
      const subjectName = kind.data === 'Group' ? canonicalGroup(ctx, name) : name;
      if (!(await store.deleteMembership(visible.cluster.id, kind.data, subjectName))) throw notFound;
      await directory.refresh();
      response.status(204).end();
    })
    .all(methodNotAllowed('DELETE'));

  return router;
}

/**
 * `corp:CN=Ops, OU=Groups,DC=corp` → `corp:cn=ops,ou=groups,dc=corp` when `corp` is a provider
 * that spells its group names one canonical way (LDAP DNs); any other name is kept as given.
 */
function canonicalGroup(ctx: ProxyApiContext, name: string): string {
  const colon = name.indexOf(':');
  if (colon <= 0) return name;
  const provider = ctx.providers.get(name.slice(0, colon));
  const canonical = provider?.canonicalGroupName?.(name.slice(colon + 1));
  return canonical === undefined ? name : `${name.slice(0, colon + 1)}${canonical}`;
}
