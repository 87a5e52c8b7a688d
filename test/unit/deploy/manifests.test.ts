/**
 * The deploy/ manifests are part of the product: they must parse, the proxy's example
 * configuration must pass kubegate's own validation, the identity the proxy uses in a
 * downstream cluster must be able to impersonate and nothing more cluster-wide, no volume
 * mount may lie inside another, and the proxy must find its configuration and serving
 * certificate in the volumes that hold them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { loadProxyConfig } from '../../../src/config/proxy.js';
import { SYNC_USER } from '../../../src/sync/sync.js';

const deployDir = join(import.meta.dirname, '..', '..', '..', 'deploy');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(entry) ? [path] : [];
  });
}

function documentsOf(path: string): Record<string, any>[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => {
    assert.equal(doc.errors.length, 0, `${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as Record<string, any>;
  }).filter((doc) => doc !== null);
}

test('every manifest under deploy/ is valid YAML with an apiVersion and a kind, because kubectl apply rejects anything else', () => {
  const files = yamlFiles(deployDir);
  assert.ok(files.length > 0);
  for (const file of files) {
    for (const doc of documentsOf(file)) {
      assert.equal(typeof doc.apiVersion, 'string', `${file}: apiVersion`);
      assert.equal(typeof doc.kind, 'string', `${file}: kind`);
    }
  }
});

test('the example proxy configuration passes kubegate validation, because operators copy it as it is', () => {
  const [configMap] = documentsOf(join(deployDir, 'proxy', 'config.yaml'));
  const dir = mkdtempSync(join(tmpdir(), 'kubegate-deploy-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, configMap!.data['config.yaml']);
    const config = loadProxyConfig({
      file,
      env: { KUBEGATE_STORE_URL: 'postgres://kubegate:secret@postgres:5432/kubegate', KUBEGATE_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') },
    });
    assert.equal(config.store.type, 'postgres');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the proxy identity in downstream clusters may only impersonate and ask whether a user may, so a request that lost its headers has no power', () => {
  const docs = documentsOf(join(deployDir, 'proxy', 'downstream-rbac.yaml'));
  const rulesOf = new Map(docs.filter((doc) => doc.kind === 'ClusterRole' || doc.kind === 'Role').map((doc) => [`${doc.kind}/${doc.metadata.name}`, doc.rules as { verbs: string[] }[]]));
  const bindings = docs.filter((doc) => doc.kind === 'ClusterRoleBinding' || doc.kind === 'RoleBinding');
  const toServiceAccount = bindings.filter((binding) => (binding.subjects as { kind: string; name: string }[]).some((s) => s.kind === 'ServiceAccount' && s.name === 'kubegate-proxy'));
  assert.ok(toServiceAccount.length > 0);
  for (const binding of toServiceAccount) {
    const rules = rulesOf.get(`${binding.roleRef.kind}/${binding.roleRef.name}`);
    assert.ok(rules, `${binding.metadata.name} binds a role the file does not define`);
    const reviews = { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] };
    for (const rule of rules) {
      if (rule.verbs.includes('create')) assert.deepEqual(rule, reviews, `${binding.metadata.name} lets the proxy identity create more than SubjectAccessReviews`);
      else assert.deepEqual(rule.verbs, ['impersonate'], `${binding.metadata.name} gives the proxy identity more than impersonate`);
    }
    assert.ok(rules.some((rule) => JSON.stringify(rule) === JSON.stringify(reviews)), 'the proxy can ask whether a user may impersonate (kubectl --as)');
  }
});

test('the sync writes are granted to the impersonated sync user the code uses, not to the proxy identity', () => {
  const docs = documentsOf(join(deployDir, 'proxy', 'downstream-rbac.yaml'));
  const writers = docs.filter(
    (doc) => (doc.kind === 'ClusterRoleBinding' || doc.kind === 'RoleBinding') && !String(doc.roleRef.name).includes('impersonat'),
  );
  assert.ok(writers.length >= 2, 'bindings for the namespaced objects and the role bindings');
  for (const binding of writers) {
    assert.deepEqual(binding.subjects, [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: SYNC_USER }], binding.metadata.name);
  }
});

/** The containers of every Deployment and DaemonSet under deploy/, with the file they are in. */
function workloadContainers(): { file: string; workload: Record<string, any>; container: Record<string, any> }[] {
  return yamlFiles(deployDir).flatMap((file) =>
    documentsOf(file)
      .filter((doc) => doc.kind === 'Deployment' || doc.kind === 'DaemonSet')
      .flatMap((workload) => (workload.spec.template.spec.containers as Record<string, any>[]).map((container) => ({ file, workload, container }))),
  );
}

