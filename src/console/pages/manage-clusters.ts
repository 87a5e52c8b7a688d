/**
 * Clusters (admins): every registered cluster, registration of a directly reachable cluster,
 * removal.
 *
 *   GET  /console/admin/clusters               GET /v1/clusters, then GET /v1/clusters/:id each
 *   POST /console/admin/clusters               {id, displayName, server, caPem, token, _csrf} → POST /v1/clusters
 *   POST /console/admin/clusters/:id/delete    {force?, _csrf} → DELETE /v1/clusters/:id[?force=true]
 *   POST /console/admin/clusters/agent         {id, displayName, _csrf} → POST /v1/clusters {mode: agent}
 *   POST /console/admin/clusters/:id/import    {_csrf} → GET /v1/clusters/:id/import (a fresh import command)
 *
 * The CA is pasted as PEM and base64-encoded here for the API's `caData`; the API checks
 * that it parses. The cluster token is a password field: it is sent to the API once and
 * never shown again (cluster views carry no credentials).
 *
 * Removal: a 202 (kubegate's objects are still being removed from the cluster) is said so,
 * and the cluster is listed as being removed, with Forget (`?force=true`) in place of Remove:
 * the way out for a cluster that no longer exists.
 *
 * Agent-mode clusters: the answer carries the import command, whose URL holds a one-time
 * registration token; it is shown once, on the page that answers the form (no redirect, no
 * URL of ours carries it), like a new API token.
 */
import { Router } from 'express';
import type { AgentImport, ClusterDetail } from '../api-types.js';
import type { ConsoleContext } from '../context.js';
import { adminSessionOf, doneFlash, formField, paramOf, redirectAfterPost, sendPage, sessionOf, submitForm } from '../context.js';
import type { ConsoleSession } from '../context.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { CONSOLE_BASE, csrfField } from '../layout.js';
import type { Flash } from '../layout.js';
import { requireSession } from '../session.js';
import { clustersWithStatus, stateBadge } from './clusters.js';

const MANAGE_PATH = `${CONSOLE_BASE}/admin/clusters`;
const DONE = {
  registered: 'The cluster was registered; you are its owner.',
  deleted: 'The cluster was removed, with its memberships and the tokens scoped to it.',
  deleting:
    "The cluster is being removed: nobody can use it any more, and it goes with its memberships and tokens once kubegate's objects are removed from it. The sync retries until it reaches the cluster; for a cluster that no longer exists, Forget removes it at once.",
} as const;

function stateCell(cluster: ClusterDetail): Html {
  if (cluster.mode !== 'agent' || cluster.state === 'deleting') return stateBadge(cluster);
  return cluster.agent?.state === 'connected'
    ? html`<span class="badge ok">agent connected</span>`
    : html`<span class="badge warn">no agent connected</span>`;
}

