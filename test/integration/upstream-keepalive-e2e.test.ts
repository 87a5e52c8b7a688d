/**
 * Keep-alive connections to a cluster's API server, through the real proxy and real kubectl
 * to the strict fake API server (TLS): when the server closes a connection just as the proxy
 * reuses it (its idle timeout, or a load balancer's, racing the reuse), kubectl still gets
 * its answer, and the retry shows in /metrics next to the reuse counts.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { eventually } from '../support/eventually.js';
import { runKubectl } from '../support/kubectl.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { DownloadedKubeconfig, FixtureUser, ProxyFixture } from '../support/proxy-fixture.js';
import { scrapeMetrics } from '../support/scrape-metrics.js';

const PODS = '/api/v1/namespaces/default/pods';

/** A counter's value for the cluster, 0 when it has no series yet. */
function counter(exposition: string, name: string, cluster: string): number {
  const line = exposition.split('\n').find((candidate) => candidate.startsWith(`${name}{cluster="${cluster}"} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('keep-alive connections to the API server', () => {
  let fixture: ProxyFixture;
  let alice: FixtureUser;
  let kubeconfig: DownloadedKubeconfig;

  before(async () => {
    fixture = await startProxyFixture({ name: 'keepalive' });
    alice = await fixture.addUser('alice');
    kubeconfig = await fixture.kubeconfig(alice.token);
  });
  after(() => fixture.close());
  afterEach(() => {
    fixture.fake.closeReusedConnections = false;
  });

  async function counts(): Promise<{ connections: number; requests: number; retries: number }> {
    const metricsUrl = fixture.proxy.metricsUrl;
    assert.ok(metricsUrl !== undefined, 'the fixture serves metrics');
    const text = await scrapeMetrics(metricsUrl);
    return {
      connections: counter(text, 'kubegate_upstream_connections_total', fixture.clusterId),
      requests: counter(text, 'kubegate_upstream_requests_total', fixture.clusterId),
      retries: counter(text, 'kubegate_upstream_retries_total', fixture.clusterId),
    };
  }

  /** Alice's requests (the proxy's background probes aside) that the fake read and then closed the connection on, unanswered. */
  function closedUnanswered(since: number): number {
    return fixture.fake.requests.slice(since).filter((request) => request.headers['impersonate-user'] === alice.id && request.status === undefined).length;
  }

  it('reuses connections: requests one after another go on one connection, counted in /metrics', async () => {
    const before = await counts();
    for (let i = 0; i < 3; i++) assert.equal((await fixture.api.request('GET', `/k8s/clusters/${fixture.clusterId}${PODS}`, { token: alice.token })).status, 200);
    const after = await counts();
    assert.equal(after.requests - before.requests, 3);
    assert.ok(after.connections - before.connections <= 1, 'at most the first request opened a connection');
    assert.equal(after.retries, before.retries);
  });

  it('answers a GET whose reused connection the server closes unanswered, on a new connection, and counts one retry', async () => {
    // A request first, so that the pool holds an idle connection to reuse.
    assert.equal((await fixture.api.request('GET', `/k8s/clusters/${fixture.clusterId}${PODS}`, { token: alice.token })).status, 200);
    const before = await counts();
    const mark = fixture.fake.requests.length;
    fixture.fake.closeReusedConnections = true;
    const answer = await fixture.api.request('GET', `/k8s/clusters/${fixture.clusterId}${PODS}`, { token: alice.token });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.kind, 'PodList');
    assert.equal(closedUnanswered(mark), 1, 'the server closed the reused connection once');
    const after = await counts();
    assert.equal(after.retries - before.retries, 1);
    assert.equal(after.requests - before.requests, 2, 'the stale attempt and its replay');
    assert.equal(after.connections - before.connections, 1, 'the replay opened a connection');
  });

  it('leaves a POST on a stale connection unanswered by a retry: 502 Status, the server saw it once', async () => {
    assert.equal((await fixture.api.request('GET', `/k8s/clusters/${fixture.clusterId}${PODS}`, { token: alice.token })).status, 200);
    const before = await counts();
    const mark = fixture.fake.requests.length;
    fixture.fake.closeReusedConnections = true;
    const answer = await fixture.api.request('POST', `/k8s/clusters/${fixture.clusterId}/api/v1/namespaces/default/configmaps`, {
      token: alice.token,
      body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'once' }, data: { a: 'b' } },
    });
    assert.equal(answer.status, 502, answer.text);
    assert.equal(answer.json.details.causes[0].reason, 'UPSTREAM_UNREACHABLE');
    assert.equal(fixture.fake.requests.slice(mark).filter((request) => request.method === 'POST').length, 1, 'the POST reached the server once');
    assert.equal(closedUnanswered(mark), 1, 'and was closed unanswered');
    assert.equal((await counts()).retries, before.retries);
  });

  it('kubectl get pods succeeds after the server closed its idle connections, on new connections', async () => {
    const warm = await runKubectl({ binary: 'system', kubeconfig: kubeconfig.path, args: ['get', 'pods'] });
    assert.equal(warm.code, 0, warm.stderr);
    const before = await counts();
    fixture.fake.closeIdleConnections();
    await eventually(() => fixture.fake.openSockets() === 0, 5000, "the server's connections to close");
    const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfig.path, args: ['get', 'pods'] });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /web-0/);
    assert.ok((await counts()).connections > before.connections, 'the proxy opened new connections');
  });

  it('kubectl get pods succeeds while the server closes every connection the proxy reuses', async () => {
    const warm = await runKubectl({ binary: 'system', kubeconfig: kubeconfig.path, args: ['get', 'pods'] });
    assert.equal(warm.code, 0, warm.stderr);
    const before = await counts();
    const mark = fixture.fake.requests.length;
    fixture.fake.closeReusedConnections = true;
    const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfig.path, args: ['get', 'pods'] });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /web-0/);
    const closed = closedUnanswered(mark);
    assert.ok(closed >= 1, 'kubectl reached a reused connection at least once');
    assert.equal((await counts()).retries - before.retries, closed, 'each closed request was sent again once');
  });
});
