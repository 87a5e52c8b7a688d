/**
 * Membership roles mean the same on a cluster without the authorized endpoint: the real proxy
 * syncs each membership's ClusterRoleBinding into a strict fake cluster (no ACE), the fake
 * answers `kubectl auth can-i` from those bindings, and the proxy itself refuses a viewer's
 * writes. Real kubectl throughout.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { makePod } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { eventually } from '../support/eventually.js';
import { runKubectl, spawnKubectl } from '../support/kubectl.js';
import { startInClusterWebhook } from '../support/in-cluster-webhook.js';
import type { InClusterWebhook } from '../support/in-cluster-webhook.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { FixtureUser, ProxyFixture } from '../support/proxy-fixture.js';

describe('membership roles on a cluster without the authorized endpoint, with real kubectl', () => {
  let fixture: ProxyFixture;
  let viewer: FixtureUser;
  let member: FixtureUser;
  let viewerKubeconfig: string;
  let memberKubeconfig: string;

  /**
   * A GET through the proxy whose answer stays open: resolves once its body says `ready`,
   * with what has arrived so far and whether the answer is still open.
   */
  async function openHeld(path: string, token: string, ready: RegExp): Promise<{ received: () => string; isOpen: () => boolean; destroy: () => void }> {
    const request = https.request(`${fixture.proxy.url}${path}`, { ca: fixture.proxy.caPem!, agent: false, headers: { authorization: `Bearer ${token}` } });
    request.on('error', () => undefined);
    request.end();
    const [response] = (await once(request, 'response')) as [IncomingMessage];
    assert.equal(response.statusCode, 200, path);
    let received = '';
    let open = true;
    response.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    response.on('error', () => undefined);
    response.once('close', () => (open = false));
    await eventually(() => ready.test(received), 5000, `${path} to answer ${String(ready)}`);
    return { received: () => received, isOpen: () => open, destroy: () => response.destroy() };
  }

  const bindingOf = (userId: string): Record<string, unknown> | undefined =>
    fixture.fake.objects('clusterrolebindings').find((binding) => JSON.stringify(binding['subjects']).includes(userId));

  before(async () => {
    fixture = await startProxyFixture({ name: 'roles', fake: { namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] } });
    viewer = await fixture.addUser('vera', { role: 'viewer' });
    member = await fixture.addUser('mel', { role: 'member' });
    viewerKubeconfig = (await fixture.kubeconfig(viewer.token)).path;
    memberKubeconfig = (await fixture.kubeconfig(member.token)).path;
    await eventually(() => bindingOf(viewer.id) !== undefined && bindingOf(member.id) !== undefined, 5000, 'bindings synced to the cluster');
  });

  after(async () => {
    await fixture?.close();
  });

  test('each membership is a ClusterRoleBinding to its documented ClusterRole, labelled with the owner', async () => {
    const binding = bindingOf(viewer.id)!;
    assert.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' });
    assert.deepEqual(binding['subjects'], [{ kind: 'User', name: viewer.id, apiGroup: 'rbac.authorization.k8s.io' }]);
    const labels = (binding['metadata'] as { labels: Record<string, string> }).labels;
    assert.equal(labels['app.kubernetes.io/managed-by'], 'kubegate');
    assert.equal(labels['kubegate.io/cluster'], 'dev');
    assert.equal(labels['kubegate.io/installation'], await fixture.proxy.sync.installationId());
    assert.equal((bindingOf(member.id)!['roleRef'] as { name: string }).name, 'edit');
    const view = await fixture.api.request('GET', '/v1/clusters/dev', { token: fixture.adminToken });
    assert.equal(view.json.sync.ok, true, JSON.stringify(view.json.sync));
    assert.equal(fixture.fake.objects('clusterauthtokens').length, 0, 'no token state without the endpoint');
  });

  test('a viewer lists pods, and `auth can-i` answers from the synced binding', async () => {
    const list = await runKubectl({ binary: 'system', kubeconfig: viewerKubeconfig, args: ['get', 'pods', '-o', 'name'] });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /pod\/web-0/);
    const canGet = await runKubectl({ binary: 'system', kubeconfig: viewerKubeconfig, args: ['auth', 'can-i', 'get', 'pods'] });
    assert.equal(canGet.code, 0, canGet.stderr);
    assert.equal(canGet.stdout.trim(), 'yes');
    const canDelete = await runKubectl({ binary: 'system', kubeconfig: viewerKubeconfig, args: ['auth', 'can-i', 'delete', 'pods'] });
    assert.equal(canDelete.code, 1, canDelete.stderr);
    assert.equal(canDelete.stdout.trim(), 'no');
    const memberCanDelete = await runKubectl({ binary: 'system', kubeconfig: memberKubeconfig, args: ['auth', 'can-i', 'delete', 'pods'] });
    assert.equal(memberCanDelete.stdout.trim(), 'yes', memberCanDelete.stderr);
  });

  test('a viewer’s delete, exec and attach are refused by the proxy with a Status naming the role, and never reach the cluster', async () => {
    const before = fixture.fake.requests.length;
    const deleted = await runKubectl({ binary: 'system', kubeconfig: viewerKubeconfig, args: ['delete', 'pod', 'web-0'] });
    assert.notEqual(deleted.code, 0);
    assert.match(deleted.stderr, /Forbidden|forbidden/);
    assert.match(deleted.stderr, /role on this cluster is viewer, which may only read: DELETE is refused/);
    const exec = await runKubectl({ binary: 'system', kubeconfig: viewerKubeconfig, args: ['exec', 'web-0', '--', 'true'] });
    assert.notEqual(exec.code, 0);
    assert.match(exec.stderr, /viewer/);
    const attach = await runKubectl({ binary: 'system', kubeconfig: viewerKubeconfig, args: ['attach', '-i', 'web-0'], stdin: 'typed by a viewer\n' });
    assert.notEqual(attach.code, 0);
    assert.match(attach.stderr, /exec, attach and port-forward are refused/);
    assert.equal(fixture.fake.requests.slice(before).some((request) => request.path.endsWith('/attach')), false, 'no attach reached the cluster');
    const writes = fixture.fake.requests.slice(before).filter((request) => request.method !== 'GET');
    assert.deepEqual(writes.map((request) => `${request.method} ${request.path}`), [], 'nothing but reads reached the cluster');
    // The member's delete goes through (the cluster's RBAC decides for members).
    const memberDelete = await runKubectl({ binary: 'system', kubeconfig: memberKubeconfig, args: ['delete', 'pod', 'web-1', '--wait=false'] });
    assert.equal(memberDelete.code, 0, memberDelete.stderr);
  });

  test('a member made viewer loses the exec session already open (viewers may not exec), and keeps reading', async () => {
    const max = await fixture.addUser('max', { role: 'member' });
    const kubeconfig = (await fixture.kubeconfig(max.token)).path;
    const session = await spawnKubectl({ binary: 'system', kubeconfig, args: ['exec', '-i', 'web-0', '--', 'cat'], timeoutMs: 30_000 });
    try {
      session.write('before the change\n');
      await session.waitForOutput('before the change\n');
      const changed = await fixture.api.request('POST', '/v1/clusters/dev/members', { token: fixture.adminToken, body: { kind: 'User', name: max.id, role: 'viewer' } });
      assert.ok(changed.status === 201 || changed.status === 200, changed.text);
      const result = await session.exited();
      assert.equal(result.timedOut, false, 'the exec session was cut, not left to time out');
      assert.notEqual(result.code, 0, result.stderr);
    } finally {
      await session.kill();
    }
    const list = await runKubectl({ binary: 'system', kubeconfig, args: ['get', 'pods', '-o', 'name'] });
    assert.equal(list.code, 0, list.stderr);
  });

  test("a member made viewer loses the held answer of a pod's proxy subresource (viewers may not use it), while the watch beside it goes on", async () => {
    const pia = await fixture.addUser('pia', { role: 'member' });
    const held = await openHeld('/k8s/clusters/dev/api/v1/namespaces/default/pods/web-0/proxy/stream', pia.token, /web-0 stream open/);
    const watch = await openHeld('/k8s/clusters/dev/api/v1/namespaces/default/pods?watch=true', pia.token, /web-0/);
    try {
      await fixture.fake.waitUntil(() => fixture.fake.openProxyStreams === 1);
      const changed = await fixture.api.request('POST', '/v1/clusters/dev/members', { token: fixture.adminToken, body: { kind: 'User', name: pia.id, role: 'viewer' } });
      assert.ok(changed.status === 201 || changed.status === 200, changed.text);
      await eventually(() => !held.isOpen(), 5000, 'the proxy answer to be cut');
      await fixture.fake.waitUntil(() => fixture.fake.openProxyStreams === 0);
      // The watch, which a viewer may hold, still delivers.
      fixture.fake.emitPodEvent('ADDED', makePod('seen-by-the-viewer'));
      await eventually(() => watch.received().includes('seen-by-the-viewer'), 5000, 'the event on the watch');
      assert.equal(watch.isOpen(), true);
    } finally {
      held.destroy();
      watch.destroy();
    }
    const again = await fixture.api.request('GET', '/k8s/clusters/dev/api/v1/namespaces/default/pods/web-0/proxy/stream', { token: pia.token });
    assert.equal(again.status, 403, again.text);
    assert.match(again.text, /ROLE_READ_ONLY/);
  });

  test('a role change re-binds, and removing the member removes the binding', async () => {
    const changed = await fixture.api.request('POST', '/v1/clusters/dev/members', { token: fixture.adminToken, body: { kind: 'User', name: viewer.id, role: 'member' } });
    assert.ok(changed.status === 201 || changed.status === 200, changed.text);
    await eventually(() => (bindingOf(viewer.id)?.['roleRef'] as { name: string } | undefined)?.name === 'edit', 5000, 'binding re-created for the new role');
    const removed = await fixture.api.request('DELETE', `/v1/clusters/dev/members/User/${viewer.id}`, { token: fixture.adminToken });
    assert.equal(removed.status, 204, removed.text);
    await eventually(() => bindingOf(viewer.id) === undefined, 5000, 'binding removed');
  });
});

