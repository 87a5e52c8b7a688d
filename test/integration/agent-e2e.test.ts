/**
 * An agent-mode cluster end to end, as an operator attaches one: the real proxy (startProxy),
 * an admin creating the cluster and its import, the Secret the manifest creates put into the
 * cluster, two real `kubegate agent` processes that register and dial out, and real kubectl
 * (1.32 and Debian's 1.20) through `/k8s/clusters/edge`.
 *
 * The proxy is never told where the API server is. The agents reach it through a TCP relay
 * the test owns, so "every connection the API server accepted came through an agent" is
 * checked by counting: connections at the API server == connections through the relay.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments, parse } from 'yaml';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { startProxyForAgents } from '../support/agent-proxy.js';
import type { ApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { attachEcho, portForwardEcho, runKubectl, spawnKubectl } from '../support/kubectl.js';
import { ECHO_PORT } from '../fakes/spdy-portforward.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-agent';
const ALICE_PASSWORD = 'alice-Secret-pass-agent';
const AGENT_SA_TOKEN = 'agent-service-account-token-0123456789';

interface Relay {
  readonly port: number;
  accepted: number;
  close(): void;
}

/** A TCP relay to `target`, counting the connections it carries. */
async function startRelay(target: number): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const relay: Relay = {
    port: 0,
    accepted: 0,
    close: () => {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
  const server = net.createServer((client) => {
    relay.accepted++;
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(relay, { port: (server.address() as net.AddressInfo).port });
}

describe('an agent-mode cluster with real agents and real kubectl', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let relay: Relay;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  let aliceId: string;
  let aliceKubeconfig: string;
  let aliceToken: string;
  let importView: Record<string, any>;
  const agents: AgentProcess[] = [];
  let files: { proxyCa: string; apiCa: string; apiToken: string };
  /** Connections the test itself made to the API server (as kubectl apply would). */
  let directConnections = 0;

  function agent(agentId: string): AgentProcess {
    const process = spawnAgent({
      proxyUrl: proxy.url,
      proxyCaFile: files.proxyCa,
      clusterId: 'edge',
      agentId,
      apiServer: `https://127.0.0.1:${relay.port}`,
      apiServerName: 'localhost',
      apiCaFile: files.apiCa,
      apiTokenFile: files.apiToken,
    });
    agents.push(process);
    return process;
  }

  async function clusterView(): Promise<Record<string, any>> {
    const view = await api.request('GET', '/v1/clusters/edge', { token: adminToken });
    assert.equal(view.status, 200, view.text);
    return view.json;
  }

  /**
   * kubectl fails saying the cluster's agent is not connected (its discovery read gets the
   * message as text, the one form it prints: kube/status.ts), and the Status body of other
   * requests names the cluster's state.
   */
  async function assertDisconnectedStatus(): Promise<void> {
    const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods', '--request-timeout=5s'] });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /cluster \\"edge\\": the cluster's agent is not connected to the proxy; check the kubegate agent in that cluster \(CLUSTER_DISCONNECTED\)/);
    const status = await api.request('GET', '/k8s/clusters/edge/api/v1/namespaces/default/pods', { token: aliceToken });
    assert.equal(status.status, 503);
    assert.equal(status.json.kind, 'Status');
    assert.equal(status.json.details.causes[0].reason, 'CLUSTER_DISCONNECTED');
    assert.match(status.json.message, /agent is not connected/);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-agent-e2e-'));
    fake = await startFakeKubeApiServer({ token: AGENT_SA_TOKEN, namespaces: ['default', 'kube-system', 'kubegate-system', 'cattle-system'] });
    relay = await startRelay(fake.port);
    ({ proxy, api } = await startProxyForAgents(dir, ADMIN_PASSWORD));
    files = { proxyCa: join(dir, 'proxy-ca.pem'), apiCa: join(dir, 'api-ca.pem'), apiToken: join(dir, 'api-token') };
    await writeFile(files.proxyCa, proxy.caPem ?? '');
    await writeFile(files.apiCa, fake.caPem);
    await writeFile(files.apiToken, `${AGENT_SA_TOKEN}\n`);

    adminToken = await api.login('admin', ADMIN_PASSWORD);
    const created = await api.request('POST', '/v1/clusters', { token: adminToken, body: { id: 'edge', mode: 'agent', displayName: 'Edge site' } });
    assert.equal(created.status, 201, created.text);
    importView = created.json.import;

    const alice = await api.request('POST', '/v1/users', { token: adminToken, body: { username: 'alice', password: ALICE_PASSWORD } });
    aliceId = alice.json.id;
    const member = await api.request('POST', '/v1/clusters/edge/members', { token: adminToken, body: { kind: 'User', name: aliceId, role: 'member' } });
    assert.equal(member.status, 201, member.text);
    aliceToken = await api.login('alice', ALICE_PASSWORD);
    const kubeconfig = await api.request('GET', '/v1/clusters/edge/kubeconfig', { token: aliceToken });
    assert.equal(kubeconfig.status, 200, kubeconfig.text);
    aliceKubeconfig = join(dir, 'alice.kubeconfig');
    await writeFile(aliceKubeconfig, kubeconfig.text, { mode: 0o600 });
  });

  after(async () => {
    await Promise.all(agents.map((process) => process.kill('SIGKILL')));
    await proxy?.stop();
    relay?.close();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('creating an agent-mode cluster answers its import: a one-line command and a manifest with the proxy CA and a one-time token', async () => {
    assert.equal(importView['clusterId'], 'edge');
    assert.match(importView['url'], /^https:\/\/127\.0\.0\.1:\d+\/v1\/import\/r-[a-z2-7]{12}:[a-z2-7]{54}\.yaml$/);
    assert.equal(importView['command'], `kubectl apply -f ${importView['url']}`);
    assert.match(importView['commandWithCa'], /^curl -fsS --cacert <\(echo [A-Za-z0-9+/=]+ \| base64 -d\) https:\/\/.* \| kubectl apply -f -$/);
    // The URL serves the same manifest, over TLS verified with the proxy's CA.
    const fetched = await new Promise<string>((resolve, reject) => {
      https
        .get(importView['url'], { ca: proxy.caPem ?? undefined }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`HTTP ${res.statusCode}: ${text}`))));
        })
        .on('error', reject);
    });
    assert.equal(fetched, importView['manifest']);
    const objects = parseAllDocuments(fetched).map((document) => document.toJS());
    const configMap = objects.find((object) => object.kind === 'ConfigMap');
    assert.equal(configMap.data['ca.pem'], proxy.caPem);
    const deployment = objects.find((object) => object.kind === 'Deployment');
    assert.equal(deployment.spec.template.spec.containers[0].image, 'registry.example/kubegate:test');
    // A manifest URL with a wrong token is refused, and tells nothing.
    const wrong = await api.request('GET', `/v1/import/r-aaaaaaaaaaaa:${'b'.repeat(54)}.yaml`);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'REGISTRATION_TOKEN_INVALID');
  });

  test('before any agent connects, the cluster is disconnected and kubectl gets a 503 Status naming the state', async () => {
    const view = await clusterView();
    assert.equal(view['mode'], 'agent');
    assert.deepEqual(view['agent'], { state: 'disconnected', agents: [] });
    await assertDisconnectedStatus();
    // The sync waits for an agent instead of failing in a loop.
    await eventually(async () => /^CLUSTER_DISCONNECTED: /.test(String((await clusterView())['sync']?.error)), 5000, 'the sync to say it waits for an agent');
  });

  test('two agents register with one registration token between them and connect; the Secret then holds only the credential', async () => {
    // What `kubectl apply` of the manifest puts in the cluster: the agent's Secret.
    const secret = parseAllDocuments(importView['manifest'])
      .map((document) => document.toJS())
      .find((object) => object.kind === 'Secret');
    const beforeCreate = fake.connectionCount();
    await createInFake(fake, '/api/v1/namespaces/kubegate-system/secrets', { ...secret, stringData: undefined, data: { 'registration-token': Buffer.from(secret.stringData['registration-token']).toString('base64') } });

    directConnections = fake.connectionCount() - beforeCreate;
    const first = agent('agent-0');
    const second = agent('agent-1');
    await first.waitForLog(/tunnel to the proxy is up/, 60_000);
    await second.waitForLog(/tunnel to the proxy is up/, 60_000);
    await eventually(async () => (await clusterView())['agent'].agents.length === 2, 10_000, 'two agents in the cluster view');
    const view = await clusterView();
    assert.equal(view['agent'].state, 'connected');
    assert.deepEqual(view['agent'].agents.map((entry: Record<string, unknown>) => entry['agentId']).sort(), ['agent-0', 'agent-1']);
    assert.equal(view['agent'].agents[0].kubernetesVersion, 'v1.32.4');
    await eventually(async () => (await clusterView())['status']?.reachable === true, 10_000, 'the status probe through the tunnel');
    assert.equal((await clusterView())['status'].version, 'v1.32.4');

    const stored = fake.objects('secrets', 'kubegate-system').find((object) => object.metadata.name === 'kubegate-agent');
    assert.ok(stored);
    const data = stored['data'] as Record<string, string>;
    assert.equal(data['registration-token'], undefined, 'the registration token is gone');
    assert.match(Buffer.from(data['credential'] ?? '', 'base64').toString(), /^a-[a-z2-7]{12}:[a-z2-7]{54}$/);
    // The registration token is used up: a second exchange is refused.
    const again = await api.request('POST', '/v1/agent/register', {
      headers: { authorization: `Bearer ${secret.stringData['registration-token']}` },
      body: { clusterId: 'edge', agentId: 'late' },
    });
    assert.equal(again.status, 401);
    assert.equal(again.json.error.code, 'REGISTRATION_TOKEN_INVALID');
  });

  for (const binary of ['system', '1.20'] as const) {
    test(`kubectl ${binary}: get, exec, attach, port-forward and logs run through the tunnel as the impersonated user`, async () => {
      const before = fake.requests.length;
      const list = await runKubectl({ binary, kubeconfig: aliceKubeconfig, args: ['get', 'pods'] });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /web-0\s+1\/1\s+Running/);
      const seen = fake.requests.slice(before).find((request) => request.path === '/api/v1/namespaces/default/pods');
      assert.ok(seen);
      assert.equal(seen.user?.username, aliceId);
      assert.equal(seen.user?.impersonated, true);
      assert.equal(seen.headers.authorization, `Bearer ${AGENT_SA_TOKEN}`, "the proxy used the agent's service account token");

      const exec = await runKubectl({ binary, kubeconfig: aliceKubeconfig, args: ['exec', 'web-0', '--', 'echo', `through-the-tunnel-${binary}`] });
      assert.equal(exec.code, 0, exec.stderr);
      assert.match(exec.stdout, new RegExp(`through-the-tunnel-${binary}`));

      const attached = await attachEcho({ binary, kubeconfig: aliceKubeconfig, pod: 'web-0', lines: [`attach-through-the-tunnel-${binary}\n`, 'second line\n'] });
      assert.equal(attached.code, 0, attached.stderr);
      assert.equal(attached.stdout, `attach-through-the-tunnel-${binary}\nsecond line\n`);
      assert.equal(fake.requests.findLast((request) => request.path === '/api/v1/namespaces/default/pods/web-0/attach')?.user?.username, aliceId);

      const forwarded = await portForwardEcho({ binary, kubeconfig: aliceKubeconfig, pod: 'web-0', port: ECHO_PORT, messages: [`port-forward-through-the-tunnel-${binary}\n`] });
      assert.deepEqual(forwarded.echoes, [`port-forward-through-the-tunnel-${binary}\n`], forwarded.stderr);

      const logs = await runKubectl({ binary, kubeconfig: aliceKubeconfig, args: ['logs', 'web-0'] });
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /web-0/);
      assert.equal(fake.connectionCount() - directConnections, relay.accepted, 'every connection the API server accepted came through an agent');
      await eventually(async () => (await readFile(join(dir, 'audit.log'), 'utf8').catch(() => '')).includes('"via":"agent"'), 5000, 'an audit line saying via agent');
    });
  }

  test('kubectl --as: the proxy asks the agent\'s cluster, through the tunnel, before acting as bob there', async () => {
    fake.useAccessPolicy((review) => review.user === aliceId && review.resourceAttributes?.resource === 'users' && review.resourceAttributes.name === 'bob');
    const before = fake.requests.length;
    const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods', '--as', 'bob'] });
    assert.equal(result.code, 0, result.stderr);
    const seen = fake.requests.slice(before);
    const review = seen.find((request) => request.path === '/apis/authorization.k8s.io/v1/subjectaccessreviews');
    assert.equal(review?.status, 201);
    assert.equal(review?.headers.authorization, `Bearer ${AGENT_SA_TOKEN}`, "the review is asked with the agent's service account token");
    assert.equal(seen.find((request) => request.path === '/api/v1/namespaces/default/pods')?.user?.username, 'bob');
    const denied = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods', '--as', 'mallory'] });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Forbidden/);
    assert.equal(fake.connectionCount() - directConnections, relay.accepted, 'every connection the API server accepted came through an agent');
  });

  test("revoking alice's token cuts her watch that runs through the tunnel", async () => {
    const token = await api.request('POST', '/v1/tokens', { token: aliceToken, body: { cluster: 'edge', description: 'watch' } });
    assert.equal(token.status, 201, token.text);
    const config = parse(await (await import('node:fs/promises')).readFile(aliceKubeconfig, 'utf8'));
    config.users[0].user.token = token.json.token;
    const watch = await spawnKubectl({ binary: 'system', kubeconfig: config, args: ['get', 'pods', '-w'], timeoutMs: 30_000 });
    await watch.waitForOutput(/web-0/);
    const revoked = await api.request('DELETE', `/v1/tokens/${token.json.name}`, { token: aliceToken });
    assert.equal(revoked.status, 204);
    const result = await watch.exited();
    assert.equal(result.timedOut, false, 'the watch ended because of the revocation');
  });

  test('without the authorized endpoint, the membership becomes a ClusterRoleBinding through the tunnel, once an agent connected', async () => {
    await eventually(
      () => fake.objects('clusterrolebindings').some((binding) => JSON.stringify(binding['subjects']).includes(aliceId) && (binding['roleRef'] as { name: string }).name === 'edit'),
      15_000,
      "alice's binding synced",
    );
    const write = fake.requests.find((request) => request.method === 'POST' && request.path === '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings');
    assert.equal(write?.user?.username, 'kubegate:sync');
    assert.equal(fake.objects('clusterauthtokens').length, 0, 'no token state without the endpoint');
    assert.equal((await clusterView())['sync'].ok, true);
    assert.equal(fake.connectionCount() - directConnections, relay.accepted, 'the sync reached the API server only through an agent');
  });

  test('the authorized-endpoint sync writes through the tunnel too, as the impersonated sync user', async () => {
    const patched = await api.request('PATCH', '/v1/clusters/edge', {
      token: adminToken,
      body: { ace: { enabled: true, fqdn: `localhost:${relay.port}`, caData: Buffer.from(fake.caPem).toString('base64') } },
    });
    assert.equal(patched.status, 200, patched.text);
    await eventually(() => fake.objects('clusteruserattributes', 'cattle-system').some((object) => object.metadata.name === aliceId), 15_000, "alice's user attribute synced");
    const write = fake.requests.find((request) => request.method !== 'GET' && request.path.startsWith('/apis/cluster.cattle.io/'));
    assert.ok(write);
    assert.equal(write.user?.username, 'kubegate:sync');
    assert.equal(write.user?.impersonated, true);
    assert.equal(fake.connectionCount() - directConnections, relay.accepted, 'the sync, too, reached the API server only through an agent');
  });

  test('one agent killed: requests keep working through the other; both killed: 503; one restarted: works again', async () => {
    const [first, second] = agents;
    assert.ok(first && second);
    await first.kill('SIGKILL');
    await eventually(async () => (await clusterView())['agent'].agents.length === 1, 10_000, 'the dead agent leaves the view');
    for (let i = 0; i < 3; i++) {
      const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods'] });
      assert.equal(result.code, 0, result.stderr);
    }
    await second.kill('SIGKILL');
    await eventually(async () => (await clusterView())['agent'].state === 'disconnected', 10_000, 'the cluster shows disconnected');
    await assertDisconnectedStatus();

    const back = agent('agent-2');
    await back.waitForLog(/tunnel to the proxy is up/);
    await eventually(async () => (await clusterView())['agent'].state === 'connected', 10_000, 'connected again');
    const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods'] });
    assert.equal(result.code, 0, result.stderr);
  });

  test('revoking the agent credential ends its tunnel and the agent is refused; a fresh registration token rotates it', async () => {
    const credentials = await api.request('GET', '/v1/clusters/edge/agent-credentials', { token: adminToken });
    assert.equal(credentials.status, 200, credentials.text);
    const credential = credentials.json.items.find((item: Record<string, unknown>) => item['kind'] === 'agent');
    assert.ok(credential);
    assert.equal(JSON.stringify(credentials.json).includes('$3'), false, 'no hash in the view');
    const live = agents[agents.length - 1];
    assert.ok(live);
    const deleted = await api.request('DELETE', `/v1/clusters/edge/agent-credentials/${credential.name}`, { token: adminToken });
    assert.equal(deleted.status, 204, deleted.text);
    await live.waitForLog(/tunnel to the proxy closed/);
    const refusal = await live.waitForLog(/cannot open the tunnel/);
    assert.equal(refusal['code'], 'AGENT_CREDENTIAL_INVALID');
    await eventually(async () => (await clusterView())['agent'].state === 'disconnected', 10_000, 'disconnected after revocation');

    // Rotation: a fresh import's registration token in the Secret, and the agent registers again by itself.
    const fresh = await api.request('GET', '/v1/clusters/edge/import', { token: adminToken });
    assert.equal(fresh.status, 200, fresh.text);
    const registration = new URL(fresh.json.url).pathname.replace(/^\/v1\/import\//, '').replace(/\.yaml$/, '');
    await patchInFake(fake, '/api/v1/namespaces/kubegate-system/secrets/kubegate-agent', { data: { 'registration-token': Buffer.from(registration).toString('base64') } });
    await live.waitForLog(/registered with the proxy/);
    await eventually(async () => (await clusterView())['agent'].state === 'connected', 20_000, 'connected with the new credential');
    const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig, args: ['get', 'pods'] });
    assert.equal(result.code, 0, result.stderr);
  });
});

/** Creates an object in the fake API server as `kubectl apply` would (the agent's own token). */
async function createInFake(fake: FakeKubeApiServer, path: string, object: unknown): Promise<void> {
  assert.equal(await sendToFake(fake, 'POST', path, 'application/json', object), 201);
}

/** A JSON merge patch, as `kubectl patch --type merge` sends. */
async function patchInFake(fake: FakeKubeApiServer, path: string, patch: unknown): Promise<void> {
  assert.equal(await sendToFake(fake, 'PATCH', path, 'application/merge-patch+json', patch), 200);
}

async function sendToFake(fake: FakeKubeApiServer, method: string, path: string, contentType: string, object: unknown): Promise<number> {
  const body = JSON.stringify(object);
  return new Promise<number>((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: fake.port, path, method, ca: fake.caPem, servername: 'localhost', headers: { authorization: `Bearer ${AGENT_SA_TOKEN}`, 'content-type': contentType, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
