/**
 * Tunnels that end after their hello are counted by reason at both ends, each reason provoked
 * for real: `kubegate agent` processes dial a real proxy (some through a TCP relay that the test
 * cuts or freezes like a network would), hand-dialled tunnels run the agent's own tunnel code
 * with a real credential, and the counts are read from each process's /metrics.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { createCertificateAuthority, issueServingCertificate } from '../../src/pki/certificates.js';
import { serveTunnel, type AgentTunnel } from '../../src/tunnel/agent-end.js';
import { TUNNEL_UPGRADE, type AgentHello } from '../../src/tunnel/wire.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { spawnAgent, spawnRegisteredAgent, type AgentProcess } from '../support/agent-process.js';
import { registerAgentCredential, startProxyForAgents } from '../support/agent-proxy.js';
import type { ApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { scrapeMetrics } from '../support/scrape-metrics.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-tunnel-closes';
const AGENT_SA_TOKEN = 'tunnel-closes-sa-token-0123456789';

/** The value of `name{labels}` in an exposition, 0 when absent; label order does not matter. */
function sampleOf(text: string, name: string, labels: Readonly<Record<string, string>>): number {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value) && Object.keys(found).length === Object.keys(labels).length) return Number(match[3]);
  }
  return 0;
}

/**
 * A TCP relay in front of the proxy, standing for the network between an agent and the proxy:
 * `cut()` resets every connection through it, `freeze()` stops forwarding without closing
 * anything (a partition: both ends' PINGs go unanswered).
 */
async function startRelay(targetPort: number): Promise<{ url: string; cut(): void; freeze(): void; close(): Promise<void> }> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    for (const socket of pair) socket.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.once('close', () => pairs.delete(pair));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut() {
      for (const [client, upstream] of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
    },
    freeze() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        client.removeAllListeners('close');
        upstream.removeAllListeners('close');
      }
      pairs.clear();
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      server.close();
    },
  };
}

