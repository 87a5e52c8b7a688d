/**
 * The deploy/ manifests are part of the product: they must parse, the proxy's example
 * configuration must pass kubegate's own validation, and the identity the proxy uses in a
 * downstream cluster must be able to impersonate and nothing more cluster-wide.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadProxyConfig } from '../../../src/config/proxy.js';

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

test('the proxy identity in downstream clusters may only impersonate cluster-wide, so a lost header leaves a powerless request', () => {
  const docs = documentsOf(join(deployDir, 'proxy', 'downstream-rbac.yaml'));
  const clusterRoles = docs.filter((doc) => doc.kind === 'ClusterRole');
  assert.ok(clusterRoles.length > 0);
  for (const role of clusterRoles) {
    for (const rule of role.rules as { verbs: string[] }[]) {
      assert.deepEqual(rule.verbs, ['impersonate'], `${role.metadata.name} grants more than impersonate`);
    }
  }
});
