/**
 * GitHub logins through the proxy's REST API against a strict fake of GitHub's OAuth and REST
 * endpoints (test/fakes/github.ts), redirects followed by hand: groups from organizations and
 * teams, identity linking by numeric ID, access modes, every refusal a clear code. Then the
 * multi-process promise of sealed login state: a login started on one app instance (or one
 * real proxy) finishes on another that shares only the secret key.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Express } from 'express';
import request from 'supertest';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { createProviders } from '../../src/providers/index.js';
import { deriveLoginStateKey } from '../../src/providers/login-state.js';
import { createProxyApp } from '../../src/proxy/app.js';
import { PUBLIC_URL, bearer, errorOf, startHarness } from '../unit/proxy/api/harness.js';
import type { Harness } from '../unit/proxy/api/harness.js';
import { startFakeGithub } from '../fakes/github.js';
import type { FakeGithub } from '../fakes/github.js';
import { createApiClient } from '../support/api-client.js';

const CLIENT_ID = 'Iv1.kubegate-test';
const CLIENT_SECRET = 'kubegate-github-test-secret';
const OCTOCAT = 1001;
const HUBOT = 1002;
const MALLORY = 1003;
const MANY = 1004;

function githubConfig(name: string, fake: FakeGithub, extra: Record<string, unknown> = {}) {
  return {
    name,
    type: 'github',
    enabled: true,
    settings: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, oauthUrl: fake.url, apiUrl: fake.url, allowInsecureUrlsForTests: true, timeoutSeconds: 5, ...extra },
  };
}

function pathOf(url: URL | string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function addUsers(fake: FakeGithub): void {
  fake.users.set(OCTOCAT, { id: OCTOCAT, login: 'octocat', name: 'The Octocat', orgs: ['Acme', 'other-org'], teams: [{ org: 'Acme', slug: 'sre' }, { org: 'other-org', slug: 'web' }] });
  fake.users.set(HUBOT, { id: HUBOT, login: 'hubot', name: null, orgs: ['outsiders'], teams: [] });
  fake.users.set(MALLORY, { id: MALLORY, login: 'mallory', orgs: ['system:masters', 'System:Nodes', 'acme/sre'], teams: [{ org: 'system:masters', slug: 'admins' }] });
  fake.users.set(MANY, { id: MANY, login: 'many', orgs: Array.from({ length: 250 }, (_, i) => `org-${String(i).padStart(3, '0')}`), teams: [] });
}

describe('GitHub browser login through the proxy', () => {
  const names = ['github', 'github-sre', 'github-bad', 'github-gone', 'github-two'];
  let fake: FakeGithub;
  let h: Harness;
  let app: Express;

  before(async () => {
    fake = await startFakeGithub({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: names.map((name) => `${PUBLIC_URL}/v1/login/${name}/callback`), maxPerPage: 100 });
    addUsers(fake);
    const gone = `http://127.0.0.1:${await closedPort()}`;
    h = await startHarness({
      providers: (store) =>
        createProviders(
          [
            githubConfig('github', fake),
            githubConfig('github-sre', fake, { accessMode: 'required', allowedPrincipals: ['group:github-sre:ACME/SRE', `user:${HUBOT}`] }),
            githubConfig('github-bad', fake, { clientSecret: 'not-the-secret' }),
            githubConfig('github-gone', fake, { apiUrl: gone }),
            githubConfig('github-two', fake),
          ],
          { store },
        ),
    });
    app = createProxyApp({ ...h.ctx, loginStateKey: deriveLoginStateKey(randomBytes(32)) });
  });
  after(async () => {
    await h?.close();
    await fake?.close();
  });

  /** Starts a login on `on`, lets GitHub authorize `user`, answers the callback URL GitHub sends the browser to. */
  async function callbackFor(user: number, options: { on?: Express; provider?: string; query?: string } = {}): Promise<URL> {
    fake.nextUser = user;
    const start = await request(options.on ?? app).get(`/v1/login/${options.provider ?? 'github'}${options.query ?? ''}`).expect(302);
    const back = await fetch(start.headers['location'] as string, { redirect: 'manual' });
    assert.equal(back.status, 302, await back.text());
    return new URL(back.headers.get('location') ?? '');
  }

  it('redirects to GitHub with the client ID, the proxy callback, read:user user:email read:org, a sealed state and S256 PKCE', async () => {
    const start = await request(app).get('/v1/login/github').expect(302);
    const location = new URL(start.headers['location'] as string);
    assert.equal(`${location.origin}${location.pathname}`, `${fake.url}/login/oauth/authorize`);
    assert.equal(location.searchParams.get('client_id'), CLIENT_ID);
    assert.equal(location.searchParams.get('redirect_uri'), `${PUBLIC_URL}/v1/login/github/callback`);
    assert.equal(location.searchParams.get('scope'), 'read:user user:email read:org');
    assert.match(location.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{64,}$/);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(location.searchParams.get('client_secret'), null);
  });

  it('logs in with organization and team groups (lower case, provider-prefixed) and a working token', async () => {
    const response = await request(app).get(pathOf(await callbackFor(OCTOCAT))).expect(200);
    assert.equal(response.body.user.username, 'octocat');
    assert.deepEqual(response.body.user.groups, ['github:acme', 'github:other-org', 'github:acme/sre', 'github:other-org/web']);
    const user = await h.store.getUser(response.body.user.id);
    assert.equal(user?.displayName, 'The Octocat');
    assert.equal((await h.store.findIdentity('github', String(OCTOCAT)))?.userId, response.body.user.id);
    await request(app).get('/v1/me').set(bearer(response.body.token)).expect(200);
    const exchange = fake.requests.filter((r) => r.url === '/login/oauth/access_token').at(-1);
    assert.equal(exchange?.accept, 'application/json', 'GitHub answers form-encoded without it');
    const api = fake.requests.filter((r) => r.url.startsWith('/user')).at(-1);
    assert.match(api?.authorization ?? '', /^Bearer gho_/);
  });

  it('records the primary address GitHub marks verified (GET /user/emails, under the user:email scope), and drops it once it is not', async () => {
    const octocat = fake.users.get(OCTOCAT)!;
    octocat.emails = [
      { email: 'octo-old@example.org', primary: false, verified: true },
      { email: 'Octocat@GitHub.Example', primary: true, verified: true },
    ];
    try {
      const response = await request(app).get(pathOf(await callbackFor(OCTOCAT))).expect(200);
      assert.equal((await h.store.getUser(response.body.user.id))?.email, 'Octocat@github.example');
      assert.ok(fake.requests.some((r) => r.url.startsWith('/user/emails')));
      octocat.emails = [{ email: 'Octocat@github.example', primary: true, verified: false }];
      await request(app).get(pathOf(await callbackFor(OCTOCAT))).expect(200);
      assert.equal((await h.store.getUser(response.body.user.id))?.email, null);
    } finally {
      delete octocat.emails;
    }
  });

  it('logs in a user whose primary verified address is not ASCII, without recording it, and warns without printing it', async () => {
    const octocat = fake.users.get(OCTOCAT)!;
    octocat.emails = [{ email: 'öctocat@bücher.example', primary: true, verified: true }];
    try {
      const before = h.logs.length;
      const response = await request(app).get(pathOf(await callbackFor(OCTOCAT))).expect(200);
      assert.equal(response.body.user.username, 'octocat');
      assert.equal((await h.store.getUser(response.body.user.id))?.email, null);
      await request(app).get('/v1/me').set(bearer(response.body.token)).expect(200);
      const lines = h.logs.slice(before);
      const warning = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => String(entry['msg']).includes('is not one kubegate accepts'));
      assert.equal(warning?.['user'], response.body.user.id);
      assert.equal(warning?.['provider'], 'github');
      for (const line of lines) assert.ok(!/ctocat@b/.test(line) && !line.includes('\\u00f6'), 'the address is never logged');
    } finally {
      delete octocat.emails;
    }
  });

  it('has a fake as strict as GitHub: /user/emails is 404 for a token granted without user:email', async () => {
    fake.nextUser = OCTOCAT;
    const redirectUri = `${PUBLIC_URL}/v1/login/github/callback`;
    const authorize = new URL(`${fake.url}/login/oauth/authorize`);
    for (const [key, value] of Object.entries({ client_id: CLIENT_ID, redirect_uri: redirectUri, state: 'st', scope: 'read:user read:org' })) authorize.searchParams.set(key, value);
    const back = await fetch(authorize, { redirect: 'manual' });
    const code = new URL(back.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const exchange = await fetch(`${fake.url}/login/oauth/access_token`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code, redirect_uri: redirectUri }),
    });
    const granted = (await exchange.json()) as { access_token: string; scope: string };
    assert.equal(granted.scope, 'read:user,read:org');
    const emails = await fetch(`${fake.url}/user/emails`, { headers: { authorization: `Bearer ${granted.access_token}`, 'user-agent': 'kubegate-test' } });
    assert.equal(emails.status, 404);
    assert.equal(emails.headers.get('x-oauth-scopes'), 'read:user, read:org');
  });

  it('finds the same kubegate user after the GitHub login was renamed, because the link is the numeric ID', async () => {
    const first = await request(app).get(pathOf(await callbackFor(HUBOT))).expect(200);
    fake.users.get(HUBOT)!.login = 'hubot-renamed';
    try {
      const second = await request(app).get(pathOf(await callbackFor(HUBOT))).expect(200);
      assert.equal(second.body.user.id, first.body.user.id);
    } finally {
      fake.users.get(HUBOT)!.login = 'hubot';
    }
  });

  it('never makes a system: group out of organization or team names, nor a team out of an org name with a slash', async () => {
    const response = await request(app).get(pathOf(await callbackFor(MALLORY))).expect(200);
    assert.deepEqual(response.body.user.groups, []);
  });

  it('reads every page of organizations (Link rel="next"), not just the first 100', async () => {
    const before = fake.requests.length;
    const response = await request(app).get(pathOf(await callbackFor(MANY))).expect(200);
    assert.equal(response.body.user.groups.length, 250);
    assert.ok(response.body.user.groups.includes('github:org-249'));
    const pages = fake.requests.slice(before).filter((r) => r.url.startsWith('/user/orgs'));
    assert.equal(pages.length, 3);
  });

  it('lets in, in required mode, members of an allowed team and allowed users, and answers 403 FORBIDDEN for everyone else', async () => {
    const member = await request(app).get(pathOf(await callbackFor(OCTOCAT, { provider: 'github-sre' }))).expect(200);
    assert.ok(member.body.user.groups.includes('github-sre:acme/sre'));
    await request(app).get(pathOf(await callbackFor(HUBOT, { provider: 'github-sre' }))).expect(200);
    const outsider = await request(app).get(pathOf(await callbackFor(MALLORY, { provider: 'github-sre' }))).expect(403);
    assert.equal(errorOf(outsider.body).code, 'FORBIDDEN');
  });

  it('refuses a tampered state with 400 LOGIN_STATE_INVALID', async () => {
    const callback = await callbackFor(OCTOCAT);
    const state = callback.searchParams.get('state') ?? '';
    callback.searchParams.set('state', `${state.slice(0, 40)}${state[40] === 'A' ? 'B' : 'A'}${state.slice(41)}`);
    const response = await request(app).get(pathOf(callback)).expect(400);
    assert.equal(errorOf(response.body).code, 'LOGIN_STATE_INVALID');
  });

  it('refuses a replayed callback with 400 LOGIN_STATE_INVALID, because this process remembers the used state', async () => {
    const callback = await callbackFor(OCTOCAT);
    await request(app).get(pathOf(callback)).expect(200);
    const again = await request(app).get(pathOf(callback)).expect(400);
    assert.equal(errorOf(again.body).code, 'LOGIN_STATE_INVALID');
  });

  it('answers 403 LOGIN_DENIED when the person declines at GitHub', async () => {
    fake.declineNext = true;
    const callback = await callbackFor(OCTOCAT);
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    const response = await request(app).get(pathOf(callback)).expect(403);
    assert.equal(errorOf(response.body).code, 'LOGIN_DENIED');
  });

  it('answers 503 PROVIDER_UNAVAILABLE for a wrong client secret, because the person can do nothing about it', async () => {
    const response = await request(app).get(pathOf(await callbackFor(OCTOCAT, { provider: 'github-bad' }))).expect(503);
    assert.equal(errorOf(response.body).code, 'PROVIDER_UNAVAILABLE');
  });

  it('answers 503 PROVIDER_UNAVAILABLE when the GitHub API fails or cannot be reached, never a failed login', async () => {
    fake.apiDown = true;
    try {
      const down = await request(app).get(pathOf(await callbackFor(OCTOCAT))).expect(503);
      assert.equal(errorOf(down.body).code, 'PROVIDER_UNAVAILABLE');
    } finally {
      fake.apiDown = false;
    }
    const gone = await request(app).get(pathOf(await callbackFor(OCTOCAT, { provider: 'github-gone' }))).expect(503);
    assert.equal(errorOf(gone.body).code, 'PROVIDER_UNAVAILABLE');
  });

  it('answers 400 LOGIN_METHOD_UNSUPPORTED for the device flow, which kubegate does not offer for GitHub', async () => {
    const response = await request(app).post('/v1/login/github/device').send({}).expect(400);
    assert.equal(errorOf(response.body).code, 'LOGIN_METHOD_UNSUPPORTED');
  });

  describe('sealed login state across app instances (workers, replicas)', () => {
    const sharedKey = deriveLoginStateKey(randomBytes(32));
    let first: Express;
    let second: Express;
    before(() => {
      first = createProxyApp({ ...h.ctx, loginStateKey: sharedKey });
      second = createProxyApp({ ...h.ctx, loginStateKey: sharedKey });
    });

    it('accepts on one instance a state another instance issued with the same key', async () => {
      const callback = await callbackFor(OCTOCAT, { on: first });
      const response = await request(second).get(pathOf(callback)).expect(200);
      assert.equal(response.body.user.username, 'octocat');
    });

    it('refuses a callback replayed on another instance with 400 LOGIN_CALLBACK_INVALID, because GitHub codes are single-use', async () => {
      const callback = await callbackFor(OCTOCAT, { on: first });
      await request(first).get(pathOf(callback)).expect(200);
      const replayed = await request(second).get(pathOf(callback)).expect(400);
      assert.equal(errorOf(replayed.body).code, 'LOGIN_CALLBACK_INVALID');
    });

    it('refuses a state issued under another key with 400 LOGIN_STATE_INVALID', async () => {
      const callback = await callbackFor(OCTOCAT, { on: first });
      const other = createProxyApp({ ...h.ctx, loginStateKey: deriveLoginStateKey(randomBytes(32)) });
      const response = await request(other).get(pathOf(callback)).expect(400);
      assert.equal(errorOf(response.body).code, 'LOGIN_STATE_INVALID');
    });

    it('refuses an expired state with 400 LOGIN_STATE_INVALID', async () => {
      const callback = await callbackFor(OCTOCAT, { on: first });
      h.clock.advance(10 * 60_000);
      const response = await request(second).get(pathOf(callback)).expect(400);
      assert.equal(errorOf(response.body).code, 'LOGIN_STATE_INVALID');
    });

    it('refuses a state issued for another provider with 400 LOGIN_STATE_INVALID', async () => {
      const callback = await callbackFor(OCTOCAT, { on: first });
      const response = await request(second).get(`/v1/login/github-two/callback${callback.search}`).expect(400);
      assert.equal(errorOf(response.body).code, 'LOGIN_STATE_INVALID');
    });

    it('finishes the CLI loopback flow on a third instance: the one-time code carries no token and needs the verifier', async () => {
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const callback = await callbackFor(OCTOCAT, { on: first, query: `?cli_redirect=${encodeURIComponent('http://127.0.0.1:41234/callback')}&cli_challenge=${challenge}` });
      const toCli = await request(second).get(pathOf(callback)).expect(302);
      const code = new URL(toCli.headers['location'] as string).searchParams.get('code') ?? '';
      const third = createProxyApp({ ...h.ctx, loginStateKey: sharedKey });
      const wrong = await request(third).post('/v1/login/github/exchange').send({ code, code_verifier: randomBytes(32).toString('base64url') }).expect(400);
      assert.equal(errorOf(wrong.body).code, 'LOGIN_STATE_INVALID');
      const exchanged = await request(first).post('/v1/login/github/exchange').send({ code, code_verifier: verifier }).expect(201);
      assert.equal(exchanged.body.user.username, 'octocat');
      assert.ok(exchanged.body.user.groups.includes('github:acme/sre'));
      await request(first).get('/v1/me').set(bearer(exchanged.body.token)).expect(200);
      await request(first).post('/v1/login/github/exchange').send({ code, code_verifier: verifier }).expect(400);
    });
  });
});

