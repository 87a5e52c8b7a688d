/**
 * Issue #16.1: while ANOTHER process holds the SQLite write lock, the store's writes wait
 * for it without blocking the event loop (better-sqlite3 is synchronous; SQLite's own busy
 * timeout would sleep inside the call and freeze every request of the proxy). The lock is
 * held by a real child process; responsiveness is shown by a timer that keeps firing while
 * a write waits, never by timing the write.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isKubegateError } from '../../../src/errors.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A child process that takes the write lock of the database (BEGIN IMMEDIATE) and holds it until told to release it. */
class LockHolder {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #lines: AsyncIterator<string>;

  private constructor(child: ChildProcessByStdio<Writable, Readable, null>) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async lock(path: string): Promise<LockHolder> {
    const script = `
      const Database = require('better-sqlite3');
      const db = new Database(process.argv[1], { timeout: 0 });
      db.exec('BEGIN IMMEDIATE');
      process.stdout.write('locked\\n');
      process.stdin.once('data', () => { db.exec('COMMIT'); db.close(); process.stdout.write('released\\n'); process.exit(0); });`;
    const holder = new LockHolder(spawn(process.execPath, ['-e', script, path], { cwd: repositoryRoot, stdio: ['pipe', 'pipe', 'inherit'] }));
    await holder.#expect('locked');
    return holder;
  }

  async release(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    this.#child.stdin.write('release\n');
    await this.#expect('released');
    if (this.#child.exitCode === null) await once(this.#child, 'exit');
  }

  async #expect(line: string): Promise<void> {
    const next = await this.#lines.next();
    assert.equal(next.value, line);
  }
}

/** Resolves once an interval of 1 ms has fired `count` times: the event loop kept turning. */
function loopTurns(count: number): { turned: Promise<void>; fired: () => number; stop: () => void } {
  let fired = 0;
  let done: () => void = () => undefined;
  const turned = new Promise<void>((resolve) => {
    done = resolve;
  });
  const timer = setInterval(() => {
    fired += 1;
    if (fired === count) done();
  }, 1);
  return { turned, fired: () => fired, stop: () => clearInterval(timer) };
}

describe('sqlite store under another process’s write lock', () => {
  let dir: string;
  let path: string;
  let store: Store;
  let holder: LockHolder | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-locks-'));
    path = join(dir, 'kubegate.db');
  });
  afterEach(async () => {
    await holder?.release();
    holder = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the event loop turning while a write waits for the lock, serves reads meanwhile, and writes once the lock is released', async () => {
    store = await openSqliteStore({ path, secretBox: createSecretBox(randomBytes(32)) });
    await store.createUser({ id: 'u-alice', username: 'alice' });
    await store.createToken({ name: 't-1', tokenHash: '$3:1:x', userId: 'u-alice', kind: 'api', provider: 'local' });
    holder = await LockHolder.lock(path);

    let settled = false;
    const write = store.createUser({ id: 'u-bob', username: 'bob' }).finally(() => {
      settled = true;
    });
    const touch = store.touchToken('t-1', new Date('2030-01-01T00:00:00.000Z'));
    const loop = loopTurns(20);
    await loop.turned;
    loop.stop();
    // The lock is still held: the write cannot have happened, yet timers ran and reads answer.
    assert.equal(settled, false, 'the write finished (or failed) while another process held the lock');
    assert.equal((await store.getToken('t-1'))?.lastUsedAt, null);
    assert.equal(await store.getUser('u-bob'), undefined);

    await holder.release();
    assert.equal((await write).id, 'u-bob');
    await touch;
    assert.deepEqual((await store.getToken('t-1'))?.lastUsedAt, new Date('2030-01-01T00:00:00.000Z'));
  });

  it('fails a write with STORE_UNAVAILABLE once the lock outlasts busyTimeoutMs, with timers firing while it waited, and writes nothing', async () => {
    store = await openSqliteStore({ path, secretBox: createSecretBox(randomBytes(32)), busyTimeoutMs: 300 });
    holder = await LockHolder.lock(path);
    const loop = loopTurns(Number.POSITIVE_INFINITY);
    const outcome = await store.createUser({ id: 'u-bob', username: 'bob' }).then(
      () => 'written',
      (error: unknown) => error,
    );
    const firedWhileWaiting = loop.fired();
    loop.stop();
    assert.ok(isKubegateError(outcome, 'STORE_UNAVAILABLE'), `expected STORE_UNAVAILABLE, got ${String(outcome)}`);
    assert.ok(firedWhileWaiting > 0, 'no timer fired while the write waited for the lock: the event loop was blocked');
    await holder.release();
    assert.equal(await store.getUser('u-bob'), undefined);
    await store.createUser({ id: 'u-bob', username: 'bob' });
    assert.equal(await store.countUsers(), 1);
  });
});
