/**
 * "My tokens": the user's tokens, a form for a new API token, and revocation.
 *
 *   GET  /console/tokens                   GET /v1/tokens (+ GET /v1/clusters for the scope choice)
 *   POST /console/tokens                   {description, ttl, cluster, _csrf} → POST /v1/tokens
 *   POST /console/tokens/:name/revoke      {_csrf} → DELETE /v1/tokens/:name
 *
 * A new token's secret is in the answer to the POST only — rendered into that one page,
 * which is `no-store`, and never put into a URL, a cookie or a redirect. Revoking the
 * session's own token ends the session.
 */
import { Router } from 'express';
import { itemsOf } from '../api-client.js';
import type { ClusterSummary, NewToken, TokenSummary } from '../api-types.js';
import type { ConsoleContext } from '../context.js';
import { doneFlash, formField, paramOf, redirectAfterPost, sendPage, sessionOf, submitForm } from '../context.js';
import type { ConsoleSession } from '../context.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { CONSOLE_BASE, csrfField } from '../layout.js';
import type { Flash } from '../layout.js';
import { LOGIN_PATH, endSession, requireSession } from '../session.js';

const TOKENS_PATH = `${CONSOLE_BASE}/tokens`;
const DONE = { revoked: 'The token was revoked.' } as const;

export function when(iso: string | null, never = 'never'): Html {
  if (iso === null) return html`<span class="muted">${never}</span>`;
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>`;
}

function tokenRow(token: TokenSummary, session: ConsoleSession): Html {
  const current = token.name === session.me.tokenName;
  return html`<tr><td class="mono">${token.name}${current ? html` <span class="badge">this session</span>` : undefined}</td>
<td>${token.kind}</td><td class="text">${token.description}</td><td>${token.cluster ?? html`<span class="muted">all</span>`}</td>
<td>${when(token.expiresAt)}</td><td>${when(token.lastUsedAt)}</td>
<td class="actions"><form method="post" action="${TOKENS_PATH}/${token.name}/revoke">${csrfField(session.csrf)}<button class="danger" type="submit" aria-label="Revoke ${token.name}">Revoke</button></form></td></tr>`;
}

function newTokenNotice(created: NewToken): Html {
  return html`<section class="card" aria-labelledby="new-token"><h2 id="new-token">New token ${created.name}</h2>
<p>Copy it now: it is shown this once and cannot be read again.</p>
<code class="secret" id="new-token-value">${created.token}</code>
<p class="muted">Expires: ${when(created.expiresAt)}. Valid on: ${created.cluster ?? 'every cluster you may use, and the REST API'}.</p></section>`;
}

export function tokenRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const session = requireSession(ctx);

  async function page(session: ConsoleSession, extra: { created?: NewToken }): Promise<Html> {
    const tokens = itemsOf<TokenSummary>(await ctx.api.call('GET', '/v1/tokens', { token: session.token }));
    const clusters = itemsOf<ClusterSummary>(await ctx.api.call('GET', '/v1/clusters', { token: session.token }));
    return html`<h1>My tokens</h1>
${extra.created === undefined ? undefined : newTokenNotice(extra.created)}
<section class="card" aria-labelledby="create-token"><h2 id="create-token">Create an API token</h2>
<form class="inline" method="post" action="${TOKENS_PATH}">
${csrfField(session.csrf)}
<label for="description">Description<input id="description" name="description" type="text" maxlength="256"></label>
<div class="field"><label for="ttl">Lifetime<input id="ttl" name="ttl" type="text" placeholder="30d" aria-describedby="ttl-hint"></label><span class="hint" id="ttl-hint">e.g. 12h, 30d; empty: the default</span></div>
<label for="cluster">Valid on<select id="cluster" name="cluster"><option value="">every cluster (and the REST API)</option>
${clusters.map((cluster) => html`<option value="${cluster.id}">${cluster.id} only</option>`)}</select></label>
<button type="submit">Create token</button>
</form></section>
<section class="card" aria-labelledby="token-list"><h2 id="token-list">Tokens</h2>
${
  tokens.length === 0
    ? html`<p class="empty">No tokens.</p>`
    : html`<table><thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Description</th><th scope="col">Cluster</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="muted">Actions</span></th></tr></thead>
<tbody>${tokens.map((token) => tokenRow(token, session))}</tbody></table>`
}</section>`;
  }

  router.get('/tokens', session, async (request, response) => {
    sendPage(response, { title: 'My tokens', current: 'tokens', flash: doneFlash(request, DONE) }, await page(sessionOf(response), {}));
  });

  router.post('/tokens', session, async (request, response) => {
    const current = sessionOf(response);
    const ttl = formField(request, 'ttl', { optional: true });
    const cluster = formField(request, 'cluster', { optional: true });
    const description = formField(request, 'description', { optional: true });
    const show = async (flash: Flash, status: number, created?: NewToken): Promise<void> =>
      sendPage(response, { title: 'My tokens', current: 'tokens', status, flash }, await page(current, created === undefined ? {} : { created }));
    await submitForm(async () => {
      const answer = await ctx.api.call('POST', '/v1/tokens', {
        token: current.token,
        body: { ...(description === '' ? {} : { description }), ...(ttl === '' ? {} : { ttl }), ...(cluster === '' ? {} : { cluster }) },
      });
      await show({ kind: 'success', message: 'Token created.' }, 201, answer.json as NewToken);
    }, show);
  });

  router.post('/tokens/:name/revoke', session, async (request, response) => {
    const current = sessionOf(response);
    const name = paramOf(request, 'name');
    await ctx.api.call('DELETE', `/v1/tokens/${encodeURIComponent(name)}`, { token: current.token });
    if (name === current.me.tokenName) {
      endSession(response);
      redirectAfterPost(response, LOGIN_PATH);
      return;
    }
    redirectAfterPost(response, `${TOKENS_PATH}?done=revoked`);
  });

  return router;
}
