/**
 * `POST /v1/login` (username and password through a provider → a login token) and
 * `GET /v1/providers` (which providers take logins; for an admin's token also each one's
 * `health` from the background checks, src/providers/health.ts). Neither needs authentication.
 *
 * Login, in order: validate the body and the lifetime → pick the provider (unknown → 400)
 * → rate limit (429 before any password check; the attempt takes its place in the counters
 * before the password is verified, so a concurrent burst cannot outrun the limit) → the
 * provider's answer:
 * - `unauthenticated` → counted as a failure for the username and the client address, 401;
 * - `error` → the provider's error (503 for an outage), not counted, not a 401;
 * - `authenticated` → the kubegate user: the local provider names it directly; any other
 *   provider's identity is looked up by its link (provider, provider user ID) or a new user
 *   is created and linked. Its provider groups are stored for token authentication, a
 *   disabled user gets 403 (only after a correct password, so it reveals nothing to a
 *   guesser), and a `login` token is issued.
 * The client address is the socket's, or what a configured trusted proxy recorded in
 * `X-Forwarded-For` (client-address.ts): a forwarded header from anyone else is forged.
 * When a limit trips (its first refusal in a window) a warning names the limit, the address
 * and — for the username limit — the username: it is not a secret, and a string tried
 * `maxFailures` times in a row is an account under attack, not a password typed into the
 * wrong field. The password never reaches a log.
 *
 * `DELETE /v1/login-limits?username=…[&provider=…]` or `?address=…` (admins): forgets the
 * failures counted for a username (at one provider, or at every provider) or an address.
 */
