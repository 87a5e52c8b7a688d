/**
 * Attaching agent-mode clusters: import commands, the registration exchange, and agent
 * credentials.
 *
 *   GET    /v1/clusters/:id/import[?ttl=1h]        admin: a new one-time registration token,
 *                                                   the one-line command and the manifest
 *   GET    /v1/import/<registration token>.yaml    public (the token is the key): the manifest
 *   POST   /v1/agent/register {clusterId, agentId}  Bearer <registration token>: 201 {credential}
 *   GET    /v1/clusters/:id/agent-credentials       admin: registration tokens and credentials
 *   DELETE /v1/clusters/:id/agent-credentials/:name admin: revoke (open tunnels end at once)
 *
 * Design notes:
 * - A registration token is short-lived (`agents.registrationTtl`), bound to one cluster,
 *   stored only as a hash, revocable, and exchanged at most once: the store deletes it and
 *   creates the agent credential in one transaction, so two agent replicas racing with the
 *   same token get one credential between them (the other replica reads it from the Secret).
 * - The manifest URL carries the token, as Rancher's import URL does. Fetching the manifest
 *   does not use the token up (kubectl may fetch twice); only the exchange does.
 * - Agent credentials (`a-…`) are bound to their cluster and never expire by themselves;
 *   deleting one ends its tunnels on every replica (the store announces it).
 * - Every refusal of a registration token is the same 401, whatever was wrong with it.
 */
import { Router } from 'express';
import type { Request } from 'express';
import * as z from 'zod';
import { renderImportManifest } from '../../clusters/import-manifest.js';
import { KubegateError, isKubegateError } from '../../errors.js';
import type { AgentSecret, Cluster } from '../../store/store.js';
import { isExpired } from '../../tokens/expiry.js';
import { tryParseToken } from '../../tokens/format.js';
import { AGENT_CREDENTIAL_NAME_PREFIX, REGISTRATION_NAME_PREFIX, generateToken } from '../../tokens/generate.js';
import { hashSecret, verifySecret } from '../../tokens/hash.js';
import { audited, auditTarget, idParam } from './audit.js';
import { authenticate, requireAdmin } from './authenticate.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { expiryFor } from './issue-token.js';
import { parseBody, parseQuery, ttlInput, ttlSeconds } from './validation.js';

const MAX_REGISTRATION_TTL_SECONDS = 7 * 86_400;
const BEARER = /^bearer +(\S+)$/i;
const MANIFEST_FILE = /^(.+)\.yaml$/;

const registerBody = z.strictObject({
  clusterId: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { error: 'must be a cluster ID' }),
  agentId: z.string().regex(/^[A-Za-z0-9._-]{1,253}$/, { error: 'must be letters, digits, ., _ or - (at most 253)' }),
});

const importQuery = z.strictObject({ ttl: ttlInput.optional() });

export interface ImportView {
  readonly clusterId: string;
  /** The one-time registration token's public name (for revocation). */
  readonly registrationName: string;
  readonly expiresAt: string;
  readonly url: string;
  /** `kubectl apply -f <url>`: works where the proxy's certificate is publicly trusted. */
  readonly command: string;
  /** The same, trusting the proxy's generated CA (bash); null without a CA of its own. */
  readonly commandWithCa: string | null;
  readonly manifest: string;
}

/** Issues a registration token for an agent-mode cluster and renders its import. */
export async function issueImport(ctx: ProxyApiContext, cluster: Cluster, ttl?: number): Promise<ImportView> {
  if (cluster.mode !== 'agent') throw new KubegateError('CLUSTER_MODE_MISMATCH', 'the cluster is registered for direct access; an import is for agent-mode clusters', { field: 'id' });
  const lifetime = ttl ?? ctx.config.agents.registrationTtlSeconds;
  const generated = generateToken(REGISTRATION_NAME_PREFIX);
  const expiresAt = expiryFor(ctx, lifetime, Math.max(MAX_REGISTRATION_TTL_SECONDS, ctx.config.agents.registrationTtlSeconds));
  await ctx.store.createAgentSecret({
    name: generated.name,
    kind: 'registration',
    clusterId: cluster.id,
    secretHash: hashSecret(generated.secret),
    description: 'registration token (import command)',
    expiresAt,
  });
  const base = ctx.publicUrl();
  const url = `${base}/v1/import/${generated.token}.yaml`;
  return {
    clusterId: cluster.id,
    registrationName: generated.name,
    expiresAt: expiresAt.toISOString(),
    url,
    command: `kubectl apply -f ${url}`,
    commandWithCa:
      ctx.caPem === null
        ? null
        : `curl -fsS --cacert <(echo ${Buffer.from(ctx.caPem, 'utf8').toString('base64')} | base64 -d) ${url} | kubectl apply -f -`,
    manifest: manifestFor(ctx, cluster, generated.token),
  };
}

function manifestFor(ctx: ProxyApiContext, cluster: Cluster, registrationToken: string): string {
  return renderImportManifest({
    clusterId: cluster.id,
    proxyUrl: ctx.publicUrl(),
    proxyCaPem: ctx.caPem,
    registrationToken,
    image: ctx.config.agents.image,
    replicas: ctx.config.agents.replicas,
    syncNamespace: ctx.config.sync.namespace,
    ace: cluster.ace.enabled,
    roleNames: [...new Set(Object.values(ctx.config.sync.roleNames))],
  });
}

