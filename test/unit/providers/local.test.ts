import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { hashPassword, verifyPassword } from '../../../src/auth/password.js';
import { isKubegateError } from '../../../src/errors.js';
import { createLocalProvider } from '../../../src/providers/local.js';
import type { LocalProvider } from '../../../src/providers/provider.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';

const PASSWORD = 'a password long enough';

describe('createLocalProvider', () => {
  let dir: string;
  let store: Store;
  let provider: LocalProvider;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-local-'));
    store = await openSqliteStore({ path: join(dir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
    const passwordHash = await hashPassword(PASSWORD);
    await store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'alice', displayName: 'Alice', passwordHash });
    await store.createUser({ id: 'u-bbbbbbbbbbbb', username: 'off', enabled: false, passwordHash });
    await store.createUser({ id: 'u-cccccccccccc', username: 'ldap-only', passwordHash: null });
    await store.createUser({ id: 'u-dddddddddddd', username: 'corrupt', passwordHash: '$scrypt$garbage' });
    provider = createLocalProvider({ name: 'local', type: 'local', enabled: true, settings: {} }, { store });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('authenticates a user with the right password as the store user itself, without groups', async () => {
    assert.deepEqual(await provider.authenticatePassword('alice', PASSWORD), {
      outcome: 'authenticated',
      identity: { providerUserId: 'u-aaaaaaaaaaaa', userId: 'u-aaaaaaaaaaaa', loginName: 'alice', displayName: 'Alice', groups: [] },
    });
  });

  it('answers unauthenticated for a wrong password, an unknown user, a user without a local password, and an empty password', async () => {
    for (const [username, password] of [['alice', 'wrong password!!'], ['nobody', PASSWORD], ['ldap-only', PASSWORD], ['alice', ''], ['', PASSWORD]]) {
      assert.deepEqual(await provider.authenticatePassword(username!, password!), { outcome: 'unauthenticated' }, `${username}`);
    }
  });

  it('still authenticates a disabled user, because the login route decides about disabled users after the password', async () => {
    assert.equal((await provider.authenticatePassword('off', PASSWORD)).outcome, 'authenticated');
  });

  it('spends as much time on an unknown user as on a wrong password, so response times do not reveal usernames', async () => {
    const median = async (username: string): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const start = performance.now();
        await provider.authenticatePassword(username, 'wrong password!!');
        times.push(performance.now() - start);
      }
      return times.sort((a, b) => a - b)[1]!;
    };
    await provider.authenticatePassword('nobody', 'warm up the dummy hash');
    const known = await median('alice');
    const unknown = await median('nobody');
    assert.ok(unknown > known * 0.3, `unknown user ${unknown.toFixed(1)} ms vs known user ${known.toFixed(1)} ms`);
  });

  it('answers error, not unauthenticated, for a corrupt stored hash', async () => {
    const result = await provider.authenticatePassword('corrupt', PASSWORD);
    assert.equal(result.outcome, 'error');
    assert.ok(result.outcome === 'error' && isKubegateError(result.error, 'HASH_MALFORMED'));
  });

  it('hashes a new password that meets the policy, and refuses a short or over-long one naming the field', async () => {
    assert.ok(await verifyPassword('twelve chars', await provider.hashNewPassword('twelve chars', 'password')));
    await assert.rejects(provider.hashNewPassword('eleven char', 'newPassword'), (error: unknown) => {
      assert.ok(isKubegateError(error, 'BAD_REQUEST'));
      assert.equal(error.field, 'newPassword');
      assert.equal(error.message, 'newPassword must be at least 12 characters long');
      return true;
    });
    await assert.rejects(provider.hashNewPassword('é'.repeat(600), 'password'), (error: unknown) => isKubegateError(error, 'BAD_REQUEST'));
  });

  it('counts characters, not bytes or UTF-16 units, for the minimum length', async () => {
    await provider.hashNewPassword('🔑'.repeat(12), 'password');
    await assert.rejects(provider.hashNewPassword('🔑'.repeat(11), 'password'));
  });

  it('takes minPasswordLength from its settings and refuses settings it does not know', () => {
    const strict = createLocalProvider({ name: 'local', type: 'local', enabled: true, settings: { minPasswordLength: 20 } }, { store });
    assert.equal(strict.minPasswordLength, 20);
    for (const settings of [{ minPasswordLength: 4 }, { minPasswordLength: '12' }, { minPasswordLength: 12.5 }, { maxPasswordLength: 3 }]) {
      assert.throws(() => createLocalProvider({ name: 'local', type: 'local', enabled: true, settings }, { store }), (error: unknown) => {
        assert.ok(isKubegateError(error, 'CONFIG_INVALID'));
        assert.match(error.field ?? '', /^settings\./);
        return true;
      });
    }
  });

  it('answers error when the store cannot be reached, because an outage is not a wrong password', async () => {
    const closedDir = await mkdtemp(join(tmpdir(), 'kubegate-local-closed-'));
    const closed = await openSqliteStore({ path: join(closedDir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
    await closed.close();
    try {
      const result = await createLocalProvider({ name: 'local', type: 'local', enabled: true, settings: {} }, { store: closed }).authenticatePassword('alice', PASSWORD);
      assert.equal(result.outcome, 'error');
    } finally {
      await rm(closedDir, { recursive: true, force: true });
    }
  });
});
