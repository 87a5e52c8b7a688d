/**
 * The web console over plain HTTP with supertest, on the real REST API (test/unit/proxy/api
 * harness: real SQLite store, real token chain): sessions, CSRF, security headers, escaping
 * and that the cookie is worth nothing outside the console. The browser test
 * (test/browser/console.test.ts) drives the same pages in Chromium over TLS.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { Response } from 'supertest';
import { createConsoleApp, isConsolePath } from '../../../src/console/app.js';
import { createLogger } from '../../../src/log.js';
import { PASSWORD, bearer, startHarness } from '../proxy/api/harness.js';
import type { Harness } from '../proxy/api/harness.js';

const SESSION = '__Host-kubegate-session';
const PRELOGIN = '__Host-kubegate-prelogin';

function setCookies(response: Response): string[] {
  const header = response.headers['set-cookie'] as unknown;
  return Array.isArray(header) ? (header as string[]) : typeof header === 'string' ? [header] : [];
}

function cookieValue(response: Response, name: string): string | undefined {
  const line = setCookies(response).find((cookie) => cookie.startsWith(`${name}=`));
  return line?.slice(name.length + 1, line.indexOf(';'));
}

function csrfOf(page: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(page);
  assert.ok(match, 'the page has a CSRF field');
  return match[1]!;
}

describe('web console', () => {
  let h: Harness;
  let app: ReturnType<typeof createConsoleApp>;

  before(async () => {
    h = await startHarness();
    app = createConsoleApp({ api: h.app, key: randomBytes(32), sessionTtlSeconds: 3600, logger: createLogger({ level: 'silent', name: 'console-test' }) });
  });
  after(() => h.close());

  /** Logs `username` in through the form; answers the session cookie. */
  async function logIn(username: string, password = PASSWORD): Promise<string> {
    const form = await request(app).get('/console/login').expect(200);
    const prelogin = cookieValue(form, PRELOGIN)!;
    const answer = await request(app)
      .post('/console/login')
      .set('Cookie', `${PRELOGIN}=${prelogin}`)
      .type('form')
      .send({ _csrf: csrfOf(form.text), provider: 'local', username, password })
      .expect(303);
    assert.equal(answer.headers['location'], '/console/');
    const session = cookieValue(answer, SESSION);
    assert.ok(session !== undefined && session !== '');
    return session;
  }

  async function pageOf(session: string, path: string): Promise<Response> {
    return request(app).get(path).set('Cookie', `${SESSION}=${session}`);
  }

  it('answers the console paths only: /, /console and below', () => {
    assert.ok(isConsolePath('/') && isConsolePath('/console') && isConsolePath('/console/tokens?x=1'));
    assert.ok(!isConsolePath('/consoles') && !isConsolePath('/v1/me') && !isConsolePath('/k8s/clusters/a'));
  });

  it('sends browsers from / to /console/, and API clients at / to the REST API', async () => {
    const browser = await request(app).get('/').set('Accept', 'text/html,application/xhtml+xml').expect(302);
    assert.equal(browser.headers['location'], '/console/');
    const client = await request(app).get('/').set('Accept', 'application/json').expect(404);
    assert.equal(client.body.error.code, 'NOT_FOUND');
  });

  it('sends a visitor without a session to the login page', async () => {
    const answer = await request(app).get('/console/').expect(303);
    assert.equal(answer.headers['location'], '/console/login');
  });

  it('puts a strict policy on every page: no script, no inline style, no framing, no caching', async () => {
    for (const path of ['/console/login', '/console/', '/console/nope', '/console/assets/console.css']) {
      const answer = await request(app).get(path);
      const csp = String(answer.headers['content-security-policy']);
      assert.match(csp, /default-src 'none'/, path);
      assert.match(csp, /style-src 'self'(;|$)/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|script-src/, path);
      assert.equal(answer.headers['x-frame-options'], 'DENY', path);
      assert.equal(answer.headers['cache-control'], 'no-store', path);
      assert.equal(answer.headers['referrer-policy'], 'same-origin', path);
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', path);
    }
    const login = await request(app).get('/console/login');
    assert.doesNotMatch(login.text, /<script|<style|\sstyle="|\son[a-z]+="/i, 'no inline script, style or handler');
  });

  it('sets the session cookie __Host-, Secure, HttpOnly and SameSite=Lax, for no longer than the session', async () => {
    const form = await request(app).get('/console/login').expect(200);
    const answer = await request(app)
      .post('/console/login')
      .set('Cookie', `${PRELOGIN}=${cookieValue(form, PRELOGIN)}`)
      .type('form')
      .send({ _csrf: csrfOf(form.text), provider: 'local', username: 'root', password: PASSWORD })
      .expect(303);
    const line = setCookies(answer).find((cookie) => cookie.startsWith(`${SESSION}=`))!;
    assert.match(line, /; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=(\d+)$/);
    assert.ok(Number(/Max-Age=(\d+)/.exec(line)![1]) <= 3600);
    const token = cookieValue(answer, SESSION)!;
    const stored = await h.store.getToken(token.slice(0, token.indexOf(':')));
    assert.equal(stored?.kind, 'login', 'the cookie holds a login token of the session lifetime');
    assert.ok(stored?.expiresAt !== null && stored!.expiresAt!.getTime() - h.clock.ms <= 3600_000);
  });

  it('refuses a login form posted without the CSRF token, or with the token of another browser', async () => {
    const mine = await request(app).get('/console/login').expect(200);
    const theirs = await request(app).get('/console/login').expect(200);
    const without = await request(app)
      .post('/console/login')
      .set('Cookie', `${PRELOGIN}=${cookieValue(mine, PRELOGIN)}`)
      .type('form')
      .send({ provider: 'local', username: 'root', password: PASSWORD })
      .expect(403);
    assert.equal(cookieValue(without, SESSION), undefined);
    const crossed = await request(app)
      .post('/console/login')
      .set('Cookie', `${PRELOGIN}=${cookieValue(mine, PRELOGIN)}`)
      .type('form')
      .send({ _csrf: csrfOf(theirs.text), provider: 'local', username: 'root', password: PASSWORD })
      .expect(403);
    assert.equal(cookieValue(crossed, SESSION), undefined);
    assert.match(crossed.text, /CSRF check failed/);
  });

  it('shows a wrong password on the login page with the API status, and keeps the username', async () => {
    const form = await request(app).get('/console/login').expect(200);
    const answer = await request(app)
      .post('/console/login')
      .set('Cookie', `${PRELOGIN}=${cookieValue(form, PRELOGIN)}`)
      .type('form')
      .send({ _csrf: csrfOf(form.text), provider: 'local', username: 'root', password: 'wrong password!' })
      .expect(401);
    assert.match(answer.text, /wrong username or password/);
    assert.match(answer.text, /value="root"/);
    assert.equal(cookieValue(answer, SESSION), undefined);
  });

  it('refuses a state-changing request of a session without its CSRF token, and creates nothing', async () => {
    const alice = await h.addUser('alice-csrf');
    const session = await logIn('alice-csrf');
    const before = await h.store.listTokens({ userId: alice.user.id });
    const answer = await request(app).post('/console/tokens').set('Cookie', `${SESSION}=${session}`).type('form').send({ description: 'forged' }).expect(403);
    assert.match(answer.text, /CSRF check failed/);
    const json = await request(app)
      .post('/console/tokens')
      .set('Cookie', `${SESSION}=${session}`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ description: 'forged' }))
      .expect(403);
    assert.match(json.text, /CSRF check failed/);
    assert.equal((await h.store.listTokens({ userId: alice.user.id })).length, before.length);
  });

  it('refuses a form with the right CSRF token when the browser says it comes from another site', async () => {
    await h.addUser('alice-origin');
    const session = await logIn('alice-origin');
    const csrf = csrfOf((await pageOf(session, '/console/tokens')).text);
    await request(app).post('/console/tokens').set('Cookie', `${SESSION}=${session}`).set('Origin', 'https://evil.example').type('form').send({ _csrf: csrf }).expect(403);
    await request(app).post('/console/tokens').set('Cookie', `${SESSION}=${session}`).set('Sec-Fetch-Site', 'same-site').type('form').send({ _csrf: csrf }).expect(403);
    await request(app).post('/console/tokens').set('Cookie', `${SESSION}=${session}`).set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: csrf }).expect(201);
  });

  it('shows a new token once, on the answer to the form, and the token works on the REST API', async () => {
    await h.addUser('alice-token');
    const session = await logIn('alice-token');
    const csrf = csrfOf((await pageOf(session, '/console/tokens')).text);
    const created = await request(app)
      .post('/console/tokens')
      .set('Cookie', `${SESSION}=${session}`)
      .type('form')
      .send({ _csrf: csrf, description: 'ci <pipeline>', ttl: '2h' })
      .expect(201);
    const token = /id="new-token-value">([^<]+)</.exec(created.text)?.[1];
    assert.ok(token !== undefined);
    assert.match(created.text, /ci &lt;pipeline&gt;/, 'the description is escaped');
    assert.equal((await request(h.app).get('/v1/me').set(bearer(token)).expect(200)).body.username, 'alice-token');
    const later = await pageOf(session, '/console/tokens');
    assert.ok(!later.text.includes(token.slice(token.indexOf(':') + 1)), 'the secret is never shown again');
  });

  it('logging out revokes the session token on the server', async () => {
    await h.addUser('alice-logout');
    const session = await logIn('alice-logout');
    await request(h.app).get('/v1/me').set(bearer(session)).expect(200);
    const csrf = csrfOf((await pageOf(session, '/console/')).text);
    const answer = await request(app).post('/console/logout').set('Cookie', `${SESSION}=${session}`).type('form').send({ _csrf: csrf }).expect(303);
    assert.equal(answer.headers['location'], '/console/login');
    assert.match(setCookies(answer).find((cookie) => cookie.startsWith(`${SESSION}=`))!, /Max-Age=0/);
    await request(h.app).get('/v1/me').set(bearer(session)).expect(401);
    const after = await pageOf(session, '/console/');
    assert.equal(after.status, 303, 'the old cookie no longer opens a page');
  });

  it('the REST API ignores the session cookie: it is no bearer token there', async () => {
    await h.addUser('alice-api');
    const session = await logIn('alice-api');
    const answer = await request(h.app).get('/v1/me').set('Cookie', `${SESSION}=${session}`).expect(401);
    assert.equal(answer.body.error.code, 'UNAUTHENTICATED');
    await request(h.app).post('/v1/tokens').set('Cookie', `${SESSION}=${session}`).send({}).expect(401);
  });

  it('escapes what users typed when an admin page shows it', async () => {
    await h.store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'mallory', displayName: '<img src=x onerror=alert(1)>', globalRole: 'user' });
    const session = await logIn('root');
    const users = await pageOf(session, '/console/admin/users');
    assert.equal(users.status, 200);
    assert.ok(!users.text.includes('<img src=x'));
    assert.match(users.text, /&lt;img src=x onerror=alert\(1\)&gt;/);
  });

  it('adds a local user with the e-mail address the admin vouches for and lists it; a bad address is refused, the typed values kept', async () => {
    const session = await logIn('root');
    const form = await pageOf(session, '/console/admin/users');
    const post = (fields: Record<string, string>) =>
      request(app).post('/console/admin/users').set('Cookie', `${SESSION}=${session}`).type('form').send({ _csrf: csrfOf(form.text), password: PASSWORD, ...fields });
    await post({ username: 'erin-mail', email: 'Erin@Example.org' }).expect(303);
    assert.equal((await h.store.getUserByUsername('erin-mail'))?.email, 'Erin@example.org');
    assert.match((await pageOf(session, '/console/admin/users')).text, /aria-label="E-mail of erin-mail" value="Erin@example\.org"/);
    const refused = await post({ username: 'frank-mail', email: 'frank at example.org' });
    assert.equal(refused.status, 400);
    assert.match(refused.text, /email/);
    assert.match(refused.text, /value="frank at example\.org"/);
    assert.equal(await h.store.getUserByUsername('frank-mail'), undefined);
  });

  it("changes and removes a user's e-mail address; a bad one is refused in that user's row, as typed, and changes nothing", async () => {
    const { user } = await h.addUser('gina-mail');
    const session = await logIn('root');
    const form = await pageOf(session, '/console/admin/users');
    const post = (email: string) =>
      request(app).post(`/console/admin/users/${user.id}/email`).set('Cookie', `${SESSION}=${session}`).type('form').send({ _csrf: csrfOf(form.text), email });
    const saved = await post('Gina@Example.org').expect(303);
    assert.match(String(saved.headers['location']), /done=email-saved$/);
    assert.equal((await h.store.getUser(user.id))?.email, 'Gina@example.org');
    const refused = await post('gina at example.org');
    assert.equal(refused.status, 400);
    assert.match(refused.text, /email must be an e-mail address/);
    assert.match(refused.text, /aria-label="E-mail of gina-mail" value="gina at example\.org"/);
    assert.equal((await h.store.getUser(user.id))?.email, 'Gina@example.org');
    const removed = await post('').expect(303);
    assert.match(String(removed.headers['location']), /done=email-removed$/);
    assert.equal((await h.store.getUser(user.id))?.email, null);
    const forged = await request(app).post(`/console/admin/users/${user.id}/email`).set('Cookie', `${SESSION}=${session}`).type('form').send({ email: 'x@example.org' });
    assert.equal(forged.status, 403);
    assert.equal((await h.store.getUser(user.id))?.email, null);
  });

  it('answers admin pages with the API refusal for a user who is not an admin', async () => {
    await h.addUser('alice-plain');
    const session = await logIn('alice-plain');
    for (const path of ['/console/admin/users', '/console/admin/clusters', '/console/admin/providers']) {
      const answer = await pageOf(session, path);
      assert.equal(answer.status, 403, path);
      assert.match(answer.text, /FORBIDDEN/);
    }
    const home = await pageOf(session, '/console/');
    assert.ok(!home.text.includes('/console/admin/users'), 'no admin links for a user');
  });

  it('a disabled user loses the console session at once', async () => {
    const bob = await h.addUser('bob-disabled');
    const session = await logIn('bob-disabled');
    assert.equal((await pageOf(session, '/console/')).status, 200);
    await request(h.app).patch(`/v1/users/${bob.user.id}`).set(bearer(h.admin.token)).send({ enabled: false }).expect(200);
    const answer = await pageOf(session, '/console/');
    assert.equal(answer.status, 303);
    assert.equal(answer.headers['location'], '/console/login');
  });
});
