import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createCertificateAuthority, issueClientCertificate } from '../../../../src/pki/certificates.js';
import type { CertificateAndKey } from '../../../../src/pki/certificates.js';
import { startFakeKubeApiServer } from '../../../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../../../fakes/kube-apiserver.js';
import { bearer, errorOf, startHarness } from './harness.js';
import type { Harness, TestUser } from './harness.js';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const PROXY_SA_TOKEN = 'proxy-impersonator-token';

describe('clusters', () => {
  let h: Harness;
  let fake: FakeKubeApiServer;
  let client: CertificateAndKey;
  let otherClient: CertificateAndKey;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    h = await startHarness();
    fake = await startFakeKubeApiServer({ token: PROXY_SA_TOKEN });
    const ca = await createCertificateAuthority({ commonName: 'client ca', validityDays: 1 });
    client = await issueClientCertificate(ca, { commonName: 'kubegate-proxy' });
    otherClient = await issueClientCertificate(ca, { commonName: 'someone-else' });
    alice = await h.addUser('alice');
    bob = await h.addUser('bob');
  });
  after(async () => {
    await h.close();
    await fake.close();
  });

  function register(body: Record<string, unknown>, token = h.admin.token) {
    return request(h.app).post('/v1/clusters').set(bearer(token)).send(body);
  }

  it('registers a cluster, answers its view without credentials, and makes the admin its owner', async () => {
    const response = await register({ id: 'prod', displayName: 'Production', server: `${fake.url}/`, caData: b64(fake.caPem), token: PROXY_SA_TOKEN }).expect(201);
    assert.deepEqual(response.body, {
      id: 'prod',
      displayName: 'Production',
      mode: 'direct',
      state: 'active',
      server: fake.url,
      role: 'owner',
      insecureSkipTLSVerify: false,
      ace: { enabled: false, mode: 'webhook', fqdn: null, nodes: [] },
      createdAt: response.body.createdAt,
      updatedAt: response.body.updatedAt,
      credentialCheck: {
        ok: true,
        credential: 'accepted',
        checkedAt: new Date(h.clock.ms).toISOString(),
        rights: [
          { verb: 'impersonate', group: '', resource: 'users', allowed: true },
          { verb: 'impersonate', group: '', resource: 'groups', allowed: true },
          { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'uids', allowed: true },
          { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: 'kubegate.io/login-name', allowed: true },
          { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: 'kubegate.io/provider', allowed: true },
          { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: 'kubegate.io/token-name', allowed: true },
          { verb: 'create', group: 'authorization.k8s.io', resource: 'subjectaccessreviews', allowed: true },
        ],
      },
    });
    assert.ok(!JSON.stringify(response.body).includes(PROXY_SA_TOKEN));
    const reviews = fake.requests.filter((recorded) => recorded.path === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews');
    assert.equal(reviews.length, 7, 'one SelfSubjectAccessReview per right, as the registered identity');
    assert.ok(reviews.every((review) => review.headers.authorization === `Bearer ${PROXY_SA_TOKEN}` && review.status === 201));
    const stored = await h.store.getCluster('prod');
    assert.deepEqual(stored?.credentials, { kind: 'token', token: PROXY_SA_TOKEN });
    assert.equal(stored?.caPem, fake.caPem);
    const members = await h.store.listMemberships('prod');
    assert.deepEqual(members.map((m) => [m.subjectKind, m.subjectName, m.role]), [['User', h.admin.user.id, 'owner']]);
  });

  it("still registers a cluster whose credential is refused or may not impersonate, and the answer says what is wrong", async () => {
    const refused = await register({ id: 'stale', server: fake.url, caData: b64(fake.caPem), token: 'rotated-away' }).expect(201);
    assert.deepEqual(refused.body.credentialCheck, {
      ok: false,
      credential: 'refused',
      checkedAt: new Date(h.clock.ms).toISOString(),
      rights: [],
      error: "the API server refused the proxy's credential (HTTP 401)",
    });
    fake.allowImpersonation = false;
    try {
      const denied = await register({ id: 'no-rbac', server: fake.url, caData: b64(fake.caPem), token: PROXY_SA_TOKEN }).expect(201);
      assert.equal(denied.body.credentialCheck.ok, false);
      assert.equal(denied.body.credentialCheck.credential, 'accepted');
      assert.ok(denied.body.credentialCheck.rights.every((right: { verb: string; allowed: boolean }) => right.allowed === (right.verb === 'create')));
      assert.equal(
        denied.body.credentialCheck.error,
        "the proxy's identity may not impersonate users, impersonate groups, impersonate uids, impersonate userextras/kubegate.io/login-name, impersonate userextras/kubegate.io/provider, impersonate userextras/kubegate.io/token-name in the cluster: apply deploy/proxy/downstream-rbac.yaml there",
      );
    } finally {
      fake.allowImpersonation = true;
    }
    const unreachable = await register({ id: 'nowhere', server: 'https://127.0.0.1:1', caData: b64(fake.caPem), token: PROXY_SA_TOKEN }).expect(201);
    assert.deepEqual(unreachable.body.credentialCheck, { ok: false, credential: 'unknown', checkedAt: new Date(h.clock.ms).toISOString(), rights: [], error: 'the API server cannot be reached (ECONNREFUSED)' });
    // A new token is checked again when it is set.
    const fixed = await request(h.app).patch('/v1/clusters/stale').set(bearer(h.admin.token)).send({ token: PROXY_SA_TOKEN }).expect(200);
    assert.equal(fixed.body.credentialCheck.ok, true);
    const renamed = await request(h.app).patch('/v1/clusters/stale').set(bearer(h.admin.token)).send({ displayName: 'Stale' }).expect(200);
    assert.equal(renamed.body.credentialCheck, undefined, 'nothing about how it is reached changed');
    for (const id of ['stale', 'no-rbac', 'nowhere']) await request(h.app).delete(`/v1/clusters/${id}?force=true`).set(bearer(h.admin.token)).expect(204);
  });

  it('probes a new cluster in the background and shows whether it answers', async () => {
    await fake.waitForRequest((recorded) => recorded.path === '/version');
    // The probe's answer is stored once it ends; ask until it shows.
    let status: Record<string, unknown> = {};
    for (let i = 0; i < 50 && status['reachable'] !== true; i++) {
      status = (await request(h.app).get('/v1/clusters/prod').set(bearer(h.admin.token)).expect(200)).body.status;
      if (status['reachable'] !== true) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(status, { reachable: true, healthy: true, credential: 'accepted', version: 'v1.32.4', checkedAt: new Date(h.clock.ms).toISOString() });
    const probe = fake.requests.find((recorded) => recorded.path === '/version')!;
    assert.equal(probe.headers.authorization, `Bearer ${PROXY_SA_TOKEN}`, 'the probe uses the cluster credentials');
  });

  it('registers a cluster with a client certificate, and refuses a key that does not belong to the certificate', async () => {
    await register({ id: 'certs', server: 'https://10.0.0.1:6443', clientCert: b64(client.certPem), clientKey: b64(client.keyPem), insecureSkipTLSVerify: true }).expect(201);
    const stored = await h.store.getCluster('certs');
    assert.deepEqual(stored?.credentials, { kind: 'clientCertificate', certPem: client.certPem, keyPem: client.keyPem });
    const mismatch = await register({ id: 'mismatch', server: 'https://10.0.0.1', clientCert: b64(client.certPem), clientKey: b64(otherClient.keyPem) }).expect(400);
    assert.deepEqual(errorOf(mismatch.body), { code: 'BAD_REQUEST', message: 'clientKey does not belong to clientCert', field: 'clientKey' });
  });

  it('refuses bad input, naming the field', async () => {
    const good = { id: 'ok', server: 'https://10.0.0.1:6443', token: 't' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, id: '../x' }, 'id'],
      [{ ...good, id: 'a/b' }, 'id'],
      [{ ...good, id: 'Upper' }, 'id'],
      [{ ...good, id: 'x'.repeat(64) }, 'id'],
      [{ ...good, server: 'http://10.0.0.1' }, 'server'],
      [{ ...good, server: 'https://user:pw@10.0.0.1' }, 'server'],
      [{ ...good, server: 'https://10.0.0.1/?a=b' }, 'server'],
      [{ ...good, server: 'not a url' }, 'server'],
      [{ ...good, caData: 'not base64!' }, 'caData'],
      [{ ...good, caData: b64('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n') }, 'caData'],
      [{ ...good, caData: b64(client.keyPem) }, 'caData'],
      [{ ...good, token: 'has space' }, 'token'],
      [{ id: 'ok', server: 'https://10.0.0.1' }, 'token'],
      [{ ...good, clientCert: b64(client.certPem), clientKey: b64(client.keyPem) }, 'token'],
      [{ id: 'ok', server: 'https://10.0.0.1', clientCert: b64(client.certPem) }, 'clientKey'],
      [{ id: 'ok', server: 'https://10.0.0.1', clientKey: b64(client.keyPem) }, 'clientCert'],
      [{ ...good, caData: b64(fake.caPem), insecureSkipTLSVerify: true }, 'insecureSkipTLSVerify'],
      [{ ...good, ace: { enabled: true, fqdn: 'https://x' } }, 'ace.fqdn'],
      [{ ...good, ace: { enabled: true, nodes: [{ name: 'cp-1', address: 'a b' }] } }, 'ace.nodes[0].address'],
      [{ ...good, ace: { enabled: true, mode: 'oidc' } }, 'ace.mode'],
      [{ ...good, credentials: { kind: 'token', token: 'x' } }, 'credentials'],
    ];
    for (const [body, field] of cases) {
      const response = await register(body).expect(400);
      assert.equal(errorOf(response.body).field, field, JSON.stringify(body).slice(0, 120));
      assert.equal(errorOf(response.body).code, 'BAD_REQUEST');
    }
    assert.equal(await h.store.getCluster('ok'), undefined);
  });

  it('answers 409 CONFLICT for an ID in use', async () => {
    const response = await register({ id: 'prod', server: 'https://10.0.0.1', token: 't' }).expect(409);
    assert.equal(errorOf(response.body).code, 'CONFLICT');
  });

  it('lets only admins register clusters', async () => {
    const response = await register({ id: 'mine', server: 'https://10.0.0.1', token: 't' }, alice.token).expect(403);
    assert.equal(errorOf(response.body).code, 'FORBIDDEN');
  });

  it('lists the clusters a user may use, with their role; admins see all', async () => {
    await h.store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: alice.user.id, role: 'viewer' });
    await h.directory.refresh();
    const forAlice = await request(h.app).get('/v1/clusters').set(bearer(alice.token)).expect(200);
    assert.deepEqual((forAlice.body.items as Array<{ id: string; role: string }>).map((c) => [c.id, c.role]), [['prod', 'viewer']]);
    const forBob = await request(h.app).get('/v1/clusters').set(bearer(bob.token)).expect(200);
    assert.deepEqual(forBob.body.items, []);
    const forAdmin = await request(h.app).get('/v1/clusters').set(bearer(h.admin.token)).expect(200);
    assert.deepEqual((forAdmin.body.items as Array<{ id: string; role: string | null }>).map((c) => [c.id, c.role]), [['certs', 'owner'], ['prod', 'owner']]);
    assert.ok(!JSON.stringify(forAdmin.body).includes(PROXY_SA_TOKEN));
    assert.ok(!JSON.stringify(forAdmin.body).includes('PRIVATE KEY'));
  });

  it('answers 404 to a non-member for an existing cluster, exactly as for one that does not exist', async () => {
    const existing = await request(h.app).get('/v1/clusters/prod').set(bearer(bob.token)).expect(404);
    const missing = await request(h.app).get('/v1/clusters/nope').set(bearer(bob.token)).expect(404);
    assert.deepEqual(existing.body, missing.body);
    for (const id of ['%2e%2e', '..%2Fprod', 'PROD', 'prod%2F..', '%2e']) {
      await request(h.app).get(`/v1/clusters/${id}`).set(bearer(h.admin.token)).expect(404);
    }
  });

  it('shows a member the cluster with its status', async () => {
    const response = await request(h.app).get('/v1/clusters/prod').set(bearer(alice.token)).expect(200);
    assert.equal(response.body.role, 'viewer');
    assert.equal(typeof response.body.status.reachable, 'boolean');
  });

  it('changes a cluster (admins only), keeping what the patch does not name', async () => {
    await request(h.app).patch('/v1/clusters/prod').set(bearer(alice.token)).send({ displayName: 'x' }).expect(403);
    const response = await request(h.app)
      .patch('/v1/clusters/prod')
      .set(bearer(h.admin.token))
      .send({ displayName: 'Prod EU', ace: { enabled: true, mode: 'jwt', fqdn: 'prod.example.com:6443', nodes: [{ name: 'cp-1', address: '10.0.0.5' }] } })
      .expect(200);
    assert.equal(response.body.displayName, 'Prod EU');
    assert.deepEqual(response.body.ace, { enabled: true, mode: 'jwt', fqdn: 'prod.example.com:6443', nodes: [{ name: 'cp-1', address: '10.0.0.5' }] });
    const stored = await h.store.getCluster('prod');
    assert.equal(stored?.caPem, fake.caPem);
    assert.deepEqual(stored?.credentials, { kind: 'token', token: PROXY_SA_TOKEN });
    const contradiction = await request(h.app).patch('/v1/clusters/prod').set(bearer(h.admin.token)).send({ insecureSkipTLSVerify: true }).expect(400);
    assert.equal(errorOf(contradiction.body).field, 'insecureSkipTLSVerify');
    await request(h.app).patch('/v1/clusters/prod').set(bearer(h.admin.token)).send({ id: 'renamed' }).expect(400);
  });

  it('rotates credentials with a patch', async () => {
    await request(h.app).patch('/v1/clusters/certs').set(bearer(h.admin.token)).send({ token: 'rotated-token' }).expect(200);
    assert.deepEqual((await h.store.getCluster('certs'))?.credentials, { kind: 'token', token: 'rotated-token' });
  });

  it('shows an unreachable cluster as such, with a reason and no upstream detail', async () => {
    await register({ id: 'down', server: 'https://127.0.0.1:1', token: 't' }).expect(201);
    const status = await h.clusterStatus.probe('down');
    assert.equal(status?.reachable, false);
    const response = await request(h.app).get('/v1/clusters/down').set(bearer(h.admin.token)).expect(200);
    assert.equal(response.body.status.reachable, false);
    assert.match(response.body.status.error, /^the API server cannot be reached \(ECONNREFUSED\)$/);
  });

  it('deletes a cluster with its memberships and scoped tokens, and those tokens stop working at once', async () => {
    const scoped = await h.addToken(alice.user.id, { kind: 'kubeconfig', clusterId: 'prod' });
    assert.equal((await h.ctx.authenticator.authenticateToken(scoped)).outcome, 'authenticated');
    await request(h.app).delete('/v1/clusters/prod').set(bearer(alice.token)).expect(403);
    await request(h.app).delete('/v1/clusters/prod').set(bearer(h.admin.token)).expect(204);
    assert.equal((await h.ctx.authenticator.authenticateToken(scoped)).outcome, 'unauthenticated');
    assert.deepEqual(await h.store.listMemberships('prod'), []);
    await request(h.app).get('/v1/clusters/prod').set(bearer(h.admin.token)).expect(404);
    const forAlice = await request(h.app).get('/v1/clusters').set(bearer(alice.token)).expect(200);
    assert.deepEqual(forAlice.body.items, []);
  });
});
