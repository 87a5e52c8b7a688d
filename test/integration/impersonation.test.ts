/**
 * `kubectl --as` through the proxy (issue #11.1): client `Impersonate-*` headers are
 * authorized by the target cluster — two strict fake API servers, A and B, each answering
 * SubjectAccessReviews by its own policy — and only then forwarded as the requested
 * identity. Over real sockets through a Forwarder with the real upstream pool and reviewer;
 * the last part runs real kubectl against the real `kubegate proxy` wiring.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { authenticated, type AuthResult } from '../../src/auth/authenticator.js';
import { makeUserInfo, type UserInfo } from '../../src/auth/user.js';
import { createUpstreamPool, type UpstreamPool } from '../../src/clusters/upstreams.js';
import { createImpersonationReviewer, type ImpersonationReviewer } from '../../src/proxy/impersonation-review.js';
import type { Cluster } from '../../src/store/store.js';
import { startFakeKubeApiServer, type FakeAccessPolicy, type FakeKubeApiServer, type RecordedSubjectAccessReview } from '../fakes/kube-apiserver.js';
import { connectRaw, directCluster, MapAuthenticator, readUntil, send, startProxy, startRecordingUpstream, statusOf, type ProxyHarness, type RecordingUpstream } from '../support/forward-harness.js';
import { eventually } from '../support/eventually.js';
import { runKubectl } from '../support/kubectl.js';
import { startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.js';

const alice = makeUserInfo({
  name: 'u-aaaaaaaaaaaa',
  groups: ['local:devs', 'system:authenticated'],
  extra: { 'kubegate.io/login-name': ['alice'] },
});
const ALICE = 'Bearer t-alice:s3cret-alice';
const tokens = new Map<string, AuthResult | Error>([['t-alice:s3cret-alice', authenticated(alice, { name: 't-alice', expiresAt: null, clusterId: null })]]);
const PODS = '/api/v1/namespaces/default/pods';

/** Allows exactly the listed `resource[/subresource] [namespace/]name` for `user`. */
function grants(user: string, allowed: readonly string[]): FakeAccessPolicy {
  return (review) => review.user === user && review.resourceAttributes?.verb === 'impersonate' && allowed.includes(attributeOf(review));
}

function attributeOf(review: RecordedSubjectAccessReview): string {
  const attributes = review.resourceAttributes ?? {};
  const resource = attributes.subresource === undefined ? attributes.resource : `${attributes.resource}/${attributes.subresource}`;
  return `${resource} ${attributes.namespace === undefined ? '' : `${attributes.namespace}/`}${attributes.name}`;
}

function cluster(id: string, server: string, caPem: string | null): Cluster {
  return directCluster(id, server, { caPem });
}

