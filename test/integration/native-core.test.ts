/**
 * The native-core prototype (bench/native-core: a Go serving core that asks kubegate's real
 * admission once per request head) in front of the strict fake kube-apiserver: what reaches
 * the cluster is exactly what kubegate's admission returned, every refusal is kubegate's
 * Status and reaches nothing, every exchange is audited, and a revoked token's watch is cut.
 * It is a benchmark prototype, not the product: these tests keep its measurements honest (a
 * prototype that skipped a security step would measure less work than kubegate does).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stopAllChildren } from '../../bench/processes.js';
import { createTls, startNativeCore, type NativeCoreHandle, type Target } from '../../bench/targets.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { eventually } from '../support/eventually.js';

const PROXY_CREDENTIAL = 'native-core-test-credential';

for (const decisionCache of [false, true]) {
describe(`bench/native-core${decisionCache ? ' with its decision cache (variant 2)' : ''}: the Go serving core in front of kubegate admission`, () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let core: Target;
  let handle: NativeCoreHandle;
  let agent: https.Agent;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-native-core-'));
    fake = await startFakeKubeApiServer({ token: PROXY_CREDENTIAL });
    const tls = await createTls(dir);
    const caFile = join(dir, 'cluster-ca.crt');
    writeFileSync(caFile, fake.caPem);
    core = await startNativeCore({ origin: fake.url }, tls, dir, { cluster: { caFile, token: PROXY_CREDENTIAL }, decisionCache });
    handle = core.nativeCore as NativeCoreHandle;
    agent = new https.Agent({ ca: tls.caPem, keepAlive: true });
  });

  after(async () => {
    agent?.destroy();
    await stopAllChildren();
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function request(path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
    return new Promise((resolve, reject) => {
      https
        .get(`${core.origin}${path}`, { agent, headers }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        })
        .on('error', reject);
    });
  }

  const token = (): Record<string, string> => ({ authorization: core.headers['authorization'] as string });

  it('forwards an admitted request as the kubegate user, with the proxy credential and without the client credentials or identity claims', async () => {
    const before = fake.requests.length;
    const answer = await request('/k8s/clusters/bench/api/v1/namespaces/default/pods', { ...token(), 'x-remote-user': 'admin', cookie: 'session=1', accept: 'application/json' });
    assert.equal(answer.status, 200, answer.body);
    assert.equal(JSON.parse(answer.body).kind, 'PodList');
    const reached = fake.requests.slice(before);
    assert.equal(reached.length, 1);
    const [upstream] = reached;
    assert.equal(upstream?.path, '/api/v1/namespaces/default/pods');
    assert.equal(upstream?.user?.impersonated, true);
    assert.match(upstream?.user?.username ?? '', /^u-/);
    const names = (upstream?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    assert.ok(!names.includes('x-remote-user') && !names.includes('cookie'), `headers upstream: ${names.join(', ')}`);
    assert.deepEqual((upstream?.rawHeaders ?? []).filter((_, i, all) => i % 2 === 1 && all[i - 1]?.toLowerCase() === 'authorization'), [`Bearer ${PROXY_CREDENTIAL}`]);
    assert.ok(!names.includes('accept-encoding'), 'Go added an Accept-Encoding of its own');
  });

  it('answers kubegate refusals as Kubernetes Status and sends nothing to the cluster', async () => {
    const before = fake.requests.length;
    const anonymous = await request('/k8s/clusters/bench/api/v1/pods', {});
    assert.equal(anonymous.status, 401);
    assert.equal(JSON.parse(anonymous.body).details.causes[0].reason, 'UNAUTHENTICATED');
    const claimed = await request('/k8s/clusters/bench/api/v1/pods', { ...token(), 'impersonate-user': 'system:admin' });
    assert.equal(claimed.status, 403);
    assert.equal(JSON.parse(claimed.body).details.causes[0].reason, 'IMPERSONATION_REFUSED');
    const elsewhere = await request('/k8s/clusters/prod/api/v1/pods', token());
    assert.equal(elsewhere.status, 403);
    assert.equal(fake.requests.length, before);
  });

  it('writes an audit line for every exchange, identical ones included, with the status and the reason of a refusal', async () => {
    const lines = (): { status: number; code: string | null; tokenName: string | null; path: string }[] => {
      let text = '';
      try {
        text = readFileSync(handle.auditFile, 'utf8');
      } catch {
        // not written yet
      }
      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line));
    };
    const identical = '/k8s/clusters/bench/api/v1/namespaces/kube-system/pods';
    for (let i = 0; i < 3; i++) assert.equal((await request(identical, token())).status, 200);
    await request('/k8s/clusters/bench/api/v1/namespaces/default/pods', { authorization: 'Bearer t-nobody:wrong' });
    // The audit trail writes its batch within a second.
    await eventually(() => lines().some((line) => line.code === 'TOKEN_INVALID' || line.code === 'TOKEN_MALFORMED'), 5000, 'the refusal in the audit file');
    await eventually(() => lines().filter((line) => line.path === '/api/v1/namespaces/kube-system/pods' && line.status === 200).length === 3, 5000, 'an audit line for each of three identical requests');
    const served = lines().filter((line) => line.status === 200);
    assert.equal(served[0]?.tokenName, handle.tokenName);
    assert.equal(served[0]?.path, '/api/v1/namespaces/default/pods');
    assert.ok(!readFileSync(handle.auditFile, 'utf8').includes((core.headers['authorization'] as string).slice('Bearer '.length)), 'a token in the audit file');
  });

  it('cuts an open watch when its token is revoked, and refuses the token afterwards (even for a head admitted a moment before)', { timeout: 30_000 }, async () => {
    const path = '/k8s/clusters/bench/api/v1/namespaces/default/pods';
    assert.equal((await request(path, token())).status, 200);
    const watch = await new Promise<IncomingMessage>((resolve, reject) => {
      https.get(`${core.origin}/k8s/clusters/bench/api/v1/namespaces/default/pods?watch=1`, { agent: false, ca: agent.options.ca, headers: token() }, resolve).on('error', reject);
    });
    assert.equal(watch.statusCode, 200);
    watch.on('data', () => undefined);
    watch.on('error', () => undefined);
    await eventually(() => fake.openWatches === 1, 5000, 'the watch open upstream');
    // The cut is an aborted response ('error', then 'close'): events.once would reject on the error.
    const closed = new Promise((resolve) => watch.once('close', resolve));
    handle.revoke();
    await closed;
    await eventually(() => fake.openWatches === 0, 5000, 'the watch closed upstream');
    const after = await request(path, token());
    assert.equal(after.status, 401);
  });
});
}
