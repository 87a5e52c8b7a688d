/**
 * `kubegate webhook` against the strict fake kube-apiserver: Rancher-shaped objects are
 * listed and watched for real (kubeconfig loading, resourceVersion, 410 Gone), TokenReviews
 * are answered over HTTP in the request's version, and real kubectl reaches the fake API
 * server with a token only the webhook can vouch for.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { loadWebhookConfig } from '../../src/config/webhook.js';
import type { WebhookConfig } from '../../src/config/webhook.js';
import { startWebhook } from '../../src/cmd/webhook.js';
import type { RunningWebhook } from '../../src/cmd/webhook.js';
import { createLogger } from '../../src/log.js';
import { createKubeClient } from '../../src/kube/client.js';
import type { KubeClient } from '../../src/kube/client.js';
import { loadKubeEndpoint } from '../../src/kube/endpoint.js';
import { createKubernetesSource } from '../../src/webhook/sources/kubernetes.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { CATTLE_NAMESPACE, rancherClusterAuthToken, rancherClusterUserAttribute, rancherHash, rancherTokenSecret } from '../fakes/rancher-objects.js';
import { buildKubeconfig, runKubectl, writeKubeconfig } from '../support/kubectl.js';
import type { WrittenKubeconfig } from '../support/kubectl.js';
import { eventually } from '../support/eventually.js';
import { scryptCallsDuring } from '../support/scrypt-calls.js';

const proxyToken = 'webhook-sa-token-0123456789';

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly json: { apiVersion?: string; kind?: string; status?: { authenticated?: boolean; error?: string; audiences?: string[]; user?: { username: string; uid?: string; groups: string[]; extra?: Record<string, string[]> } }; message?: string };
}

function post(url: string, path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, method = 'POST'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}${path}`, { method, headers, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        let json: Answer['json'] = {};
        try {
          json = JSON.parse(text) as Answer['json'];
        } catch {
          json = {};
        }
        resolve({ status: response.statusCode ?? 0, body: text, json });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

function review(url: string, token: string, version: 'v1' | 'v1beta1' = 'v1'): Promise<Answer> {
  return post(url, '/v1/authenticate', JSON.stringify({ apiVersion: `authentication.k8s.io/${version}`, kind: 'TokenReview', spec: { token } }));
}

/** `kubegate webhook` reading the API server at `server`, once it has listed everything. */
async function startSyncedWebhook(
  server: string,
  caPem: string,
  env: Record<string, string> = {},
  adjust: (config: WebhookConfig) => WebhookConfig = (config) => config,
): Promise<{ kubeconfig: WrittenKubeconfig; webhook: RunningWebhook }> {
  const kubeconfig = await writeKubeconfig({ server, caPem, token: proxyToken });
  const config = adjust(loadWebhookConfig({ env, flags: { listen: '127.0.0.1:0', kubeconfig: kubeconfig.path } }));
  const webhook = await startWebhook(config, { logger: createLogger({ level: 'silent', name: 'webhook' }), informer: { initialBackoffMs: 20 } });
  await webhook.source.synced();
  return { kubeconfig, webhook };
}

