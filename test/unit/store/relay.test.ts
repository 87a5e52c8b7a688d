import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { relayChanges } from '../../../src/store/relay.js';
import type { ChangeChannel } from '../../../src/store/relay.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store, StoreChange } from '../../../src/store/store.js';

/** Two processes' channels joined in memory; delivery to the peer is asynchronous, like IPC. */
function channelPair(): { a: ChangeChannel; b: ChangeChannel; delivered: StoreChange[][] } {
  const handlers = { a: new Set<(changes: readonly StoreChange[]) => void>(), b: new Set<(changes: readonly StoreChange[]) => void>() };
  const delivered: StoreChange[][] = [];
  const make = (self: 'a' | 'b', peer: 'a' | 'b'): ChangeChannel => ({
    publish: (changes) =>
      new Promise((resolve) =>
        setTimeout(() => {
          for (const handler of handlers[peer]) handler(changes);
          delivered.push([...changes]);
          resolve();
        }, 5),
      ),
    receive(handler) {
      handlers[self].add(handler);
      return () => handlers[self].delete(handler);
    },
  });
  return { a: make('a', 'b'), b: make('b', 'a'), delivered };
}

describe('relayChanges', () => {
  let dir: string;
  let first: Store;
  let second: Store;
  let channels: ReturnType<typeof channelPair>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-relay-'));
    const box = createSecretBox(randomBytes(32));
    const path = join(dir, 'kubegate.db');
    channels = channelPair();
    first = relayChanges(await openSqliteStore({ path, secretBox: box }), channels.a);
    second = relayChanges(await openSqliteStore({ path, secretBox: box }), channels.b);
  });

  after(async () => {
    await first?.close();
    await second?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a write in one process reaches the subscribers of the other before the write resolves, because a revocation must be in force everywhere once answered', async () => {
    const heard: StoreChange[] = [];
    const unsubscribe = second.subscribe((change) => heard.push(change));
    try {
      await first.createUser({ id: 'u-aaaaaaaaaaaa', username: 'alice' });
      assert.deepEqual(heard, [{ kind: 'user', key: 'u-aaaaaaaaaaaa' }]);
    } finally {
      unsubscribe();
    }
  });

  test('the writing process still hears its own change exactly once, because the relay adds delivery from others without echoing local writes', async () => {
    const heard: StoreChange[] = [];
    const unsubscribe = first.subscribe((change) => heard.push(change));
    try {
      await first.updateUser('u-aaaaaaaaaaaa', { displayName: 'Alice' });
      // A marker from the other process travels the same (in-order) channel after anything
      // the first write could have sent back: once it is heard, an echo would have been too.
      await second.createUser({ id: 'u-mmmmmmmmmmmm', username: 'marker' });
      assert.deepEqual(heard, [
        { kind: 'user', key: 'u-aaaaaaaaaaaa' },
        { kind: 'user', key: 'u-mmmmmmmmmmmm' },
      ]);
    } finally {
      unsubscribe();
    }
  });

  test('reads are passed through unchanged and publish nothing, because only committed changes travel', async () => {
    const before = channels.delivered.length;
    const user = await second.getUser('u-aaaaaaaaaaaa');
    assert.equal(user?.displayName, 'Alice');
    assert.equal(channels.delivered.length, before);
  });

  test('an unsubscribed listener hears nothing more from either side', async () => {
    const heard: StoreChange[] = [];
    const unsubscribe = second.subscribe((change) => heard.push(change));
    unsubscribe();
    await first.updateUser('u-aaaaaaaaaaaa', { displayName: 'A.' });
    await second.updateUser('u-aaaaaaaaaaaa', { displayName: 'Al' });
    assert.deepEqual(heard, []);
  });

  test('a PostgreSQL store is returned as it is, because NOTIFY already reaches every process and relaying would deliver twice', () => {
    const postgres = { kind: 'postgres' } as Store;
    assert.equal(relayChanges(postgres, channels.a), postgres);
  });
});
