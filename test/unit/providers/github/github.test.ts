import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isKubegateError } from '../../../../src/errors.js';
import { createGithubClient, nextLink } from '../../../../src/providers/github/api.js';
import { createGithubProvider, identityFromGithub } from '../../../../src/providers/github/github.js';
import { githubEndpoints } from '../../../../src/providers/github/settings.js';
import { startFakeGithub } from '../../../fakes/github.js';
import type { FakeGithub } from '../../../fakes/github.js';

const base = { clientId: 'id', clientSecret: 'secret' };

function configOf(settings: Record<string, unknown>) {
  return { name: 'github', type: 'github', enabled: true, settings };
}

function assertConfigInvalid(settings: Record<string, unknown>, field: string): void {
  assert.throws(() => createGithubProvider(configOf(settings)), (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && error.field === field);
}

describe('GitHub provider settings', () => {
  it('uses api.github.com for github.com and /api/v3 on the host for GitHub Enterprise', () => {
    const dotcom = githubEndpoints({ hostname: 'github.com', apiUrl: undefined, oauthUrl: undefined });
    assert.equal(dotcom.authorize.href, 'https://github.com/login/oauth/authorize');
    assert.equal(dotcom.accessToken.href, 'https://github.com/login/oauth/access_token');
    assert.equal(dotcom.api.href, 'https://api.github.com/');
    const enterprise = githubEndpoints({ hostname: 'GHE.example.com', apiUrl: undefined, oauthUrl: undefined });
    assert.equal(enterprise.authorize.href, 'https://ghe.example.com/login/oauth/authorize');
    assert.equal(enterprise.api.href, 'https://ghe.example.com/api/v3/');
  });

  it('refuses http:// URLs unless the test-only setting allows them, because the client secret would travel in clear text', () => {
    assertConfigInvalid({ ...base, apiUrl: 'http://127.0.0.1:1' }, 'settings.apiUrl');
    assertConfigInvalid({ ...base, oauthUrl: 'http://127.0.0.1:1' }, 'settings.oauthUrl');
    assert.equal(createGithubProvider(configOf({ ...base, apiUrl: 'http://127.0.0.1:1', allowInsecureUrlsForTests: true })).type, 'github');
  });

  it('refuses an unknown setting, a missing secret, a bad hostname and required mode without principals, naming the field', () => {
    assertConfigInvalid({ ...base, organizations: ['acme'] }, 'settings.organizations');
    assertConfigInvalid({ clientId: 'id' }, 'settings.clientSecret');
    assertConfigInvalid({ ...base, hostname: 'https://github.com' }, 'settings.hostname');
    assertConfigInvalid({ ...base, accessMode: 'required' }, 'settings.allowedPrincipals');
  });

  it('lower-cases allowed org and team principals, because GitHub names are case-insensitive', () => {
    const provider = createGithubProvider(configOf({ ...base, accessMode: 'required', allowedPrincipals: ['group:github:Acme/SRE', 'user:42'] }));
    assert.deepEqual(provider.access?.allowedPrincipals, ['group:github:acme/sre', 'user:42']);
  });
});

describe('identity from GitHub answers', () => {
  it('uses the numeric ID, the login and the profile name, falling back to the login', () => {
    const named = identityFromGithub('gh', { id: 7, login: 'Octo', name: 'Octo Cat' }, [{ login: 'Acme' }], [{ slug: 'sre', organization: { login: 'Acme' } }]);
    assert.deepEqual(named, { providerUserId: '7', loginName: 'Octo', displayName: 'Octo Cat', groups: ['gh:acme', 'gh:acme/sre'] });
    assert.equal(identityFromGithub('gh', { id: 7, login: 'Octo', name: null }, [], []).displayName, 'Octo');
  });

  it('answers PROVIDER_UNAVAILABLE for a /user without a numeric id, because GitHub is misbehaving, not the person', () => {
    for (const user of [{ login: 'x' }, { id: '7', login: 'x' }, { id: 7 }, { id: -1, login: 'x' }]) {
      assert.throws(() => identityFromGithub('gh', user, [], []), (error: unknown) => isKubegateError(error, 'PROVIDER_UNAVAILABLE'));
    }
  });

  it('refuses a system: login, because it would become a reserved Kubernetes name', () => {
    assert.throws(() => identityFromGithub('gh', { id: 7, login: 'system:admin' }, [], []), (error: unknown) => isKubegateError(error, 'IDENTITY_NAME_RESERVED'));
  });

  it('takes the primary address only when GitHub marks it verified, never another one', () => {
    const email = (emails: unknown[]): string | undefined => identityFromGithub('gh', { id: 7, login: 'x' }, [], [], emails).email;
    assert.equal(
      email([
        { email: 'old@example.org', primary: false, verified: true },
        { email: 'Octo@Example.ORG', primary: true, verified: true },
      ]),
      'Octo@example.org',
    );
    assert.equal(email([{ email: 'octo@example.org', primary: true, verified: false }, { email: 'other@example.org', primary: false, verified: true }]), undefined);
    assert.equal(email([{ email: 'not an address', primary: true, verified: true }]), undefined);
    assert.equal(email([null, 'octo@example.org', { email: 7, primary: true, verified: true }]), undefined);
    assert.equal(email([]), undefined);
  });

  it('skips entries of the wrong shape', () => {
    const identity = identityFromGithub('gh', { id: 7, login: 'x' }, [null, 3, { login: 5 }, { login: '' }], [{ slug: 'a' }, { slug: 'b', organization: {} }, 'c']);
    assert.deepEqual(identity.groups, []);
  });
});

describe('GitHub pagination', () => {
  it('follows rel="next" among several relations and ignores a header without one', () => {
    const from = new URL('https://api.github.com/user/orgs?per_page=100');
    const header = '<https://api.github.com/user/orgs?page=1>; rel="prev", <https://api.github.com/user/orgs?page=3>; rel="next", <https://api.github.com/user/orgs?page=9>; rel="last"';
    assert.equal(nextLink(header, from)?.href, 'https://api.github.com/user/orgs?page=3');
    assert.equal(nextLink('<https://api.github.com/user/orgs?page=1>; rel="first"', from), undefined);
    assert.equal(nextLink(null, from), undefined);
  });

  describe('against the GitHub fake', () => {
    let fake: FakeGithub;
    let token: string;
    const redirectUri = 'https://kubegate.example.test/v1/login/github/callback';

    before(async () => {
      fake = await startFakeGithub({ clientId: 'id', clientSecret: 'secret', redirectUris: [redirectUri], maxPerPage: 100 });
      fake.users.set(1, { id: 1, login: 'many', orgs: Array.from({ length: 250 }, (_, i) => `org-${i}`), teams: [] });
      fake.nextUser = 1;
      const back = await fetch(`${fake.url}/login/oauth/authorize?client_id=id&state=s&redirect_uri=${encodeURIComponent(redirectUri)}`, { redirect: 'manual' });
      const code = new URL(back.headers.get('location') ?? '').searchParams.get('code') ?? '';
      token = await client(10).exchangeCode(code, redirectUri, 'unused-without-a-challenge');
    });
    after(() => fake?.close());

    function client(maxPages: number) {
      return createGithubClient({ endpoints: githubEndpoints({ hostname: 'github.com', apiUrl: fake.url, oauthUrl: fake.url }), clientId: 'id', clientSecret: 'secret', timeoutSeconds: 5, maxPages });
    }

    it('stops after maxPages and says so, because a huge membership must not make a login unbounded', async () => {
      const list = await client(2).getList('user/orgs', token);
      assert.equal(list.items.length, 200);
      assert.equal(list.truncated, true);
      assert.equal((await client(3).getList('user/orgs', token)).truncated, false);
    });

    it('refuses to follow a Link to another site, because the access token must not leave GitHub', async () => {
      fake.linkBase = 'http://127.0.0.2:1';
      try {
        await assert.rejects(client(10).getList('user/orgs', token), (error: unknown) => isKubegateError(error, 'PROVIDER_UNAVAILABLE'));
      } finally {
        fake.linkBase = fake.url;
      }
    });

    it('answers LOGIN_CALLBACK_INVALID for a used code, as GitHub reports bad_verification_code', async () => {
      await assert.rejects(client(1).exchangeCode('0123456789abcdef0123', redirectUri, 'x'), (error: unknown) => isKubegateError(error, 'LOGIN_CALLBACK_INVALID'));
    });
  });
});
