import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createUpstreamPool } from '../../../src/clusters/upstreams.js';
import { isKubegateError } from '../../../src/errors.js';
import type { Cluster } from '../../../src/store/store.js';
import type { AgentHello } from '../../../src/tunnel/wire.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../../fakes/kube-apiserver.js';

const SA_TOKEN = 'agent-sa-token-one';

function agentCluster(id = 'edge'): Cluster {
  const now = new Date();
  return {
    id,
    displayName: id,
    mode: 'agent',
    server: '',
    caPem: null,
    credentials: null,
    insecureSkipTlsVerify: false,
    ace: { enabled: false, fqdn: null, caPem: null, nodes: [] },
    createdAt: now,
    updatedAt: now,
    deletingSince: null,
    syncHoldsObjects: false,
  };
}

describe('upstreams of agent-mode clusters', () => {
  let fake: FakeKubeApiServer;
  let hello: AgentHello | undefined;
  let dials = 0;
  const tunnels = {
    credentials: () => hello,
    // A plain TCP connection stands in for a tunnel stream: the pool runs TLS over it.
    dial: () => {
      dials++;
      return net.connect(fake.port, '127.0.0.1');
    },
  };

  before(async () => {
    fake = await startFakeKubeApiServer({ token: SA_TOKEN });
  });
  after(async () => {
    await fake.close();
  });

  function get(pool: ReturnType<typeof createUpstreamPool>, cluster: Cluster, path: string): Promise<{ status: number; authorization: string | undefined }> {
    const upstream = pool.get(cluster);
    return new Promise((resolve, reject) => {
      const req = upstream.request({
        host: upstream.hostname,
        port: upstream.port,
        agent: upstream.agent,
        path,
        headers: ['Host', upstream.hostHeader, ...upstream.authHeaders],
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, authorization: fake.requests.at(-1)?.headers.authorization }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('is CLUSTER_DISCONNECTED while no agent is connected, anywhere', () => {
    hello = undefined;
    const pool = createUpstreamPool({ tunnels });
    assert.throws(() => pool.get(agentCluster()), (error: unknown) => isKubegateError(error, 'CLUSTER_DISCONNECTED'));
    const noHub = createUpstreamPool();
    assert.throws(() => noHub.get(agentCluster()), (error: unknown) => isKubegateError(error, 'CLUSTER_DISCONNECTED'));
  });

  it("connects through the tunnel with TLS verified against the agent's CA, as the agent's service account", async () => {
    hello = { agentId: 'a', agentVersion: '0', kubernetesVersion: '', apiServer: { host: 'localhost', servername: 'localhost', caPem: fake.caPem }, token: SA_TOKEN };
    const pool = createUpstreamPool({ tunnels });
    const before = dials;
    const answer = await get(pool, agentCluster(), '/version');
    assert.equal(answer.status, 200);
    assert.equal(answer.authorization, `Bearer ${SA_TOKEN}`);
    assert.equal(dials, before + 1);
    pool.close();
  });

  it('uses a rotated token from the next request on, with the same upstream', async () => {
    hello = { agentId: 'a', agentVersion: '0', kubernetesVersion: '', apiServer: { host: 'localhost', servername: 'localhost', caPem: fake.caPem }, token: SA_TOKEN };
    const pool = createUpstreamPool({ tunnels });
    const cluster = agentCluster();
    const first = pool.get(cluster);
    hello = { ...hello, token: 'rotated-token' };
    assert.equal(pool.get(cluster), first, 'a new token builds no new upstream');
    assert.deepEqual(first.authHeaders, ['Authorization', 'Bearer rotated-token']);
    pool.close();
  });

  it('verifies an API server the agent reaches by IP address against the IP, without sending the IP as TLS server name (Node warns DEP0123)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }): void => void warnings.push(warning.code ?? warning.name);
    process.on('warning', onWarning);
    try {
      hello = { agentId: 'a', agentVersion: '0', kubernetesVersion: '', apiServer: { host: '127.0.0.1', servername: '127.0.0.1', caPem: fake.caPem }, token: SA_TOKEN };
      const pool = createUpstreamPool({ tunnels });
      assert.equal((await get(pool, agentCluster(), '/version')).status, 200);
      pool.close();
      hello = { ...hello, apiServer: { ...hello.apiServer, host: '10.9.9.9', servername: '10.9.9.9' } };
      const wrongAddress = createUpstreamPool({ tunnels });
      await assert.rejects(get(wrongAddress, agentCluster(), '/version'), /IP: 10\.9\.9\.9 is not in the cert's list/);
      wrongAddress.close();
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      assert.deepEqual(warnings.filter((code) => code === 'DEP0123'), []);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('refuses an API server whose certificate the reported CA did not sign', async () => {
    const other = await startFakeKubeApiServer({ token: SA_TOKEN });
    hello = { agentId: 'a', agentVersion: '0', kubernetesVersion: '', apiServer: { host: 'localhost', servername: 'localhost', caPem: other.caPem }, token: SA_TOKEN };
    const pool = createUpstreamPool({ tunnels });
    await assert.rejects(get(pool, agentCluster(), '/version'), /certificate/);
    pool.close();
    await other.close();
  });
});
