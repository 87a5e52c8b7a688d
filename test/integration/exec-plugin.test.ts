/**
 * The kubeconfig exec credential plugin end to end: the real proxy (startProxy), a kubeconfig
 * from `GET /v1/clusters/:id/kubeconfig?auth=exec`, real kubectl running `kubegate token`
 * (this repository's CLI, through a `kubegate` wrapper on PATH) against the strict fake API
 * server, with the password from KUBEGATE_USERNAME/KUBEGATE_PASSWORD and the token cache in
 * a temporary XDG_CACHE_HOME.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { ApiClient } from '../support/api-client.js';
import { installKubegateCli } from '../support/kubegate-cli.js';
import { runKubectl } from '../support/kubectl.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';

const run = promisify(execFile);
const ALICE_PASSWORD = 'alice-Secret-pass-exec';

describe('kubectl with the kubegate exec credential plugin', () => {
  let fixture: ProxyFixture;
  let dir: string;
  let bin: string;
  let cacheHome: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let aliceId: string;
  let kubeconfigPath: string;

  before(async () => {
    fixture = await startProxyFixture({ name: 'exec' });
    ({ dir, fake, proxy, api } = fixture);
    bin = await installKubegateCli(join(dir, 'bin'));
    cacheHome = join(dir, 'cache');
    const alice = await fixture.addUser('alice', { password: ALICE_PASSWORD });
    aliceId = alice.id;
    kubeconfigPath = (await fixture.kubeconfig(alice.token, '?auth=exec')).path;
  });

  after(async () => {
    await fixture?.close();
  });

  function pluginEnv(password = ALICE_PASSWORD): Record<string, string> {
    return { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, XDG_CACHE_HOME: cacheHome, KUBEGATE_USERNAME: 'alice', KUBEGATE_PASSWORD: password };
  }

  it('answers a kubeconfig whose user runs `kubegate token` for this proxy, cluster and provider, with no secret in it', async () => {
    const aliceToken = await api.login('alice', ALICE_PASSWORD);
    const response = await api.request('GET', '/v1/clusters/dev/kubeconfig?auth=exec', { token: aliceToken });
    const parsed = parse(response.text);
    const exec = parsed.users[0].user.exec;
    assert.equal(parsed.users[0].user.token, undefined);
    assert.equal(exec.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(exec.command, 'kubegate');
    assert.deepEqual(exec.args, ['token', '--server', proxy.publicUrl, '--cluster', 'dev', '--provider', 'local']);
    assert.deepEqual(exec.env, [{ name: 'KUBEGATE_CA_DATA', value: Buffer.from(proxy.caPem ?? '').toString('base64') }]);
    const tokens = await api.request('GET', '/v1/tokens', { token: aliceToken });
    assert.ok(!tokens.json.items.some((token: { kind: string }) => token.kind === 'kubeconfig'), 'no kubeconfig token was issued');
  });

  it('lets real kubectl list pods as alice through the plugin, and caches the tokens in 0600 files', async () => {
    const before = fake.requests.length;
    const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods'], env: pluginEnv(), timeoutMs: 30_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /web-0/);
    const list = fake.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    assert.equal(list?.user?.username, aliceId);

    const cacheDir = join(cacheHome, 'kubegate');
    assert.equal((await stat(cacheDir)).mode & 0o777, 0o700);
    const files = await readdir(cacheDir);
    assert.equal(files.length, 2, 'a login token and a cluster token');
    for (const file of files) assert.equal((await stat(join(cacheDir, file))).mode & 0o777, 0o600, file);
  });

  it('uses the cached token on the next run, without logging in again (a wrong password would fail)', async () => {
    const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods'], env: pluginEnv('not-the-password'), timeoutMs: 30_000 });
    assert.equal(result.code, 0, result.stderr);
  });

  it('prints an ExecCredential with an expirationTimestamp before the token expires, and a cluster-scoped token', async () => {
    const { stdout } = await run(join(bin, 'kubegate'), ['token', '--server', proxy.publicUrl, '--cluster', 'dev', '--provider', 'local'], {
      env: { ...pluginEnv(), KUBEGATE_CA_DATA: Buffer.from(proxy.caPem ?? '').toString('base64') },
    });
    const credential = JSON.parse(stdout);
    assert.equal(credential.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(credential.kind, 'ExecCredential');
    assert.match(credential.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const aliceToken = await api.login('alice', ALICE_PASSWORD);
    const tokens = await api.request('GET', '/v1/tokens', { token: aliceToken });
    const name = String(credential.status.token).split(':')[0];
    const stored = tokens.json.items.find((token: { name: string }) => token.name === name);
    assert.equal(stored?.cluster, 'dev');
    assert.ok(Date.parse(credential.status.expirationTimestamp) < Date.parse(stored.expiresAt), 'kubectl asks again before the token expires');
  });

  it('replaces a cached cluster token that was revoked, once its last confirmation is a minute old, because kubectl would otherwise get 401 until it expires', async () => {
    const cacheDir = join(cacheHome, 'kubegate');
    const clusterFile = (await readdir(cacheDir)).find((file) => file.startsWith('cluster-'));
    assert.ok(clusterFile);
    const cached = JSON.parse(await readFile(join(cacheDir, clusterFile), 'utf8'));
    const aliceToken = await api.login('alice', ALICE_PASSWORD);
    const revoked = await api.request('DELETE', `/v1/tokens/${String(cached.token).split(':')[0]}`, { token: aliceToken });
    assert.equal(revoked.status, 204, revoked.text);
    await writeFile(join(cacheDir, clusterFile), JSON.stringify({ ...cached, checkedAt: new Date(Date.now() - 120_000).toISOString() }), { mode: 0o600 });
    const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods'], env: pluginEnv(), timeoutMs: 30_000 });
    assert.equal(result.code, 0, result.stderr);
    const replaced = JSON.parse(await readFile(join(cacheDir, clusterFile), 'utf8'));
    assert.notEqual(replaced.token, cached.token, 'a new cluster token was minted');
  });

  it('fails with a clear message instead of hanging when there is neither a terminal nor KUBEGATE_PASSWORD', async () => {
    const env = { PATH: pluginEnv().PATH, XDG_CACHE_HOME: join(dir, 'empty-cache'), KUBEGATE_CA_DATA: Buffer.from(proxy.caPem ?? '').toString('base64') };
    await assert.rejects(run(join(bin, 'kubegate'), ['token', '--server', proxy.publicUrl, '--cluster', 'dev', '--provider', 'local'], { env }), (error: { stderr: string; code: number }) => {
      assert.equal(error.code, 3, 'exit code 3: not authenticated (LOGIN_FAILED)');
      assert.match(error.stderr, /KUBEGATE_PASSWORD/);
      return true;
    });
  });
});
