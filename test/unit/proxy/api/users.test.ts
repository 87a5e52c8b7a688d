import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { verifyPassword } from '../../../../src/auth/password.js';
import { newUserId } from '../../../../src/auth/user.js';
import { PASSWORD, bearer, errorOf, startHarness } from './harness.js';
import type { Harness } from './harness.js';

describe('GET /v1/me', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('describes the caller and the token in use', async () => {
    const alice = await h.addUser('alice');
    const response = await request(h.app).get('/v1/me').set(bearer(alice.token)).expect(200);
    assert.deepEqual(response.body, {
      id: alice.user.id,
      username: 'alice',
      displayName: 'alice',
      email: null,
      globalRole: 'user',
      groups: ['system:authenticated'],
      provider: 'local',
      tokenName: alice.token.split(':')[0],
      cluster: null,
    });
  });
});

describe('users administration', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('lets an admin create a local user who can then log in', async () => {
    const created = await request(h.app)
      .post('/v1/users')
      .set(bearer(h.admin.token))
      .send({ username: 'grace', password: 'a long enough password', displayName: 'Grace H.' })
      .expect(201);
    assert.deepEqual(Object.keys(created.body).sort(), ['id', 'username']);
    assert.match(created.body.id, /^u-[a-z2-7]{12}$/);
    await request(h.app).post('/v1/login').send({ provider: 'local', username: 'grace', password: 'a long enough password' }).expect(201);
    const stored = await h.store.getUser(created.body.id);
    assert.equal(stored?.displayName, 'Grace H.');
    assert.equal(stored?.globalRole, 'user');
  });

  it('answers 409 CONFLICT for a username that exists', async () => {
    const response = await request(h.app).post('/v1/users').set(bearer(h.admin.token)).send({ username: 'root', password: 'a long enough password' }).expect(409);
    assert.equal(errorOf(response.body).code, 'CONFLICT');
    assert.equal(errorOf(response.body).field, 'username');
  });

  it('records the e-mail address an admin vouches for, refuses a malformed or held one naming email, and clears it with null', async () => {
    const created = await request(h.app).post('/v1/users').set(bearer(h.admin.token)).send({ username: 'hedy', password: 'a long enough password', email: 'Hedy@Example.org' }).expect(201);
    assert.equal((await h.store.getUser(created.body.id))?.email, 'Hedy@example.org');
    for (const email of ['hedy', 'system:hedy@example.org', 'he dy@example.org', 42]) {
      const refused = await request(h.app).post('/v1/users').set(bearer(h.admin.token)).send({ username: 'hedy2', password: 'a long enough password', email }).expect(400);
      assert.equal(errorOf(refused.body).field, 'email', String(email));
    }
    const held = await request(h.app).post('/v1/users').set(bearer(h.admin.token)).send({ username: 'hedy2', password: 'a long enough password', email: 'HEDY@example.org' }).expect(409);
    assert.equal(errorOf(held.body).field, 'email');
    assert.equal(await h.store.getUserByUsername('hedy2'), undefined);
    const other = await request(h.app).post('/v1/users').set(bearer(h.admin.token)).send({ username: 'hedy3', password: 'a long enough password' }).expect(201);
    const taken = await request(h.app).patch(`/v1/users/${other.body.id}`).set(bearer(h.admin.token)).send({ email: 'hedy@EXAMPLE.org' }).expect(409);
    assert.equal(errorOf(taken.body).code, 'CONFLICT');
    const cleared = await request(h.app).patch(`/v1/users/${created.body.id}`).set(bearer(h.admin.token)).send({ email: null }).expect(200);
    assert.equal(cleared.body.email, null);
    const moved = await request(h.app).patch(`/v1/users/${other.body.id}`).set(bearer(h.admin.token)).send({ email: 'hedy@example.org' }).expect(200);
    assert.equal(moved.body.email, 'hedy@example.org');
  });

  it('enforces the minimum password length of the local provider, naming the field', async () => {
    const response = await request(h.app).post('/v1/users').set(bearer(h.admin.token)).send({ username: 'heidi', password: 'short' }).expect(400);
    assert.deepEqual(errorOf(response.body), { code: 'BAD_REQUEST', message: 'password must be at least 12 characters long', field: 'password' });
  });

  it('refuses usernames with spaces, slashes, control characters or over 64 characters', async () => {
    for (const username of ['a b', '../x', 'a/b', 'tab\there', '', '-lead', 'x'.repeat(65)]) {
      const response = await request(h.app).post('/v1/users').set(bearer(h.admin.token)).send({ username, password: 'a long enough password' }).expect(400);
      assert.equal(errorOf(response.body).field, 'username');
    }
  });

  it('decides admin by global role, not by name: a user called "admin" is refused, an admin called "ops" is not', async () => {
    const fake = await h.addUser('admin');
    const refused = await request(h.app).get('/v1/users').set(bearer(fake.token)).expect(403);
    assert.equal(errorOf(refused.body).code, 'FORBIDDEN');
    await request(h.app).post('/v1/users').set(bearer(fake.token)).send({ username: 'x1', password: 'a long enough password' }).expect(403);
    const ops = await h.addUser('ops', { globalRole: 'admin' });
    await request(h.app).get('/v1/users').set(bearer(ops.token)).expect(200);
  });

  it('lists users without password hashes', async () => {
    const response = await request(h.app).get('/v1/users').set(bearer(h.admin.token)).expect(200);
    const items = response.body.items as Record<string, unknown>[];
    assert.ok(items.some((user) => user['username'] === 'root' && user['globalRole'] === 'admin' && user['local'] === true));
    assert.ok(!JSON.stringify(response.body).includes('$scrypt$'));
    for (const user of items) assert.ok(!('passwordHash' in user));
  });

  it('answers 404 for user IDs that are not user IDs, whatever they look like', async () => {
    for (const id of ['..%2Fx', '%2e', 'u-AAAAAAAAAAAA', 'u-aaaaaaaaaaaa', 'root']) {
      const response = await request(h.app).get(`/v1/users/${id}`).set(bearer(h.admin.token)).expect(404);
      assert.equal(errorOf(response.body).code, 'NOT_FOUND');
    }
  });

  it('makes every token of a disabled user fail at once, even answers the cache holds, and works again when re-enabled', async () => {
    const ivan = await h.addUser('ivan');
    const second = await h.addToken(ivan.user.id);
    await request(h.app).get('/v1/me').set(bearer(ivan.token)).expect(200);
    await request(h.app).get('/v1/me').set(bearer(second)).expect(200);
    const disabled = await request(h.app).patch(`/v1/users/${ivan.user.id}`).set(bearer(h.admin.token)).send({ enabled: false }).expect(200);
    assert.equal(disabled.body.enabled, false);
    await request(h.app).get('/v1/me').set(bearer(ivan.token)).expect(401);
    await request(h.app).get('/v1/me').set(bearer(second)).expect(401);
    const cached = await h.ctx.authenticator.authenticateToken(second);
    assert.equal(cached.outcome, 'unauthenticated', 'the proxy path (the cache alone) refuses the token too');
    await request(h.app).patch(`/v1/users/${ivan.user.id}`).set(bearer(h.admin.token)).send({ enabled: true }).expect(200);
    await request(h.app).get('/v1/me').set(bearer(ivan.token)).expect(200);
  });

  it('changes the global role, and the new role counts on the next request', async () => {
    const judy = await h.addUser('judy');
    await request(h.app).get('/v1/users').set(bearer(judy.token)).expect(403);
    await request(h.app).patch(`/v1/users/${judy.user.id}`).set(bearer(h.admin.token)).send({ globalRole: 'admin' }).expect(200);
    await request(h.app).get('/v1/users').set(bearer(judy.token)).expect(200);
    await request(h.app).patch(`/v1/users/${judy.user.id}`).set(bearer(h.admin.token)).send({ globalRole: 'user' }).expect(200);
    await request(h.app).get('/v1/users').set(bearer(judy.token)).expect(403);
  });

  it('sets a new password with the policy applied', async () => {
    const ken = await h.addUser('ken');
    const short = await request(h.app).patch(`/v1/users/${ken.user.id}`).set(bearer(h.admin.token)).send({ password: 'short' }).expect(400);
    assert.equal(errorOf(short.body).field, 'password');
    await request(h.app).patch(`/v1/users/${ken.user.id}`).set(bearer(h.admin.token)).send({ password: 'the new long password' }).expect(200);
    await request(h.app).post('/v1/login').send({ provider: 'local', username: 'ken', password: 'the new long password' }).expect(201);
  });

  it('refuses unknown fields in a patch, e.g. an attempt to set the password hash', async () => {
    const ken = await h.store.getUserByUsername('ken');
    const response = await request(h.app).patch(`/v1/users/${ken!.id}`).set(bearer(h.admin.token)).send({ passwordHash: 'x' }).expect(400);
    assert.equal(errorOf(response.body).field, 'passwordHash');
  });

  it('deletes a user, and their tokens stop working at once', async () => {
    const leo = await h.addUser('leo');
    await request(h.app).get('/v1/me').set(bearer(leo.token)).expect(200);
    await request(h.app).delete(`/v1/users/${leo.user.id}`).set(bearer(h.admin.token)).expect(204);
    await request(h.app).get('/v1/me').set(bearer(leo.token)).expect(401);
    await request(h.app).get(`/v1/users/${leo.user.id}`).set(bearer(h.admin.token)).expect(404);
  });
});