describe('kubectl --as through the proxy, decided by the target cluster', () => {
  let fakeA: FakeKubeApiServer;
  let fakeB: FakeKubeApiServer;
  let plain: RecordingUpstream;
  let pool: UpstreamPool;
  let reviewer: ImpersonationReviewer;
  let proxy: ProxyHarness;
  let clock = Date.parse('2030-01-01T00:00:00Z');
  const clusters = new Map<string, Cluster>();

  before(async () => {
    fakeA = await startFakeKubeApiServer({ token: 'proxy-token-a' });
    fakeB = await startFakeKubeApiServer({ token: 'proxy-token-b' });
    plain = await startRecordingUpstream();
    pool = createUpstreamPool({ allowPlainHttp: true, connectTimeoutMs: 1000 });
    reviewer = createImpersonationReviewer({ now: () => clock });
    proxy = await startProxy({
      authenticator: new MapAuthenticator(tokens),
      getCluster: (id) => clusters.get(id),
      authorize: (user: UserInfo) => (user === alice ? 'member' : null),
      upstreams: pool,
      allowedOrigins: [],
      impersonation: reviewer,
    });
  });

  after(async () => {
    await proxy.close();
    pool.close();
    await fakeA.close();
    await fakeB.close();
    await plain.close();
  });

  beforeEach(() => {
    clusters.clear();
    clusters.set('a', cluster('a', fakeA.url, fakeA.caPem));
    clusters.set('b', cluster('b', fakeB.url, fakeB.caPem));
    for (const fake of [fakeA, fakeB]) {
      fake.requests.length = 0;
      fake.subjectAccessReviews.length = 0;
      fake.useAccessPolicy(() => false);
      fake.unavailable = false;
    }
    reviewer.clear();
    proxy.audit.length = 0;
  });

  const get = (clusterId: string, headers: readonly string[]) => send(proxy.port, { path: `/k8s/clusters/${clusterId}${PODS}`, headers: ['Authorization', ALICE, ...headers] });
  const podRequests = (fake: FakeKubeApiServer) => fake.requests.filter((request) => request.path === PODS);

  it('forwards as the requested identity alone once cluster B allows every part, asking B (never A) as alice', async () => {
    fakeB.useAccessPolicy(grants(alice.name, ['users bob', 'groups ops']));
    const response = await get('b', ['Impersonate-User', 'bob', 'Impersonate-Group', 'ops']);
    assert.equal(response.status, 200, response.body.toString());
    const [forwarded] = podRequests(fakeB);
    assert.deepEqual(
      { user: forwarded?.user?.username, groups: forwarded?.user?.groups, impersonated: forwarded?.user?.impersonated, by: forwarded?.user?.requester },
      { user: 'bob', groups: ['ops', 'system:authenticated'], impersonated: true, by: 'kubegate-proxy' },
    );
    const identity = forwarded!.rawHeaders.filter((_, index) => index % 2 === 0 && forwarded!.rawHeaders[index]!.toLowerCase().startsWith('impersonate-'));
    assert.deepEqual(identity, ['Impersonate-User', 'Impersonate-Group'], 'nothing of alice travels with the request');
    assert.deepEqual(
      fakeB.subjectAccessReviews.map((review) => ({ ...review, attributes: attributeOf(review), resourceAttributes: undefined })),
      ['users bob', 'groups ops'].map((attributes) => ({
        requester: 'kubegate-proxy',
        user: alice.name,
        uid: alice.uid,
        groups: ['local:devs', 'system:authenticated'],
        extra: { 'kubegate.io/login-name': ['alice'] },
        nonResourceAttributes: undefined,
        resourceAttributes: undefined,
        attributes,
      })),
    );
    assert.equal(fakeB.subjectAccessReviews[0]?.resourceAttributes?.group, '');
    assert.equal(fakeA.requests.length, 0, 'cluster A is never asked nor contacted');
    const [record] = proxy.audit;
    assert.equal(record?.user, alice.name);
    assert.deepEqual(record?.impersonated, { user: 'bob', uid: '', groups: ['ops'], extra: {} });
    assert.equal(record?.status, 200);
  });

  it('asks the cluster in the path: a grant in A does not let alice act as bob in B, and B is never forwarded to', async () => {
    fakeA.useAccessPolicy(grants(alice.name, ['users bob']));
    const inB = await get('b', ['Impersonate-User', 'bob']);
    assert.deepEqual(statusOf(inB), { code: 403, reason: 'Forbidden', cause: 'IMPERSONATION_DENIED' });
    assert.equal(fakeA.subjectAccessReviews.length, 0);
    assert.equal(fakeB.subjectAccessReviews.length, 1);
    assert.equal(podRequests(fakeB).length, 0);
    const inA = await get('a', ['Impersonate-User', 'bob']);
    assert.equal(inA.status, 200);
    assert.equal(podRequests(fakeA)[0]?.user?.username, 'bob');
    assert.equal(fakeB.subjectAccessReviews.length, 1, 'B is not asked about A');
  });

  it('refuses a denied user with 403 naming it, and audits whom alice tried to act as', async () => {
    const response = await get('b', ['Impersonate-User', 'system:admin']);
    assert.deepEqual(statusOf(response), { code: 403, reason: 'Forbidden', cause: 'IMPERSONATION_DENIED' });
    assert.match(JSON.parse(response.body.toString()).message, /impersonate users "system:admin"/);
    assert.equal(podRequests(fakeB).length, 0);
    assert.deepEqual(proxy.audit.map((record) => [record.code, record.user, record.impersonated?.user]), [['IMPERSONATION_DENIED', alice.name, 'system:admin']]);
  });

  it('refuses a partly denied identity (the user allowed, one group not), naming only what was denied', async () => {
    fakeB.useAccessPolicy(grants(alice.name, ['users bob', 'groups ops']));
    const response = await get('b', ['Impersonate-User', 'bob', 'Impersonate-Group', 'ops', 'Impersonate-Group', 'system:masters']);
    assert.deepEqual(statusOf(response), { code: 403, reason: 'Forbidden', cause: 'IMPERSONATION_DENIED' });
    const message = JSON.parse(response.body.toString()).message as string;
    assert.match(message, /groups "system:masters"/);
    assert.doesNotMatch(message, /users "bob"|groups "ops"/);
    assert.equal(fakeB.subjectAccessReviews.length, 3, 'every attribute is asked about');
    assert.equal(podRequests(fakeB).length, 0);
  });

  it('asks about a service account name as the ServiceAccount in its namespace, and the cluster gives it its groups', async () => {
    fakeB.useAccessPolicy(grants(alice.name, ['serviceaccounts ci/deployer']));
    const response = await get('b', ['Impersonate-User', 'system:serviceaccount:ci:deployer']);
    assert.equal(response.status, 200, response.body.toString());
    assert.deepEqual(fakeB.subjectAccessReviews[0]?.resourceAttributes, { verb: 'impersonate', group: '', version: 'v1', resource: 'serviceaccounts', namespace: 'ci', name: 'deployer' });
    assert.deepEqual(podRequests(fakeB)[0]?.user?.groups, ['system:serviceaccounts', 'system:serviceaccounts:ci', 'system:authenticated']);
    // Not a valid ServiceAccount name: an ordinary user, as kube-apiserver treats it.
    const odd = await get('b', ['Impersonate-User', 'system:serviceaccount:ci:deployer:x']);
    assert.equal(odd.status, 403);
    assert.deepEqual(fakeB.subjectAccessReviews.at(-1)?.resourceAttributes, { verb: 'impersonate', group: '', version: 'v1', resource: 'users', name: 'system:serviceaccount:ci:deployer:x' });
  });

  it('reads every spelling kube-apiserver reads: any case, one group per line (commas kept), percent-encoded extra keys, the uid', async () => {
    fakeB.useAccessPolicy(grants(alice.name, ['users bob', 'groups a,b', 'groups c', 'userextras/acme.com/project x', 'userextras/acme.com/project y', 'uids 42']));
    const response = await get('b', [
      'iMpErSoNaTe-uSeR', 'bob',
      'impersonate-group', 'a,b',
      'IMPERSONATE-GROUP', 'c',
      'Impersonate-Extra-Acme.com%2FProject', 'x',
      'impersonate-extra-acme.com%2fproject', 'y',
      'IMPERSONATE-UID', '42',
    ]);
    assert.equal(response.status, 200, response.body.toString());
    assert.deepEqual(fakeB.subjectAccessReviews.map(attributeOf), ['users bob', 'groups a,b', 'groups c', 'userextras/acme.com/project x', 'userextras/acme.com/project y', 'uids 42']);
    assert.deepEqual(fakeB.subjectAccessReviews[3]?.resourceAttributes?.group, 'authentication.k8s.io');
    const user = podRequests(fakeB)[0]?.user;
    assert.deepEqual({ name: user?.username, uid: user?.uid, groups: user?.groups, extra: user?.extra }, { name: 'bob', uid: '42', groups: ['a,b', 'c', 'system:authenticated'], extra: { 'acme.com/project': ['x', 'y'] } });
  });

  it('answers groups, a uid or extras without a user with 400, asking no cluster', async () => {
    for (const headers of [['Impersonate-Group', 'system:masters'], ['Impersonate-Uid', '1'], ['Impersonate-Extra-scopes', 'all'], ['Impersonate-User', '', 'Impersonate-Group', 'g']]) {
      const response = await get('b', headers);
      assert.deepEqual(statusOf(response), { code: 400, reason: 'BadRequest', cause: 'IMPERSONATION_INVALID' }, headers.join(' '));
    }
    assert.equal(fakeA.requests.length + fakeB.requests.length, 0);
  });

  it('fails closed when the cluster cannot answer: unavailable, refusing the proxy the review, malformed or unreachable — never forwarding', async () => {
    fakeB.unavailable = true;
    const unavailable = await get('b', ['Impersonate-User', 'bob']);
    assert.deepEqual(statusOf(unavailable), { code: 503, reason: 'ServiceUnavailable', cause: 'IMPERSONATION_UNVERIFIED' });
    assert.match(JSON.parse(unavailable.body.toString()).message, /HTTP 503/);
    assert.equal(podRequests(fakeB).length, 0);

    const noRight = await startFakeKubeApiServer({ token: 'proxy-token-c', allowAccessReviews: false });
    try {
      clusters.set('c', cluster('c', noRight.url, noRight.caPem));
      const refused = await get('c', ['Impersonate-User', 'bob']);
      assert.deepEqual(statusOf(refused), { code: 503, reason: 'ServiceUnavailable', cause: 'IMPERSONATION_UNVERIFIED' });
      assert.match(JSON.parse(refused.body.toString()).message, /HTTP 403 Forbidden.*create subjectaccessreviews/);
      assert.equal(podRequests(noRight).length, 0);
    } finally {
      await noRight.close();
    }

    plain.requests.length = 0;
    plain.onRequest = (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"kind":"SubjectAccessReview","status":{}}'));
    };
    clusters.set('m', cluster('m', plain.url, null));
    const malformed = await get('m', ['Impersonate-User', 'bob']);
    assert.deepEqual(statusOf(malformed), { code: 503, reason: 'ServiceUnavailable', cause: 'IMPERSONATION_UNVERIFIED' });
    assert.deepEqual(plain.requests.map((request) => request.url), ['/apis/authorization.k8s.io/v1/subjectaccessreviews'], 'only the review reached the cluster');
    assert.equal(plain.requests[0]?.rawHeaders.some((name) => name.toLowerCase().startsWith('impersonate-')), false, 'the review is the proxy\'s own request');

    clusters.set('gone', cluster('gone', 'http://127.0.0.1:1', null));
    const unreachable = await get('gone', ['Impersonate-User', 'bob']);
    assert.deepEqual(statusOf(unreachable), { code: 503, reason: 'ServiceUnavailable', cause: 'IMPERSONATION_UNVERIFIED' });
    assert.ok(proxy.audit.every((record) => record.code === 'IMPERSONATION_UNVERIFIED' && record.impersonated?.user === 'bob'));
  });

  it('checks an exec upgrade as someone else the same way, before anything reaches the cluster', async () => {
    const exec = (user: string): string =>
      `POST /k8s/clusters/b/api/v1/namespaces/default/pods/web-0/exec?command=id&stdout=true HTTP/1.1\r\nHost: proxy\r\nAuthorization: ${ALICE}\r\n` +
      `Impersonate-User: ${user}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n`;
    fakeB.useAccessPolicy(grants(alice.name, ['users bob']));
    const denied = await connectRaw(proxy.port);
    denied.write(exec('system:admin'));
    assert.match((await readUntil(denied, (data) => data.toString().endsWith('}'))).toString(), /^HTTP\/1\.1 403 [\s\S]*IMPERSONATION_DENIED/);
    denied.destroy();
    assert.equal(fakeB.requests.filter((request) => request.path.endsWith('/exec')).length, 0);

    const allowed = await connectRaw(proxy.port);
    allowed.write(exec('bob'));
    assert.match((await readUntil(allowed, (data) => data.includes('\r\n\r\n'))).toString(), /^HTTP\/1\.1 101 /);
    allowed.destroy();
    const upgrade = fakeB.requests.find((request) => request.path.endsWith('/exec'));
    assert.equal(upgrade?.user?.username, 'bob');
    assert.deepEqual(fakeB.subjectAccessReviews.map(attributeOf), ['users system:admin', 'users bob']);
  });

  it('reuses a decision for a few seconds, then asks again; invalidation asks again at once', async () => {
    fakeB.useAccessPolicy(grants(alice.name, ['users bob']));
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 200);
    assert.equal((await get('b', ['impersonate-user', 'bob'])).status, 200);
    assert.equal(fakeB.subjectAccessReviews.length, 1, 'the second request reused the decision');
    // Revoked in the cluster: still allowed until the TTL passes…
    fakeB.useAccessPolicy(() => false);
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 200);
    clock += 5001;
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 403);
    assert.equal(fakeB.subjectAccessReviews.length, 2);
    // …denials are cached too, and dropped when kubegate learns the user or cluster changed.
    fakeB.useAccessPolicy(grants(alice.name, ['users bob']));
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 403);
    assert.equal(reviewer.invalidateUser('u-zzzzzzzzzzzz'), 0);
    assert.equal(reviewer.invalidateUser(alice.name), 1);
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 200);
    fakeB.useAccessPolicy(() => false);
    assert.equal(reviewer.invalidateCluster('a'), 0);
    assert.equal(reviewer.invalidateCluster('b'), 1);
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 403);
    assert.equal(fakeB.subjectAccessReviews.length, 4);
  });

  it('does not keep a decision that was being made when the user changed', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    plain.requests.length = 0;
    plain.onRequest = (req, res) => {
      req.resume();
      const answer = (): void => {
        if (req.url === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
          void held.then(() => res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"kind":"SubjectAccessReview","status":{"allowed":true}}'));
        } else {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
        }
      };
      req.on('end', answer);
    };
    clusters.set('slow', cluster('slow', plain.url, null));
    const reviews = () => plain.requests.filter((request) => request.url.endsWith('/subjectaccessreviews')).length;
    const first = get('slow', ['Impersonate-User', 'bob']);
    await eventually(() => reviews() === 1, 5000, 'the review reached the cluster');
    reviewer.invalidateUser(alice.name);
    release();
    assert.equal((await first).status, 200, 'the answer still decides the request that asked');
    assert.equal((await get('slow', ['Impersonate-User', 'bob'])).status, 200);
    assert.equal(reviews(), 2, 'but it was not kept for the next one');
  });

  it('never caches a failure: the next request asks again', async () => {
    fakeB.unavailable = true;
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 503);
    fakeB.unavailable = false;
    fakeB.useAccessPolicy(grants(alice.name, ['users bob']));
    assert.equal((await get('b', ['Impersonate-User', 'bob'])).status, 200);
  });
});

