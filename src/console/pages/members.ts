/**
 * Members of a cluster (admins and the cluster's owners).
 *
 *   GET  /console/clusters/:id/members          GET /v1/clusters/:id/members (+ GET /v1/users for admins, to show names)
 *   POST /console/clusters/:id/members          {kind, name, role, _csrf} → POST /v1/clusters/:id/members
 *   POST /console/clusters/:id/members/remove   {kind, name, _csrf} → DELETE /v1/clusters/:id/members/:kind/:name
 *
 * A User member is named by user ID in the API; admins may type a username instead, which
 * is looked up in GET /v1/users (owners who are not admins cannot list users, so they give
 * the ID). Group names are provider-prefixed as identities carry them (`ldap:cn=ops,…`) and
 * may hold `/` (GitHub teams): they travel in form fields, and percent-encoded in the path.
 */
import { Router } from 'express';
import type { Response } from 'express';
import { KubegateError } from '../../errors.js';
import { itemsOf } from '../api-client.js';
import type { ClusterDetail, Member, UserSummary } from '../api-types.js';
import type { ConsoleContext } from '../context.js';
import { doneFlash, formField, paramOf, redirectAfterPost, sendPage, sessionOf, submitForm } from '../context.js';
import type { ConsoleSession } from '../context.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { CONSOLE_BASE, csrfField } from '../layout.js';
import type { Flash } from '../layout.js';
import { requireSession } from '../session.js';

const DONE = { added: 'The member was added.', removed: 'The member was removed.' } as const;
const USER_ID = /^u-[a-z2-7]{12}$/;

function membersPath(clusterId: string): string {
  return `${CONSOLE_BASE}/clusters/${encodeURIComponent(clusterId)}/members`;
}

export function memberRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const session = requireSession(ctx);

  async function usersIfAdmin(current: ConsoleSession): Promise<UserSummary[]> {
    if (current.me.globalRole !== 'admin') return [];
    return itemsOf<UserSummary>(await ctx.api.call('GET', '/v1/users', { token: current.token }));
  }

  async function page(current: ConsoleSession, clusterId: string): Promise<{ title: string; content: Html }> {
    const clusterPath = `/v1/clusters/${encodeURIComponent(clusterId)}`;
    const cluster = (await ctx.api.call('GET', clusterPath, { token: current.token })).json as ClusterDetail;
    const members = itemsOf<Member>(await ctx.api.call('GET', `${clusterPath}/members`, { token: current.token }));
    const usernames = new Map((await usersIfAdmin(current)).map((user) => [user.id, user.username]));
    const path = membersPath(cluster.id);
    const row = (member: Member): Html => html`<tr><td>${member.kind}</td>
<td class="text">${member.kind === 'User' && usernames.has(member.name) ? html`${usernames.get(member.name)} <span class="muted mono">${member.name}</span>` : html`<span class="mono">${member.name}</span>`}</td>
<td>${member.role}</td>
<td class="actions"><form method="post" action="${path}/remove">${csrfField(current.csrf)}<input type="hidden" name="kind" value="${member.kind}"><input type="hidden" name="name" value="${member.name}">
<button class="danger" type="submit" aria-label="Remove ${member.kind} ${usernames.get(member.name) ?? member.name}">Remove</button></form></td></tr>`;
    const content = html`<h1>Members of ${cluster.displayName}</h1>
<section class="card" aria-labelledby="add-member"><h2 id="add-member">Add a member</h2>
<form class="inline" method="post" action="${path}">
${csrfField(current.csrf)}
<label for="kind">Kind<select id="kind" name="kind"><option value="User">User</option><option value="Group">Group</option></select></label>
<div class="field"><label for="name">Name<input id="name" name="name" type="text" required maxlength="1024" aria-describedby="name-hint"></label><span class="hint" id="name-hint">a user: ${current.me.globalRole === 'admin' ? 'username or ' : ''}user ID (u-…); a group: as identities carry it, e.g. ldap:cn=ops,ou=groups,dc=example</span></div>
<label for="role">Role<select id="role" name="role"><option value="member">member (edit)</option><option value="viewer">viewer (view)</option><option value="owner">owner (cluster-admin, manages members)</option></select></label>
<button type="submit">Add member</button>
</form></section>
<section class="card" aria-labelledby="member-list"><h2 id="member-list">Members</h2>
${
  members.length === 0
    ? html`<p class="empty">No members.</p>`
    : html`<table><thead><tr><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Role</th><th scope="col"><span class="muted">Actions</span></th></tr></thead><tbody>${members.map(row)}</tbody></table>`
}</section>`;
    return { title: `Members of ${cluster.id}`, content };
  }

  async function show(response: Response, clusterId: string, flash: Flash | undefined, status = 200): Promise<void> {
    const { title, content } = await page(sessionOf(response), clusterId);
    sendPage(response, { title, current: sessionOf(response).me.globalRole === 'admin' ? 'manage-clusters' : 'clusters', flash, status }, content);
  }

  /** The API's subject name: a username is resolved to its ID (admins only). */
  async function subjectName(current: ConsoleSession, kind: string, name: string): Promise<string> {
    if (kind !== 'User' || USER_ID.test(name)) return name;
    const user = (await usersIfAdmin(current)).find((candidate) => candidate.username === name);
    if (user === undefined) throw new KubegateError('BAD_REQUEST', 'name: no user has this username; give the user ID (u-…)', { field: 'name' });
    return user.id;
  }

  router.get('/clusters/:id/members', session, async (request, response) => {
    await show(response, paramOf(request, 'id'), doneFlash(request, DONE));
  });

  router.post('/clusters/:id/members', session, async (request, response) => {
    const current = sessionOf(response);
    const clusterId = paramOf(request, 'id');
    await submitForm(
      async () => {
        const kind = formField(request, 'kind');
        const name = await subjectName(current, kind, formField(request, 'name').trim());
        await ctx.api.call('POST', `/v1/clusters/${encodeURIComponent(clusterId)}/members`, { token: current.token, body: { kind, name, role: formField(request, 'role') } });
        redirectAfterPost(response, `${membersPath(clusterId)}?done=added`);
      },
      (flash, status) => show(response, clusterId, flash, status),
    );
  });

  router.post('/clusters/:id/members/remove', session, async (request, response) => {
    const current = sessionOf(response);
    const clusterId = paramOf(request, 'id');
    await submitForm(
      async () => {
        const kind = encodeURIComponent(formField(request, 'kind'));
        const name = encodeURIComponent(formField(request, 'name'));
        await ctx.api.call('DELETE', `/v1/clusters/${encodeURIComponent(clusterId)}/members/${kind}/${name}`, { token: current.token });
        redirectAfterPost(response, `${membersPath(clusterId)}?done=removed`);
      },
      (flash, status) => show(response, clusterId, flash, status),
    );
  });

  return router;
}
