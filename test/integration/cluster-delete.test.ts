/**
 * Deleting a cluster takes its credentials with it: the real proxy (startProxy) against a
 * strict fake cluster with the authorized endpoint on. What the sync wrote there
 * (ClusterAuthTokens, their Secrets, user attributes, role bindings, the ownership stamp)
 * is gone before the cluster is; while the cluster cannot be cleaned it stays `deleting`:
 * unusable, visible, its tokens still revocable, and the cleanup is retried until it works.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { createApiClient } from '../support/api-client.js';
import type { ApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-delete';
const CLUSTER_TOKEN = 'proxy-sa-token-delete-0123456789';
const KINDS = ['clusterauthtokens', 'secrets', 'clusteruserattributes', 'configmaps'] as const;

describe('deleting a cluster', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  let alice: string;
  let aliceId: string;

  /** kubegate's objects in the fake cluster (namespaced kinds and role bindings). */
  function managedObjects(): string[] {
    const managed = (labels: Readonly<Record<string, string>> | undefined): boolean => labels?.['app.kubernetes.io/managed-by'] === 'kubegate';
    return [
      ...KINDS.flatMap((kind) => fake.objects(kind, CATTLE_NAMESPACE).filter((object) => managed(object.metadata.labels)).map((object) => `${kind}/${object.metadata.name}`)),
      ...fake.objects('clusterrolebindings').filter((object) => managed(object.metadata.labels)).map((object) => `clusterrolebindings/${object.metadata.name}`),
    ];
  }

  async function registerCluster(id: string): Promise<string> {
    const created = await api.request('POST', '/v1/clusters', {
      token: adminToken,
      body: { id, server: fake.url, caData: Buffer.from(fake.caPem).toString('base64'), token: CLUSTER_TOKEN, ace: { enabled: true, fqdn: `localhost:${fake.port}` } },
    });
    assert.equal(created.status, 201, created.text);
    const member = await api.request('POST', `/v1/clusters/${id}/members`, { token: adminToken, body: { kind: 'User', name: aliceId, role: 'member' } });
    assert.equal(member.status, 201, member.text);
    const kubeconfig = await api.request('GET', `/v1/clusters/${id}/kubeconfig`, { token: alice });
    assert.equal(kubeconfig.status, 200, kubeconfig.text);
    const token = parse(kubeconfig.text).users[0].user.token as string;
    const name = token.split(':')[0]!;
    await eventually(() => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name) !== undefined, 5000, `${id}: token synced`);
    await eventually(() => proxy.sync.status(id)?.ok === true, 5000, `${id}: sync done`);
    return token;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-delete-'));
    fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] });
    const configFile = join(dir, 'kubegate.yaml');
    await writeFile(configFile, ['listen: 127.0.0.1:0', `dataDir: ${join(dir, 'data')}`, 'tls:', '  sans: ["127.0.0.1", "localhost"]', 'audit:', '  enabled: false', 'metrics:', '  listen: none'].join('\n'));
    proxy = await startProxy(loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } }), { logger: createLogger({ level: 'silent', name: 'proxy' }) });
    api = createApiClient(proxy.url, proxy.caPem!);
    adminToken = await api.login('admin', ADMIN_PASSWORD);
    const created = await api.request('POST', '/v1/users', { token: adminToken, body: { username: 'alice', password: 'alice-Secret-pass-42' } });
    assert.equal(created.status, 201, created.text);
    aliceId = created.json.id;
    alice = await api.login('alice', 'alice-Secret-pass-42');
  });

  after(async () => {
    fake.unavailable = false;
    await proxy?.stop();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('removes every object kubegate wrote in the cluster before the cluster is gone', async () => {
    await registerCluster('edge');
    assert.ok(managedObjects().some((name) => name.startsWith('clusterauthtokens/')));
    assert.ok(managedObjects().some((name) => name.startsWith('clusterrolebindings/')));
    const removed = await api.request('DELETE', '/v1/clusters/edge', { token: adminToken });
    assert.equal(removed.status, 204, removed.text);
    assert.deepEqual(managedObjects(), [], 'no token, Secret, user attribute, binding or stamp is left behind');
    assert.equal((await api.request('GET', '/v1/clusters/edge', { token: adminToken })).status, 404);
  });

  test('an unreachable cluster stays `deleting`: unusable, visible with the reason, its tokens revocable, and is cleaned once it answers', async () => {
    const token = await registerCluster('far');
    const name = token.split(':')[0]!;
    fake.unavailable = true;
    const accepted = await api.request('DELETE', '/v1/clusters/far', { token: adminToken });
    assert.equal(accepted.status, 202, accepted.text);
    assert.equal(accepted.json.state, 'deleting');
    assert.match(accepted.json.sync.error, /^KUBE_API_FAILED: .*503/);

    const view = await api.request('GET', '/v1/clusters/far', { token: adminToken });
    assert.equal(view.status, 200, view.text);
    assert.equal(view.json.state, 'deleting');
    assert.equal(typeof view.json.deletingSince, 'string');
    assert.equal(view.json.sync.ok, false);

    // Nobody can use it any more.
    const kubeconfig = await api.request('GET', '/v1/clusters/far/kubeconfig', { token: adminToken });
    assert.equal(kubeconfig.status, 409, kubeconfig.text);
    assert.equal(kubeconfig.json.error.code, 'CLUSTER_DELETING');
    assert.equal((await api.request('GET', '/v1/clusters/far', { token: alice })).status, 404, 'members see it no more');
    const proxied = await api.request('GET', '/k8s/clusters/far/api/v1/namespaces/default/pods', { token });
    assert.equal(proxied.status, 403, proxied.text);
    const patched = await api.request('PATCH', '/v1/clusters/far', { token: adminToken, body: { displayName: 'x' } });
    assert.equal(patched.json.error?.code, 'CLUSTER_DELETING');

    // Its token still exists in the cluster, so it must still be revocable.
    assert.ok(fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name));
    const revoked = await api.request('DELETE', `/v1/tokens/${name}`, { token: alice });
    assert.ok(revoked.status === 200 || revoked.status === 204, revoked.text);

    // The cluster answers again: the retry finishes the job.
    fake.unavailable = false;
    await eventually(async () => (await api.request('GET', '/v1/clusters/far', { token: adminToken })).status === 404, 15_000, 'cluster deleted after the retry');
    assert.deepEqual(managedObjects(), []);
  });

  test('?force=true forgets a cluster at once without cleaning it, for a cluster that is gone for good', async () => {
    await registerCluster('gone');
    fake.unavailable = true;
    try {
      const bad = await api.request('DELETE', '/v1/clusters/gone?force=yes', { token: adminToken });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.field, 'force');
      const forced = await api.request('DELETE', '/v1/clusters/gone?force=true', { token: adminToken });
      assert.equal(forced.status, 204, forced.text);
      assert.equal((await api.request('GET', '/v1/clusters/gone', { token: adminToken })).status, 404);
    } finally {
      fake.unavailable = false;
    }
    assert.ok(managedObjects().length > 0, 'forced: the objects stay (the operator said the cluster is gone)');
  });
});
