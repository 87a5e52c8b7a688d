/**
 * Providers (admins): the identity providers that take logins, and how.
 *
 *   GET /console/admin/providers      GET /v1/providers
 *
 * The API lists enabled providers only (a disabled or removed one has had its tokens
 * revoked at start-up), and for an admin's token each one's last background health check
 * (src/providers/health.ts): the page shows what the proxy last saw, it never checks.
 */
import { Router } from 'express';
import { itemsOf } from '../api-client.js';
import type { ProviderSummary } from '../api-types.js';
import type { ConsoleContext } from '../context.js';
import { adminSessionOf, sendPage } from '../context.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { when } from './tokens.js';
import { requireSession } from '../session.js';

const TYPE_NAMES: Readonly<Record<string, string>> = {
  local: 'local users',
  ldap: 'LDAP',
  activedirectory: 'Active Directory',
  oidc: 'OpenID Connect',
  github: 'GitHub',
};

export function providerRoutes(ctx: ConsoleContext): Router {
  const router = Router();

  router.get('/admin/providers', requireSession(ctx), async (_request, response) => {
    const current = adminSessionOf(response);
    const providers = itemsOf<ProviderSummary>(await ctx.api.call('GET', '/v1/providers', { token: current.token }));
    const content = html`<h1>Identity providers</h1>
<section class="card"><table><thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Login</th><th scope="col">Health</th><th scope="col">Checked</th><th scope="col">Problem</th><th scope="col">Group prefix</th></tr></thead>
<tbody>${providers.map(
      (provider) => html`<tr><td>${provider.name}</td><td>${TYPE_NAMES[provider.type] ?? provider.type}</td>
<td>${provider.login === 'password' ? 'username and password' : "at the provider's site (browser)"}</td>
<td>${healthBadge(provider)}</td><td>${when(provider.health?.checkedAt ?? null, 'not yet')}</td>
<td class="text">${provider.health?.message ?? html`<span class="muted">none</span>`}</td><td class="mono">${provider.name}:</td></tr>`,
    )}</tbody></table>
<p class="muted">Every enabled provider is checked in the background (LDAP and Active Directory: a bind as the service account; OpenID Connect: discovery and its key set; GitHub: its API; local users: always healthy), every <code>providerHealth.interval</code>. Providers are configured in the proxy's configuration file (README, "Logging in"); a disabled or removed provider is not listed and its tokens were revoked at start-up.</p></section>`;
    sendPage(response, { title: 'Providers', current: 'providers' }, content);
  });

  return router;
}

function healthBadge(provider: ProviderSummary): Html {
  switch (provider.health?.state) {
    case 'healthy':
      return html`<span class="badge ok">healthy</span>`;
    case 'unhealthy':
      return html`<span class="badge bad">unhealthy</span>`;
    default:
      return html`<span class="badge warn">not checked yet</span>`;
  }
}