describe('kubegate webhook against a Kubernetes API server', () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: WrittenKubeconfig;
  let webhook: RunningWebhook;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: proxyToken, namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] });
    // Objects that exist before the webhook starts arrive through the first list.
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 'kubeconfig-u-early', userName: 'u-early' }));
    fake.resources.put('secrets', rancherTokenSecret('kubeconfig-u-early', await rancherHash(3, 'early-secret')));
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-early', groups: ['github_org://42'] }));
    fake.resources.put('secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'unrelated-tls', namespace: CATTLE_NAMESPACE }, data: { 'tls.key': 'c2VjcmV0' } });
    ({ kubeconfig, webhook } = await startSyncedWebhook(fake.url, fake.caPem));
  });

  after(async () => {
    await webhook.stop();
    await fake.close();
    await kubeconfig.remove();
  });

  it('accepts a Rancher token listed at start and answers in the version it was asked in, because kube-apiserver fails a reply of another version', async () => {
    for (const version of ['v1', 'v1beta1'] as const) {
      const answer = await review(webhook.url, 'kubeconfig-u-early:early-secret', version);
      assert.equal(answer.status, 200);
      assert.equal(answer.json.apiVersion, `authentication.k8s.io/${version}`);
      assert.equal(answer.json.kind, 'TokenReview');
      assert.deepEqual(answer.json.status?.user, { username: 'u-early', groups: ['github_org://42'] });
      assert.equal(answer.json.status?.authenticated, true);
    }
  });

  it('logs where its kubeconfig is when it starts, never what is in it, because the path is what an operator checks', async () => {
    const chunks: string[] = [];
    const logger = createLogger({ level: 'info', name: 'webhook', destination: { write: (chunk: string) => void chunks.push(chunk) } });
    const config = loadWebhookConfig({ env: {}, flags: { listen: '127.0.0.1:0', kubeconfig: kubeconfig.path } });
    const logged = await startWebhook(config, { logger, informer: { initialBackoffMs: 20 } });
    try {
      await logged.source.synced();
    } finally {
      await logged.stop();
    }
    const output = chunks.join('');
    assert.ok(!output.includes(proxyToken), 'the token in the kubeconfig never reaches the log');
    const start = output
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((entry) => entry['msg'] === 'starting kubegate webhook');
    assert.equal(start?.['kubeconfig'], kubeconfig.path);
    assert.equal(start?.['inCluster'], false);
  });

  it('keeps no data of unrelated Secrets, because the namespace holds keys this process must not hold', () => {
    assert.equal(webhook.source.secretHash('unrelated-tls'), undefined);
  });

  it('answers a token synced after a first failed attempt, because an unknown name is an uncached error, not a cached rejection', async () => {
    const first = await review(webhook.url, 't-late:late-secret');
    assert.equal(first.json.status?.authenticated, false);
    assert.match(first.json.status?.error ?? '', /not known in this cluster/);
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-late', groups: [] }));
    fake.resources.put('secrets', rancherTokenSecret('t-late', await rancherHash(2, 'late-secret')));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-late', userName: 'u-late' }));
    await eventually(async () => (await review(webhook.url, 't-late:late-secret')).json.status?.authenticated === true);
  });

  it('rejects a wrong secret without an error, so that kube-apiserver caches the rejection', async () => {
    const answer = await review(webhook.url, 'kubeconfig-u-early:wrong');
    assert.deepEqual(answer.json.status, { authenticated: false });
  });

  it('stops accepting a token as soon as its object is deleted, because the watch invalidates the verification cache', async () => {
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-gone' }));
    fake.resources.put('secrets', rancherTokenSecret('t-gone', await rancherHash(3, 's')));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-gone', userName: 'u-gone' }));
    await eventually(async () => (await review(webhook.url, 't-gone:s')).json.status?.authenticated === true);
    fake.resources.remove('clusterauthtokens', CATTLE_NAMESPACE, 't-gone');
    await eventually(async () => (await review(webhook.url, 't-gone:s')).json.status?.authenticated === false, 1000);
  });

  it('rejects a disabled user at once after the attribute changes, because a change of the attribute drops its cached answers', async () => {
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-dis' }));
    fake.resources.put('secrets', rancherTokenSecret('t-dis', await rancherHash(3, 's')));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-dis', userName: 'u-dis' }));
    await eventually(async () => (await review(webhook.url, 't-dis:s')).json.status?.authenticated === true);
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-dis', enabled: false }));
    await eventually(async () => (await review(webhook.url, 't-dis:s')).json.status?.authenticated === false, 1000);
  });

  it('lists again after 410 Gone and sees what changed meanwhile, because a compacted watch history cannot be resumed', async () => {
    const restartsBefore = await metricSum(webhook, 'kubegate_webhook_watch_restarts_total');
    fake.resources.compact();
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-after' }));
    fake.resources.put('secrets', rancherTokenSecret('t-after', await rancherHash(3, 's')));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-after', userName: 'u-after' }));
    await eventually(async () => (await review(webhook.url, 't-after:s')).json.status?.authenticated === true);
    await eventually(async () => (await metricSum(webhook, 'kubegate_webhook_watch_restarts_total')) > restartsBefore);
  });

  it('also recovers when the API server answers the watch itself with HTTP 410', async () => {
    fake.resources.expiredWatchAsHttp410 = true;
    try {
      fake.resources.compact();
      fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-410' }));
      fake.resources.put('secrets', rancherTokenSecret('t-410', await rancherHash(3, 's')));
      fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-410', userName: 'u-410' }));
      await eventually(async () => (await review(webhook.url, 't-410:s')).json.status?.authenticated === true);
    } finally {
      fake.resources.expiredWatchAsHttp410 = false;
    }
  });

  it('stamps lastUsedAt after a successful review, in the background', async () => {
    await review(webhook.url, 'kubeconfig-u-early:early-secret');
    await eventually(() => typeof fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, 'kubeconfig-u-early')?.['lastUsedAt'] === 'string');
  });

  it('stamps a burst of first uses with at most 4 patches in flight, each token once per minute, and none after stop', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `t-burst-${i}`);
    for (const name of names) fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name, userName: 'u-early' }));
    const real = createKubeClient(await loadKubeEndpoint(kubeconfig.path));
    let inFlight = 0;
    let most = 0;
    const client: KubeClient = {
      ...real,
      mergePatch: async (path, patch) => {
        inFlight++;
        most = Math.max(most, inFlight);
        try {
          return await real.mergePatch(path, patch);
        } finally {
          inFlight--;
        }
      },
    };
    const source = createKubernetesSource({ client, namespace: CATTLE_NAMESPACE, logger: createLogger({ level: 'silent', name: 'source' }) });
    source.start();
    try {
      await source.synced();
      const at = new Date();
      for (const name of names) source.recordUse(name, at);
      for (const name of names) source.recordUse(name, new Date(at.getTime() + 30_000));
      const stamped = (): number => names.filter((name) => typeof fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name)?.['lastUsedAt'] === 'string').length;
      await eventually(() => stamped() === names.length);
      assert.equal(most, 4);
      const patches = fake.requests.filter((request) => request.method === 'PATCH' && names.some((name) => request.path.endsWith(`/clusterauthtokens/${name}`)));
      assert.equal(patches.length, names.length, 'a second use within the minute is not stamped again');
      source.recordUse('t-burst-0', new Date(at.getTime() + 61_000));
      await eventually(() => fake.requests.filter((request) => request.method === 'PATCH' && request.path.endsWith('/clusterauthtokens/t-burst-0')).length === 2);
      source.stop();
      source.recordUse('t-burst-1', new Date(at.getTime() + 200_000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(fake.requests.filter((request) => request.method === 'PATCH' && request.path.endsWith('/clusterauthtokens/t-burst-1')).length, 1);
    } finally {
      source.stop();
    }
  });

  it('moves a deprecated hash field into the Secret and clears the field, as kube-api-auth does', async () => {
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-old' }));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-old', userName: 'u-old', deprecatedHash: await rancherHash(1, 'old-secret') }));
    await eventually(async () => (await review(webhook.url, 't-old:old-secret')).json.status?.authenticated === true);
    await eventually(() => fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, 't-old')?.['hash'] === undefined);
    const secret = fake.resources.get('secrets', CATTLE_NAMESPACE, 't-old');
    assert.match(Buffer.from(String((secret?.['data'] as { hash?: string } | undefined)?.hash), 'base64').toString(), /^\$1:/);
    assert.equal((await review(webhook.url, 't-old:old-secret')).json.status?.authenticated, true);
  });

  it('answers 400 with a clear message for malformed JSON, a wrong kind and a missing token, and keeps serving', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{not json', /not valid JSON/],
      [JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SubjectAccessReview', spec: { token: 'a:b' } }), /kind must be "TokenReview"/],
      [JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: {} }), /spec.token is missing/],
      [JSON.stringify({ apiVersion: 'authentication.k8s.io/v2', kind: 'TokenReview', spec: { token: 'a:b' } }), /apiVersion must be/],
    ];
    for (const [body, message] of cases) {
      const answer = await post(webhook.url, '/v1/authenticate', body);
      assert.equal(answer.status, 400, body);
      assert.match(answer.json.message ?? '', message);
    }
    const tooLarge = await post(webhook.url, '/v1/authenticate', Buffer.alloc(70 * 1024, 0x20));
    assert.equal(tooLarge.status, 413);
    assert.equal((await post(webhook.url, '/v1/authenticate', '', {}, 'GET')).status, 405);
    assert.equal((await review(webhook.url, 'kubeconfig-u-early:early-secret')).json.status?.authenticated, true);
  });

  it('serves /healthcheck as kube-api-auth does, and /readyz, /healthz and /metrics', async () => {
    assert.equal((await post(webhook.url, '/healthcheck', '', {}, 'GET')).status, 200);
    assert.equal((await post(webhook.url, '/readyz', '', {}, 'GET')).status, 200);
    assert.equal((await post(webhook.url, '/healthz', '', {}, 'GET')).status, 200);
    const metrics = (await post(webhook.url, '/metrics', '', {}, 'GET')).body;
    assert.match(metrics, /kubegate_webhook_reviews_total\{result="authenticated"\} [1-9]/);
    assert.match(metrics, /kubegate_webhook_answer_cache_total\{result="hit"\} [1-9]/);
    assert.match(metrics, /kubegate_webhook_objects\{resource="clusterauthtokens"\} [1-9]/);
  });

  it('lets real kubectl in through the fake API server, which asks this webhook about the token', async () => {
    fake.useWebhookAuthenticator({ url: `${webhook.url}/v1/authenticate`, version: 'v1', cacheTtlMs: 2000 });
    try {
      const result = await runKubectl({
        binary: 'system',
        kubeconfig: buildKubeconfig({ server: fake.url, caPem: fake.caPem, token: 'kubeconfig-u-early:early-secret' }),
        args: ['get', 'pods', '-o', 'name'],
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /pod\/web-0/);
      const served = fake.requests.filter((request) => request.path === '/api/v1/namespaces/default/pods');
      assert.ok(served.length > 0);
      assert.deepEqual(served.at(-1)?.user?.groups, ['github_org://42', 'system:authenticated']);
      assert.equal(served.at(-1)?.user?.username, 'u-early');
      const denied = await runKubectl({
        binary: 'system',
        kubeconfig: buildKubeconfig({ server: fake.url, caPem: fake.caPem, token: 'kubeconfig-u-early:wrong' }),
        args: ['get', 'pods', '-o', 'name'],
      });
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /Unauthorized|provide credentials/);
    } finally {
      fake.useWebhookAuthenticator(undefined);
    }
  });
});

