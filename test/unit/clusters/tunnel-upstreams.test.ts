import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createUpstreamPool, type Upstream } from '../../../src/clusters/upstreams.js';
import { isKubegateError } from '../../../src/errors.js';
import { createCertificateAuthority, issueServingCertificate } from '../../../src/pki/certificates.js';
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

describe('TLS sessions of connections through a tunnel', () => {
  /** Server-side `isSessionReused()` of each TLS connection, in order; upgrades answered 101. */
  const resumed: boolean[] = [];
  let server: https.Server;
  let caPem: string;
  let otherCaPem: string;
  const tunnels = {
    credentials: (): AgentHello | undefined => current,
    dial: () => net.connect((server.address() as net.AddressInfo).port, '127.0.0.1'),
  };
  let current: AgentHello | undefined;

  before(async () => {
    const ca = await createCertificateAuthority({ commonName: 'resume-test-ca', validityDays: 1 });
    const other = await createCertificateAuthority({ commonName: 'resume-test-other-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost'], validityDays: 1 });
    caPem = ca.certPem;
    otherCaPem = other.certPem;
    server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (_req, res) => res.end('ok'));
    server.on('secureConnection', (socket: tls.TLSSocket) => resumed.push(socket.isSessionReused()));
    server.on('upgrade', (_req, socket: Duplex) => {
      socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  function helloWithCa(ca: string): AgentHello {
    return { agentId: 'a', agentVersion: '0', kubernetesVersion: '', apiServer: { host: 'localhost', servername: 'localhost', caPem: ca }, token: SA_TOKEN };
  }

  /** One request through the forwarding pool, on a connection of its own (closed after the answer). */
  async function forward(upstream: Upstream): Promise<number> {
    const answer = await upstream.dispatcher.request({ origin: `https://${upstream.hostname}`, path: '/version', method: 'GET', headers: { host: upstream.hostHeader }, reset: true });
    await answer.body.text();
    return answer.statusCode;
  }

  /** An upgrade (as exec sends) through the upgrade agent: resolves with the answer's status. */
  function upgrade(upstream: Upstream): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = upstream.request({
        host: upstream.hostname,
        port: upstream.port,
        agent: upstream.upgradeAgent,
        path: '/api/v1/namespaces/default/pods/web-0/exec?command=sh',
        method: 'POST',
        headers: { Host: upstream.hostHeader, Connection: 'Upgrade', Upgrade: 'SPDY/3.1' },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('resumes the last session on the next connection, for the pool and for an upgrade', async () => {
    current = helloWithCa(caPem);
    const pool = createUpstreamPool({ tunnels });
    const upstream = pool.get(agentCluster());
    resumed.length = 0;
    assert.equal(await forward(upstream), 200);
    assert.equal(await forward(upstream), 200);
    assert.equal(await upgrade(upstream), 101);
    assert.deepEqual(resumed, [false, true, true], 'a full handshake, then resumed ones');
    pool.close();
  });

  it('never offers a session to an upstream rebuilt for another CA: a full handshake, verified against the new CA', async () => {
    current = helloWithCa(caPem);
    const pool = createUpstreamPool({ tunnels });
    const cluster = agentCluster();
    const first = pool.get(cluster);
    resumed.length = 0;
    assert.equal(await forward(first), 200);
    assert.equal(await forward(first), 200);
    // A bundle that still holds the server's CA: the handshake succeeds, but only a full one.
    current = helloWithCa(`${caPem}\n${otherCaPem}`);
    const bundled = pool.get(cluster);
    assert.notEqual(bundled, first, 'a new CA builds a new upstream');
    assert.equal(await forward(bundled), 200);
    assert.deepEqual(resumed, [false, true, false]);
    // A CA that did not sign the server's certificate: the old, verified session is not offered, so the server is refused.
    current = helloWithCa(otherCaPem);
    const wrong = pool.get(cluster);
    await assert.rejects(forward(wrong), /certificate/);
    await assert.rejects(upgrade(wrong), /certificate/);
    pool.close();
  });

  it('keeps no session of a connection whose verification failed, though TLS 1.2 hands it over before the check', async () => {
    // An impostor the agent's stream reaches instead: TLS 1.2 with a certificate the right CA
    // signed for another name, so the chain verifies and only the name check fails — after
    // the session was handed over. Were it kept, the next connection would offer it.
    const ca = await createCertificateAuthority({ commonName: 'resume-impostor-ca', validityDays: 1 });
    const real = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost'], validityDays: 1 });
    const impostorCert = await issueServingCertificate(ca, { commonName: 'impostor.example', sans: ['impostor.example'], validityDays: 1 });
    const impostorResumed: boolean[] = [];
    const realResumed: boolean[] = [];
    const serve = (certificate: { certPem: string; keyPem: string }, log: boolean[]): https.Server => {
      const tls12 = https.createServer({ cert: certificate.certPem, key: certificate.keyPem, maxVersion: 'TLSv1.2' }, (_req, res) => res.end('ok'));
      tls12.on('secureConnection', (socket: tls.TLSSocket) => log.push(socket.isSessionReused()));
      tls12.listen(0, '127.0.0.1');
      return tls12;
    };
    const impostor = serve(impostorCert, impostorResumed);
    const genuine = serve(real, realResumed);
    await Promise.all([once(impostor, 'listening'), once(genuine, 'listening')]);
    let target = impostor;
    const pool = createUpstreamPool({ tunnels: { credentials: () => helloWithCa(ca.certPem), dial: () => net.connect((target.address() as net.AddressInfo).port, '127.0.0.1') } });
    try {
      const upstream = pool.get(agentCluster());
      await assert.rejects(forward(upstream), /altnames|certificate|Hostname/i);
      await assert.rejects(forward(upstream), /altnames|certificate|Hostname/i);
      await assert.rejects(upgrade(upstream), /altnames|certificate|Hostname/i);
      assert.deepEqual(impostorResumed, [false, false, false], "the impostor's session is never offered back");
      target = genuine;
      assert.equal(await forward(upstream), 200);
      assert.equal(await forward(upstream), 200);
      assert.deepEqual(realResumed, [false, true], 'a verified session is kept and resumed');
    } finally {
      pool.close();
      for (const server of [impostor, genuine]) {
        server.closeAllConnections();
        server.close();
      }
    }
  });
});
