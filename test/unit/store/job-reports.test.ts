/**
 * What the background jobs report, as another process reads it: two copies of the job
 * reports (loadJobReports) on one real SQLite store stand for the lease holder and a replica
 * that runs no job. The probe, the provider check and the sync status written through one
 * must read back the same through the other.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClusterStatus, sharedClusterStatusRecords } from '../../../src/clusters/status.js';
import { createUpstreamPool, type UpstreamPool } from '../../../src/clusters/upstreams.js';
import { createLogger } from '../../../src/log.js';
import { createProviderHealthMonitor, sharedProviderHealthRecords } from '../../../src/providers/health.js';
import { loadJobReports, type JobReports } from '../../../src/store/job-reports.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Cluster, Store } from '../../../src/store/store.js';
import { sharedSyncStatus } from '../../../src/sync/status-report.js';
import type { ClusterSyncStatus } from '../../../src/sync/sync.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../../fakes/kube-apiserver.js';
import { eventually } from '../../support/eventually.js';

const TOKEN = 'reports-token-0123456789';
const CHECKED_AT = new Date('2026-12-05T01:00:00.000Z');

describe('job reports read by another process', () => {
  let dir: string;
  let store: Store;
  let holder: JobReports;
  let replica: JobReports;
  let fake: FakeKubeApiServer;
  let upstreams: UpstreamPool;
  let cluster: Cluster;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-reports-'));
    store = await openSqliteStore({ path: join(dir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
    const onError = (error: unknown): void => assert.fail(String(error));
    holder = await loadJobReports(store, { onError });
    replica = await loadJobReports(store, { onError });
    fake = await startFakeKubeApiServer({ token: TOKEN });
    upstreams = createUpstreamPool({ connectTimeoutMs: 5000 });
    cluster = await store.createCluster({ id: 'edge', server: fake.url, caPem: fake.caPem, credentials: { kind: 'token', token: TOKEN } });
  });
  after(async () => {
    holder.close();
    replica.close();
    upstreams.close();
    await fake.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows a replica the probe the holder made, and the holder a replica's credential refusal, because every replica serves the cluster's status", async () => {
    const directory = { listClusters: () => [cluster], getCluster: (id: string) => (id === cluster.id ? cluster : undefined) };
    const probing = createClusterStatus({ directory, upstreams, now: () => CHECKED_AT, records: sharedClusterStatusRecords(holder) });
    const serving = createClusterStatus({ directory, upstreams, now: () => CHECKED_AT, records: sharedClusterStatusRecords(replica) });
    assert.equal(serving.get('edge'), undefined);
    const probed = await probing.probe('edge');
    assert.deepEqual(probed, { reachable: true, version: 'v1.32.4', checkedAt: CHECKED_AT, credential: 'accepted' });
    await eventually(() => serving.get('edge') !== undefined, 5000, 'the replica reads the probe');
    assert.deepEqual(serving.get('edge'), probed);
    serving.reportCredentialRefused('edge');
    await eventually(() => probing.get('edge')?.credential === 'refused', 5000, 'the holder reads the refusal');
    assert.equal(probing.get('edge')?.version, 'v1.32.4');
  });

  it('shows a replica the provider health the holder checked', async () => {
    const logger = createLogger({ level: 'silent', name: 'reports-test' });
    const providers = [{ name: 'corp', checkHealth: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:389')) }, { name: 'local' }];
    const configs = providers.map((provider) => ({ name: provider.name, type: 'ldap', enabled: true, settings: {} }));
    const options = { providers, configs, intervalMs: 60_000, timeoutMs: 1000, logger, now: () => CHECKED_AT };
    const checking = createProviderHealthMonitor({ ...options, records: sharedProviderHealthRecords(holder) });
    const serving = createProviderHealthMonitor({ ...options, records: sharedProviderHealthRecords(replica) });
    assert.deepEqual(serving.get('corp'), { state: 'unknown', checkedAt: null, message: null });
    await checking.checkNow();
    await eventually(() => serving.get('corp')?.state !== 'unknown' && serving.get('local')?.state !== 'unknown', 5000, 'the replica reads the checks');
    assert.deepEqual(serving.get('corp'), checking.get('corp'));
    assert.deepEqual(serving.get('local'), { state: 'healthy', checkedAt: CHECKED_AT.toISOString(), message: null });
    assert.equal(serving.get('nobody'), undefined);
  });

  it('shows a replica the sync status the holder recorded, field for field', async () => {
    const status: ClusterSyncStatus = {
      ok: false,
      lastAttemptAt: CHECKED_AT,
      lastSuccessAt: new Date('2026-12-05T00:00:00.000Z'),
      error: 'KUBE_API_FAILED: the API server answered HTTP 503',
      consecutiveFailures: 2,
      objects: { tokens: 3, users: 2, bindings: 1 },
      foreignObjects: 0,
      conflicts: 1,
    };
    sharedSyncStatus(holder).record('edge', status);
    const read = sharedSyncStatus(replica);
    await eventually(() => read.get('edge') !== undefined, 5000, 'the replica reads the sync status');
    assert.deepEqual(read.get('edge'), status);
  });

  it('counts a report that does not decode as none, rather than showing half of it', async () => {
    await store.putJobReport('cluster-sync', 'edge', { ok: 'yes', lastAttemptAt: 'yesterday' });
    await store.putJobReport('cluster-probe', 'edge', { reachable: true, credential: 'maybe', checkedAt: CHECKED_AT.toISOString() });
    await eventually(() => replica.get('cluster-sync', 'edge')?.['ok'] === 'yes' && replica.get('cluster-probe', 'edge')?.['credential'] === 'maybe', 5000, 'the copies');
    assert.equal(sharedSyncStatus(replica).get('edge'), undefined);
    assert.equal(sharedClusterStatusRecords(replica).get('edge'), undefined);
  });
});