/**
 * A TCP relay in front of the API server that can be taken down (listener closed, every
 * relayed connection cut, so new connections are refused) and brought back on the same port.
 * TLS passes through untouched.
 */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async up(): Promise<void> {
    const server = createNetServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.once('close', () => this.sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('kubegate webhook while its API server is unreachable', () => {
  let fake: FakeKubeApiServer;
  let relay: Relay;
  let kubeconfig: WrittenKubeconfig;
  let webhook: RunningWebhook;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: proxyToken, namespaces: ['default', 'kube-system', CATTLE_NAMESPACE] });
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-down' }));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-known', userName: 'u-down' }));
    fake.resources.put('secrets', rancherTokenSecret('t-known', await rancherHash(3, 'known-secret')));
    relay = new Relay(Number(new URL(fake.url).port));
    await relay.up();
    ({ kubeconfig, webhook } = await startSyncedWebhook(`https://127.0.0.1:${relay.port}`, fake.caPem));
  });

  after(async () => {
    await webhook.stop();
    await relay.down();
    await fake.close();
    await kubeconfig.remove();
  });

  it('keeps answering from memory while connections are refused, and catches up once the API server is back', async () => {
    const restartsBefore = await metricSum(webhook, 'kubegate_webhook_watch_restarts_total');
    await relay.down();
    // Down: watches are cut and reconnecting is refused; known tokens are still verified.
    await eventually(async () => (await metricSum(webhook, 'kubegate_webhook_watch_restarts_total')) > restartsBefore);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const meanwhile = await review(webhook.url, 't-known:known-secret');
    assert.equal(meanwhile.json.status?.authenticated, true, 'the objects in memory still decide');
    assert.equal((await review(webhook.url, 't-known:wrong')).json.status?.authenticated, false);
    // A token created while the webhook cannot see it is an uncached error, not a rejection.
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-new', userName: 'u-down' }));
    fake.resources.put('secrets', rancherTokenSecret('t-new', await rancherHash(3, 'new-secret')));
    const unseen = await review(webhook.url, 't-new:new-secret');
    assert.equal(unseen.json.status?.authenticated, false);
    assert.ok(unseen.json.status?.error, 'not yet known: an error kube-apiserver does not cache');
    await relay.up();
    await eventually(async () => (await review(webhook.url, 't-new:new-secret')).json.status?.authenticated === true, 10_000);
  });
});

