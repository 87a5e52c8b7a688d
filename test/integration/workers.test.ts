/**
 * `kubegate proxy --workers 2` as a real process tree: the primary prepares the data dir
 * once, two workers share the socket, a revocation made through one worker is in force in
 * both at once (the SQLite change relay), the primary's metrics listener sums both workers, and SIGTERM to the
 * primary stops everything gracefully.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { createApiClient, registerClusterWithMemberGroup } from '../support/api-client.js';
import type { ApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { startWorkersProcess, type WorkersProcess } from '../support/workers-process.js';

const ADMIN_PASSWORD = 'workers-Admin-pass-1';
const ALICE_PASSWORD = 'workers-Alice-pass-1';
const CONNECTIONS = 8;
const CLUSTER_TOKEN = 'workers-cluster-token-0123456789abcdef';

/** One request on a new TLS connection (so that the primary hands it to the next worker). */
function clusterRequest(origin: string, caPem: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${origin}/k8s/clusters/dev/api/v1/pods`, { ca: caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

function metricValue(text: string, line: string): number {
  const found = text.split('\n').find((entry) => entry.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}

describe('kubegate proxy --workers 2', () => {
  let dir: string;
  let workers: WorkersProcess;
  let origin: string;
  let caPem: string;
  let api: ApiClient;
  let workerPids: readonly number[];
  /** The primary's metrics listener. */
  let metricsUrl: string;
  const scrape = async (): Promise<string> => (await fetch(`${metricsUrl}/metrics`)).text();
  let output: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-workers-'));
    workers = await startWorkersProcess({ dataDir: join(dir, 'data'), workers: 2, env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } });
    ({ workerPids, metricsUrl, origin, caPem, output } = workers);
    api = createApiClient(origin, caPem);
  });

  after(async () => {
    workers?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  test('the primary forks two workers and bootstraps the admin exactly once, because the one-time setup must not race', () => {
    assert.equal(workerPids.length, 2);
    assert.ok(!workerPids.includes(workers.process.pid ?? -1), 'the primary itself serves no request');
    const bootstrapped = output.join('\n').split('\n').filter((line) => line.includes('bootstrap admin created'));
    assert.equal(bootstrapped.length, 1, output.join(''));
  });

  test('revoking a token through one worker makes requests on every worker fail at once, because the store change is relayed before DELETE answers', async () => {
    const adminToken = await api.login('admin', ADMIN_PASSWORD);
    const alice = await api.request('POST', '/v1/users', { token: adminToken, body: { username: 'alice', password: ALICE_PASSWORD } });
    assert.equal(alice.status, 201, alice.text);
    const created = await api.request('POST', '/v1/tokens', { token: await api.login('alice', ALICE_PASSWORD), body: { description: 'workers test' } });
    assert.equal(created.status, 201, created.text);
    const token = created.json.token as string;

    const metricsBefore = await scrape();
    // Authenticated but not a member of the (unknown) cluster: 403 from whichever worker answers.
    for (let i = 0; i < CONNECTIONS; i++) assert.equal(await clusterRequest(origin, caPem, token), 403);
    const metricsAfter = await scrape();
    const misses = metricValue(metricsAfter, 'kubegate_auth_cache_total{result="miss"}') - metricValue(metricsBefore, 'kubegate_auth_cache_total{result="miss"}');
    const forbidden =
      metricValue(metricsAfter, 'kubegate_proxy_requests_total{cluster="unknown",code="403",method="GET"}') -
      metricValue(metricsBefore, 'kubegate_proxy_requests_total{cluster="unknown",code="403",method="GET"}');
    assert.equal(forbidden, CONNECTIONS, "the primary's metrics listener sums the requests of both workers");
    assert.doesNotMatch(metricsAfter, /cluster="dev"/, 'an unregistered cluster ID never becomes a label');
    assert.equal((await api.request('GET', '/metrics')).status, 404, 'without a token file the main listener serves no metrics');
    assert.equal(misses, 2, 'each worker looked the token up once and cached it: both workers served the token');

    const revoked = await api.request('DELETE', `/v1/tokens/${created.json.name as string}`, { token: adminToken });
    assert.equal(revoked.status, 204, revoked.text);
    const statuses: number[] = [];
    for (let i = 0; i < CONNECTIONS; i++) statuses.push(await clusterRequest(origin, caPem, token));
    assert.deepEqual(statuses, Array(CONNECTIONS).fill(401));
  });

  test('the login limit counts failures of every worker together, because its counters are in the store', async () => {
    // Each request is a new connection, which the primary hands to the next worker: the five
    // failures (loginRateLimit.maxFailures' default) are spread over both workers.
    const attempt = () => api.request('POST', '/v1/login', { body: { provider: 'local', username: 'carol', password: 'not-her-password' } });
    for (let i = 0; i < 5; i++) assert.equal((await attempt()).status, 401);
    const refused: number[] = [];
    for (let i = 0; i < 2; i++) refused.push((await attempt()).status);
    assert.deepEqual(refused, [429, 429], 'refused by whichever worker answers');
  });

  test('one worker holds the background job lease and syncs; every worker shows what it found, because the jobs run once per installation', async () => {
    const version = { major: '1', minor: '30', gitVersion: 'v1.30.2-workers' };
    const fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, version, namespaces: ['default', CATTLE_NAMESPACE] });
    try {
      const logLines = (): Array<Record<string, unknown>> =>
        output
          .join('\n')
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
      const holderPids = (): Set<unknown> =>
        new Set(logLines().filter((line) => line['msg'] === 'this process holds the background job lease: it runs the background jobs').map((line) => line['pid']));
      assert.equal(holderPids().size, 1, 'one worker took the lease');
      assert.ok(workerPids.includes(Number([...holderPids()][0])));
      assert.equal(metricValue(await scrape(), 'kubegate_background_leader'), 1, 'summed over the workers');

      const adminToken = await api.login('admin', ADMIN_PASSWORD);
      await registerClusterWithMemberGroup(api, adminToken, { id: 'jobs', server: fake.url, caPem: fake.caPem, token: CLUSTER_TOKEN }, 'local:ops');
      await eventually(() => fake.objects('clusterrolebindings').some((binding) => (binding['roleRef'] as { name: string }).name === 'edit'), 10_000, 'the binding');

      // Each request on a new connection, so both workers answer: the same probe and sync everywhere.
      await eventually(async () => {
        const views = await Promise.all(Array.from({ length: CONNECTIONS }, () => api.request('GET', '/v1/clusters/jobs', { token: adminToken })));
        return views.every((view) => view.json.status?.version === version.gitVersion && view.json.sync?.ok === true);
      }, 10_000, 'every worker shows the probe and the sync');
      const syncing = new Set(logLines().filter((line) => line['msg'] === 'cluster sync applied changes').map((line) => line['pid']));
      assert.deepEqual([...syncing], [...holderPids()], 'only the lease holder wrote to the cluster');
    } finally {
      await fake.close();
    }
  });

  test('SIGTERM to the primary stops both workers gracefully and the primary exits 0', async () => {
    workers.process.kill('SIGTERM');
    const code = await Promise.race([workers.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000))]);
    assert.equal(code, 0, output.join(''));
    for (const pid of workerPids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
    const stopped = output.join('\n').split('\n').filter((line) => line.includes('"msg":"stopped"') && !/"listener":"(metrics|peers)"/.test(line));
    assert.equal(stopped.length, 2, 'each worker ran its graceful stop');
  });
});
