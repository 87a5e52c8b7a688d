import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isKubegateError } from '../../../src/errors.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';
import { whenClusterRemoved } from '../../../src/sync/removal.js';

describe('whenClusterRemoved', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-removal-'));
    store = await openSqliteStore({ path: join(dir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const addCluster = (id: string) => store.createCluster({ id, server: `https://${id}.example.org:6443`, credentials: { kind: 'token', token: 'cluster-token' } });

  it('resolves when the store forgets the cluster, because the replica holding the lease removed it', async () => {
    await addCluster('leaving');
    const removed = whenClusterRemoved(store, 'leaving', 60_000);
    await store.markClusterDeleting('leaving', new Date());
    await store.deleteCluster('leaving');
    await removed;
  });

  it('resolves at once for a cluster that is gone already', async () => {
    await whenClusterRemoved(store, 'never-there', 60_000);
  });

  it('gives up after its time while the cluster is still there, so that no request waits for ever', async () => {
    await addCluster('stuck');
    // Its timer does not hold a process open by itself (a proxy's server does): this test's does.
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      await assert.rejects(whenClusterRemoved(store, 'stuck', 50), (error: unknown) => isKubegateError(error, 'INTERNAL'));
    } finally {
      clearInterval(keepAlive);
    }
    assert.notEqual(await store.getCluster('stuck'), undefined);
  });
});
