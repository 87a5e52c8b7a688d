/**
 * Recovering a lost admin password: the real proxy restarted with
 * KUBEGATE_BOOTSTRAP_RESET_PASSWORD=true and KUBEGATE_BOOTSTRAP_PASSWORD sets the bootstrap
 * user's password — that user only, and only with the explicit setting; the old sessions
 * are revoked and the log warns without ever showing the password.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { isKubegateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createApiClient } from '../support/api-client.js';

let dir: string;
const FIRST = 'first-Admin-pa55word';
const FORGOTTEN_REPLACEMENT = 'second-Admin-pa55word';

async function withProxy<T>(env: Record<string, string>, lines: string[], work: (api: ReturnType<typeof createApiClient>) => Promise<T>): Promise<T> {
  const config = loadProxyConfig({ env: { KUBEGATE_LOG_LEVEL: 'info', ...env }, flags: { listen: '127.0.0.1:0', dataDir: join(dir, 'data'), metricsListen: 'none' } });
  const proxy = await startProxy(config, { logger: createLogger({ level: 'info', name: 'proxy', destination: { write: (line: string) => void lines.push(line) } }) });
  try {
    return await work(createApiClient(proxy.url, proxy.caPem!));
  } finally {
    await proxy.stop();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubegate-reset-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the bootstrap password is re-applied only with KUBEGATE_BOOTSTRAP_RESET_PASSWORD, which revokes old sessions and never logs the password', async () => {
  const lines: string[] = [];
  const { oldToken, aliceId } = await withProxy({ KUBEGATE_BOOTSTRAP_PASSWORD: FIRST }, lines, async (api) => {
    const token = await api.login('admin', FIRST);
    const alice = await api.request('POST', '/v1/users', { token, body: { username: 'alice', password: 'alice-Secret-pass-42' } });
    assert.equal(alice.status, 201, alice.text);
    return { oldToken: token, aliceId: alice.json.id as string };
  });

  // A new KUBEGATE_BOOTSTRAP_PASSWORD alone changes nothing on a store with users.
  await withProxy({ KUBEGATE_BOOTSTRAP_PASSWORD: FORGOTTEN_REPLACEMENT }, lines, async (api) => {
    const refused = await api.request('POST', '/v1/login', { body: { provider: 'local', username: 'admin', password: FORGOTTEN_REPLACEMENT } });
    assert.equal(refused.status, 401);
  });

  await withProxy({ KUBEGATE_BOOTSTRAP_PASSWORD: FORGOTTEN_REPLACEMENT, KUBEGATE_BOOTSTRAP_RESET_PASSWORD: 'true' }, lines, async (api) => {
    const token = await api.login('admin', FORGOTTEN_REPLACEMENT);
    const me = await api.request('GET', '/v1/me', { token });
    assert.equal(me.status, 200, me.text);
    assert.equal((await api.request('GET', '/v1/me', { token: oldToken })).status, 401, 'sessions from before the reset are revoked');
    const alice = await api.request('GET', `/v1/users/${aliceId}`, { token });
    assert.equal(alice.status, 200, alice.text);
    assert.ok((await api.login('alice', 'alice-Secret-pass-42')).length > 0, 'other users are untouched');
  });
  const warnings = lines.filter((line) => line.includes('bootstrap.resetPassword'));
  assert.equal(warnings.length, 1);
  assert.equal(JSON.parse(warnings[0]!).level, 40);
  for (const line of lines) assert.ok(!line.includes(FIRST) && !line.includes(FORGOTTEN_REPLACEMENT), 'no password in the log');
});

test('KUBEGATE_BOOTSTRAP_RESET_PASSWORD without a password is a configuration error naming the field', () => {
  assert.throws(
    () => loadProxyConfig({ env: { KUBEGATE_BOOTSTRAP_RESET_PASSWORD: 'true' }, flags: { dataDir: join(dir, 'other') } }),
    (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && /KUBEGATE_BOOTSTRAP_RESET_PASSWORD: needs bootstrap\.password/.test(error.message),
  );
  assert.throws(
    () => loadProxyConfig({ env: { KUBEGATE_BOOTSTRAP_PASSWORD: FIRST, KUBEGATE_BOOTSTRAP_RESET_PASSWORD: 'yes' }, flags: { dataDir: join(dir, 'other') } }),
    (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && /KUBEGATE_BOOTSTRAP_RESET_PASSWORD/.test(error.message),
  );
});
