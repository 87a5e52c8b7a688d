import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthResult } from '../../../src/auth/authenticator.js';
import { ANNOTATION_GROUPS_BY_PROVIDER, ANNOTATION_PROVIDER } from '../../../src/kube/rancher.js';
import type { ClusterAuthToken, ClusterUserAttribute } from '../../../src/kube/rancher.js';
import { hashSecretWith, prepareHash } from '../../../src/tokens/hash.js';
import type { PreparedHash } from '../../../src/tokens/hash.js';
import { createWebhookVerifier } from '../../../src/webhook/verify.js';
import type { WebhookSource } from '../../../src/webhook/verify.js';
import { parseTokenReview, tokenReviewReply } from '../../../src/webhook/token-review.js';
import { KubegateError } from '../../../src/errors.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');

/** Our own small in-memory WebhookSource. */
class MapSource implements WebhookSource {
  ready = true;
  readonly tokens = new Map<string, ClusterAuthToken>();
  readonly attributes = new Map<string, ClusterUserAttribute>();
  /** Hashes as written in the Secrets; handed out parsed, as the real source does when it reads a Secret. */
  readonly hashes = new Map<string, string>();
  clusterAuthToken(name: string): ClusterAuthToken | undefined {
    return this.tokens.get(name);
  }
  clusterUserAttribute(name: string): ClusterUserAttribute | undefined {
    return this.attributes.get(name);
  }
  /** Parsed once per hash text, as the real source parses a Secret once when it reads it. */
  readonly #prepared = new Map<string, PreparedHash>();
  secretHash(name: string): PreparedHash | undefined {
    const hash = this.hashes.get(name);
    if (hash === undefined) return undefined;
    let prepared = this.#prepared.get(hash);
    if (prepared === undefined) this.#prepared.set(hash, (prepared = prepareHash(hash)));
    return prepared;
  }
}

function token(name: string, fields: Partial<ClusterAuthToken> = {}): ClusterAuthToken {
  return { metadata: { name, namespace: 'cattle-system' }, userName: 'u-1', enabled: true, ...fields };
}

function attribute(userName: string, fields: Partial<ClusterUserAttribute> = {}): ClusterUserAttribute {
  return { metadata: { name: userName, namespace: 'cattle-system' }, groups: ['github_org://1'], enabled: true, ...fields };
}

async function setup(version: 1 | 2 | 3 = 3): Promise<MapSource> {
  const source = new MapSource();
  source.tokens.set('kubeconfig-u-1', token('kubeconfig-u-1'));
  source.hashes.set('kubeconfig-u-1', await hashSecretWith(version, 'se:cret'));
  source.attributes.set('u-1', attribute('u-1'));
  return source;
}

function verify(source: WebhookSource, raw: string): Promise<AuthResult> {
  return createWebhookVerifier({ source, now: () => NOW }).authenticateToken(raw);
}

