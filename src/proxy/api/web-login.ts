/**
 * Logins that happen at the identity provider (OIDC, GitHub), through the proxy. None of
 * these routes needs authentication.
 *
 *   GET  /v1/login/:provider[?ttl=][&cli_redirect=&cli_challenge=]  302 to the provider
 *   GET  /v1/login/:provider/callback?code=&state=                   the provider sends the browser back
 *   POST /v1/login/:provider/exchange    {code, code_verifier}       CLI: the loopback code → token
 *   POST /v1/login/:provider/device      {ttl?}                      device flow: codes for the user
 *   POST /v1/login/:provider/device/token {device_code}              device flow: poll
 *
 * Browser flow: the start makes `state` (the key of the pending login), a `nonce` and a PKCE
 * verifier, keeps them server-side (src/providers/web-login.ts) and redirects to the provider
 * with `redirect_uri` = `<public URL>/v1/login/<provider>/callback` (register that URL at the
 * provider). The callback takes the pending login by `state` — once: a replayed callback, a
 * forged or expired `state`, or one started for another provider is LOGIN_STATE_INVALID —
 * and lets the provider exchange the code. Then the same path as a password login
 * (login.ts completeLogin: access policy, user by identity link, groups, `login` token).
 *
 * CLI flow (`kubegate login` with a browser): the CLI listens on a loopback port and starts
 * with `cli_redirect=http://127.0.0.1:<port>/…` (or localhost; nothing else is accepted, so
 * the proxy can never be made to send a login to another site) and `cli_challenge` (S256 of
 * a verifier only the CLI knows). The callback then answers 302 to `cli_redirect?code=…`
 * with a one-time exchange code instead of a token, so no token ever appears in a URL or the
 * browser history; the CLI trades code + verifier for the token at `/exchange`. A code
 * intercepted on the loopback is useless without the verifier.
 *
 * Device flow: the provider's device code stays in the proxy; the client polls with an opaque
 * handle. Polling faster than the provider's interval is answered LOGIN_PENDING without
 * asking the provider; every LOGIN_PENDING carries `Retry-After` (seconds).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import type { Request, Response } from 'express';
import * as z from 'zod';
import { KubegateError, toKubegateError } from '../../errors.js';
import type { ProviderIdentity, ProviderLoginResult } from '../../providers/provider.js';
import { createPendingLoginStore, newWebLoginSecrets } from '../../providers/web-login.js';
import type { WebLoginProvider, WebLoginRequest } from '../../providers/web-login.js';
import type { ProxyApiContext } from './context.js';
import { methodNotAllowed } from './error-response.js';
import { expiryFor } from './issue-token.js';
import { completeLogin, loginAnswer } from './login.js';
import { parseBody, parseQuery, ttlInput, ttlSeconds } from './validation.js';

/** How long a browser may take at the provider. */
const WEB_LOGIN_TTL_MS = 10 * 60_000;
/** How long the CLI has to exchange its loopback code. */
const EXCHANGE_TTL_MS = 2 * 60_000;
/** Longest device login kept, whatever the provider says. */
const MAX_DEVICE_LOGIN_MS = 30 * 60_000;
const MAX_PENDING = 10_000;

const startQuery = z.strictObject({
  ttl: z.string().min(1).max(64).optional(),
  cli_redirect: z.string().min(1).max(2048).optional(),
  cli_challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'must be a base64url S256 challenge' }).optional(),
});
const exchangeBody = z.strictObject({ code: z.string().min(1).max(128), code_verifier: z.string().min(43).max(128) });
const deviceBody = z.strictObject({ ttl: ttlInput.optional() });
const devicePollBody = z.strictObject({ device_code: z.string().min(1).max(128) });

interface PendingWebLogin {
  readonly provider: string;
  readonly request: WebLoginRequest;
  readonly ttlSeconds: number;
  readonly cli: { readonly redirect: URL; readonly challenge: string } | undefined;
}

interface PendingExchange {
  readonly provider: string;
  readonly identity: ProviderIdentity;
  readonly ttlSeconds: number;
  readonly challenge: string;
}

interface PendingDeviceLogin {
  readonly provider: string;
  readonly deviceCode: string;
  readonly ttlSeconds: number;
  intervalSeconds: number;
  lastPollMs: number;
  polling: boolean;
}

