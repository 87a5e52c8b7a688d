/**
 * Agent-mode clusters across proxy replicas: two real proxies on one real PostgreSQL (the
 * same secret key and serving certificate, as replicas behind a load balancer have), one
 * real agent connected to replica 1 only, and kubectl through replica 2 — whose requests
 * reach the cluster over the peer link to replica 1. Then: replica 1 restarts and the agent
 * finds its way back by itself.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProxy, type RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig, type ProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { createApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { runKubectl } from '../support/kubectl.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-agent-ha';
const ALICE_PASSWORD = 'alice-Secret-pass-agent-ha';
const AGENT_SA_TOKEN = 'agent-ha-service-account-token-0123';

describe('agent tunnels across two proxy replicas on PostgreSQL', () => {
  let dir: string;
  let postgres: TestPostgres;
  let fake: FakeKubeApiServer;
  let replica1: RunningProxy;
  let replica2: RunningProxy;
  let config1: ProxyConfig;
  let agentProcess: AgentProcess;
  let aliceKubeconfig2: string;
  let adminToken: string;

  function proxyConfig(dataDir: string, storeUrl: string, secretKey: string, port = 0): ProxyConfig {
    return loadProxyConfig({
      env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD, KUBEGATE_SECRET_KEY: secretKey, KUBEGATE_STORE_URL: storeUrl },
      flags: { listen: `127.0.0.1:${port}`, dataDir, metricsListen: 'none' },
    });
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-agent-ha-'));
    postgres = await startPostgres();
    const storeUrl = await postgres.createDatabase();
    const secretKey = randomBytes(32).toString('base64');
    fake = await startFakeKubeApiServer({ token: AGENT_SA_TOKEN, namespaces: ['default', 'kubegate-system'] });
    const logger = createLogger({ level: 'silent', name: 'proxy' });
    config1 = proxyConfig(join(dir, 'data-1'), storeUrl, secretKey);
    replica1 = await startProxy(config1, { logger });
    // Replicas share their serving certificate, as they would behind one load balancer.
    await cp(join(dir, 'data-1', 'tls'), join(dir, 'data-2', 'tls'), { recursive: true });
    replica2 = await startProxy(proxyConfig(join(dir, 'data-2'), storeUrl, secretKey), { logger });
    assert.equal(replica2.caPem, replica1.caPem);

    const api1 = createApiClient(replica1.url, replica1.caPem as string);
    const api2 = createApiClient(replica2.url, replica2.caPem as string);
    adminToken = await api1.login('admin', ADMIN_PASSWORD);
    const created = await api1.request('POST', '/v1/clusters', { token: adminToken, body: { id: 'edge', mode: 'agent' } });
    assert.equal(created.status, 201, created.text);
    const alice = await api1.request('POST', '/v1/users', { token: adminToken, body: { username: 'alice', password: ALICE_PASSWORD } });
    await api1.request('POST', '/v1/clusters/edge/members', { token: adminToken, body: { kind: 'User', name: alice.json.id, role: 'member' } });
    const aliceToken = await api2.login('alice', ALICE_PASSWORD);
    const kubeconfig = await api2.request('GET', '/v1/clusters/edge/kubeconfig', { token: aliceToken });
    assert.equal(kubeconfig.status, 200, kubeconfig.text);
    aliceKubeconfig2 = join(dir, 'alice-2.kubeconfig');
    await writeFile(aliceKubeconfig2, kubeconfig.text, { mode: 0o600 });

    // The agent keeps its credential in a directory here; it knows replica 1 only.
    const credentialDir = join(dir, 'agent-credential');
    await writeFile(join(dir, 'proxy-ca.pem'), replica1.caPem as string);
    await writeFile(join(dir, 'api-ca.pem'), fake.caPem);
    await writeFile(join(dir, 'api-token'), AGENT_SA_TOKEN);
    const registration = new URL(created.json.import.url).pathname.replace(/^\/v1\/import\//, '').replace(/\.yaml$/, '');
    await (await import('node:fs/promises')).mkdir(credentialDir, { recursive: true });
    await writeFile(join(credentialDir, 'registration-token'), registration, { mode: 0o600 });
    agentProcess = spawnAgent({
      proxyUrl: replica1.url,
      proxyCaFile: join(dir, 'proxy-ca.pem'),
      clusterId: 'edge',
      agentId: 'agent-0',
      apiServer: fake.url,
      apiServerName: 'localhost',
      apiCaFile: join(dir, 'api-ca.pem'),
      apiTokenFile: join(dir, 'api-token'),
      credentialDir,
    });
    await agentProcess.waitForLog(/tunnel to the proxy is up/);
  });

  after(async () => {
    await agentProcess?.kill('SIGKILL');
    await replica2?.stop();
    await replica1?.stop();
    await fake?.close();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('both replicas show the agent, and kubectl through replica 2 reaches the cluster over the peer link', async () => {
    const api2 = createApiClient(replica2.url, replica2.caPem as string);
    await eventually(async () => (await api2.request('GET', '/v1/clusters/edge', { token: adminToken })).json.agent?.state === 'connected', 10_000, 'replica 2 sees the tunnel');
    const view = await api2.request('GET', '/v1/clusters/edge', { token: adminToken });
    assert.deepEqual(view.json.agent.agents.map((agent: Record<string, unknown>) => agent['agentId']), ['agent-0']);
    await eventually(async () => {
      const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig2, args: ['get', 'pods', '--request-timeout=5s'] });
      return result.code === 0 && /web-0/.test(result.stdout);
    }, 15_000, 'kubectl through replica 2');
    const exec = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig2, args: ['exec', 'web-0', '--', 'echo', 'via-the-peer'] });
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(exec.stdout, /via-the-peer/);
  });

  test('a peer request without the shared key is refused', async () => {
    const api2 = createApiClient(replica2.url, replica2.caPem as string);
    const hello = await api2.request('GET', '/v1/tunnel/peers/edge/hello', { headers: { 'kubegate-peer': `intruder.${Math.floor(Date.now() / 1000)}.nonce.bm90LWEtbWFj` } });
    assert.equal(hello.status, 404);
    assert.equal(hello.text.includes(AGENT_SA_TOKEN), false);
  });

  test('replica 1 restarts: the agent reconnects by itself, and replica 2 serves again', async () => {
    const port = new URL(replica1.url).port;
    await replica1.stop();
    await agentProcess.waitForLog(/tunnel to the proxy closed/);
    replica1 = await startProxy(proxyConfigAt(Number(port)), { logger: createLogger({ level: 'silent', name: 'proxy' }) });
    await eventually(() => agentProcess.count(/tunnel to the proxy is up/) >= 2, 30_000, 'the agent reconnected');
    await eventually(async () => {
      const result = await runKubectl({ binary: 'system', kubeconfig: aliceKubeconfig2, args: ['get', 'pods', '--request-timeout=5s'] });
      return result.code === 0;
    }, 20_000, 'kubectl through replica 2 after the restart');
  });

  function proxyConfigAt(port: number): ProxyConfig {
    return { ...config1, listen: `127.0.0.1:${port}` };
  }
});
