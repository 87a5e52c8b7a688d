/**
 * The proxy as a new user meets it: the real `kubegate proxy` process wiring (startProxy),
 * its REST API over TLS, a kubeconfig downloaded from it, and real kubectl — the system
 * client (1.32, WebSocket exec) and Debian's 1.20 (SPDY exec) — against a strict fake API
 * server that records exactly what arrived.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import tls from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { parse } from 'yaml';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { createLogger } from '../../src/log.js';
import { makePod } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { ApiClient } from '../support/api-client.js';
import { attachEcho, portForwardEcho, runKubectl, spawnKubectl } from '../support/kubectl.js';
import { ECHO_PORT } from '../fakes/spdy-portforward.js';
import { FIXTURE_ADMIN_PASSWORD, FIXTURE_CLUSTER_TOKEN, startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';

const ALICE_PASSWORD = 'alice-Secret-pass-42';
const BOB_PASSWORD = 'bob-Secret-pass-4242';
const CLUSTER_TOKEN = FIXTURE_CLUSTER_TOKEN;
const METRICS_TOKEN = 'metrics-scrape-token-0123456789';
const CAROL_PASSWORD = 'carol-Secret-pass-e2e-1';

describe('kubegate proxy end to end with real kubectl', () => {
  let fixture: ProxyFixture;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  let aliceId: string;
  let aliceKubeconfigPath: string;
  let aliceKubeconfigToken: string;
  const secrets: string[] = [FIXTURE_ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, CAROL_PASSWORD, CLUSTER_TOKEN, METRICS_TOKEN];
  let logFile: string;
  let auditFile: string;

  before(async () => {
    fixture = await startProxyFixture({
      name: 'e2e',
      config: (dir) => ({
        audit: { enabled: true, file: join(dir, 'audit.log') },
        log: { level: 'debug' },
        metrics: { listen: '127.0.0.1:0', bearerTokenFile: join(dir, 'metrics-token') },
      }),
      beforeProxy: (_cluster, dir) => writeFile(join(dir, 'metrics-token'), `${METRICS_TOKEN}\n`, { mode: 0o600 }),
      logger: (dir) => createLogger({ level: 'debug', name: 'proxy', destination: pino.destination({ dest: join(dir, 'proxy.log'), sync: true }) }),
    });
    ({ fake, proxy, api, adminToken } = fixture);
    logFile = join(fixture.dir, 'proxy.log');
    auditFile = join(fixture.dir, 'audit.log');
    secrets.push(adminToken);
    const cluster = await api.request('GET', '/v1/clusters/dev', { token: adminToken });
    assert.equal(cluster.status, 200, cluster.text);
    assert.ok(!cluster.text.includes(CLUSTER_TOKEN), 'cluster views never carry credentials');

    const alice = await fixture.addUser('alice', { password: ALICE_PASSWORD });
    aliceId = alice.id;
    secrets.push(alice.token);
    await fixture.addUser('bob', { password: BOB_PASSWORD, role: null });

    const kubeconfig = await fixture.kubeconfig(alice.token);
    aliceKubeconfigToken = kubeconfig.token!;
    secrets.push(aliceKubeconfigToken, kubeconfig.text);
    aliceKubeconfigPath = kubeconfig.path;
  });

  after(async () => {
    await fixture?.close();
  });

  test('the downloaded kubeconfig points at the proxy path of the cluster and trusts the proxy CA', async () => {
    const parsed = parse(await readFile(aliceKubeconfigPath, 'utf8'));
    assert.equal(parsed['current-context'], 'dev');
    const server = parsed.clusters[0].cluster.server as string;
    assert.equal(server, `${proxy.publicUrl}/k8s/clusters/dev`);
    assert.equal(Buffer.from(parsed.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), proxy.caPem);
  });

  for (const binary of ['system', '1.20'] as const) {
    test(`kubectl ${binary} lists pods through the proxy, and the cluster sees the impersonated user, never the client's token`, async () => {
      const before = fake.requests.length;
      const result = await runKubectl({ binary, kubeconfig: aliceKubeconfigPath, args: ['get', 'pods'] });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /web-0\s+1\/1\s+Running/);
      const list = fake.requests.slice(before).find((r) => r.method === 'GET' && r.path === '/api/v1/namespaces/default/pods');
      assert.ok(list, 'the pod list reached the cluster');
      assert.deepEqual(list.user && { username: list.user.username, groups: list.user.groups, impersonated: list.user.impersonated }, {
        username: aliceId,
        groups: ['system:authenticated'],
        impersonated: true,
      });
      assert.equal(list.user?.requester, 'kubegate-proxy', 'the proxy authenticated with its own cluster credentials');
      assert.deepEqual(list.user?.extra['kubegate.io/login-name'], ['alice']);
      assert.deepEqual(list.user?.extra['kubegate.io/provider'], ['local']);
      const authorization = list.rawHeaders.filter((_, i) => i % 2 === 0 && list.rawHeaders[i]!.toLowerCase() === 'authorization');
      assert.equal(authorization.length, 1, 'exactly one Authorization header upstream');
      assert.equal(list.headers.authorization, `Bearer ${CLUSTER_TOKEN}`);
      assert.ok(!list.rawHeaders.join('\n').includes(aliceKubeconfigToken.split(':')[1]!), 'the user token never reaches the cluster');
    });

    test(`kubectl ${binary} exec runs a command through the proxy upgrade`, async () => {
      const result = await runKubectl({ binary, kubeconfig: aliceKubeconfigPath, args: ['exec', 'web-0', '--', 'echo', `hello-${binary}`] });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `hello-${binary}\n`);
      const exec = fake.requests.findLast((r) => r.path.endsWith('/pods/web-0/exec'));
      assert.equal(exec?.status, 101);
      assert.equal(exec?.user?.username, aliceId);
    });

    test(`kubectl ${binary} attach -i echoes each typed line through the proxy upgrade while attached, and detaches when stdin closes`, async () => {
      const result = await attachEcho({
        binary,
        kubeconfig: aliceKubeconfigPath,
        pod: 'web-0',
        lines: [`attached-${binary}\n`, 'second line\n'],
        whileAttached: () => fake.waitUntil(() => fake.openAttachSessions === 1),
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `attached-${binary}\nsecond line\n`);
      const upgrade = fake.requests.findLast((r) => r.path === '/api/v1/namespaces/default/pods/web-0/attach');
      assert.equal(upgrade?.status, 101);
      assert.equal(upgrade?.user?.username, aliceId);
      await fake.waitUntil(() => fake.openAttachSessions === 0);
    });

    test(`kubectl ${binary} port-forward reaches the pod through the proxy upgrade, as the impersonated user`, async () => {
      const result = await portForwardEcho({ binary, kubeconfig: aliceKubeconfigPath, pod: 'web-0', port: ECHO_PORT, messages: [`through-the-proxy-${binary}\n`] });
      assert.deepEqual(result.echoes, [`through-the-proxy-${binary}\n`], result.stderr);
      const upgrade = fake.requests.findLast((r) => r.path.endsWith('/pods/web-0/portforward'));
      assert.equal(upgrade?.status, 101);
      assert.equal(upgrade?.user?.username, aliceId);
    });
  }

  test('an attach without stdin stays open until kubectl goes away, and then the cluster-side session ends too', async () => {
    const attach = await spawnKubectl({ binary: 'system', kubeconfig: aliceKubeconfigPath, args: ['attach', 'web-0'], timeoutMs: 30_000 });
    try {
      await fake.waitUntil(() => fake.openAttachSessions === 1, 20_000);
    } finally {
      await attach.kill();
    }
    await fake.waitUntil(() => fake.openAttachSessions === 0);
  });

  test('kubectl get pods -w streams events, and dropping kubectl closes the upstream watch within a second', async () => {
    const watch = await spawnKubectl({ binary: 'system', kubeconfig: aliceKubeconfigPath, args: ['get', 'pods', '-w', '--output-watch-events'] });
    try {
      await watch.waitForOutput(/web-1/);
      await fake.waitUntil(() => fake.openWatches === 1);
      fake.emitPodEvent('ADDED', makePod('streamed-pod', { namespace: 'default' }));
      await watch.waitForOutput(/streamed-pod/);
      const metrics = await scrape();
      assert.match(metrics, /^kubegate_proxy_active_streams\{kind="watch"\} 1$/m);
    } finally {
      await watch.kill();
    }
    await fake.waitUntil(() => fake.openWatches === 0, 1000);
  });

  /** /metrics from the separate metrics listener, with the configured token. */
  async function scrape(): Promise<string> {
    const response = await fetch(`${proxy.metricsUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(response.status, 200);
    return response.text();
  }

  test('/metrics counts forwarded requests by cluster and code, and token cache hits', async () => {
    const metrics = await scrape();
    assert.match(metrics, /^kubegate_proxy_requests_total\{cluster="dev",code="200",method="GET"\} [1-9]\d*$/m);
    assert.match(metrics, /^kubegate_auth_cache_total\{result="hit"\} [1-9]\d*$/m);
    assert.match(metrics, /^kubegate_auth_cache_total\{result="miss"\} [1-9]\d*$/m);
  });

  test('anonymous requests to made-up clusters add no time series: their cluster label is "unknown" (issue #15)', async () => {
    for (let i = 0; i < 20; i++) {
      const response = await api.request('GET', `/k8s/clusters/made-up-${i}/api/v1/pods`);
      assert.equal(response.status, 401);
    }
    const metrics = await scrape();
    assert.doesNotMatch(metrics, /made-up-/);
    assert.match(metrics, /^kubegate_proxy_requests_total\{cluster="unknown",code="401",method="GET"\} (\d+)$/m);
    const unknown = Number(/^kubegate_proxy_requests_total\{cluster="unknown",code="401",method="GET"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(unknown >= 20);
  });

  test('/metrics is served on the metrics listener, and on the main listener only to a scrape with the configured bearer token (issue #15)', async () => {
    const anonymous = await api.request('GET', '/metrics');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json.error.code, 'UNAUTHENTICATED');
    const wrong = await api.request('GET', '/metrics', { token: `${METRICS_TOKEN}x` });
    assert.equal(wrong.status, 401);
    const userToken = await api.request('GET', '/metrics', { token: adminToken });
    assert.equal(userToken.status, 401, 'a kubegate token is not the metrics token');
    const scraped = await api.request('GET', '/metrics', { token: METRICS_TOKEN });
    assert.equal(scraped.status, 200);
    assert.match(scraped.text, /^kubegate_login_total/m);

    assert.match(proxy.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await fetch(`${proxy.metricsUrl}/metrics`)).status, 401, 'the token is needed on the metrics listener too');
    assert.equal((await fetch(`${proxy.metricsUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${proxy.metricsUrl}/readyz`)).status, 200);
    const other = await fetch(`${proxy.metricsUrl}/v1/providers`);
    assert.equal(other.status, 404, 'the metrics listener serves nothing of the API');
  });

  test('kubectl logs -f follows new lines as the cluster writes them', async () => {
    const logs = await spawnKubectl({ binary: 'system', kubeconfig: aliceKubeconfigPath, args: ['logs', '-f', 'web-0'] });
    try {
      await logs.waitForOutput(/web-0/);
      fake.appendLogLine('default', 'web-0', 'a line written while following');
      await logs.waitForOutput(/a line written while following/);
    } finally {
      await logs.kill();
    }
  });

  test('kubectl --as an identity the cluster does not let alice impersonate is refused with a Kubernetes Status, and nothing reaches the cluster', async () => {
    const before = fake.requests.length;
    const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfigPath, args: ['get', 'pods', '--as', 'system:admin'] });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Forbidden|forbidden/);
    assert.equal(fake.requests.slice(before).filter((r) => r.path.includes('/pods')).length, 0);
  });

  test('a user who is not a member of the cluster gets Forbidden from kubectl', async () => {
    const bobToken = await api.login('bob', BOB_PASSWORD);
    secrets.push(bobToken);
    const kubeconfig = await api.request('GET', '/v1/clusters/dev/kubeconfig', { token: bobToken });
    assert.equal(kubeconfig.status, 404, 'a non-member cannot even see the cluster');
    const result = await runKubectl({
      binary: 'system',
      kubeconfig: { server: `${proxy.publicUrl}/k8s/clusters/dev`, caPem: proxy.caPem!, token: bobToken },
      args: ['get', 'pods'],
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /forbidden|Forbidden/);
  });

  /** Opens a pod watch as `token`; resolves once the cluster holds it, with a promise of its being cut. */
  async function openWatch(token: string): Promise<{ cut: () => Promise<void> }> {
    const watch = https.request(`${proxy.url}/k8s/clusters/dev/api/v1/namespaces/default/pods?watch=true`, { ca: proxy.caPem!, agent: false, headers: { authorization: `Bearer ${token}` } });
    watch.on('error', () => undefined);
    watch.end();
    const [response] = (await once(watch, 'response')) as [IncomingMessage];
    assert.equal(response.statusCode, 200);
    response.resume();
    // Cut, not ended: the response reports "aborted", which is the point.
    response.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => response.once('close', resolve));
    await fake.waitUntil(() => fake.openWatches === 1);
    return {
      async cut() {
        let guard: NodeJS.Timeout | undefined;
        const stillOpen = new Promise<never>((_resolve, reject) => {
          guard = setTimeout(() => reject(new Error('the watch stayed open')), 10_000);
        });
        try {
          await Promise.race([ended, stillOpen]);
        } finally {
          clearTimeout(guard);
          if (!response.destroyed) response.destroy();
        }
        await fake.waitUntil(() => fake.openWatches === 0, 1000);
      },
    };
  }

  test('removing a membership ends the member\'s open watch on that cluster at once (issue #16.5)', async () => {
    const aliceToken = await api.login('alice', ALICE_PASSWORD);
    secrets.push(aliceToken);
    const watch = await openWatch(aliceToken);
    const removed = await api.request('DELETE', `/v1/clusters/dev/members/User/${aliceId}`, { token: adminToken });
    assert.equal(removed.status, 204, removed.text);
    await watch.cut();
    const again = await api.request('POST', '/v1/clusters/dev/members', { token: adminToken, body: { kind: 'User', name: aliceId, role: 'member' } });
    assert.equal(again.status, 201, again.text);
  });

  test('losing the group that granted a membership (a group refresh) ends the open watch it admitted, and refuses the next request', async () => {
    const carol = await fixture.addUser('carol', { password: CAROL_PASSWORD, role: null });
    secrets.push(carol.token);
    const granted = await api.request('POST', '/v1/clusters/dev/members', { token: adminToken, body: { kind: 'Group', name: 'night-shift', role: 'member' } });
    assert.equal(granted.status, 201, granted.text);
    try {
      // What a login or a background refresh of carol's provider stores.
      await proxy.store.putUserGroups({ userId: carol.id, provider: 'local', groups: ['night-shift'], refreshedAt: new Date() });
      const watch = await openWatch(carol.token);
      await proxy.store.putUserGroups({ userId: carol.id, provider: 'local', groups: ['day-shift'], refreshedAt: new Date() });
      await watch.cut();
      const again = await api.request('GET', '/k8s/clusters/dev/api/v1/namespaces/default/pods', { token: carol.token });
      assert.equal(again.status, 403, again.text);
    } finally {
      await api.request('DELETE', '/v1/clusters/dev/members/Group/night-shift', { token: adminToken });
    }
  });

  test('revoking the kubeconfig token makes the very next kubectl call Unauthorized', async () => {
    const ok = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfigPath, args: ['get', 'pods'] });
    assert.equal(ok.code, 0, ok.stderr);
    const name = aliceKubeconfigToken.split(':')[0]!;
    const aliceToken = await api.login('alice', ALICE_PASSWORD);
    secrets.push(aliceToken);
    const revoked = await api.request('DELETE', `/v1/tokens/${name}`, { token: aliceToken });
    assert.equal(revoked.status, 204, revoked.text);
    const denied = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfigPath, args: ['get', 'pods'] });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Unauthorized|must be logged in/);
  });

  test('disabling a user makes all of its tokens fail at once on the proxy path', async () => {
    const aliceToken = await api.login('alice', ALICE_PASSWORD);
    secrets.push(aliceToken);
    const fresh = await api.request('GET', '/v1/clusters/dev/kubeconfig', { token: aliceToken });
    const token = parse(fresh.text).users[0].user.token as string;
    secrets.push(token, fresh.text);
    const kubeconfig = { server: `${proxy.publicUrl}/k8s/clusters/dev`, caPem: proxy.caPem!, token };
    assert.equal((await runKubectl({ binary: 'system', kubeconfig, args: ['get', 'pods'] })).code, 0);
    const disabled = await api.request('PATCH', `/v1/users/${aliceId}`, { token: adminToken, body: { enabled: false } });
    assert.equal(disabled.status, 200, disabled.text);
    const denied = await runKubectl({ binary: 'system', kubeconfig, args: ['get', 'pods'] });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Unauthorized|must be logged in/);
  });

  test('hostile bytes on the wire get an error answer or a closed connection, and the proxy keeps serving', async () => {
    const { port } = new URL(proxy.url);
    const send = (payload: string | Buffer): Promise<string> =>
      new Promise((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port: Number(port), ca: proxy.caPem!, servername: 'localhost' }, () => socket.end(payload));
        let answer = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (answer += chunk));
        socket.on('close', () => resolve(answer));
        socket.on('error', () => resolve(answer));
        socket.setTimeout(5000, () => socket.destroy());
      });
    const hostile: (string | Buffer)[] = [
      'GET /k8s/clusters/%zz/api HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /k8s/clusters/dev/../dev/api HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x:y\r\n\r\n',
      'GET /k8s/clusters/dev/api HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u00ff\u00fe:\u0000\r\n\r\n',
      `GET /k8s/clusters/dev/api HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`,
      'POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"provid',
      'POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc',
      Buffer.from([0x00, 0x01, 0x02, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]),
    ];
    for (const payload of hostile) {
      const answer = await send(payload);
      assert.ok(answer === '' || /^HTTP\/1\.1 (4\d\d|5\d\d) /.test(answer), `unexpected answer: ${answer.slice(0, 120)}`);
    }
    const health = await api.request('GET', '/healthz');
    assert.equal(health.status, 200);
    const pods = await runKubectl({ binary: 'system', kubeconfig: { server: `${proxy.publicUrl}/k8s/clusters/dev`, caPem: proxy.caPem!, token: adminToken }, args: ['get', 'pods'] });
    assert.equal(pods.code, 0, pods.stderr);
  });

  test('after a full run, no password, token, cluster credential or kubeconfig appears in the logs or the audit trail', async () => {
    await fixture.stopProxy();
    const logs = await readFile(logFile, 'utf8');
    const audit = await readFile(auditFile, 'utf8');
    assert.ok(logs.length > 0 && audit.length > 0);
    for (const secret of secrets) {
      const secretPart = secret.includes(':') && !secret.includes('\n') ? secret.slice(secret.indexOf(':') + 1) : secret;
      assert.ok(!logs.includes(secretPart), `a secret (${secretPart.length} characters) leaked into the log`);
      assert.ok(!audit.includes(secretPart), `a secret (${secretPart.length} characters) leaked into the audit trail`);
    }
    const lines = audit.trim().split('\n').map((line) => JSON.parse(line));
    const aliceLines = lines.filter((line) => line.user === aliceId && line.cluster === 'dev');
    assert.ok(aliceLines.some((line) => line.status === 200 && line.path === '/api/v1/namespaces/default/pods'));
    assert.ok(aliceLines.some((line) => line.upgrade === true && line.status === 101));
    assert.ok(lines.some((line) => line.code === 'IMPERSONATION_DENIED' && line.user === aliceId && line.impersonated?.user === 'system:admin'));
  });
});