test('every kubegate workload under deploy/ runs the one image the Dockerfile builds, named as agents.image names it, so one `docker build -t` serves them all', () => {
  const defaultImage = loadProxyConfig({ env: { KUBEGATE_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') } }).agents.image;
  const repository = (image: string): string => image.replace(/:[^/:]*$/, '');
  const containers = workloadContainers();
  assert.ok(containers.length >= 3, 'proxy, agent and webhook');
  for (const { file, container } of containers) assert.equal(repository(String(container.image)), repository(defaultImage), `${file}: ${container.name}`);
});

test('a proxy Deployment of several replicas gives each replica a peer URL on its own pod IP, because the default (the first SAN) names no replica in particular', () => {
  const [deployment] = documentsOf(join(deployDir, 'proxy', 'deployment.yaml')).filter((doc) => doc.kind === 'Deployment');
  assert.ok(deployment!.spec.replicas > 1);
  const [container] = deployment!.spec.template.spec.containers as Record<string, any>[];
  const env = container!.env as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  const podIp = env.findIndex((variable) => variable.valueFrom?.fieldRef?.fieldPath === 'status.podIP');
  const peerUrl = env.findIndex((variable) => variable.name === 'KUBEGATE_PEER_URL');
  assert.ok(podIp >= 0 && peerUrl > podIp, 'the pod IP variable, defined before KUBEGATE_PEER_URL refers to it');
  const httpsPort = (container!.ports as { name: string; containerPort: number }[]).find((port) => port.name === 'https')!.containerPort;
  const expanded = env[peerUrl]!.value!.replace(`$(${env[podIp]!.name})`, '10.244.1.7');
  const config = loadProxyConfig({ env: { KUBEGATE_PEER_URL: expanded, KUBEGATE_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') } });
  assert.equal(config.agents.peerUrl, `https://10.244.1.7:${httpsPort}`);
});

test('every downstream cluster gets the default sync namespace, where the sync keeps its ownership stamp before it binds any role', () => {
  const docs = documentsOf(join(deployDir, 'proxy', 'downstream-rbac.yaml'));
  const namespaces = docs.filter((doc) => doc.kind === 'Namespace').map((doc) => doc.metadata.name);
  assert.ok(namespaces.includes('cattle-system'), 'the sync namespace is created by the file');
  const stampRole = docs.find((doc) => doc.kind === 'Role' && doc.metadata.namespace === 'cattle-system');
  assert.ok((stampRole?.rules as { resources: string[]; verbs: string[] }[]).some((rule) => rule.resources.includes('configmaps') && rule.verbs.includes('update')));
  // The Namespace comes before the namespaced objects, so one `kubectl apply -f` creates it first.
  assert.ok(docs.findIndex((doc) => doc.kind === 'Namespace') < docs.findIndex((doc) => doc.metadata.namespace === 'cattle-system'));
});

/** Whether `path` is `parent` or lies inside it, by path segment (`/etc/kubegate-tls` is not inside `/etc/kubegate`). */
function isWithin(path: string, parent: string): boolean {
  const inner = path.replace(/\/+$/, '');
  const outer = parent.replace(/\/+$/, '');
  return inner === outer || inner.startsWith(`${outer}/`);
}

interface VolumeMount {
  readonly name: string;
  readonly mountPath: string;
}

test('no volume mount of a workload under deploy/ lies inside another, because its mount point would have to be made inside a read-only, atomically swapped ConfigMap or Secret directory', () => {
  const workloads = yamlFiles(deployDir).flatMap((file) =>
    documentsOf(file)
      .filter((doc) => doc.kind === 'Deployment' || doc.kind === 'DaemonSet')
      .map((workload) => ({ file, spec: workload.spec.template.spec as Record<string, any> })),
  );
  let checked = 0;
  for (const { file, spec } of workloads) {
    for (const container of [...((spec.initContainers ?? []) as Record<string, any>[]), ...(spec.containers as Record<string, any>[])]) {
      const mounts = (container.volumeMounts ?? []) as VolumeMount[];
      for (const mount of mounts) {
        checked++;
        for (const other of mounts) {
          if (other === mount) continue;
          assert.ok(!isWithin(mount.mountPath, other.mountPath), `${file}: ${container.name} mounts ${mount.name} at ${mount.mountPath}, inside ${other.name} at ${other.mountPath}`);
        }
      }
    }
  }
  assert.ok(checked >= 4, 'the proxy, agent and webhook mounts were looked at');
  assert.ok(!isWithin('/etc/kubegate-tls', '/etc/kubegate') && isWithin('/etc/kubegate/tls', '/etc/kubegate/'), 'nesting is by path segment');
});

test('the proxy Deployment reads its configuration and its serving certificate from the volumes that hold them', () => {
  const [deployment] = documentsOf(join(deployDir, 'proxy', 'deployment.yaml')).filter((doc) => doc.kind === 'Deployment');
  const spec = deployment!.spec.template.spec as { containers: Record<string, any>[]; volumes: Record<string, any>[] };
  const [container] = spec.containers;
  const mounts = container!.volumeMounts as VolumeMount[];
  /** The file a path names, as `[volume, key]`: the volume mounted at the path's directory. */
  const fileAt = (path: string): [Record<string, any>, string] => {
    const slash = path.lastIndexOf('/');
    const mount = mounts.find((candidate) => candidate.mountPath.replace(/\/+$/, '') === path.slice(0, slash));
    assert.ok(mount, `no volume is mounted where ${path} is`);
    return [spec.volumes.find((volume) => volume.name === mount.name)!, path.slice(slash + 1)];
  };
  const args = container!.args as string[];
  const [configVolume, configKey] = fileAt(args[args.indexOf('--config') + 1]!);
  const [configMap] = documentsOf(join(deployDir, 'proxy', 'config.yaml'));
  assert.equal(configVolume.configMap?.name, configMap!.metadata.name);
  assert.ok(configKey in configMap!.data, `the ConfigMap has ${configKey}`);
  const tls = (parse(configMap!.data[configKey]) as { tls: { certFile: string; keyFile: string } }).tls;
  for (const [path, key] of [[tls.certFile, 'tls.crt'], [tls.keyFile, 'tls.key']] as const) {
    const [volume, file] = fileAt(path);
    assert.equal(volume.secret?.secretName, 'kubegate-proxy-tls', path);
    assert.equal(file, key, 'a kubernetes.io/tls Secret holds tls.crt and tls.key');
  }
});
