/**
 * Users (admins): the list, a form for a new local user, each user's e-mail address, disable
 * and enable.
 *
 *   GET  /console/admin/users                    GET /v1/users
 *   POST /console/admin/users                    {username, displayName, email, password, admin, _csrf} → POST /v1/users
 *   POST /console/admin/users/:id/email          {email, _csrf} → PATCH /v1/users/:id {email} (empty: {email: null}, removed)
 *   POST /console/admin/users/:id/disable|enable {_csrf} → PATCH /v1/users/:id {enabled}
 *
 * The API decides who may do this (admins only) and refuses what would leave no enabled
 * admin; the console only shows its answer.
 */
import { Router } from 'express';
import { KubegateError } from '../../errors.js';
import { itemsOf } from '../api-client.js';
import type { UserSummary } from '../api-types.js';
import type { ConsoleContext } from '../context.js';
import { doneFlash, formField, paramOf, redirectAfterPost, sendPage, sessionOf, submitForm } from '../context.js';
import type { ConsoleSession } from '../context.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { CONSOLE_BASE, csrfField } from '../layout.js';
import type { Flash } from '../layout.js';
import { requireSession } from '../session.js';
import { when } from './tokens.js';

const USERS_PATH = `${CONSOLE_BASE}/admin/users`;
const DONE = {
  created: 'The user was created.',
  disabled: 'The user was disabled: their tokens stop working now.',
  enabled: 'The user was enabled.',
  'email-saved': 'The e-mail address was saved.',
  'email-removed': 'The e-mail address was removed.',
} as const;

/** An address typed for one user that the API refused: shown again in that user's row. */
interface TypedEmail {
  readonly userId: string;
  readonly email: string;
}

function userRow(user: UserSummary, csrf: string, typed: TypedEmail | undefined): Html {
  const email = typed?.userId === user.id ? typed.email : (user.email ?? '');
  const action = user.enabled ? 'disable' : 'enable';
  return html`<tr><td class="text">${user.username}</td><td class="text">${user.displayName}</td>
<td><form class="inline" method="post" action="${USERS_PATH}/${user.id}/email">${csrfField(csrf)}<input name="email" type="email" maxlength="254" autocomplete="off" aria-label="E-mail of ${user.username}" value="${email}"><button class="secondary" type="submit" aria-label="Save the e-mail of ${user.username}">Save</button></form></td>
<td class="mono">${user.id}</td><td>${user.globalRole}</td>
<td>${user.enabled ? html`<span class="badge ok">enabled</span>` : html`<span class="badge bad">disabled</span>`}</td>
<td>${user.local ? 'local' : 'external'}</td><td>${when(user.createdAt)}</td>
<td class="actions"><form method="post" action="${USERS_PATH}/${user.id}/${action}">${csrfField(csrf)}<button class="${user.enabled ? 'danger' : 'secondary'}" type="submit" aria-label="${user.enabled ? 'Disable' : 'Enable'} ${user.username}">${user.enabled ? 'Disable' : 'Enable'}</button></form></td></tr>`;
}

export function userRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const session = requireSession(ctx);

  async function page(current: ConsoleSession, typed: { username?: string; displayName?: string; email?: string } = {}, typedEmail?: TypedEmail): Promise<Html> {
    const users = itemsOf<UserSummary>(await ctx.api.call('GET', '/v1/users', { token: current.token }));
    return html`<h1>Users</h1>
<section class="card" aria-labelledby="add-user"><h2 id="add-user">Add a local user</h2>
<form class="stack" method="post" action="${USERS_PATH}">
${csrfField(current.csrf)}
<label for="username">Username<input id="username" name="username" type="text" required maxlength="64" autocomplete="off" value="${typed.username ?? ''}"></label>
<label for="displayName">Display name<input id="displayName" name="displayName" type="text" maxlength="256" value="${typed.displayName ?? ''}"></label>
<label for="email">E-mail address <span class="muted">(one you have verified: it may become the user's name in Kubernetes)</span><input id="email" name="email" type="email" maxlength="254" autocomplete="off" value="${typed.email ?? ''}"></label>
<label for="password">Initial password<input id="password" name="password" type="password" required autocomplete="new-password"></label>
<label class="check"><input type="checkbox" name="admin" value="yes"> Administrator (global role admin)</label>
<div><button type="submit">Add user</button></div>
</form></section>
<section class="card" aria-labelledby="user-list"><h2 id="user-list">All users</h2>
<p class="muted">An e-mail address saved here should be one you have verified; an empty one removes it. An external user's provider replaces it with its own at the next login or refresh.</p>
<table><thead><tr><th scope="col">Username</th><th scope="col">Display name</th><th scope="col">E-mail</th><th scope="col">ID</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Kind</th><th scope="col">Created</th><th scope="col"><span class="muted">Actions</span></th></tr></thead>
<tbody>${users.map((user) => userRow(user, current.csrf, typedEmail))}</tbody></table></section>`;
  }

  router.get('/admin/users', session, async (request, response) => {
    sendPage(response, { title: 'Users', current: 'users', flash: doneFlash(request, DONE) }, await page(sessionOf(response)));
  });

  router.post('/admin/users', session, async (request, response) => {
    const current = sessionOf(response);
    const typed = {
      username: formField(request, 'username', { optional: true }),
      displayName: formField(request, 'displayName', { optional: true }),
      email: formField(request, 'email', { optional: true }),
    };
    await submitForm(
      async () => {
        await ctx.api.call('POST', '/v1/users', {
          token: current.token,
          body: {
            username: formField(request, 'username'),
            password: formField(request, 'password'),
            ...(typed.displayName === '' ? {} : { displayName: typed.displayName }),
            ...(typed.email === '' ? {} : { email: typed.email }),
            globalRole: formField(request, 'admin', { optional: true }) === 'yes' ? 'admin' : 'user',
          },
        });
        redirectAfterPost(response, `${USERS_PATH}?done=created`);
      },
      async (flash: Flash, status: number) => sendPage(response, { title: 'Users', current: 'users', flash, status }, await page(current, typed)),
    );
  });

  router.post('/admin/users/:id/email', session, async (request, response) => {
    const current = sessionOf(response);
    const userId = paramOf(request, 'id');
    const email = formField(request, 'email', { optional: true });
    await submitForm(
      async () => {
        await ctx.api.call('PATCH', `/v1/users/${encodeURIComponent(userId)}`, { token: current.token, body: { email: email === '' ? null : email } });
        redirectAfterPost(response, `${USERS_PATH}?done=${email === '' ? 'email-removed' : 'email-saved'}`);
      },
      async (flash: Flash, status: number) => sendPage(response, { title: 'Users', current: 'users', flash, status }, await page(current, {}, { userId, email })),
    );
  });

  router.post('/admin/users/:id/:action', session, async (request, response) => {
    const current = sessionOf(response);
    const action = paramOf(request, 'action');
    await submitForm(
      async () => {
        if (action !== 'enable' && action !== 'disable') throw new KubegateError('NOT_FOUND', 'no such action');
        await ctx.api.call('PATCH', `/v1/users/${encodeURIComponent(paramOf(request, 'id'))}`, { token: current.token, body: { enabled: action === 'enable' } });
        redirectAfterPost(response, `${USERS_PATH}?done=${action}d`);
      },
      async (flash: Flash, status: number) => sendPage(response, { title: 'Users', current: 'users', flash, status }, await page(current)),
    );
  });

  return router;
}
