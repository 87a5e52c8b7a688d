/**
 * Errors that name the right culprit (issue #15), through the real proxy and real kubectl:
 * a cluster refusing the proxy's own credential is not the user's "You must be logged in",
 * and an unreachable or disconnected cluster is not `an error on the server ("unknown")`.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from '../support/eventually.js';
import { runKubectl } from '../support/kubectl.js';
import type { KubectlBinary } from '../support/kubectl.js';
import { FIXTURE_CLUSTER_TOKEN, startProxyFixture } from '../support/proxy-fixture.js';
import type { DownloadedKubeconfig, FixtureUser, ProxyFixture } from '../support/proxy-fixture.js';

const KUBECTLS: readonly KubectlBinary[] = ['system', '1.20'];

/** A port on 127.0.0.1 nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('errors that name the right culprit', () => {
  let fixture: ProxyFixture;
  let alice: FixtureUser;
  let kubeconfig: DownloadedKubeconfig;

  before(async () => {
    fixture = await startProxyFixture({ name: 'culprit' });
    alice = await fixture.addUser('alice');
    kubeconfig = await fixture.kubeconfig(alice.token);
  });
  after(() => fixture.close());

  async function clusterStatus(clusterId: string): Promise<Record<string, unknown>> {
    const answer = await fixture.api.request('GET', `/v1/clusters/${clusterId}`, { token: fixture.adminToken });
    assert.equal(answer.status, 200, answer.text);
    return answer.json.status as Record<string, unknown>;
  }

  async function kubeconfigFor(clusterId: string): Promise<string> {
    const member = await fixture.api.request('POST', `/v1/clusters/${clusterId}/members`, { token: fixture.adminToken, body: { kind: 'User', name: alice.id, role: 'member' } });
    assert.equal(member.status, 201, member.text);
    const answer = await fixture.api.request('GET', `/v1/clusters/${clusterId}/kubeconfig`, { token: alice.token });
    assert.equal(answer.status, 200, answer.text);
    const path = `${fixture.dir}/kubeconfig-${clusterId}`;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, answer.text, { mode: 0o600 });
    return path;
  }

  describe("a cluster that refuses the proxy's credential", () => {
    before(async () => {
      await eventually(async () => (await clusterStatus(fixture.clusterId))['healthy'] === true, 10_000, 'the first probe');
      // The proxy's registered token stops working, as when its ServiceAccount token is rotated.
      fixture.fake.acceptToken('rotated-proxy-token-0123456789');
    });
    after(() => fixture.fake.acceptToken(FIXTURE_CLUSTER_TOKEN));

    it('answers 502 CLUSTER_CREDENTIAL_REFUSED naming the cluster instead of relaying the 401, because the user is authenticated already', async () => {
      const viaClient = await fixture.api.request('GET', `/k8s/clusters/${fixture.clusterId}/api/v1/namespaces/default/pods`, { token: alice.token });
      assert.equal(viaClient.status, 502, viaClient.text);
      assert.equal(viaClient.json.kind, 'Status');
      assert.equal(viaClient.json.details.causes[0].reason, 'CLUSTER_CREDENTIAL_REFUSED');
      assert.match(viaClient.json.message, /cluster "dev" refused the proxy's credential/);
      const last = fixture.fake.requests.at(-1);
      assert.equal(last?.status, 401, 'the cluster did answer 401');
    });

    it('marks the cluster unhealthy in GET /v1/clusters/:id at once', async () => {
      const status = await clusterStatus(fixture.clusterId);
      assert.equal(status['healthy'], false);
      assert.equal(status['credential'], 'refused');
      assert.equal(status['reachable'], true);
      assert.match(String(status['error']), /refused the proxy's credential/);
    });

    for (const binary of KUBECTLS) {
      it(`kubectl ${binary} prints the refused credential, not "You must be logged in"`, async () => {
        const result = await runKubectl({ binary, kubeconfig: kubeconfig.path, args: ['get', 'pods'] });
        assert.notEqual(result.code, 0);
        assert.doesNotMatch(result.stderr, /logged in/i);
        assert.match(result.stderr, /the API server of cluster \\?"dev\\?" refused the proxy's credential/);
      });
    }

    it('refuses an exec upgrade answered 401 the same way', async () => {
      const url = `${fixture.proxy.url.replace('https:', 'wss:')}/k8s/clusters/${fixture.clusterId}/api/v1/namespaces/default/pods/web-0/exec?command=true&stdout=true`;
      const socket = new WebSocket(url, ['v5.channel.k8s.io'], { ca: fixture.proxy.caPem ?? undefined, headers: { authorization: `Bearer ${alice.token}` } });
      const status = await new Promise<{ code: number; body: string }>((resolve, reject) => {
        socket.once('unexpected-response', (_request, response) => {
          let body = '';
          response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
          response.once('end', () => resolve({ code: response.statusCode ?? 0, body }));
        });
        socket.once('open', () => reject(new Error('the upgrade was switched')));
        socket.once('error', () => undefined);
      });
      assert.equal(status.code, 502);
      assert.equal(JSON.parse(status.body).details.causes[0].reason, 'CLUSTER_CREDENTIAL_REFUSED');
    });

    it('a 403 of the cluster (an RBAC answer about the impersonated user) passes through untouched', async () => {
      fixture.fake.acceptToken(FIXTURE_CLUSTER_TOKEN);
      fixture.fake.allowImpersonation = false;
      try {
        const answer = await fixture.api.request('GET', `/k8s/clusters/${fixture.clusterId}/api/v1/namespaces/default/pods`, { token: alice.token });
        assert.equal(answer.status, 403, answer.text);
        assert.equal(answer.json.reason, 'Forbidden');
        assert.match(answer.json.message, /cannot impersonate/);
      } finally {
        fixture.fake.allowImpersonation = true;
      }
    });

    it('is healthy again once a probe gets through with a valid credential', async () => {
      fixture.fake.acceptToken(FIXTURE_CLUSTER_TOKEN);
      // Any change of the cluster probes it at once.
      const patched = await fixture.api.request('PATCH', `/v1/clusters/${fixture.clusterId}`, { token: fixture.adminToken, body: { displayName: 'dev again' } });
      assert.equal(patched.status, 200, patched.text);
      await eventually(async () => (await clusterStatus(fixture.clusterId))['healthy'] === true, 10_000, 'a healthy status');
      assert.equal((await clusterStatus(fixture.clusterId))['credential'], 'accepted');
    });
  });

  describe('a cluster whose API server is down', () => {
    let path: string;
    before(async () => {
      const port = await closedPort();
      const created = await fixture.api.request('POST', '/v1/clusters', {
        token: fixture.adminToken,
        body: { id: 'down', server: `https://127.0.0.1:${port}`, caData: Buffer.from(fixture.fake.caPem).toString('base64'), token: FIXTURE_CLUSTER_TOKEN },
      });
      assert.equal(created.status, 201, created.text);
      path = await kubeconfigFor('down');
    });

    for (const binary of KUBECTLS) {
      it(`kubectl ${binary} get pods prints which cluster could not be reached and why, not "unknown"`, async () => {
        const result = await runKubectl({ binary, kubeconfig: path, args: ['get', 'pods'] });
        assert.notEqual(result.code, 0);
        assert.doesNotMatch(result.stderr, /"unknown"/);
        assert.match(result.stderr, /cluster \\?"down\\?": its API server could not be reached \(ECONNREFUSED\)/);
      });
    }

    it('kubectl version says the same', async () => {
      const result = await runKubectl({ binary: 'system', kubeconfig: path, args: ['version'] });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /cluster \\?"down\\?": its API server could not be reached \(ECONNREFUSED\)/);
    });

    it('other requests still get a Status whose message kubectl prints', async () => {
      const answer = await fixture.api.request('GET', '/k8s/clusters/down/api/v1/namespaces/default/pods', { token: alice.token });
      assert.equal(answer.status, 502, answer.text);
      assert.equal(answer.json.kind, 'Status');
      assert.equal(answer.json.details.causes[0].reason, 'UPSTREAM_UNREACHABLE');
      assert.equal(answer.json.message, 'cluster "down": its API server could not be reached (ECONNREFUSED)');
    });

    it('a discovery read gets the message as text/plain 502 (the one form kubectl prints for it)', async () => {
      const answer = await fixture.api.request('GET', '/k8s/clusters/down/api', { token: alice.token });
      assert.equal(answer.status, 502);
      assert.match(String(answer.headers['content-type']), /^text\/plain/);
      assert.equal(answer.text, 'cluster "down": its API server could not be reached (ECONNREFUSED) (UPSTREAM_UNREACHABLE)\n');
    });
  });

  describe('an agent-mode cluster without an agent', () => {
    let path: string;
    before(async () => {
      const created = await fixture.api.request('POST', '/v1/clusters', { token: fixture.adminToken, body: { id: 'edge', mode: 'agent' } });
      assert.equal(created.status, 201, created.text);
      path = await kubeconfigFor('edge');
    });

    for (const binary of KUBECTLS) {
      it(`kubectl ${binary} prints that the cluster's agent is not connected`, async () => {
        const result = await runKubectl({ binary, kubeconfig: path, args: ['get', 'pods'] });
        assert.notEqual(result.code, 0);
        assert.doesNotMatch(result.stderr, /currently unable to handle the request/);
        assert.match(result.stderr, /cluster \\?"edge\\?": the cluster's agent is not connected to the proxy/);
      });
    }

    it('other requests keep the 503 Status CLUSTER_DISCONNECTED', async () => {
      const answer = await fixture.api.request('GET', '/k8s/clusters/edge/api/v1/namespaces/default/pods', { token: alice.token });
      assert.equal(answer.status, 503, answer.text);
      assert.equal(answer.json.details.causes[0].reason, 'CLUSTER_DISCONNECTED');
      assert.match(answer.json.message, /^cluster "edge": /);
    });
  });
});
