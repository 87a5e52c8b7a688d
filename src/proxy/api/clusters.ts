/**
 * Clusters: `POST /v1/clusters` and `PATCH|DELETE /v1/clusters/:id` for admins;
 * `GET /v1/clusters` (the clusters the caller may use; admins: all) and
 * `GET /v1/clusters/:id` (members and admins, with the background probe's status).
 *
 * Design notes:
 * - Views never contain credentials (token, client key or certificate): they are written
 *   here and read only by the upstream pool.
 * - The admin who registers a cluster becomes its `owner`, so they can use it and delegate
 *   it at once.
 * - Deleting a cluster first marks it `deleting` (nobody can use it from then on), then the
 *   sync removes kubegate's objects from it (tokens, Secrets, user attributes, role
 *   bindings), and only then is it deleted from the store with its memberships and tokens:
 *   while any copy of a token may still work in the cluster, the token can be revoked. The
 *   answer is 204 when that finished within DELETE_WAIT_MS, else 202 with the cluster in
 *   state `deleting` (the sync retries until it succeeds; GET shows why it has not yet).
 *   `?force=true` forgets the cluster at once, without cleaning it (a cluster that is gone).
 * - Every change awaits the directory's reload before answering, so the caller's next
 *   request (through the proxy too) sees it; a changed cluster is probed in the background.
 */
import { Router } from 'express';
import type * as z from 'zod';
import type { Response } from 'express';
import { KubegateError, isKubegateError } from '../../errors.js';
import { aceModeOf } from '../../store/store.js';
import type { Cluster, ClusterPatch, ClusterRole, NewCluster, TunnelRecord } from '../../store/store.js';
import { isHealthy, type ClusterStatus } from '../../clusters/status.js';
import type { CredentialCheck } from '../../clusters/credential-check.js';
import type { ClusterSyncStatus } from '../../sync/sync.js';
import { audited, auditTarget, idParam } from './audit.js';
import { authenticate, callerOf, requireAdmin } from './authenticate.js';
import { visibleCluster } from './cluster-access.js';
import { issueImport } from './agents.js';
import {
  TLS_CHOICE_PROBLEM,
  aceOf,
  contradictsTlsChoice,
  createAgentClusterBody,
  createClusterBody,
  credentialsOf,
  patchClusterBody,
} from './cluster-input.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { parseBody } from './validation.js';

/** The fields that say how a direct cluster is reached (an agent-mode cluster's agent reports these). */
const REACH_FIELDS = ['server', 'caData', 'token', 'clientCert', 'clientKey', 'insecureSkipTLSVerify'] as const;

/** How long DELETE waits for the cluster's cleanup before answering 202. */
const DELETE_WAIT_MS = 5000;

export function clusterView(cluster: Cluster, role: ClusterRole | null): Record<string, unknown> {
  return {
    id: cluster.id,
    displayName: cluster.displayName,
    mode: cluster.mode,
    state: cluster.deletingSince === null ? 'active' : 'deleting',
    ...(cluster.deletingSince === null ? {} : { deletingSince: cluster.deletingSince.toISOString() }),
    server: cluster.server,
    role,
    insecureSkipTLSVerify: cluster.insecureSkipTlsVerify,
    ace: {
      enabled: cluster.ace.enabled,
      mode: aceModeOf(cluster.ace),
      fqdn: cluster.ace.fqdn,
      nodes: cluster.ace.nodes.map((node) => ({ name: node.name, address: node.address })),
    },
    createdAt: cluster.createdAt.toISOString(),
    updatedAt: cluster.updatedAt.toISOString(),
  };
}

/** The sync of the authorized endpoint's objects, as `GET /v1/clusters/:id` shows it. */
function syncView(status: ClusterSyncStatus | undefined): Record<string, unknown> {
  if (status === undefined) return { ok: false, lastAttemptAt: null, error: 'not synced yet' };
  return {
    ok: status.ok,
    lastAttemptAt: status.lastAttemptAt.toISOString(),
    lastSuccessAt: status.lastSuccessAt?.toISOString() ?? null,
    consecutiveFailures: status.consecutiveFailures,
    ...(status.error === undefined ? {} : { error: status.error }),
    ...(status.objects === undefined ? {} : { objects: status.objects }),
    ...(status.foreignObjects === undefined ? {} : { foreignObjects: status.foreignObjects }),
    ...(status.conflicts === undefined ? {} : { conflicts: status.conflicts }),
  };
}

/** Whether `work` settled successfully within `ms` (a failure or a timeout is false; it keeps running). */
function succeedsWithin(work: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    work.then(
      () => resolve(true),
      () => resolve(false),
    ).finally(() => clearTimeout(timer));
  });
}

/**
 * The agents of an agent-mode cluster as every replica sees them (tunnel records in the
 * store): `connected` while at least one agent holds a tunnel to any replica.
 */
