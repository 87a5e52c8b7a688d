/**
 * Logins that happen at the identity provider (OIDC, GitHub), through the proxy. None of
 * these routes needs authentication.
 *
 *   GET  /v1/login/:provider[?ttl=][&cli_redirect=&cli_challenge=|&console_challenge=]  302 to the provider
 *   GET  /v1/login/:provider/callback?code=&state=                   the provider sends the browser back
 *   POST /v1/login/:provider/exchange    {code, code_verifier}       CLI: the loopback code → token
 *   POST /v1/login/:provider/device      {ttl?}                      device flow: codes for the user
 *   POST /v1/login/:provider/device/token {device_code}              device flow: poll
 *
 * Any process may finish a login another one started (`workers: N`, replicas behind a load
 * balancer): the pending login is sealed into what the client carries — the `state`, the
 * exchange code, the device handle — with the key every process derives from the shared
 * secret key (src/providers/login-state.ts), bound to the provider and the purpose, with its
 * expiry inside. Nothing is looked up in memory except the per-process used set (replays
 * on the same process) and device poll pacing.
 *
 * Browser flow: the start makes a `nonce` and a PKCE verifier, seals them with the callback
 * URL, the token lifetime and the CLI facts into `state`, and redirects to the provider with
 * `redirect_uri` = `<public URL>/v1/login/<provider>/callback` (register that URL at the
 * provider). The callback opens `state` — a forged, altered or expired one, one started for
 * another provider, or one this process already consumed is LOGIN_STATE_INVALID — and lets
 * the provider exchange the code (single-use at the provider: a replay that lands on another
 * process fails there). Then the same path as a password login (login.ts: access policy,
 * user by identity link, groups, `login` token).
 *
 * CLI flow (`kubegate login` with a browser): the CLI listens on a loopback port and starts
 * with `cli_redirect=http://127.0.0.1:<port>/…` (or localhost; nothing else is accepted, so
 * the proxy can never be made to send a login to another site) and `cli_challenge` (S256 of
 * a verifier only the CLI knows). The callback admits the login (access, user, groups) and
 * answers 302 to `cli_redirect?code=…` with a one-time code sealing {user ID, challenge,
 * lifetime, expiry} — never a token, so no token appears in a URL or the browser history; the
 * CLI trades code + verifier for the token at `/exchange`. A code intercepted on the loopback
 * is useless without the verifier.
 *
 * Web console flow (src/console/): the same as the CLI's, with `console_challenge` alone: the
 * console keeps the verifier in an HttpOnly cookie of the browser that started the login, and
 * the callback answers 302 to the console's own path `/console/login/<provider>/complete?code=…`
 * (relative, fixed here, never taken from the request), where the console redeems the code
 * at `/exchange` with that verifier. A code that reaches another browser is useless there.
 *
 * Device flow: the provider's device code is sealed into the client's handle (the client
 * cannot read it). Polling faster than the provider's interval is answered LOGIN_PENDING
 * without asking the provider — paced per process; the provider paces across processes with
 * its own `slow_down`. Every LOGIN_PENDING carries `Retry-After` (seconds).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import type { Request, Response } from 'express';
import * as z from 'zod';
import { KubegateError, toKubegateError } from '../../errors.js';
import type { ProviderIdentity, ProviderLoginResult } from '../../providers/provider.js';
import { ExpiringCache, MAX_SEALED_LENGTH, createLoginStateSealer, createUsedLoginStates } from '../../providers/login-state.js';
import { newWebLoginSecrets } from '../../providers/web-login.js';
import type { WebLoginProvider, WebLoginRequest } from '../../providers/web-login.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { expiryFor } from './issue-token.js';
import { admitLogin, completeLogin, issueLoginToken, loginAnswer } from './login.js';
import { audited, auditSubject, auditTarget } from './audit.js';
import type { CompletedLogin } from './login.js';
import { parseBody, parseQuery, ttlInput, ttlSeconds } from './validation.js';

/** How long a browser may take at the provider. */
const WEB_LOGIN_TTL_MS = 10 * 60_000;
/** How long the CLI has to exchange its loopback code. */
const EXCHANGE_TTL_MS = 2 * 60_000;
/** Longest device login kept, whatever the provider says. */
const MAX_DEVICE_LOGIN_MS = 30 * 60_000;
/** Most entries of each per-process set (used values, device poll pacing). */
const MAX_TRACKED = 10_000;
const MAX_CLI_REDIRECT_LENGTH = 2048;

