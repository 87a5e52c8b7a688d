/**
 * Providers (admins): the identity providers that take logins, and how.
 *
 *   GET /console/admin/providers      GET /v1/providers
 *
 * The API lists enabled providers only (a disabled or removed one has had its tokens
 * revoked at start-up); there is no health endpoint for providers yet, so an LDAP server or
 * OIDC issuer that is down shows up as 503 PROVIDER_UNAVAILABLE on login, not here.
 */
import { Router } from 'express';
import { KubegateError } from '../../errors.js';
import { itemsOf } from '../api-client.js';
import type { ProviderSummary } from '../api-types.js';
import type { ConsoleContext } from '../context.js';
import { sendPage, sessionOf } from '../context.js';
import { html } from '../html.js';
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
    const current = sessionOf(response);
    // The list is public; the page is an admin's overview, like the other admin pages.
    if (current.me.globalRole !== 'admin') throw new KubegateError('FORBIDDEN', 'this needs the global role admin');
    const providers = itemsOf<ProviderSummary>(await ctx.api.call('GET', '/v1/providers'));
    const content = html`<h1>Identity providers</h1>
<section class="card"><table><thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Login</th><th scope="col">State</th><th scope="col">Group prefix</th></tr></thead>
<tbody>${providers.map(
      (provider) => html`<tr><td>${provider.name}</td><td>${TYPE_NAMES[provider.type] ?? provider.type}</td>
<td>${provider.login === 'password' ? 'username and password' : "at the provider's site (browser)"}</td>
<td><span class="badge ok">enabled</span></td><td class="mono">${provider.name}:</td></tr>`,
    )}</tbody></table>
<p class="muted">Providers are configured in the proxy's configuration file (README, "Logging in"); a disabled or removed provider is not listed and its tokens were revoked at start-up.</p></section>`;
    sendPage(response, { title: 'Providers', current: 'providers' }, content);
  });

  return router;
}
