/**
 * revokeDisabledProviders runs at every proxy start: it must revoke exactly the tokens of
 * providers that are no longer enabled, and never those of an enabled provider that logs
 * people in through the browser (OIDC, GitHub) rather than by password.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { revokeDisabledProviders } from '../../../src/providers/group-refresh.js';
import { createProviders } from '../../../src/providers/index.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';

test('tokens of an enabled browser-login provider survive a restart, while those of a disabled provider are revoked', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubegate-revoke-'));
  const store = await openSqliteStore({ path: join(dir, 'store.db'), secretBox: createSecretBox(randomBytes(32)) });
  try {
    const logger = pino({ level: 'silent' });
    const github = { clientId: 'kubegate-client', clientSecret: 'kubegate-secret' };
    const providers = await createProviders(
      [
        { name: 'local', type: 'local', enabled: true, settings: {} },
        { name: 'github', type: 'github', enabled: true, settings: github },
        { name: 'old-github', type: 'github', enabled: false, settings: github },
      ],
      { store, logger },
    );
    await store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'alice' });
    for (const provider of ['local', 'github', 'old-github', 'removed-oidc']) {
      await store.createToken({ name: `t-${provider}`, tokenHash: '$3:1:x', userId: 'u-aaaaaaaaaaaa', kind: 'login', provider });
    }
    const deleted = await revokeDisabledProviders({ store, providers, logger });
    assert.deepEqual([...deleted].sort(), ['t-old-github', 't-removed-oidc']);
    assert.deepEqual((await store.listTokens()).map((token) => token.name).sort(), ['t-github', 't-local']);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
