/**
 * Open streams of OIDC ID tokens used as bearer tokens (`oidcBearer`) end in the same cases
 * as those of kubegate tokens: the real proxy, a real OIDC provider (test/support/oidc-issuer.ts),
 * the strict fake API server, watches held over HTTPS and a real `kubectl exec`. An ID token's
 * groups are its claims and cannot change before it expires, but the memberships they map to
 * can: removing or downgrading the group's membership cuts the stream, as do disabling or
 * deleting the user and the token's expiry. With `groupsFromUserinfo` the groups are the ones
 * stored at the user's last login, so a login that drops a group cuts the streams it admitted.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { makePod } from '../fakes/kube-apiserver.js';
import { eventually } from '../support/eventually.js';
import { spawnKubectl } from '../support/kubectl.js';
import { CLIENT_ID, CLIENT_SECRET, TestBrowser, startOidcIssuer } from '../support/oidc-issuer.js';
import type { OidcIssuer } from '../support/oidc-issuer.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';

const PROVIDER = 'corp-oidc';
const EXTERNAL = 'https://kubegate.test';
const WATCH = '/k8s/clusters/dev/api/v1/namespaces/default/pods?watch=true';

interface HeldStream {
  received(): string;
  isOpen(): boolean;
  /** Resolves when the proxy ends the answer; fails after 10 s naming `why`. */
  cut(why: string): Promise<void>;
  destroy(): void;
}

interface OidcProxy {
  readonly fixture: ProxyFixture;
  readonly issuer: OidcIssuer;
  /** Logs `sub` in through the browser flow (which links it to a user, and stores its groups); returns the user's ID. */
  login(sub: string): Promise<string>;
  /** An ID token the issuer signs for `sub`, valid `seconds` from now. */
  idToken(sub: string, claims?: Record<string, unknown>, seconds?: number): Promise<string>;
  /** A watch through the proxy with `token`, once its first event arrived. */
  watch(token: string): Promise<HeldStream>;
  close(): Promise<void>;
}

async function startOidcProxy(name: string, settings: Record<string, unknown> = {}): Promise<OidcProxy> {
  const issuer = await startOidcIssuer({ redirectUris: [`${EXTERNAL}/v1/login/${PROVIDER}/callback`] });
  const fixture = await startProxyFixture({
    name,
    config: () => ({
      externalUrl: EXTERNAL,
      providers: [
        { name: 'local', type: 'local' },
        {
          name: PROVIDER,
          type: 'oidc',
          settings: { issuer: issuer.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scopes: ['openid', 'profile', 'groups'], allowInsecureIssuerForTests: true, ...settings },
        },
      ],
      oidcBearer: { provider: PROVIDER },
    }),
  });
  const { api, proxy } = fixture;
  return {
    fixture,
    issuer,
    async login(sub) {
      issuer.nextAccount = sub;
      const start = await api.request('GET', `/v1/login/${PROVIDER}`);
      assert.equal(start.status, 302, start.text);
      const callback = new URL(await new TestBrowser().followUntil(String(start.headers['location']), EXTERNAL));
      const login = await api.request('GET', `${callback.pathname}${callback.search}`);
      assert.equal(login.status, 200, login.text);
      return login.json.user.id as string;
    },
    idToken(sub, claims = {}, seconds = 86_400) {
      const now = Math.floor(Date.now() / 1000);
      return issuer.sign({ iss: issuer.issuer, aud: CLIENT_ID, sub, iat: now, exp: now + seconds, ...claims });
    },
    async watch(token) {
      const request = https.request(`${proxy.url}${WATCH}`, { ca: proxy.caPem!, agent: false, headers: { authorization: `Bearer ${token}` } });
      request.on('error', () => undefined);
      request.end();
      const [response] = (await once(request, 'response')) as [IncomingMessage];
      assert.equal(response.statusCode, 200, 'the watch is admitted');
      let received = '';
      let open = true;
      response.once('close', () => (open = false));
      response.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
      response.on('error', () => undefined);
      await eventually(() => received.includes('web-0'), 5000, 'the watch’s first events');
      return { received: () => received, isOpen: () => open, cut: (why) => eventually(() => !open, 10_000, `the watch to be cut: ${why}`), destroy: () => response.destroy() };
    },
    async close() {
      await fixture.close();
      await issuer.close();
    },
  };
}

/** Sends a pod event and waits for `stream` to deliver it: the stream still flows. */
async function stillFlows(oidc: OidcProxy, stream: HeldStream, pod: string): Promise<void> {
  oidc.fixture.fake.emitPodEvent('ADDED', makePod(pod));
  await eventually(() => stream.received().includes(pod), 5000, `the event ${pod} on the open watch`);
  assert.equal(stream.isOpen(), true);
}