describe('the last enabled admin', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('cannot be disabled, demoted or deleted (LAST_ADMIN), because nobody could administer kubegate afterwards', async () => {
    const id = h.admin.user.id;
    for (const patch of [{ enabled: false }, { globalRole: 'user' }]) {
      const response = await request(h.app).patch(`/v1/users/${id}`).set(bearer(h.admin.token)).send(patch).expect(409);
      assert.equal(errorOf(response.body).code, 'LAST_ADMIN');
    }
    await request(h.app).delete(`/v1/users/${id}`).set(bearer(h.admin.token)).expect(409);
    await h.addUser('second', { globalRole: 'admin' });
    await request(h.app).patch(`/v1/users/${id}`).set(bearer(h.admin.token)).send({ globalRole: 'user' }).expect(200);
  });
});

describe('POST /v1/me/password', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ loginRateLimit: { maxFailures: 2, maxFailuresPerAddress: 3, windowSeconds: 60 } });
  });
  after(() => h.close());

  it('changes the own password when the current one is right', async () => {
    const mia = await h.addUser('mia');
    await request(h.app).post('/v1/me/password').set(bearer(mia.token)).send({ currentPassword: PASSWORD, newPassword: 'a brand new password' }).expect(204);
    const stored = await h.store.getUser(mia.user.id);
    assert.ok(await verifyPassword('a brand new password', stored!.passwordHash!));
    await request(h.app).post('/v1/login').send({ provider: 'local', username: 'mia', password: 'a brand new password' }).expect(201);
  });

  it('refuses a wrong current password, and limits guesses like logins, because a stolen token must not become a password oracle', async () => {
    const nick = await h.addUser('nick');
    const wrong = await request(h.app).post('/v1/me/password').set(bearer(nick.token)).send({ currentPassword: 'guess number one', newPassword: 'a brand new password' }).expect(403);
    assert.equal(errorOf(wrong.body).field, 'currentPassword');
    await request(h.app).post('/v1/me/password').set(bearer(nick.token)).send({ currentPassword: 'guess number two', newPassword: 'a brand new password' }).expect(403);
    const limited = await request(h.app).post('/v1/me/password').set(bearer(nick.token)).send({ currentPassword: PASSWORD, newPassword: 'a brand new password' }).expect(429);
    assert.equal(errorOf(limited.body).code, 'LOGIN_RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) > 0);
  });

  it('lets an admin change the password with a valid token after an attacker filled the login limits of the username and the address', async () => {
    const boss = await h.addUser('boss', { globalRole: 'admin' });
    for (let i = 0; i < 3; i++) await request(h.app).post('/v1/login').send({ provider: 'local', username: 'boss', password: `attacker guess ${i}` });
    await request(h.app).post('/v1/login').send({ provider: 'local', username: 'boss', password: PASSWORD }).expect(429);
    await request(h.app).post('/v1/me/password').set(bearer(boss.token)).send({ currentPassword: PASSWORD, newPassword: 'a brand new password' }).expect(204);
  });

  it('counts wrong current passwords per user, so one user guessing does not block another', async () => {
    const pia = await h.addUser('pia');
    const quinn = await h.addUser('quinn');
    for (let i = 0; i < 2; i++) await request(h.app).post('/v1/me/password').set(bearer(pia.token)).send({ currentPassword: `guess ${i} is wrong`, newPassword: 'a brand new password' }).expect(403);
    await request(h.app).post('/v1/me/password').set(bearer(pia.token)).send({ currentPassword: PASSWORD, newPassword: 'a brand new password' }).expect(429);
    await request(h.app).post('/v1/me/password').set(bearer(quinn.token)).send({ currentPassword: PASSWORD, newPassword: 'a brand new password' }).expect(204);
  });

  it('enforces the policy on the new password', async () => {
    h.clock.advance(61_000);
    const olga = await h.addUser('olga');
    const response = await request(h.app).post('/v1/me/password').set(bearer(olga.token)).send({ currentPassword: PASSWORD, newPassword: 'short' }).expect(400);
    assert.equal(errorOf(response.body).field, 'newPassword');
  });

  it('refuses users without a local password', async () => {
    const user = await h.store.createUser({ id: newUserId(), username: 'ldap-person', passwordHash: null });
    const token = await h.addToken(user.id);
    const response = await request(h.app).post('/v1/me/password').set(bearer(token)).send({ currentPassword: 'x', newPassword: 'a brand new password' }).expect(403);
    assert.equal(errorOf(response.body).code, 'FORBIDDEN');
  });
});
