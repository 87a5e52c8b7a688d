/**
 * Recording the address a provider vouches for (src/providers/verified-email.ts), against a
 * real SQLite store: the conflict rule (an address is one user's), the warning that names
 * both users but never the address, no write when nothing changed, and one provider per
 * user as the address's source.
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
import { eventually } from '../../support/eventually.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Identity, Store, StoreChange } from '../../../src/store/store.js';

describe('recording a verified e-mail address', () => {
  let dir: string;
  let store: Store;
  let lines: Record<string, unknown>[];
  let changes: StoreChange[];
  let aliceLinked: Identity;
  const logger = createLogger({ level: 'info', name: 'test', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-email-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    store = await openSqliteStore({ path: join(dir, `${randomBytes(6).toString('hex')}.db`), secretBox: createSecretBox(randomBytes(32)) });
    await store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'alice' });
    await store.createUser({ id: 'u-bbbbbbbbbbbb', username: 'bob' });
    aliceLinked = await store.linkIdentity({ provider: 'corp', providerUserId: 'uid=alice', userId: 'u-aaaaaaaaaaaa', loginName: 'alice' });
    await store.linkIdentity({ provider: 'corp', providerUserId: 'uid=bob', userId: 'u-bbbbbbbbbbbb', loginName: 'bob' });
    lines = [];
    changes = [];
    store.subscribe((change) => changes.push(change));
  });
  afterEach(async () => {
    await store.close();
  });

  it('records the address, follows the provider when it changes, and removes it when the provider has none', async () => {
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', 'alice@example.org'))?.email, 'alice@example.org');
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', 'alice.smith@example.org'))?.email, 'alice.smith@example.org');
    assert.equal((await store.getUser('u-aaaaaaaaaaaa'))?.email, 'alice.smith@example.org');
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', undefined))?.email, null);
    assert.equal((await store.getUser('u-aaaaaaaaaaaa'))?.email, null);
    assert.deepEqual(changes, [
      { kind: 'user', key: 'u-aaaaaaaaaaaa' },
      { kind: 'user', key: 'u-aaaaaaaaaaaa' },
      { kind: 'user', key: 'u-aaaaaaaaaaaa' },
    ]);
    assert.deepEqual(lines, []);
  });

  it('writes nothing when the address did not change, so a login announces no change', async () => {
    await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', 'alice@example.org');
    changes.length = 0;
    await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', 'alice@example.org');
    await recordVerifiedEmail(store, logger, 'u-bbbbbbbbbbbb', 'corp', undefined);
    assert.deepEqual(changes, []);
  });

  it('does not record an address another user holds (in any case): the second user has none, and a warning names both users, never the address', async () => {
    await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', 'shared@example.org');
    await recordVerifiedEmail(store, logger, 'u-bbbbbbbbbbbb', 'corp', 'bob@example.org');
    const bob = await recordVerifiedEmail(store, logger, 'u-bbbbbbbbbbbb', 'corp', 'Shared@example.org');
    assert.equal(bob?.email, null, "bob's old address is gone too: the provider no longer vouches for it");
    assert.equal((await store.getUser('u-aaaaaaaaaaaa'))?.email, 'shared@example.org');
    assert.equal((await store.getUser('u-bbbbbbbbbbbb'))?.email, null);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!['level'], 40);
    assert.equal(lines[0]!['user'], 'u-bbbbbbbbbbbb');
    assert.equal(lines[0]!['holder'], 'u-aaaaaaaaaaaa');
    assert.doesNotMatch(JSON.stringify(lines[0]), /shared@/i);
  });

  it("takes a user's address from its first linked provider only, so it never flips between two providers' addresses as they log in in turn", async () => {
    // Linked later (and first in name order: the link time decides, not the name).
    await eventually(() => Date.now() > aliceLinked.createdAt.getTime(), 1000, 'a later link time');
    await store.linkIdentity({ provider: 'another', providerUserId: 'alice-at-another', userId: 'u-aaaaaaaaaaaa', loginName: 'alice' });
    await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', 'alice@corp.example');
    changes.length = 0;
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'another', 'alice@another.example'))?.email, 'alice@corp.example');
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'another', undefined))?.email, 'alice@corp.example', 'nor does its having none remove it');
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'local', 'alice@local.example'))?.email, 'alice@corp.example', 'a provider not linked at all');
    assert.deepEqual(changes, []);
    assert.equal((await recordVerifiedEmail(store, logger, 'u-aaaaaaaaaaaa', 'corp', 'alice.new@corp.example'))?.email, 'alice.new@corp.example');
    assert.deepEqual(lines, []);
  });

  it('answers undefined for a user deleted meanwhile', async () => {
    assert.equal(await recordVerifiedEmail(store, logger, 'u-cccccccccccc', 'corp', 'carol@example.org'), undefined);
  });
});
