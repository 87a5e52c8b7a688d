/**
 * Issue #15.7: a missing key file is replaced by a new key only when that loses nothing.
 * Real SQLite stores in a temporary data dir.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isKubegateError } from '../../../src/errors.js';
import { openStoreWithKey, type StoreConfig } from '../../../src/store/open.js';
import { readKeyFile } from '../../../src/store/secret-box.js';

describe('openStoreWithKey', () => {
  let dir: string;
  let config: StoreConfig;
  let keyFile: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-open-'));
    config = { type: 'sqlite', path: join(dir, 'kubegate.db') };
    keyFile = join(dir, 'secret.key');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the key file on a new data dir and uses it on the next start', async () => {
    const first = await openStoreWithKey(config, { file: keyFile });
    await first.store.createCluster({ id: 'prod', server: 'https://prod.example.org', credentials: { kind: 'token', token: 'secret' } });
    await first.store.close();
    assert.deepEqual(readKeyFile(keyFile), first.secretKey);
    const again = await openStoreWithKey(config, { file: keyFile });
    assert.deepEqual((await again.store.getCluster('prod'))?.credentials, { kind: 'token', token: 'secret' });
    await again.store.close();
  });

  for (const [what, seal] of [
    ['cluster credentials', (store: Awaited<ReturnType<typeof openStoreWithKey>>['store']) => store.createCluster({ id: 'prod', server: 'https://p', credentials: { kind: 'token', token: 's' } })],
    ['provider settings', (store: Awaited<ReturnType<typeof openStoreWithKey>>['store']) => store.putProviderConfig({ name: 'corp', type: 'ldap', enabled: true, settings: {} })],
  ] as const) {
    it(`refuses with SECRET_KEY_MISSING, and writes no new key, when the key file is gone but the store holds ${what}, because a new key could open none of them`, async () => {
      const first = await openStoreWithKey(config, { file: keyFile });
      await seal(first.store);
      await first.store.close();
      unlinkSync(keyFile);
      await assert.rejects(openStoreWithKey(config, { file: keyFile }), (error: unknown) => {
        assert.ok(isKubegateError(error, 'SECRET_KEY_MISSING'), String(error));
        assert.ok(error.message.includes(keyFile) && error.message.includes('restore'), error.message);
        return true;
      });
      assert.equal(existsSync(keyFile), false, 'a new key file was written over the lost one');
    });
  }

  it('creates a new key when the key file is gone but nothing sealed is stored (an agent cluster holds no credentials)', async () => {
    const first = await openStoreWithKey(config, { file: keyFile });
    await first.store.createUser({ id: 'u-alice', username: 'alice' });
    await first.store.createCluster({ id: 'edge', server: '', mode: 'agent' });
    await first.store.close();
    unlinkSync(keyFile);
    const again = await openStoreWithKey(config, { file: keyFile });
    assert.equal(await again.store.countUsers(), 1);
    assert.deepEqual(readKeyFile(keyFile), again.secretKey);
    await again.store.close();
  });
});