/** The sum of every series of a metric (all label values). */
async function metricSum(webhook: RunningWebhook, metric: string): Promise<number> {
  const text = await webhook.registry.metrics();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${metric}{`) || line.startsWith(`${metric} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('kubegate webhook with audiences (KUBEGATE_WEBHOOK_AUDIENCES)', () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: WrittenKubeconfig;
  let webhook: RunningWebhook;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: proxyToken, namespaces: ['default', CATTLE_NAMESPACE] });
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 'kubeconfig-u-aud', userName: 'u-aud' }));
    fake.resources.put('secrets', rancherTokenSecret('kubeconfig-u-aud', await rancherHash(3, 'aud-secret')));
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-aud', groups: ['github_org://7'] }));
    ({ kubeconfig, webhook } = await startSyncedWebhook(fake.url, fake.caPem, { KUBEGATE_WEBHOOK_AUDIENCES: 'https://kubernetes.default.svc, rke2' }));
  });

  after(async () => {
    await webhook.stop();
    await fake.close();
    await kubeconfig.remove();
  });

  function audienceReview(version: 'v1' | 'v1beta1', audiences: string[]): Promise<Answer> {
    return post(webhook.url, '/v1/authenticate', JSON.stringify({ apiVersion: `authentication.k8s.io/${version}`, kind: 'TokenReview', spec: { token: 'kubeconfig-u-aud:aud-secret', audiences } }));
  }

  it('answers status.audiences as the intersection of the requested and configured audiences, in v1 and v1beta1', async () => {
    for (const version of ['v1', 'v1beta1'] as const) {
      const answer = await audienceReview(version, ['vault', 'rke2']);
      assert.equal(answer.status, 200);
      assert.equal(answer.json.apiVersion, `authentication.k8s.io/${version}`);
      assert.equal(answer.json.status?.authenticated, true);
      assert.deepEqual(answer.json.status?.audiences, ['rke2']);
    }
  });

  it('refuses a token for an audience it is not valid for, without an error, so that kube-apiserver caches the refusal', async () => {
    for (const version of ['v1', 'v1beta1'] as const) {
      const answer = await audienceReview(version, ['vault']);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json.status, { authenticated: false });
    }
  });

  it('answers repeated audience-bound reviews from the answer cache with their own audiences, and a new audience set on its own', async () => {
    for (const version of ['v1', 'v1beta1'] as const) {
      await audienceReview(version, ['rke2', 'vault']);
      const hits = await answerCacheCount(webhook.url, 'hit');
      const again = await audienceReview(version, ['rke2', 'vault']);
      assert.equal(await answerCacheCount(webhook.url, 'hit'), hits + 1);
      assert.equal(again.json.apiVersion, `authentication.k8s.io/${version}`);
      assert.equal(again.json.status?.authenticated, true);
      assert.deepEqual(again.json.status?.audiences, ['rke2']);
      assert.deepEqual((await audienceReview(version, ['vault', 'other'])).json.status, { authenticated: false });
      assert.deepEqual((await audienceReview(version, ['vault', 'other'])).json.status, { authenticated: false });
      assert.equal(await answerCacheCount(webhook.url, 'hit'), hits + 2, 'the refusal was answered from the cache the second time');
    }
  });

  it('still accepts reviews that name no audience (the API server default)', async () => {
    const answer = await review(webhook.url, 'kubeconfig-u-aud:aud-secret');
    assert.equal(answer.json.status?.authenticated, true);
    assert.equal(answer.json.status?.audiences, undefined);
  });
});

