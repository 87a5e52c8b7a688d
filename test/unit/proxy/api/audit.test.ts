import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { ApiAuditEvent } from '../../../../src/proxy/api/audit-event.js';
import { PASSWORD, bearer, startHarness } from './harness.js';
import type { Harness } from './harness.js';

const CLUSTER_TOKEN = 'cluster-credential-s3cret-0123456789';
const NEW_PASSWORD = 'a new and secret passphrase';
const USER_AGENT = 'kubegate-audit-test/1.0';

describe('the audit trail of the REST API (issue #15 G)', () => {
  let h: Harness;
  /** Every secret the actions below handle; none may appear in an audit event. */
  const secrets: string[] = [PASSWORD, NEW_PASSWORD, CLUSTER_TOKEN, 'wrong password!'];

  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  /** The events recorded while `act` ran. */
  async function eventsOf(act: () => Promise<unknown>): Promise<ApiAuditEvent[]> {
    const start = h.audit.length;
    await act();
    return h.audit.slice(start);
  }

  const api = () => request(h.app);

  it('records every login, successful or not, with the username attempted, the provider, the client address and user agent', async () => {
    const alice = await h.addUser('alice');
    secrets.push(alice.token.split(':')[1]!);
    const [failed] = await eventsOf(() => api().post('/v1/login').set('User-Agent', USER_AGENT).send({ provider: 'local', username: 'alice', password: 'wrong password!' }).expect(401));
    assert.equal(failed?.action, 'login');
    assert.equal(failed?.status, 401);
    assert.equal(failed?.code, 'LOGIN_FAILED');
    assert.equal(failed?.user, null);
    assert.deepEqual(failed?.target, { method: 'password', provider: 'local', username: 'alice' });
    assert.match(failed?.address ?? '', /127\.0\.0\.1/);
    assert.equal(failed?.userAgent, USER_AGENT);

    let token = '';
    const [succeeded] = await eventsOf(async () => {
      token = (await api().post('/v1/login').send({ provider: 'local', username: 'alice', password: PASSWORD }).expect(201)).body.token as string;
    });
    secrets.push(token.split(':')[1]!);
    assert.equal(succeeded?.action, 'login');
    assert.equal(succeeded?.status, 201);
    assert.equal(succeeded?.code, null);
    assert.equal(succeeded?.user, alice.user.id);
    assert.equal(succeeded?.tokenName, token.split(':')[0], 'the public name of the issued token');

    const [unknownProvider] = await eventsOf(() => api().post('/v1/login').send({ provider: 'nope', username: 'alice', password: PASSWORD }).expect(400));
    assert.equal(unknownProvider?.code, 'PROVIDER_UNKNOWN');
  });

  it('records each administrative action with who did it and what it was about, refusals included', async () => {
    const admin = h.admin;
    const bob = await h.addUser('bob');
    secrets.push(admin.token.split(':')[1]!, bob.token.split(':')[1]!);

    const created = await eventsOf(() => api().post('/v1/users').set(bearer(admin.token)).send({ username: 'carol', password: NEW_PASSWORD }).expect(201));
    const carolId = h.audit.at(-1)?.target['userId'] as string;
    const updated = await eventsOf(() => api().patch(`/v1/users/${carolId}`).set(bearer(admin.token)).send({ enabled: false, password: NEW_PASSWORD }).expect(200));
    const refused = await eventsOf(() => api().post('/v1/users').set(bearer(bob.token)).send({ username: 'dave', password: NEW_PASSWORD }).expect(403));
    const cluster = await eventsOf(() => api().post('/v1/clusters').set(bearer(admin.token)).send({ id: 'prod', server: 'https://10.0.0.1:6443', token: CLUSTER_TOKEN, insecureSkipTLSVerify: true }).expect(201));
    const patched = await eventsOf(() => api().patch('/v1/clusters/prod').set(bearer(admin.token)).send({ token: CLUSTER_TOKEN, displayName: 'Production' }).expect(200));
    const member = await eventsOf(() => api().post('/v1/clusters/prod/members').set(bearer(admin.token)).send({ kind: 'User', name: bob.user.id, role: 'member' }).expect(201));
    let apiToken = '';
    const tokenCreated = await eventsOf(async () => {
      apiToken = (await api().post('/v1/tokens').set(bearer(bob.token)).send({ description: 'ci' }).expect(201)).body.token as string;
    });
    secrets.push(apiToken.split(':')[1]!);
    let kubeconfig = '';
    const kubeconfigIssued = await eventsOf(async () => {
      kubeconfig = (await api().get('/v1/clusters/prod/kubeconfig').set(bearer(bob.token)).expect(200)).text;
    });
    const kubeconfigSecret = /token: t-[a-z2-7]+:([a-z2-7]+)/.exec(kubeconfig)?.[1];
    assert.ok(kubeconfigSecret);
    secrets.push(kubeconfigSecret);
    const revoked = await eventsOf(() => api().delete(`/v1/tokens/${apiToken.split(':')[0]}`).set(bearer(admin.token)).expect(204));
    const memberRemoved = await eventsOf(() => api().delete(`/v1/clusters/prod/members/User/${bob.user.id}`).set(bearer(admin.token)).expect(204));
    const limits = await eventsOf(() => api().delete('/v1/login-limits?username=alice').set(bearer(admin.token)).expect(204));
    const password = await eventsOf(() => api().post('/v1/me/password').set(bearer(bob.token)).send({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }).expect(204));
    const clusterDeleted = await eventsOf(() => api().delete('/v1/clusters/prod').set(bearer(admin.token)).expect(204));
    const userDeleted = await eventsOf(() => api().delete(`/v1/users/${carolId}`).set(bearer(admin.token)).expect(204));
    const anonymous = await eventsOf(() => api().delete(`/v1/users/${carolId}`).expect(401));

    const summary = (events: ApiAuditEvent[]) => events.map((event) => ({ action: event.action, user: event.user, status: event.status, code: event.code, target: event.target }));
    assert.deepEqual(summary(created), [{ action: 'user.create', user: admin.user.id, status: 201, code: null, target: { username: 'carol', globalRole: 'user', userId: carolId } }]);
    assert.deepEqual(summary(updated), [{ action: 'user.update', user: admin.user.id, status: 200, code: null, target: { userId: carolId, fields: ['enabled', 'password'], enabled: false } }]);
    assert.deepEqual(summary(refused), [{ action: 'user.create', user: bob.user.id, status: 403, code: 'FORBIDDEN', target: {} }]);
    assert.deepEqual(summary(cluster), [{ action: 'cluster.create', user: admin.user.id, status: 201, code: null, target: { clusterId: 'prod', fields: ['id', 'insecureSkipTLSVerify', 'server', 'token'] } }]);
    assert.deepEqual(summary(patched), [{ action: 'cluster.update', user: admin.user.id, status: 200, code: null, target: { clusterId: 'prod', fields: ['displayName', 'token'] } }]);
    assert.deepEqual(summary(member), [{ action: 'member.add', user: admin.user.id, status: 201, code: null, target: { clusterId: 'prod', kind: 'User', name: bob.user.id, role: 'member' } }]);
    assert.deepEqual(summary(tokenCreated), [{ action: 'token.create', user: bob.user.id, status: 201, code: null, target: { tokenName: apiToken.split(':')[0], kind: 'api', cluster: null, owner: bob.user.id } }]);
    assert.equal(kubeconfigIssued[0]?.action, 'kubeconfig.issue');
    assert.match(String(kubeconfigIssued[0]?.target['issuedTokenName']), /^t-[a-z2-7]{12}$/);
    assert.deepEqual(summary(revoked), [{ action: 'token.revoke', user: admin.user.id, status: 204, code: null, target: { tokenName: apiToken.split(':')[0], owner: bob.user.id } }]);
    assert.deepEqual(summary(memberRemoved), [{ action: 'member.remove', user: admin.user.id, status: 204, code: null, target: { clusterId: 'prod', kind: 'User', name: bob.user.id } }]);
    assert.deepEqual(summary(limits), [{ action: 'login-limits.reset', user: admin.user.id, status: 204, code: null, target: { username: 'alice', provider: null } }]);
    assert.deepEqual(summary(password), [{ action: 'me.password', user: bob.user.id, status: 204, code: null, target: { userId: bob.user.id } }]);
    assert.deepEqual(summary(clusterDeleted), [{ action: 'cluster.delete', user: admin.user.id, status: 204, code: null, target: { clusterId: 'prod' } }]);
    assert.deepEqual(summary(userDeleted), [{ action: 'user.delete', user: admin.user.id, status: 204, code: null, target: { userId: carolId } }]);
    assert.deepEqual(summary(anonymous), [{ action: 'user.delete', user: null, status: 401, code: 'UNAUTHENTICATED', target: { userId: carolId } }]);
  });

  it('records nothing for reads, and never a password, token secret or cluster credential', async () => {
    const reads = await eventsOf(async () => {
      await api().get('/v1/users').set(bearer(h.admin.token)).expect(200);
      await api().get('/v1/clusters').set(bearer(h.admin.token)).expect(200);
      await api().get('/v1/me').set(bearer(h.admin.token)).expect(200);
    });
    assert.deepEqual(reads, []);
    const everything = JSON.stringify(h.audit);
    assert.ok(h.audit.length >= 17);
    for (const secret of secrets) assert.ok(!everything.includes(secret), `a secret reached the audit trail: ${secret.slice(0, 4)}…`);
    assert.doesNotMatch(everything, /password"\s*:\s*"/i, 'no password field carries a value');
  });
});
