/**
 * The authorized cluster endpoint end to end: the real proxy (startProxy) syncs tokens, user
 * attributes and role bindings into a strict fake cluster; the real webhook (startWebhook, support/in-cluster-webhook.ts)
 * watches them there; the fake API server asks the webhook about tokens it does not know,
 * as kube-apiserver does with a webhook config file; real kubectl uses both contexts of a
 * downloaded kubeconfig.
 */
import { SYNC_USER } from '../../src/sync/sync.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import type { EffectiveUser, FakeKubeApiServer, FakeUser } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import type { ApiClient } from '../support/api-client.js';
import { runKubectl } from '../support/kubectl.js';
import { startInClusterWebhook } from '../support/in-cluster-webhook.js';
import type { InClusterWebhook } from '../support/in-cluster-webhook.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';
import { eventually } from '../support/eventually.js';

const WEBHOOK_CACHE_TTL_MS = 500;

function identityOf(user: EffectiveUser | undefined): unknown {
  assert.ok(user, 'the request was authenticated');
  return { username: user.username, uid: user.uid, groups: [...user.groups].sort(), extra: user.extra };
}

describe('authorized cluster endpoint: proxy sync + webhook + kubectl', () => {
  let fixture: ProxyFixture;
  let fake: FakeKubeApiServer;
  let webhook: InClusterWebhook | undefined;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  let aliceId: string;
  let aliceKubeconfig: string;
  let aliceToken: string;

  async function newUser(username: string, role: 'member' | 'viewer'): Promise<{ id: string; session: string }> {
    const user = await fixture.addUser(username, { role });
    return { id: user.id, session: user.token };
  }

  /**
   * Waits until the webhook in the cluster answers `token` as `expected` says, asking it past
   * the API server's answer cache (which a real API server keeps for its TTL); the answer
   * that satisfied the wait is what kubectl's next request gets from that cache.
   */
  async function untilWebhookSays(token: string, expected: (user: FakeUser | undefined) => boolean, what: string): Promise<void> {
    const authenticator = fake.webhook;
    assert.ok(authenticator, 'the fake API server asks the webhook');
    await eventually(
      async () => {
        authenticator.clearCache();
        return expected(await authenticator.authenticate(token));
      },
      3000,
      what,
    );
  }

  async function kubeconfigFor(session: string, query = '?context=ace'): Promise<{ path: string; token: string; document: { 'current-context': string; contexts: Array<{ name: string }> } }> {
    const kubeconfig = await fixture.kubeconfig(session, query);
    assert.ok(kubeconfig.token !== undefined, 'the kubeconfig carries a token');
    return { path: kubeconfig.path, token: kubeconfig.token, document: kubeconfig.document };
  }

  before(async () => {
    fixture = await startProxyFixture({
      name: 'ace',
      clusterId: 'edge',
      fake: { namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] },
      async beforeProxy(cluster) {
        webhook = await startInClusterWebhook(cluster, { cacheTtlMs: WEBHOOK_CACHE_TTL_MS });
      },
      cluster: (cluster) => ({ ace: { enabled: true, fqdn: `localhost:${cluster.port}`, caData: Buffer.from(cluster.caPem).toString('base64') } }),
    });
    ({ fake, proxy, api, adminToken } = fixture);

    const alice = await newUser('alice', 'member');
    aliceId = alice.id;
    const kubeconfig = await kubeconfigFor(alice.session);
    aliceKubeconfig = kubeconfig.path;
    aliceToken = kubeconfig.token;
    assert.equal(kubeconfig.document['current-context'], 'edge-fqdn');
    assert.deepEqual(kubeconfig.document.contexts.map((context) => context.name), ['edge', 'edge-fqdn']);
  });

  after(async () => {
    await fixture?.stopProxy();
    await webhook?.stop();
    await fixture?.close();
  });

  test('a new user’s kubeconfig works through the -fqdn context and the proxy context as the same identity', async () => {
    await eventually(() => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, aliceToken.split(':')[0]!) !== undefined, 3000, 'token synced');
    const before = fake.requests.length;
    const direct = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods', '-o', 'name'] });
    assert.equal(direct.code, 0, direct.stderr);
    const viaProxy = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['--context', 'edge', 'get', 'pods', '-o', 'name'] });
    assert.equal(viaProxy.code, 0, viaProxy.stderr);
    const lists = fake.requests.slice(before).filter((request) => request.path === '/api/v1/namespaces/default/pods' && request.status === 200);
    const byWebhook = lists.find((request) => request.user?.authenticatedBy === 'webhook');
    const byProxy = lists.find((request) => request.user?.impersonated === true);
    assert.ok(byWebhook && byProxy, 'one list came through each path');
    assert.deepEqual(identityOf(byWebhook.user), identityOf(byProxy.user));
    assert.equal(byWebhook.user?.username, aliceId);
  });

  test("use through the -fqdn context alone shows in the proxy's GET /v1/tokens: the sync copies the webhook's lastUsedAt stamp back", async () => {
    const uma = await newUser('uma', 'member');
    const kubeconfig = await kubeconfigFor(uma.session);
    const name = kubeconfig.token.split(':')[0]!;
    const lastUsedOf = async (): Promise<string | null | undefined> =>
      ((await api.request('GET', '/v1/tokens', { token: uma.session })).json.items as Array<{ name: string; lastUsedAt: string | null }>).find((token) => token.name === name)?.lastUsedAt;
    await eventually(() => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name) !== undefined, 3000, 'token synced');
    assert.equal(await lastUsedOf(), null, 'never used yet');

    const direct = await runKubectl({ binary: 'system', kubeconfig: kubeconfig.path, args: ['get', 'pods', '-o', 'name'] });
    assert.equal(direct.code, 0, direct.stderr);
    let stamped: string | undefined;
    await eventually(() => (stamped = fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name)?.['lastUsedAt'] as string | undefined) !== undefined, 3000, "the webhook's stamp");
    assert.equal(await lastUsedOf(), null, 'the proxy never saw the token');

    await proxy.sync.syncNow('edge');
    assert.equal(await lastUsedOf(), new Date(stamped!).toISOString());
  });

  test('membership becomes a ClusterRoleBinding in the cluster, and the user attribute carries the provider groups', async () => {
    await eventually(
      () => fake.objects('clusterrolebindings').some((binding) => JSON.stringify(binding['subjects']).includes(aliceId) && (binding['roleRef'] as { name: string }).name === 'edit'),
      3000,
      'binding synced',
    );
    assert.equal(proxy.sync.status('edge')?.ok, true);
    // Every write but the webhook's own `lastUsedAt` stamps (made with the webhook's credentials).
    const writes = fake.requests.filter(
      (request) =>
        request.method !== 'GET' &&
        /clusterrolebindings|clusterauthtokens|clusteruserattributes|secrets/.test(request.path) &&
        !request.body.toString('utf8').includes('lastUsedAt'),
    );
    assert.ok(writes.length > 0);
    for (const write of writes) {
      assert.equal(write.user?.username, SYNC_USER, `the sync writes as its impersonated user, never as the proxy identity itself: ${write.method} ${write.url}`);
      assert.equal(write.user?.impersonated, true);
    }
    const view = await api.request('GET', '/v1/clusters/edge', { token: adminToken });
    assert.equal(view.status, 200, view.text);
    assert.equal(view.json.sync.ok, true, 'operators see the sync state of the cluster in the API');
    assert.equal(view.json.sync.consecutiveFailures, 0);
  });

  test('a group change reaches the cluster by itself, and both paths see the new group', async () => {
    await proxy.store.putUserGroups({ userId: aliceId, provider: 'local', groups: ['local:ops'], refreshedAt: new Date() });
    await eventually(() => JSON.stringify(fake.resources.get('clusteruserattributes', CATTLE_NAMESPACE, aliceId)?.['groups']) === '["local:ops"]', 3000, 'groups synced');
    await untilWebhookSays(aliceToken, (user) => user?.groups.includes('local:ops') === true, 'the webhook to see the new group');
    const before = fake.requests.length;
    for (const args of [['get', 'pods'], ['--context', 'edge', 'get', 'pods']]) {
      const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args });
      assert.equal(result.code, 0, result.stderr);
    }
    const lists = fake.requests.slice(before).filter((request) => request.path === '/api/v1/namespaces/default/pods' && request.status === 200);
    assert.equal(lists.length, 2);
    for (const request of lists) assert.deepEqual([...(request.user?.groups ?? [])].sort(), ['local:ops', 'system:authenticated']);
  });

  test('a revoked token disappears from the cluster by itself after the DELETE, and the webhook then refuses it', async () => {
    const session = await api.login('alice', 'alice-Secret-pass-42');
    const second = await kubeconfigFor(session);
    const name = second.token.split(':')[0]!;
    await eventually(() => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name) !== undefined, 3000, 'second token synced');
    const ok = await runKubectl({ binary: 'system', kubeconfig: second.path, args: ['get', 'pods', '-o', 'name'] });
    assert.equal(ok.code, 0, ok.stderr);
    const revoked = await api.request('DELETE', `/v1/tokens/${name}`, { token: session });
    assert.ok(revoked.status === 200 || revoked.status === 204, revoked.text);
    await eventually(
      () => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name) === undefined && fake.resources.get('secrets', CATTLE_NAMESPACE, name) === undefined,
      5000,
      'revoked token removed',
    );
    await untilWebhookSays(second.token, (user) => user === undefined, 'the webhook to forget the token');
    const refused = await runKubectl({ binary: 'system', kubeconfig: second.path, args: ['get', 'pods', '-o', 'name'] });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Unauthorized|provide credentials/);
  });

  test('disabling a user removes their tokens and attribute from the cluster by itself', async () => {
    const bob = await newUser('bob', 'viewer');
    const kubeconfig = await kubeconfigFor(bob.session);
    const name = kubeconfig.token.split(':')[0]!;
    await eventually(() => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name) !== undefined, 3000, 'bob synced');
    const disabled = await api.request('PATCH', `/v1/users/${bob.id}`, { token: adminToken, body: { enabled: false } });
    assert.equal(disabled.status, 200, disabled.text);
    await eventually(
      () => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name) === undefined && fake.resources.get('clusteruserattributes', CATTLE_NAMESPACE, bob.id) === undefined,
      5000,
      'disabled user removed',
    );
  });

  test('the -fqdn context keeps working with the central proxy stopped', async () => {
    await fixture.stopProxy();
    fake.webhook?.clearCache();
    const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods', '-o', 'name'] });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /pod\/web-0/);
  });
});
