/**
 * Who may write to a cluster: the sync (real SQLite stores, the real upstream pool) against
 * one strict fake API server shared by several kubegate installations, cluster IDs and
 * copies of one data dir — each must prune only its own objects, a copy of a data dir must
 * notice that it is not the original, and a cluster without the authorized endpoint must
 * never be synced, retried or logged about with stack traces.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createUpstreamPool } from '../../src/clusters/upstreams.js';
import type { UpstreamPool } from '../../src/clusters/upstreams.js';
import { isKubegateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createSecretBox } from '../../src/store/secret-box.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { ownershipStampName } from '../../src/sync/ownership.js';
import { createClusterSync } from '../../src/sync/sync.js';
import type { ClusterSync } from '../../src/sync/sync.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer, FakeObject } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { eventually } from '../support/eventually.js';

const CLUSTER_TOKEN = 'proxy-sa-token-ownership-0123456789';
const KEY = Buffer.alloc(32, 7);

interface Installation {
  readonly dataDir: string;
  readonly store: Store;
  readonly sync: ClusterSync;
  readonly pool: UpstreamPool;
  readonly logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

let dir: string;
let fake: FakeKubeApiServer;
const open: Installation[] = [];

async function startInstallation(dataDir: string, options: { takeOver?: boolean } = {}): Promise<Installation> {
  const store = await openStore({ type: 'sqlite', path: join(dataDir, 'kubegate.db') }, createSecretBox(KEY));
  const pool = createUpstreamPool({ connectTimeoutMs: 2000 });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', name: 'proxy', destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
  const sync = createClusterSync({ store, upstreams: pool, logger, initialBackoffMs: 60_000, takeOver: options.takeOver ?? false });
  const installation: Installation = {
    dataDir,
    store,
    sync,
    pool,
    logs,
    async close() {
      sync.stop();
      pool.close();
      await store.close();
      open.splice(open.indexOf(installation), 1);
    },
  };
  open.push(installation);
  return installation;
}

async function addCluster(store: Store, id: string, options: { ace?: boolean; server?: string } = {}): Promise<void> {
  await store.createCluster({
    id,
    server: options.server ?? fake.url,
    caPem: fake.caPem,
    credentials: { kind: 'token', token: CLUSTER_TOKEN },
    ace: { enabled: options.ace ?? true, fqdn: null, caPem: null, nodes: [] },
  });
}

let sequence = 0;
/** A user with a kubeconfig token for the cluster; answers the token name. */
async function addToken(store: Store, clusterId: string, userId?: string): Promise<string> {
  sequence++;
  const user = userId ?? `u-own${String(sequence).padStart(9, '0')}`;
  if ((await store.getUser(user)) === undefined) await store.createUser({ id: user, username: user });
  const name = `t-own${String(sequence).padStart(6, '0')}`;
  await store.createToken({ name, tokenHash: '$3:1:c2FsdA:aGFzaA', userId: user, kind: 'kubeconfig', provider: 'local', clusterId, expiresAt: new Date(Date.now() + 86_400_000) });
  return name;
}

function tokenObject(name: string): FakeObject | undefined {
  return fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name);
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isKubegateError(error) && error.code === code);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubegate-ownership-'));
  fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] });
});