describe('streams of OIDC ID tokens whose groups are claims', () => {
  let oidc: OidcProxy;

  before(async () => {
    oidc = await startOidcProxy('oidc-streams');
    for (const sub of ['sub-gail', 'sub-vic', 'sub-dora', 'sub-dan', 'sub-eve']) oidc.issuer.accounts.set(sub, { sub, preferred_username: sub.slice(4) });
  });
  after(async () => {
    await oidc?.close();
  });

  test('removing the membership of the group that admitted a watch cuts the watch, and the token is refused there from then on', async () => {
    await oidc.login('sub-gail');
    await oidc.fixture.grant('Group', `${PROVIDER}:team-gail`, 'member');
    const token = await oidc.idToken('sub-gail', { groups: ['team-gail'] });
    const watch = await oidc.watch(token);
    try {
      const removed = await oidc.fixture.api.request('DELETE', `/v1/clusters/dev/members/Group/${encodeURIComponent(`${PROVIDER}:team-gail`)}`, { token: oidc.fixture.adminToken });
      assert.equal(removed.status, 204, removed.text);
      await watch.cut('the group lost its membership');
    } finally {
      watch.destroy();
    }
    const again = await oidc.fixture.api.request('GET', '/k8s/clusters/dev/api/v1/namespaces/default/pods', { token });
    assert.equal(again.status, 403, again.text);
  });

  test('downgrading that group to viewer cuts a kubectl exec session of the ID token, while its watch goes on', async () => {
    await oidc.login('sub-vic');
    await oidc.fixture.grant('Group', `${PROVIDER}:team-vic`, 'member');
    const token = await oidc.idToken('sub-vic', { groups: ['team-vic'] });
    const { proxy } = oidc.fixture;
    const watch = await oidc.watch(token);
    const session = await spawnKubectl({ binary: 'system', kubeconfig: { server: `${proxy.url}/k8s/clusters/dev`, caPem: proxy.caPem!, token }, args: ['exec', '-i', 'web-0', '--', 'cat'], timeoutMs: 30_000 });
    try {
      session.write('before the change\n');
      await session.waitForOutput('before the change\n');
      const changed = await oidc.fixture.api.request('POST', '/v1/clusters/dev/members', { token: oidc.fixture.adminToken, body: { kind: 'Group', name: `${PROVIDER}:team-vic`, role: 'viewer' } });
      assert.ok(changed.status === 200 || changed.status === 201, changed.text);
      const result = await session.exited();
      assert.equal(result.timedOut, false, 'the exec session was cut, not left to time out');
      assert.notEqual(result.code, 0, result.stderr);
      // A viewer may watch.
      await stillFlows(oidc, watch, 'seen-by-vic-the-viewer');
    } finally {
      await session.kill();
      watch.destroy();
    }
  });

  test('disabling the user cuts the watch of its ID token', async () => {
    const userId = await oidc.login('sub-dora');
    await oidc.fixture.grant('Group', `${PROVIDER}:team-dora`, 'member');
    const watch = await oidc.watch(await oidc.idToken('sub-dora', { groups: ['team-dora'] }));
    try {
      const disabled = await oidc.fixture.api.request('PATCH', `/v1/users/${userId}`, { token: oidc.fixture.adminToken, body: { enabled: false } });
      assert.equal(disabled.status, 200, disabled.text);
      await watch.cut('the user was disabled');
    } finally {
      watch.destroy();
    }
  });

  test('deleting the user cuts the watch of its ID token', async () => {
    const userId = await oidc.login('sub-dan');
    await oidc.fixture.grant('Group', `${PROVIDER}:team-dan`, 'member');
    const watch = await oidc.watch(await oidc.idToken('sub-dan', { groups: ['team-dan'] }));
    try {
      const deleted = await oidc.fixture.api.request('DELETE', `/v1/users/${userId}`, { token: oidc.fixture.adminToken });
      assert.equal(deleted.status, 204, deleted.text);
      await watch.cut('the user was deleted');
    } finally {
      watch.destroy();
    }
  });

  test('the watch of an ID token ends when the token expires', async () => {
    await oidc.login('sub-eve');
    await oidc.fixture.grant('Group', `${PROVIDER}:team-eve`, 'member');
    const token = await oidc.idToken('sub-eve', { groups: ['team-eve'] }, 3);
    const watch = await oidc.watch(token);
    try {
      await watch.cut('the ID token expired');
      assert.ok(Date.now() >= (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000, 'cut at expiry, not before');
    } finally {
      watch.destroy();
    }
  });
});

describe('streams of OIDC ID tokens whose groups come from the userinfo endpoint (groupsFromUserinfo)', () => {
  let oidc: OidcProxy;

  before(async () => {
    oidc = await startOidcProxy('oidc-streams-userinfo', { groupsFromUserinfo: true });
  });
  after(async () => {
    await oidc?.close();
  });

  test('a login that no longer brings the group which admitted a watch cuts the watch; one that keeps it does not', async () => {
    oidc.issuer.accounts.set('sub-uma', { sub: 'sub-uma', preferred_username: 'uma', groups: ['ops'] });
    oidc.issuer.accounts.set('sub-kai', { sub: 'sub-kai', preferred_username: 'kai', groups: ['dev'] });
    await oidc.login('sub-uma');
    await oidc.login('sub-kai');
    await oidc.fixture.grant('Group', `${PROVIDER}:ops`, 'member');
    await oidc.fixture.grant('Group', `${PROVIDER}:dev`, 'viewer');
    // The tokens carry no groups: the proxy uses those stored at the last login.
    const uma = await oidc.watch(await oidc.idToken('sub-uma'));
    const kai = await oidc.watch(await oidc.idToken('sub-kai'));
    try {
      // Kai logs in again, still in dev; then Uma, now in no group at all.
      await oidc.login('sub-kai');
      oidc.issuer.accounts.set('sub-uma', { sub: 'sub-uma', preferred_username: 'uma', groups: [] });
      await oidc.login('sub-uma');
      await uma.cut('Uma lost the group');
      await stillFlows(oidc, kai, 'seen-by-kai');
    } finally {
      uma.destroy();
      kai.destroy();
    }
  });
});
