import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticated, unauthenticated, undecided } from '../../../src/auth/authenticator.js';
import { makeUserInfo } from '../../../src/auth/user.js';
import { KubegateError } from '../../../src/errors.js';
import { parseTokenReview, tokenReviewReply, tokenReviewReplyJson } from '../../../src/webhook/token-review.js';

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

  it('echoes the audiences of each audience-bound request, never those of an earlier one', () => {
    const [success] = results;
    assert.ok(success !== undefined);
    const first = JSON.parse(tokenReviewReplyJson(request('authentication.k8s.io/v1', ['api-a']), success));
    const second = JSON.parse(tokenReviewReplyJson(request('authentication.k8s.io/v1', ['api-b']), success));
    const plain = JSON.parse(tokenReviewReplyJson(request('authentication.k8s.io/v1'), success));
    assert.deepEqual(first.status.audiences, ['api-a']);
    assert.deepEqual(second.status.audiences, ['api-b']);
    assert.equal(plain.status.audiences, undefined);
  });
});
