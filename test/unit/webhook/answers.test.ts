/**
 * The webhook's one cache, answers by request body (src/webhook/answers.ts), with a stepped
 * clock: an answer is reused exactly as long as the verifier's own answer may be — TTLs, the
 * token's expiry —, never when it was an error, and a token's or user's change retires exactly
 * the answers that depended on it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import type { AuthResult, TokenAuthenticator } from '../../../src/auth/authenticator.js';
import type { AnswerTtls } from '../../../src/auth/answer-lifetime.js';
import { makeUserInfo } from '../../../src/auth/user.js';
import { KubegateError } from '../../../src/errors.js';
import { createAnswerCache } from '../../../src/webhook/answers.js';
import type { AnswerCache } from '../../../src/webhook/answers.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');

class Clock {
  ms = T0;
  readonly now = (): number => this.ms;
}

/** The verifier: `answer` decides; `gate`, when set, holds the answer until released. */
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

/** `t-a:…` is u-a's token, `t-b:…` u-b's, and so on. */
function success(name: string, expiresAt: Date | null = null): AuthResult {
  return authenticated(makeUserInfo({ name: `u-${name.slice(2)}`, groups: [] }), { name, expiresAt, clusterId: null });
}

const nameOf = (token: string): string => token.split(':')[0] as string;

function body(token: string, apiVersion = 'authentication.k8s.io/v1'): Buffer {
  return Buffer.from(JSON.stringify({ apiVersion, kind: 'TokenReview', spec: { token } }));
}

function setUp(inner: TokenAuthenticator, options: Partial<AnswerTtls> & { maxEntries?: number } = {}) {
  const clock = new Clock();
  const answers = createAnswerCache({ successTtlMs: 10_000, failureTtlMs: 2_000, maxEntries: 100, now: clock.now, ...options });
  /** What the handler does with a body: the remembered answer, or a verification that may be remembered. */
  async function review(token: string, apiVersion?: string): Promise<'hit' | AuthResult['outcome']> {
    const key = answers.keyOf(body(token, apiVersion)) as string;
    if (answers.get(key) !== undefined) return 'hit';
    const epoch = answers.epoch;
    const verified = await inner.authenticateToken(token);
    const reply = JSON.stringify({ outcome: verified.outcome });
    answers.remember(key, epoch, verified, verified, reply, Buffer.byteLength(reply), nameOf(token));
    return verified.outcome;
  }
  return { clock, answers, review };
}

