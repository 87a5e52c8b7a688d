import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KubegateError, isKubegateError } from '../../../src/errors.js';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import type { AuthenticateOptions, AuthResult, TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { unionAuthenticator } from '../../../src/auth/union.js';
import { makeUserInfo } from '../../../src/auth/user.js';

/** A member that answers a fixed result (or throws) and records its calls. */
function member(answer: AuthResult | (() => never)): TokenAuthenticator & { calls: Array<{ token: string; options: AuthenticateOptions | undefined }> } {
  const calls: Array<{ token: string; options: AuthenticateOptions | undefined }> = [];
  return {
    calls,
    async authenticateToken(token, options) {
      calls.push({ token, options });
      if (typeof answer === 'function') answer();
      return answer as AuthResult;
    },
  };
}

const alice = authenticated(makeUserInfo({ name: 'u-aaaaaaaaaaaa' }), { name: 't-a', expiresAt: null, clusterId: null });
const bob = authenticated(makeUserInfo({ name: 'u-bbbbbbbbbbbb' }), { name: 't-b', expiresAt: null, clusterId: null });
const storeDown = new KubegateError('STORE_UNAVAILABLE');
const ldapDown = new KubegateError('PROVIDER_UNAVAILABLE');

describe('unionAuthenticator', () => {
  it('answers with the first member that authenticates and does not ask the rest', async () => {
    const first = member(unauthenticated('TOKEN_INVALID'));
    const second = member(alice);
    const third = member(bob);
    const result = await unionAuthenticator([first, second, third]).authenticateToken('tok');
    assert.equal(result, alice);
    assert.equal(first.calls.length, 1);
    assert.equal(third.calls.length, 0);
  });

  it('passes token and audiences to every member it asks', async () => {
    const first = member(unauthenticated('TOKEN_INVALID'));
    const second = member(unauthenticated('TOKEN_INVALID'));
    await unionAuthenticator([first, second]).authenticateToken('tok', { audiences: ['api'] });
    assert.deepEqual(first.calls, [{ token: 'tok', options: { audiences: ['api'] } }]);
    assert.deepEqual(second.calls, first.calls);
  });

  it('lets a later success win over an earlier error, as kube-apiserver’s union does', async () => {
    const result = await unionAuthenticator([member(undecided(storeDown)), member(alice)]).authenticateToken('tok');
    assert.equal(result, alice);
  });

  it('answers error, not unauthenticated, when nobody authenticates and one member could not decide, because an outage is not a rejection', async () => {
    const result = await unionAuthenticator([member(unauthenticated('TOKEN_INVALID')), member(undecided(storeDown))]).authenticateToken('tok');
    assert.equal(result.outcome, 'error');
    assert.equal(result.outcome === 'error' && result.error, storeDown);
  });

  it('collects several errors into AUTH_UNDECIDED with all of them, in order, as cause', async () => {
    const result = await unionAuthenticator([
      member(undecided(storeDown)),
      member(unauthenticated('TOKEN_INVALID')),
      member(undecided(ldapDown)),
    ]).authenticateToken('tok');
    assert.equal(result.outcome, 'error');
    if (result.outcome !== 'error') return;
    assert.ok(isKubegateError(result.error, 'AUTH_UNDECIDED'));
    const cause = result.error.cause;
    assert.ok(cause instanceof AggregateError);
    assert.deepEqual(cause.errors, [storeDown, ldapDown]);
  });

  it('turns a member that throws into an error outcome, so a bug in one provider cannot crash the request', async () => {
    const boom = new Error('boom');
    const result = await unionAuthenticator([member(() => { throw boom; }), member(unauthenticated('TOKEN_INVALID'))]).authenticateToken('tok');
    assert.equal(result.outcome, 'error');
    if (result.outcome !== 'error') return;
    assert.ok(isKubegateError(result.error, 'INTERNAL'));
    assert.equal(result.error.cause, boom);
    assert.ok(!result.error.message.includes('boom'), 'the error message must not leak the thrown message');
  });

  it('keeps a thrown KubegateError as it is', async () => {
    const result = await unionAuthenticator([member(() => { throw ldapDown; })]).authenticateToken('tok');
    assert.equal(result.outcome === 'error' && result.error, ldapDown);
  });

  it('turns a synchronous throw and an answer without an outcome into errors as well', async () => {
    const throwsSync: TokenAuthenticator = {
      authenticateToken() {
        throw new TypeError('sync');
      },
    };
    const answersNothing: TokenAuthenticator = { authenticateToken: async () => undefined as unknown as AuthResult };
    for (const bad of [throwsSync, answersNothing]) {
      const result = await unionAuthenticator([bad]).authenticateToken('tok');
      assert.equal(result.outcome, 'error');
    }
  });

  it('prefers the code of a member that recognised the token format over TOKEN_MALFORMED', async () => {
    const result = await unionAuthenticator([
      member(unauthenticated('TOKEN_MALFORMED')),
      member(unauthenticated('TOKEN_EXPIRED')),
      member(unauthenticated('TOKEN_INVALID')),
    ]).authenticateToken('tok');
    assert.deepEqual(result, unauthenticated('TOKEN_EXPIRED'));
  });

  it('answers TOKEN_MALFORMED when every member found the token malformed', async () => {
    const result = await unionAuthenticator([member(unauthenticated('TOKEN_MALFORMED')), member(unauthenticated('TOKEN_MALFORMED'))]).authenticateToken('x');
    assert.deepEqual(result, unauthenticated('TOKEN_MALFORMED'));
  });

  it('is not affected by later changes to the array it was built from', async () => {
    const members: TokenAuthenticator[] = [member(unauthenticated('TOKEN_INVALID'))];
    const union = unionAuthenticator(members);
    members.push(member(alice));
    assert.equal((await union.authenticateToken('tok')).outcome, 'unauthenticated');
  });

  it('refuses to be built without members, a configuration mistake', () => {
    assert.throws(() => unionAuthenticator([]), TypeError);
  });
});
