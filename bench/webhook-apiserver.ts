/**
 * The API server behind the webhook under benchmark, in its own process (so that its CPU is
 * not the webhook's): the strict fake kube-apiserver of the tests holding Rancher-shaped
 * objects — one user, N distinct `$3` tokens `t-sha3-<i>:secret-<i>`, M `$1` (scrypt) tokens
 * `t-scrypt-<i>:secret-<i>` — and a kubeconfig for it. Its lists are chunked as
 * kube-apiserver chunks them (`limit`/`continue`, test/fakes/kube-list-chunks.ts), so the
 * webhook reads any N in pages of 500, each within its 16 MiB bound (60,000 tokens are a
 * 17 MB list). Prints one JSON line when ready.
 * Usage: node --import tsx bench/webhook-apiserver.ts '{"sha3Tokens":N,"scryptTokens":M,"dir":DIR}'.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFakeKubeApiServer } from '../test/fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE, rancherClusterAuthToken, rancherClusterUserAttribute, rancherHash, rancherTokenSecret } from '../test/fakes/rancher-objects.js';
import { buildKubeconfig } from '../test/support/kubectl.js';

const options = JSON.parse(process.argv[2] ?? '{}') as { sha3Tokens: number; scryptTokens: number; dir: string };
const credential = 'bench-webhook-sa-token-0123456789';
const fake = await startFakeKubeApiServer({ token: credential, namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] });
fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-bench', groups: ['local://bench'] }));
for (let i = 0; i < options.sha3Tokens; i++) {
  fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: `t-sha3-${i}`, userName: 'u-bench' }));
  fake.resources.put('secrets', rancherTokenSecret(`t-sha3-${i}`, await rancherHash(3, `secret-${i}`)));
}
for (let i = 0; i < options.scryptTokens; i++) {
  fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: `t-scrypt-${i}`, userName: 'u-bench' }));
  fake.resources.put('secrets', rancherTokenSecret(`t-scrypt-${i}`, await rancherHash(1, `secret-${i}`)));
}
const kubeconfig = join(options.dir, 'webhook-kubeconfig.yaml');
// JSON is YAML: kubeconfig loaders read it as it is.
writeFileSync(kubeconfig, JSON.stringify(buildKubeconfig({ server: fake.url, caPem: fake.caPem, token: credential })), { mode: 0o600 });
process.stdout.write(`${JSON.stringify({ ready: true, kubeconfig })}\n`);
process.on('SIGTERM', () => {
  void fake.close().finally(() => process.exit(0));
});
