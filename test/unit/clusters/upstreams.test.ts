import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { isKubegateError } from '../../../src/errors.js';
import { createCertificateAuthority, issueClientCertificate } from '../../../src/pki/certificates.js';
import { createUpstreamPool } from '../../../src/clusters/upstreams.js';
import type { Cluster } from '../../../src/store/store.js';
import { directCluster } from '../../support/forward-harness.js';

function cluster(overrides: Partial<Cluster> = {}): Cluster {
  return directCluster('a', 'https://10.0.0.1:6443', { displayName: 'A', credentials: { kind: 'token', token: 'proxy-token' }, ...overrides });
}

/** A plain HTTP server answering `ok`, with the connections it accepted. */
async function startOkServer(): Promise<{ server: http.Server; port: number; connections: Socket[] }> {
  const connections: Socket[] = [];
  const server = http.createServer((_req, res) => res.end('ok'));
  server.on('connection', (socket: Socket) => connections.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, connections };
}

describe('createUpstreamPool', () => {
  it('derives host, port, Host header and path prefix from the server URL, keeping Rancher-style prefixes', () => {
    const pool = createUpstreamPool();
    try {
      const upstream = pool.get(cluster({ server: 'https://rancher.example.com/k8s/clusters/c-xyz/' }));
      assert.equal(upstream.hostname, 'rancher.example.com');
      assert.equal(upstream.port, 443);
      assert.equal(upstream.hostHeader, 'rancher.example.com');
      assert.equal(upstream.pathPrefix, '/k8s/clusters/c-xyz');
      assert.equal(upstream.request, https.request);
      const ipv6 = pool.get(cluster({ id: 'b', server: 'https://[::1]:6443' }));
      assert.equal(ipv6.hostname, '::1');
      assert.equal(ipv6.port, 6443);
      assert.equal(ipv6.hostHeader, '[::1]:6443');
      assert.equal(ipv6.pathPrefix, '');
    } finally {
      pool.close();
    }
  });

  it('turns token credentials into one Authorization header and client certificates into none', async () => {
    const ca = await createCertificateAuthority({ commonName: 'test-ca', validityDays: 1 });
    const client = await issueClientCertificate(ca, { commonName: 'kubegate-proxy' });
    const pool = createUpstreamPool();
    try {
      assert.deepEqual(pool.get(cluster()).authHeaders, ['Authorization', 'Bearer proxy-token']);
      const withCert = pool.get(cluster({ id: 'b', caPem: ca.certPem, credentials: { kind: 'clientCertificate', certPem: client.certPem, keyPem: client.keyPem } }));
      assert.deepEqual(withCert.authHeaders, []);
    } finally {
      pool.close();
    }
  });

  it('reuses the upstream for the same settings, even from a fresh Cluster object after a directory reload', () => {
    const pool = createUpstreamPool();
    try {
      const first = pool.get(cluster());
      assert.equal(pool.get(cluster()), first);
      assert.equal(pool.get(cluster({ displayName: 'renamed', updatedAt: new Date() })), first);
    } finally {
      pool.close();
    }
  });

  it('rebuilds the upstream and closes the old connections when the server, CA, TLS flag or credentials change', { timeout: 10_000 }, async () => {
    const { server, port, connections } = await startOkServer();
    const pool = createUpstreamPool({ allowPlainHttp: true });
    try {
      const base = cluster({ server: `http://127.0.0.1:${port}` });
      const first = pool.get(base);
      const req = first.request({ host: first.hostname, port: first.port, agent: first.agent, path: '/', headers: ['Host', first.hostHeader] });
      req.end();
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      res.resume();
      await once(res, 'end');
      assert.equal(connections.length, 1);
      const kept = connections[0]!;
      assert.equal(kept.destroyed, false, 'the keep-alive connection stays open');
      const keptClosed = once(kept, 'close');

      const rotated = pool.get({ ...base, credentials: { kind: 'token', token: 'rotated' } });
      assert.notEqual(rotated, first);
      assert.deepEqual(rotated.authHeaders, ['Authorization', 'Bearer rotated']);
      // The old agent was destroyed with its connection (else the test fails on its timeout).
      await keptClosed;
      assert.equal(connections.length, 1, 'no new connection was made');
      assert.equal(pool.get(base) === first, false, 'an old Cluster object never brings back a destroyed upstream');
      assert.notEqual(pool.get({ ...base, insecureSkipTlsVerify: true }), pool.get(base));
    } finally {
      pool.close();
      server.close();
    }
  });

  it('refuses http:// servers unless allowed, because the proxy credentials would travel in clear text', () => {
    const pool = createUpstreamPool();
    try {
      assert.throws(() => pool.get(cluster({ server: 'http://10.0.0.1:8080' })), (err) => isKubegateError(err, 'CONFIG_INVALID'));
    } finally {
      pool.close();
    }
    const lenient = createUpstreamPool({ allowPlainHttp: true });
    try {
      assert.equal(lenient.get(cluster({ server: 'http://10.0.0.1:8080' })).request, http.request);
    } finally {
      lenient.close();
    }
  });

  it('refuses unusable servers, CA bundles and tokens with CONFIG_INVALID, so the forwarder answers with a Status', () => {
    const pool = createUpstreamPool();
    try {
      for (const bad of [
        cluster({ server: 'not a url' }),
        cluster({ server: 'ftp://host' }),
        cluster({ server: 'https://user:pass@host' }),
        cluster({ server: 'https://host/?x=1' }),
        cluster({ caPem: '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n' }),
        cluster({ credentials: { kind: 'token', token: 'a b' } }),
        cluster({ credentials: { kind: 'token', token: 'x\r\nImpersonate-User: admin' } }),
        cluster({ credentials: { kind: 'clientCertificate', certPem: 'junk', keyPem: 'junk' } }),
      ]) {
        assert.throws(() => pool.get(bad), (err) => isKubegateError(err, 'CONFIG_INVALID'), bad.server);
      }
    } finally {
      pool.close();
    }
  });

  it('forgets an evicted cluster and builds a fresh upstream if it comes back', () => {
    const pool = createUpstreamPool();
    try {
      const first = pool.get(cluster());
      pool.evict('a');
      pool.evict('unknown');
      assert.notEqual(pool.get(cluster()), first);
    } finally {
      pool.close();
    }
  });

  it("keeps a cluster's connection counts across rebuilt upstreams and forgets them when it is evicted", async () => {
    const { server, port } = await startOkServer();
    const pool = createUpstreamPool({ allowPlainHttp: true });
    try {
      const base = cluster({ server: `http://127.0.0.1:${port}` });
      const first = pool.get(base);
      assert.deepEqual(pool.stats().get('a'), { opened: 0, requests: 0, retries: 0 });
      const answer = await request(`http://127.0.0.1:${port}/`, { dispatcher: first.dispatcher });
      await answer.body.text();
      assert.equal(pool.stats().get('a')?.opened, 1, 'the connection the pool opened is counted');
      const rotated = pool.get({ ...base, credentials: { kind: 'token', token: 'rotated' } });
      assert.notEqual(rotated, first);
      assert.equal(pool.stats().get('a')?.opened, 1, 'a rebuilt upstream keeps counting where the old one stopped');
      pool.evict('a');
      assert.equal(pool.stats().has('a'), false);
    } finally {
      pool.close();
      server.close();
    }
  });

  it('rejects nonsensical pool options as misuse', () => {
    assert.throws(() => createUpstreamPool({ connectTimeoutMs: 0 }), TypeError);
    assert.throws(() => createUpstreamPool({ maxFreeSockets: Number.NaN }), TypeError);
  });
});