describe('identity.kubernetesUsername provider:login: one readable name on the proxy, the webhook and in JWTs, and in the bindings', () => {
  let fixture: ProxyFixture;
  let webhook: InClusterWebhook | undefined;
  let alice: FixtureUser;
  let kubeconfig: string;

  before(async () => {
    fixture = await startProxyFixture({
      name: 'principal',
      clusterId: 'edge',
      config: () => ({ identity: { kubernetesUsername: 'provider:login' } }),
      fake: { namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] },
      async beforeProxy(cluster) {
        webhook = await startInClusterWebhook(cluster, { cacheTtlMs: 500 });
      },
      cluster: (cluster) => ({ ace: { enabled: true, fqdn: `localhost:${cluster.port}`, caData: Buffer.from(cluster.caPem).toString('base64') } }),
    });
    alice = await fixture.addUser('alice', { role: 'viewer' });
    const downloaded = await fixture.kubeconfig(alice.token, '?context=ace');
    kubeconfig = downloaded.path;
    const tokenName = String(downloaded.token).split(':')[0]!;
    await eventually(() => fixture.fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, tokenName) !== undefined, 5000, 'token synced');
  });

  after(async () => {
    await fixture?.stopProxy();
    await webhook?.stop();
    await fixture?.close();
  });

  test('the binding names local:alice, and both paths present local:alice with the user ID as uid', async () => {
    await eventually(
      () => fixture.fake.objects('clusterrolebindings').some((binding) => JSON.stringify(binding['subjects']) === JSON.stringify([{ kind: 'User', name: 'local:alice', apiGroup: 'rbac.authorization.k8s.io' }])),
      5000,
      'binding with the readable subject',
    );
    const before = fixture.fake.requests.length;
    for (const args of [['get', 'pods', '-o', 'name'], ['--context', 'edge', 'get', 'pods', '-o', 'name']]) {
      const result = await runKubectl({ binary: 'system', kubeconfig, args });
      assert.equal(result.code, 0, result.stderr);
    }
    const lists = fixture.fake.requests.slice(before).filter((request) => request.path === '/api/v1/namespaces/default/pods' && request.status === 200);
    assert.deepEqual(lists.map((request) => request.user?.authenticatedBy === 'webhook' ? 'webhook' : request.user?.impersonated === true ? 'proxy' : 'other').sort(), ['proxy', 'webhook']);
    for (const request of lists) {
      assert.equal(request.user?.username, 'local:alice');
      assert.equal(request.user?.uid, alice.id);
    }
    // RBAC in the cluster matches the name the proxy sends.
    const can = await runKubectl({ binary: 'system', kubeconfig, args: ['--context', 'edge', 'auth', 'can-i', 'list', 'pods'] });
    assert.equal(can.stdout.trim(), 'yes', can.stderr);
  });

  test('kubectl --as is reviewed by the cluster for the readable name, the one its RBAC knows', async () => {
    fixture.fake.useAccessPolicy((review) => review.user === 'local:alice' && review.resourceAttributes?.resource === 'users' && review.resourceAttributes.name === 'bob');
    try {
      const before = fixture.fake.subjectAccessReviews.length;
      const asBob = await fixture.api.request('GET', '/k8s/clusters/edge/api/v1/namespaces/default/pods', { token: alice.token, headers: { 'impersonate-user': 'bob' } });
      assert.equal(asBob.status, 200, asBob.text);
      assert.deepEqual(fixture.fake.subjectAccessReviews.slice(before).map((review) => [review.user, review.uid]), [['local:alice', alice.id]]);
    } finally {
      fixture.fake.useAccessPolicy(() => false);
    }
  });

  test('a JWT for the cluster carries the readable name in kubegate_username, the ID in sub, and the generated config maps them so', async () => {
    const issued = await fixture.api.request('POST', '/v1/clusters/edge/jwt', { token: alice.token });
    assert.equal(issued.status, 201, issued.text);
    const payload = JSON.parse(Buffer.from(String(issued.json.token).split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(payload['kubegate_username'], 'local:alice');
    assert.equal(payload['sub'], alice.id);
    const config = await fixture.api.request('GET', '/v1/clusters/edge/authentication-config', { token: alice.token });
    assert.equal(config.status, 200, config.text);
    assert.deepEqual(config.json.authenticationConfiguration.jwt[0].claimMappings.username, { claim: 'kubegate_username', prefix: '' });
    assert.ok((config.json.oidcFlags as string[]).includes('--oidc-username-claim=kubegate_username'));
  });
});
