/**
 * Users: `GET /v1/me`, `POST /v1/me/password` (own local password), and for admins
 * `POST|GET /v1/users`, `GET|PATCH|DELETE /v1/users/:id`.
 *
 * Design notes:
 * - Users created here are local users (a scrypt password hash, the local provider's
 *   password policy). Views never contain the hash; `local` says whether there is one.
 * - Disabling or deleting a user makes every token of theirs fail on the next request:
 *   token authentication checks the user, and the cached answers for the user are dropped
 *   here (other replicas drop theirs when they hear the store's change). Re-enabling also
 *   drops the refusals cached meanwhile, so the tokens work again at once.
 * - No change may leave the installation without an enabled admin (LAST_ADMIN): the only
 *   way back would be editing the database.
 * - `email` is a local user's verified address (the `email` Kubernetes user name,
 *   auth/principal.ts): an admin vouches for it here (`null` clears it); a provider's login
 *   replaces it with the provider's (providers/verified-email.ts). An address another user
 *   holds, in any case, is CONFLICT.
 * - Races with a login in flight (issue #16.5). Disable: a login that checked `enabled`
 *   just before the disable may still issue a token, but that token is useless — token
 *   authentication reads the user on every uncached use, and the disable dropped every
 *   cached answer for the user first — exactly as the tokens issued before the disable.
 *   Password change (here or by an admin): a login whose password was verified against the
 *   old hash is refused (login.ts, passwordChangedMeanwhile); the one store write that
 *   issues its token is the window left. Tokens issued before a password change stay valid:
 *   revoke them (DELETE /v1/tokens/:name) when the password was compromised.
 * - Changing one's own password needs the current one, and wrong guesses are limited per
 *   user (`maxFailures` per window, reserved before verifying): a stolen token must not
 *   become an unlimited password oracle. The limit is not the login's username limit, which
 *   anyone can fill from outside: an attacker guessing an admin's password at POST
 *   /v1/login never locks that admin, token in hand, out of changing it.
 */
import { Router } from 'express';
import * as z from 'zod';
import { verifyPassword } from '../../auth/password.js';
import { normalisedEmailAddress } from '../../auth/email.js';
import { isUserId, newUserId } from '../../auth/user.js';
import { KubegateError, isKubegateError } from '../../errors.js';
import type { User, UserPatch } from '../../store/store.js';
import { audited, auditTarget, idParam } from './audit.js';
import { authenticate, callerOf, requireAdmin } from './authenticate.js';
import type { ApiServices, ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { parseBody, text } from './validation.js';

const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const username = z.string().regex(USERNAME_PATTERN, { error: 'must be 1–64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit' });
const password = z.string().min(1).max(4096);
const globalRole = z.enum(['admin', 'user']);
const email = z.string().transform((value, context) => {
  const address = normalisedEmailAddress(value);
  if (address === undefined) context.addIssue({ code: 'custom', message: 'must be an e-mail address such as alice@example.org (ASCII, no quotes, at most 254 characters)' });
  return address ?? z.NEVER;
});

const createUserBody = z.strictObject({ username, password, displayName: text(256).optional(), globalRole: globalRole.optional(), email: email.optional() });
const patchUserBody = z.strictObject({
  enabled: z.boolean().optional(),
  globalRole: globalRole.optional(),
  password: password.optional(),
  displayName: text(256).optional(),
  email: email.nullable().optional(),
});
const changePasswordBody = z.strictObject({ currentPassword: password, newPassword: password });
const EMAIL_CONFLICT = (): KubegateError => new KubegateError('CONFLICT', 'another user has this e-mail address', { field: 'email' });

export function userView(user: User): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    displayName: user.displayName,
    globalRole: user.globalRole,
    enabled: user.enabled,
    local: user.passwordHash !== null,
    email: user.email,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
  };
}

