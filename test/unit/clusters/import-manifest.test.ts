/**
 * The import manifest grants the agent what it needs and no more: this reads its RBAC the way
 * the API server's authorizer would (bindings → roles → rules) and checks the Deployment,
 * where the secrets travel, and that the agent's own configuration loads from the pod it
 * describes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import {
  AGENT_CA_CONFIGMAP,
  AGENT_HEALTH_PORT,
  AGENT_NAME,
  AGENT_NAMESPACE,
  AGENT_SECRET,
  SYNC_USER,
  importManifestObjects,
  renderImportManifest,
} from '../../../src/clusters/import-manifest.js';
import type { ImportManifestOptions } from '../../../src/clusters/import-manifest.js';
import { loadAgentConfig } from '../../../src/config/agent.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME } from '../../../src/auth/user.js';
import { MANAGED_BY_LABEL } from '../../../src/kube/rancher.js';
import { SYNC_USER as SYNC_IMPERSONATED_USER } from '../../../src/sync/sync.js';

type Manifest = Record<string, any>;

const PROXY_CA = '-----BEGIN CERTIFICATE-----\nTUlJQnByb3h5Q0Fmb3J0ZXN0cw==\n-----END CERTIFICATE-----\n';
const REGISTRATION_TOKEN = 'r-abcdefghijkl:mnopqrstuvwxyz234567abcdefghijklmnopqrstuvwxyz234567abcdef';
const IMAGE = 'registry.example/kubegate:1.2.3';

const options = (overrides: Partial<ImportManifestOptions> = {}): ImportManifestOptions => ({
  clusterId: 'edge',
  proxyUrl: 'https://kubegate.example.com',
  proxyCaPem: PROXY_CA,
  registrationToken: REGISTRATION_TOKEN,
  image: IMAGE,
  syncNamespace: 'cattle-system',
  ace: true,
  roleNames: ['cluster-admin', 'edit', 'view'],
  ...overrides,
});

const bindingKinds = ['ClusterRoleBinding', 'RoleBinding'];
const isAgentServiceAccount = (subject: Manifest): boolean => subject['kind'] === 'ServiceAccount' && subject['name'] === AGENT_NAME && subject['namespace'] === AGENT_NAMESPACE;

/**
 * What a set of subjects may do, as `scope apiGroup resource name verb` lines: the rules of
 * the roles bound to them (a RoleBinding's rules hold in its namespace only).
 */
function grantsOf(objects: readonly Manifest[], matches: (subject: Manifest) => boolean): string[] {
  const grants = new Set<string>();
  for (const binding of objects.filter((object) => bindingKinds.includes(object['kind']))) {
    if (!(binding['subjects'] as Manifest[]).some(matches)) continue;
    const roleRef = binding['roleRef'] as Manifest;
    const namespace = binding['kind'] === 'RoleBinding' ? binding['metadata'].namespace : undefined;
    const role = objects.find(
      (object) => object['kind'] === roleRef['kind'] && object['metadata'].name === roleRef['name'] && (roleRef['kind'] === 'ClusterRole' || object['metadata'].namespace === namespace),
    );
    assert.ok(role, `${binding['metadata'].name} binds ${roleRef['kind']} ${roleRef['name']}, which the manifest does not define`);
    for (const rule of role['rules'] as Manifest[]) {
      for (const group of rule['apiGroups'] as string[]) {
        for (const resource of rule['resources'] as string[]) {
          for (const name of (rule['resourceNames'] as string[] | undefined) ?? ['*']) {
            for (const verb of rule['verbs'] as string[]) grants.add(`${namespace ?? 'cluster'} ${group || 'core'} ${resource} ${name} ${verb}`);
          }
        }
      }
    }
  }
  return [...grants].sort();
}