import { isIP } from 'node:net';
import { Router } from 'express';
import * as z from 'zod';
import { newUserId } from '../../auth/user.js';
import { KubegateError, isKubegateError, toKubegateError } from '../../errors.js';
import { decideAccess } from '../../providers/access.js';
import { recordVerifiedEmail } from '../../providers/verified-email.js';
import type { PasswordProvider, ProviderIdentity, ProviderLoginResult } from '../../providers/provider.js';
import type { User } from '../../store/store.js';
import type { LoginAttempt } from '../login-rate-limit.js';
import { audited, auditSubject, auditTarget } from './audit.js';
import { authenticate, authenticateIfPresent, callerIfAny, requireAdmin } from './authenticate.js';
import type { ApiServices, ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { expiryFor, issueToken } from './issue-token.js';
import type { IssuedToken } from './issue-token.js';
import { parseBody, parseQuery, text, ttlInput, ttlSeconds } from './validation.js';

const loginBody = z.strictObject({
  provider: z.string().min(1).max(32),
  username: text(1024),
  password: z.string().min(1).max(4096),
  ttl: ttlInput.optional(),
});

const resetLimitsQuery = z.union([
  z.strictObject({ username: text(1024), provider: z.string().min(1).max(32).optional() }),
  z.strictObject({ address: z.string().min(1).max(64) }),
]);

type LoginResult = 'success' | 'failure' | 'rate_limited' | 'error';

export function loginRoutes(ctx: ProxyApiContext, services: ApiServices): Router {
  const { limiter } = services;
  const router = Router();
  const { tokens } = ctx.config;

  function count(provider: string, result: LoginResult): void {
    ctx.metrics?.logins.inc({ provider, result });
  }

  router
    .route('/providers')
    .get(authenticateIfPresent(ctx), (_request, response) => {
      // `login` says how to log in: `password` at POST /v1/login, `browser` at GET /v1/login/<name>.
      // Admins also get each provider's last background health check.
      const withHealth = callerIfAny(response)?.isAdmin === true && ctx.providerHealth !== undefined;
      const item = (provider: { name: string; type: string }, login: 'password' | 'browser') => ({
        name: provider.name,
        type: provider.type,
        login,
        ...(withHealth ? { health: ctx.providerHealth?.(provider.name) ?? { state: 'unknown', checkedAt: null, message: null } } : {}),
      });
      const password = ctx.providers.list().map((provider) => item(provider, 'password'));
      const browser = (ctx.providers.listWebLogin?.() ?? []).map((provider) => item(provider, 'browser'));
      response.json({ items: [...password, ...browser] });
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/login')
    .post(audited('login'), async (request, response) => {
      const body = parseBody(loginBody, request.body);
      auditTarget(response, { method: 'password', provider: body.provider, username: body.username });
      const ttl = body.ttl === undefined ? tokens.loginTtlSeconds : ttlSeconds(body.ttl, 'ttl');
      const maxTtl = Math.max(tokens.apiMaxTtlSeconds, tokens.loginTtlSeconds);
      expiryFor(ctx, ttl, maxTtl);
      const provider = ctx.providers.get(body.provider);
      if (provider === undefined) throw new KubegateError('PROVIDER_UNKNOWN', undefined, { field: 'provider' });

      const attempt: LoginAttempt = { provider: provider.name, username: body.username, address: services.clientAddress(request) };
      // Reserved before the password is verified, in the same step as the check.
      const decision = await limiter.reserve(attempt);
      if (!decision.allowed) {
        count(provider.name, 'rate_limited');
        if (decision.tripped) {
          ctx.logger.warn(
            {
              provider: provider.name,
              limit: decision.limit,
              ...(decision.limit === 'username' ? { username: body.username } : {}),
              address: attempt.address,
              retryAfterSeconds: decision.retryAfterSeconds,
            },
            'login rate limit reached: further attempts are refused until the window closes',
          );
        }
        response.setHeader('Retry-After', String(decision.retryAfterSeconds));
        throw new KubegateError('LOGIN_RATE_LIMITED');
      }
      const { reservation } = decision;

      // A local account's password as it is before verifying (see passwordChangedMeanwhile).
      const localBefore = provider.type === 'local' ? await ctx.store.getUserByUsername(body.username) : undefined;
      const result = await askProvider(provider, body.username, body.password);
      if (result.outcome === 'unauthenticated') {
        reservation.failed();
        count(provider.name, 'failure');
        ctx.logger.info({ provider: provider.name, address: attempt.address }, 'login failed: wrong username or password');
        throw new KubegateError('LOGIN_FAILED');
      }
      if (result.outcome === 'error') {
        reservation.abandoned();
        count(provider.name, 'error');
        throw result.error;
      }
      if (result.outcome === 'disabled') {
        // The password was right, but the account is disabled at the provider.
        reservation.abandoned();
        count(provider.name, 'failure');
        ctx.logger.info({ provider: provider.name, address: attempt.address }, 'login refused: account disabled at the provider');
        throw new KubegateError('USER_DISABLED');
      }

      reservation.succeeded();
      let completed: CompletedLogin;
      try {
        const admitted = await admitLogin(ctx, provider, result.identity);
        if (passwordChangedMeanwhile(localBefore, admitted.user)) {
          ctx.logger.info({ provider: provider.name, address: attempt.address }, 'login refused: the password changed while it was being verified');
          throw new KubegateError('LOGIN_FAILED');
        }
        completed = await issueLoginToken(ctx, provider.name, admitted, { ttlSeconds: ttl, maxTtlSeconds: maxTtl });
      } catch (error) {
        if (isKubegateError(error, 'USER_DISABLED') || isKubegateError(error, 'FORBIDDEN')) count(provider.name, 'failure');
        throw error;
      }
      count(provider.name, 'success');
      auditSubject(response, completed.user.id, completed.issued.stored.name);
      response.status(201).json(loginAnswer(completed));
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/login-limits')
    .delete(audited('login-limits.reset'), authenticate(ctx), requireAdmin, async (request, response) => {
      const query = parseQuery(resetLimitsQuery, request.query);
      auditTarget(response, 'address' in query ? { address: query.address } : { username: query.username, provider: query.provider ?? null });
      if ('address' in query) {
        if (isIP(query.address) === 0) throw new KubegateError('BAD_REQUEST', 'address must be an IP address', { field: 'address' });
        await limiter.reset({ address: query.address });
      } else {
        const providers = query.provider === undefined ? ctx.providers.list().map((provider) => provider.name) : [query.provider];
        for (const provider of providers) await limiter.reset({ provider, username: query.username });
      }
      response.status(204).end();
    })
    .all(methodNotAllowed('DELETE'));

  return router;
}

/**
 * Whether a local user's password hash changed between the start of a login and its
 * admission: the password just verified may then be the old one, and an admin who reset a
 * compromised password (and revoked the tokens) must not see a login with the old password,
 * still being verified at that moment, get a fresh token. The window left is the one store
 * write that issues the token; closing it too needs a conditional insert in the store.
 */
function passwordChangedMeanwhile(before: User | undefined, admitted: User): boolean {
  return before !== undefined && before.id === admitted.id && before.passwordHash !== admitted.passwordHash;
}

/** The provider's answer; a throw (a provider bug) is an `error`, never "wrong password". */
async function askProvider(provider: PasswordProvider, username: string, password: string): Promise<ProviderLoginResult> {
  try {
    return await provider.authenticatePassword(username, password);
  } catch (error) {
    return { outcome: 'error', error: toKubegateError(error) };
  }
}

export interface CompletedLogin {
  readonly user: User;
  readonly issued: IssuedToken;
  readonly groups: readonly string[];
}

/** The provider facts a login needs: its name, and who it lets in. */
export type LoginProvider = Pick<PasswordProvider, 'name' | 'access'>;

/**
 * Everything after a provider vouched for `identity`, shared by password logins and the
 * browser/device logins (web-login.ts): the provider's access policy (FORBIDDEN) → the
 * kubegate user, created and linked on first login → its provider groups stored →
 * USER_DISABLED for a disabled user → a `login` token of `ttlSeconds`.
 */
export async function completeLogin(
  ctx: ProxyApiContext,
  provider: LoginProvider,
  identity: ProviderIdentity,
  lifetime: { readonly ttlSeconds: number; readonly maxTtlSeconds: number },
): Promise<CompletedLogin> {
  const admitted = await admitLogin(ctx, provider, identity);
  return issueLoginToken(ctx, provider.name, admitted, lifetime);
}

export interface AdmittedLogin {
  readonly user: User;
  readonly groups: readonly string[];
}

/**
 * completeLogin without the token: access policy → user → groups stored → the provider's
 * verified e-mail address recorded (providers/verified-email.ts; not for local users, whose
 * address an admin sets; one kubegate does not accept is not recorded, with a warning that
 * does not quote it) → USER_DISABLED.
 * The CLI loopback flow (web-login.ts) admits on the callback and issues at `/exchange`.
 */
export async function admitLogin(ctx: ProxyApiContext, provider: LoginProvider, identity: ProviderIdentity): Promise<AdmittedLogin> {
  if (provider.access !== undefined && provider.access.mode !== 'unrestricted') {
    const known = identity.userId ?? (await ctx.store.findIdentity(provider.name, identity.providerUserId))?.userId;
    const decision = await decideAccess(ctx.store, provider.access, identity, known);
    if (!decision.allowed) throw decision.error;
  }
  const user = await userFor(ctx, provider, identity);
  await storeGroups(ctx, user.id, provider.name, identity.groups);
  if (identity.userId === undefined) await recordVerifiedEmail(ctx.store, ctx.logger, user.id, provider.name, identity.email);
  if (identity.emailRefused === true) {
    ctx.logger.warn(
      { user: user.id, provider: provider.name },
      'the e-mail address the provider vouches for is not one kubegate accepts (ASCII local@domain only); it is not recorded, and the user is logged in without it',
    );
  }
  if (!user.enabled) throw new KubegateError('USER_DISABLED');
  return { user, groups: identity.groups };
}

/** A `login` token of `ttlSeconds` for an admitted user. */
export async function issueLoginToken(
  ctx: ProxyApiContext,
  providerName: string,
  admitted: AdmittedLogin,
  lifetime: { readonly ttlSeconds: number; readonly maxTtlSeconds: number },
): Promise<CompletedLogin> {
  const issued = await issueToken(ctx, {
    userId: admitted.user.id,
    provider: providerName,
    kind: 'login',
    description: 'login',
    ttlSeconds: lifetime.ttlSeconds,
    maxTtlSeconds: lifetime.maxTtlSeconds,
  });
  return { user: admitted.user, issued, groups: admitted.groups };
}

/** The answer to a successful login (the token is in it once, and nowhere else). */
export function loginAnswer(completed: CompletedLogin): Record<string, unknown> {
  return {
    token: completed.issued.token,
    expiresAt: completed.issued.stored.expiresAt?.toISOString() ?? null,
    user: { id: completed.user.id, username: completed.user.username, groups: [...completed.groups] },
  };
}

/** The kubegate user an authenticated identity belongs to, created and linked on first login. */
async function userFor(ctx: ProxyApiContext, provider: LoginProvider, identity: ProviderIdentity): Promise<User> {
  const { store } = ctx;
  if (identity.userId !== undefined) {
    const user = await store.getUser(identity.userId);
    // Deleted between the password check and now.
    if (user === undefined) throw new KubegateError('LOGIN_FAILED');
    return user;
  }
  const linked = await linkedUser(ctx, provider.name, identity.providerUserId);
  if (linked !== undefined) return linked;

  const user = await createUserWithFreeUsername(ctx, provider.name, identity);
  try {
    await store.linkIdentity({ provider: provider.name, providerUserId: identity.providerUserId, userId: user.id, loginName: identity.loginName });
    return user;
  } catch (error) {
    if (!isKubegateError(error, 'STORE_CONSTRAINT')) throw error;
    // A concurrent first login of the same person linked another user first: use that one.
    await store.deleteUser(user.id);
    const winner = await linkedUser(ctx, provider.name, identity.providerUserId);
    if (winner === undefined) throw error;
    return winner;
  }
}

async function linkedUser(ctx: ProxyApiContext, provider: string, providerUserId: string): Promise<User | undefined> {
  const link = await ctx.store.findIdentity(provider, providerUserId);
  return link === undefined ? undefined : ctx.store.getUser(link.userId);
}

/**
 * Usernames are unique across providers; a provider user whose login name is taken (by a
 * local user, or someone of another provider) becomes `name@provider`, then gets a suffix.
 */
async function createUserWithFreeUsername(ctx: ProxyApiContext, provider: string, identity: ProviderIdentity): Promise<User> {
  const candidates = [identity.loginName, `${identity.loginName}@${provider}`, `${identity.loginName}@${provider}-${newUserId().slice(2, 8)}`];
  let lastError: unknown;
  for (const username of candidates) {
    try {
      return await ctx.store.createUser({ id: newUserId(), username, displayName: identity.displayName, globalRole: 'user' });
    } catch (error) {
      if (!isKubegateError(error, 'STORE_CONSTRAINT')) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

/** Stores the provider groups; drops the user's cached token answers when they changed. */
async function storeGroups(ctx: ProxyApiContext, userId: string, provider: string, groups: readonly string[]): Promise<void> {
  const previous = await ctx.store.getUserGroups(userId, provider);
  await ctx.store.putUserGroups({ userId, provider, groups: [...groups], refreshedAt: ctx.now() });
  const changed = previous === undefined || previous.groups.length !== groups.length || previous.groups.some((group, i) => group !== groups[i]);
  if (changed) ctx.authenticator.invalidateUser(userId);
}