describe('GitHub login across two real proxies that share only the secret key', () => {
  const EXTERNAL = 'https://kubegate.test';
  let dir: string;
  let fake: FakeGithub;
  const proxies: RunningProxy[] = [];

  async function start(name: string, secretKey: string): Promise<RunningProxy> {
    const configFile = join(dir, `${name}.yaml`);
    await writeFile(
      configFile,
      JSON.stringify({
        listen: '127.0.0.1:0',
        dataDir: join(dir, name),
        externalUrl: EXTERNAL,
        secretKey,
        tls: { sans: ['127.0.0.1'] },
        audit: { enabled: false },
        metrics: { listen: 'none' },
        providers: [{ name: 'local', type: 'local' }, githubConfig('github', fake)],
      }),
    );
    const config = loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: 'bootstrap-Pa55word-github' } });
    const proxy = await startProxy(config, { logger: createLogger({ level: 'silent', name: 'proxy' }) });
    proxies.push(proxy);
    return proxy;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-github-e2e-'));
    fake = await startFakeGithub({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${EXTERNAL}/v1/login/github/callback`] });
    addUsers(fake);
  });
  after(async () => {
    for (const proxy of proxies) await proxy.stop();
    await fake?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('completes on proxy B a login started on proxy A, and refuses it on proxy C with another key', async () => {
    const key = randomBytes(32).toString('base64');
    const [a, b, c] = await Promise.all([start('a', key), start('b', key), start('c', randomBytes(32).toString('base64'))]);
    const client = (proxy: RunningProxy) => createApiClient(proxy.url, proxy.caPem ?? '');
    fake.nextUser = OCTOCAT;
    const begun = await client(a!).request('GET', '/v1/login/github');
    assert.equal(begun.status, 302, begun.text);
    const back = await fetch(String(begun.headers['location']), { redirect: 'manual' });
    const callback = new URL(back.headers.get('location') ?? '');
    assert.equal(callback.origin, EXTERNAL);
    const refused = await client(c!).request('GET', pathOf(callback));
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.error.code, 'LOGIN_STATE_INVALID');
    const done = await client(b!).request('GET', pathOf(callback));
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json.user.username, 'octocat');
    const me = await client(b!).request('GET', '/v1/me', { token: done.json.token });
    assert.equal(me.status, 200, me.text);
  });
});