describe('real kubectl --as, --as-group and exec --as through kubegate proxy', () => {
  let fixture: ProxyFixture;
  let aliceId = '';
  let kubeconfig = '';

  before(async () => {
    fixture = await startProxyFixture({
      name: 'kubectl-as',
      config: (dir) => ({ audit: { enabled: true, file: join(dir, 'audit.log') } }),
      fake: { accessPolicy: (review) => review.user === aliceId && ['users bob', 'groups ops'].includes(attributeOf(review)) },
    });
    const alice = await fixture.addUser('alice');
    aliceId = alice.id;
    kubeconfig = (await fixture.kubeconfig(alice.token)).path;
  });

  after(async () => {
    await fixture?.close();
  });

  it('runs kubectl get --as bob --as-group ops as bob in ops, once the cluster allowed alice both', async () => {
    const result = await runKubectl({ binary: 'system', kubeconfig, args: ['get', 'pods', '--as', 'bob', '--as-group', 'ops'] });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /web-0/);
    const forwarded = fixture.fake.requests.findLast((request) => request.path === PODS);
    assert.deepEqual([forwarded?.user?.username, forwarded?.user?.groups], ['bob', ['ops', 'system:authenticated']]);
    assert.ok(fixture.fake.subjectAccessReviews.some((review) => review.user === aliceId && attributeOf(review) === 'groups ops'));
  });

  it('runs kubectl exec --as bob as bob', async () => {
    const result = await runKubectl({ binary: 'system', kubeconfig, args: ['exec', 'web-0', '--as', 'bob', '--', 'echo', 'as-bob'] });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /as-bob/);
    const exec = fixture.fake.requests.findLast((request) => request.path.endsWith('/pods/web-0/exec'));
    assert.equal(exec?.status, 101);
    assert.equal(exec?.user?.username, 'bob');
  });

  it('shows kubectl a Forbidden Status naming what the cluster denied, and audits both identities', async () => {
    const before = fixture.fake.requests.filter((request) => request.path === PODS).length;
    const result = await runKubectl({ binary: 'system', kubeconfig, args: ['get', 'pods', '--as', 'bob', '--as-group', 'system:masters'] });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Error from server \(Forbidden\)/);
    // Without discovery in between (--raw takes the whole path), kubectl prints the Status message itself.
    const raw = await runKubectl({ binary: 'system', kubeconfig, args: ['get', '--raw', `/k8s/clusters/${fixture.clusterId}${PODS}`, '--as', 'bob', '--as-group', 'system:masters'] });
    assert.notEqual(raw.code, 0);
    assert.match(raw.stderr, /Forbidden.*impersonate groups "system:masters"/);
    assert.equal(fixture.fake.requests.filter((request) => request.path === PODS).length, before);
    await fixture.stopProxy();
    const lines = (await readFile(join(fixture.dir, 'audit.log'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
    const denied = lines.find((line) => line.code === 'IMPERSONATION_DENIED');
    assert.equal(denied?.user, aliceId);
    assert.deepEqual(denied?.impersonated, { user: 'bob', uid: '', groups: ['system:masters'], extra: {} });
    assert.ok(lines.some((line) => line.status === 101 && line.user === aliceId && line.impersonated?.user === 'bob'));
  });
});

