import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import { makeUserInfo } from '../../../src/auth/user.js';
import { KubegateError } from '../../../src/errors.js';
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
