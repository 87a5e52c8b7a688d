import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KubegateError } from '../../../src/errors.js';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import type { AuthenticateOptions, AuthResult, TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { cacheKeyFor, cachedAuthenticator, newCacheKeySecrets } from '../../../src/auth/cached.js';
import type { CachedAuthenticatorOptions } from '../../../src/auth/cached.js';
import { makeUserInfo } from '../../../src/auth/user.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');

/** Our own small double of the inner authenticator: answers via `answer` and counts calls. */
class ScriptedAuthenticator implements TokenAuthenticator {
  readonly calls: Array<{ token: string; audiences: readonly string[] | undefined }> = [];
  constructor(public answer: (token: string) => AuthResult | Promise<AuthResult>) {}

  async authenticateToken(token: string, options?: AuthenticateOptions): Promise<AuthResult> {
    this.calls.push({ token, audiences: options?.audiences });
    return this.answer(token);
  }
}

class Clock {
  ms = T0;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function success(tokenName: string, userId = 'u-aaaaaaaaaaaa', expiresAt: Date | null = null): AuthResult {
  return authenticated(makeUserInfo({ name: userId, groups: ['local:dev'] }), { name: tokenName, expiresAt, clusterId: null });
}

/** An inner authenticator that knows `tokens` (token → user ID) and rejects the rest. */
function directory(tokens: Record<string, string>, expiresAt: Date | null = null): ScriptedAuthenticator {
  return new ScriptedAuthenticator((token) => {
    const userId = tokens[token];
    return userId === undefined ? unauthenticated('TOKEN_INVALID') : success(token.split(':')[0]!, userId, expiresAt);
  });
}

function setUp(inner: TokenAuthenticator, options: Partial<CachedAuthenticatorOptions> = {}) {
  const clock = new Clock();
  const cache = cachedAuthenticator(inner, { successTtlMs: 60_000, failureTtlMs: 5_000, maxEntries: 100, now: clock.now, ...options });
  return { clock, cache };
}

describe('cachedAuthenticator: TTLs', () => {
  it('answers a repeated success from the cache until successTtlMs has passed', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' });
    const { clock, cache } = setUp(inner);
    const first = await cache.authenticateToken('t-a:s');
    clock.advance(59_999);
    const second = await cache.authenticateToken('t-a:s');
    assert.equal(inner.calls.length, 1);
    assert.deepEqual(second, first);
    clock.advance(1);
    await cache.authenticateToken('t-a:s');
    assert.equal(inner.calls.length, 2);
    assert.deepEqual(cache.stats(), { hits: 1, misses: 2, sharedLookups: 0, entries: 1 });
  });

  it('keeps rejections for failureTtlMs, separately from successes', async () => {
    const inner = directory({});
    const { clock, cache } = setUp(inner);
    assert.deepEqual(await cache.authenticateToken('t-a:wrong'), unauthenticated('TOKEN_INVALID'));
    clock.advance(4_999);
    await cache.authenticateToken('t-a:wrong');
    assert.equal(inner.calls.length, 1);
    clock.advance(1);
    await cache.authenticateToken('t-a:wrong');
    assert.equal(inner.calls.length, 2);
  });

  it('never keeps a success past the token’s expiresAt, even when successTtlMs is longer', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' }, new Date(T0 + 10_000));
    const { clock, cache } = setUp(inner);
    await cache.authenticateToken('t-a:s');
    clock.advance(9_999);
    await cache.authenticateToken('t-a:s');
    assert.equal(inner.calls.length, 1);
    clock.advance(1);
    await cache.authenticateToken('t-a:s');
    assert.equal(inner.calls.length, 2, 'a hit at the expiry instant must go back to the inner authenticator');
  });

