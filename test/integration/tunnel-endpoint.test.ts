/**
 * The proxy's tunnel endpoint under hostile input: every request that is not a well-formed
 * tunnel request with a valid agent credential for the very cluster it names gets a clear
 * Status and a counted refusal, never a tunnel — and the proxy keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startProxy, type RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { registerAgentCredential } from '../support/agent-proxy.js';
import { createApiClient, type ApiClient } from '../support/api-client.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-tunnel';

interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

describe('the tunnel endpoint refuses what is not a valid agent', () => {
  let dir: string;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  const credentials: Record<string, string> = {};
  let unusedRegistration: string;

  /** An upgrade request on a fresh TLS connection; answers the status line and body. */
  function upgrade(headers: Record<string, string>, method = 'GET', path = '/v1/tunnel'): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: Number(new URL(proxy.url).port), ca: proxy.caPem ?? undefined, servername: 'localhost', method, path, headers: { Connection: 'Upgrade', ...headers } });
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        resolve({ status: 101, body: '' });
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  function reasonOf(answer: RawAnswer): string {
    return JSON.parse(answer.body).details.causes[0].reason;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-tunnel-endpoint-'));
    const config = loadProxyConfig({ env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD }, flags: { listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0', dataDir: join(dir, 'data') } });
    proxy = await startProxy(config, { logger: createLogger({ level: 'silent', name: 'proxy' }) });
    api = createApiClient(proxy.url, proxy.caPem as string);
    adminToken = await api.login('admin', ADMIN_PASSWORD);
    credentials['a'] = await registerAgentCredential(api, adminToken, 'a');
    credentials['b'] = await registerAgentCredential(api, adminToken, 'b');
    const imported = await api.request('GET', '/v1/clusters/a/import', { token: adminToken });
    assert.equal(imported.status, 200, imported.text);
    unusedRegistration = new URL(imported.json.url).pathname.replace(/^\/v1\/import\//, '').replace(/\.yaml$/, '');
  });

  after(async () => {
    await proxy?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a request that is not a tunnel request is a 400 naming the protocol', async () => {
    const wrongProtocol = await upgrade({ Upgrade: 'websocket', 'Kubegate-Cluster': 'a', Authorization: `Bearer ${credentials['a']}` });
    assert.equal(wrongProtocol.status, 400);
    assert.equal(reasonOf(wrongProtocol), 'TUNNEL_PROTOCOL_ERROR');
    const post = await upgrade({ Upgrade: 'kubegate-tunnel/1', 'Kubegate-Cluster': 'a', Authorization: `Bearer ${credentials['a']}` }, 'POST');
    assert.equal(post.status, 400);
    const noCluster = await upgrade({ Upgrade: 'kubegate-tunnel/1', Authorization: `Bearer ${credentials['a']}` });
    assert.equal(noCluster.status, 400);
    const badCluster = await upgrade({ Upgrade: 'kubegate-tunnel/1', 'Kubegate-Cluster': '../a', Authorization: `Bearer ${credentials['a']}` });
    assert.equal(badCluster.status, 400);
  });

  test('no credential, garbage, a user token or an unused registration token: 401, no tunnel', async () => {
    const cases: Record<string, string | undefined> = {
      none: undefined,
      garbage: 'Bearer not-a-token-at-all',
      basic: `Basic ${Buffer.from('admin:x').toString('base64')}`,
      userToken: `Bearer ${adminToken}`,
      registration: `Bearer ${unusedRegistration}`,
      wrongSecret: `Bearer ${(credentials['a'] ?? '').split(':')[0]}:${'x'.repeat(54)}`,
    };
    for (const [name, authorization] of Object.entries(cases)) {
      const answer = await upgrade({ Upgrade: 'kubegate-tunnel/1', 'Kubegate-Cluster': 'a', ...(authorization === undefined ? {} : { Authorization: authorization }) });
      assert.equal(answer.status, 401, `${name}: ${answer.body}`);
      assert.equal(reasonOf(answer), 'AGENT_CREDENTIAL_INVALID', name);
      assert.equal(answer.body.includes(adminToken), false);
    }
  });

  test("cluster b's agent credential never opens a tunnel for cluster a", async () => {
    const answer = await upgrade({ Upgrade: 'kubegate-tunnel/1', 'Kubegate-Cluster': 'a', Authorization: `Bearer ${credentials['b']}` });
    assert.equal(answer.status, 401);
    assert.equal(reasonOf(answer), 'AGENT_CREDENTIAL_INVALID');
    const metrics = { text: await (await fetch(`${proxy.metricsUrl}/metrics`)).text() };
    assert.match(metrics.text, /kubegate_tunnel_refused_total\{reason="wrong_cluster"\} 1/);
    assert.match(metrics.text, /kubegate_tunnel_refused_total\{reason="credential"\} [1-9]/);
  });

  test("a deleted agent cluster's credential opens nothing", async () => {
    const removed = await api.request('DELETE', '/v1/clusters/b', { token: adminToken });
    assert.equal(removed.status, 204);
    const answer = await upgrade({ Upgrade: 'kubegate-tunnel/1', 'Kubegate-Cluster': 'b', Authorization: `Bearer ${credentials['b']}` });
    assert.equal(answer.status, 401, 'the credential went with its cluster');
  });

  test('a valid credential is switched, and then must speak HTTP/2: garbage ends only that connection', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(proxy.url).port), ca: proxy.caPem ?? undefined, servername: 'localhost' });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(`GET /v1/tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: kubegate-tunnel/1\r\nKubegate-Cluster: a\r\nAuthorization: Bearer ${credentials['a']}\r\n\r\n`);
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (received.includes('\r\n\r\n')) resolve();
        else socket.once('data', check);
      };
      check();
    });
    assert.match(received, /^HTTP\/1\.1 101 /);
    socket.write(Buffer.alloc(100_000, 0x41));
    await new Promise((resolve) => socket.once('close', resolve));
    // The proxy still answers.
    const answer = await api.request('GET', '/v1/clusters/a', { token: adminToken });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.agent.state, 'disconnected');
    const metrics = { text: await (await fetch(`${proxy.metricsUrl}/metrics`)).text() };
    assert.match(metrics.text, /kubegate_tunnel_refused_total\{reason="handshake"\} 1/);
  });

  test('an import for a direct cluster is a 409', async () => {
    const direct = await api.request('POST', '/v1/clusters', {
      token: adminToken,
      body: { id: 'direct', server: 'https://127.0.0.1:1', token: 'some-proxy-token' },
    });
    assert.equal(direct.status, 201, direct.text);
    const imported = await api.request('GET', '/v1/clusters/direct/import', { token: adminToken });
    assert.equal(imported.status, 409);
    assert.equal(imported.json.error.code, 'CLUSTER_MODE_MISMATCH');
    const patched = await api.request('PATCH', '/v1/clusters/a', { token: adminToken, body: { server: 'https://10.0.0.1:6443' } });
    assert.equal(patched.status, 409);
    assert.equal(patched.json.error.field, 'server');
  });
});
