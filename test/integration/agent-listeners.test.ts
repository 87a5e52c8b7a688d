/**
 * The agent's listeners follow the proxy's metrics policy, checked on real `kubegate agent`
 * processes connected to a real proxy: the probes' listener (the pod IP, for the kubelet)
 * answers `/healthz` and `/readyz` to anyone but `/metrics` to nobody, unless a metrics bearer
 * token is configured, and then only to a scrape presenting it; `/metrics` lives on the
 * separate metrics listener.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { spawnRegisteredAgent, type AgentProcess } from '../support/agent-process.js';
import { startProxyForAgents } from '../support/agent-proxy.js';
import type { ApiClient } from '../support/api-client.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-listeners';
const AGENT_SA_TOKEN = 'agent-listeners-sa-token-0123456789';
const SCRAPE_TOKEN = 'scrape-token-for-the-agent-0123456789';

interface Answer {
  readonly status: number;
  readonly body: string;
}

function get(url: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('the agent serves probes to the kubelet and metrics only as the proxy does', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  const agents: AgentProcess[] = [];

  async function agent(clusterId: string, metricsBearerTokenFile?: string): Promise<AgentProcess> {
    const spawned = await spawnRegisteredAgent({
      dir,
      proxyUrl: proxy.url,
      proxyCaPem: proxy.caPem ?? '',
      api,
      adminToken,
      apiServer: { url: fake.url, caPem: fake.caPem, token: AGENT_SA_TOKEN },
      clusterId,
      agentId: `${clusterId}-agent`,
      ...(metricsBearerTokenFile === undefined ? {} : { metricsBearerTokenFile }),
    });
    agents.push(spawned);
    return spawned;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-agent-listeners-'));
    fake = await startFakeKubeApiServer({ token: AGENT_SA_TOKEN, namespaces: ['default'] });
    ({ proxy, api } = await startProxyForAgents(dir, ADMIN_PASSWORD));
    adminToken = await api.login('admin', ADMIN_PASSWORD);
  });

  after(async () => {
    await Promise.all(agents.map((process) => process.kill('SIGKILL')));
    await proxy?.stop();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('without a token, the probes listener answers /healthz and /readyz but not /metrics, which is on the metrics listener', async () => {
    const connected = await agent('plain');
    const health = await connected.listenerUrl('health');
    const metrics = await connected.listenerUrl('metrics');
    assert.notEqual(health, metrics);
    assert.equal((await get(`${health}/healthz`)).status, 200);
    assert.equal((await get(`${health}/readyz`)).status, 200, 'ready: the tunnel is up');
    const anonymous = await get(`${health}/metrics`);
    assert.equal(anonymous.status, 404);
    assert.doesNotMatch(anonymous.body, /kubegate_agent/);
    const scraped = await get(`${metrics}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /^kubegate_agent_connected 1$/m);
    assert.equal((await get(`${metrics}/readyz`)).status, 200);
  });

  test('with a metrics bearer token, /metrics is on the probes listener too, for that token only, and the metrics listener wants it as well', async () => {
    const tokenFile = join(dir, 'scrape-token');
    await writeFile(tokenFile, `${SCRAPE_TOKEN}\n`, { mode: 0o600 });
    const connected = await agent('tokened', tokenFile);
    const health = await connected.listenerUrl('health');
    const metrics = await connected.listenerUrl('metrics');
    assert.equal((await get(`${health}/healthz`)).status, 200, 'the kubelet needs no token');
    assert.equal((await get(`${health}/readyz`)).status, 200);
    for (const url of [health, metrics]) {
      const anonymous = await get(`${url}/metrics`);
      assert.equal(anonymous.status, 401, url);
      assert.doesNotMatch(anonymous.body, /kubegate_agent/);
      assert.equal((await get(`${url}/metrics`, 'wrong-token')).status, 401, url);
      const scraped = await get(`${url}/metrics`, SCRAPE_TOKEN);
      assert.equal(scraped.status, 200, url);
      assert.match(scraped.body, /^kubegate_agent_connected 1$/m);
    }
    assert.ok(!JSON.stringify(connected.lines()).includes(SCRAPE_TOKEN), 'the token is never logged');
  });
});