export function webLoginRoutes(ctx: ProxyApiContext): Router {
  const router = Router();
  const { tokens } = ctx.config;
  const maxTtl = Math.max(tokens.apiMaxTtlSeconds, tokens.loginTtlSeconds);
  const now = (): number => ctx.now().getTime();
  const webLogins = createPendingLoginStore<PendingWebLogin>({ maxEntries: MAX_PENDING, ttlMs: WEB_LOGIN_TTL_MS, now });
  const exchanges = createPendingLoginStore<PendingExchange>({ maxEntries: MAX_PENDING, ttlMs: EXCHANGE_TTL_MS, now });
  const deviceLogins = createPendingLoginStore<PendingDeviceLogin>({ maxEntries: MAX_PENDING, ttlMs: MAX_DEVICE_LOGIN_MS, now });

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

  async function finish(provider: WebLoginProvider, identity: ProviderIdentity, ttlSeconds: number, response: Response, status: number): Promise<void> {
    try {
      const completed = await completeLogin(ctx, provider, identity, { ttlSeconds, maxTtlSeconds: maxTtl });
      count(provider.name, 'success');
      response.status(status).json(loginAnswer(completed));
    } catch (error) {
      count(provider.name, toKubegateError(error).status >= 500 ? 'error' : 'failure');
      throw error;
    }
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
      const cli = query.cli_redirect === undefined ? undefined : { redirect: loopbackRedirect(query.cli_redirect), challenge: query.cli_challenge ?? '' };
      const secrets = newWebLoginSecrets();
      const redirectUri = `${ctx.publicUrl()}/v1/login/${encodeURIComponent(provider.name)}/callback`;
      let loginRequest!: WebLoginRequest;
      const state = webLogins.putWithKey((key) => {
        loginRequest = Object.freeze({ state: key, nonce: secrets.nonce, codeVerifier: secrets.codeVerifier, redirectUri });
        return { provider: provider.name, request: loginRequest, ttlSeconds: ttl, cli };
      });
      let url: URL;
      try {
        url = await provider.authorizationUrl(loginRequest);
      } catch (error) {
        webLogins.delete(state);
        throw error;
      }
      response.redirect(302, url.href);
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/login/:provider/callback')
    .get(async (request, response) => {
      const provider = providerOf(request);
      const state = request.query['state'];
      const pending = typeof state === 'string' ? webLogins.take(state) : undefined;
      if (pending === undefined || pending.provider !== provider.name) {
        count(provider.name, 'failure');
        throw new KubegateError('LOGIN_STATE_INVALID');
      }
      const callbackUrl = new URL(pending.request.redirectUri);
      callbackUrl.search = new URL(request.originalUrl, 'http://callback.invalid').search;
      const identity = identityOf(provider, await provider.completeWebLogin(pending.request, callbackUrl));
      if (pending.cli === undefined) {
        await finish(provider, identity, pending.ttlSeconds, response, 200);
        return;
      }
      const code = exchanges.put({ provider: provider.name, identity, ttlSeconds: pending.ttlSeconds, challenge: pending.cli.challenge });
      const target = new URL(pending.cli.redirect);
      target.searchParams.set('code', code);
      response.redirect(302, target.href);
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/login/:provider/exchange')
    .post(async (request, response) => {
      const provider = providerOf(request);
      const body = parseBody(exchangeBody, request.body);
      const pending = exchanges.take(body.code);
      if (pending === undefined || pending.provider !== provider.name || !challengeMatches(body.code_verifier, pending.challenge)) {
        count(provider.name, 'failure');
        throw new KubegateError('LOGIN_STATE_INVALID');
      }
      await finish(provider, pending.identity, pending.ttlSeconds, response, 201);
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
      const expiresInSeconds = Math.min(started.expiresInSeconds, MAX_DEVICE_LOGIN_MS / 1000);
      const handle = deviceLogins.put({
        provider: provider.name,
        deviceCode: started.deviceCode,
        ttlSeconds: ttl,
        intervalSeconds: started.intervalSeconds,
        lastPollMs: 0,
        polling: false,
      });
      response.status(201).json({
        device_code: handle,
        user_code: started.userCode,
        verification_uri: started.verificationUri,
        ...(started.verificationUriComplete === undefined ? {} : { verification_uri_complete: started.verificationUriComplete }),
        expires_in: expiresInSeconds,
        interval: started.intervalSeconds,
      });
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/login/:provider/device/token')
    .post(async (request, response) => {
      const provider = providerOf(request);
      const body = parseBody(devicePollBody, request.body);
      const pending = deviceLogins.peek(body.device_code);
      if (pending === undefined || pending.provider !== provider.name || provider.pollDeviceLogin === undefined) {
        throw new KubegateError('LOGIN_STATE_INVALID');
      }
      const pendingAnswer = (slowDown: boolean): KubegateError => {
        response.setHeader('Retry-After', String(pending.intervalSeconds));
        return new KubegateError('LOGIN_PENDING', slowDown ? 'slow_down: poll less often' : 'authorization_pending: the user has not finished yet');
      };
      const at = now();
      const tooEarly = at - pending.lastPollMs < pending.intervalSeconds * 1000;
      if (pending.polling || tooEarly) throw pendingAnswer(tooEarly);
      pending.polling = true;
      pending.lastPollMs = at;
      let result;
      try {
        result = await provider.pollDeviceLogin(pending.deviceCode);
      } finally {
        pending.polling = false;
      }
      if (result.outcome === 'pending') {
        if (result.slowDown) pending.intervalSeconds += 5;
        throw pendingAnswer(result.slowDown);
      }
      deviceLogins.delete(body.device_code);
      await finish(provider, identityOf(provider, result), pending.ttlSeconds, response, 201);
    })
    .all(methodNotAllowed('POST'));

  return router;
}

/**
 * A CLI's loopback redirect: `http://127.0.0.1:<port>/…`, `http://[::1]:<port>/…` or
 * `http://localhost:<port>/…`, with no credentials or fragment. LOGIN_REDIRECT_INVALID otherwise.
 */
export function loopbackRedirect(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KubegateError('LOGIN_REDIRECT_INVALID', undefined, { field: 'cli_redirect' });
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'http:' || !loopback || url.port === '' || url.username !== '' || url.password !== '' || url.hash !== '') {
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