function agentsView(tunnels: readonly TunnelRecord[]): Record<string, unknown> {
  return {
    state: tunnels.length > 0 ? 'connected' : 'disconnected',
    agents: tunnels.map((tunnel) => ({
      agentId: tunnel.agentId,
      agentVersion: tunnel.agentVersion,
      kubernetesVersion: tunnel.kubernetesVersion,
      connectedSince: tunnel.connectedAt.toISOString(),
      replica: tunnel.replicaId,
    })),
  };
}

function statusView(status: ClusterStatus | undefined): Record<string, unknown> {
  if (status === undefined) return { reachable: false, healthy: false, credential: 'unknown', checkedAt: null, error: 'not checked yet' };
  return {
    reachable: status.reachable,
    healthy: isHealthy(status),
    credential: status.credential,
    ...(status.version === undefined ? {} : { version: status.version }),
    checkedAt: status.checkedAt.toISOString(),
    ...(status.error === undefined ? {} : { error: status.error }),
  };
}

/** The registration's credential check, as POST and PATCH /v1/clusters answer it. */
function credentialCheckView(check: CredentialCheck): Record<string, unknown> {
  return {
    ok: check.ok,
    credential: check.credential,
    checkedAt: check.checkedAt.toISOString(),
    rights: check.rights.map((right) => ({
      verb: right.verb,
      group: right.group,
      resource: right.resource,
      ...(right.subresource === undefined ? {} : { subresource: right.subresource }),
      allowed: right.allowed,
    })),
    ...(check.error === undefined ? {} : { error: check.error }),
  };
}

/** What the store is given for an agent-mode cluster: no server, CA or credentials at all. */
function agentClusterOf(body: z.output<typeof createAgentClusterBody>): NewCluster {
  return {
    id: body.id,
    displayName: body.displayName ?? body.id,
    server: '',
    mode: 'agent',
    credentials: null,
    ...(body.ace === undefined ? {} : { ace: aceOf(body.ace) }),
  };
}

function directClusterOf(body: z.output<typeof createClusterBody>): NewCluster {
  return {
    id: body.id,
    displayName: body.displayName ?? body.id,
    server: body.server,
    caPem: body.caData ?? null,
    credentials: credentialsOf(body)!,
    insecureSkipTlsVerify: body.insecureSkipTLSVerify ?? false,
    ...(body.ace === undefined ? {} : { ace: aceOf(body.ace) }),
  };
}

