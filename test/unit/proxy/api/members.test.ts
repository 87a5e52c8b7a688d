import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { newUserId } from '../../../../src/auth/user.js';
import { bearer, errorOf, startHarness } from './harness.js';
import type { Harness, TestUser } from './harness.js';

describe('cluster members', () => {
  let h: Harness;
  let owner: TestUser;
  let member: TestUser;
  let outsider: TestUser;
  before(async () => {
    h = await startHarness();
    owner = await h.addUser('owner');
    member = await h.addUser('member');
    outsider = await h.addUser('outsider');
    await h.store.createCluster({ id: 'dev', server: 'https://10.0.0.1:6443', credentials: { kind: 'token', token: 'sa' } });
    await h.store.putMembership({ clusterId: 'dev', subjectKind: 'User', subjectName: owner.user.id, role: 'owner' });
    await h.directory.refresh();
  });
  after(() => h.close());

  const add = (token: string, body: Record<string, unknown>, cluster = 'dev') => request(h.app).post(`/v1/clusters/${cluster}/members`).set(bearer(token)).send(body);

  it('lets the owner add a user, who can then see the cluster at once', async () => {
    await request(h.app).get('/v1/clusters/dev').set(bearer(member.token)).expect(404);
    const response = await add(owner.token, { kind: 'User', name: member.user.id, role: 'member' }).expect(201);
    assert.deepEqual(response.body, { kind: 'User', name: member.user.id, role: 'member', createdAt: response.body.createdAt });
    const seen = await request(h.app).get('/v1/clusters/dev').set(bearer(member.token)).expect(200);
    assert.equal(seen.body.role, 'member');
  });

  it('lets a member list the members, but not change them (403); a non-member gets 404', async () => {
    const list = await request(h.app).get('/v1/clusters/dev/members').set(bearer(member.token)).expect(200);
    assert.deepEqual((list.body.items as Array<{ name: string }>).map((m) => m.name).sort(), [member.user.id, owner.user.id].sort());
    const refused = await add(member.token, { kind: 'User', name: outsider.user.id, role: 'owner' }).expect(403);
    assert.equal(errorOf(refused.body).code, 'FORBIDDEN');
    await add(outsider.token, { kind: 'User', name: outsider.user.id, role: 'owner' }).expect(404);
    await request(h.app).get('/v1/clusters/dev/members').set(bearer(outsider.token)).expect(404);
  });

  it('lets an admin who is not a member change members', async () => {
    await add(h.admin.token, { kind: 'Group', name: 'github:acme/sre', role: 'viewer' }).expect(201);
  });

  it('requires a User member to be the ID of an existing user', async () => {
    for (const name of ['member', 'u-zzzzzzzzzzzz', '../x']) {
      const response = await add(owner.token, { kind: 'User', name, role: 'member' }).expect(400);
      assert.deepEqual(errorOf(response.body), { code: 'BAD_REQUEST', message: 'name must be the ID of an existing user', field: 'name' });
    }
  });

  it('refuses system: groups, because such a membership would grant the cluster to everyone authenticated', async () => {
    for (const name of ['system:authenticated', ' System:masters']) {
      const response = await add(owner.token, { kind: 'Group', name, role: 'member' }).expect(400);
      assert.equal(errorOf(response.body).code, 'IDENTITY_NAME_RESERVED');
      assert.equal(errorOf(response.body).field, 'name');
    }
    const control = await add(owner.token, { kind: 'Group', name: 'a\nb', role: 'member' }).expect(400);
    assert.equal(errorOf(control.body).code, 'IDENTITY_NAME_INVALID');
  });

  it('refuses unknown kinds and roles', async () => {
    assert.equal(errorOf((await add(owner.token, { kind: 'ServiceAccount', name: 'x', role: 'member' }).expect(400)).body).field, 'kind');
    assert.equal(errorOf((await add(owner.token, { kind: 'Group', name: 'x', role: 'admin' }).expect(400)).body).field, 'role');
  });

  it('grants the cluster through a group the user has', async () => {
    const user = await h.store.createUser({ id: newUserId(), username: 'in-group' });
    await h.store.putUserGroups({ userId: user.id, provider: 'local', groups: ['local:devs'], refreshedAt: new Date() });
    const token = await h.addToken(user.id);
    await request(h.app).get('/v1/clusters/dev').set(bearer(token)).expect(404);
    await add(owner.token, { kind: 'Group', name: 'local:devs', role: 'viewer' }).expect(201);
    const seen = await request(h.app).get('/v1/clusters/dev').set(bearer(token)).expect(200);
    assert.equal(seen.body.role, 'viewer');
  });

  it('removes members, with group names percent-encoded in the path, and answers 404 for one that does not exist', async () => {
    await request(h.app).delete(`/v1/clusters/dev/members/Group/${encodeURIComponent('github:acme/sre')}`).set(bearer(owner.token)).expect(204);
    await request(h.app).delete(`/v1/clusters/dev/members/Group/${encodeURIComponent('github:acme/sre')}`).set(bearer(owner.token)).expect(404);
    await request(h.app).delete(`/v1/clusters/dev/members/Robot/x`).set(bearer(owner.token)).expect(404);
    await request(h.app).delete(`/v1/clusters/dev/members/Group/a%00b`).set(bearer(owner.token)).expect(404);
    await request(h.app).delete(`/v1/clusters/dev/members/User/${member.user.id}`).set(bearer(member.token)).expect(403);
    await request(h.app).delete(`/v1/clusters/dev/members/User/${member.user.id}`).set(bearer(owner.token)).expect(204);
    await request(h.app).get('/v1/clusters/dev').set(bearer(member.token)).expect(404);
  });
});
