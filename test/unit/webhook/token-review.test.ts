import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AuthResult } from '../../../src/auth/authenticator.js';
import type { UserInfo } from '../../../src/auth/user.js';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import { makeUserInfo } from '../../../src/auth/user.js';
import { KubegateError } from '../../../src/errors.js';
import type { ErrorCode } from '../../../src/errors.js';
import { checkAudiences, grantedAudiences, parseTokenReview, tokenReviewReply, tokenReviewReplyJson } from '../../../src/webhook/token-review.js';

const user = makeUserInfo({ name: 'u-alice', uid: 'u-alice', groups: ['corp://dev'], extra: { 'kubegate.io/token-name': ['t-a'] } });
const results = [
  Object.freeze(authenticated(user, { name: 't-a', expiresAt: null, clusterId: null })),
  Object.freeze(unauthenticated('TOKEN_INVALID')),
  undecided(new KubegateError('NOT_READY', 'not listed yet')),
];

function request(apiVersion: string, audiences?: string[]) {
  return parseTokenReview({ apiVersion, kind: 'TokenReview', spec: { token: 't-a:secret', ...(audiences === undefined ? {} : { audiences }) } });
}

describe('tokenReviewReplyJson', () => {
  it('serializes exactly what tokenReviewReply builds, for every outcome and version, also when asked again', () => {
    for (const version of ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']) {
      for (const result of results) {
        const expected = JSON.stringify(tokenReviewReply(request(version), result));
        assert.equal(tokenReviewReplyJson(request(version), result), expected);
        assert.equal(tokenReviewReplyJson(request(version), result), expected);
      }
    }
  });

  it('writes the reply from its template byte for byte as JSON.stringify of tokenReviewReply, for any names, groups, extras, audiences and errors', () => {
    // Strings a template could get wrong: quotes, backslashes, control characters, line separators, lone surrogates, non-ASCII.
    const tricky = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\u001f', '\u007f', '\n', '\u2028', '\u2029', '\ud800', '\udfff', 'é', '🔑', '{', '}', ',', ':', 'a'), maxLength: 12 }),
    );
    const userInfo: fc.Arbitrary<UserInfo> = fc.record(
      {
        name: tricky,
        kubernetesName: tricky,
        uid: fc.oneof(fc.constant(''), tricky),
        groups: fc.array(tricky, { maxLength: 4 }),
        extra: fc.dictionary(tricky, fc.array(tricky, { maxLength: 3 }), { maxKeys: 3 }),
      },
      { requiredKeys: ['name', 'uid', 'groups', 'extra'] },
    );
    const result: fc.Arbitrary<AuthResult> = fc.oneof(
      fc.tuple(userInfo, tricky).map(([u, name]) => authenticated(u, { name, expiresAt: null, clusterId: null })),
      fc.constantFrom<ErrorCode>('TOKEN_INVALID', 'TOKEN_AUDIENCE_MISMATCH').map((code) => unauthenticated(code)),
      tricky.map((message) => undecided(new KubegateError('NOT_READY', message))),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1'),
        fc.array(fc.oneof(tricky, fc.constantFrom('a', 'b')), { maxLength: 4 }),
        fc.array(fc.oneof(tricky, fc.constantFrom('a', 'b')), { maxLength: 3 }),
        result,
        (version, requested, valid, answer) => {
          const parsed = request(version, requested);
          assert.equal(tokenReviewReplyJson(parsed, answer, valid), JSON.stringify(tokenReviewReply(parsed, answer, valid)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('writes exactly the reply kube-apiserver reads (a fixed example, written out by hand)', () => {
    const alice = makeUserInfo({ name: 'u-1', kubernetesName: 'ldap:"al\\ice"', uid: 'u-1', groups: ['g\n1', 'g2'], extra: { 'kubegate.io/token-name': ['t-a'] } });
    const success = authenticated(alice, { name: 't-a', expiresAt: null, clusterId: null });
    assert.equal(
      tokenReviewReplyJson(request('authentication.k8s.io/v1beta1', ['x', 'rke2']), success, ['rke2']),
      '{"apiVersion":"authentication.k8s.io/v1beta1","kind":"TokenReview","metadata":{"creationTimestamp":null},"spec":{},' +
        '"status":{"authenticated":true,"user":{"username":"ldap:\\"al\\\\ice\\"","uid":"u-1","groups":["g\\n1","g2"],"extra":{"kubegate.io/token-name":["t-a"]}},"audiences":["rke2"]}}',
    );
    assert.equal(
      tokenReviewReplyJson(request('authentication.k8s.io/v1'), undecided(new KubegateError('NOT_READY', 'not "listed" yet'))),
      '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","metadata":{"creationTimestamp":null},"spec":{},"status":{"authenticated":false,"error":"NOT_READY: not \\"listed\\" yet"}}',
    );
  });

  it('answers each version in its own apiVersion although the answer object is the same, because kube-apiserver refuses another version', () => {
    const [success] = results;
    assert.ok(success !== undefined);
    assert.match(tokenReviewReplyJson(request('authentication.k8s.io/v1'), success), /"apiVersion":"authentication.k8s.io\/v1"/);
    assert.match(tokenReviewReplyJson(request('authentication.k8s.io/v1beta1'), success), /"apiVersion":"authentication.k8s.io\/v1beta1"/);
  });

  it('names no audience when none are configured, so that kube-apiserver checks the request against its own default audience', () => {
    const [success] = results;
    assert.ok(success !== undefined);
    for (const version of ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']) {
      const bound = request(version, ['https://kubernetes.default.svc']);
      assert.equal(checkAudiences(bound, success, []), success);
      const reply = JSON.parse(tokenReviewReplyJson(bound, success));
      assert.equal(reply.status.authenticated, true);
      assert.equal(reply.status.audiences, undefined, 'an echo would vouch for any audience, e.g. a token review for vault');
    }
  });

  it('grants the intersection of the requested and the configured audiences, each request its own, in v1 and v1beta1', () => {
    const [success] = results;
    assert.ok(success !== undefined);
    const valid = ['https://kubernetes.default.svc', 'rke2'];
    for (const version of ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']) {
      const first = JSON.parse(tokenReviewReplyJson(request(version, ['vault', 'rke2', 'rke2']), success, valid));
      const second = JSON.parse(tokenReviewReplyJson(request(version, ['https://kubernetes.default.svc']), success, valid));
      const plain = JSON.parse(tokenReviewReplyJson(request(version), success, valid));
      assert.deepEqual(first.status.audiences, ['rke2']);
      assert.deepEqual(second.status.audiences, ['https://kubernetes.default.svc']);
      assert.equal(plain.status.audiences, undefined);
      assert.equal(plain.status.authenticated, true);
    }
  });

  it('refuses a token valid for none of the requested audiences, without an error, so that the refusal is cached', () => {
    const [success] = results;
    assert.ok(success !== undefined);
    for (const version of ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']) {
      const bound = request(version, ['vault']);
      const checked = checkAudiences(bound, success, ['rke2']);
      assert.deepEqual(checked, { outcome: 'unauthenticated', code: 'TOKEN_AUDIENCE_MISMATCH' });
      assert.deepEqual(tokenReviewReply(bound, checked, ['rke2']).status, { authenticated: false });
      // Even handed the unchecked success, the reply never vouches for a foreign audience.
      assert.deepEqual(tokenReviewReply(bound, success, ['rke2']).status, { authenticated: false });
    }
  });

  it('leaves rejections and errors alone, whatever the audiences', () => {
    for (const result of results.slice(1)) {
      assert.equal(checkAudiences(request('authentication.k8s.io/v1', ['vault']), result, ['rke2']), result);
    }
  });

  it('computes granted audiences as documented', () => {
    assert.deepEqual(grantedAudiences([], ['a']), []);
    assert.deepEqual(grantedAudiences(['a'], []), []);
    assert.deepEqual(grantedAudiences(['b', 'a', 'b'], ['a', 'b']), ['b', 'a']);
    assert.equal(grantedAudiences(['c'], ['a', 'b']), null);
  });
});
