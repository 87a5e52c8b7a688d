/**
 * The authorized cluster endpoint's webhook for a fake cluster, as an operator runs it: the
 * real `kubegate webhook` watching the fake API server with the proxy fixture's cluster
 * token, and the fake asking it about tokens it does not know (as kube-apiserver does with a
 * webhook config file). For a proxy fixture's `beforeProxy`.
 */
import { startWebhook } from '../../src/cmd/webhook.js';
import type { RunningWebhook } from '../../src/cmd/webhook.js';
import { loadWebhookConfig } from '../../src/config/webhook.js';
import { createLogger } from '../../src/log.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { writeKubeconfig } from './kubectl.js';
import { FIXTURE_CLUSTER_TOKEN } from './proxy-fixture.js';

export interface InClusterWebhook {
  readonly webhook: RunningWebhook;
  stop(): Promise<void>;
}

export async function startInClusterWebhook(cluster: FakeKubeApiServer, options: { cacheTtlMs: number }): Promise<InClusterWebhook> {
  const kubeconfig = await writeKubeconfig({ server: cluster.url, caPem: cluster.caPem, token: FIXTURE_CLUSTER_TOKEN });
  try {
    const webhook = await startWebhook(loadWebhookConfig({ env: {}, flags: { listen: '127.0.0.1:0', kubeconfig: kubeconfig.path } }), {
      logger: createLogger({ level: 'silent', name: 'webhook' }),
      informer: { initialBackoffMs: 20 },
    });
    await webhook.source.synced();
    cluster.useWebhookAuthenticator({ url: `${webhook.url}/v1/authenticate`, version: 'v1', cacheTtlMs: options.cacheTtlMs });
    return {
      webhook,
      async stop() {
        await webhook.stop();
        await kubeconfig.remove();
      },
    };
  } catch (error) {
    await kubeconfig.remove();
    throw error;
  }
}
