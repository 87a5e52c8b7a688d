/**
 * The webhook's secret checks (src/webhook/slow-hashes.ts): a `$1` (scrypt) match is derived
 * once per secret and stored hash, concurrent checks share one derivation, and nothing else is
 * remembered — proven by counting node:crypto's scrypt calls, never by timings.
 */
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import type { ClusterAuthToken, ClusterUserAttribute } from '../../../src/kube/rancher.js';
import { hashSecretWith, prepareHash } from '../../../src/tokens/hash.js';
import type { PreparedHash } from '../../../src/tokens/hash.js';
import { createSecretChecker } from '../../../src/webhook/slow-hashes.js';
import { createWebhookVerifier } from '../../../src/webhook/verify.js';
import { scryptCallsDuring } from '../../support/scrypt-calls.js';

describe('webhook secret checks', () => {
  it('derives a $1 match once per secret and hash, and answers it again without scrypt', async () => {
    const checker = createSecretChecker();
    const prepared = prepareHash(await hashSecretWith(1, 'se:cret'));
    assert.equal(await scryptCallsDuring(async () => assert.equal(await checker.check('se:cret', prepared), true)), 1);
    assert.equal(await scryptCallsDuring(async () => assert.equal(await checker.check('se:cret', prepared), true)), 0);
  });

  it('shares one scrypt among concurrent checks of one secret against one hash', async () => {
    const checker = createSecretChecker();
    const prepared = prepareHash(await hashSecretWith(1, 'se:cret'));
    const calls = await scryptCallsDuring(async () => {
      const results = await Promise.all(Array.from({ length: 5 }, () => checker.check('se:cret', prepared)));
      assert.deepEqual(results, [true, true, true, true, true]);
    });
    assert.equal(calls, 1);
  });

  it('checks a wrong secret every time, so that guesses cost what they did and are not remembered', async () => {
    const checker = createSecretChecker();
    const prepared = prepareHash(await hashSecretWith(1, 'se:cret'));
    await checker.check('se:cret', prepared);
    const calls = await scryptCallsDuring(async () => {
      assert.equal(await checker.check('wrong', prepared), false);
      assert.equal(await checker.check('wrong', prepared), false);
      assert.equal(await checker.check('se:cret2', prepared), false);
    });
    assert.equal(calls, 3);
    assert.equal(await checker.check('se:cret', prepared), true);
  });

  it('remembers a match per hash object: a new hash (a changed Secret) is derived again, even for the same text', async () => {
    const checker = createSecretChecker();
    const stored = await hashSecretWith(1, 'se:cret');
    await checker.check('se:cret', prepareHash(stored));
    assert.equal(await scryptCallsDuring(async () => assert.equal(await checker.check('se:cret', prepareHash(stored)), true)), 1);
    const other = prepareHash(await hashSecretWith(1, 'other'));
    assert.equal(await scryptCallsDuring(async () => assert.equal(await checker.check('se:cret', other), false)), 1);
  });

  it('answers $2/$3 hashes and malformed ones exactly as verifyPrepared does, remembering nothing', async () => {
    const checker = createSecretChecker();
    for (const version of [2, 3] as const) {
      const prepared = prepareHash(await hashSecretWith(version, 'se:cret'));
      assert.equal(await checker.check('se:cret', prepared), true);
      assert.equal(await checker.check('wrong', prepared), false);
    }
    await assert.rejects(checker.check('se:cret', prepareHash('$1:zz:15:8:1:AAAA')), /HASH_MALFORMED|malformed/);
    await assert.rejects(checker.check('se:cret', prepareHash('$9:x')), /unsupported/);
  });

  it('lets a failed derivation be retried, and a failure is never remembered as a match', async () => {
    const checker = createSecretChecker();
    const prepared = prepareHash(await hashSecretWith(1, 'se:cret'));
    const spy = mock.method(crypto, 'scrypt', (...args: unknown[]) => (args.at(-1) as (error: Error) => void)(new Error('thread pool broke')));
    syncBuiltinESMExports();
    try {
      await assert.rejects(checker.check('se:cret', prepared));
    } finally {
      spy.mock.restore();
      syncBuiltinESMExports();
    }
    assert.equal(await scryptCallsDuring(async () => assert.equal(await checker.check('se:cret', prepared), true)), 1);
  });
});