function only(objects: readonly Manifest[], kind: string): Manifest {
  const found = objects.filter((object) => object['kind'] === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
}

describe('the import manifest', () => {
  const objects = importManifestObjects(options()) as Manifest[];
  const deployment = only(objects, 'Deployment');
  const podSpec = deployment['spec'].template.spec as Manifest;
  const container = podSpec['containers'][0] as Manifest;

  test('the agent ServiceAccount may impersonate the identities the proxy sends, create SubjectAccessReviews, and get/patch its own Secret by name: nothing else', () => {
    const impersonate = (group: string, resource: string): string => `cluster ${group} ${resource} * impersonate`;
    assert.deepEqual(
      grantsOf(objects, isAgentServiceAccount),
      [
        impersonate('core', 'users'),
        impersonate('core', 'groups'),
        impersonate('core', 'serviceaccounts'),
        ...[EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME].map((extra) => impersonate('authentication.k8s.io', `userextras/${extra}`)),
        impersonate('authentication.k8s.io', 'uids'),
        'cluster authorization.k8s.io subjectaccessreviews * create',
        `${AGENT_NAMESPACE} core secrets ${AGENT_SECRET} get`,
        `${AGENT_NAMESPACE} core secrets ${AGENT_SECRET} patch`,
      ].sort(),
    );
  });

  test('the agent impersonates with exactly the rules a directly registered proxy identity gets (deploy/proxy/downstream-rbac.yaml)', () => {
    const downstream = parseAllDocuments(readFileSync(join(import.meta.dirname, '..', '..', '..', 'deploy', 'proxy', 'downstream-rbac.yaml'), 'utf8')).map((document) => document.toJS() as Manifest);
    const proxyRole = downstream.find((object) => object['kind'] === 'ClusterRole' && object['metadata'].name === 'kubegate-proxy-impersonator');
    const agentRole = objects.find((object) => object['kind'] === 'ClusterRole' && object['metadata'].name === 'kubegate-agent-impersonator');
    assert.deepEqual(agentRole?.['rules'], proxyRole?.['rules']);
  });

  test('only the two agent bindings name the ServiceAccount, and every other binding names the sync user alone', () => {
    const bindings = objects.filter((object) => bindingKinds.includes(object['kind']));
    assert.deepEqual(
      bindings.filter((binding) => (binding['subjects'] as Manifest[]).some(isAgentServiceAccount)).map((binding) => `${binding['kind']}/${binding['metadata'].name}`),
      ['ClusterRoleBinding/kubegate-agent-impersonator', 'RoleBinding/kubegate-agent-credential'],
    );
    for (const binding of bindings) {
      const subjects = binding['subjects'] as Manifest[];
      if (subjects.some(isAgentServiceAccount)) assert.equal(subjects.length, 1, `${binding['metadata'].name} binds the agent alone`);
      else assert.deepEqual(subjects, [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: SYNC_USER }], binding['metadata'].name);
    }
    assert.equal(SYNC_USER, SYNC_IMPERSONATED_USER, 'the sync impersonates the user the manifest grants');
  });

  test('the sync user may manage role bindings, bind only the membership roles, and write the endpoint objects and its ownership stamp in the sync namespace', () => {
    assert.deepEqual(grantsOf(objects, (subject) => subject['kind'] === 'User' && subject['name'] === SYNC_USER), [
      ...['create', 'delete', 'get', 'list', 'patch'].map((verb) => `cluster rbac.authorization.k8s.io clusterrolebindings * ${verb}`),
      ...['cluster-admin', 'edit', 'view'].map((role) => `cluster rbac.authorization.k8s.io clusterroles ${role} bind`),
      ...['clusterauthtokens', 'clusteruserattributes'].flatMap((resource) => ['create', 'delete', 'get', 'list', 'patch'].map((verb) => `cattle-system cluster.cattle.io ${resource} * ${verb}`)),
      ...['create', 'delete', 'get', 'list', 'patch'].map((verb) => `cattle-system core secrets * ${verb}`),
      ...['create', 'delete', 'get', 'update'].map((verb) => `cattle-system core configmaps * ${verb}`),
    ].sort());
  });

  test('without the authorized endpoint the sync user may manage role bindings and its ownership stamp only: no token kinds, no Secrets', () => {
    const inSyncNamespace = (list: Manifest[]): string[] =>
      list.filter((object) => object['metadata'].namespace === 'cattle-system' || (object['kind'] === 'Namespace' && object['metadata'].name === 'cattle-system')).map((object) => `${object['kind']}/${object['metadata'].name}`);
    assert.deepEqual(inSyncNamespace(objects), ['Namespace/cattle-system', 'Role/kubegate-sync-owner', 'RoleBinding/kubegate-sync-owner', 'Role/kubegate-sync', 'RoleBinding/kubegate-sync']);
    const withoutAce = importManifestObjects(options({ ace: false })) as Manifest[];
    assert.deepEqual(inSyncNamespace(withoutAce), ['Namespace/cattle-system', 'Role/kubegate-sync-owner', 'RoleBinding/kubegate-sync-owner']);
    assert.deepEqual(grantsOf(withoutAce, (subject) => subject['kind'] === 'User' && subject['name'] === SYNC_USER), [
      ...['create', 'delete', 'get', 'list', 'patch'].map((verb) => `cluster rbac.authorization.k8s.io clusterrolebindings * ${verb}`),
      ...['cluster-admin', 'edit', 'view'].map((role) => `cluster rbac.authorization.k8s.io clusterroles ${role} bind`),
      ...['create', 'delete', 'get', 'update'].map((verb) => `cattle-system core configmaps * ${verb}`),
    ].sort());
    assert.deepEqual(grantsOf(withoutAce, isAgentServiceAccount), grantsOf(objects, isAgentServiceAccount), 'the agent gets the same rights either way');
  });

  test('the Deployment runs 2 non-root replicas with a read-only root filesystem, no privilege escalation, no capabilities, and both probes', () => {
    assert.equal(deployment['metadata'].namespace, AGENT_NAMESPACE);
    assert.equal(deployment['spec'].replicas, 2);
    assert.equal((importManifestObjects(options({ replicas: 3 })) as Manifest[]).find((object) => object['kind'] === 'Deployment')?.['spec'].replicas, 3);
    assert.equal(podSpec['serviceAccountName'], AGENT_NAME);
    assert.equal(podSpec['securityContext'].runAsNonRoot, true);
    assert.notEqual(podSpec['securityContext'].runAsUser, 0);
    assert.equal(podSpec['hostNetwork'] ?? false, false);
    assert.equal(podSpec['containers'].length, 1);
    assert.equal(podSpec['initContainers'], undefined);
    assert.deepEqual(container['securityContext'], { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    assert.deepEqual(container['ports'], [{ name: 'health', containerPort: AGENT_HEALTH_PORT }]);
    assert.deepEqual(container['readinessProbe'].httpGet, { path: '/readyz', port: 'health' });
    assert.deepEqual(container['livenessProbe'].httpGet, { path: '/healthz', port: 'health' });
    assert.deepEqual(deployment['spec'].selector.matchLabels, { 'app.kubernetes.io/name': AGENT_NAME });
    assertSubset(deployment['spec'].selector.matchLabels, deployment['spec'].template.metadata.labels);
  });

  test('the registration token is in the Secret only, and the proxy CA in the ConfigMap only', () => {
    for (const object of objects) {
      const text = JSON.stringify(object);
      assert.equal(text.includes(REGISTRATION_TOKEN), object['kind'] === 'Secret', `${object['kind']} ${object['metadata'].name}`);
      assert.equal(text.includes('TUlJQnByb3h5Q0Fmb3J0ZXN0cw'), object['kind'] === 'ConfigMap', `${object['kind']} ${object['metadata'].name}`);
    }
    const secret = only(objects, 'Secret');
    assert.deepEqual([secret['metadata'].namespace, secret['metadata'].name, secret['stringData']], [AGENT_NAMESPACE, AGENT_SECRET, { 'registration-token': REGISTRATION_TOKEN }]);
    assert.deepEqual(only(objects, 'ConfigMap')['data'], { 'ca.pem': PROXY_CA });
    const rendered = renderImportManifest(options());
    assert.equal(rendered.split(REGISTRATION_TOKEN).length - 1, 1, 'the rendered YAML holds the token once');
    assert.match(rendered, /^# .*\n# Contains a one-time registration token/);
  });

  test('the configured image is the only image, and no object carries the label the sync deletes by', () => {
    const images = JSON.stringify(objects).match(/"image":"[^"]*"/g);
    assert.deepEqual(images, [`"image":"${IMAGE}"`]);
    for (const object of objects) assert.equal(object['metadata'].labels?.[MANAGED_BY_LABEL], undefined, `${object['kind']} ${object['metadata'].name}`);
  });

  test("kubegate agent loads its configuration from the pod the Deployment describes, reading the manifest's Secret and CA", () => {
    const env: Record<string, string> = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    for (const variable of container['env'] as Manifest[]) {
      if (variable['value'] !== undefined) env[variable['name']] = variable['value'];
      else if (variable['valueFrom'].fieldRef.fieldPath === 'metadata.name') env[variable['name']] = 'kubegate-agent-6f7d9-x2x4q';
      else if (variable['valueFrom'].fieldRef.fieldPath === 'metadata.namespace') env[variable['name']] = deployment['metadata'].namespace;
      else assert.fail(`unexpected env ${JSON.stringify(variable)}`);
    }
    const config = loadAgentConfig({ env });
    assert.equal(config.proxyUrl, 'https://kubegate.example.com');
    assert.equal(config.clusterId, 'edge');
    assert.equal(config.agentId, 'kubegate-agent-6f7d9-x2x4q');
    assert.deepEqual(config.credential, { kind: 'secret', namespace: AGENT_NAMESPACE, name: AGENT_SECRET });
    const mount = (container['volumeMounts'] as Manifest[]).find((volumeMount) => volumeMount['name'] === 'proxy-ca');
    assert.equal(config.proxyCaFile, `${mount?.['mountPath']}/ca.pem`);
    assert.deepEqual(podSpec['volumes'], [{ name: 'proxy-ca', configMap: { name: AGENT_CA_CONFIGMAP } }]);
    assert.ok(config.healthListen.endsWith(`:${AGENT_HEALTH_PORT}`), 'the probes reach the health listener');
    assert.equal(config.metrics.listen, '127.0.0.1:9464', 'metrics stay inside the pod');
    assert.equal(config.metrics.bearerTokenFile, undefined, 'so the probes port does not serve /metrics');

    const publicCa = importManifestObjects(options({ proxyCaPem: null })) as Manifest[];
    const publicEnv = (publicCa.find((object) => object['kind'] === 'Deployment')?.['spec'].template.spec.containers[0].env as Manifest[]).map((variable) => variable['name']);
    assert.equal(publicEnv.includes('KUBEGATE_PROXY_CA_FILE'), false, 'a publicly trusted proxy: the system roots');
  });
});

function assertSubset(subset: Record<string, string>, labels: Record<string, string>): void {
  for (const [key, value] of Object.entries(subset)) assert.equal(labels[key], value, key);
}
