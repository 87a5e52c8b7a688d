/**
 * An agent-mode cluster behind `kubegate proxy --workers 2`: the agent's tunnel lands on one
 * worker, and requests that land on the other reach it over a peer link to that worker's own
 * peer listener. Through the shared socket the link could be handed to the worker that sent
 * it (round-robin), which holds no tunnel: every request on a new connection must still
 * reach the cluster.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { spawnRegisteredAgent, type AgentProcess } from '../support/agent-process.js';
import { createApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { startWorkersProcess, type WorkersProcess } from '../support/workers-process.js';

const ADMIN_PASSWORD = 'workers-agent-Admin-pass-1';
const ALICE_PASSWORD = 'workers-agent-Alice-pass-1';
const AGENT_SA_TOKEN = 'workers-agent-service-account-token-0123';
const CONNECTIONS = 12;

/** One request on a new TLS connection (so that the primary hands it to the next worker). */
function podsOnNewConnection(origin: string, caPem: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${origin}/k8s/clusters/edge/api/v1/namespaces/default/pods`, { ca: caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('agent tunnels behind kubegate proxy --workers 2', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let workers: WorkersProcess;
  let agent: AgentProcess;
  let aliceToken: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-workers-agent-'));
    fake = await startFakeKubeApiServer({ token: AGENT_SA_TOKEN, namespaces: ['default', 'kubegate-system'] });
    workers = await startWorkersProcess({ dataDir: join(dir, 'data'), workers: 2, env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } });
    const api = createApiClient(workers.origin, workers.caPem);
    const adminToken = await api.login('admin', ADMIN_PASSWORD);
    agent = await spawnRegisteredAgent({
      dir,
      proxyUrl: workers.origin,
      proxyCaPem: workers.caPem,
      api,
      adminToken,
      apiServer: { url: fake.url, caPem: fake.caPem, token: AGENT_SA_TOKEN },
      clusterId: 'edge',
      agentId: 'agent-0',
    });
    const alice = await api.request('POST', '/v1/users', { token: adminToken, body: { username: 'alice', password: ALICE_PASSWORD } });
    assert.equal(alice.status, 201, alice.text);
    const member = await api.request('POST', '/v1/clusters/edge/members', { token: adminToken, body: { kind: 'User', name: alice.json.id, role: 'member' } });
    assert.equal(member.status, 201, member.text);
    aliceToken = await api.login('alice', ALICE_PASSWORD);
  });

  after(async () => {
    await agent?.kill('SIGKILL');
    workers?.kill();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('every request reaches the cluster, whichever worker it lands on, because each worker serves peer links on its own port', async () => {
    // Both workers learn of the tunnel through the store (presence rows, heartbeats).
    await eventually(async () => (await podsOnNewConnection(workers.origin, workers.caPem, aliceToken)).status === 200, 30_000, 'the tunnel is usable');
    const answers: number[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const answer = await podsOnNewConnection(workers.origin, workers.caPem, aliceToken);
      assert.match(answer.body, /web-0|PodList/, answer.body);
      answers.push(answer.status);
    }
    assert.deepEqual(answers, Array(CONNECTIONS).fill(200));
  });
});