  it('does not cache a success whose token has already expired or whose expiry is not a valid date', async () => {
    for (const expiresAt of [new Date(T0), new Date(T0 - 1), new Date(Number.NaN)]) {
      const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' }, expiresAt);
      const { cache } = setUp(inner);
      await cache.authenticateToken('t-a:s');
      await cache.authenticateToken('t-a:s');
      assert.equal(inner.calls.length, 2, String(expiresAt));
      assert.equal(cache.stats().entries, 0);
    }
  });

  it('never caches an error, so an outage is retried by the very next request', async () => {
    const inner = new ScriptedAuthenticator(() => undecided(new KubegateError('STORE_UNAVAILABLE')));
    const { cache } = setUp(inner);
    assert.equal((await cache.authenticateToken('t-a:s')).outcome, 'error');
    assert.equal((await cache.authenticateToken('t-a:s')).outcome, 'error');
    assert.equal(inner.calls.length, 2);
    assert.equal(cache.stats().entries, 0);
  });

  it('turns a throwing inner authenticator into an uncached error', async () => {
    let fail = true;
    const inner = new ScriptedAuthenticator(() => {
      if (fail) throw new Error('connection reset');
      return success('t-a');
    });
    const { cache } = setUp(inner);
    assert.equal((await cache.authenticateToken('t-a:s')).outcome, 'error');
    fail = false;
    assert.equal((await cache.authenticateToken('t-a:s')).outcome, 'authenticated');
  });

  it('caches nothing of a kind whose TTL is 0', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' });
    const { cache } = setUp(inner, { successTtlMs: 0, failureTtlMs: 0 });
    for (const token of ['t-a:s', 't-a:s', 't-b:x', 't-b:x']) await cache.authenticateToken(token);
    assert.equal(inner.calls.length, 4);
  });

  it('keys by audiences too, because a token may be good for one audience and not another', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' });
    const { cache } = setUp(inner);
    await cache.authenticateToken('t-a:s');
    await cache.authenticateToken('t-a:s', { audiences: [] });
    await cache.authenticateToken('t-a:s', { audiences: ['api'] });
    await cache.authenticateToken('t-a:s', { audiences: ['api'] });
    await cache.authenticateToken('t-a:s', { audiences: ['other'] });
    assert.deepEqual(
      inner.calls.map((call) => call.audiences),
      [undefined, ['api'], ['other']],
    );
  });

  it('hands out frozen answers, so one request cannot alter what the next one receives', async () => {
    const { cache } = setUp(directory({ 't-a:s': 'u-aaaaaaaaaaaa' }));
    await cache.authenticateToken('t-a:s');
    const hit = await cache.authenticateToken('t-a:s');
    assert.ok(Object.isFrozen(hit));
    assert.ok(hit.outcome === 'authenticated' && Object.isFrozen(hit.token) && Object.isFrozen(hit.user));
  });
});

describe('cachedAuthenticator: single flight', () => {
  it('makes one inner call for many concurrent misses of the same token', async () => {
    const gate = deferred<AuthResult>();
    const inner = new ScriptedAuthenticator(() => gate.promise);
    const { cache } = setUp(inner);
    const pending = Array.from({ length: 20 }, () => cache.authenticateToken('t-a:s'));
    gate.resolve(success('t-a'));
    const results = await Promise.all(pending);
    assert.equal(inner.calls.length, 1);
    for (const result of results) assert.equal(result, results[0]);
    assert.deepEqual(cache.stats(), { hits: 0, misses: 1, sharedLookups: 19, entries: 1 });
  });

  it('shares an error among the concurrent callers but lets the next caller try again', async () => {
    const gate = deferred<AuthResult>();
    const inner = new ScriptedAuthenticator(() => gate.promise);
    const { cache } = setUp(inner);
    const pending = [cache.authenticateToken('t-a:s'), cache.authenticateToken('t-a:s')];
    gate.resolve(undecided(new KubegateError('STORE_UNAVAILABLE')));
    for (const result of await Promise.all(pending)) assert.equal(result.outcome, 'error');
    inner.answer = () => success('t-a');
    assert.equal((await cache.authenticateToken('t-a:s')).outcome, 'authenticated');
    assert.equal(inner.calls.length, 2);
  });

  it('does not share a lookup between different tokens', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa', 't-b:s': 'u-bbbbbbbbbbbb' });
    const { cache } = setUp(inner);
    const [a, b] = await Promise.all([cache.authenticateToken('t-a:s'), cache.authenticateToken('t-b:s')]);
    assert.equal(inner.calls.length, 2);
    assert.ok(a.outcome === 'authenticated' && b.outcome === 'authenticated' && a.user.name !== b.user.name);
  });
});