/** `kubegate_webhook_answer_cache_total{result}` as the webhook's /metrics reports it now. */
async function answerCacheCount(url: string, result: 'hit' | 'miss'): Promise<number> {
  const text = (await post(url, '/metrics', '', {}, 'GET')).body;
  const match = new RegExp(`^kubegate_webhook_answer_cache_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text);
  assert.ok(match !== null, 'the answer cache metric is served');
  return Number(match[1]);
}

describe("kubegate webhook's answer cache (repeated TokenReview bodies), retired per token and per user; a $1 token's scrypt done once", () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: WrittenKubeconfig;
  let webhook: RunningWebhook;

  /** A user with one token `name:s`, reviewed until the webhook has it. */
  async function addToken(name: string, userName: string, expiresAt?: string): Promise<void> {
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName, groups: ['github_org://1'] }));
    fake.resources.put('secrets', rancherTokenSecret(name, await rancherHash(3, 's')));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name, userName, ...(expiresAt === undefined ? {} : { expiresAt }) }));
    await eventually(async () => (await review(webhook.url, `${name}:s`)).json.status?.authenticated === true);
  }

  /** Reviews `token` until an answer comes from the answer cache; returns that answer. */
  async function cachedReview(token: string, version: 'v1' | 'v1beta1' = 'v1'): Promise<Answer> {
    const hits = await answerCacheCount(webhook.url, 'hit');
    const answer = await review(webhook.url, token, version);
    assert.equal(await answerCacheCount(webhook.url, 'hit'), hits + 1, 'answered from the answer cache');
    return answer;
  }

  before(async () => {
    fake = await startFakeKubeApiServer({ token: proxyToken, namespaces: ['default', CATTLE_NAMESPACE] });
    ({ kubeconfig, webhook } = await startSyncedWebhook(fake.url, fake.caPem));
  });

  after(async () => {
    await webhook.stop();
    await fake.close();
    await kubeconfig.remove();
  });

  it('answers a repeated review from the cache in the version it was asked in, with the same identity', async () => {
    await addToken('t-ac-same', 'u-ac-same');
    for (const version of ['v1', 'v1beta1'] as const) {
      await review(webhook.url, 't-ac-same:s', version);
      const answer = await cachedReview('t-ac-same:s', version);
      assert.equal(answer.status, 200);
      assert.equal(answer.json.apiVersion, `authentication.k8s.io/${version}`);
      assert.equal(answer.json.kind, 'TokenReview');
      assert.deepEqual(answer.json.status, { authenticated: true, user: { username: 'u-ac-same', groups: ['github_org://1'] } });
    }
  });

  it("keeps answering from the cache after the token's own lastUsedAt stamp comes back through the watch, because a stamp changes no verification input", async () => {
    await addToken('t-ac-stamp', 'u-ac-stamp');
    await eventually(() => typeof webhook.source.clusterAuthToken('t-ac-stamp')?.lastUsedAt === 'string', 5000, 'the stamp to come back through the watch');
    assert.equal((await cachedReview('t-ac-stamp:s')).json.status?.authenticated, true);
  });

  it('stops authenticating a disabled token that was answered from the cache', async () => {
    await addToken('t-ac-off', 'u-ac-off');
    assert.equal((await cachedReview('t-ac-off:s')).json.status?.authenticated, true);
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-ac-off', userName: 'u-ac-off', enabled: false }));
    await eventually(async () => (await review(webhook.url, 't-ac-off:s')).json.status?.authenticated === false, 1000);
  });

  it('stops authenticating a deleted token that was answered from the cache', async () => {
    await addToken('t-ac-gone', 'u-ac-gone');
    assert.equal((await cachedReview('t-ac-gone:s')).json.status?.authenticated, true);
    fake.resources.remove('clusterauthtokens', CATTLE_NAMESPACE, 't-ac-gone');
    await eventually(async () => (await review(webhook.url, 't-ac-gone:s')).json.status?.authenticated === false, 1000);
  });

  it('stops authenticating the token of a user disabled after its answer was cached', async () => {
    await addToken('t-ac-user', 'u-ac-user');
    assert.equal((await cachedReview('t-ac-user:s')).json.status?.authenticated, true);
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-ac-user', enabled: false }));
    await eventually(async () => (await review(webhook.url, 't-ac-user:s')).json.status?.authenticated === false, 1000);
  });

  it('stops authenticating a token at its expiry, well before the cache TTL ends', async () => {
    // The success TTL is 10 s; the token expires in 2 s, and eventually() gives up after 5.
    await addToken('t-ac-exp', 'u-ac-exp', new Date(Date.now() + 2000).toISOString());
    assert.equal((await cachedReview('t-ac-exp:s')).json.status?.authenticated, true);
    await eventually(async () => (await review(webhook.url, 't-ac-exp:s')).json.status?.authenticated === false, 5000, 'the expired token to be refused');
  });

  it('never answers an undecided review from the cache, and answers malformed bodies with a Status every time', async () => {
    const hits = await answerCacheCount(webhook.url, 'hit');
    for (let i = 0; i < 2; i++) {
      assert.match((await review(webhook.url, 't-ac-unknown:s')).json.status?.error ?? '', /not known in this cluster/);
      const malformed = await post(webhook.url, '/v1/authenticate', '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"t-ac-same:s"}');
      assert.equal(malformed.status, 400);
      assert.equal(malformed.json.kind, 'Status');
      assert.match(malformed.json.message ?? '', /not valid JSON/);
      const wrongType = await post(webhook.url, '/v1/authenticate', JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 't-ac-same:s' } }), { 'content-type': 'text/plain' });
      assert.equal(wrongType.status, 415, 'the content type is checked before any cached answer');
    }
    assert.equal(await answerCacheCount(webhook.url, 'hit'), hits);
  });

  const reviewOf = (token: string, version: 'v1' | 'v1beta1' = 'v1', audiences?: string[]): Promise<Answer> =>
    post(webhook.url, '/v1/authenticate', JSON.stringify({ apiVersion: `authentication.k8s.io/${version}`, kind: 'TokenReview', spec: { token, ...(audiences === undefined ? {} : { audiences }) } }));

  /** Puts user `userName` with token `name` (secret `secret`, hashed `$version`) and waits until the webhook holds all three, without reviewing it. */
  async function putToken(name: string, userName: string, secret = 's', version: 1 | 3 = 3, groups = ['github_org://1']): Promise<void> {
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName, groups }));
    fake.resources.put('secrets', rancherTokenSecret(name, await rancherHash(version, secret)));
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name, userName }));
    await eventually(() => webhook.source.clusterAuthToken(name) !== undefined && webhook.source.secretHash(name) !== undefined && webhook.source.clusterUserAttribute(userName) !== undefined);
  }

  /** Reviews `token`, then once more from the cache; returns that answer. */
  async function warm(token: string): Promise<Answer> {
    await reviewOf(token);
    return cachedReview(token);
  }

  /** Whether the next review of `token` is answered from the cache (it is counted either way). */
  async function isCached(token: string): Promise<boolean> {
    const hits = await answerCacheCount(webhook.url, 'hit');
    await reviewOf(token);
    return (await answerCacheCount(webhook.url, 'hit')) === hits + 1;
  }

  it("retires a token's answers when its Secret changes: the old secret is refused at once, the new one accepted", async () => {
    await putToken('t-one-rotate', 'u-one-rotate');
    assert.equal((await warm('t-one-rotate:s')).json.status?.authenticated, true);
    fake.resources.put('secrets', rancherTokenSecret('t-one-rotate', await rancherHash(3, 'rotated')));
    await eventually(async () => (await reviewOf('t-one-rotate:s')).json.status?.authenticated === false, 1000);
    assert.equal((await reviewOf('t-one-rotate:rotated')).json.status?.authenticated, true);
  });

  it("retires a token's answers when its Secret is deleted: an uncached error until a hash is there again", async () => {
    await putToken('t-one-nohash', 'u-one-nohash');
    assert.equal((await warm('t-one-nohash:s')).json.status?.authenticated, true);
    fake.resources.remove('secrets', CATTLE_NAMESPACE, 't-one-nohash');
    await eventually(async () => /no hash/.test((await reviewOf('t-one-nohash:s')).json.status?.error ?? ''), 1000);
  });

  it("answers a user's new groups at once after its attribute changes, and an uncached error once it is deleted", async () => {
    await putToken('t-one-groups', 'u-one-groups');
    assert.deepEqual((await warm('t-one-groups:s')).json.status?.user?.groups, ['github_org://1']);
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-one-groups', groups: ['github_org://2'] }));
    await eventually(async () => (await reviewOf('t-one-groups:s')).json.status?.user?.groups?.[0] === 'github_org://2', 1000);
    fake.resources.remove('clusteruserattributes', CATTLE_NAMESPACE, 'u-one-groups');
    await eventually(async () => /user is not known/.test((await reviewOf('t-one-groups:s')).json.status?.error ?? ''), 1000);
  });

  it("accepts a token refused a moment ago as soon as its Secret arrives, because a rejection is retired by the token's name", async () => {
    await putToken('t-one-late', 'u-one-late', 'other');
    assert.deepEqual((await warm('t-one-late:s')).json.status, { authenticated: false });
    fake.resources.put('secrets', rancherTokenSecret('t-one-late', await rancherHash(3, 's')));
    await eventually(async () => (await reviewOf('t-one-late:s')).json.status?.authenticated === true, 1000);
  });

  it("keeps other tokens' and users' answers cached when one token or user changes", async () => {
    await putToken('t-one-a', 'u-one-a');
    await putToken('t-one-b', 'u-one-b');
    await putToken('t-one-b2', 'u-one-b');
    for (const token of ['t-one-a:s', 't-one-b:s', 't-one-b2:s']) await warm(token);
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-one-a', userName: 'u-one-a', enabled: false }));
    await eventually(async () => (await reviewOf('t-one-a:s')).json.status?.authenticated === false, 1000);
    assert.ok(await isCached('t-one-b:s'), "another user's token is still answered from the cache");
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-one-a', enabled: false }));
    await eventually(() => webhook.source.clusterUserAttribute('u-one-a')?.enabled === false);
    assert.ok(await isCached('t-one-b:s'), "another user's change retires nothing of this one's");
    fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: 't-one-b2', userName: 'u-one-b', enabled: false }));
    await eventually(async () => (await reviewOf('t-one-b2:s')).json.status?.authenticated === false, 1000);
    assert.ok(await isCached('t-one-b:s'), "the same user's other token is still answered from the cache");
  });

  it('derives a $1 token once however many bodies it comes in, at once or one after another, and not again when its user changes', { timeout: 30_000 }, async () => {
    await putToken('t-one-scrypt', 'u-one-scrypt', 'old-secret', 1);
    const bodies: Array<[version: 'v1' | 'v1beta1', audiences: string[] | undefined]> = [
      ['v1', undefined],
      ['v1beta1', undefined],
      ['v1', ['https://kubernetes.default.svc']],
      ['v1beta1', ['rke2', 'https://kubernetes.default.svc']],
    ];
    const calls = await scryptCallsDuring(async () => {
      const concurrent = await Promise.all(bodies.flatMap(([version, audiences]) => [reviewOf('t-one-scrypt:old-secret', version, audiences), reviewOf('t-one-scrypt:old-secret', version, audiences)]));
      assert.ok(concurrent.every((answer) => answer.json.status?.authenticated === true));
      for (const [version, audiences] of bodies) assert.equal((await reviewOf('t-one-scrypt:old-secret', version, audiences)).json.status?.authenticated, true);
      assert.equal((await reviewOf('t-one-scrypt:old-secret', 'v1', ['another-audience'])).json.status?.authenticated, true, 'a body never seen before');
      fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-one-scrypt', groups: ['github_org://3'] }));
      await eventually(async () => (await reviewOf('t-one-scrypt:old-secret')).json.status?.user?.groups?.[0] === 'github_org://3', 1000);
    });
    assert.equal(calls, 1, 'one scrypt for every review of the token');
    fake.resources.put('secrets', rancherTokenSecret('t-one-scrypt', await rancherHash(1, 'new-secret')));
    await eventually(async () => (await reviewOf('t-one-scrypt:old-secret')).json.status?.authenticated === false, 2000);
  });
});

describe("kubegate webhook's answer cache is bounded by cache.maxEntries", () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: WrittenKubeconfig;
  let webhook: RunningWebhook;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: proxyToken, namespaces: ['default', CATTLE_NAMESPACE] });
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-bound' }));
    for (const name of ['t-b1', 't-b2', 't-b3']) {
      fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name, userName: 'u-bound' }));
      fake.resources.put('secrets', rancherTokenSecret(name, await rancherHash(3, 's')));
    }
    ({ kubeconfig, webhook } = await startSyncedWebhook(fake.url, fake.caPem, {}, (config) => ({ ...config, cache: { ...config.cache, maxEntries: 2 } })));
  });

  after(async () => {
    await webhook.stop();
    await fake.close();
    await kubeconfig.remove();
  });

  it('forgets the least recently used answer past maxEntries, and answers it again correctly', async () => {
    for (const name of ['t-b1', 't-b2', 't-b3']) assert.equal((await review(webhook.url, `${name}:s`)).json.status?.authenticated, true);
    const hits = await answerCacheCount(webhook.url, 'hit');
    assert.equal((await review(webhook.url, 't-b1:s')).json.status?.authenticated, true);
    assert.equal(await answerCacheCount(webhook.url, 'hit'), hits, 't-b1 was no longer held');
    assert.equal((await review(webhook.url, 't-b3:s')).json.status?.authenticated, true);
    assert.equal(await answerCacheCount(webhook.url, 'hit'), hits + 1, 't-b3 still was');
  });
});

/** A `kubegate_webhook_stamps_*` figure as the webhook's /metrics reports it now. */
async function stampFigure(url: string, series: 'sent' | 'failed' | 'dropped' | 'queued'): Promise<number> {
  const text = (await post(url, '/metrics', '', {}, 'GET')).body;
  const pattern = series === 'queued' ? /^kubegate_webhook_stamps_queued (\d+)$/m : new RegExp(`^kubegate_webhook_stamps_total\\{result="${series}"\\} (\\d+)$`, 'm');
  const match = pattern.exec(text);
  assert.ok(match !== null, `kubegate_webhook_stamps ${series} is served`);
  return Number(match[1]);
}

describe("kubegate webhook's lastUsedAt stamp budget (stamps.perSecond, stamps.maxQueued)", () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: WrittenKubeconfig | undefined;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: proxyToken, namespaces: ['default', CATTLE_NAMESPACE] });
    fake.resources.put('clusteruserattributes', rancherClusterUserAttribute({ userName: 'u-stamps' }));
    const hash = await rancherHash(3, 's');
    for (const prefix of ['t-rate', 't-full']) {
      for (let i = 0; i < 40; i++) {
        fake.resources.put('clusterauthtokens', rancherClusterAuthToken({ name: `${prefix}-${i}`, userName: 'u-stamps' }));
        fake.resources.put('secrets', rancherTokenSecret(`${prefix}-${i}`, hash));
      }
    }
  });

  after(async () => {
    await fake.close();
    await kubeconfig?.remove();
  });

  /** `kubegate webhook` with this stamp budget. */
  async function webhookWith(stamps: { perSecond: number; maxQueued: number }): Promise<RunningWebhook> {
    const started = await startSyncedWebhook(fake.url, fake.caPem, {}, (config) => ({ ...config, stamps }));
    await kubeconfig?.remove();
    kubeconfig = started.kubeconfig;
    return started.webhook;
  }

  const patchesOf = (prefix: string): number => fake.requests.filter((request) => request.method === 'PATCH' && request.path.includes(`/clusterauthtokens/${prefix}-`)).length;
  const stampedOf = (prefix: string, count: number): string[] =>
    Array.from({ length: count }, (_, i) => `${prefix}-${i}`).filter((name) => typeof fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, name)?.['lastUsedAt'] === 'string');

  it('answers a burst of distinct tokens at once and stamps them within the budget afterwards: never more PATCHes than one second saved up plus perSecond since', async () => {
    const perSecond = 10;
    const webhook = await webhookWith({ perSecond, maxQueued: 1000 });
    try {
      // The bucket is full (perSecond stamps) at most: any PATCH beyond that was earned since `start`.
      const start = performance.now();
      let overBudget: string | undefined;
      const checkBudget = (): void => {
        const allowed = perSecond + (perSecond * (performance.now() - start)) / 1000;
        if (patchesOf('t-rate') > allowed) overBudget ??= `${patchesOf('t-rate')} PATCHes where the budget allows ${allowed.toFixed(1)}`;
      };
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => review(webhook.url, `t-rate-${i}:s`)));
      checkBudget();
      assert.ok(
        answers.every((answer) => answer.json.status?.authenticated === true),
        'every review answered',
      );
      assert.ok(stampedOf('t-rate', 40).length < 40, 'the reviews were answered before their stamps');
      await eventually(() => {
        checkBudget();
        return stampedOf('t-rate', 40).length === 40;
      }, 15_000, 'every queued stamp to land');
      assert.equal(overBudget, undefined);
      assert.equal(patchesOf('t-rate'), 40, 'each token stamped once');
      assert.equal(await stampFigure(webhook.url, 'sent'), 40);
      assert.equal(await stampFigure(webhook.url, 'queued'), 0);
      assert.equal(await stampFigure(webhook.url, 'dropped'), 0);
    } finally {
      await webhook.stop();
    }
  });

  it('drops and counts uses past a full queue, answers them all the same, and stamps a dropped token on its next use', async () => {
    const webhook = await webhookWith({ perSecond: 2, maxQueued: 3 });
    try {
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => review(webhook.url, `t-full-${i}:s`)));
      assert.ok(answers.every((answer) => answer.json.status?.authenticated === true), 'every review answered');
      await eventually(async () => (await stampFigure(webhook.url, 'queued')) === 0 && (await stampFigure(webhook.url, 'sent')) + (await stampFigure(webhook.url, 'dropped')) === 40, 10_000, 'the queue to drain');
      const sent = await stampFigure(webhook.url, 'sent');
      assert.ok((await stampFigure(webhook.url, 'dropped')) > 0, 'a full queue dropped uses');
      assert.equal(patchesOf('t-full'), sent);
      const stamped = stampedOf('t-full', 40);
      assert.equal(stamped.length, sent);
      const dropped = Array.from({ length: 40 }, (_, i) => `t-full-${i}`).find((name) => !stamped.includes(name)) as string;
      assert.equal((await review(webhook.url, `${dropped}:s`)).json.status?.authenticated, true);
      await eventually(() => typeof fake.resources.get('clusterauthtokens', CATTLE_NAMESPACE, dropped)?.['lastUsedAt'] === 'string', 10_000, 'the dropped token to be stamped on its next use');
    } finally {
      await webhook.stop();
    }
  });
});