describe('webhook answer cache', () => {
  it('answers a repeated body from the cache, and each apiVersion on its own', async () => {
    const inner = new Scripted((token) => success(nameOf(token)));
    const { review, answers } = setUp(inner);
    assert.equal(await review('t-a:s'), 'authenticated');
    assert.equal(await review('t-a:s'), 'hit');
    assert.equal(await review('t-a:s', 'authentication.k8s.io/v1beta1'), 'authenticated');
    assert.equal(await review('t-a:s', 'authentication.k8s.io/v1beta1'), 'hit');
    assert.deepEqual(answers.stats(), { hits: 2, misses: 2, entries: 2 });
    assert.equal(inner.calls, 2, 'a hit verifies nothing');
  });

  it('keeps a success for the success TTL, capped by the token expiry', async () => {
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

  it('keeps nothing of a token that expired, or whose expiry does not parse', async () => {
    const { review } = setUp(new Scripted((token) => success(nameOf(token), token.startsWith('t-past') ? new Date(T0 - 1) : new Date(Number.NaN))));
    for (const token of ['t-past:s', 't-nan:s']) {
      assert.equal(await review(token), 'authenticated');
      assert.equal(await review(token), 'authenticated', token);
    }
  });

  it('keeps a rejection for the failure TTL from its own verification', async () => {
    const { review, clock } = setUp(new Scripted(() => unauthenticated('TOKEN_INVALID')));
    assert.equal(await review('t-a:wrong'), 'unauthenticated');
    clock.ms = T0 + 1_999;
    assert.equal(await review('t-a:wrong'), 'hit');
    assert.equal(await review('t-a:wrong', 'authentication.k8s.io/v1beta1'), 'unauthenticated', 'another body is verified on its own');
    clock.ms = T0 + 2_000;
    assert.equal(await review('t-a:wrong'), 'unauthenticated');
    clock.ms = T0 + 3_998;
    assert.equal(await review('t-a:wrong', 'authentication.k8s.io/v1beta1'), 'hit');
    clock.ms = T0 + 3_999;
    assert.equal(await review('t-a:wrong', 'authentication.k8s.io/v1beta1'), 'unauthenticated');
  });

  it('keeps the review\'s own answer for as long as the verification may be reused: a refused audience of a valid token lives as its success', async () => {
    const { answers, clock } = setUp(new Scripted(() => success('t-a')));
    const key = answers.keyOf(body('t-a:s')) as string;
    answers.remember(key, answers.epoch, success('t-a'), unauthenticated('TOKEN_AUDIENCE_MISMATCH'), '{}', 2, 't-a');
    clock.ms = T0 + 9_999;
    assert.deepEqual(
      { outcome: answers.get(key)?.outcome, code: answers.get(key)?.code },
      { outcome: 'unauthenticated', code: 'TOKEN_AUDIENCE_MISMATCH' },
    );
    assert.equal(answers.invalidateUser('u-a'), 1, 'indexed by the user it was verified for');
  });

  it('never remembers an error, so the next review asks again', async () => {
    const inner = new Scripted(() => undecided(new KubegateError('NOT_READY')));
    const { review, answers } = setUp(inner);
    assert.equal(await review('t-a:s'), 'error');
    assert.equal(await review('t-a:s'), 'error');
    assert.equal(inner.calls, 2);
    assert.equal(answers.stats().entries, 0);
  });

  it('remembers nothing of a kind whose TTL is 0', async () => {
    const { review } = setUp(new Scripted((token) => (token.endsWith(':s') ? success(nameOf(token)) : unauthenticated('TOKEN_INVALID'))), { successTtlMs: 0 });
    await review('t-a:s');
    assert.equal(await review('t-a:s'), 'authenticated');
    await review('t-a:wrong');
    assert.equal(await review('t-a:wrong'), 'hit', 'rejections are still kept');
    const none = setUp(new Scripted(() => unauthenticated('TOKEN_INVALID')), { failureTtlMs: 0 });
    await none.review('t-a:wrong');
    assert.equal(await none.review('t-a:wrong'), 'unauthenticated');
  });

  it("retires every answer of a changed token, in every body, and of that name's rejections, and no other token's", async () => {
    const { review, answers } = setUp(new Scripted((token) => (token.endsWith(':s') ? success(nameOf(token)) : unauthenticated('TOKEN_INVALID'))));
    for (const version of ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']) {
      await review('t-a:s', version);
      await review('t-b:s', version);
    }
    await review('t-a:wrong');
    assert.equal(answers.invalidateToken('t-a'), 3);
    for (const version of ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']) {
      assert.equal(await review('t-a:s', version), 'authenticated', 'answered again, not from before the change');
      assert.equal(await review('t-b:s', version), 'hit', 'another token is not touched');
    }
    assert.equal(await review('t-a:wrong'), 'unauthenticated');
    assert.equal(answers.invalidateToken('t-nobody'), 0);
  });

  it("retires every success of a changed user, and no other user's", async () => {
    const { review, answers } = setUp(new Scripted((token) => success(nameOf(token))));
    await review('t-a:s');
    await review('t-a:s', 'authentication.k8s.io/v1beta1');
    await review('t-b:s');
    assert.equal(answers.invalidateUser('u-a'), 2);
    assert.equal(await review('t-a:s'), 'authenticated');
    assert.equal(await review('t-a:s', 'authentication.k8s.io/v1beta1'), 'authenticated');
    assert.equal(await review('t-b:s'), 'hit');
  });

  it('does not remember an answer read before an invalidation that came while it was verified', async () => {
    const inner = new Scripted(() => success('t-a'));
    const { answers } = setUp(inner);
    let release!: () => void;
    inner.gate = new Promise((resolve) => (release = resolve));
    const key = answers.keyOf(body('t-a:s')) as string;
    const epoch = answers.epoch;
    const pending = inner.authenticateToken('t-a:s');
    answers.invalidateToken('t-a');
    release();
    const verified = await pending;
    answers.remember(key, epoch, verified, verified, '{}', 2, 't-a');
    assert.equal(answers.get(key), undefined);
    assert.equal(answers.stats().entries, 0);
  });

  it('holds at most maxEntries answers, the least recently used going first, and forgets evicted ones in its indexes', async () => {
    const { review, answers } = setUp(new Scripted((token) => success(nameOf(token))), { maxEntries: 2 });
    for (const token of ['t-a:s', 't-b:s', 't-c:s']) await review(token);
    assert.equal(answers.stats().entries, 2);
    assert.equal(answers.invalidateToken('t-a'), 0, 't-a was evicted, and its index entry with it');
    assert.equal(answers.invalidateUser('u-a'), 0);
    assert.equal(await review('t-c:s'), 'hit');
    assert.equal(await review('t-a:s'), 'authenticated', 't-a is verified again');
    assert.equal(await review('t-b:s'), 'authenticated', 't-b went next');
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

  it('refuses a size that is not a positive whole number, and a TTL that is not a non-negative number', () => {
    assert.throws(() => createAnswerCache({ successTtlMs: 1, failureTtlMs: 1, maxEntries: 0 }), /maxEntries/);
    assert.throws(() => createAnswerCache({ successTtlMs: -1, failureTtlMs: 1, maxEntries: 1 }), /successTtlMs/);
    assert.throws(() => createAnswerCache({ successTtlMs: 1, failureTtlMs: Number.NaN, maxEntries: 1 }), /failureTtlMs/);
  });
});