describe('cachedAuthenticator: invalidation', () => {
  it('invalidateToken drops every cached success of that token name, for all audiences, and nothing else', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa', 't-b:s': 'u-aaaaaaaaaaaa' });
    const { cache } = setUp(inner);
    await cache.authenticateToken('t-a:s');
    await cache.authenticateToken('t-a:s', { audiences: ['api'] });
    await cache.authenticateToken('t-b:s');
    assert.equal(cache.invalidateToken('t-a'), 2);
    await cache.authenticateToken('t-a:s');
    await cache.authenticateToken('t-b:s');
    assert.deepEqual(inner.calls.map((call) => call.token), ['t-a:s', 't-a:s', 't-b:s', 't-a:s']);
  });

  it('invalidateToken also drops a cached rejection of a token with that name, so a token synced after a miss works at once', async () => {
    const known: Record<string, string> = {};
    const inner = directory(known);
    const { cache } = setUp(inner);
    assert.equal((await cache.authenticateToken('ext/token-x:s')).outcome, 'unauthenticated');
    known['ext/token-x:s'] = 'u-aaaaaaaaaaaa';
    assert.equal((await cache.authenticateToken('ext/token-x:s')).outcome, 'unauthenticated', 'still cached');
    assert.equal(cache.invalidateToken('token-x'), 1);
    assert.equal((await cache.authenticateToken('ext/token-x:s')).outcome, 'authenticated');
  });

  it('invalidateUser drops every cached success of that user across tokens, and nothing else', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa', 't-b:s': 'u-aaaaaaaaaaaa', 't-c:s': 'u-cccccccccccc' });
    const { cache } = setUp(inner);
    for (const token of ['t-a:s', 't-b:s', 't-c:s']) await cache.authenticateToken(token);
    assert.equal(cache.invalidateUser('u-aaaaaaaaaaaa'), 2);
    assert.equal(cache.invalidateUser('u-aaaaaaaaaaaa'), 0);
    for (const token of ['t-a:s', 't-b:s', 't-c:s']) await cache.authenticateToken(token);
    assert.deepEqual(inner.calls.map((call) => call.token), ['t-a:s', 't-b:s', 't-c:s', 't-a:s', 't-b:s']);
  });

  it('does not store an answer that was in flight when the token was revoked, and later callers do not join it', async () => {
    const gate = deferred<AuthResult>();
    const inner = new ScriptedAuthenticator(() => gate.promise);
    const { cache } = setUp(inner);
    const before = cache.authenticateToken('t-a:s');
    cache.invalidateToken('t-a');
    inner.answer = () => unauthenticated('TOKEN_INVALID');
    const after = cache.authenticateToken('t-a:s');
    gate.resolve(success('t-a'));
    assert.equal((await before).outcome, 'authenticated');
    assert.equal((await after).outcome, 'unauthenticated');
    assert.equal((await cache.authenticateToken('t-a:s')).outcome, 'unauthenticated');
    assert.equal(inner.calls.length, 2);
  });

  it('clear drops everything', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' });
    const { cache } = setUp(inner);
    await cache.authenticateToken('t-a:s');
    await cache.authenticateToken('t-b:s');
    cache.clear();
    assert.equal(cache.stats().entries, 0);
    assert.equal(cache.invalidateToken('t-a'), 0, 'the name index is emptied too');
    await cache.authenticateToken('t-a:s');
    assert.equal(inner.calls.length, 3);
  });

  it('evicts the least recently used entry at maxEntries and keeps the invalidation indexes in step', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa', 't-b:s': 'u-aaaaaaaaaaaa', 't-c:s': 'u-aaaaaaaaaaaa' });
    const { cache } = setUp(inner, { maxEntries: 2 });
    await cache.authenticateToken('t-a:s');
    await cache.authenticateToken('t-b:s');
    await cache.authenticateToken('t-a:s'); // t-a is now the most recently used
    await cache.authenticateToken('t-c:s'); // evicts t-b
    assert.equal(cache.stats().entries, 2);
    assert.equal(cache.invalidateToken('t-b'), 0);
    assert.equal(cache.invalidateUser('u-aaaaaaaaaaaa'), 2);
    assert.equal(inner.calls.length, 3);
  });

  it('drops an expired entry when it is looked up, so it cannot be invalidated twice', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' });
    const { clock, cache } = setUp(inner);
    await cache.authenticateToken('t-a:s');
    clock.advance(60_000);
    inner.answer = () => unauthenticated('TOKEN_INVALID');
    await cache.authenticateToken('t-a:s');
    assert.equal(cache.invalidateUser('u-aaaaaaaaaaaa'), 0);
    assert.equal(cache.invalidateToken('t-a'), 1, 'only the fresh rejection is left');
  });
});