describe('webhook verification (Rancher kube-api-auth compatible)', () => {
  for (const version of [1, 2, 3] as const) {
    it(`accepts a Secret hash in the $${version} layout, because clusters carry tokens hashed by every Rancher release`, async () => {
      const result = await verify(await setup(version), 'kubeconfig-u-1:se:cret');
      assert.equal(result.outcome, 'authenticated');
      if (result.outcome !== 'authenticated') return;
      assert.equal(result.user.name, 'u-1');
      assert.deepEqual(result.user.groups, ['github_org://1']);
      assert.equal(result.user.uid, '', 'Rancher objects give no uid');
      assert.deepEqual(result.user.extra, {});
    });
  }

  it('strips an ext/ prefix from the name and splits at the first colon, because secrets may hold colons', async () => {
    assert.equal((await verify(await setup(), 'ext/kubeconfig-u-1:se:cret')).outcome, 'authenticated');
  });

  it('falls back to the deprecated hash field when there is no Secret, because old clusters still carry it', async () => {
    const source = await setup();
    source.hashes.clear();
    source.tokens.set('kubeconfig-u-1', token('kubeconfig-u-1', { hash: await hashSecretWith(2, 'se:cret') }));
    assert.equal((await verify(source, 'kubeconfig-u-1:se:cret')).outcome, 'authenticated');
  });

  it('rejects (cacheably) a wrong secret, a disabled token, a disabled user, an expired or unparsable expiry', async () => {
    const cases: Array<[string, (source: MapSource) => void, string]> = [
      ['wrong secret', () => undefined, 'TOKEN_INVALID'],
      ['disabled token', (s) => s.tokens.set('kubeconfig-u-1', token('kubeconfig-u-1', { enabled: false })), 'TOKEN_DISABLED'],
      ['missing enabled (Go false)', (s) => s.tokens.set('kubeconfig-u-1', { metadata: { name: 'kubeconfig-u-1' }, userName: 'u-1' }), 'TOKEN_DISABLED'],
      ['expired', (s) => s.tokens.set('kubeconfig-u-1', token('kubeconfig-u-1', { expiresAt: '2025-06-01T11:59:59Z' })), 'TOKEN_EXPIRED'],
      ['unparsable expiry', (s) => s.tokens.set('kubeconfig-u-1', token('kubeconfig-u-1', { expiresAt: 'tomorrow' })), 'TOKEN_EXPIRED'],
      ['disabled user', (s) => s.attributes.set('u-1', attribute('u-1', { enabled: false })), 'USER_DISABLED'],
    ];
    for (const [what, change, code] of cases) {
      const source = await setup();
      change(source);
      const result = await verify(source, what === 'wrong secret' ? 'kubeconfig-u-1:nope' : 'kubeconfig-u-1:se:cret');
      assert.deepEqual(result, { outcome: 'unauthenticated', code }, what);
    }
  });

  it('answers an uncached error for what a sync may deliver a moment later: unknown token, missing hash, missing user, not yet listed', async () => {
    const cases: Array<[string, (source: MapSource) => void]> = [
      ['unknown token', (s) => s.tokens.clear()],
      ['missing hash', (s) => s.hashes.clear()],
      ['missing user', (s) => s.attributes.clear()],
      ['not listed yet', (s) => (s.ready = false)],
    ];
    for (const [what, change] of cases) {
      const source = await setup();
      change(source);
      const result = await verify(source, 'kubeconfig-u-1:se:cret');
      assert.equal(result.outcome, 'error', what);
    }
  });

  it('answers an error, not a rejection, for a corrupt stored hash, because that is not the client’s fault', async () => {
    const source = await setup();
    source.hashes.set('kubeconfig-u-1', '$3:1:not-base64!:x');
    const result = await verify(source, 'kubeconfig-u-1:se:cret');
    assert.equal(result.outcome, 'error');
    if (result.outcome === 'error') assert.equal(result.error.code, 'HASH_MALFORMED');
  });

  it('answers the stored hash’s own error every time it is checked (parsed once), and for the deprecated field too', async () => {
    const cases: Array<[string, string]> = [
      ['$3:1:not-base64!:x', 'HASH_MALFORMED'],
      [`$3:2:${Buffer.alloc(8).toString('base64')}:${Buffer.alloc(64).toString('base64')}`, 'HASH_UNSUPPORTED'],
      ['$9:x', 'HASH_UNSUPPORTED'],
    ];
    for (const [hash, code] of cases) {
      const prepared = prepareHash(hash);
      const source = await setup();
      source.secretHash = () => prepared; // the same parsed hash, review after review
      for (let i = 0; i < 2; i++) {
        const result = await verify(source, 'kubeconfig-u-1:se:cret');
        assert.equal(result.outcome === 'error' ? result.error.code : result.outcome, code, hash);
      }
      source.hashes.clear();
      source.secretHash = () => undefined;
      source.tokens.set('kubeconfig-u-1', token('kubeconfig-u-1', { hash }));
      const result = await verify(source, 'kubeconfig-u-1:se:cret');
      assert.equal(result.outcome === 'error' ? result.error.code : result.outcome, code, `deprecated field ${hash}`);
    }
  });

  it('rejects a malformed token cacheably, because it can never become valid', async () => {
    assert.deepEqual(await verify(await setup(), 'no-colon'), { outcome: 'unauthenticated', code: 'TOKEN_MALFORMED' });
  });

  it('gives kubegate-synced tokens the provider’s groups, uid and extras, so that the identity equals the proxy’s', async () => {
    const source = await setup();
    source.tokens.set('t-abc', token('t-abc', { userName: 'u-1', metadata: { name: 't-abc', annotations: { [ANNOTATION_PROVIDER]: 'corp' } } }));
    source.hashes.set('t-abc', await hashSecretWith(3, 's'));
    source.attributes.set(
      'u-1',
      attribute('u-1', {
        groups: ['other:x'],
        metadata: { name: 'u-1', annotations: { [ANNOTATION_GROUPS_BY_PROVIDER]: JSON.stringify({ corp: ['corp:ops', 'system:masters'], other: ['other:x'] }) } },
        extraByProvider: { corp: { 'kubegate.io/login-name': ['alice'], 'kubegate.io/provider': ['corp'] } },
      }),
    );
    const result = await verify(source, 't-abc:s');
    assert.equal(result.outcome, 'authenticated');
    if (result.outcome !== 'authenticated') return;
    assert.deepEqual(result.user, {
      name: 'u-1',
      uid: 'u-1',
      groups: ['corp:ops'],
      extra: { 'kubegate.io/login-name': ['alice'], 'kubegate.io/provider': ['corp'], 'kubegate.io/token-name': ['t-abc'] },
    });
  });

  it('gives Rancher’s objects the login name and principal of their one provider, the extras Rancher’s own proxy impersonates', async () => {
    const source = await setup();
    source.attributes.set(
      'u-1',
      attribute('u-1', { extraByProvider: { activedirectory: { principalid: ['activedirectory_user://CN=Alice,DC=corp'], username: ['alice'], other: ['x'] } } }),
    );
    const result = await verify(source, 'kubeconfig-u-1:se:cret');
    assert.equal(result.outcome, 'authenticated');
    if (result.outcome !== 'authenticated') return;
    assert.deepEqual(result.user.extra, { username: ['alice'], principalid: ['activedirectory_user://CN=Alice,DC=corp'] });
    assert.equal(result.user.uid, '');
  });

  it('guesses no extras when a Rancher attribute names several providers, because a Rancher token does not say which one it came from', async () => {
    const source = await setup();
    source.attributes.set(
      'u-1',
      attribute('u-1', { extraByProvider: { local: { principalid: ['local://u-1'], username: ['admin'] }, github: { principalid: ['github_user://7'], username: ['octo'] } } }),
    );
    const result = await verify(source, 'kubeconfig-u-1:se:cret');
    assert.equal(result.outcome, 'authenticated');
    if (result.outcome === 'authenticated') assert.deepEqual(result.user.extra, {});
  });
});

