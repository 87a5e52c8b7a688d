/**
 * `identity.kubernetesUsername: email` end to end (issue #11.4): the real `kubegate proxy`
 * wiring with a local provider, an LDAP directory (real slapd) and an OIDC issuer (real
 * oidc-provider), a strict fake cluster with the authorized endpoint in mode `webhook` (the
 * in-cluster webhook answering its TokenReviews). Every path names a user by the verified
 * address the provider vouches for: Impersonate-User on the proxy path (login tokens and
 * OIDC ID tokens as bearer tokens), the webhook's TokenReview username, the issued JWT's
 * `kubegate_username`, the subject of `kubectl --as` reviews, and the User subjects of the
 * synced role bindings. A user without a verified address (an unverified OIDC one, one
 * another user holds) is `provider:login`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { createLogger } from '../../src/log.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { eventually } from '../support/eventually.js';
import { startInClusterWebhook } from '../support/in-cluster-webhook.js';
import type { InClusterWebhook } from '../support/in-cluster-webhook.js';
import { runKubectl } from '../support/kubectl.js';
import { CLIENT_ID, CLIENT_SECRET, TestBrowser, startOidcIssuer } from '../support/oidc-issuer.js';
import type { OidcIssuer } from '../support/oidc-issuer.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';
import { SEED, ldapProviderSettings, replaceAttribute, startSlapd } from '../support/slapd.js';
import type { TestSlapd } from '../support/slapd.js';

const EXTERNAL = 'https://kubegate.test';
const OIDC = 'corp-oidc';
const LDAP = 'corp';
/**
 * The same directory read the way Active Directory's `mail` is (a Unicode string): slapd's
 * `mail` is IA5 and refuses a non-ASCII value, so this provider reads `displayName`.
 */
const LDAP_UNICODE = 'corp-unicode';
const PODS = '/api/v1/namespaces/default/pods';

