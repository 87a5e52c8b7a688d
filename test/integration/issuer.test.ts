/**
 * The `jwt` authorized-endpoint mode end to end: the real proxy (startProxy) issues JWTs and
 * serves discovery + JWKS over HTTPS; a strict fake API server is configured ONLY from what
 * `GET /v1/clusters/:id/authentication-config` answers (test/fakes/kube-jwt-authn.ts applies
 * the claim mappings or flags the way kube-apiserver documents); real kubectl runs the real
 * `kubegate token --jwt` exec plugin from a downloaded kubeconfig. No token state is synced
 * and no webhook runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { EffectiveUser, FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { jwtAuthenticatorFromConfiguration, jwtAuthenticatorFromFlags } from '../fakes/kube-jwt-authn.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { createApiClient } from '../support/api-client.js';
import type { ApiClient } from '../support/api-client.js';
import { installKubegateCli } from '../support/kubegate-cli.js';
import { runKubectl } from '../support/kubectl.js';

const run = promisify(execFile);
const ADMIN_PASSWORD = 'bootstrap-Pa55word-issuer';
const ALICE_PASSWORD = 'alice-Secret-pass-issuer';
const CLUSTER_TOKEN = 'proxy-sa-token-issuer-0123456789';

function identityOf(user: { username: string; uid?: string | undefined; groups: readonly string[]; extra: Readonly<Record<string, readonly string[]>> } | undefined): unknown {
  assert.ok(user, 'the request was authenticated');
  return { username: user.username, uid: user.uid, groups: [...user.groups].sort(), extra: user.extra };
}

describe('authorized cluster endpoint in the jwt mode: the API server trusts the proxy as issuer', () => {
  let dir: string;
  let bin: string;
  let cacheHome: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let aliceId: string;
  let aliceSession: string;
  let kubeconfigPath: string;
  let authConfig: { authenticationConfiguration: unknown; oidcFlags: string[]; caFile: string; caPem: string };
  let proxyStopped = false;

  function pluginEnv(password = ALICE_PASSWORD): Record<string, string> {
    return {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      XDG_CACHE_HOME: cacheHome,
      KUBEGATE_USERNAME: 'alice',
      KUBEGATE_PASSWORD: password,
      KUBEGATE_CA_DATA: Buffer.from(proxy.caPem ?? '').toString('base64'),
    };
  }

  async function plugin(password = ALICE_PASSWORD): Promise<{ token: string; expirationTimestamp: string }> {
    const { stdout } = await run(join(bin, 'kubegate'), ['token', '--server', proxy.publicUrl, '--cluster', 'dev', '--provider', 'local', '--jwt'], { env: pluginEnv(password) });
    const credential = JSON.parse(stdout);
    assert.equal(credential.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(credential.kind, 'ExecCredential');
    return credential.status;
  }

  async function cacheFile(prefix: 'jwt-' | 'login-'): Promise<string> {
    const cacheDir = join(cacheHome, 'kubegate');
    const files = (await readdir(cacheDir)).filter((file) => file.startsWith(prefix));
    assert.equal(files.length, 1, `one ${prefix} cache file`);
    return join(cacheDir, files[0]!);
  }

  async function listedBy(kind: EffectiveUser['authenticatedBy'] | 'impersonated', since: number): Promise<EffectiveUser | undefined> {
    return fake.requests
      .slice(since)
      .filter((request) => request.path === '/api/v1/namespaces/default/pods' && request.status === 200)
      .find((request) => (kind === 'impersonated' ? request.user?.impersonated === true : request.user?.authenticatedBy === kind))?.user;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-issuer-'));
    bin = await installKubegateCli(join(dir, 'bin'));
    cacheHome = join(dir, 'cache');
    fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: ['default', CATTLE_NAMESPACE] });
    const configFile = join(dir, 'kubegate.yaml');
    await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:0', dataDir: join(dir, 'data'), tls: { sans: ['127.0.0.1'] }, audit: { enabled: false }, metrics: { listen: 'none' } }));
    proxy = await startProxy(loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } }), { logger: createLogger({ level: 'silent', name: 'proxy' }) });
    api = createApiClient(proxy.url, proxy.caPem ?? '');
    const admin = await api.login('admin', ADMIN_PASSWORD);
    for (const id of ['dev', 'other']) {
      const cluster = await api.request('POST', '/v1/clusters', {
        token: admin,
        body: {
          id,
          server: fake.url,
          caData: Buffer.from(fake.caPem).toString('base64'),
          token: CLUSTER_TOKEN,
          ace: { enabled: true, mode: 'jwt', fqdn: `localhost:${fake.port}`, caData: Buffer.from(fake.caPem).toString('base64') },
        },
      });
      assert.equal(cluster.status, 201, cluster.text);
    }
    const alice = await api.request('POST', '/v1/users', { token: admin, body: { username: 'alice', password: ALICE_PASSWORD } });
    assert.equal(alice.status, 201, alice.text);
    aliceId = alice.json.id;
    for (const id of ['dev', 'other']) {
      const member = await api.request('POST', `/v1/clusters/${id}/members`, { token: admin, body: { kind: 'User', name: aliceId, role: 'member' } });
      assert.equal(member.status, 201, member.text);
    }
    aliceSession = await api.login('alice', ALICE_PASSWORD);

    const config = await api.request('GET', '/v1/clusters/dev/authentication-config', { token: aliceSession });
    assert.equal(config.status, 200, config.text);
    authConfig = config.json;
    fake.useJwtAuthenticator(jwtAuthenticatorFromConfiguration(authConfig.authenticationConfiguration));

    const kubeconfig = await api.request('GET', '/v1/clusters/dev/kubeconfig?context=ace', { token: aliceSession });
    assert.equal(kubeconfig.status, 200, kubeconfig.text);
    kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig.text, { mode: 0o600 });

    // The plugin logs in once (a login stores the provider's groups: none for a local user);
    // then alice gets provider groups, and her cached JWT is dropped so the next one has them.
    await plugin();
    await proxy.store.putUserGroups({ userId: aliceId, provider: 'local', groups: ['local:ops', 'local:dev'], refreshedAt: new Date() });
    await rm(await cacheFile('jwt-'));
  });

  after(async () => {
    if (!proxyStopped) await proxy?.stop();
    await fake?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('lets real kubectl use the cluster’s own endpoint with a JWT from `kubegate token --jwt`, as exactly the identity the proxy impersonates', async () => {
    const since = fake.requests.length;
    const direct = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods', '-o', 'name'], env: pluginEnv(), timeoutMs: 30_000 });
    assert.equal(direct.code, 0, direct.stderr);
    const byJwt = await listedBy('jwt', since);

    // The proxy path with the very kubegate token the plugin obtained its JWT with.
    const login = JSON.parse(await readFile(await cacheFile('login-'), 'utf8')) as { token: string };
    const viaProxy = await api.request('GET', '/k8s/clusters/dev/api/v1/namespaces/default/pods', { token: login.token });
    assert.equal(viaProxy.status, 200, viaProxy.text);
    const byProxy = await listedBy('impersonated', since);

    assert.deepEqual(identityOf(byJwt), identityOf(byProxy));
    assert.deepEqual(identityOf(byJwt), {
      username: aliceId,
      uid: aliceId,
      groups: ['local:dev', 'local:ops', 'system:authenticated'],
      extra: { 'kubegate.io/login-name': ['alice'], 'kubegate.io/provider': ['local'], 'kubegate.io/token-name': [login.token.split(':')[0]] },
    });
  });

  it('syncs the membership role bindings into a jwt-mode cluster but no tokens or user attributes, because nothing there verifies them', async () => {
    const started = performance.now();
    while (!fake.objects('clusterrolebindings').some((binding) => JSON.stringify(binding['subjects']).includes(aliceId))) {
      assert.ok(performance.now() - started < 5000, 'the role binding is synced');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const status = await api.request('GET', '/v1/clusters/dev', { token: aliceSession });
    assert.equal(status.json.ace.mode, 'jwt');
    assert.equal(status.json.sync.ok, true, JSON.stringify(status.json.sync));
    assert.deepEqual(fake.objects('clusterauthtokens'), []);
    assert.deepEqual(fake.objects('clusteruserattributes'), []);
  });

  it('maps the same username and groups with the classic --oidc-* flags (which carry no uid or extras)', async () => {
    const { token } = await plugin();
    const caFile = authConfig.caFile;
    const fromFlags = jwtAuthenticatorFromFlags(authConfig.oidcFlags, (path) => {
      assert.equal(path, caFile);
      return authConfig.caPem;
    });
    const user = await fromFlags.authenticate(token);
    assert.deepEqual(identityOf(user), { username: aliceId, uid: undefined, groups: ['local:dev', 'local:ops', 'system:authenticated'], extra: {} });
  });

  it('makes an API server configured for another cluster refuse the JWT, because its audience is the cluster ID', async () => {
    const { token } = await plugin();
    const other = await api.request('GET', '/v1/clusters/other/authentication-config', { token: aliceSession });
    assert.equal(other.status, 200, other.text);
    await assert.rejects(jwtAuthenticatorFromConfiguration(other.json.authenticationConfiguration).authenticate(token), /aud/);
    assert.equal(decodeJwt(token).aud, 'dev');
  });

  it('caches the JWT (a second run needs no login) and tells kubectl to ask again a fifth of its life before it expires', async () => {
    const first = await plugin();
    const second = await plugin('not-the-password');
    assert.equal(second.token, first.token);
    const claims = decodeJwt(first.token);
    assert.equal(Date.parse(first.expirationTimestamp), (claims.exp! - (claims.exp! - claims.iat!) / 5) * 1000);
  });

  it('replaces a cached JWT that is due for refresh with a new one before it expires', async () => {
    const file = await cacheFile('jwt-');
    const cached = JSON.parse(await readFile(file, 'utf8'));
    const now = Date.now();
    await writeFile(file, JSON.stringify({ ...cached, issuedAt: new Date(now - 270_000).toISOString(), expiresAt: new Date(now + 30_000).toISOString() }), { mode: 0o600 });
    const renewed = await plugin();
    assert.notEqual(renewed.token, cached.token);
    assert.equal(JSON.parse(await readFile(file, 'utf8')).token, renewed.token);
  });

  it('keeps kubectl working on the cluster’s own endpoint while the proxy is down, with the cached JWT until it expires', async () => {
    const file = await cacheFile('jwt-');
    const cached = JSON.parse(await readFile(file, 'utf8'));
    await proxy.stop();
    proxyStopped = true;
    // Due for refresh, but the proxy cannot be reached: the still valid JWT is handed out.
    const claims = decodeJwt(cached.token);
    await writeFile(file, JSON.stringify({ ...cached, issuedAt: new Date((claims.exp! - 3000) * 1000).toISOString() }), { mode: 0o600 });
    const offline = await plugin();
    assert.equal(offline.token, cached.token);
    assert.equal(Date.parse(offline.expirationTimestamp), claims.exp! * 1000);
    const since = fake.requests.length;
    const direct = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods', '-o', 'name'], env: pluginEnv(), timeoutMs: 30_000 });
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal((await listedBy('jwt', since))?.username, aliceId);
  });
});
