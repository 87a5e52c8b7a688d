/**
 * The login rate limit is one limit for every replica (issue #15): two real proxies on one
 * real PostgreSQL share the counters through the store, so failures at one replica lock the
 * username out at the other, a concurrent burst split across both gets exactly the allowed
 * number of password checks, and an admin's reset at one replica lifts the limit at both.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startProxy, type RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig, type ProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { createApiClient, type ApiClient } from '../support/api-client.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-limits';
const MAX_FAILURES = 3;

describe('login limits shared by two proxy replicas on PostgreSQL', () => {
  let dir: string;
  let postgres: TestPostgres;
  let replicas: RunningProxy[] = [];
  let apis: ApiClient[] = [];
  let adminToken: string;

  function proxyConfig(dataDir: string, storeUrl: string, secretKey: string): ProxyConfig {
    return loadProxyConfig({
      env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD, KUBEGATE_SECRET_KEY: secretKey, KUBEGATE_STORE_URL: storeUrl },
      flags: { listen: '127.0.0.1:0', dataDir, metricsListen: 'none' },
    });
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-login-limits-'));
    postgres = await startPostgres();
    const storeUrl = await postgres.createDatabase();
    const secretKey = randomBytes(32).toString('base64');
    const logger = createLogger({ level: 'silent', name: 'proxy' });
    const first = await startProxy({ ...proxyConfig(join(dir, 'data-1'), storeUrl, secretKey), loginRateLimit: { maxFailures: MAX_FAILURES, maxFailuresPerAddress: 1000, windowSeconds: 300 } }, { logger });
    await cp(join(dir, 'data-1', 'tls'), join(dir, 'data-2', 'tls'), { recursive: true });
    const second = await startProxy({ ...proxyConfig(join(dir, 'data-2'), storeUrl, secretKey), loginRateLimit: { maxFailures: MAX_FAILURES, maxFailuresPerAddress: 1000, windowSeconds: 300 } }, { logger });
    replicas = [first, second];
    apis = replicas.map((replica) => createApiClient(replica.url, replica.caPem as string));
    adminToken = await apis[0]!.login('admin', ADMIN_PASSWORD);
    for (const username of ['alice', 'bob']) {
      const created = await apis[0]!.request('POST', '/v1/users', { token: adminToken, body: { username, password: `${username}-Secret-pass-42` } });
      assert.equal(created.status, 201, created.text);
    }
  });

  after(async () => {
    for (const replica of replicas) await replica.stop();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const attempt = (replica: number, username: string, password: string) =>
    apis[replica]!.request('POST', '/v1/login', { body: { provider: 'local', username, password } });

  it('failures at one replica lock the username out at the other, even with the right password', async () => {
    for (let i = 0; i < MAX_FAILURES; i++) assert.equal((await attempt(0, 'alice', 'wrong-password')).status, 401);
    const locked = await attempt(1, 'alice', 'alice-Secret-pass-42');
    assert.equal(locked.status, 429, locked.text);
    assert.equal(locked.json.error.code, 'LOGIN_RATE_LIMITED');
    assert.ok(Number(locked.headers['retry-after']) > 0);
    assert.equal((await attempt(0, 'alice', 'alice-Secret-pass-42')).status, 429);
  });

  it("an admin's reset at one replica lifts the limit at the other", async () => {
    const reset = await apis[1]!.request('DELETE', '/v1/login-limits?username=alice&provider=local', { token: adminToken });
    assert.equal(reset.status, 204, reset.text);
    assert.equal((await attempt(0, 'alice', 'alice-Secret-pass-42')).status, 201);
  });

  it('a burst of concurrent guesses split across both replicas gets exactly the allowed number of password checks', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(i % 2, 'bob', `wrong-${i}`)));
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((status) => status === 401).length, MAX_FAILURES, statuses.join(' '));
    assert.equal(statuses.filter((status) => status === 429).length, 20 - MAX_FAILURES);
  });
});
