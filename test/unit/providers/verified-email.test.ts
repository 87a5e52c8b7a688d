/**
 * Recording the address a provider vouches for (src/providers/verified-email.ts), against a
 * real SQLite store: the conflict rule (an address is one user's), the warning that names
 * both users but never the address, and no write when nothing changed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../../src/log.js';
import { recordVerifiedEmail } from '../../../src/providers/verified-email.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store, StoreChange } from '../../../src/store/store.js';

describe('recording a verified e-mail address', () => {
  let dir: string;
  let store: Store;
  let lines: Record<string, unknown>[];
  let changes: StoreChange[];
  const logger = createLogger({ level: 'info', name: 'test', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-email-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    store = await openSqliteStore({ path: join(dir, `${randomBytes(6).toString('hex')}.db`), secretBox: createSecretBox(randomBytes(32)) });
    await store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'alice' });
    await store.createUser({ id: 'u-bbbbbbbbbbbb', username: 'bob' });
    lines = [];
    changes = [];
    store.subscribe((change) => changes.push(change));
  });
  afterEach(async () => {
    await store.close();
  });

  it('records the address, follows the provider when it changes, and removes it when the provider has none', async () => {
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'alice@example.org'))?.email, 'alice@example.org');
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'alice.smith@example.org'))?.email, 'alice.smith@example.org');
    assert.equal((await store.getUser('u-aaaaaaaaaaaa'))?.email, 'alice.smith@example.org');
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', undefined))?.email, null);
    assert.equal((await store.getUser('u-aaaaaaaaaaaa'))?.email, null);
    assert.deepEqual(changes, [
      { kind: 'user', key: 'u-aaaaaaaaaaaa' },
      { kind: 'user', key: 'u-aaaaaaaaaaaa' },
      { kind: 'user', key: 'u-aaaaaaaaaaaa' },
    ]);
    assert.deepEqual(lines, []);
  });

  it('writes nothing when the address did not change, so a login announces no change', async () => {
    await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'alice@example.org');
    changes.length = 0;
    await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'alice@example.org');
    await recordVerifiedEmail(store, logger, 'u-bbbbbbbbbbbb', undefined);
    assert.deepEqual(changes, []);
  });

  it('does not record an address another user holds (in any case): the second user has none, and a warning names both users, never the address', async () => {
    await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'shared@example.org');
    await recordVerifiedEmail(store, logger, 'u-bbbbbbbbbbbb', 'bob@example.org');
    const bob = await recordVerifiedEmail(store, logger, 'u-bbbbbbbbbbbb', 'Shared@example.org');
    assert.equal(bob?.email, null, "bob's old address is gone too: the provider no longer vouches for it");
    assert.equal((await store.getUser('u-aaaaaaaaaaaa'))?.email, 'shared@example.org');
    assert.equal((await store.getUser('u-bbbbbbbbbbbb'))?.email, null);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!['level'], 40);
    assert.equal(lines[0]!['user'], 'u-bbbbbbbbbbbb');
    assert.equal(lines[0]!['holder'], 'u-aaaaaaaaaaaa');
    assert.doesNotMatch(JSON.stringify(lines[0]), /shared@/i);
  });

  it('answers undefined for a user deleted meanwhile', async () => {
    assert.equal(await recordVerifiedEmail(store, logger, 'u-cccccccccccc', 'carol@example.org'), undefined);
  });
});