const s256Challenge = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'must be a base64url S256 challenge' });
const startQuery = z.strictObject({
  ttl: z.string().min(1).max(64).optional(),
  cli_redirect: z.string().min(1).max(MAX_CLI_REDIRECT_LENGTH).optional(),
  cli_challenge: s256Challenge.optional(),
  console_challenge: s256Challenge.optional(),
});
const sealedInput = z.string().min(1).max(MAX_SEALED_LENGTH);
const exchangeBody = z.strictObject({ code: sealedInput, code_verifier: z.string().min(43).max(128) });
const deviceBody = z.strictObject({ ttl: ttlInput.optional() });
const devicePollBody = z.strictObject({ device_code: sealedInput });

// Sealed payloads use short keys: they travel in URLs.
const lifetimeSeconds = z.number().int().positive();
/** `state`: nonce, PKCE verifier, redirect URI, token lifetime, CLI loopback + challenge, console challenge. */
const pendingWebLogin = z.strictObject({
  n: z.string(),
  v: z.string(),
  r: z.string(),
  t: lifetimeSeconds,
  c: z.strictObject({ r: z.string(), h: z.string() }).optional(),
  w: z.strictObject({ h: z.string() }).optional(),
});
/** Exchange code: the admitted user, the CLI's S256 challenge, the token lifetime. */
const pendingExchange = z.strictObject({ u: z.string(), h: z.string(), t: lifetimeSeconds });
/** Device handle: the provider's device code, the token lifetime, the provider's interval. */
const pendingDeviceLogin = z.strictObject({ d: z.string(), t: lifetimeSeconds, i: z.number().int().positive() });

interface DevicePacing {
  intervalSeconds: number;
  lastPollMs: number;
  polling: boolean;
}

