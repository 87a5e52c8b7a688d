/**
 * `kubegate webhook` syncs a cluster whose token list is larger than one answer may be: the
 * kube client bounds a body at 16 MiB, so a webhook that listed its ClusterAuthTokens in one
 * request never synced past about 30,000 tokens. With lists read in pages of 500 it syncs
 * 60,000, and answers for the first, a middle and the last of them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { loadWebhookConfig } from '../../src/config/webhook.js';
import { startWebhook } from '../../src/cmd/webhook.js';
import type { RunningWebhook } from '../../src/cmd/webhook.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE, rancherClusterAuthToken, rancherClusterUserAttribute, rancherHash, rancherTokenSecret } from '../fakes/rancher-objects.js';
import { writeKubeconfig } from '../support/kubectl.js';
import type { WrittenKubeconfig } from '../support/kubectl.js';

const proxyToken = 'webhook-large-sa-token-0123456789';
const TOKENS = 60_000;
const USERS = 50;
const SIXTEEN_MIB = 16 * 1024 * 1024;
const TOKENS_PATH = `/apis/cluster.cattle.io/v3/namespaces/${CATTLE_NAMESPACE}/clusterauthtokens`;

function review(url: string, token: string): Promise<{ authenticated?: boolean; user?: { username: string } }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(`${url}/v1/authenticate`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve((JSON.parse(text) as { status: { authenticated?: boolean; user?: { username: string } } }).status));
    });
    outgoing.on('error', reject);
    outgoing.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }));
  });
}

describe('kubegate webhook on a cluster whose token list exceeds 16 MiB', () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: WrittenKubeconfig;
  let webhook: RunningWebhook | undefined;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: proxyToken, namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] });
    kubeconfig = await writeKubeconfig({ server: fake.url, caPem: fake.caPem, token: proxyToken });
    for (let user = 0; user < USERS; user++) fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: `u-${user}`, groups: ['github_org://42'] }));
    // One secret for every token: a $3 hash is salted per hash, not per token, so one will do.
    const hash = await rancherHash(3, 'large-cluster-secret');
    for (let i = 0; i < TOKENS; i++) {
      fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: `kubeconfig-u-${i}`, userName: `u-${i % USERS}` }));
      fake.resources.put('secrets', rancherTokenSecret(`kubeconfig-u-${i}`, hash));
    }
  });

  after(async () => {
    await webhook?.stop();
    await fake.close();
    await kubeconfig.remove();
  });

  it('lists every token in pages of 500 and answers for the first, a middle and the last, because one answer may hold at most 16 MiB', { timeout: 120_000 }, async () => {
    const listBytes = Buffer.byteLength(JSON.stringify({ apiVersion: 'cluster.cattle.io/v3', kind: 'ClusterAuthTokenList', metadata: { resourceVersion: '1' }, items: fake.objects('clusterauthtokens', CATTLE_NAMESPACE) }));
    assert.ok(listBytes > SIXTEEN_MIB, `the token list is ${listBytes} bytes: more than one answer may hold`);
    const before = fake.requests.length;
    const config = loadWebhookConfig({ env: {}, flags: { listen: '127.0.0.1:0', kubeconfig: kubeconfig.path } });
    webhook = await startWebhook(config, { logger: createLogger({ level: 'silent', name: 'webhook' }), informer: { initialBackoffMs: 20 } });
    await webhook.source.synced();
    assert.deepEqual(webhook.source.counts(), { clusterauthtokens: TOKENS, clusteruserattributes: USERS, secrets: TOKENS });
    const pages = fake.requests.slice(before).filter((request) => request.path === TOKENS_PATH && !new URLSearchParams(request.rawQuery).has('watch'));
    assert.equal(pages.length, TOKENS / 500);
    assert.ok(pages.every((page) => page.status === 200 && new URLSearchParams(page.rawQuery).get('limit') === '500'));
    for (const i of [0, TOKENS / 2, TOKENS - 1]) {
      const answer = await review(webhook.url, `kubeconfig-u-${i}:large-cluster-secret`);
      assert.equal(answer.authenticated, true, `token ${i}`);
      assert.equal(answer.user?.username, `u-${i % USERS}`);
    }
  });
});
