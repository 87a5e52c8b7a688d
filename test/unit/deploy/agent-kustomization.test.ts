/**
 * deploy/agent/ (a kustomization) and the import manifest the proxy renders
 * (importManifestObjects) must be the same objects: this builds the kustomization with real
 * `kubectl kustomize`, as shipped and with the per-cluster files filled in the way its
 * README says, and compares every object field by field, so the two cannot drift.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { importManifestObjects } from '../../../src/clusters/import-manifest.js';
import { kubectlPath } from '../../support/kubectl.js';

type Manifest = Record<string, any>;

const agentDir = join(import.meta.dirname, '..', '..', '..', 'deploy', 'agent');
const PROXY_CA = '-----BEGIN CERTIFICATE-----\nTUlJQnByb3h5Q0Fmb3J0ZXN0cw==\n-----END CERTIFICATE-----\n';
const REGISTRATION_TOKEN = 'r-abcdefghijkl:mnopqrstuvwxyz234567abcdefghijklmnopqrstuvwxyz234567abcdef';

async function kustomize(dir: string): Promise<Manifest[]> {
  const { stdout } = await promisify(execFile)(kubectlPath('system'), ['kustomize', dir], { env: { PATH: '/usr/bin:/bin', HOME: dir } });
  return parseAllDocuments(stdout).map((document) => document.toJS() as Manifest);
}

/** One form for both sides: a Secret's base64 `data` as the `stringData` it came from. */
function normalized(object: Manifest): Manifest {
  if (object['kind'] !== 'Secret' || object['data'] === undefined) return object;
  const { data, ...rest } = object;
  return { ...rest, stringData: Object.fromEntries(Object.entries(data as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')])) };
}

function byIdentity(objects: readonly Manifest[]): Map<string, Manifest> {
  return new Map(objects.map((object) => [`${object['kind']} ${object['metadata'].namespace ?? ''}/${object['metadata'].name}`, normalized(object)]));
}

function assertSameObjects(built: readonly Manifest[], rendered: readonly Manifest[]): void {
  const expected = byIdentity(rendered);
  const actual = byIdentity(built);
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), 'the same kinds, names and namespaces');
  for (const [identity, object] of expected) assert.deepEqual(actual.get(identity), object, identity);
}

describe('deploy/agent (kustomize) mirrors the import manifest', () => {
  let work: string;

  /** A copy of deploy/agent with the per-cluster files filled in as README.md says. */
  async function filledIn(ace: boolean): Promise<string> {
    const dir = join(work, ace ? 'with-ace' : 'without-ace');
    await cp(agentDir, dir, { recursive: true });
    const cluster = await readFile(join(dir, 'cluster.yaml'), 'utf8');
    await writeFile(join(dir, 'cluster.yaml'), cluster.replace(/clusterId: \S+/, 'clusterId: edge').replace(/proxyUrl: \S+/, 'proxyUrl: https://kubegate.corp.example:8443'));
    await writeFile(join(dir, 'proxy-ca.pem'), PROXY_CA);
    await writeFile(join(dir, 'registration-token'), REGISTRATION_TOKEN);
    let kustomization = (await readFile(join(dir, 'kustomization.yaml'), 'utf8')).replace(/newTag: \S+/, 'newTag: 1.4.2');
    if (ace) kustomization = kustomization.replace('# components:\n#   - ace', 'components:\n  - ace');
    await writeFile(join(dir, 'kustomization.yaml'), kustomization);
    return dir;
  }

  const rendered = (ace: boolean): Manifest[] =>
    importManifestObjects({
      clusterId: 'edge',
      proxyUrl: 'https://kubegate.corp.example:8443',
      proxyCaPem: PROXY_CA,
      registrationToken: REGISTRATION_TOKEN,
      image: 'kubegate:1.4.2',
      syncNamespace: 'cattle-system',
      ace,
      roleNames: ['cluster-admin', 'edit', 'view'],
    }) as Manifest[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'kubegate-kustomize-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  test('filled in, without the authorized endpoint: every object equals the import manifest of a cluster without ACE', async () => {
    assertSameObjects(await kustomize(await filledIn(false)), rendered(false));
  });

  test('filled in, with the ace component: every object equals the import manifest of a cluster with ACE', async () => {
    assertSameObjects(await kustomize(await filledIn(true)), rendered(true));
  });

  test('as shipped it builds, and every per-cluster value is a visible CHANGE-ME placeholder, never a working default', async () => {
    const objects = await kustomize(agentDir);
    const deployment = objects.find((object) => object['kind'] === 'Deployment')!;
    const container = deployment['spec'].template.spec.containers[0];
    const env = Object.fromEntries((container.env as Manifest[]).map((variable) => [variable['name'], variable['value']]));
    assert.match(env['KUBEGATE_CLUSTER_ID'], /CHANGE-ME/);
    assert.match(container.image, /:CHANGE-ME$/);
    assert.ok(objects.every((object) => /CHANGE-ME/.test(object['metadata'].labels['kubegate.io/cluster'])), 'the cluster label of every object');
    const secret = normalized(objects.find((object) => object['kind'] === 'Secret')!);
    assert.match(secret['stringData']['registration-token'], /^CHANGE-ME/);
    const configMap = objects.find((object) => object['kind'] === 'ConfigMap')!;
    assert.match(configMap['data']['ca.pem'], /^CHANGE-ME/);
    assert.equal(objects.some((object) => object['metadata'].name === 'kubegate-agent-cluster'), false, 'cluster.yaml is read, never applied');
  });
});