function importNotice(created: AgentImport): Html {
  return html`<section class="card" aria-labelledby="import"><h2 id="import">Install the agent in ${created.clusterId}</h2>
<p>Run this against the cluster (kubectl pointing at it). It holds a one-time registration token, valid until ${created.expiresAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}: copy it now, it is not shown again.</p>
${created.commandWithCa === null ? undefined : html`<p class="muted">Trusting the proxy's own CA:</p><code class="secret" id="import-command-with-ca">${created.commandWithCa}</code>`}
<p class="muted">${created.commandWithCa === null ? 'Command:' : 'Where the proxy\'s certificate is publicly trusted:'}</p><code class="secret" id="import-command">${created.command}</code>
</section>`;
}

interface TypedCluster {
  readonly id?: string;
  readonly displayName?: string;
  readonly server?: string;
  readonly caPem?: string;
}

function clusterRow(cluster: ClusterDetail, csrf: string): Html {
  return html`<tr><td class="mono text">${cluster.id}</td><td class="text">${cluster.displayName}</td><td class="mono text">${cluster.mode === 'agent' ? html`<span class="muted">through its agent</span>` : cluster.server}</td>
<td>${stateCell(cluster)}</td><td>${cluster.status.version ?? html`<span class="muted">unknown</span>`}</td>
<td class="actions"><a href="${CONSOLE_BASE}/clusters/${cluster.id}/members">Members</a>
${cluster.mode === 'agent' ? html`<form method="post" action="${MANAGE_PATH}/${cluster.id}/import">${csrfField(csrf)}<button class="secondary" type="submit" aria-label="New import command for ${cluster.id}">Import command</button></form>` : undefined}
${
  cluster.state === 'deleting'
    ? html`<form method="post" action="${MANAGE_PATH}/${cluster.id}/delete">${csrfField(csrf)}<input type="hidden" name="force" value="yes"><button class="danger" type="submit" aria-label="Forget cluster ${cluster.id} without cleaning it" title="${cluster.sync?.error ?? ''}">Forget</button></form>`
    : html`<form method="post" action="${MANAGE_PATH}/${cluster.id}/delete">${csrfField(csrf)}<button class="danger" type="submit" aria-label="Remove cluster ${cluster.id}">Remove</button></form>`
}</td></tr>`;
}

export function manageClusterRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const session = requireSession(ctx);

  async function page(current: ConsoleSession, typed: TypedCluster = {}, created?: AgentImport): Promise<Html> {
    const details = await clustersWithStatus(ctx, current.token);
    return html`<h1>Clusters</h1>
${created === undefined ? undefined : importNotice(created)}
<section class="card" aria-labelledby="cluster-list"><h2 id="cluster-list">Registered clusters</h2>
${
  details.length === 0
    ? html`<p class="empty">No cluster is registered yet.</p>`
    : html`<table><thead><tr><th scope="col">ID</th><th scope="col">Name</th><th scope="col">API server</th><th scope="col">State</th><th scope="col">Version</th><th scope="col"><span class="muted">Actions</span></th></tr></thead>
<tbody>${details.map((cluster) => clusterRow(cluster, current.csrf))}</tbody></table>`
}</section>
<section class="card" aria-labelledby="register"><h2 id="register">Register a directly reachable cluster</h2>
<p class="muted">The proxy connects to the cluster's API server with these credentials; give it an identity that may only impersonate (deploy/proxy/downstream-rbac.yaml).</p>
<form class="stack" method="post" action="${MANAGE_PATH}">
${csrfField(current.csrf)}
<div class="field"><label for="id">Cluster ID<input id="id" name="id" type="text" required maxlength="63" pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?" aria-describedby="id-hint" value="${typed.id ?? ''}"></label><span class="hint" id="id-hint">lower-case letters, digits and "-"; it is part of the cluster's URL</span></div>
<label for="displayName">Display name<input id="displayName" name="displayName" type="text" maxlength="256" value="${typed.displayName ?? ''}"></label>
<label for="server">API server URL<input id="server" name="server" type="url" required placeholder="https://10.0.0.10:6443" value="${typed.server ?? ''}"></label>
<div class="field"><label for="caPem">CA certificate (PEM)<textarea id="caPem" name="caPem" aria-describedby="ca-hint" placeholder="-----BEGIN CERTIFICATE-----">${typed.caPem ?? ''}</textarea></label><span class="hint" id="ca-hint">empty: the system's roots verify the API server</span></div>
<label for="token">Service account token<input id="token" name="token" type="password" required autocomplete="off"></label>
<div><button type="submit">Register cluster</button></div>
</form></section>
<section class="card" aria-labelledby="agent-mode"><h2 id="agent-mode">Register a cluster through an agent</h2>
<p class="muted">For a cluster the proxy cannot reach: <code>kubegate agent</code> runs in it and connects out to the proxy. The next page shows the one command that installs it.</p>
<form class="stack" method="post" action="${MANAGE_PATH}/agent">
${csrfField(current.csrf)}
<label for="agent-id">Cluster ID<input id="agent-id" name="id" type="text" required maxlength="63" pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?"></label>
<label for="agent-displayName">Display name<input id="agent-displayName" name="displayName" type="text" maxlength="256"></label>
<div><button type="submit">Register and show the import command</button></div>
</form></section>`;
  }

  router.get('/admin/clusters', session, async (request, response) => {
    sendPage(response, { title: 'Clusters', current: 'manage-clusters', flash: doneFlash(request, DONE) }, await page(adminSessionOf(response)));
  });

  router.post('/admin/clusters', session, async (request, response) => {
    const current = sessionOf(response);
    const typed: TypedCluster = {
      id: formField(request, 'id', { optional: true }),
      displayName: formField(request, 'displayName', { optional: true }),
      server: formField(request, 'server', { optional: true }),
      caPem: formField(request, 'caPem', { optional: true }),
    };
    await submitForm(
      async () => {
        const caPem = typed.caPem?.trim() ?? '';
        await ctx.api.call('POST', '/v1/clusters', {
          token: current.token,
          body: {
            id: formField(request, 'id'),
            server: formField(request, 'server'),
            token: formField(request, 'token').trim(),
            ...(typed.displayName === '' ? {} : { displayName: typed.displayName }),
            ...(caPem === '' ? {} : { caData: Buffer.from(`${caPem}\n`).toString('base64') }),
          },
        });
        redirectAfterPost(response, `${MANAGE_PATH}?done=registered`);
      },
      async (flash: Flash, status: number) => sendPage(response, { title: 'Clusters', current: 'manage-clusters', flash, status }, await page(current, typed)),
    );
  });

  router.post('/admin/clusters/agent', session, async (request, response) => {
    const current = sessionOf(response);
    const show = async (flash: Flash, status: number, created?: AgentImport): Promise<void> =>
      sendPage(response, { title: 'Clusters', current: 'manage-clusters', flash, status }, await page(current, {}, created));
    await submitForm(async () => {
      const displayName = formField(request, 'displayName', { optional: true });
      const answer = await ctx.api.call('POST', '/v1/clusters', {
        token: current.token,
        body: { id: formField(request, 'id'), mode: 'agent', ...(displayName === '' ? {} : { displayName }) },
      });
      await show({ kind: 'success', message: 'The cluster was registered; you are its owner. Install its agent now.' }, 201, (answer.json as { import: AgentImport }).import);
    }, show);
  });

  router.post('/admin/clusters/:id/import', session, async (request, response) => {
    const current = sessionOf(response);
    const show = async (flash: Flash, status: number, created?: AgentImport): Promise<void> =>
      sendPage(response, { title: 'Clusters', current: 'manage-clusters', flash, status }, await page(current, {}, created));
    await submitForm(async () => {
      const answer = await ctx.api.call('GET', `/v1/clusters/${encodeURIComponent(paramOf(request, 'id'))}/import`, { token: current.token });
      await show({ kind: 'success', message: 'A new import command; earlier ones stay valid until they expire.' }, 200, answer.json as AgentImport);
    }, show);
  });

  router.post('/admin/clusters/:id/delete', session, async (request, response) => {
    const current = sessionOf(response);
    await submitForm(
      async () => {
        const force = formField(request, 'force', { optional: true }) === 'yes';
        const answer = await ctx.api.call('DELETE', `/v1/clusters/${encodeURIComponent(paramOf(request, 'id'))}${force ? '?force=true' : ''}`, { token: current.token });
        redirectAfterPost(response, `${MANAGE_PATH}?done=${answer.status === 202 ? 'deleting' : 'deleted'}`);
      },
      async (flash: Flash, status: number) => sendPage(response, { title: 'Clusters', current: 'manage-clusters', flash, status }, await page(current)),
    );
  });

  return router;
}
