/**
 * A real `kubegate proxy` (startProxy, in this process) set up for agent-mode tests: loopback
 * on port 0, SQLite and a generated CA under `dir`, the audit trail in `<dir>/audit.log`, a
 * fixed agent image, metrics off unless `metricsListen` names a listener, and an API client
 * that trusts its CA.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { createApiClient, type ApiClient } from './api-client.js';

export const AGENT_TEST_IMAGE = 'registry.example/kubegate:test';

export async function startProxyForAgents(dir: string, bootstrapPassword: string, metricsListen = 'none'): Promise<{ proxy: RunningProxy; caPem: string; api: ApiClient }> {
  const configFile = join(dir, 'kubegate.yaml');
  await writeFile(configFile, ['listen: 127.0.0.1:0', `dataDir: ${join(dir, 'data')}`, 'tls:', '  sans: ["127.0.0.1", "localhost"]', 'audit:', '  enabled: true', `  file: ${join(dir, 'audit.log')}`, 'metrics:', `  listen: ${metricsListen}`, 'agents:', `  image: ${AGENT_TEST_IMAGE}`].join('\n'));
  const config = loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: bootstrapPassword } });
  const proxy = await startProxy(config, { logger: createLogger({ level: 'silent', name: 'proxy' }) });
  const caPem = proxy.caPem;
  assert.ok(caPem, 'the proxy generated its CA');
  return { proxy, caPem, api: createApiClient(proxy.url, caPem) };
}

/** Creates the agent-mode cluster `clusterId` as `adminToken` and exchanges its registration token for an agent credential. */
export async function registerAgentCredential(api: ApiClient, adminToken: string, clusterId: string, agentId = 'test'): Promise<string> {
  const created = await api.request('POST', '/v1/clusters', { token: adminToken, body: { id: clusterId, mode: 'agent' } });
  assert.equal(created.status, 201, created.text);
  const registration = new URL(created.json.import.url).pathname.replace(/^\/v1\/import\//, '').replace(/\.yaml$/, '');
  const exchanged = await api.request('POST', '/v1/agent/register', { headers: { authorization: `Bearer ${registration}` }, body: { clusterId, agentId } });
  assert.equal(exchanged.status, 201, exchanged.text);
  return exchanged.json.credential;
}
