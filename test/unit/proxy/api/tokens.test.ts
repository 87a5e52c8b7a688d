import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { bearer, errorOf, startHarness } from './harness.js';
import type { Harness, TestUser } from './harness.js';

describe('API tokens', () => {
  let h: Harness;
  let alice: TestUser;
  let bob: TestUser;
  before(async () => {
    h = await startHarness();
    alice = await h.addUser('alice');
    bob = await h.addUser('bob');
    await h.store.createCluster({ id: 'prod', server: 'https://127.0.0.1:1', credentials: { kind: 'token', token: 'proxy-sa-token' } });
    await h.store.createCluster({ id: 'secret-lab', server: 'https://127.0.0.1:1', credentials: { kind: 'token', token: 'proxy-sa-token' } });
    await h.store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: alice.user.id, role: 'member' });
    await h.directory.refresh();
  });
  after(() => h.close());

  it('creates an api token whose secret is shown once and which works at once', async () => {
    const response = await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({ description: 'ci', ttl: '7d' }).expect(201);
    const { name, token, expiresAt, cluster } = response.body as { name: string; token: string; expiresAt: string; cluster: string | null };
    assert.equal(token.split(':')[0], name);
    assert.equal(Date.parse(expiresAt), h.clock.ms + 7 * 86_400_000);
    assert.equal(cluster, null);
    assert.equal(response.headers['cache-control'], 'no-store');
    const me = await request(h.app).get('/v1/me').set(bearer(token)).expect(200);
    assert.equal(me.body.id, alice.user.id);
    assert.equal(me.body.tokenName, name);
    const stored = await h.store.getToken(name);
    assert.equal(stored?.kind, 'api');
    assert.equal(stored?.description, 'ci');
  });

  it('uses the configured default lifetime and refuses one above the maximum', async () => {
    const response = await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({}).expect(201);
    assert.equal(Date.parse(response.body.expiresAt), h.clock.ms + 30 * 86_400_000);
    const long = await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({ ttl: '91d' }).expect(400);
    assert.equal(errorOf(long.body).code, 'TTL_TOO_LONG');
  });

  it('lists the caller own tokens without hashes or secrets', async () => {
    const created = await request(h.app).post('/v1/tokens').set(bearer(bob.token)).send({ description: 'listed' }).expect(201);
    const response = await request(h.app).get('/v1/tokens').set(bearer(bob.token)).expect(200);
    const items = response.body.items as Record<string, unknown>[];
    assert.deepEqual(items.map((item) => item['name']).sort(), [bob.token.split(':')[0], created.body.name].sort());
    const listed = items.find((item) => item['name'] === created.body.name)!;
    assert.deepEqual(Object.keys(listed).sort(), ['cluster', 'createdAt', 'description', 'expiresAt', 'kind', 'lastUsedAt', 'name', 'provider']);
    const text = JSON.stringify(response.body);
    assert.ok(!text.includes('$3:'), 'no hash');
    assert.ok(!text.includes((created.body.token as string).split(':')[1]!), 'no secret');
  });

  it("lets admins list another user's tokens, and nobody else", async () => {
    const asAdmin = await request(h.app).get('/v1/tokens').query({ userId: bob.user.id }).set(bearer(h.admin.token)).expect(200);
    assert.ok((asAdmin.body.items as unknown[]).length >= 1);
    const asAlice = await request(h.app).get('/v1/tokens').query({ userId: bob.user.id }).set(bearer(alice.token)).expect(403);
    assert.equal(errorOf(asAlice.body).code, 'FORBIDDEN');
  });

  it('revokes a token: the next request with it is 401, even though the cache held a success', async () => {
    const created = await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({}).expect(201);
    await request(h.app).get('/v1/me').set(bearer(created.body.token)).expect(200);
    await request(h.app).delete(`/v1/tokens/${created.body.name}`).set(bearer(alice.token)).expect(204);
    await request(h.app).get('/v1/me').set(bearer(created.body.token)).expect(401);
    assert.equal((await h.ctx.authenticator.authenticateToken(created.body.token)).outcome, 'unauthenticated');
  });

  it("answers 404 to a user deleting someone else's token, and leaves it working; admins may delete any", async () => {
    const created = await request(h.app).post('/v1/tokens').set(bearer(bob.token)).send({}).expect(201);
    const refused = await request(h.app).delete(`/v1/tokens/${created.body.name}`).set(bearer(alice.token)).expect(404);
    assert.equal(errorOf(refused.body).code, 'NOT_FOUND');
    await request(h.app).get('/v1/me').set(bearer(created.body.token)).expect(200);
    await request(h.app).delete(`/v1/tokens/${created.body.name}`).set(bearer(h.admin.token)).expect(204);
    await request(h.app).get('/v1/me').set(bearer(created.body.token)).expect(401);
  });

  it('answers 404 for token names that cannot be token names', async () => {
    for (const name of ['..', '%2e', 'ext%2Ft-abc', 'a%00b', 'x'.repeat(300)]) {
      await request(h.app).delete(`/v1/tokens/${name}`).set(bearer(alice.token)).expect(404);
    }
  });

  it('lets a logged-in user revoke the token in use (logout)', async () => {
    const token = await h.addToken(alice.user.id);
    await request(h.app).delete(`/v1/tokens/${token.split(':')[0]}`).set(bearer(token)).expect(204);
    await request(h.app).get('/v1/me').set(bearer(token)).expect(401);
  });

  it('creates a cluster-scoped token for a cluster the caller is a member of', async () => {
    const response = await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({ cluster: 'prod' }).expect(201);
    assert.equal(response.body.cluster, 'prod');
    const result = await h.ctx.authenticator.authenticateToken(response.body.token);
    assert.equal(result.outcome, 'authenticated');
    assert.equal(result.outcome === 'authenticated' && result.token.clusterId, 'prod');
  });

  it('answers 404 alike for an unknown cluster and one the caller is not a member of, so cluster IDs do not leak', async () => {
    const unknown = await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({ cluster: 'nope' }).expect(404);
    const hidden = await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({ cluster: 'secret-lab' }).expect(404);
    assert.deepEqual(unknown.body, hidden.body);
    assert.equal(errorOf(hidden.body).field, 'cluster');
    await request(h.app).post('/v1/tokens').set(bearer(alice.token)).send({ cluster: '../prod' }).expect(404);
    await request(h.app).post('/v1/tokens').set(bearer(h.admin.token)).send({ cluster: 'secret-lab' }).expect(201);
  });

  it('refuses a cluster-scoped token on the REST API, because it could otherwise mint itself an unscoped token', async () => {
    const scoped = await h.addToken(alice.user.id, { clusterId: 'prod', kind: 'kubeconfig' });
    const response = await request(h.app).post('/v1/tokens').set(bearer(scoped)).send({}).expect(403);
    assert.equal(errorOf(response.body).code, 'FORBIDDEN');
    assert.equal(response.headers['www-authenticate'], undefined, 'the token is good; asking for another would not help');
    await request(h.app).get('/v1/tokens').set(bearer(scoped)).expect(403);
    await request(h.app).get('/v1/clusters').set(bearer(scoped)).expect(403);
  });

  it('lets a cluster-scoped token read only who it is, so the exec plugin can check a cached token', async () => {
    const scoped = await h.addToken(alice.user.id, { clusterId: 'prod', kind: 'kubeconfig' });
    const me = await request(h.app).get('/v1/me').set(bearer(scoped)).expect(200);
    assert.equal(me.body.id, alice.user.id);
    assert.equal(me.body.cluster, 'prod');
    await request(h.app).post('/v1/me/password').set(bearer(scoped)).send({ currentPassword: 'x', newPassword: 'y' }).expect(403);
  });
});