export function userRoutes(ctx: ProxyApiContext, services: ApiServices): Router {
  const router = Router();
  const auth = authenticate(ctx);
  const { store } = ctx;

  async function findUser(id: string): Promise<User> {
    const user = isUserId(id) ? await store.getUser(id) : undefined;
    if (user === undefined) throw new KubegateError('NOT_FOUND', 'no such user');
    return user;
  }

  /** CONFLICT when a user other than `userId` holds `address` (in any case). */
  async function keepEmailFree(address: string | null | undefined, userId?: string): Promise<void> {
    if (address === undefined || address === null) return;
    const holder = await store.getUserByEmail(address);
    if (holder !== undefined && holder.id !== userId) throw EMAIL_CONFLICT();
  }

  /** LAST_ADMIN when `user` is the only enabled admin and would stop being one. */
  async function keepAnAdmin(user: User, remainsAdmin: boolean): Promise<void> {
    if (remainsAdmin || user.globalRole !== 'admin' || !user.enabled) return;
    const others = (await store.listUsers()).filter((other) => other.id !== user.id && other.globalRole === 'admin' && other.enabled);
    if (others.length === 0) throw new KubegateError('LAST_ADMIN');
  }

  /**
   * Drops every cached answer about the user's tokens: successes (disable) and failures
   * (re-enable: a token refused while the user was disabled works again at once).
   */
  async function forgetCachedAnswers(userId: string): Promise<void> {
    ctx.authenticator.invalidateUser(userId);
    for (const token of await store.listTokens({ userId })) ctx.authenticator.invalidateToken(token.name);
  }

  router
    .route('/me')
    .get(authenticate(ctx, { allowClusterScoped: true }), (_request, response) => {
      const caller = callerOf(response);
      response.json({
        id: caller.user.id,
        username: caller.user.username,
        displayName: caller.user.displayName,
        email: caller.user.email,
        globalRole: caller.user.globalRole,
        groups: [...caller.identity.groups],
        provider: caller.provider,
        tokenName: caller.token.name,
        cluster: caller.token.clusterId,
      });
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/me/password')
    .post(audited('me.password'), auth, async (request, response) => {
      const caller = callerOf(response);
      auditTarget(response, { userId: caller.user.id });
      const body = parseBody(changePasswordBody, request.body);
      const stored = caller.user.passwordHash;
      if (stored === null) throw new KubegateError('FORBIDDEN', 'the user has no local password');
      const decision = await services.limiter.reservePasswordChange(caller.user.id);
      if (!decision.allowed) {
        response.setHeader('Retry-After', String(decision.retryAfterSeconds));
        throw new KubegateError('LOGIN_RATE_LIMITED');
      }
      let verified: boolean;
      try {
        verified = await verifyPassword(body.currentPassword, stored);
      } catch (error) {
        decision.reservation.abandoned();
        throw error;
      }
      if (!verified) {
        decision.reservation.failed();
        throw new KubegateError('FORBIDDEN', 'currentPassword is wrong', { field: 'currentPassword' });
      }
      decision.reservation.succeeded();
      const passwordHash = await ctx.providers.local.hashNewPassword(body.newPassword, 'newPassword');
      await store.updateUser(caller.user.id, { passwordHash });
      response.status(204).end();
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/users')
    .post(audited('user.create'), auth, requireAdmin, async (request, response) => {
      const body = parseBody(createUserBody, request.body);
      auditTarget(response, { username: body.username, globalRole: body.globalRole ?? 'user' });
      const conflict = new KubegateError('CONFLICT', 'a user with this username exists', { field: 'username' });
      if ((await store.getUserByUsername(body.username)) !== undefined) throw conflict;
      await keepEmailFree(body.email);
      const passwordHash = await ctx.providers.local.hashNewPassword(body.password, 'password');
      let user: User;
      try {
        user = await store.createUser({
          id: newUserId(),
          username: body.username,
          displayName: body.displayName ?? body.username,
          globalRole: body.globalRole ?? 'user',
          enabled: true,
          passwordHash,
          email: body.email ?? null,
        });
      } catch (error) {
        if (isKubegateError(error, 'STORE_CONSTRAINT')) throw body.email !== undefined && (await store.getUserByEmail(body.email)) !== undefined ? EMAIL_CONFLICT() : conflict;
        throw error;
      }
      auditTarget(response, { userId: user.id });
      response.status(201).json({ id: user.id, username: user.username });
    })
    .get(auth, requireAdmin, async (_request, response) => {
      response.json({ items: (await store.listUsers()).map(userView) });
    })
    .all(methodNotAllowed('GET', 'POST'));

  router
    .route('/users/:id')
    .get(auth, requireAdmin, async (request, response) => {
      response.json(userView(await findUser(request.params['id'] ?? '')));
    })
    .patch(audited('user.update', idParam('userId')), auth, requireAdmin, async (request, response) => {
      const user = await findUser(request.params['id'] ?? '');
      const body = parseBody(patchUserBody, request.body);
      auditTarget(response, {
        fields: Object.keys(body).sort(),
        ...(body.enabled === undefined ? {} : { enabled: body.enabled }),
        ...(body.globalRole === undefined ? {} : { globalRole: body.globalRole }),
      });
      await keepAnAdmin(user, (body.enabled ?? user.enabled) && (body.globalRole ?? user.globalRole) === 'admin');
      const patch: UserPatch = {
        ...(body.enabled === undefined ? {} : { enabled: body.enabled }),
        ...(body.globalRole === undefined ? {} : { globalRole: body.globalRole }),
        ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
        ...(body.email === undefined ? {} : { email: body.email }),
        ...(body.password === undefined ? {} : { passwordHash: await ctx.providers.local.hashNewPassword(body.password, 'password') }),
      };
      await keepEmailFree(body.email, user.id);
      let updated: User | undefined;
      try {
        updated = await store.updateUser(user.id, patch);
      } catch (error) {
        // Another user took the address since keepEmailFree looked.
        if (isKubegateError(error, 'STORE_CONSTRAINT') && body.email !== undefined) throw EMAIL_CONFLICT();
        throw error;
      }
      if (updated === undefined) throw new KubegateError('NOT_FOUND', 'no such user');
      if (updated.enabled !== user.enabled) await forgetCachedAnswers(updated.id);
      response.json(userView(updated));
    })
    .delete(audited('user.delete', idParam('userId')), auth, requireAdmin, async (request, response) => {
      const user = await findUser(request.params['id'] ?? '');
      await keepAnAdmin(user, false);
      await store.deleteUser(user.id);
      ctx.authenticator.invalidateUser(user.id);
      await ctx.directory.refresh();
      response.status(204).end();
    })
    .all(methodNotAllowed('GET', 'PATCH', 'DELETE'));

  return router;
}