describe('TokenReview parsing and replies', () => {
  it('answers in the version of the request, with an error only for undecided outcomes', () => {
    for (const apiVersion of ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']) {
      const request = parseTokenReview({ apiVersion, kind: 'TokenReview', spec: { token: 'a:b' } });
      assert.equal(tokenReviewReply(request, { outcome: 'unauthenticated', code: 'TOKEN_INVALID' }).apiVersion, apiVersion);
      assert.deepEqual(tokenReviewReply(request, { outcome: 'unauthenticated', code: 'TOKEN_INVALID' }).status, { authenticated: false });
      const undecided = tokenReviewReply(request, { outcome: 'error', error: new KubegateError('NOT_READY') });
      assert.equal(undecided.status.authenticated, false);
      assert.match(undecided.status.error ?? '', /^NOT_READY: /);
    }
  });

  it('names the field of a malformed review, never its value, because the value may be a token', () => {
    for (const body of [null, [], { kind: 'TokenReview' }, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', spec: { token: 7 } }, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', spec: { token: 'a:b', audiences: 'x' } }]) {
      assert.throws(
        () => parseTokenReview(body),
        (error: unknown) => error instanceof KubegateError && error.code === 'BAD_REQUEST' && !error.message.includes('a:b'),
      );
    }
  });
});