describe('Impersonate-Uid and an API server older than 1.22, and identity.forwardedExtras, through the real kubegate proxy wiring', () => {
  let fixture: ProxyFixture;

  before(async () => {
    fixture = await startProxyFixture({
      name: 'uid-121',
      fake: { version: { major: '1', minor: '21', gitVersion: 'v1.21.14' } },
      config: () => ({ identity: { forwardedExtras: ['kubegate.io/login-name'] } }),
    });
  });

  it('forwards only the extras identity.forwardedExtras names', async () => {
    const carol = await fixture.addUser('carol');
    const before = fixture.fake.requests.length;
    const list = await fixture.api.request('GET', `/k8s/clusters/dev${PODS}`, { token: carol.token });
    assert.equal(list.status, 200, list.text);
    const seen = fixture.fake.requests.slice(before).find((request) => request.path === PODS);
    assert.deepEqual(seen?.user?.extra, { 'kubegate.io/login-name': ['carol'] });
  });

  it('asks the kubectl --as review about the identity the cluster would see: only the extras identity.forwardedExtras names', async () => {
    const dave = await fixture.addUser('dave');
    const before = fixture.fake.subjectAccessReviews.length;
    const asBob = await fixture.api.request('GET', `/k8s/clusters/dev${PODS}`, { token: dave.token, headers: { 'impersonate-user': 'bob' } });
    assert.equal(asBob.status, 403, asBob.text);
    const reviews = fixture.fake.subjectAccessReviews.slice(before).filter((review) => review.user === dave.id);
    assert.equal(reviews.length, 1);
    assert.deepEqual(reviews[0]!.extra, { 'kubegate.io/login-name': ['dave'] });
  });

  after(async () => {
    await fixture?.close();
  });

  it('once the probe has read the version, requests carry no Impersonate-Uid, and --as-uid is refused with the version named', async () => {
    const alice = await fixture.addUser('alice');
    await eventually(async () => (await fixture.api.request('GET', '/v1/clusters/dev', { token: fixture.adminToken })).text.includes('v1.21.14'), 10_000, 'the probe read the version');
    const before = fixture.fake.requests.length;
    const list = await fixture.api.request('GET', `/k8s/clusters/dev${PODS}`, { token: alice.token });
    assert.equal(list.status, 200, list.text);
    const seen = fixture.fake.requests.slice(before).find((request) => request.path === PODS);
    assert.ok(seen);
    assert.equal(seen.headers['impersonate-user'], alice.id);
    assert.equal(seen.headers['impersonate-uid'], undefined);
    const asUid = await fixture.api.request('GET', `/k8s/clusters/dev${PODS}`, { token: alice.token, headers: { 'impersonate-user': 'bob', 'impersonate-uid': '1234' } });
    assert.equal(asUid.status, 400, asUid.text);
    assert.match(asUid.text, /v1\.21\.14.*Impersonate-Uid/);
  });
});