describe('webhook verification of a $1 token', () => {
  it('costs one scrypt however often the token is reviewed, while the token and user are still read on every review', async () => {
    const hash = prepareHash(await hashSecretWith(1, 'se:cret'));
    const tokens = new Map<string, ClusterAuthToken>([['t-1', { metadata: { name: 't-1' }, userName: 'u-1', enabled: true }]]);
    const attributes = new Map<string, ClusterUserAttribute>([['u-1', { metadata: { name: 'u-1' }, groups: ['g'], enabled: true }]]);
    const verifier = createWebhookVerifier({
      source: { ready: true, clusterAuthToken: (name) => tokens.get(name), clusterUserAttribute: (name) => attributes.get(name), secretHash: (name) => (name === 't-1' ? hash : undefined) },
    });
    const calls = await scryptCallsDuring(async () => {
      assert.equal((await verifier.authenticateToken('t-1:se:cret')).outcome, 'authenticated');
      assert.equal((await verifier.authenticateToken('t-1:se:cret', { audiences: ['a'] })).outcome, 'authenticated');
      tokens.set('t-1', { metadata: { name: 't-1' }, userName: 'u-1', enabled: false });
      assert.deepEqual(await verifier.authenticateToken('t-1:se:cret'), { outcome: 'unauthenticated', code: 'TOKEN_DISABLED' });
      tokens.set('t-1', { metadata: { name: 't-1' }, userName: 'u-1', enabled: true });
      attributes.set('u-1', { metadata: { name: 'u-1' }, groups: ['g'], enabled: false });
      assert.deepEqual(await verifier.authenticateToken('t-1:se:cret'), { outcome: 'unauthenticated', code: 'USER_DISABLED' });
    });
    assert.equal(calls, 1);
  });

  it('decides on the objects as they are when the scrypt ends: a token disabled meanwhile is refused, a hash changed or a token deleted meanwhile is undecided', async () => {
    const first = prepareHash(await hashSecretWith(1, 'se:cret'));
    const enabled: ClusterAuthToken = { metadata: { name: 't-1' }, userName: 'u-1', enabled: true };
    const cases: Array<[string, (state: { token: ClusterAuthToken | undefined; hash: PreparedHash }) => void, string]> = [
      ['disabled', (state) => void (state.token = { ...enabled, enabled: false }), 'unauthenticated'],
      ['stamped (lastUsedAt only)', (state) => void (state.token = { ...enabled, lastUsedAt: '2025-01-01T00:00:00Z' }), 'authenticated'],
      ['hash changed', (state) => void (state.hash = prepareHash('$3:1:c2FsdA:' + 'A'.repeat(86))), 'error'],
      ['deleted', (state) => void (state.token = undefined), 'error'],
    ];
    for (const [what, change, outcome] of cases) {
      const state: { token: ClusterAuthToken | undefined; hash: PreparedHash } = { token: enabled, hash: first };
      const verifier = createWebhookVerifier({
        source: { ready: true, clusterAuthToken: () => state.token, clusterUserAttribute: () => ({ metadata: { name: 'u-1' }, enabled: true }), secretHash: () => state.hash },
      });
      const real = crypto.scrypt;
      const spy = mock.method(crypto, 'scrypt', (...args: Parameters<typeof crypto.scrypt>) => {
        change(state);
        (real as (...all: unknown[]) => void)(...args);
      });
      syncBuiltinESMExports();
      try {
        const result = await verifier.authenticateToken('t-1:se:cret');
        assert.equal(result.outcome, outcome, what);
        assert.equal(spy.mock.callCount(), 1);
      } finally {
        spy.mock.restore();
        syncBuiltinESMExports();
      }
    }
  });

  it('parses a deprecated $1 hash field once per version of the token, so that its scrypt is remembered too', async () => {
    let token: ClusterAuthToken = { metadata: { name: 't-1' }, userName: 'u-1', enabled: true, hash: await hashSecretWith(1, 'se:cret') };
    const verifier = createWebhookVerifier({
      source: { ready: true, clusterAuthToken: () => token, clusterUserAttribute: () => ({ metadata: { name: 'u-1' }, enabled: true }), secretHash: () => undefined },
    });
    const calls = await scryptCallsDuring(async () => {
      for (let i = 0; i < 3; i++) assert.equal((await verifier.authenticateToken('t-1:se:cret')).outcome, 'authenticated');
    });
    assert.equal(calls, 1);
    token = { ...token, hash: await hashSecretWith(1, 'new') };
    assert.equal(await scryptCallsDuring(async () => assert.equal((await verifier.authenticateToken('t-1:se:cret')).outcome, 'unauthenticated')), 1);
  });
});
