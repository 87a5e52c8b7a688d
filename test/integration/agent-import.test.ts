/**
 * Importing a cluster as an operator does it: the admin creates an agent-mode cluster, copies
 * the one-liner the API answers (`commandWithCa`: curl with the proxy's CA, piped to
 * `kubectl apply -f -`), runs it with bash against the cluster (the strict fake API server,
 * real kubectl), and one real `kubegate agent` then starts from what that apply created —
 * the Secret with the registration token — registers, dials out and carries kubectl.
 *
 * Nothing is put into the cluster by the test itself: every object there came from kubectl.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer, FakeObject } from '../fakes/kube-apiserver.js';
import { fakeResourceKinds } from '../fakes/kube-resources.js';
import { spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { startProxyForAgents } from '../support/agent-proxy.js';
import type { ApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { buildKubeconfig, kubectlPath, runKubectl } from '../support/kubectl.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-import';
/** The cluster administrator's credential for the API server (also what the agent's pod would mount). */
const CLUSTER_TOKEN = 'cluster-admin-token-0123456789';
const PRE_EXISTING_NAMESPACES = ['default', 'kube-system'];

type Manifest = Record<string, any>;

interface ShellResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command line with bash, as an operator pastes it into a terminal. */
async function runShell(command: string, env: Record<string, string>): Promise<ShellResult> {
  const child = spawn('/bin/bash', ['-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function objectsOf(manifest: string): Manifest[] {
  return parseAllDocuments(manifest)
    .map((document) => document.toJS() as Manifest | null)
    .filter((object): object is Manifest => object !== null);
}

function pluralOf(object: Manifest): string {
  const kind = fakeResourceKinds.find((candidate) => candidate.kind === object['kind']);
  assert.ok(kind, `the fake stores ${object['kind']}`);
  return kind.plural;
}

/** What kube-apiserver keeps of a manifest object: a Secret's stringData becomes base64 data. */
function asStored(object: Manifest): Manifest {
  if (object['kind'] !== 'Secret') return object;
  const { stringData, ...rest } = object;
  const data = Object.fromEntries(Object.entries(stringData as Record<string, string>).map(([key, value]) => [key, Buffer.from(value).toString('base64')]));
  return { ...rest, data };
}

/** Every field of `expected` is in `actual` with the same value (the server adds its own). */
function assertIncludes(actual: unknown, expected: unknown, path: string): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(actual !== null && typeof actual === 'object', `${path} is an object`);
    for (const [key, value] of Object.entries(expected)) assertIncludes((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    return;
  }
  assert.deepEqual(actual, expected, path);
}

describe('importing a cluster with the one-liner the API answers, real kubectl and a real agent', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let api: ApiClient;
  let adminToken: string;
  let importView: Record<string, any>;
  let clusterKubeconfig: string;
  let shellEnv: Record<string, string>;
  let agent: AgentProcess | undefined;

  async function clusterView(): Promise<Record<string, any>> {
    const view = await api.request('GET', '/v1/clusters/edge', { token: adminToken });
    assert.equal(view.status, 200, view.text);
    return view.json;
  }

  /** Every object of the cluster of the kinds the fake stores, but the namespaces it started with. */
  function clusterObjects(): FakeObject[] {
    return fakeResourceKinds
      .flatMap((kind) => fake.objects(kind.plural))
      .filter((object) => !(object.kind === 'Namespace' && PRE_EXISTING_NAMESPACES.includes(object.metadata.name)));
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-agent-import-'));
    fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: PRE_EXISTING_NAMESPACES });
    ({ proxy, api } = await startProxyForAgents(dir, ADMIN_PASSWORD));
    adminToken = await api.login('admin', ADMIN_PASSWORD);
    const created = await api.request('POST', '/v1/clusters', { token: adminToken, body: { id: 'edge', mode: 'agent', ace: { enabled: true } } });
    assert.equal(created.status, 201, created.text);
    importView = created.json.import;

    clusterKubeconfig = join(dir, 'cluster.kubeconfig');
    await writeFile(clusterKubeconfig, JSON.stringify(buildKubeconfig({ server: fake.url, caPem: fake.caPem, token: CLUSTER_TOKEN })), { mode: 0o600 });
    const home = join(dir, 'home');
    // The system kubectl (a dispatcher that runs the client matching the server's version), curl and base64, nothing else.
    shellEnv = { PATH: '/usr/bin:/bin', HOME: home, KUBECONFIG: clusterKubeconfig };
    assert.equal(kubectlPath('system'), '/usr/bin/kubectl');
  });

  after(async () => {
    await agent?.kill('SIGKILL');
    await proxy?.stop();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const binary of ['system', '1.20'] as const) {
    test(`kubectl ${binary} apply --dry-run=client takes the whole manifest, validated against the server's schemas, and creates nothing`, async () => {
      const file = join(dir, `import-${binary}.yaml`);
      await writeFile(file, importView['manifest'], { mode: 0o600 });
      const result = await runKubectl({ binary, kubeconfig: clusterKubeconfig, args: ['apply', '--dry-run=client', '-f', file], timeoutMs: 60_000 });
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split('\n');
      assert.equal(lines.length, objectsOf(importView['manifest']).length, result.stdout);
      for (const line of lines) assert.match(line, /^\S+\/\S+ (created|configured) \(dry run\)$/);
      assert.deepEqual(clusterObjects(), []);
      assert.equal(fake.requests.some((request) => request.method !== 'GET'), false, 'a client dry run sends no write');
    });
  }

  test('the commandWithCa one-liner, run with bash, applies every object of the manifest into the cluster', async () => {
    const command: string = importView['commandWithCa'];
    assert.match(command, /^curl -fsS --cacert <\(echo [A-Za-z0-9+/=]+ \| base64 -d\) https:\/\/\S+ \| kubectl apply -f -$/);
    const result = await runShell(command, shellEnv);
    assert.equal(result.code, 0, result.stderr);
    const expected = objectsOf(importView['manifest']);
    assert.equal(result.stdout.trim().split('\n').length, expected.length, result.stdout);
    assert.match(result.stdout, /^namespace\/kubegate-system created$/m);
    assert.match(result.stdout, /^deployment\.apps\/kubegate-agent created$/m);

    const landed = clusterObjects();
    assert.deepEqual(
      landed.map((object) => `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`).sort(),
      expected.map((object) => `${object['kind']}/${object['metadata'].namespace ?? ''}/${object['metadata'].name}`).sort(),
      'exactly the manifest objects are in the cluster',
    );
    for (const object of expected) {
      const stored = fake.resources.get(pluralOf(object), object['metadata'].namespace, object['metadata'].name);
      assert.ok(stored, `${object['kind']} ${object['metadata'].name}`);
      assertIncludes(stored, asStored(object), `${object['kind']}/${object['metadata'].name}`);
      assert.ok(stored.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], 'created by kubectl apply');
    }
    // The ACE objects came along: this cluster has the authorized endpoint on.
    assert.ok(fake.resources.get('rolebindings', 'cattle-system', 'kubegate-sync'));
  });

  test('one real agent starts from the Secret kubectl created, registers, connects, and carries kubectl through the tunnel', async () => {
    const secretBefore = fake.resources.get('secrets', 'kubegate-system', 'kubegate-agent');
    assert.ok(secretBefore?.['data'], 'the Secret holds the registration token');
    const files = { proxyCa: join(dir, 'proxy-ca.pem'), apiCa: join(dir, 'api-ca.pem'), apiToken: join(dir, 'api-token') };
    await writeFile(files.proxyCa, proxy.caPem ?? '');
    await writeFile(files.apiCa, fake.caPem);
    await writeFile(files.apiToken, `${CLUSTER_TOKEN}\n`);
    agent = spawnAgent({
      proxyUrl: proxy.url,
      proxyCaFile: files.proxyCa,
      clusterId: 'edge',
      agentId: 'kubegate-agent-0',
      apiServer: fake.url,
      apiServerName: 'localhost',
      apiCaFile: files.apiCa,
      apiTokenFile: files.apiToken,
    });
    await agent.waitForLog(/tunnel to the proxy is up/, 60_000);
    await eventually(async () => (await clusterView())['agent'].state === 'connected', 20_000, 'the cluster shows connected');
    const view = await clusterView();
    assert.deepEqual(view['agent'].agents.map((entry: Record<string, unknown>) => entry['agentId']), ['kubegate-agent-0']);

    // The sync (the authorized endpoint is on) writes through the tunnel as kubegate:sync and
    // deletes the ClusterRoleBindings it manages that no membership wants: the manifest's own
    // bindings must survive a full pass.
    await eventually(async () => (await clusterView())['sync']?.ok === true, 30_000, 'a successful sync pass through the tunnel');
    for (const object of objectsOf(importView['manifest'])) {
      assert.ok(fake.resources.get(pluralOf(object), object['metadata'].namespace, object['metadata'].name), `${object['kind']} ${object['metadata'].name} is still there after the sync`);
    }

    const data = fake.resources.get('secrets', 'kubegate-system', 'kubegate-agent')?.['data'] as Record<string, string>;
    assert.equal(data['registration-token'], undefined, 'the registration token was exchanged and removed');
    assert.match(Buffer.from(data['credential'] ?? '', 'base64').toString(), /^a-[a-z2-7]{12}:[a-z2-7]{54}$/);

    const kubeconfig = await api.request('GET', '/v1/clusters/edge/kubeconfig', { token: adminToken });
    assert.equal(kubeconfig.status, 200, kubeconfig.text);
    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    await writeFile(adminKubeconfig, kubeconfig.text, { mode: 0o600 });
    const before = fake.requests.length;
    const pods = await runKubectl({ binary: 'system', kubeconfig: adminKubeconfig, args: ['get', 'pods'], timeoutMs: 60_000 });
    assert.equal(pods.code, 0, pods.stderr);
    assert.match(pods.stdout, /web-0\s+1\/1\s+Running/);
    const seen = fake.requests.slice(before).find((request) => request.path === '/api/v1/namespaces/default/pods');
    assert.equal(seen?.user?.impersonated, true, 'the proxy impersonated the admin through the tunnel');
    assert.equal(seen?.headers.authorization, `Bearer ${CLUSTER_TOKEN}`, "with the agent's service account token");
  });

  test('the same one-liner again fails at curl (the registration token is used up) and changes nothing', async () => {
    const before = JSON.stringify(clusterObjects());
    const result = await runShell(importView['commandWithCa'], shellEnv);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /curl: \(22\) .*401/);
    assert.equal(JSON.stringify(clusterObjects()), before);
  });

  test('a fresh import applied over the running agent patches only the Secret, and the agent stays connected', async () => {
    const fresh = await api.request('GET', '/v1/clusters/edge/import', { token: adminToken });
    assert.equal(fresh.status, 200, fresh.text);
    const before = fake.requests.length;
    const result = await runShell(fresh.json.commandWithCa, shellEnv);
    assert.equal(result.code, 0, result.stderr);
    const changed = result.stdout.trim().split('\n').filter((line) => !line.endsWith(' unchanged'));
    assert.deepEqual(changed, ['secret/kubegate-agent configured']);
    const writes = fake.requests.slice(before).filter((request) => request.method !== 'GET');
    assert.deepEqual(
      writes.map((request) => `${request.method} ${request.path} ${request.headers['content-type']} ${request.status}`),
      ['PATCH /api/v1/namespaces/kubegate-system/secrets/kubegate-agent application/strategic-merge-patch+json 200'],
    );
    const data = fake.resources.get('secrets', 'kubegate-system', 'kubegate-agent')?.['data'] as Record<string, string>;
    assert.ok(data['credential'], 'the agent credential is kept');
    assert.equal((await clusterView())['agent'].state, 'connected');
  });
});
