import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ProviderConfig } from '../../../src/config/proxy.js';
import { isKubegateError } from '../../../src/errors.js';
import { createProviders } from '../../../src/providers/index.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';

const local = (fields: Partial<ProviderConfig> = {}): ProviderConfig => ({ name: 'local', type: 'local', enabled: true, settings: {}, ...fields });

describe('createProviders', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-providers-'));
    store = await openSqliteStore({ path: join(dir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function assertConfigInvalid(configs: ProviderConfig[], field: string): Promise<void> {
    await assert.rejects(createProviders(configs, { store }), (error: unknown) => {
      assert.ok(isKubegateError(error, 'CONFIG_INVALID'));
      assert.equal(error.field, field);
      assert.ok(error.message.startsWith(field), error.message);
      return true;
    });
  }

  it('adds an enabled local provider when the configuration names none, so the bootstrap admin can log in', async () => {
    const registry = await createProviders([], { store });
    assert.equal(registry.get('local'), registry.local);
    assert.deepEqual(registry.list().map((provider) => [provider.name, provider.type]), [['local', 'local']]);
  });

  it('builds the configured local provider with its settings', async () => {
    const registry = await createProviders([local({ name: 'builtin', settings: { minPasswordLength: 16 } })], { store });
    assert.equal(registry.local.name, 'builtin');
    assert.equal(registry.local.minPasswordLength, 16);
    assert.equal(registry.get('local'), undefined);
  });

  it('keeps a disabled local provider out of logins but still offers its password policy', async () => {
    const registry = await createProviders([local({ enabled: false })], { store });
    assert.equal(registry.get('local'), undefined);
    assert.deepEqual(registry.list(), []);
    assert.equal(registry.local.name, 'local');
  });

  it('refuses an unknown provider type, naming providers[i].type', async () => {
    await assertConfigInvalid([local(), { name: 'corp', type: 'kerberos', enabled: true, settings: {} }], 'providers[1].type');
  });

  it('refuses a second local provider, because both would log in the same users', async () => {
    await assertConfigInvalid([local(), local({ name: 'other' })], 'providers[1].type');
  });

  it('refuses a duplicate name and the name local for another type', async () => {
    await assertConfigInvalid([local(), local({ name: 'local', enabled: false })], 'providers[1].name');
    await assertConfigInvalid([{ name: 'local', type: 'ldap', enabled: true, settings: {} }], 'providers[0].name');
  });

  it("addresses a provider's own setting errors from the top of the configuration", async () => {
    await assertConfigInvalid([local({ settings: { minPasswordLength: 2 } })], 'providers[0].settings.minPasswordLength');
  });
});
