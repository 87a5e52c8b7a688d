/**
 * The webhook under benchmark, in its own process: the strict fake kube-apiserver of the
 * tests (only listed and watched at start, idle during the load) holding Rancher-shaped
 * objects — one user, N distinct `$3` tokens, M `$1` (scrypt) tokens — and `kubegate
 * webhook` (startWebhook, the real wiring) reading them. Prints one JSON line when the
 * webhook has synced.
 * Usage: node --import tsx bench/webhook-server.ts '{"sha3Tokens":N,"scryptTokens":M}'.
 */
import { startWebhook } from '../src/cmd/webhook.js';
import { loadWebhookConfig } from '../src/config/webhook.js';
import { createLogger } from '../src/log.js';
import { startFakeKubeApiServer } from '../test/fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE, rancherClusterAuthToken, rancherClusterUserAttribute, rancherHash, rancherTokenSecret } from '../test/fakes/rancher-objects.js';
import { writeKubeconfig } from '../test/support/kubectl.js';

const options = JSON.parse(process.argv[2] ?? '{}') as { sha3Tokens: number; scryptTokens: number };
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
const kubeconfig = await writeKubeconfig({ server: fake.url, caPem: fake.caPem, token: credential });
const config = loadWebhookConfig({ env: {}, flags: { listen: '127.0.0.1:0', kubeconfig: kubeconfig.path } });
const webhook = await startWebhook(config, { logger: createLogger({ level: 'silent', name: 'webhook' }) });
await webhook.source.synced();
process.stdout.write(`${JSON.stringify({ ready: true, url: webhook.url })}\n`);
process.on('SIGTERM', () => {
  void (async () => {
    await webhook.stop();
    await fake.close();
    await kubeconfig.remove();
    process.exit(0);
  })();
});