after(async () => {
  for (const installation of [...open]) await installation.close();
  await fake?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('sync ownership', () => {
  test('two installations syncing one cluster each prune only their own objects, and the second notes the first once', async () => {
    const prod = await startInstallation(join(dir, 'prod'));
    const staging = await startInstallation(join(dir, 'staging'));
    await addCluster(prod.store, 'edge');
    await addCluster(staging.store, 'edge');
    const prodToken = await addToken(prod.store, 'edge');
    const stagingToken = await addToken(staging.store, 'edge');
    await prod.store.putMembership({ clusterId: 'edge', subjectKind: 'Group', subjectName: 'local:ops', role: 'member' });
    await staging.store.putMembership({ clusterId: 'edge', subjectKind: 'Group', subjectName: 'local:ops', role: 'viewer' });

    await prod.sync.syncNow('edge');
    await staging.sync.syncNow('edge');
    await prod.sync.syncNow('edge');
    await staging.sync.syncNow('edge');
    assert.ok(tokenObject(prodToken), "prod's token survived staging's sync");
    assert.ok(tokenObject(stagingToken), "staging's token survived prod's sync");
    const prodId = await prod.sync.installationId();
    const stagingId = await staging.sync.installationId();
    assert.notEqual(prodId, stagingId);
    assert.equal(tokenObject(prodToken)?.metadata.labels?.['kubegate.io/installation'], prodId);
    assert.equal(tokenObject(prodToken)?.metadata.labels?.['kubegate.io/cluster'], 'edge');
    const groupBindings = fake.objects('clusterrolebindings').filter((binding) => JSON.stringify(binding['subjects']).includes('local:ops'));
    assert.deepEqual(groupBindings.map((binding) => (binding['roleRef'] as { name: string }).name).sort(), ['edit', 'view'], 'both bindings of the same group exist side by side');
    assert.ok((staging.sync.status('edge')?.foreignObjects ?? 0) > 0);
    const notes = staging.logs.filter((line) => String(line['msg']).includes('another installation'));
    assert.equal(notes.length, 1, 'said once, not at every sync');

    // Revocation in one installation removes only its own token.
    await prod.store.deleteToken(prodToken);
    await prod.sync.syncNow('edge');
    assert.equal(tokenObject(prodToken), undefined);
    assert.ok(tokenObject(stagingToken));
    await prod.close();
    await staging.close();
  });

  test('two cluster IDs of one installation on one API server keep each other’s tokens', async () => {
    const one = await startInstallation(join(dir, 'aliases'));
    await addCluster(one.store, 'left');
    await addCluster(one.store, 'right');
    const left = await addToken(one.store, 'left');
    const right = await addToken(one.store, 'right');
    await one.sync.syncNow('left');
    await one.sync.syncNow('right');
    await one.sync.syncNow('left');
    assert.ok(tokenObject(left) && tokenObject(right));
    await one.close();
  });

  test('objects written before owner labels existed are adopted when wanted and pruned when not', async () => {
    const one = await startInstallation(join(dir, 'legacy'));
    await addCluster(one.store, 'old');
    const live = await addToken(one.store, 'old');
    const legacy = (name: string): FakeObject => ({
      apiVersion: 'cluster.cattle.io/v3',
      kind: 'ClusterAuthToken',
      metadata: { name, namespace: CATTLE_NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'kubegate' } },
      userName: 'u-whoever',
      enabled: true,
    });
    fake.resources.put('clusterauthtokens', legacy(live));
    fake.resources.put('clusterauthtokens', legacy('t-revokedlongago'));
    await one.sync.syncNow('old');
    assert.equal(tokenObject(live)?.metadata.labels?.['kubegate.io/installation'], await one.sync.installationId());
    assert.equal(tokenObject('t-revokedlongago'), undefined, 'a revoked token from before the upgrade does not stay valid');
    await one.close();
  });

  test('a copied data dir refuses to write once the original has restarted, until started with takeOver; the original then stands down', async () => {
    const originalDir = join(dir, 'original');
    let original = await startInstallation(originalDir);
    await addCluster(original.store, 'shared');
    const before = await addToken(original.store, 'shared');
    await original.sync.syncNow('shared');
    await original.close();
    const copyDir = join(dir, 'copy');
    await cp(originalDir, copyDir, { recursive: true });

    // The original restarts (a new epoch) and goes on working; only it knows that epoch.
    original = await startInstallation(originalDir);
    const originalOnly = await addToken(original.store, 'shared');
    await original.sync.syncNow('shared');
    assert.ok(tokenObject(originalOnly));

    const copy = await startInstallation(copyDir);
    const copyOnly = await addToken(copy.store, 'shared');
    const writesBefore = fake.requests.filter((request) => request.method !== 'GET').length;
    await rejectsWith(copy.sync.syncNow('shared'), 'SYNC_SUPERSEDED');
    assert.equal(fake.requests.filter((request) => request.method !== 'GET').length, writesBefore, 'the copy wrote nothing');
    assert.ok(tokenObject(originalOnly), "the copy did not prune the original's token");
    assert.equal(tokenObject(copyOnly), undefined);
    assert.match(copy.sync.status('shared')?.error ?? '', /^SYNC_SUPERSEDED: .*sync\.takeOver/);
    await copy.close();

    // The operator decides the copy is the one: it takes over, and the original stands down.
    const takingOver = await startInstallation(copyDir, { takeOver: true });
    await takingOver.sync.syncNow('shared');
    assert.ok(tokenObject(copyOnly));
    assert.ok(tokenObject(before));
    await takingOver.sync.syncNow('shared');
    await rejectsWith(original.sync.syncNow('shared'), 'SYNC_SUPERSEDED');
    assert.ok(tokenObject(copyOnly), 'the superseded original pruned nothing');
    await takingOver.close();
    await original.close();
  });

  test('restarts of one installation never look like a copy', async () => {
    const dataDir = join(dir, 'restarts');
    for (let run = 0; run < 3; run++) {
      const one = await startInstallation(dataDir);
      if (run === 0) await addCluster(one.store, 'steady');
      await addToken(one.store, 'steady');
      await one.sync.syncNow('steady');
      assert.equal(one.sync.status('steady')?.ok, true);
      await one.close();
    }
    const stamp = fake.resources.get('configmaps', CATTLE_NAMESPACE, ownershipStampName({ installationId: await (async () => {
      const one = await startInstallation(dataDir);
      const id = await one.sync.installationId();
      await one.close();
      return id;
    })(), clusterId: 'steady' }));
    assert.ok(stamp, 'the ownership stamp is in the cluster');
  });
});

describe('clusters without the authorized endpoint', () => {
  test('get the membership role bindings (with owner labels) and no token state, and token changes cause no attempt', async () => {
    const one = await startInstallation(join(dir, 'plain'));
    // No CRDs read, no cattle.io kinds: the fake answers those too, so a request would show.
    const plain = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] });
    try {
      await one.store.createCluster({ id: 'plain', server: plain.url, caPem: plain.caPem, credentials: { kind: 'token', token: CLUSTER_TOKEN } });
      one.sync.start();
      await one.store.putMembership({ clusterId: 'plain', subjectKind: 'User', subjectName: 'u-someone0000', role: 'viewer' });
      await one.sync.syncNow('plain');
      const bindings = plain.objects('clusterrolebindings');
      assert.equal(bindings.length, 1);
      assert.equal((bindings[0]!['roleRef'] as { name: string }).name, 'view');
      assert.deepEqual(bindings[0]!['subjects'], [{ kind: 'User', name: 'u-someone0000', apiGroup: 'rbac.authorization.k8s.io' }]);
      assert.equal(bindings[0]!.metadata.labels?.['kubegate.io/installation'], await one.sync.installationId());
      assert.equal(bindings[0]!.metadata.labels?.['kubegate.io/cluster'], 'plain');
      assert.equal(one.sync.status('plain')?.ok, true);
      const stamp = plain.resources.get('configmaps', CATTLE_NAMESPACE, ownershipStampName({ installationId: await one.sync.installationId(), clusterId: 'plain' }));
      assert.equal(stamp?.['data'] && (stamp['data'] as Record<string, string>)['aceObjects'], 'false', 'the stamp says no token state is there');

      const before = plain.requests.length;
      await addToken(one.store, 'plain');
      await one.sync.syncNow('plain');
      const after = plain.requests.slice(before).map((request) => `${request.method} ${request.path}`);
      assert.ok(after.length > 0);
      assert.deepEqual(
        after.filter((line) => /cluster\.cattle\.io|secrets/.test(line)),
        [],
        'the token kinds are never listed or written in a cluster without the endpoint',
      );
      assert.equal(plain.objects('clusterauthtokens').length, 0);
      assert.equal(one.logs.filter((line) => Number(line['level']) >= 40).length, 0, 'no warning');
    } finally {
      await one.close();
      await plain.close();
    }
  });

  test('a membership change reaches a cluster without the endpoint by itself; removing it prunes the binding', async () => {
    const one = await startInstallation(join(dir, 'plain-events'));
    const plain = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: ['default', CATTLE_NAMESPACE] });
    try {
      await one.store.createCluster({ id: 'events', server: plain.url, caPem: plain.caPem, credentials: { kind: 'token', token: CLUSTER_TOKEN } });
      one.sync.start();
      await one.store.putMembership({ clusterId: 'events', subjectKind: 'Group', subjectName: 'local:ops', role: 'member' });
      await eventually(() => plain.objects('clusterrolebindings').some((binding) => (binding['roleRef'] as { name: string }).name === 'edit'), 5000, 'binding synced');
      await one.store.deleteMembership('events', 'Group', 'local:ops');
      await eventually(() => plain.objects('clusterrolebindings').length === 0, 5000, 'binding pruned');
    } finally {
      await one.close();
      await plain.close();
    }
  });

  test('a cluster whose sync namespace is missing fails with a message saying so, one warning, no stack', async () => {
    const one = await startInstallation(join(dir, 'no-namespace'));
    const bare = await startFakeKubeApiServer({ token: CLUSTER_TOKEN });
    try {
      await one.store.createCluster({ id: 'bare', server: bare.url, caPem: bare.caPem, credentials: { kind: 'token', token: CLUSTER_TOKEN } });
      await rejectsWith(one.sync.syncNow('bare'), 'KUBE_API_FAILED');
      await rejectsWith(one.sync.syncNow('bare'), 'KUBE_API_FAILED');
      assert.match(one.sync.status('bare')?.error ?? '', /namespace cattle-system does not exist.*downstream-rbac\.yaml/);
      const lines = one.logs.filter((line) => line['cluster'] === 'bare');
      assert.deepEqual(lines.filter((line) => String(line['msg']).includes('sync failed')).map((line) => line['level']), [40, 20]);
      assert.equal(lines.filter((line) => JSON.stringify(line).includes('    at ')).length, 0, 'no stack trace');
    } finally {
      await one.close();
      await bare.close();
    }
  });

  test('turning the endpoint off removes the token state once (bindings stay), and then those kinds are left alone', async () => {
    const one = await startInstallation(join(dir, 'switch-off'));
    try {
      await addCluster(one.store, 'switch');
      const token = await addToken(one.store, 'switch');
      await one.store.putMembership({ clusterId: 'switch', subjectKind: 'Group', subjectName: 'local:switchers', role: 'viewer' });
      await one.sync.syncNow('switch');
      assert.ok(tokenObject(token));
      assert.equal((await one.store.getCluster('switch'))?.syncHoldsObjects, true);
      await one.store.updateCluster('switch', { ace: { enabled: false, fqdn: null, caPem: null, nodes: [] } });
      await one.sync.syncNow('switch');
      assert.equal(tokenObject(token), undefined);
      assert.ok(fake.objects('clusterrolebindings').some((binding) => JSON.stringify(binding['subjects']).includes('local:switchers')), 'the binding stays');
      const before = fake.requests.length;
      await addToken(one.store, 'switch');
      await one.sync.syncNow('switch');
      assert.deepEqual(
        fake.requests.slice(before).filter((request) => /clusterauthtokens|clusteruserattributes|secrets/.test(request.path)).map((request) => request.path),
        [],
        'token kinds are not touched any more',
      );
    } finally {
      await one.close();
    }
  });

  test('a failing cluster with the endpoint logs one warning per failure streak, without a stack, and says when it recovers', async () => {
    const one = await startInstallation(join(dir, 'flaky'));
    await addCluster(one.store, 'flaky');
    fake.unavailable = true;
    try {
      await rejectsWith(one.sync.syncNow('flaky'), 'KUBE_API_FAILED');
      await rejectsWith(one.sync.syncNow('flaky'), 'KUBE_API_FAILED');
    } finally {
      fake.unavailable = false;
    }
    await one.sync.syncNow('flaky');
    const lines = one.logs.filter((line) => line['cluster'] === 'flaky');
    const failures = lines.filter((line) => String(line['msg']).includes('sync failed'));
    assert.deepEqual(failures.map((line) => line['level']), [40, 20], 'a warning, then debug for the same failure');
    assert.equal(lines.filter((line) => JSON.stringify(line).includes('    at ')).length, 0, 'no stack trace');
    assert.ok(lines.some((line) => line['msg'] === 'cluster sync recovered'));
    await one.close();
  });
});
