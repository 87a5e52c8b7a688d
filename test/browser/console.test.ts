/**
 * The web console in a real browser: Debian's Chromium driven by playwright-core
 * (test/support/chromium.ts: the system binary only, never a download), against the real
 * `kubegate proxy` wiring (startProxy) over TLS, with the strict fake API server as the
 * cluster and real kubectl on the downloaded kubeconfig. A screenshot of each page goes to
 * test-artifacts/console/.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import pino from 'pino';
import { parse } from 'yaml';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { createApiClient } from '../support/api-client.js';
import type { ApiClient } from '../support/api-client.js';
import { launchChromium } from '../support/chromium.js';
import { runKubectl } from '../support/kubectl.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-console';
const ALICE_PASSWORD = 'alice-Console-pass-42';
const CLUSTER_TOKEN = 'proxy-sa-token-console-0123456789';
const ARTIFACTS = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'test-artifacts', 'console');

describe('web console in Chromium', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let context: BrowserContext;
  let page: Page;
  let logFile: string;
  const secrets: string[] = [ADMIN_PASSWORD, ALICE_PASSWORD, CLUSTER_TOKEN];

  async function screenshot(name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function logIn(username: string, password: string): Promise<void> {
    await page.goto(`${proxy.url}/console/login`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'My clusters' }).waitFor();
  }

  async function logOut(): Promise<void> {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to kubegate' }).waitFor();
  }

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    dir = await mkdtemp(join(tmpdir(), 'kubegate-console-'));
    logFile = join(dir, 'proxy.log');
    fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN });
    const configFile = join(dir, 'kubegate.yaml');
    await writeFile(configFile, ['listen: 127.0.0.1:0', `dataDir: ${join(dir, 'data')}`, 'tls:', '  sans: ["127.0.0.1"]', 'audit:', '  enabled: false', 'metrics:', '  listen: none', 'log:', '  level: debug'].join('\n'));
    const config = loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } });
    const logger = createLogger({ level: 'debug', name: 'proxy', destination: pino.destination({ dest: logFile, sync: true }) });
    proxy = await startProxy(config, { logger });
    api = createApiClient(proxy.url, proxy.caPem!);
    ({ context, page } = await launchChromium(join(dir, 'chromium-profile'), { acceptDownloads: true }));
  });

  after(async () => {
    await context?.close();
    await proxy?.stop();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a browser at / lands on the login page, which carries the security headers', async () => {
    const answer = await page.goto(`${proxy.url}/`);
    assert.equal(new URL(page.url()).pathname, '/console/login');
    const headers = answer!.headers();
    assert.match(headers['content-security-policy'] ?? '', /default-src 'none'.*frame-ancestors 'none'/);
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.equal(headers['cache-control'], 'no-store');
    await screenshot('01-login');
  });

  test('the bootstrap admin logs in; the session cookie is HttpOnly, Secure, SameSite=Lax and invisible to the page', async () => {
    await logIn('admin', ADMIN_PASSWORD);
    const session = (await context.cookies(proxy.url)).find((cookie) => cookie.name === '__Host-kubegate-session');
    assert.ok(session, 'the session cookie is set');
    secrets.push(session.value);
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Lax');
    assert.equal(session.path, '/');
    // Runs in the page (a string: this project's TypeScript has no DOM types).
    const storage: unknown = await page.evaluate('({ cookie: document.cookie, local: localStorage.length, session: sessionStorage.length })');
    assert.deepEqual(storage, { cookie: '', local: 0, session: 0 });
    await screenshot('02-my-clusters-empty');
  });

  test('the admin adds a user, registers the fake cluster and makes the user a member', async () => {
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Display name').fill('Alice <Ops>');
    await page.getByLabel('E-mail address').fill('alice@example.org');
    await page.getByLabel('Initial password').fill(ALICE_PASSWORD);
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByText('The user was created.').waitFor();
    assert.ok(await page.getByRole('cell', { name: 'Alice <Ops>' }).isVisible(), 'the display name is shown as text');
    assert.equal(await page.getByRole('textbox', { name: 'E-mail of alice' }).inputValue(), 'alice@example.org', 'the e-mail address is listed');
    await screenshot('03-users');

    await page.getByRole('link', { name: 'Clusters', exact: true }).click();
    const direct = page.getByRole('region', { name: 'Register a directly reachable cluster' });
    await direct.getByLabel('Cluster ID').fill('dev');
    await direct.getByLabel('Display name').fill('Development');
    await direct.getByLabel('API server URL').fill(fake.url);
    await direct.getByLabel('CA certificate (PEM)').fill(fake.caPem);
    await direct.getByLabel('Service account token').fill(CLUSTER_TOKEN);
    await page.getByRole('button', { name: 'Register cluster' }).click();
    await page.getByText('The cluster was registered').waitFor();
    assert.ok(!(await page.content()).includes(CLUSTER_TOKEN), 'the cluster token is never shown');
    await screenshot('04-manage-clusters');

    await page.getByRole('region', { name: 'Register a cluster through an agent' }).getByLabel('Cluster ID').fill('edge');
    await page.getByRole('button', { name: 'Register and show the import command' }).click();
    const importCommand = (await page.locator('#import-command-with-ca').textContent())!;
    assert.match(importCommand, /^curl -fsS --cacert <\(echo [A-Za-z0-9+/=]+ \| base64 -d\) https:\/\/127\.0\.0\.1:\d+\/v1\/import\/r-[a-z2-7]+:[a-z2-7]+\.yaml \| kubectl apply -f -$/);
    secrets.push(importCommand.slice(importCommand.lastIndexOf(':') + 1, importCommand.indexOf('.yaml')));
    assert.ok(!page.url().includes('/v1/import/'), 'the registration token is not in our URL');
    assert.ok(await page.getByRole('cell', { name: 'no agent connected' }).isVisible());
    await screenshot('04b-agent-cluster-import');

    await page.locator('tr', { hasText: 'Development' }).getByRole('link', { name: 'Members' }).click();
    await page.getByLabel('Name', { exact: true }).fill('alice');
    await page.getByLabel('Role').selectOption('member');
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.getByText('The member was added.').waitFor();
    assert.ok(await page.getByRole('cell', { name: /alice u-/ }).isVisible());
    await screenshot('05-members');

    await page.getByRole('link', { name: 'Providers' }).click();
    await page.getByRole('cell', { name: 'username and password' }).waitFor();
    await screenshot('06-providers');
  });

  test('removing a cluster that cannot be reached says it is still being removed, and Forget removes it at once', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((done) => closed.close(() => done()));

    await page.getByRole('link', { name: 'Clusters', exact: true }).click();
    const direct = page.getByRole('region', { name: 'Register a directly reachable cluster' });
    await direct.getByLabel('Cluster ID').fill('gone');
    await direct.getByLabel('API server URL').fill(`https://127.0.0.1:${port}`);
    await direct.getByLabel('Service account token').fill('token-of-a-cluster-that-is-gone');
    await page.getByRole('button', { name: 'Register cluster' }).click();
    await page.getByText('The cluster was registered').waitFor();

    await page.getByRole('button', { name: 'Remove cluster gone' }).click();
    await page.getByText('The cluster is being removed').waitFor();
    const row = page.locator('tr', { hasText: `127.0.0.1:${port}` });
    assert.ok(await row.getByText('being removed', { exact: true }).isVisible(), 'listed as being removed');
    const adminToken = await api.login('admin', ADMIN_PASSWORD);
    assert.equal((await api.request('GET', '/v1/clusters/gone', { token: adminToken })).json.state, 'deleting');
    await screenshot('04c-cluster-being-removed');
    await page.getByRole('link', { name: 'My clusters' }).click();
    const card = page.getByRole('region', { name: 'gone' });
    assert.ok(await card.getByText('being removed', { exact: true }).isVisible(), 'My clusters says so too');
    assert.equal(await card.getByRole('button', { name: 'Download kubeconfig' }).count(), 0, 'no kubeconfig offered for a cluster that is going');
    await page.getByRole('link', { name: 'Clusters', exact: true }).click();

    await row.getByRole('button', { name: 'Forget cluster gone without cleaning it' }).click();
    await page.getByText('The cluster was removed').waitFor();
    assert.equal(await page.locator('tr', { hasText: `127.0.0.1:${port}` }).count(), 0);
    assert.equal((await api.request('GET', '/v1/clusters/gone', { token: adminToken })).status, 404);
  });

  test("the admin changes a user's e-mail address, is told when another user holds one, and removes it", async () => {
    const adminToken = await api.login('admin', ADMIN_PASSWORD);
    const emailOf = async (username: string): Promise<string | null | undefined> =>
      ((await api.request('GET', '/v1/users', { token: adminToken })).json.items as Array<{ username: string; email: string | null }>).find((user) => user.username === username)?.email;
    await page.getByRole('link', { name: 'Users' }).click();
    const field = page.getByRole('textbox', { name: 'E-mail of alice' });
    await field.fill('alice.ops@example.org');
    await page.getByRole('button', { name: 'Save the e-mail of alice' }).click();
    await page.getByText('The e-mail address was saved.').waitFor();
    assert.equal(await field.inputValue(), 'alice.ops@example.org');
    assert.equal(await emailOf('alice'), 'alice.ops@example.org');

    const admin = await api.request('GET', '/v1/me', { token: adminToken });
    assert.equal((await api.request('PATCH', `/v1/users/${admin.json.id}`, { token: adminToken, body: { email: 'admin@example.org' } })).status, 200);
    await field.fill('Admin@example.org');
    await page.getByRole('button', { name: 'Save the e-mail of alice' }).click();
    await page.getByRole('alert').filter({ hasText: /another user|already|conflict/i }).waitFor();
    assert.equal(await field.inputValue(), 'Admin@example.org', 'what was typed is kept');
    assert.equal(await emailOf('alice'), 'alice.ops@example.org', 'nothing changed');
    await screenshot('03b-user-email-held');

    await field.fill('');
    await page.getByRole('button', { name: 'Save the e-mail of alice' }).click();
    await page.getByText('The e-mail address was removed.').waitFor();
    assert.equal(await field.inputValue(), '');
    assert.equal(await emailOf('alice'), null);
  });

  test('a state-changing POST without the CSRF token is refused, with the session cookie attached', async () => {
    const before = await api.request('GET', '/v1/tokens', { token: await api.login('admin', ADMIN_PASSWORD) });
    const forged = await page.request.post(`${proxy.url}/console/tokens`, { form: { description: 'forged' }, maxRedirects: 0 });
    assert.equal(forged.status(), 403);
    assert.match(await forged.text(), /CSRF check failed/);
    const after = await api.request('GET', '/v1/tokens', { token: await api.login('admin', ADMIN_PASSWORD) });
    assert.equal(after.json.items.length, before.json.items.length + 1, 'only the login made for this check was added');
  });

  test('the session cookie alone opens neither the cluster path nor the REST API', async () => {
    const cluster = await page.request.get(`${proxy.url}/k8s/clusters/dev/api/v1/namespaces/default/pods`);
    assert.equal(cluster.status(), 401);
    assert.equal((await cluster.json()).kind, 'Status');
    const rest = await page.request.get(`${proxy.url}/v1/me`);
    assert.equal(rest.status(), 401);
  });

  test('the user logs in, sees the cluster with its state and role, and kubectl works with the downloaded kubeconfig', async () => {
    await logOut();
    await logIn('alice', ALICE_PASSWORD);
    const card = page.getByRole('region', { name: /^Development/ });
    await card.waitFor();
    assert.ok(await card.getByRole('cell', { name: 'member', exact: true }).isVisible(), 'the role is shown');
    // The status probe runs in the background after registration: wait for its answer, then reload once.
    await fake.waitUntil(() => fake.requests.some((recorded) => recorded.path === '/version' && recorded.status === 200));
    const adminToken = await api.login('admin', ADMIN_PASSWORD);
    for (let attempt = 0; attempt < 100 && (await api.request('GET', '/v1/clusters/dev', { token: adminToken })).json.status.reachable !== true; attempt++);
    await page.reload();
    assert.ok(await card.getByText('reachable', { exact: true }).isVisible(), 'the state from the status probe');
    assert.ok(await card.getByRole('cell', { name: 'v1.32' }).isVisible(), 'the Kubernetes version from the status probe');
    await screenshot('07-my-clusters');

    const [download] = await Promise.all([page.waitForEvent('download'), card.getByRole('button', { name: 'Download kubeconfig' }).click()]);
    const kubeconfigPath = join(dir, 'alice.kubeconfig');
    await download.saveAs(kubeconfigPath);
    const text = await readFile(kubeconfigPath, 'utf8');
    secrets.push(parse(text).users[0].user.token as string);
    assert.equal(parse(text).clusters[0].cluster.server, `${proxy.publicUrl}/k8s/clusters/dev`);
    const pods = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods'] });
    assert.equal(pods.code, 0, pods.stderr);
    assert.match(pods.stdout, /web-0\s+1\/1\s+Running/);

    await card.getByLabel(/exec plugin/).check();
    const [execDownload] = await Promise.all([page.waitForEvent('download'), card.getByRole('button', { name: 'Download kubeconfig' }).click()]);
    const exec = parse(await readFile(await execDownload.path(), 'utf8'));
    assert.equal(exec.users[0].user.exec.command, 'kubegate');
    assert.equal(exec.users[0].user.token, undefined, 'no token in an exec-plugin kubeconfig');
  });

  test("the admin pages answer a user who is not an admin with 403, never with the admins' forms", async () => {
    for (const path of ['/console/admin/users', '/console/admin/clusters', '/console/admin/providers']) {
      const answer = await page.goto(`${proxy.url}${path}`);
      assert.equal(answer!.status(), 403, path);
      assert.equal(await page.getByRole('alert').textContent(), 'FORBIDDEN: this needs the global role admin', `${path} says why`);
      assert.equal(await page.locator('form[action^="/console/admin/"]').count(), 0, `${path} shows no admin form`);
    }
    await page.goto(`${proxy.url}/console/`);
  });

  test('the user creates a token, sees its secret once, and revokes it', async () => {
    await page.getByRole('link', { name: 'My tokens' }).click();
    await page.getByLabel('Description').fill('ci pipeline');
    await page.getByLabel('Lifetime').fill('2h');
    await page.getByLabel('Valid on').selectOption('dev');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.locator('#new-token-value').textContent())!.trim();
    secrets.push(token);
    assert.match(token, /^t-[a-z2-7]{12}:[a-z2-7]{54}$/);
    assert.ok(!page.url().includes(token.split(':')[1]!), 'the secret is not in the URL');
    await screenshot('08-token-created');
    const pods = await runKubectl({ binary: 'system', kubeconfig: { server: `${proxy.publicUrl}/k8s/clusters/dev`, caPem: proxy.caPem!, token }, args: ['get', 'pods'] });
    assert.equal(pods.code, 0, pods.stderr);

    await page.getByRole('link', { name: 'My tokens' }).click();
    assert.ok(!(await page.content()).includes(token.split(':')[1]!), 'the secret is shown only once');
    const name = token.split(':')[0]!;
    await page.getByRole('button', { name: `Revoke ${name}` }).click();
    await page.getByText('The token was revoked.').waitFor();
    await screenshot('09-tokens');
    const denied = await runKubectl({ binary: 'system', kubeconfig: { server: `${proxy.publicUrl}/k8s/clusters/dev`, caPem: proxy.caPem!, token }, args: ['get', 'pods'] });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Unauthorized|must be logged in/);
  });

  test('logging out revokes the session: the old cookie is worth nothing', async () => {
    const session = (await context.cookies(proxy.url)).find((cookie) => cookie.name === '__Host-kubegate-session')!;
    secrets.push(session.value);
    assert.equal((await api.request('GET', '/v1/me', { token: session.value })).status, 200);
    await logOut();
    assert.equal((await api.request('GET', '/v1/me', { token: session.value })).status, 401);
    assert.equal((await context.cookies(proxy.url)).some((cookie) => cookie.name === '__Host-kubegate-session'), false);
  });

  test('no password, token or session cookie reaches the proxy log', async () => {
    const logs = await readFile(logFile, 'utf8');
    assert.ok(logs.length > 0);
    for (const secret of secrets) {
      const secretPart = secret.includes(':') ? secret.slice(secret.indexOf(':') + 1) : secret;
      assert.ok(!logs.includes(secretPart), `a secret (${secretPart.length} characters) leaked into the log`);
    }
  });
});
