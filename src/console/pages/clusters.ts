/**
 * "My clusters": the clusters the user may use (admins: all), each with the background
 * status (reachable, Kubernetes version), the user's role, and a kubeconfig download.
 *
 *   GET  /console/                                  GET /v1/clusters, then GET /v1/clusters/:id each
 *   POST /console/clusters/:id/kubeconfig           {auth: token|exec, context: proxy|ace, _csrf}
 *                                                   → GET /v1/clusters/:id/kubeconfig, sent as a download
 *
 * The download is a POST with the CSRF token because it mints a token; the file is the
 * API's answer as it is (`Content-Disposition: attachment`), never stored or logged here.
 */
import { Router } from 'express';
import { KubegateError } from '../../errors.js';
import { itemsOf } from '../api-client.js';
import type { ClusterDetail, ClusterSummary } from '../api-types.js';
import type { ConsoleContext } from '../context.js';
import { formField, paramOf, sendPage, sessionOf } from '../context.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { CONSOLE_BASE, csrfField } from '../layout.js';
import { requireSession } from '../session.js';

/** The status probe's verdict, unless the cluster is being removed (then why it still is). */
export function stateBadge(cluster: ClusterDetail): Html {
  if (cluster.state === 'deleting') return html`<span class="badge warn" title="${cluster.sync?.error ?? ''}">being removed</span>`;
  return statusBadge(cluster.status);
}

export function statusBadge(status: ClusterDetail['status']): Html {
  if (status.checkedAt === null) return html`<span class="badge warn">not checked yet</span>`;
  if (!status.reachable) return html`<span class="badge bad" title="${status.error ?? ''}">unreachable</span>`;
  if (status.credential === 'refused') return html`<span class="badge bad" title="${status.error ?? ''}">credential refused</span>`;
  return html`<span class="badge ok">reachable</span>`;
}

function kubeconfigForm(cluster: ClusterSummary, csrf: string): Html {
  const id = cluster.id;
  return html`<form class="inline" method="post" action="${CONSOLE_BASE}/clusters/${id}/kubeconfig">
${csrfField(csrf)}
<fieldset><legend>Credentials</legend>
<label><input type="radio" name="auth" value="token" checked> Embedded token (for this cluster only)</label>
<label><input type="radio" name="auth" value="exec"> <code>kubegate</code> exec plugin (logs in when needed; no token in the file)</label>
</fieldset>
${
  cluster.ace.enabled
    ? html`<label for="context-${id}">Current context<select id="context-${id}" name="context">
<option value="proxy">through the proxy</option><option value="ace">authorized cluster endpoint</option></select></label>`
    : undefined
}
<button type="submit">Download kubeconfig</button>
</form>`;
}

function clusterCard(cluster: ClusterDetail, csrf: string, isAdmin: boolean): Html {
  const canManage = isAdmin || cluster.role === 'owner';
  return html`<section class="card" aria-labelledby="cluster-${cluster.id}">
<h2 id="cluster-${cluster.id}">${cluster.displayName}${cluster.displayName === cluster.id ? undefined : html` <span class="muted mono">${cluster.id}</span>`}</h2>
<table><thead><tr><th scope="col">State</th><th scope="col">Kubernetes version</th><th scope="col">Your role</th><th scope="col">Authorized endpoint</th>${canManage ? html`<th scope="col">Members</th>` : undefined}</tr></thead>
<tbody><tr><td>${stateBadge(cluster)}</td><td>${cluster.status.version ?? html`<span class="muted">unknown</span>`}</td>
<td>${cluster.role ?? html`<span class="muted">none (admin)</span>`}</td><td>${cluster.ace.enabled ? 'on' : 'off'}</td>
${canManage ? html`<td><a href="${CONSOLE_BASE}/clusters/${cluster.id}/members">Manage members</a></td>` : undefined}</tr></tbody></table>
${cluster.state === 'deleting' ? html`<p class="muted">It is being removed: no kubeconfig is issued for it any more.</p>` : kubeconfigForm(cluster, csrf)}
</section>`;
}

/** The clusters the token may see, each with its status (GET /v1/clusters/:id). */
export async function clustersWithStatus(ctx: ConsoleContext, token: string): Promise<ClusterDetail[]> {
  const clusters = itemsOf<ClusterSummary>(await ctx.api.call('GET', '/v1/clusters', { token }));
  return Promise.all(clusters.map(async (cluster) => (await ctx.api.call('GET', `/v1/clusters/${encodeURIComponent(cluster.id)}`, { token })).json as ClusterDetail));
}

export function clusterRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const session = requireSession(ctx);

  router.get('/', session, async (_request, response) => {
    const { token, csrf, me } = sessionOf(response);
    const details = await clustersWithStatus(ctx, token);
    const content = html`<h1>My clusters</h1>
${details.length === 0 ? html`<p class="empty">You are not a member of any cluster yet. Ask an administrator or a cluster owner to add you.</p>` : details.map((cluster) => clusterCard(cluster, csrf, me.globalRole === 'admin'))}`;
    sendPage(response, { title: 'My clusters', current: 'clusters' }, content);
  });

  router.post('/clusters/:id/kubeconfig', session, async (request, response) => {
    const { token } = sessionOf(response);
    const auth = formField(request, 'auth', { optional: true }) || 'token';
    const context = formField(request, 'context', { optional: true }) || 'proxy';
    if (auth !== 'token' && auth !== 'exec') throw new KubegateError('BAD_REQUEST', 'auth must be token or exec', { field: 'auth' });
    if (context !== 'proxy' && context !== 'ace') throw new KubegateError('BAD_REQUEST', 'context must be proxy or ace', { field: 'context' });
    const query = new URLSearchParams({ auth, context });
    const answer = await ctx.api.call('GET', `/v1/clusters/${encodeURIComponent(paramOf(request, 'id'))}/kubeconfig?${query.toString()}`, { token });
    const disposition = answer.headers['content-disposition'];
    response
      .status(200)
      .type('application/yaml')
      .setHeader('Content-Disposition', typeof disposition === 'string' ? disposition : 'attachment; filename="kubeconfig.yaml"')
      .send(answer.text);
  });

  return router;
}