function pathOf(url: URL | string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

describe('identity.kubernetesUsername email: the verified address on the proxy, the webhook and in JWTs, and in the bindings', () => {
  let fixture: ProxyFixture;
  let webhook: InClusterWebhook | undefined;
  let slapd: TestSlapd;
  let issuer: OidcIssuer;
  /** The proxy's warnings, as JSON lines. */
  const logs: string[] = [];

  before(async () => {
    slapd = await startSlapd();
    issuer = await startOidcIssuer({ redirectUris: [`${EXTERNAL}/v1/login/${OIDC}/callback`] });
    issuer.accounts.set('sub-erin', { sub: 'sub-erin', preferred_username: 'erin', email: 'Erin@Example.ORG', email_verified: true });
    issuer.accounts.set('sub-ursula', { sub: 'sub-ursula', preferred_username: 'ursula', email: 'ursula@example.org', email_verified: false });
    // Vouches for the address an admin gave the local user lena.
    issuer.accounts.set('sub-yuki', { sub: 'sub-yuki', preferred_username: 'yuki', email: 'yūki@example.org', email_verified: true });
    issuer.accounts.set('sub-mallory', { sub: 'sub-mallory', preferred_username: 'mallory', email: 'lena@example.org', email_verified: true });
    fixture = await startProxyFixture({
      name: 'email-principal',
      clusterId: 'edge',
      config: () => ({
        externalUrl: EXTERNAL,
        identity: { kubernetesUsername: 'email' },
        // The background refresh re-reads LDAP identities every second.
        groupRefresh: { maxAge: '1s', interval: '1s' },
        providers: [
          { name: 'local', type: 'local' },
          { name: LDAP, type: 'ldap', settings: ldapProviderSettings(slapd) },
          { name: LDAP_UNICODE, type: 'ldap', settings: { ...ldapProviderSettings(slapd), userEmailAttribute: 'displayName' } },
          {
            name: OIDC,
            type: 'oidc',
            settings: { issuer: issuer.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scopes: ['openid', 'profile', 'email'], allowInsecureIssuerForTests: true },
          },
        ],
        oidcBearer: { provider: OIDC },
      }),
      fake: { namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] },
      logger: () => createLogger({ level: 'warn', name: 'proxy', destination: { write: (line: string) => void logs.push(line) } }),
      async beforeProxy(cluster) {
        webhook = await startInClusterWebhook(cluster, { cacheTtlMs: 500 });
      },
      cluster: (cluster) => ({ ace: { enabled: true, fqdn: `localhost:${cluster.port}`, caData: Buffer.from(cluster.caPem).toString('base64') } }),
    });
  });

  after(async () => {
    await fixture?.stopProxy();
    await webhook?.stop();
    await fixture?.close();
    await issuer?.close();
    await slapd?.stop();
  });

  /** The user name the fake cluster saw on the proxy path for a pod list with `token`. */
  async function nameOnProxyPath(token: string): Promise<string | undefined> {
    const before = fixture.fake.requests.length;
    const list = await fixture.api.request('GET', `/k8s/clusters/edge${PODS}`, { token });
    assert.equal(list.status, 200, list.text);
    return fixture.fake.requests.slice(before).find((request) => request.path === PODS)?.user?.username;
  }

  /** A browser login of the issuer's `account` through the proxy; the user is made a viewer of the cluster. */
  async function oidcLogin(account: string): Promise<{ id: string; token: string }> {
    issuer.nextAccount = account;
    const start = await fixture.api.request('GET', `/v1/login/${OIDC}`);
    assert.equal(start.status, 302, start.text);
    const callback = await new TestBrowser().followUntil(String(start.headers['location']), EXTERNAL);
    const login = await fixture.api.request('GET', pathOf(callback));
    assert.equal(login.status, 200, login.text);
    await fixture.grant('User', login.json.user.id, 'viewer');
    return { id: login.json.user.id, token: login.json.token };
  }

  const bindingSubjects = (): string[] =>
    fixture.fake.objects('clusterrolebindings').flatMap((binding) => ((binding['subjects'] as { kind: string; name: string }[] | undefined) ?? []).map((subject) => `${subject.kind}/${subject.name}`));

  /** An LDAP login of the seeded `uid`, made a viewer; checks it is named by its seeded mail on the proxy path and in its binding. */
  async function ldapViewerNamedByMail(uid: 'alice' | 'bob'): Promise<string> {
    const token = await fixture.api.login(uid, SEED.users[uid].password, LDAP);
    const me = await fixture.api.request('GET', '/v1/me', { token });
    await fixture.grant('User', me.json.id, 'viewer');
    assert.equal(await nameOnProxyPath(token), `${uid}@example.org`);
    await eventually(() => bindingSubjects().includes(`User/${uid}@example.org`), 5000, 'the binding names the address');
    return token;
  }

  it('names an LDAP user by the directory’s mail on the proxy path and in its binding, and follows the directory when it changes', async () => {
    const token = await ldapViewerNamedByMail('alice');

    await slapd.asAdmin((ldap) => replaceAttribute(ldap, SEED.users.alice.dn, 'mail', ['Alice.Liddell@Example.org']));
    const again = await fixture.api.login('alice', SEED.users.alice.password, LDAP);
    assert.equal(await nameOnProxyPath(again), 'Alice.Liddell@example.org');
    // The older token names the new address too: the login dropped the cached identity.
    assert.equal(await nameOnProxyPath(token), 'Alice.Liddell@example.org');
    await eventually(
      () => bindingSubjects().includes('User/Alice.Liddell@example.org') && !bindingSubjects().includes('User/alice@example.org'),
      5000,
      'the binding re-synced to the new address',
    );
  });

  it('follows the directory’s changed mail without a new login: the background refresh renames the user on the proxy path and re-binds it', async (t) => {
    t.after(() => slapd.asAdmin((ldap) => replaceAttribute(ldap, SEED.users.bob.dn, 'mail', ['bob@example.org'])));
    const token = await ldapViewerNamedByMail('bob');

    await slapd.asAdmin((ldap) => replaceAttribute(ldap, SEED.users.bob.dn, 'mail', ['robert@example.org']));
    await eventually(async () => (await nameOnProxyPath(token)) === 'robert@example.org', 10_000, 'the proxy path names the new address');
    assert.equal((await fixture.api.request('GET', '/v1/me', { token })).json.email, 'robert@example.org');
    await eventually(
      () => bindingSubjects().includes('User/robert@example.org') && !bindingSubjects().includes('User/bob@example.org'),
      5000,
      'the binding re-synced to the new address',
    );
  });

  /** An ID token of the issuer for `account`, as an oidc-login plugin would hold it (device flow). */
  async function idTokenOf(account: string): Promise<string> {
    const configuration = await client.discovery(new URL(issuer.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] });
    const device = await client.initiateDeviceAuthorization(configuration, { scope: 'openid profile email' });
    issuer.nextAccount = account;
    await new TestBrowser().approveDevice(device.verification_uri_complete ?? '');
    const tokens = await client.genericGrantRequest(configuration, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: device.device_code });
    return tokens.id_token ?? '';
  }

  it('names an OIDC user by a verified email claim, on login tokens and on the ID token as a bearer token alike', async () => {
    const erin = await oidcLogin('sub-erin');
    assert.equal(await nameOnProxyPath(erin.token), 'Erin@example.org');
    assert.equal(await nameOnProxyPath(await idTokenOf('sub-erin')), 'Erin@example.org');
    // A new ID token with a new verified address records it on the bearer path too: every path follows.
    issuer.accounts.set('sub-erin', { ...issuer.accounts.get('sub-erin')!, email: 'erin.k@example.org' });
    assert.equal(await nameOnProxyPath(await idTokenOf('sub-erin')), 'erin.k@example.org');
    assert.equal((await fixture.api.request('GET', '/v1/me', { token: erin.token })).json.email, 'erin.k@example.org');
    assert.equal(await nameOnProxyPath(erin.token), 'erin.k@example.org');
  });

  it('does not use an address the issuer has not verified: that user is provider:login', async () => {
    const ursula = await oidcLogin('sub-ursula');
    assert.equal(await nameOnProxyPath(ursula.token), `${OIDC}:ursula`);
  });

  it('names a local user by the address an admin vouched for, on the webhook path, in kubectl --as reviews and in JWTs too', async () => {
    const lena = await fixture.addUser('lena', { role: 'viewer' });
    const bad = await fixture.api.request('PATCH', `/v1/users/${lena.id}`, { token: fixture.adminToken, body: { email: 'lena at example.org' } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.field, 'email');
    assert.equal(await nameOnProxyPath(lena.token), 'local:lena', 'no address yet: provider:login');
    const set = await fixture.api.request('PATCH', `/v1/users/${lena.id}`, { token: fixture.adminToken, body: { email: 'lena@Example.org' } });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.json.email, 'lena@example.org');
    assert.equal(await nameOnProxyPath(lena.token), 'lena@example.org');

    const downloaded = await fixture.kubeconfig(lena.token, '?context=ace');
    const tokenName = String(downloaded.token).split(':')[0]!;
    await eventually(() => fixture.fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, tokenName) !== undefined, 5000, 'token synced');
    await eventually(() => bindingSubjects().includes('User/lena@example.org'), 5000, 'the binding names the address');
    // The kubeconfig's current context is the authorized endpoint (`?context=ace`); its proxy
    // context names externalUrl, which does not resolve here (the proxy path is checked above).
    const before = fixture.fake.requests.length;
    const result = await runKubectl({ binary: 'system', kubeconfig: downloaded.path, args: ['get', 'pods', '-o', 'name'] });
    assert.equal(result.code, 0, result.stderr);
    const lists = fixture.fake.requests.slice(before).filter((request) => request.path === PODS && request.status === 200);
    assert.equal(lists.length, 1);
    assert.equal(lists[0]!.user?.authenticatedBy, 'webhook');
    assert.equal(lists[0]!.user?.username, 'lena@example.org');
    assert.equal(lists[0]!.user?.uid, lena.id);

    // kubectl --as is reviewed by the cluster for the same name.
    fixture.fake.useAccessPolicy((review) => review.user === 'lena@example.org' && review.resourceAttributes?.resource === 'users' && review.resourceAttributes.name === 'bob');
    try {
      const reviewed = fixture.fake.subjectAccessReviews.length;
      const asBob = await fixture.api.request('GET', `/k8s/clusters/edge${PODS}`, { token: lena.token, headers: { 'impersonate-user': 'bob' } });
      assert.equal(asBob.status, 200, asBob.text);
      assert.deepEqual(fixture.fake.subjectAccessReviews.slice(reviewed).map((review) => [review.user, review.uid]), [['lena@example.org', lena.id]]);
    } finally {
      fixture.fake.useAccessPolicy(() => false);
    }

    const issued = await fixture.api.request('POST', '/v1/clusters/edge/jwt', { token: lena.token });
    assert.equal(issued.status, 201, issued.text);
    const payload = JSON.parse(Buffer.from(String(issued.json.token).split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(payload['kubegate_username'], 'lena@example.org');
    assert.equal(payload['sub'], lena.id);
  });

  /** Checks the warning a login of `userId` at `provider` logged since `from`, and that no log line holds `localPart`. */
  function assertRefusedAddressWarned(from: number, userId: string, provider: string, localPart: string): void {
    const lines = logs.slice(from);
    const warning = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => String(entry['msg']).includes('is not one kubegate accepts'));
    assert.equal(warning?.['user'], userId);
    assert.equal(warning?.['provider'], provider);
    for (const line of lines) assert.ok(!line.includes(localPart) && !line.includes(JSON.stringify(localPart).slice(1, -1)), 'the address is never logged');
  }

  it('logs in an OIDC user whose verified address is not ASCII, named provider:login and with no address recorded, with a warning that does not print it', async () => {
    const from = logs.length;
    const yuki = await oidcLogin('sub-yuki');
    assert.equal(await nameOnProxyPath(yuki.token), `${OIDC}:yuki`);
    assert.equal((await fixture.api.request('GET', '/v1/me', { token: yuki.token })).json.email, null);
    assertRefusedAddressWarned(from, yuki.id, OIDC, 'yūki');
    // Its ID token as a bearer token works too, under the same name.
    assert.equal(await nameOnProxyPath(await idTokenOf('sub-yuki')), `${OIDC}:yuki`);
  });

  it('logs in an LDAP user whose directory address is not ASCII, named provider:login and with no address recorded, with a warning that does not print it', async () => {
    await slapd.asAdmin((ldap) => replaceAttribute(ldap, SEED.users.dave.dn, 'displayName', ['dävé@example.org']));
    const from = logs.length;
    const token = await fixture.api.login('dave', SEED.users.dave.password, LDAP_UNICODE);
    const me = await fixture.api.request('GET', '/v1/me', { token });
    assert.equal(me.json.email, null);
    await fixture.grant('User', me.json.id, 'viewer');
    assert.equal(await nameOnProxyPath(token), `${LDAP_UNICODE}:dave`);
    assertRefusedAddressWarned(from, me.json.id, LDAP_UNICODE, 'dävé');
  });

  it('does not give a second user an address another user holds: the OIDC user vouched for lena’s address is provider:login, lena keeps it', async () => {
    const mallory = await oidcLogin('sub-mallory');
    assert.equal(await nameOnProxyPath(mallory.token), `${OIDC}:mallory`);
    const users = await fixture.api.request('GET', '/v1/users', { token: fixture.adminToken });
    const emails = Object.fromEntries((users.json.items as { username: string; email: string | null }[]).map((user) => [user.username, user.email]));
    assert.equal(emails['mallory'], null);
    assert.equal(emails['lena'], 'lena@example.org');
    const taken = await fixture.api.request('PATCH', `/v1/users/${mallory.id}`, { token: fixture.adminToken, body: { email: 'LENA@example.org' } });
    assert.equal(taken.status, 409, taken.text);
    assert.equal(taken.json.error.field, 'email');
  });
});
