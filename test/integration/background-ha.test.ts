/**
 * Background jobs run once per installation: two real proxies on one real PostgreSQL — A a
 * child process (so it can die the hard way), B in this process — and one fake API server.
 * A starts first and holds the background job lease: it alone syncs and probes; B serves
 * what A found. Then A is killed (SIGKILL: no graceful stop, the lease is not given up) and
 * B takes over within one lease period and syncs a change made afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProxy, type RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { createApiClient, registerClusterWithMemberGroup, type ApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { spawnProxy, type ProxyProcess } from '../support/proxy-process.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-lease';
const CLUSTER_TOKEN = 'proxy-sa-token-lease-0123456789abcdef';
const VERSION = { major: '1', minor: '31', gitVersion: 'v1.31.7-lease' };

describe('background jobs across two proxy replicas on PostgreSQL', () => {
  let dir: string;
  let postgres: TestPostgres;
  let fake: FakeKubeApiServer;
  let replicaA: ProxyProcess;
  let replicaB: RunningProxy;
  let apiA: ApiClient;
  let apiB: ApiClient;
  let adminToken: string;
  const bLogs: Array<Record<string, unknown>> = [];

  /** Whether the cluster holds a binding of `role` for the group. */
  const bound = (role: string, group: string): boolean =>
    fake
      .objects('clusterrolebindings')
      .some((binding) => (binding['roleRef'] as { name: string }).name === role && (binding['subjects'] as Array<{ name: string }>).some((subject) => subject.name === group));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-lease-ha-'));
    postgres = await startPostgres();
    const storeUrl = await postgres.createDatabase();
    const secretKey = randomBytes(32).toString('base64');
    fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, version: VERSION, namespaces: ['default', CATTLE_NAMESPACE] });
    const env = { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD, KUBEGATE_SECRET_KEY: secretKey, KUBEGATE_STORE_URL: storeUrl };
    // A short lease, so that the takeover is quick; renewed every second.
    const configFile = join(dir, 'kubegate.yaml');
    await writeFile(configFile, 'background:\n  leaseDuration: 3s\nsync:\n  resyncInterval: 1h\naudit:\n  enabled: false\n');
    replicaA = await spawnProxy({ dataDir: join(dir, 'data-a'), configFile, env });
    const config = loadProxyConfig({ file: configFile, env, flags: { listen: '127.0.0.1:0', dataDir: join(dir, 'data-b'), metricsListen: '127.0.0.1:0' } });
    const logger = createLogger({ level: 'info', name: 'proxy', destination: { write: (line: string) => void bLogs.push(JSON.parse(line)) } });
    replicaB = await startProxy(config, { logger });
    apiA = createApiClient(replicaA.url, replicaA.caPem as string);
    apiB = createApiClient(replicaB.url, replicaB.caPem as string);
    adminToken = await apiB.login('admin', ADMIN_PASSWORD);
  });

  after(async () => {
    await replicaA?.kill();
    await replicaB?.stop();
    await fake?.close();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('one replica holds the lease, says so in its log and metric, and syncs alone; the other serves what it found', async () => {
    assert.equal(replicaB.holdsBackgroundLease(), false, 'A started first and holds the lease');
    const holderLines = replicaA.lines().filter((line) => line['msg'] === 'this process holds the background job lease: it runs the background jobs');
    assert.equal(holderLines.length, 1);
    assert.ok(bLogs.some((line) => line['msg'] === 'another process holds the background job lease and runs the background jobs' && line['heldBy'] === holderLines[0]!['holder']));
    assert.match(await (await fetch(`${replicaA.metricsUrl}/metrics`)).text(), /^kubegate_background_leader 1$/m);
    assert.match(await (await fetch(`${replicaB.metricsUrl}/metrics`)).text(), /^kubegate_background_leader 0$/m);

    // Registered through A (which probes it at once) and given a member through B.
    await registerClusterWithMemberGroup(apiA, adminToken, { id: 'edge', server: fake.url, caPem: fake.caPem, token: CLUSTER_TOKEN }, 'local:ops', apiB);
    await eventually(() => bound('edit', 'local:ops'), 10_000, 'the membership binding in the cluster');

    // B shows the health A probed and the outcome of A's sync, though it did neither.
    await eventually(async () => (await apiB.request('GET', '/v1/clusters/edge', { token: adminToken })).json.sync?.ok === true, 10_000, 'B shows the sync');
    const view = await apiB.request('GET', '/v1/clusters/edge', { token: adminToken });
    assert.deepEqual({ reachable: view.json.status.reachable, healthy: view.json.status.healthy, version: view.json.status.version }, { reachable: true, healthy: true, version: VERSION.gitVersion });
    const list = await apiB.request('GET', '/v1/clusters', { token: adminToken });
    assert.deepEqual(list.json.items.map((item: { id: string }) => item.id), ['edge']);
    assert.equal(replicaB.sync.status('edge'), undefined, 'B never ran a reconcile of its own');

    // A second change, made through B: synced by A again, never by B.
    const viewer = await apiB.request('POST', '/v1/clusters/edge/members', { token: adminToken, body: { kind: 'Group', name: 'local:auditors', role: 'viewer' } });
    assert.equal(viewer.status, 201, viewer.text);
    await eventually(() => bound('view', 'local:auditors'), 10_000, 'the viewer binding');
    // The binding appears while A's pass still runs; its report is written when the pass ends.
    await eventually(async () => (await apiB.request('GET', '/v1/clusters/edge', { token: adminToken })).json.sync?.ok === true, 10_000, 'B shows the second sync');
    assert.equal(replicaB.sync.status('edge'), undefined, 'B still never ran a reconcile of its own');
  });

  test("DELETE through the replica that does not sync is answered once the holder's sync cleaned the cluster and removed it", async () => {
    await registerClusterWithMemberGroup(apiA, adminToken, { id: 'gone', server: fake.url, caPem: fake.caPem, token: CLUSTER_TOKEN }, 'local:leaving');
    const ofGone = (): number => fake.objects('clusterrolebindings').filter((binding) => binding.metadata.labels?.['kubegate.io/cluster'] === 'gone').length;
    await eventually(() => ofGone() > 0, 10_000, 'the bindings of the second cluster');
    const deleted = await apiB.request('DELETE', '/v1/clusters/gone', { token: adminToken });
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal(ofGone(), 0, 'the holder removed its objects before B answered');
    assert.equal((await apiA.request('GET', '/v1/clusters/gone', { token: adminToken })).status, 404);
    assert.equal(replicaB.holdsBackgroundLease(), false);
  });

  test('the holder dies: the other replica takes over within a lease period and syncs a change made afterwards', async () => {
    await replicaA.kill();
    await eventually(() => replicaB.holdsBackgroundLease(), 15_000, 'B holds the lease');
    assert.ok(bLogs.some((line) => line['msg'] === 'this process holds the background job lease: it runs the background jobs'));
    assert.match(await (await fetch(`${replicaB.metricsUrl}/metrics`)).text(), /^kubegate_background_leader 1$/m);

    const owner = await apiB.request('POST', '/v1/clusters/edge/members', { token: adminToken, body: { kind: 'Group', name: 'local:admins', role: 'owner' } });
    assert.equal(owner.status, 201, owner.text);
    await eventually(() => bound('cluster-admin', 'local:admins'), 10_000, 'the owner binding, synced by B');
    // The binding appears while B's pass still runs; its status is set when the pass ends.
    await eventually(() => replicaB.sync.status('edge')?.ok === true, 10_000, 'B synced it');
  });
});
