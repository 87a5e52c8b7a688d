import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createClusterStatus, isHealthy } from '../../../src/clusters/status.js';
import { createUpstreamPool } from '../../../src/clusters/upstreams.js';
import type { UpstreamPool } from '../../../src/clusters/upstreams.js';
import type { Cluster } from '../../../src/store/store.js';
import { startFakeKubeApiServer } from '../../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../../fakes/kube-apiserver.js';
import { eventually } from '../../support/eventually.js';
import { directCluster } from '../../support/forward-harness.js';

const TOKEN = 'probe-token';
const CHECKED_AT = new Date('2025-06-01T12:00:00Z');

function cluster(id: string, server: string, fields: Partial<Cluster> = {}): Cluster {
  return directCluster(id, server, { credentials: { kind: 'token', token: TOKEN }, createdAt: CHECKED_AT, updatedAt: CHECKED_AT, ...fields });
}

/** Our own small directory: the two lookups the monitor uses, over a map a test edits. */
function directoryOf(clusters: Map<string, Cluster>) {
  return { listClusters: () => [...clusters.values()], getCluster: (id: string) => clusters.get(id) };
}

describe('createClusterStatus', () => {
  let fake: FakeKubeApiServer;
  let silent: Server;
  let silentSockets: Socket[];
  let upstreams: UpstreamPool;
  const openSilentSockets = (): number => silentSockets.filter((socket) => !socket.destroyed).length;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: TOKEN });
    // Accepts TCP connections and never answers: a TLS handshake that never ends.
    silentSockets = [];
    silent = createServer((socket) => {
      silentSockets.push(socket);
      socket.on('error', () => undefined);
      socket.resume(); // read (and drop) the ClientHello, so that the client closing is noticed
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    upstreams = createUpstreamPool({ connectTimeoutMs: 10_000 });
  });
  after(async () => {
    upstreams.close();
    await fake.close();
    for (const socket of silentSockets) socket.destroy();
    silent.close();
  });

  it('reports a cluster that answers /version as reachable, with its version, probing with the cluster credentials', async () => {
    const clusters = new Map([['a', cluster('a', fake.url, { caPem: fake.caPem })]]);
    const monitor = createClusterStatus({ directory: directoryOf(clusters), upstreams, now: () => CHECKED_AT });
    assert.equal(monitor.get('a'), undefined);
    assert.deepEqual(await monitor.probe('a'), { reachable: true, version: 'v1.32.4', checkedAt: CHECKED_AT, credential: 'accepted' });
    assert.deepEqual(monitor.get('a'), { reachable: true, version: 'v1.32.4', checkedAt: CHECKED_AT, credential: 'accepted' });
    const recorded = fake.requests.findLast((request) => request.path === '/version')!;
    assert.equal(recorded.headers.authorization, `Bearer ${TOKEN}`);
  });

  it('reports an HTTP error status, a refused connection and an untrusted certificate, each as a short reason', async () => {
    const clusters = new Map([
      ['wrong-token', cluster('wrong-token', fake.url, { caPem: fake.caPem, credentials: { kind: 'token', token: 'nope' } })],
      ['refused', cluster('refused', 'https://127.0.0.1:1')],
      ['untrusted', cluster('untrusted', fake.url)],
    ]);
    const monitor = createClusterStatus({ directory: directoryOf(clusters), upstreams, now: () => CHECKED_AT });
    await monitor.probeAll();
    // A 401 is an answer: reachable, but the proxy's credential is refused (unhealthy).
    assert.deepEqual(monitor.get('wrong-token'), { reachable: true, checkedAt: CHECKED_AT, credential: 'refused', error: "the API server refused the proxy's credential (HTTP 401)" });
    assert.equal(isHealthy(monitor.get('wrong-token')!), false);
    assert.equal(monitor.get('refused')?.credential, 'unknown');
    assert.equal(monitor.get('refused')?.error, 'the API server cannot be reached (ECONNREFUSED)');
    assert.match(monitor.get('untrusted')?.error ?? '', /^the API server cannot be reached \([A-Z_]+\)$/);
  });

  it('gives up on a silent server after timeoutMs, so a probe never hangs', async () => {
    const port = (silent.address() as AddressInfo).port;
    const clusters = new Map([['silent', cluster('silent', `https://127.0.0.1:${port}`)]]);
    const monitor = createClusterStatus({ directory: directoryOf(clusters), upstreams, timeoutMs: 200, now: () => CHECKED_AT });
    const started = performance.now();
    assert.deepEqual(await monitor.probe('silent'), { reachable: false, checkedAt: CHECKED_AT, credential: 'unknown', error: 'no answer in time' });
    assert.ok(performance.now() - started < 2000);
  });

  it('reports cluster settings the upstream pool refuses without trying to connect', async () => {
    const clusters = new Map([['plain', cluster('plain', 'http://127.0.0.1:1')]]);
    const monitor = createClusterStatus({ directory: directoryOf(clusters), upstreams, now: () => CHECKED_AT });
    assert.equal((await monitor.probe('plain'))?.error, 'the cluster settings cannot be used');
  });

  it('marks a cluster unhealthy at once when the forwarding path reports its credential refused, until a probe gets through', async () => {
    const clusters = new Map([['a', cluster('a', fake.url, { caPem: fake.caPem })]]);
    const monitor = createClusterStatus({ directory: directoryOf(clusters), upstreams, now: () => CHECKED_AT });
    await monitor.probe('a');
    assert.equal(isHealthy(monitor.get('a')!), true);
    monitor.reportCredentialRefused('a');
    assert.deepEqual(monitor.get('a'), { reachable: true, version: 'v1.32.4', checkedAt: CHECKED_AT, credential: 'refused', error: "the API server refused the proxy's credential (HTTP 401)" });
    monitor.reportCredentialRefused('unknown-cluster');
    assert.equal(monitor.get('unknown-cluster'), undefined, 'no status for a cluster the directory does not know');
    await monitor.probe('a');
    assert.equal(isHealthy(monitor.get('a')!), true);
  });

  it('forgets clusters that are gone, and answers undefined when asked to probe one', async () => {
    const clusters = new Map([['a', cluster('a', fake.url, { caPem: fake.caPem })]]);
    const monitor = createClusterStatus({ directory: directoryOf(clusters), upstreams });
    await monitor.probeAll();
    assert.equal(monitor.get('a')?.reachable, true);
    clusters.delete('a');
    await monitor.probeAll();
    assert.equal(monitor.get('a'), undefined);
    assert.equal(await monitor.probe('a'), undefined);
  });

  it('probes at once on start and every interval, and stop() cancels what is in flight', async () => {
    const port = (silent.address() as AddressInfo).port;
    const clusters = new Map([
      ['a', cluster('a', fake.url, { caPem: fake.caPem })],
      ['silent', cluster('silent', `https://127.0.0.1:${port}`)],
    ]);
    const monitor = createClusterStatus({ directory: directoryOf(clusters), upstreams, intervalSeconds: 0.05, timeoutMs: 60_000 });
    const before = fake.requests.filter((request) => request.path === '/version').length;
    monitor.start();
    await fake.waitUntil(() => fake.requests.filter((request) => request.path === '/version').length >= before + 1);
    await eventually(() => openSilentSockets() > 0);
    monitor.stop();
    // The silent probe is cancelled (its connection closed), not left waiting for its 60 s timeout.
    await eventually(() => openSilentSockets() === 0);
    assert.equal(monitor.get('silent'), undefined);
    const afterStop = fake.requests.filter((request) => request.path === '/version').length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(fake.requests.filter((request) => request.path === '/version').length, afterStop, 'no rounds after stop');
  });
});