export function agentSecretView(secret: AgentSecret): Record<string, unknown> {
  return {
    name: secret.name,
    kind: secret.kind,
    clusterId: secret.clusterId,
    description: secret.description,
    createdAt: secret.createdAt.toISOString(),
    expiresAt: secret.expiresAt?.toISOString() ?? null,
    lastUsedAt: secret.lastUsedAt?.toISOString() ?? null,
  };
}

export function agentRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx);
  const { store, directory } = ctx;

  /** The registration secret a presented `name:secret` stands for, if it is valid now. */
  async function validRegistration(text: string | undefined): Promise<AgentSecret> {
    const parsed = text === undefined ? undefined : tryParseToken(text);
    const refused = new KubegateError('REGISTRATION_TOKEN_INVALID');
    if (parsed === undefined) throw refused;
    const secret = await store.getAgentSecret(parsed.name);
    if (secret === undefined || secret.kind !== 'registration' || isExpired(secret.expiresAt, ctx.now())) throw refused;
    if (!(await verifySecret(parsed.secret, secret.secretHash))) throw refused;
    return secret;
  }

  function agentCluster(id: string): Cluster {
    const cluster = directory.getCluster(id);
    if (cluster === undefined) throw new KubegateError('NOT_FOUND', 'no such cluster', { field: 'id' });
    return cluster;
  }

  router
    .route('/clusters/:id/import')
    .get(audited('cluster.import', idParam('clusterId')), auth, requireAdmin, async (request, response) => {
      const cluster = agentCluster(request.params['id'] ?? '');
      const query = parseQuery(importQuery, request.query);
      const ttl = query.ttl === undefined ? undefined : ttlSeconds(query.ttl, 'ttl');
      const imported = await issueImport(ctx, cluster, ttl);
      auditTarget(response, { registrationName: imported.registrationName });
      response.json(imported);
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/import/:file')
    .get(async (request, response) => {
      const match = MANIFEST_FILE.exec(request.params['file'] ?? '');
      const registration = await validRegistration(match?.[1]);
      const cluster = directory.getCluster(registration.clusterId);
      if (cluster === undefined || cluster.mode !== 'agent') throw new KubegateError('REGISTRATION_TOKEN_INVALID');
      response.type('application/yaml').send(manifestFor(ctx, cluster, match?.[1] as string));
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/agent/register')
    .post(audited('agent.register'), async (request: Request, response) => {
      const registration = await validRegistration(BEARER.exec(request.headers.authorization ?? '')?.[1]);
      const body = parseBody(registerBody, request.body);
      auditTarget(response, { clusterId: body.clusterId, agentId: body.agentId, registrationName: registration.name });
      if (body.clusterId !== registration.clusterId) throw new KubegateError('REGISTRATION_TOKEN_INVALID', 'the registration token is not valid for this cluster');
      const cluster = directory.getCluster(body.clusterId);
      if (cluster === undefined || cluster.mode !== 'agent') throw new KubegateError('REGISTRATION_TOKEN_INVALID');
      const generated = generateToken(AGENT_CREDENTIAL_NAME_PREFIX);
      let credential: AgentSecret | undefined;
      try {
        credential = await store.exchangeRegistration(registration.name, {
          name: generated.name,
          kind: 'agent',
          clusterId: cluster.id,
          secretHash: hashSecret(generated.secret),
          description: `agent credential (first used by ${body.agentId})`,
          expiresAt: null,
        });
      } catch (error) {
        if (isKubegateError(error, 'STORE_CONSTRAINT')) throw new KubegateError('REGISTRATION_TOKEN_INVALID');
        throw error;
      }
      if (credential === undefined) throw new KubegateError('REGISTRATION_TOKEN_INVALID');
      ctx.logger.info({ cluster: cluster.id, agent: body.agentId, credential: credential.name }, 'agent registered; registration token used up');
      auditTarget(response, { credentialName: credential.name });
      response.status(201).json({ clusterId: cluster.id, name: credential.name, credential: generated.token });
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/clusters/:id/agent-credentials')
    .get(auth, requireAdmin, async (request, response) => {
      const cluster = agentCluster(request.params['id'] ?? '');
      const secrets = await store.listAgentSecrets({ clusterId: cluster.id });
      response.json({ items: secrets.map(agentSecretView) });
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/clusters/:id/agent-credentials/:name')
    .delete(audited('agent-credential.revoke', (params) => ({ clusterId: (params['id'] ?? '').slice(0, 64), name: (params['name'] ?? '').slice(0, 64) })), auth, requireAdmin, async (request, response) => {
      const cluster = agentCluster(request.params['id'] ?? '');
      const name = request.params['name'] ?? '';
      const secret = await store.getAgentSecret(name);
      if (secret === undefined || secret.clusterId !== cluster.id) throw new KubegateError('NOT_FOUND', 'no such agent credential', { field: 'name' });
      await store.deleteAgentSecret(name);
      response.status(204).end();
    })
    .all(methodNotAllowed('DELETE'));

  return router;
}
