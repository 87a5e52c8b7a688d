/**
 * `GET /v1/clusters/:id/kubeconfig[?ttl=30d][&auth=exec]`: a kubeconfig for one cluster, for its
 * members and admins.
 *
 * Each call issues a fresh `kubeconfig` token limited to that cluster (so a leaked file
 * opens one cluster, not everything the user can reach), with the configured default
 * lifetime, capped by the configured maximum. Contexts: `<id>` through the proxy
 * (`<public URL>/k8s/clusters/<id>`, the proxy's CA when it has its own), and when the authorized cluster
 * endpoint is on, `<id>-fqdn` (its CA) and `<id>-<node>` per control-plane node (the
 * cluster's CA), which the in-cluster webhook answers for with the same token.
 * `?context=ace` makes the first authorized-endpoint context current (400 when the cluster
 * has none). In the `webhook` authorized-endpoint mode all contexts share the one
 * cluster-scoped token; the proxy's sync copies its hash to the cluster, where the webhook
 * verifies it. In the `jwt` mode the authorized-endpoint contexts use a user of their own,
 * an exec plugin (`kubegate token … --jwt`) that fetches short-lived JWTs the cluster's API
 * server verifies itself (src/issuer/); the proxy context's token (or plugin) is unchanged.
 * The answer carries a secret: `Cache-Control: no-store`, and it is never logged.
 */
import { Router } from 'express';
import * as z from 'zod';
import { formatHost } from '../../config/listen.js';
import { KubegateError } from '../../errors.js';
import type { KubeconfigCluster, KubeconfigUser } from '../../kube/kubeconfig.js';
import { renderKubeconfig } from '../../kube/kubeconfig.js';
import { aceModeOf } from '../../store/store.js';
import type { Cluster } from '../../store/store.js';
import { audited, auditTarget, idParam } from './audit.js';
import { authenticate, callerOf } from './authenticate.js';
import { visibleCluster } from './cluster-access.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { expiryFor, issueToken } from './issue-token.js';
import { parseQuery, ttlSeconds } from './validation.js';

const kubeconfigQuery = z.strictObject({
  ttl: z.string().min(1).max(64).optional(),
  /** `ace`: make the first authorized-endpoint context current instead of the proxy's. */
  context: z.enum(['ace', 'proxy']).optional(),
  /** `exec`: a user entry that runs `kubegate token` (no static token is issued). */
  auth: z.enum(['token', 'exec']).optional(),
});

/** The API server port of control-plane nodes, as Rancher's authorized endpoint uses. */
const NODE_API_PORT = 6443;

/** Cluster entries: the proxy's, then the authorized endpoints (with `aceUser` as their user when given). */
function kubeconfigClusters(cluster: Cluster, publicUrl: string, proxyCaPem: string | null, aceUser: string | undefined): KubeconfigCluster[] {
  const entries: KubeconfigCluster[] = [{ name: cluster.id, server: `${publicUrl}/k8s/clusters/${cluster.id}`, caPem: proxyCaPem }];
  if (!cluster.ace.enabled) return entries;
  const user = aceUser === undefined ? {} : { user: aceUser };
  if (cluster.ace.fqdn !== null) entries.push({ name: `${cluster.id}-fqdn`, server: `https://${cluster.ace.fqdn}`, caPem: cluster.ace.caPem, ...user });
  for (const node of cluster.ace.nodes) {
    entries.push({ name: `${cluster.id}-${node.name}`, server: `https://${formatHost(node.address)}:${NODE_API_PORT}`, caPem: cluster.caPem, ...user });
  }
  return entries;
}

/**
 * `?auth=exec`: kubectl runs `kubegate token --server <proxy> --cluster <id> --provider <p>`
 * (src/cmd/token.ts), which logs in as needed and caches short-lived cluster tokens; the
 * proxy's CA (public) travels in KUBEGATE_CA_DATA. No secret is in the file.
 */
function execPluginUser(name: string, publicUrl: string, clusterId: string, provider: string, caPem: string | null, jwt = false): KubeconfigUser {
  return {
    kind: 'exec',
    name,
    command: 'kubegate',
    args: ['token', '--server', publicUrl, '--cluster', clusterId, '--provider', provider, ...(jwt ? ['--jwt'] : [])],
    env: caPem === null ? [] : [{ name: 'KUBEGATE_CA_DATA', value: Buffer.from(caPem).toString('base64') }],
  };
}

export function kubeconfigRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const { tokens } = ctx.config;

  router
    .route('/clusters/:id/kubeconfig')
    .get(audited('kubeconfig.issue', idParam('clusterId')), authenticate(ctx), async (request, response) => {
      const caller = callerOf(response);
      const { cluster } = visibleCluster(ctx, caller, request.params['id'] ?? '');
      const query = parseQuery(kubeconfigQuery, request.query);
      const ttl = query.ttl === undefined ? tokens.kubeconfigTtlSeconds : ttlSeconds(query.ttl, 'ttl');
      expiryFor(ctx, ttl, tokens.kubeconfigMaxTtlSeconds);
      const userName = `kubegate-${caller.user.username}`;
      const jwtUser = aceModeOf(cluster.ace) === 'jwt' ? execPluginUser(`${userName}-jwt`, ctx.publicUrl(), cluster.id, caller.provider, ctx.caPem, true) : undefined;
      const clusters = kubeconfigClusters(cluster, ctx.publicUrl(), ctx.caPem, jwtUser?.name);
      let currentContext = cluster.id;
      if (query.context === 'ace') {
        const ace = clusters[1];
        if (ace === undefined) {
          throw new KubegateError('BAD_REQUEST', 'context: the cluster has no authorized endpoint (ace.enabled with an fqdn or nodes)', { field: 'context' });
        }
        currentContext = ace.name;
      }
      const issueKubeconfigToken = async (): Promise<string> => {
        const issued = await issueToken(ctx, {
          userId: caller.user.id,
          provider: caller.provider,
          kind: 'kubeconfig',
          clusterId: cluster.id,
          description: `kubeconfig for ${cluster.id}`,
          ttlSeconds: ttl,
          maxTtlSeconds: tokens.kubeconfigMaxTtlSeconds,
        });
        auditTarget(response, { issuedTokenName: issued.stored.name });
        return issued.token;
      };
      const user: KubeconfigUser =
        query.auth === 'exec'
          ? execPluginUser(userName, ctx.publicUrl(), cluster.id, caller.provider, ctx.caPem)
          : {
              kind: 'token',
              name: userName,
              token: await issueKubeconfigToken(),
            };
      const yaml = renderKubeconfig({ clusters, user, currentContext, ...(jwtUser === undefined ? {} : { otherUsers: [jwtUser] }) });
      response
        .status(200)
        .type('application/yaml')
        .setHeader('Content-Disposition', `attachment; filename="${cluster.id}.kubeconfig.yaml"`)
        .send(yaml);
    })
    .all(methodNotAllowed('GET'));

  return router;
}
