import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { parse } from 'yaml';
import { PUBLIC_URL, bearer, errorOf, startHarness } from './harness.js';
import type { Harness, TestUser } from './harness.js';

interface Kubeconfig {
  apiVersion: string;
  kind: string;
  clusters: Array<{ name: string; cluster: { server: string; 'certificate-authority-data'?: string } }>;
  users: Array<{ name: string; user: { token: string } }>;
  contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  'current-context': string;
}

const CLUSTER_CA = '-----BEGIN CERTIFICATE-----\ncluster-ca\n-----END CERTIFICATE-----\n';
const ACE_CA = '-----BEGIN CERTIFICATE-----\nace-ca\n-----END CERTIFICATE-----\n';

describe('GET /v1/clusters/:id/kubeconfig', () => {
  let h: Harness;
  let alice: TestUser;
  let bob: TestUser;
  before(async () => {
    h = await startHarness();
    alice = await h.addUser('alice');
    bob = await h.addUser('bob');
    await h.store.createCluster({ id: 'prod', server: 'https://10.0.0.1:6443', caPem: CLUSTER_CA, credentials: { kind: 'token', token: 'proxy-sa' } });
    await h.store.createCluster({
      id: 'edge',
      server: 'https://10.0.1.1:6443',
      caPem: CLUSTER_CA,
      credentials: { kind: 'token', token: 'proxy-sa' },
      ace: { enabled: true, fqdn: 'edge.example.com', caPem: ACE_CA, nodes: [{ name: 'cp-1', address: '10.0.1.5' }, { name: 'cp-2', address: 'fd00::5' }] },
    });
    await h.store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: alice.user.id, role: 'viewer' });
    await h.store.putMembership({ clusterId: 'edge', subjectKind: 'User', subjectName: alice.user.id, role: 'member' });
    await h.directory.refresh();
  });
  after(() => h.close());

  it('answers a kubeconfig whose context reaches the cluster through the proxy, trusting the proxy CA, with a fresh token', async () => {
    const response = await request(h.app).get('/v1/clusters/prod/kubeconfig').set(bearer(alice.token)).expect(200);
    assert.match(String(response.headers['content-type']), /^application\/yaml/);
    assert.equal(response.headers['cache-control'], 'no-store');
    const config = parse(response.text) as Kubeconfig;
    assert.equal(config.kind, 'Config');
    assert.equal(config['current-context'], 'prod');
    assert.deepEqual(config.clusters, [
      { name: 'prod', cluster: { server: `${PUBLIC_URL}/k8s/clusters/prod`, 'certificate-authority-data': Buffer.from(h.caPem!).toString('base64') } },
    ]);
    assert.deepEqual(config.contexts, [{ name: 'prod', context: { cluster: 'prod', user: 'kubegate-alice' } }]);
    const token = config.users[0]!.user.token;
    assert.notEqual(token, alice.token);
    const stored = await h.store.getToken(token.split(':')[0]!);
    assert.equal(stored?.kind, 'kubeconfig');
    assert.equal(stored?.clusterId, 'prod');
    assert.equal(stored?.userId, alice.user.id);
    assert.equal(stored?.expiresAt?.getTime(), h.clock.ms + 30 * 86_400_000);
  });

  it('issues a token limited to that cluster, so a leaked kubeconfig opens nothing else', async () => {
    const response = await request(h.app).get('/v1/clusters/prod/kubeconfig').set(bearer(alice.token)).expect(200);
    const token = (parse(response.text) as Kubeconfig).users[0]!.user.token;
    const result = await h.ctx.authenticator.authenticateToken(token);
    assert.equal(result.outcome, 'authenticated');
    assert.equal(result.outcome === 'authenticated' && result.token.clusterId, 'prod');
    assert.equal(result.outcome === 'authenticated' && result.user.name, alice.user.id);
    await request(h.app).post('/v1/tokens').set(bearer(token)).send({}).expect(403);
  });

  it('takes a ttl up to the kubeconfig maximum and refuses a longer one', async () => {
    const short = await request(h.app).get('/v1/clusters/prod/kubeconfig').query({ ttl: '1d' }).set(bearer(alice.token)).expect(200);
    const token = (parse(short.text) as Kubeconfig).users[0]!.user.token;
    assert.equal((await h.store.getToken(token.split(':')[0]!))?.expiresAt?.getTime(), h.clock.ms + 86_400_000);
    await request(h.app).get('/v1/clusters/prod/kubeconfig').query({ ttl: '90d' }).set(bearer(alice.token)).expect(200);
    const long = await request(h.app).get('/v1/clusters/prod/kubeconfig').query({ ttl: '91d' }).set(bearer(alice.token)).expect(400);
    assert.deepEqual([errorOf(long.body).code, errorOf(long.body).field], ['TTL_TOO_LONG', 'ttl']);
    const bad = await request(h.app).get('/v1/clusters/prod/kubeconfig?ttl=1d&ttl=2d').set(bearer(alice.token)).expect(400);
    assert.equal(errorOf(bad.body).field, 'ttl');
    const unknown = await request(h.app).get('/v1/clusters/prod/kubeconfig?tll=1d').set(bearer(alice.token)).expect(400);
    assert.equal(errorOf(unknown.body).field, 'tll');
  });

  it('adds the authorized-endpoint contexts when the cluster has them, each with its own CA', async () => {
    const response = await request(h.app).get('/v1/clusters/edge/kubeconfig').set(bearer(alice.token)).expect(200);
    const config = parse(response.text) as Kubeconfig;
    const b64 = (text: string): string => Buffer.from(text).toString('base64');
    assert.deepEqual(config.clusters, [
      { name: 'edge', cluster: { server: `${PUBLIC_URL}/k8s/clusters/edge`, 'certificate-authority-data': b64(h.caPem!) } },
      { name: 'edge-fqdn', cluster: { server: 'https://edge.example.com', 'certificate-authority-data': b64(ACE_CA) } },
      { name: 'edge-cp-1', cluster: { server: 'https://10.0.1.5:6443', 'certificate-authority-data': b64(CLUSTER_CA) } },
      { name: 'edge-cp-2', cluster: { server: 'https://[fd00::5]:6443', 'certificate-authority-data': b64(CLUSTER_CA) } },
    ]);
    assert.equal(config['current-context'], 'edge');
    assert.equal(new Set(config.contexts.map((context) => context.context.user)).size, 1);
  });

  it('answers 404 to a non-member, and serves admins any cluster', async () => {
    const refused = await request(h.app).get('/v1/clusters/prod/kubeconfig').set(bearer(bob.token)).expect(404);
    assert.equal(errorOf(refused.body).code, 'NOT_FOUND');
    await request(h.app).get('/v1/clusters/prod/kubeconfig').set(bearer(h.admin.token)).expect(200);
    await request(h.app).get('/v1/clusters/..%2Fprod/kubeconfig').set(bearer(h.admin.token)).expect(404);
  });

  it('never writes the kubeconfig token to the log', async () => {
    const response = await request(h.app).get('/v1/clusters/prod/kubeconfig').set(bearer(alice.token)).expect(200);
    const secret = (parse(response.text) as Kubeconfig).users[0]!.user.token.split(':')[1]!;
    assert.ok(!h.logs.join('\n').includes(secret));
  });
});
