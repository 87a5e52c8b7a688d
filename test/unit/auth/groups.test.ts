import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KubegateError } from '../../../src/errors.js';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import type { AuthResult, TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { withAuthenticatedGroup } from '../../../src/auth/groups.js';
import { SYSTEM_AUTHENTICATED, makeUserInfo } from '../../../src/auth/user.js';

function fixed(result: AuthResult): TokenAuthenticator {
  return { authenticateToken: async () => result };
}

const facts = { name: 't-a', expiresAt: null, clusterId: 'c-1' };

describe('withAuthenticatedGroup', () => {
  it('adds system:authenticated after the provider groups and keeps the token facts', async () => {
    const user = makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: ['ldap:ops'], extra: { 'kubegate.io/provider': ['ldap'] } });
    const result = await withAuthenticatedGroup(fixed(authenticated(user, facts))).authenticateToken('tok');
    assert.equal(result.outcome, 'authenticated');
    if (result.outcome !== 'authenticated') return;
    assert.deepEqual(result.user.groups, ['ldap:ops', SYSTEM_AUTHENTICATED]);
    assert.deepEqual(result.user.extra, user.extra);
    assert.equal(result.user.name, user.name);
    assert.deepEqual(result.token, facts);
  });

  it('copies the user and never mutates it, because a cache may share it between requests', async () => {
    const user = makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: ['ldap:ops'] });
    const result = await withAuthenticatedGroup(fixed(authenticated(user, facts))).authenticateToken('tok');
    assert.deepEqual(user.groups, ['ldap:ops']);
    assert.ok(result.outcome === 'authenticated' && result.user !== user && Object.isFrozen(result.user));
  });

  it('does not add the group twice when the user already has it', async () => {
    const user = makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: [SYSTEM_AUTHENTICATED] });
    const answer = authenticated(user, facts);
    assert.equal(await withAuthenticatedGroup(fixed(answer)).authenticateToken('tok'), answer);
  });

  it('hands out the same copy for the same cached user, so the hot path does not allocate a user per request', async () => {
    const user = makeUserInfo({ name: 'u-aaaaaaaaaaaa' });
    const decorated = withAuthenticatedGroup(fixed(authenticated(user, facts)));
    const first = await decorated.authenticateToken('tok');
    const second = await decorated.authenticateToken('tok');
    assert.ok(first.outcome === 'authenticated' && second.outcome === 'authenticated');
    assert.equal(first.user, second.user);
  });

  it('passes unauthenticated and error answers through untouched', async () => {
    const rejected = unauthenticated('TOKEN_INVALID');
    const failed = undecided(new KubegateError('STORE_UNAVAILABLE'));
    assert.equal(await withAuthenticatedGroup(fixed(rejected)).authenticateToken('tok'), rejected);
    assert.equal(await withAuthenticatedGroup(fixed(failed)).authenticateToken('tok'), failed);
  });

  it('turns a throwing inner authenticator into an error outcome', async () => {
    const throwing: TokenAuthenticator = { authenticateToken: async () => { throw new Error('boom'); } };
    assert.equal((await withAuthenticatedGroup(throwing).authenticateToken('tok')).outcome, 'error');
  });
});