describe('tunnels that end after their hello are counted by reason, at the proxy and at the agent', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  const agents: AgentProcess[] = [];

  async function agent(clusterId: string, proxyUrl = proxy.url): Promise<AgentProcess> {
    const spawned = await spawnRegisteredAgent({
      dir,
      proxyUrl,
      proxyCaPem: proxy.caPem ?? '',
      api,
      adminToken,
      apiServer: { url: fake.url, caPem: fake.caPem, token: AGENT_SA_TOKEN },
      clusterId,
      agentId: `${clusterId}-agent`,
    });
    agents.push(spawned);
    // The agent says its tunnel is up at the 101; the proxy counts it once the hello arrived.
    await untilTunnels(clusterId, 1);
    return spawned;
  }

  async function untilTunnels(cluster: string, count: number): Promise<void> {
    await eventually(async () => sampleOf(await scrapeMetrics(proxy.metricsUrl as string), 'kubegate_tunnels', { cluster }) === count, 20_000, `${count} tunnels of ${cluster} at the proxy`);
  }

  async function proxyCloses(cluster: string, reason: string): Promise<number> {
    return sampleOf(await scrapeMetrics(proxy.metricsUrl as string), 'kubegate_tunnel_closes_total', { cluster, reason });
  }

  async function agentCloses(process: AgentProcess, reason: string): Promise<number> {
    return sampleOf(await scrapeMetrics(await process.listenerUrl('metrics')), 'kubegate_agent_tunnel_closes_total', { reason });
  }

  async function untilProxyCounts(cluster: string, reason: string, timeoutMs = 20_000): Promise<void> {
    await eventually(async () => (await proxyCloses(cluster, reason)) === 1, timeoutMs, `the proxy to count a ${reason} close of ${cluster}`).catch(async (error: unknown) => {
      const text = await scrapeMetrics(proxy.metricsUrl as string);
      throw new Error(`${String(error)}\n${text.split('\n').filter((line) => line.startsWith('kubegate_tunnel')).join('\n')}`);
    });
  }

  /** Dials the proxy's tunnel endpoint like an agent and serves the tunnel with the agent's own code. */
  async function handDialled(clusterId: string, credential: string, hello: () => AgentHello, to: RunningProxy = proxy): Promise<AgentTunnel> {
    const req = https.request({
      host: '127.0.0.1',
      port: Number(new URL(to.url).port),
      ca: to.caPem ?? undefined,
      servername: 'localhost',
      method: 'GET',
      path: '/v1/tunnel',
      headers: { Connection: 'Upgrade', Upgrade: TUNNEL_UPGRADE, Authorization: `Bearer ${credential}`, 'Kubegate-Cluster': clusterId },
    });
    req.end();
    const [, socket, head] = (await once(req, 'upgrade')) as [unknown, TLSSocket, Buffer];
    if (head.length > 0) socket.unshift(head);
    return serveTunnel(socket, { dialApiServer: () => net.connect(Number(new URL(fake.url).port), '127.0.0.1'), hello });
  }

  function helloFor(agentId: string): AgentHello {
    return { agentId, agentVersion: '0.1.0', kubernetesVersion: 'v1.32.4', apiServer: { host: 'localhost', servername: 'localhost', caPem: fake.caPem }, token: AGENT_SA_TOKEN };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-tunnel-closes-'));
    fake = await startFakeKubeApiServer({ token: AGENT_SA_TOKEN, namespaces: ['default'] });
    ({ proxy, api } = await startProxyForAgents(dir, ADMIN_PASSWORD, '127.0.0.1:0'));
    adminToken = await api.login('admin', ADMIN_PASSWORD);
    relay = await startRelay(Number(new URL(proxy.url).port));
  });

  after(async () => {
    await Promise.all(agents.map((process) => process.kill('SIGKILL')));
    await relay?.close();
    await proxy?.stop();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('an agent that stops says GOAWAY: agent_closed at the proxy', async () => {
    const stopping = await agent('stopping');
    assert.equal(await proxyCloses('stopping', 'agent_closed'), 0);
    await stopping.kill('SIGTERM');
    await untilProxyCounts('stopping', 'agent_closed');
    assert.equal(await proxyCloses('stopping', 'connection_lost'), 0);
  });

  test('a connection reset under the tunnel: connection_lost at both ends, and the agent reconnects', async () => {
    const cut = await agent('cut', relay.url);
    relay.cut();
    await untilProxyCounts('cut', 'connection_lost');
    await eventually(async () => (await agentCloses(cut, 'connection_lost')) === 1, 20_000, 'the agent to count connection_lost');
    assert.equal(await agentCloses(cut, 'proxy_closed'), 0);
    await eventually(() => cut.count(/tunnel to the proxy is up/) === 2, 30_000, 'the agent to reconnect');
  });

  test('a connection that stops carrying bytes: ping_timeout at both ends', async () => {
    const frozen = await agent('frozen', relay.url);
    const metricsUrl = await frozen.listenerUrl('metrics');
    relay.freeze();
    await untilProxyCounts('frozen', 'ping_timeout', 40_000);
    await eventually(async () => sampleOf(await scrapeMetrics(metricsUrl), 'kubegate_agent_tunnel_closes_total', { reason: 'ping_timeout' }) === 1, 40_000, 'the agent to count ping_timeout');
    assert.equal(await proxyCloses('frozen', 'connection_lost'), 0);
  });

  test('a revoked credential: revoked at the proxy, proxy_closed at the agent', async () => {
    const revoked = await agent('revoked');
    const credentials = await api.request('GET', '/v1/clusters/revoked/agent-credentials', { token: adminToken });
    const credential = credentials.json.items.find((item: Record<string, unknown>) => item['kind'] === 'agent');
    const deleted = await api.request('DELETE', `/v1/clusters/revoked/agent-credentials/${credential.name}`, { token: adminToken });
    assert.equal(deleted.status, 204, deleted.text);
    await untilProxyCounts('revoked', 'revoked');
    await eventually(async () => (await agentCloses(revoked, 'proxy_closed')) === 1, 20_000, 'the agent to count proxy_closed');
  });

  test('the same agent dialling again: replaced at the proxy; a hello changing the agent ID: protocol_error', async () => {
    const credential = await registerAgentCredential(api, adminToken, 'replaced', 'hand-dialled');
    const first = await handDialled('replaced', credential, () => helloFor('same-agent'));
    await untilTunnels('replaced', 1);
    const again = await handDialled('replaced', credential, () => helloFor('same-agent'));
    assert.equal(await first.closed, 'proxy_closed');
    await untilProxyCounts('replaced', 'replaced');

    let agentId = 'changing-agent';
    const changing = await handDialled('replaced', credential, () => helloFor(agentId));
    await untilTunnels('replaced', 2);
    agentId = 'someone-else';
    changing.helloChanged();
    await untilProxyCounts('replaced', 'protocol_error');
    assert.equal(await proxyCloses('replaced', 'replaced'), 1);
    again.close();
    await again.closed;
  });

  test('a proxy that stops tells its agents at once (GOAWAY): proxy_closed at the agent, not the grace period cutting the connection', async () => {
    const ownDir = join(dir, 'stopping-proxy');
    await mkdir(ownDir);
    const own = await startProxyForAgents(ownDir, ADMIN_PASSWORD, '127.0.0.1:0');
    let stopped = false;
    try {
      const credential = await registerAgentCredential(own.api, await own.api.login('admin', ADMIN_PASSWORD), 'leaving', 'hand-dialled');
      const tunnel = await handDialled('leaving', credential, () => helloFor('leaving-agent'), own.proxy);
      await eventually(async () => sampleOf(await scrapeMetrics(own.proxy.metricsUrl as string), 'kubegate_tunnels', { cluster: 'leaving' }) === 1, 20_000, 'the tunnel at the stopping proxy');
      // Without the GOAWAY the upgraded connection holds the stop until the grace period destroys it: connection_lost.
      await own.proxy.stop();
      stopped = true;
      assert.equal(await tunnel.closed, 'proxy_closed');
    } finally {
      if (!stopped) await own.proxy.stop();
    }
  });

  test('a proxy that breaks HTTP/2 after the 101: protocol_error at the agent', async () => {
    const ca = await createCertificateAuthority({ commonName: 'tunnel-closes-test-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost', '127.0.0.1'], validityDays: 1 });
    const broken = https.createServer({ cert: serving.certPem, key: serving.keyPem });
    broken.on('upgrade', (_req, socket: Duplex) => {
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kubegate-tunnel/1\r\n\r\nthis is no HTTP/2 client preface\r\n\r\n');
    });
    broken.listen(0, '127.0.0.1');
    await once(broken, 'listening');
    const files = join(dir, 'broken-proxy');
    await mkdir(join(files, 'credential'), { recursive: true, mode: 0o700 });
    await writeFile(join(files, 'proxy-ca.pem'), ca.certPem);
    await writeFile(join(files, 'api-ca.pem'), fake.caPem);
    await writeFile(join(files, 'api-token'), AGENT_SA_TOKEN);
    await writeFile(join(files, 'credential', 'credential'), 'a-broken:not-checked-by-this-proxy', { mode: 0o600 });
    const misled = spawnAgent({
      proxyUrl: `https://127.0.0.1:${(broken.address() as net.AddressInfo).port}`,
      proxyCaFile: join(files, 'proxy-ca.pem'),
      clusterId: 'broken',
      agentId: 'broken-agent',
      apiServer: fake.url,
      apiServerName: 'localhost',
      apiCaFile: join(files, 'api-ca.pem'),
      apiTokenFile: join(files, 'api-token'),
      credentialDir: join(files, 'credential'),
    });
    agents.push(misled);
    try {
      await eventually(async () => (await agentCloses(misled, 'protocol_error')) >= 1, 30_000, 'the agent to count protocol_error');
    } finally {
      broken.closeAllConnections();
      broken.close();
    }
  });
});