describe('cachedAuthenticator: keys and options', () => {
  it('derives keys as a base64 keyed SHA3-256 digest that does not contain the token, so raw tokens never become keys', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (token) => {
        const key = cacheKeyFor(newCacheKeySecrets(), token);
        assert.match(key, /^[A-Za-z0-9+/]{43}=$/);
        if (token.length >= 4) assert.ok(!key.includes(token));
      }),
    );
  });

  it('derives different keys under different secret keys, so each instance has its own key space', () => {
    assert.notEqual(cacheKeyFor(newCacheKeySecrets(), 't-a:s'), cacheKeyFor(newCacheKeySecrets(), 't-a:s'));
  });

  it('derives distinct keys for audiences, and cannot be fooled by a token that embeds an audience list', () => {
    const secrets = newCacheKeySecrets();
    const keys = new Set([
      cacheKeyFor(secrets, 't-a:s'),
      cacheKeyFor(secrets, 't-a:s', ['api']),
      cacheKeyFor(secrets, 't-a:s', ['api', 'x']),
      cacheKeyFor(secrets, 't-a:s', ['api,x']),
      cacheKeyFor(secrets, `["api"]\x00t-a:s`),
      cacheKeyFor(secrets, `["api"]\x00t-a:s`, ['api']),
    ]);
    assert.equal(keys.size, 6);
    assert.equal(cacheKeyFor(secrets, 't-a:s', []), cacheKeyFor(secrets, 't-a:s'));
  });

  it('refuses nonsensical options, a configuration mistake', () => {
    const inner = directory({});
    for (const options of [
      { successTtlMs: -1, failureTtlMs: 0, maxEntries: 1 },
      { successTtlMs: 0, failureTtlMs: Number.NaN, maxEntries: 1 },
      { successTtlMs: 0, failureTtlMs: 0, maxEntries: 0 },
      { successTtlMs: 0, failureTtlMs: 0, maxEntries: 1.5 },
    ]) {
      assert.throws(() => cachedAuthenticator(inner, options), TypeError);
    }
  });

  it('uses the wall clock by default, so token expiry (a wall-clock time) is honoured', async () => {
    const inner = directory({ 't-a:s': 'u-aaaaaaaaaaaa' }, new Date(Date.now() + 60_000));
    const cache = cachedAuthenticator(inner, { successTtlMs: 60_000, failureTtlMs: 0, maxEntries: 10 });
    await cache.authenticateToken('t-a:s');
    await cache.authenticateToken('t-a:s');
    assert.equal(inner.calls.length, 1);
  });
});
