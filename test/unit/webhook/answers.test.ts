/**
 * The webhook's answer cache by request body (src/webhook/answers.ts) on top of the real token
 * cache, with a stepped clock: an answer is reused exactly as long as the token cache's own
 * answer — TTLs, the token's expiry, invalidations — and never when it was an error.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import type { AuthResult, TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { cachedAuthenticator } from '../../../src/auth/cached.js';
import type { CachedAuthenticatorOptions } from '../../../src/auth/cached.js';
import { makeUserInfo } from '../../../src/auth/user.js';
import { KubegateError } from '../../../src/errors.js';
import { createAnswerCache } from '../../../src/webhook/answers.js';
import type { AnswerCache } from '../../../src/webhook/answers.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');

class Clock {
  ms = T0;
  readonly now = (): number => this.ms;
}

/** Inner authenticator: `answer` decides; `gate`, when set, holds the answer until released. */
class Scripted implements TokenAuthenticator {
  calls = 0;
  gate: Promise<void> | undefined;
  constructor(public answer: (token: string) => AuthResult) {}
  async authenticateToken(token: string): Promise<AuthResult> {
    this.calls++;
    await this.gate;
    return this.answer(token);
  }
}

function success(name: string, expiresAt: Date | null = null): AuthResult {
  return authenticated(makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: [] }), { name, expiresAt, clusterId: null });
}

function body(token: string, apiVersion = 'authentication.k8s.io/v1'): Buffer {
  return Buffer.from(JSON.stringify({ apiVersion, kind: 'TokenReview', spec: { token } }));
}

function setUp(inner: TokenAuthenticator, options: Partial<CachedAuthenticatorOptions> & { maxAnswers?: number } = {}) {
  const clock = new Clock();
  const tokens = cachedAuthenticator(inner, { successTtlMs: 10_000, failureTtlMs: 2_000, maxEntries: 100, now: clock.now, ...options });
  const answers = createAnswerCache({ tokenCache: tokens, maxEntries: options.maxAnswers ?? 100, now: clock.now });
  /** What the handler does with a body: the remembered answer, or a lookup that may be remembered. */
  async function review(token: string, apiVersion?: string): Promise<'hit' | AuthResult['outcome']> {
    const key = answers.keyOf(body(token, apiVersion)) as string;
    if (answers.get(key) !== undefined) return 'hit';
    const generation = answers.generation;
    const verified = await tokens.authenticateToken(token);
    const reply = JSON.stringify({ outcome: verified.outcome });
    answers.remember(key, generation, verified, verified, reply, Buffer.byteLength(reply), token.split(':')[0]);
    return verified.outcome;
  }
  return { clock, tokens, answers, review };
}