export function webLoginRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const { tokens } = ctx.config;
  const maxTtl = Math.max(tokens.apiMaxTtlSeconds, tokens.loginTtlSeconds);
  const now = (): number => ctx.now().getTime();
  // No fallback to a key of this process: a login started here must be able to finish on
  // any worker or replica, so a missing or malformed key stops the start (TypeError).
  const sealer = createLoginStateSealer({ key: ctx.loginStateKey, now });
  const used = createUsedLoginStates({ maxEntries: MAX_TRACKED, now });
  const devicePacing = new ExpiringCache<DevicePacing>({ maxEntries: MAX_TRACKED, now });

  function count(provider: string, result: 'success' | 'failure' | 'error'): void {
    ctx.metrics?.logins.inc({ provider, result });
  }

  function providerOf(request: Request): WebLoginProvider {
    const param: unknown = request.params['provider'];
    const name = typeof param === 'string' ? param : '';
    const provider = ctx.providers.webLogin?.(name);
    if (provider !== undefined) return provider;
    if (ctx.providers.get(name) !== undefined) {
      throw new KubegateError('LOGIN_METHOD_UNSUPPORTED', 'this provider takes a username and password at POST /v1/login');
    }
    throw new KubegateError('PROVIDER_UNKNOWN');
  }

  function lifetime(ttl: string | number | undefined): number {
    const seconds = ttl === undefined ? tokens.loginTtlSeconds : ttlSeconds(ttl, 'ttl');
    expiryFor(ctx, seconds, maxTtl);
    return seconds;
  }

  function stateInvalid(provider: WebLoginProvider): KubegateError {
    count(provider.name, 'failure');
    return new KubegateError('LOGIN_STATE_INVALID');
  }

  /** The provider's answer as an identity; anything else is thrown as its catalog error. */
  function identityOf(provider: WebLoginProvider, result: ProviderLoginResult): ProviderIdentity {
    if (result.outcome === 'authenticated') return result.identity;
    if (result.outcome === 'error') {
      count(provider.name, result.error.status >= 500 ? 'error' : 'failure');
      throw result.error;
    }
    count(provider.name, 'failure');
    throw new KubegateError(result.outcome === 'disabled' ? 'USER_DISABLED' : 'LOGIN_DENIED');
  }

  /** Runs a login step; a refusal or failure is counted before it propagates. */
  async function counted<T>(provider: WebLoginProvider, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      count(provider.name, toKubegateError(error).status >= 500 ? 'error' : 'failure');
      throw error;
    }
  }

  function answer(provider: WebLoginProvider, completed: CompletedLogin, response: Response, status: number): void {
    count(provider.name, 'success');
    auditSubject(response, completed.user.id, completed.issued.stored.name);
    auditTarget(response, { username: completed.user.username });
    response.status(status).json(loginAnswer(completed));
  }

  async function finish(provider: WebLoginProvider, identity: ProviderIdentity, ttlSeconds: number, response: Response, status: number): Promise<void> {
    const completed = await counted(provider, () => completeLogin(ctx, provider, identity, { ttlSeconds, maxTtlSeconds: maxTtl }));
    answer(provider, completed, response, status);
  }

  router
    .route('/login/:provider')
    .get(async (request, response) => {
      const provider = providerOf(request);
      const query = parseQuery(startQuery, request.query);
      const ttl = lifetime(query.ttl);
      if ((query.cli_redirect === undefined) !== (query.cli_challenge === undefined)) {
        throw new KubegateError('BAD_REQUEST', 'cli_redirect and cli_challenge go together', { field: query.cli_redirect === undefined ? 'cli_redirect' : 'cli_challenge' });
      }
      if (query.console_challenge !== undefined && query.cli_redirect !== undefined) {
        throw new KubegateError('BAD_REQUEST', 'console_challenge and cli_redirect exclude each other', { field: 'console_challenge' });
      }
      const cli = query.cli_redirect === undefined ? undefined : { r: loopbackRedirect(query.cli_redirect).href, h: query.cli_challenge ?? '' };
      const webConsole = query.console_challenge === undefined ? undefined : { h: query.console_challenge };
      const secrets = await newWebLoginSecrets();
      const redirectUri = `${ctx.publicUrl()}/v1/login/${encodeURIComponent(provider.name)}/callback`;
      const pending: z.input<typeof pendingWebLogin> = {
        n: secrets.nonce,
        v: secrets.codeVerifier,
        r: redirectUri,
        t: ttl,
        ...(cli === undefined ? {} : { c: cli }),
        ...(webConsole === undefined ? {} : { w: webConsole }),
      };
      const state = sealer.seal('state', provider.name, pending, WEB_LOGIN_TTL_MS);
      const url = await provider.authorizationUrl({ state, nonce: secrets.nonce, codeVerifier: secrets.codeVerifier, redirectUri });
      response.redirect(302, url.href);
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/login/:provider/callback')
    .get(audited('login'), async (request, response) => {
      auditTarget(response, { method: 'browser', provider: (request.params['provider'] ?? '').slice(0, 32) });
      const provider = providerOf(request);
      const state = request.query['state'];
      const opened = sealer.open('state', provider.name, state, pendingWebLogin);
      // Consumed before the provider is asked, so a concurrent replay on this process fails too.
      if (opened === undefined || typeof state !== 'string' || !used.markUsed(opened.id, opened.expiresAtMs)) throw stateInvalid(provider);
      const pending = opened.payload;
      const loginRequest: WebLoginRequest = Object.freeze({ state, nonce: pending.n, codeVerifier: pending.v, redirectUri: pending.r });
      const callbackUrl = new URL(pending.r);
      callbackUrl.search = new URL(request.originalUrl, 'http://callback.invalid').search;
      const identity = identityOf(provider, await provider.completeWebLogin(loginRequest, callbackUrl));
      const challenge = pending.c?.h ?? pending.w?.h;
      if (challenge === undefined) {
        await finish(provider, identity, pending.t, response, 200);
        return;
      }
      const admitted = await counted(provider, () => admitLogin(ctx, provider, identity));
      auditSubject(response, admitted.user.id, null);
      auditTarget(response, { username: admitted.user.username, handedTo: pending.c === undefined ? 'console' : 'cli' });
      const code = sealer.seal('exchange', provider.name, { u: admitted.user.id, h: challenge, t: pending.t } satisfies z.input<typeof pendingExchange>, EXCHANGE_TTL_MS);
      let target: string;
      if (pending.c === undefined) {
        target = `/console/login/${encodeURIComponent(provider.name)}/complete?${new URLSearchParams({ code }).toString()}`;
      } else {
        const loopback = loopbackRedirect(pending.c.r);
        loopback.searchParams.set('code', code);
        target = loopback.href;
      }
      response.redirect(302, target);
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/login/:provider/exchange')
    .post(audited('login'), async (request, response) => {
      auditTarget(response, { method: 'cli-exchange', provider: (request.params['provider'] ?? '').slice(0, 32) });
      const provider = providerOf(request);
      const body = parseBody(exchangeBody, request.body);
      const opened = sealer.open('exchange', provider.name, body.code, pendingExchange);
      // Marked used before the verifier is checked: a wrong verifier burns the code.
      if (opened === undefined || !used.markUsed(opened.id, opened.expiresAtMs) || !challengeMatches(body.code_verifier, opened.payload.h)) {
        throw stateInvalid(provider);
      }
      const pending = opened.payload;
      const completed = await counted(provider, async () => {
        const user = await ctx.store.getUser(pending.u);
        // Deleted since the callback admitted the login.
        if (user === undefined) throw new KubegateError('LOGIN_STATE_INVALID');
        if (!user.enabled) throw new KubegateError('USER_DISABLED');
        const groups = (await ctx.store.getUserGroups(user.id, provider.name))?.groups ?? [];
        return issueLoginToken(ctx, provider.name, { user, groups }, { ttlSeconds: pending.t, maxTtlSeconds: maxTtl });
      });
      answer(provider, completed, response, 201);
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/login/:provider/device')
    .post(async (request, response) => {
      const provider = providerOf(request);
      const body = parseBody(deviceBody, request.body);
      const ttl = lifetime(body.ttl);
      if (provider.startDeviceLogin === undefined) throw new KubegateError('LOGIN_METHOD_UNSUPPORTED', 'this provider does not offer device logins');
      const started = await provider.startDeviceLogin();
      const expiresInSeconds = Math.max(1, Math.min(started.expiresInSeconds, MAX_DEVICE_LOGIN_MS / 1000));
      const intervalSeconds = Math.max(1, Math.ceil(started.intervalSeconds));
      const pending: z.input<typeof pendingDeviceLogin> = { d: started.deviceCode, t: ttl, i: intervalSeconds };
      const handle = sealer.seal('device', provider.name, pending, expiresInSeconds * 1000);
      response.status(201).json({
        device_code: handle,
        user_code: started.userCode,
        verification_uri: started.verificationUri,
        ...(started.verificationUriComplete === undefined ? {} : { verification_uri_complete: started.verificationUriComplete }),
        expires_in: expiresInSeconds,
        interval: intervalSeconds,
      });
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/login/:provider/device/token')
    .post(audited('login'), async (request, response) => {
      auditTarget(response, { method: 'device', provider: (request.params['provider'] ?? '').slice(0, 32) });
      const provider = providerOf(request);
      const body = parseBody(devicePollBody, request.body);
      const opened = sealer.open('device', provider.name, body.device_code, pendingDeviceLogin);
      if (opened === undefined || used.isUsed(opened.id) || provider.pollDeviceLogin === undefined) throw new KubegateError('LOGIN_STATE_INVALID');
      let pacing = devicePacing.get(opened.id);
      if (pacing === undefined) {
        pacing = { intervalSeconds: opened.payload.i, lastPollMs: 0, polling: false };
        devicePacing.set(opened.id, pacing, opened.expiresAtMs);
      }
      const paced = pacing;
      const pendingAnswer = (slowDown: boolean): KubegateError => {
        response.setHeader('Retry-After', String(paced.intervalSeconds));
        return new KubegateError('LOGIN_PENDING', slowDown ? 'slow_down: poll less often' : 'authorization_pending: the user has not finished yet');
      };
      const at = now();
      const tooEarly = at - paced.lastPollMs < paced.intervalSeconds * 1000;
      if (paced.polling || tooEarly) throw pendingAnswer(tooEarly);
      paced.polling = true;
      paced.lastPollMs = at;
      let result;
      try {
        result = await provider.pollDeviceLogin(opened.payload.d);
      } finally {
        paced.polling = false;
      }
      if (result.outcome === 'pending') {
        if (result.slowDown) paced.intervalSeconds += 5;
        throw pendingAnswer(result.slowDown);
      }
      if (!used.markUsed(opened.id, opened.expiresAtMs)) throw stateInvalid(provider);
      devicePacing.delete(opened.id);
      await finish(provider, identityOf(provider, result), opened.payload.t, response, 201);
    })
    .all(methodNotAllowed('POST'));

  return router;
}

/**
 * A CLI's loopback redirect: `http://127.0.0.1:<port>/…`, `http://[::1]:<port>/…` or
 * `http://localhost:<port>/…`, with no credentials or fragment, at most 2048 characters.
 * LOGIN_REDIRECT_INVALID otherwise.
 */
export function loopbackRedirect(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KubegateError('LOGIN_REDIRECT_INVALID', undefined, { field: 'cli_redirect' });
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  const bad = url.protocol !== 'http:' || !loopback || url.port === '' || url.username !== '' || url.password !== '' || url.hash !== '';
  // Bounded after normalisation (percent-encoding grows it): it is sealed into the state.
  if (bad || url.href.length > MAX_CLI_REDIRECT_LENGTH) {
    throw new KubegateError('LOGIN_REDIRECT_INVALID', undefined, { field: 'cli_redirect' });
  }
  return url;
}

/** S256(verifier) equals the challenge, compared in constant time. */
function challengeMatches(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(verifier).digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
