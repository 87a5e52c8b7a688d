/**
 * A new holder of the background job lease keeps what the previous one recorded: two real
 * proxies, one after the other, on one SQLite data dir (the second is the next holder, as
 * after a restart or a replica taking over). The first syncs the fake cluster; then the
 * cluster goes away and the second's first attempt fails. `GET /v1/clusters/:id` must still
 * say when the cluster was last synced (and what it held), not `lastSuccessAt: null`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { startProxy, type RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { CATTLE_NAMESPACE } from '../fakes/rancher-objects.js';
import { createApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { FIXTURE_ADMIN_PASSWORD, startProxyFixture } from '../support/proxy-fixture.js';

test("a new lease holder whose first sync fails shows the previous holder's last success, because the cluster was synced then", async (t) => {
  const fixture = await startProxyFixture({ name: 'sync-handover', fake: { namespaces: ['default', CATTLE_NAMESPACE] } });
  let next: RunningProxy | undefined;
  t.after(async () => {
    await next?.stop();
    await fixture.close();
  });
  await fixture.grant('Group', 'local:ops', 'member');
  const syncOf = async (api = fixture.api, token = fixture.adminToken) => (await api.request('GET', `/v1/clusters/${fixture.clusterId}`, { token })).json.sync;
  await eventually(async () => (await syncOf())?.ok === true, 10_000, 'the first holder synced the cluster');
  const synced = await syncOf();
  assert.equal(typeof synced.lastSuccessAt, 'string');

  await fixture.stopProxy();
  await fixture.fake.close();
  const config = loadProxyConfig({ file: join(fixture.dir, 'kubegate.yaml'), env: { KUBEGATE_BOOTSTRAP_PASSWORD: FIXTURE_ADMIN_PASSWORD } });
  next = await startProxy(config, { logger: createLogger({ level: 'silent', name: 'proxy' }) });
  assert.equal(next.holdsBackgroundLease(), true);
  const api = createApiClient(next.url, next.caPem as string);
  const token = await api.login('admin', FIXTURE_ADMIN_PASSWORD);

  await eventually(async () => (await syncOf(api, token))?.ok === false, 10_000, "the new holder's sync fails: the cluster is gone");
  const failed = await syncOf(api, token);
  assert.equal(failed.consecutiveFailures, 1);
  assert.match(failed.error, /^KUBE_API_FAILED: /);
  assert.equal(failed.lastSuccessAt, synced.lastSuccessAt, "the previous holder's last success");
  assert.deepEqual(failed.objects, synced.objects, 'and the objects the cluster held then');
  assert.equal(next.sync.status(fixture.clusterId)?.lastSuccessAt?.toISOString(), synced.lastSuccessAt);
});