describe('webhook answer cache', () => {
  it('answers a repeated body from the cache, and each apiVersion on its own', async () => {
    const { review, answers } = setUp(new Scripted((token) => success(token.split(':')[0] as string)));
    assert.equal(await review('t-a:s'), 'authenticated');
    assert.equal(await review('t-a:s'), 'hit');
    assert.equal(await review('t-a:s', 'authentication.k8s.io/v1beta1'), 'authenticated');
    assert.equal(await review('t-a:s', 'authentication.k8s.io/v1beta1'), 'hit');
    assert.deepEqual(answers.stats(), { hits: 2, misses: 2, entries: 2 });
  });

  it('keeps a success no longer than the token cache: its TTL, capped by the token expiry', async () => {
    const { review, clock } = setUp(new Scripted((token) => (token === 't-exp:s' ? success('t-exp', new Date(T0 + 3_000)) : success('t-a'))));
    await review('t-a:s');
    clock.ms = T0 + 9_999;
    assert.equal(await review('t-a:s'), 'hit');
    clock.ms = T0 + 10_000;
    assert.equal(await review('t-a:s'), 'authenticated', 'the success TTL is over');

    clock.ms = T0;
    await review('t-exp:s');
    clock.ms = T0 + 2_999;
    assert.equal(await review('t-exp:s'), 'hit');
    clock.ms = T0 + 3_000;
    assert.notEqual(await review('t-exp:s'), 'hit', 'the token has expired');
  });

  it('keeps a rejection only for the failure TTL, even when it was answered late in the token cache entry’s life', async () => {
    const { review, clock } = setUp(new Scripted(() => unauthenticated('TOKEN_INVALID')));
    assert.equal(await review('t-a:wrong'), 'unauthenticated');
    clock.ms = T0 + 1_500;
    // A new body for the same token: a token cache hit, remembered until the token cache's entry ends (T0 + 2 s).
    assert.equal(await review('t-a:wrong', 'authentication.k8s.io/v1beta1'), 'unauthenticated');
    clock.ms = T0 + 1_999;
    assert.equal(await review('t-a:wrong', 'authentication.k8s.io/v1beta1'), 'hit');
    clock.ms = T0 + 2_000;
    assert.equal(await review('t-a:wrong', 'authentication.k8s.io/v1beta1'), 'unauthenticated');
  });

  it('never remembers an error, so the next review asks again', async () => {
    const inner = new Scripted(() => undecided(new KubegateError('NOT_READY')));
    const { review, answers } = setUp(inner);
    assert.equal(await review('t-a:s'), 'error');
    assert.equal(await review('t-a:s'), 'error');
    assert.equal(inner.calls, 2);
    assert.equal(answers.stats().entries, 0);
  });

  it('remembers nothing when the token cache keeps nothing (TTL 0)', async () => {
    const { review } = setUp(new Scripted(() => success('t-a')), { successTtlMs: 0 });
    await review('t-a:s');
    assert.equal(await review('t-a:s'), 'authenticated');
  });

  it('retires every answer on any invalidation of the token cache, for whichever token or user', async () => {
    const { review, tokens } = setUp(new Scripted((token) => success(token.split(':')[0] as string)));
    await review('t-a:s');
    await review('t-b:s');
    assert.equal(await review('t-a:s'), 'hit');
    tokens.invalidateToken('t-b');
    assert.equal(await review('t-a:s'), 'authenticated', 'answered again, not from before the change');
    assert.equal(await review('t-a:s'), 'hit');
    tokens.invalidateUser('u-somebody-else');
    assert.equal(await review('t-a:s'), 'authenticated');
  });

  it('does not remember an answer read before an invalidation that came while it was looked up', async () => {
    const inner = new Scripted(() => success('t-a'));
    const { tokens, answers } = setUp(inner);
    let release!: () => void;
    inner.gate = new Promise((resolve) => (release = resolve));
    const key = answers.keyOf(body('t-a:s')) as string;
    const generation = answers.generation;
    const pending = tokens.authenticateToken('t-a:s');
    tokens.invalidateToken('t-a');
    release();
    const verified = await pending;
    answers.remember(key, generation, verified, verified, '{}', 2, 't-a');
    assert.equal(answers.get(key), undefined);
    assert.equal(answers.stats().entries, 0);
  });

  it('holds at most maxEntries answers, the least recently used going first', async () => {
    const { review, answers } = setUp(new Scripted((token) => success(token.split(':')[0] as string)), { maxAnswers: 2 });
    for (const token of ['t-a:s', 't-b:s', 't-c:s']) await review(token);
    assert.equal(answers.stats().entries, 2);
    assert.equal(await review('t-a:s'), 'authenticated', 't-a was evicted');
    assert.equal(await review('t-c:s'), 'hit');
  });

  it('keys by a keyed digest: never the token, different in every process, nothing for oversized bodies', () => {
    const one = setUp(new Scripted(() => success('t-a'))).answers;
    const other: AnswerCache = setUp(new Scripted(() => success('t-a'))).answers;
    const key = one.keyOf(body('t-secret-name:very-secret-value')) as string;
    assert.ok(!key.includes('very-secret-value') && !key.includes('t-secret-name'));
    assert.match(key, /^[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(key, other.keyOf(body('t-secret-name:very-secret-value')));
    assert.equal(one.keyOf(Buffer.alloc(64 * 1024, 0x20)), undefined);
  });

  it('refuses a size that is not a positive whole number', () => {
    const tokens = cachedAuthenticator(new Scripted(() => success('t-a')), { successTtlMs: 1, failureTtlMs: 1, maxEntries: 1 });
    assert.throws(() => createAnswerCache({ tokenCache: tokens, maxEntries: 0 }), /maxEntries/);
  });
});
