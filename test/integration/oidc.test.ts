/**
 * OIDC logins against a real OIDC provider (oidc-provider on loopback, see
 * test/support/oidc-issuer.ts): the browser flow with code + PKCE through the proxy's REST
 * API, the CLI loopback exchange, the device flow, identity linking by `sub`, and ID tokens
 * of the same issuer accepted as bearer tokens — with every refusal a clear 4xx and code.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import request from 'supertest';
import { oidcBearerAuthenticator } from '../../src/providers/oidc/bearer.js';
import { createConsoleApp } from '../../src/console/app.js';
import { createLogger } from '../../src/log.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loginToProxy } from '../../src/cli/login.js';
import { createProxyClient } from '../../src/cli/proxy-client.js';
import type { AuthResult, TokenAuthenticator } from '../../src/auth/authenticator.js';
import { createProviders } from '../../src/providers/index.js';
import type { OidcProvider } from '../../src/providers/oidc/oidc.js';
import { PUBLIC_URL, bearer, errorOf, startHarness } from '../unit/proxy/api/harness.js';
import type { Harness } from '../unit/proxy/api/harness.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { ApiClient } from '../support/api-client.js';
import { runKubectl } from '../support/kubectl.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';
import { CLIENT_ID, CLIENT_SECRET, TestBrowser, startOidcIssuer } from '../support/oidc-issuer.js';
import type { OidcIssuer } from '../support/oidc-issuer.js';

const PROVIDER = 'corp-oidc';
const CALLBACK = `${PUBLIC_URL}/v1/login/${PROVIDER}/callback`;

function oidcConfig(issuer: string, extra: Record<string, unknown> = {}) {
  return {
    name: PROVIDER,
    type: 'oidc',
    enabled: true,
    settings: { issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scopes: ['openid', 'profile', 'groups'], allowInsecureIssuerForTests: true, ...extra },
  };
}

/** Path and query of an absolute URL, for supertest. */
function pathOf(url: URL | string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

describe('OIDC browser login through the proxy (code + PKCE)', () => {
  let issuer: OidcIssuer;
  let h: Harness;

  before(async () => {
    issuer = await startOidcIssuer({ redirectUris: [CALLBACK] });
    issuer.accounts.set('sub-erin', { sub: 'sub-erin', preferred_username: 'erin', name: 'Erin E.', groups: ['dev', 'system:masters', 'ops'] });
    issuer.accounts.set('sub-frank', { sub: 'sub-frank', preferred_username: 'frank', groups: [] });
    h = await startHarness({ providers: (store) => createProviders([oidcConfig(issuer.issuer)], { store }) });
  });
  after(async () => {
    await h?.close();
    await issuer?.close();
  });

  /** Starts a login at the proxy and walks the provider's pages; answers the callback URL. */
  async function throughProvider(account: string, query = ''): Promise<URL> {
    issuer.nextAccount = account;
    const start = await request(h.app).get(`/v1/login/${PROVIDER}${query}`).expect(302);
    return new TestBrowser().followUntil(start.headers['location'] as string, CALLBACK);
  }

  it('redirects to the issuer with S256 PKCE, a random state and nonce, and the proxy callback', async () => {
    const start = await request(h.app).get(`/v1/login/${PROVIDER}`).expect(302);
    const location = new URL(start.headers['location'] as string);
    assert.equal(location.origin, issuer.issuer);
    assert.equal(location.searchParams.get('client_id'), CLIENT_ID);
    assert.equal(location.searchParams.get('redirect_uri'), CALLBACK);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    assert.match(location.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(location.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{64,}$/);
    assert.match(location.searchParams.get('nonce') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(location.searchParams.get('code_verifier'), null, 'the verifier never leaves the proxy');
  });

  it('completes the login on the callback: a user linked by sub, provider-prefixed groups without system: ones, a working token', async () => {
    const callback = await throughProvider('sub-erin');
    const response = await request(h.app).get(pathOf(callback)).expect(200);
    assert.equal(response.body.user.username, 'erin');
    assert.deepEqual(response.body.user.groups, [`${PROVIDER}:dev`, `${PROVIDER}:ops`]);
    const link = await h.store.findIdentity(PROVIDER, 'sub-erin');
    assert.equal(link?.userId, response.body.user.id);
    const me = await request(h.app).get('/v1/me').set(bearer(response.body.token)).expect(200);
    assert.equal(me.body.id, response.body.user.id);
  });

  it('finds the same user on the next login even when the provider renamed them, because the link is the sub', async () => {
    const first = await request(h.app).get(pathOf(await throughProvider('sub-frank'))).expect(200);
    issuer.accounts.set('sub-frank', { sub: 'sub-frank', preferred_username: 'frank.renamed', groups: [] });
    const second = await request(h.app).get(pathOf(await throughProvider('sub-frank'))).expect(200);
    assert.equal(second.body.user.id, first.body.user.id);
  });

  it('refuses a replayed callback with 400 LOGIN_STATE_INVALID, because the state is single-use', async () => {
    const callback = await throughProvider('sub-erin');
    await request(h.app).get(pathOf(callback)).expect(200);
    const replay = await request(h.app).get(pathOf(callback)).expect(400);
    assert.equal(errorOf(replay.body).code, 'LOGIN_STATE_INVALID');
  });

  it('refuses a tampered state with 400 LOGIN_STATE_INVALID, because the state is sealed and authenticated', async () => {
    const callback = await throughProvider('sub-erin');
    callback.searchParams.set('state', `${callback.searchParams.get('state')}x`);
    const response = await request(h.app).get(pathOf(callback)).expect(400);
    assert.equal(errorOf(response.body).code, 'LOGIN_STATE_INVALID');
  });

  it('refuses a used code replayed under a fresh state with 400 LOGIN_CALLBACK_INVALID, because the issuer refuses it and the PKCE verifier does not match', async () => {
    const callback = await throughProvider('sub-erin');
    await request(h.app).get(pathOf(callback)).expect(200);
    const fresh = new URL((await request(h.app).get(`/v1/login/${PROVIDER}`).expect(302)).headers['location'] as string);
    callback.searchParams.set('state', fresh.searchParams.get('state') ?? '');
    const response = await request(h.app).get(pathOf(callback)).expect(400);
    assert.equal(errorOf(response.body).code, 'LOGIN_CALLBACK_INVALID');
  });

  it('answers 403 LOGIN_DENIED when the person declines at the provider', async () => {
    issuer.declineNext = true;
    const callback = await throughProvider('sub-erin');
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    const response = await request(h.app).get(pathOf(callback)).expect(403);
    assert.equal(errorOf(response.body).code, 'LOGIN_DENIED');
  });

  it('answers 400 PROVIDER_UNKNOWN for an unknown provider and LOGIN_METHOD_UNSUPPORTED for a password provider', async () => {
    assert.equal(errorOf((await request(h.app).get('/v1/login/nope').expect(400)).body).code, 'PROVIDER_UNKNOWN');
    assert.equal(errorOf((await request(h.app).get('/v1/login/nope/callback?state=x&code=y').expect(400)).body).code, 'PROVIDER_UNKNOWN');
    assert.equal(errorOf((await request(h.app).get('/v1/login/local').expect(400)).body).code, 'LOGIN_METHOD_UNSUPPORTED');
    const password = await request(h.app).post('/v1/login').send({ provider: PROVIDER, username: 'erin', password: 'x' }).expect(400);
    assert.equal(errorOf(password.body).code, 'PROVIDER_UNKNOWN');
  });

  it('lists the OIDC provider among the providers that take logins, as a browser login', async () => {
    const response = await request(h.app).get('/v1/providers').expect(200);
    assert.ok(response.body.items.some((item: { name: string; type: string; login: string }) => item.name === PROVIDER && item.type === 'oidc' && item.login === 'browser'));
  });

  describe('the CLI loopback flow', () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');

    it('refuses a redirect that is not an http loopback URL with 400 LOGIN_REDIRECT_INVALID, so the proxy never sends a login elsewhere', async () => {
      for (const target of ['https://evil.example/cb', 'http://evil.example:8000/cb', 'http://127.0.0.1.evil.example:80/cb', 'http://user@127.0.0.1:9/cb', 'http://127.0.0.1/cb']) {
        const response = await request(h.app).get(`/v1/login/${PROVIDER}`).query({ cli_redirect: target, cli_challenge: challenge }).expect(400);
        assert.equal(errorOf(response.body).code, 'LOGIN_REDIRECT_INVALID', target);
      }
    });

    it('redirects to the loopback with a one-time code (never a token) that only the verifier redeems', async () => {
      const callback = await throughProvider('sub-erin', `?cli_redirect=${encodeURIComponent('http://127.0.0.1:41234/done')}&cli_challenge=${challenge}`);
      const toCli = await request(h.app).get(pathOf(callback)).expect(302);
      const location = new URL(toCli.headers['location'] as string);
      assert.equal(location.origin, 'http://127.0.0.1:41234');
      assert.equal(location.pathname, '/done');
      const code = location.searchParams.get('code') ?? '';
      assert.deepEqual([...location.searchParams.keys()], ['code'], 'nothing but the one-time code travels in the URL');

      const wrong = await request(h.app).post(`/v1/login/${PROVIDER}/exchange`).send({ code, code_verifier: randomBytes(32).toString('base64url') }).expect(400);
      assert.equal(errorOf(wrong.body).code, 'LOGIN_STATE_INVALID');
      // The wrong verifier burnt the code: exchange codes are single-use whatever happens.
      const again = await request(h.app).post(`/v1/login/${PROVIDER}/exchange`).send({ code, code_verifier: verifier }).expect(400);
      assert.equal(errorOf(again.body).code, 'LOGIN_STATE_INVALID');
    });

    it('hands out the token for the right verifier, once', async () => {
      const callback = await throughProvider('sub-erin', `?cli_redirect=${encodeURIComponent('http://localhost:41234/done')}&cli_challenge=${challenge}`);
      const toCli = await request(h.app).get(pathOf(callback)).expect(302);
      const code = new URL(toCli.headers['location'] as string).searchParams.get('code') ?? '';
      const exchanged = await request(h.app).post(`/v1/login/${PROVIDER}/exchange`).send({ code, code_verifier: verifier }).expect(201);
      assert.equal(exchanged.body.user.username, 'erin');
      await request(h.app).get('/v1/me').set(bearer(exchanged.body.token)).expect(200);
      await request(h.app).post(`/v1/login/${PROVIDER}/exchange`).send({ code, code_verifier: verifier }).expect(400);
    });
  });

  describe('the web console flow', () => {
    const VERIFIER_COOKIE = '__Host-kubegate-login-verifier';
    const consoleApp = (): ReturnType<typeof createConsoleApp> =>
      createConsoleApp({ api: h.app, key: randomBytes(32), sessionTtlSeconds: 3600, logger: createLogger({ level: 'silent', name: 'console' }) });

    /** Starts at the console's button; answers the console URL the callback sends the browser to, and the verifier cookie. */
    async function consoleLogin(app: ReturnType<typeof createConsoleApp>, account: string): Promise<{ complete: string; cookie: string }> {
      const page = await request(app).get('/console/login').expect(200);
      assert.match(page.text, new RegExp(`href="/console/login/${PROVIDER}/start"`), 'a button per browser provider');
      const start = await request(app).get(`/console/login/${PROVIDER}/start`).expect(303);
      const setCookie = ([] as string[]).concat(start.headers['set-cookie'] ?? []).find((line) => line.startsWith(`${VERIFIER_COOKIE}=`))!;
      assert.match(setCookie, /; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=600$/);
      const toApi = start.headers['location'] as string;
      assert.match(toApi, new RegExp(`^/v1/login/${PROVIDER}\\?console_challenge=[A-Za-z0-9_-]{43}&ttl=3600$`));
      issuer.nextAccount = account;
      const toIssuer = await request(h.app).get(toApi).expect(302);
      const callback = await new TestBrowser().followUntil(toIssuer.headers['location'] as string, CALLBACK);
      const toConsole = await request(h.app).get(pathOf(callback)).expect(302);
      return { complete: toConsole.headers['location'] as string, cookie: setCookie.slice(0, setCookie.indexOf(';')) };
    }

    it('sends the browser back to the console with a one-time code, which only the browser holding the verifier cookie redeems', async () => {
      const app = consoleApp();
      const first = await consoleLogin(app, 'sub-erin');
      assert.match(first.complete, new RegExp(`^/console/login/${PROVIDER}/complete\\?code=[A-Za-z0-9_-]+$`), 'a fixed console path with nothing but the code');
      const stolen = await request(app).get(first.complete).expect(400);
      assert.match(stolen.text, /login state is unknown, expired or already used/);
      assert.equal(([] as string[]).concat(stolen.headers['set-cookie'] ?? []).some((line) => line.startsWith('__Host-kubegate-session=t-')), false);

      const second = await consoleLogin(app, 'sub-erin');
      const done = await request(app).get(second.complete).set('Cookie', second.cookie).expect(303);
      assert.equal(done.headers['location'], '/console/');
      const session = ([] as string[]).concat(done.headers['set-cookie'] ?? []).find((line) => line.startsWith('__Host-kubegate-session=t-'))!;
      const token = session.slice(session.indexOf('=') + 1, session.indexOf(';'));
      assert.equal((await request(h.app).get('/v1/me').set(bearer(token)).expect(200)).body.username, 'erin');
      await request(app).get(second.complete).set('Cookie', second.cookie).expect(400);
    });

    it('refuses console_challenge together with cli_redirect', async () => {
      const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
      const response = await request(h.app)
        .get(`/v1/login/${PROVIDER}`)
        .query({ console_challenge: challenge, cli_redirect: 'http://127.0.0.1:41234/done', cli_challenge: challenge })
        .expect(400);
      assert.equal(errorOf(response.body).field, 'console_challenge');
    });
  });

  describe('the device flow', () => {
    it('answers codes, then LOGIN_PENDING with Retry-After until the person approves, then a token, then nothing more', async () => {
      const started = await request(h.app).post(`/v1/login/${PROVIDER}/device`).send({}).expect(201);
      assert.match(started.body.user_code, /\S/);
      assert.equal(new URL(started.body.verification_uri).origin, issuer.issuer);
      assert.equal(typeof started.body.interval, 'number');
      const handle = started.body.device_code as string;
      assert.match(handle, /^[A-Za-z0-9_-]{64,}$/, 'the client gets an opaque handle');
      assert.ok(!Buffer.from(handle, 'base64url').toString('latin1').includes(started.body.user_code), 'sealed, not readable');

      const pending = await request(h.app).post(`/v1/login/${PROVIDER}/device/token`).send({ device_code: handle }).expect(400);
      assert.equal(errorOf(pending.body).code, 'LOGIN_PENDING');
      assert.equal(pending.headers['retry-after'], String(started.body.interval));
      const tooSoon = await request(h.app).post(`/v1/login/${PROVIDER}/device/token`).send({ device_code: handle }).expect(400);
      assert.match(errorOf(tooSoon.body).message, /slow_down/);

      issuer.nextAccount = 'sub-erin';
      await new TestBrowser().approveDevice(started.body.verification_uri_complete);
      h.clock.advance(started.body.interval * 1000);
      const done = await request(h.app).post(`/v1/login/${PROVIDER}/device/token`).send({ device_code: handle }).expect(201);
      assert.equal(done.body.user.username, 'erin');
      assert.equal(done.body.user.id, (await h.store.findIdentity(PROVIDER, 'sub-erin'))?.userId);

      const after = await request(h.app).post(`/v1/login/${PROVIDER}/device/token`).send({ device_code: handle }).expect(400);
      assert.equal(errorOf(after.body).code, 'LOGIN_STATE_INVALID');
    });

    it('refuses an unknown device handle with 400 LOGIN_STATE_INVALID', async () => {
      const response = await request(h.app).post(`/v1/login/${PROVIDER}/device/token`).send({ device_code: 'made-up' }).expect(400);
      assert.equal(errorOf(response.body).code, 'LOGIN_STATE_INVALID');
    });
  });
});

describe('OIDC provider outages', () => {
  it('answers 503 PROVIDER_UNAVAILABLE when the issuer cannot be reached, and starts anyway', async () => {
    const issuer = await startOidcIssuer({ redirectUris: [CALLBACK] });
    const gone = issuer.issuer;
    await issuer.close();
    const h = await startHarness({ providers: (store) => createProviders([oidcConfig(gone, { timeoutSeconds: 2 })], { store }) });
    try {
      const response = await request(h.app).get(`/v1/login/${PROVIDER}`).expect(503);
      assert.equal(errorOf(response.body).code, 'PROVIDER_UNAVAILABLE');
    } finally {
      await h.close();
    }
  });
});

describe('OIDC ID tokens as bearer tokens', () => {
  let issuer: OidcIssuer;
  let h: Harness;
  let authenticator: TokenAuthenticator;
  let erinId: string;
  const now = (): number => Math.floor(Date.now() / 1000);

  before(async () => {
    issuer = await startOidcIssuer({ redirectUris: [CALLBACK] });
    issuer.accounts.set('sub-erin', { sub: 'sub-erin', preferred_username: 'erin', groups: ['dev'] });
    h = await startHarness({ providers: (store) => createProviders([oidcConfig(issuer.issuer)], { store }) });
    issuer.nextAccount = 'sub-erin';
    const start = await request(h.app).get(`/v1/login/${PROVIDER}`).expect(302);
    const callback = await new TestBrowser().followUntil(start.headers['location'] as string, CALLBACK);
    erinId = (await request(h.app).get(pathOf(callback)).expect(200)).body.user.id;
    const provider = h.ctx.providers.webLogin?.(PROVIDER) as OidcProvider;
    authenticator = oidcBearerAuthenticator({ source: provider.bearer, lookups: h.store, jwksCooldownMs: 0 });
  });
  after(async () => {
    await h?.close();
    await issuer?.close();
  });

  function claims(overrides: Record<string, unknown> = {}) {
    return { iss: issuer.issuer, aud: CLIENT_ID, sub: 'sub-erin', iat: now(), exp: now() + 300, groups: ['dev', 'system:masters'], ...overrides };
  }

  function code(result: AuthResult): string {
    return result.outcome === 'unauthenticated' ? result.code : result.outcome;
  }

  it('accepts a real ID token of the issuer as the same user a web login of that sub made', async () => {
    // A real token, issued by the issuer to this client through the device grant.
    const configuration = await client.discovery(new URL(issuer.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] });
    const started = await client.initiateDeviceAuthorization(configuration, { scope: 'openid profile groups' });
    issuer.nextAccount = 'sub-erin';
    await new TestBrowser().approveDevice(started.verification_uri_complete ?? '');
    const tokens = await client.genericGrantRequest(configuration, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: started.device_code });
    const idToken = tokens.id_token ?? '';
    const result = await authenticator.authenticateToken(idToken);
    assert.equal(result.outcome, 'authenticated');
    assert.equal(result.user.name, erinId);
    assert.deepEqual(result.user.groups, [`${PROVIDER}:dev`]);
    assert.deepEqual(result.user.extra['kubegate.io/provider'], [PROVIDER]);
    assert.equal(result.token.clusterId, null);
    assert.equal(result.token.expiresAt?.getTime(), (tokens.claims()?.exp ?? 0) * 1000);
  });

  it('refuses an expired ID token (TOKEN_EXPIRED)', async () => {
    assert.equal(code(await authenticator.authenticateToken(await issuer.sign(claims({ iat: now() - 600, exp: now() - 120 })))), 'TOKEN_EXPIRED');
  });

  it('refuses an ID token for another audience (OIDC_TOKEN_INVALID), because it was issued to another client', async () => {
    assert.equal(code(await authenticator.authenticateToken(await issuer.sign(claims({ aud: 'someone-else' })))), 'OIDC_TOKEN_INVALID');
  });

  it('refuses a token of another issuer (OIDC_TOKEN_INVALID), because only tokens of the configured issuer are bearer tokens', async () => {
    assert.equal(code(await authenticator.authenticateToken(await issuer.sign(claims({ iss: 'https://evil.example' })))), 'OIDC_TOKEN_INVALID');
  });

  it('refuses alg none (OIDC_TOKEN_INVALID), because an unsigned token proves nothing', async () => {
    const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims())}.`;
    assert.equal(code(await authenticator.authenticateToken(unsigned)), 'OIDC_TOKEN_INVALID');
  });

  it('refuses HS256 signed with the client secret (OIDC_TOKEN_INVALID), because whoever knows the secret could mint it', async () => {
    const { SignJWT } = await import('jose');
    const forged = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(CLIENT_SECRET));
    assert.equal(code(await authenticator.authenticateToken(forged)), 'OIDC_TOKEN_INVALID');
  });

  it('refuses a token signed by a key the issuer does not publish (OIDC_TOKEN_INVALID)', async () => {
    const { SignJWT, generateKeyPair } = await import('jose');
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'test-key-0' }).sign(privateKey);
    assert.equal(code(await authenticator.authenticateToken(forged)), 'OIDC_TOKEN_INVALID');
  });

  it('refuses a valid token whose sub never logged in through the proxy (IDENTITY_NOT_LINKED)', async () => {
    assert.equal(code(await authenticator.authenticateToken(await issuer.sign(claims({ sub: 'sub-stranger' })))), 'IDENTITY_NOT_LINKED');
  });

  it('answers TOKEN_MALFORMED for a kubegate token, so the union goes on to the next member', async () => {
    assert.equal(code(await authenticator.authenticateToken('t-abc:secret')), 'TOKEN_MALFORMED');
  });

  it('follows a key rotation: a token signed with the new key is accepted after one JWKS refetch', async () => {
    assert.equal(code(await authenticator.authenticateToken(await issuer.sign(claims()))), 'authenticated');
    const kid = await issuer.rotateKey();
    const rotated = await issuer.sign(claims(), { kid });
    assert.equal(code(await authenticator.authenticateToken(rotated)), 'authenticated');
  });

  it('stops accepting the tokens of a user who was disabled (USER_DISABLED)', async () => {
    await h.store.updateUser(erinId, { enabled: false });
    try {
      assert.equal(code(await authenticator.authenticateToken(await issuer.sign(claims()))), 'USER_DISABLED');
    } finally {
      await h.store.updateUser(erinId, { enabled: true });
    }
  });
});

describe('OIDC ID tokens on the proxy path of the real proxy (oidcBearer)', () => {
  const EXTERNAL = 'https://kubegate.test';
  let fixture: ProxyFixture;
  let issuer: OidcIssuer;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let erinId: string;
  let idToken: string;

  before(async () => {
    issuer = await startOidcIssuer({ redirectUris: [`${EXTERNAL}/v1/login/${PROVIDER}/callback`] });
    issuer.accounts.set('sub-erin', { sub: 'sub-erin', preferred_username: 'erin', groups: ['dev'] });
    fixture = await startProxyFixture({
      name: 'oidc-e2e',
      config: () => ({
        externalUrl: EXTERNAL,
        providers: [{ name: 'local', type: 'local' }, oidcConfig(issuer.issuer)],
        oidcBearer: { provider: PROVIDER },
      }),
    });
    ({ fake, proxy, api } = fixture);
    await fixture.grant('Group', `${PROVIDER}:dev`, 'member');

    // Erin logs in once through the proxy (the browser flow), which links her sub to a user.
    issuer.nextAccount = 'sub-erin';
    const start = await api.request('GET', `/v1/login/${PROVIDER}`);
    assert.equal(start.status, 302, start.text);
    const callback = await new TestBrowser().followUntil(String(start.headers['location']), EXTERNAL);
    const login = await api.request('GET', pathOf(callback));
    assert.equal(login.status, 200, login.text);
    erinId = login.json.user.id;

    // Then a client of the same issuer holds an ID token for her.
    const configuration = await client.discovery(new URL(issuer.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] });
    const device = await client.initiateDeviceAuthorization(configuration, { scope: 'openid profile groups' });
    await new TestBrowser().approveDevice(device.verification_uri_complete ?? '');
    const tokens = await client.genericGrantRequest(configuration, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: device.device_code });
    idToken = tokens.id_token ?? '';
  });

  after(async () => {
    await fixture?.close();
    await issuer?.close();
  });

  it('forwards a request carrying the ID token as the linked user with the provider groups, and never passes the ID token on', async () => {
    const before = fake.requests.length;
    const response = await api.request('GET', '/k8s/clusters/dev/api/v1/namespaces/default/pods', { token: idToken });
    assert.equal(response.status, 200, response.text);
    const seen = fake.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    assert.equal(seen?.user?.username, erinId);
    assert.deepEqual(seen?.user?.groups, [`${PROVIDER}:dev`, 'system:authenticated']);
    assert.deepEqual(seen?.user?.extra['kubegate.io/provider'], [PROVIDER]);
    assert.ok(!seen?.rawHeaders.join('\n').includes(idToken), 'the ID token never reaches the cluster');
  });

  it('lets real kubectl use the ID token as its bearer token', async () => {
    const result = await runKubectl({ binary: 'system', kubeconfig: { server: `${proxy.url}/k8s/clusters/dev`, caPem: proxy.caPem ?? '', token: idToken }, args: ['get', 'pods'] });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /web-0/);
  });

  it('logs the CLI in through the browser with a loopback redirect, and the token is the linked user', async () => {
    issuer.nextAccount = 'sub-erin';
    const login = await loginToProxy({
      client: createProxyClient(proxy.url, proxy.caPem ?? ''),
      provider: PROVIDER,
      env: {},
      prompter: undefined,
      say: () => undefined,
      // The "browser": the proxy's start page, the issuer's pages, the proxy's callback, then the loopback.
      openBrowser: async (url) => {
        const start = await api.request('GET', pathOf(url));
        assert.equal(start.status, 302, start.text);
        const callback = await new TestBrowser().followUntil(String(start.headers['location']), EXTERNAL);
        const toCli = await api.request('GET', pathOf(callback));
        assert.equal(toCli.status, 302, toCli.text);
        const loopback = new URL(String(toCli.headers['location']));
        assert.equal(loopback.hostname, '127.0.0.1');
        await (await fetch(loopback)).text();
      },
    });
    assert.equal(login.provider, PROVIDER);
    const me = await api.request('GET', '/v1/me', { token: login.token.token });
    assert.equal(me.json.id, erinId);
  });

  it('logs the CLI in with the device flow (--device)', async () => {
    issuer.nextAccount = 'sub-erin';
    let approval: Promise<unknown> | undefined;
    const login = await loginToProxy({
      client: createProxyClient(proxy.url, proxy.caPem ?? ''),
      provider: PROVIDER,
      device: true,
      env: {},
      prompter: undefined,
      say: (line) => {
        const complete = /\(or open (\S+)\)/.exec(line)?.[1];
        if (complete !== undefined) approval = new TestBrowser().approveDevice(complete);
      },
      openBrowser: () => assert.fail('the device flow opens no browser'),
      sleep: async () => {
        await approval;
      },
    });
    const me = await api.request('GET', '/v1/me', { token: login.token.token });
    assert.equal(me.json.id, erinId);
  });

  it('answers 401 for an expired ID token on the proxy path', async () => {
    const expired = await issuer.sign({ iss: issuer.issuer, aud: CLIENT_ID, sub: 'sub-erin', iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 60 });
    const response = await api.request('GET', '/k8s/clusters/dev/api/v1/namespaces/default/pods', { token: expired });
    assert.equal(response.status, 401);
    assert.equal(response.json.kind, 'Status');
  });
});