export function clusterRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx);
  const { store, directory } = ctx;

  /** Probes in the background: the answer never waits for a cluster. */
  function probeSoon(clusterId: string): void {
    ctx.clusterStatus.probe(clusterId).catch((error: unknown) => ctx.logger.warn({ err: error, cluster: clusterId }, 'cluster probe failed'));
  }

  function sendCluster(response: Response, clusterId: string, status: number, check?: CredentialCheck): void {
    const caller = callerOf(response);
    const { cluster, role } = visibleCluster(ctx, caller, clusterId);
    response.status(status).json({ ...clusterView(cluster, role), ...(check === undefined ? {} : { credentialCheck: credentialCheckView(check) }) });
  }

  /** Checks the credential of a direct cluster just registered or re-pointed; the answer says what it found. */
  async function checkCredential(clusterId: string): Promise<CredentialCheck | undefined> {
    const cluster = directory.getCluster(clusterId);
    if (cluster === undefined || cluster.mode !== 'direct') return undefined;
    const check = await ctx.checkCredential(cluster);
    if (!check.ok) ctx.logger.warn({ cluster: clusterId, credential: check.credential, problem: check.error }, "the cluster's credential check found a problem");
    return check;
  }

  router
    .route('/clusters')
    .post(audited('cluster.create'), auth, requireAdmin, async (request, response) => {
      const caller = callerOf(response);
      const agentMode = (request.body as { mode?: unknown } | undefined)?.mode === 'agent';
      const conflict = new KubegateError('CONFLICT', 'a cluster with this id exists', { field: 'id' });
      let id: string;
      try {
        const input: NewCluster = agentMode ? agentClusterOf(parseBody(createAgentClusterBody, request.body)) : directClusterOf(parseBody(createClusterBody, request.body));
        id = input.id;
        auditTarget(response, { clusterId: id, fields: Object.keys(request.body ?? {}).sort() });
        if ((await store.getCluster(id)) !== undefined) throw conflict;
        await store.createCluster(input);
      } catch (error) {
        if (isKubegateError(error, 'STORE_CONSTRAINT')) throw conflict;
        throw error;
      }
      await store.putMembership({ clusterId: id, subjectKind: 'User', subjectName: caller.user.id, role: 'owner' });
      await directory.refresh();
      const { cluster, role } = visibleCluster(ctx, caller, id);
      if (cluster.mode === 'agent') {
        // The import comes with the answer: the admin's next step is to apply it.
        response.status(201).json({ ...clusterView(cluster, role), import: await issueImport(ctx, cluster) });
        return;
      }
      probeSoon(id);
      sendCluster(response, id, 201, await checkCredential(id));
    })
    .get(auth, (_request, response) => {
      const caller = callerOf(response);
      const items: Record<string, unknown>[] = [];
      for (const cluster of directory.listClusters()) {
        const role = directory.roleOf(caller.identity, cluster.id);
        if (role !== null || caller.isAdmin) items.push(clusterView(cluster, role));
      }
      items.sort((a, b) => String(a['id']).localeCompare(String(b['id'])));
      response.json({ items });
    })
    .all(methodNotAllowed('GET', 'POST'));

  router
    .route('/clusters/:id')
    .get(auth, async (request, response) => {
      const { cluster, role } = visibleCluster(ctx, callerOf(response), request.params['id'] ?? '', undefined, { deleting: 'allow' });
      // Every cluster is synced (membership role bindings), so every cluster shows its sync state.
      const sync = ctx.syncStatus?.(cluster.id);
      const tunnels = cluster.mode === 'agent' ? await store.listTunnels({ clusterId: cluster.id }) : undefined;
      response.json({
        ...clusterView(cluster, role),
        status: statusView(ctx.clusterStatus.get(cluster.id)),
        ...(tunnels === undefined ? {} : { agent: agentsView(tunnels) }),
        sync: syncView(sync),
      });
    })
    .patch(audited('cluster.update', idParam('clusterId')), auth, requireAdmin, async (request, response) => {
      const { cluster } = visibleCluster(ctx, callerOf(response), request.params['id'] ?? '');
      const body = parseBody(patchClusterBody, request.body);
      auditTarget(response, { fields: Object.keys(body).sort() });
      if (cluster.mode === 'agent') {
        const direct = REACH_FIELDS.find((field) => body[field] !== undefined);
        if (direct !== undefined) throw new KubegateError('CLUSTER_MODE_MISMATCH', `${direct}: an agent-mode cluster's API server is reported by its agent`, { field: direct });
      }
      const caPem = body.caData === undefined ? cluster.caPem : body.caData;
      const insecure = body.insecureSkipTLSVerify ?? cluster.insecureSkipTlsVerify;
      if (contradictsTlsChoice(caPem, insecure)) {
        throw new KubegateError('BAD_REQUEST', `insecureSkipTLSVerify ${TLS_CHOICE_PROBLEM}`, { field: 'insecureSkipTLSVerify' });
      }
      const credentials = credentialsOf(body);
      const patch: ClusterPatch = {
        ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
        ...(body.server === undefined ? {} : { server: body.server }),
        ...(body.caData === undefined ? {} : { caPem: body.caData }),
        ...(credentials === undefined ? {} : { credentials }),
        ...(body.insecureSkipTLSVerify === undefined ? {} : { insecureSkipTlsVerify: body.insecureSkipTLSVerify }),
        ...(body.ace === undefined ? {} : { ace: aceOf(body.ace) }),
      };
      if ((await store.updateCluster(cluster.id, patch)) === undefined) throw new KubegateError('NOT_FOUND', 'no such cluster');
      await directory.refresh();
      probeSoon(cluster.id);
      const reached = REACH_FIELDS.some((field) => body[field] !== undefined);
      sendCluster(response, cluster.id, 200, reached ? await checkCredential(cluster.id) : undefined);
    })
    .delete(audited('cluster.delete', idParam('clusterId')), auth, requireAdmin, async (request, response) => {
      const caller = callerOf(response);
      const { cluster } = visibleCluster(ctx, caller, request.params['id'] ?? '', undefined, { deleting: 'allow' });
      const force = request.query['force'];
      if (force !== undefined && force !== 'true' && force !== 'false') throw new KubegateError('BAD_REQUEST', 'force: must be true or false', { field: 'force' });
      const scoped = await store.listTokens({ clusterId: cluster.id });
      if (force === 'true' || ctx.removeCluster === undefined) {
        await store.deleteCluster(cluster.id);
      } else {
        await store.markClusterDeleting(cluster.id, ctx.now());
        await directory.refresh();
        const removed = await succeedsWithin(ctx.removeCluster(cluster.id), DELETE_WAIT_MS);
        await directory.refresh();
        const deleting = directory.getCluster(cluster.id);
        if (!removed && deleting !== undefined) {
          const view = clusterView(deleting, directory.roleOf(caller.identity, cluster.id));
          response.status(202).json({ ...view, sync: syncView(ctx.syncStatus?.(cluster.id)) });
          return;
        }
      }
      for (const token of scoped) ctx.authenticator.invalidateToken(token.name);
      await directory.refresh();
      response.status(204).end();
    })
    .all(methodNotAllowed('GET', 'PATCH', 'DELETE'));

  return router;
}
