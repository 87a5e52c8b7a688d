import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { verifyPassword } from '../../../src/auth/password.js';
import { createLogger } from '../../../src/log.js';
import { bootstrapAdmin } from '../../../src/proxy/bootstrap.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';

describe('bootstrapAdmin', () => {
  let dir: string;
  let store: Store;
  let lines: string[];
  const logger = () => createLogger({ level: 'info', name: 'test', destination: { write: (line: string) => void lines.push(line) } });

  beforeEach(async () => {
    if (store !== undefined) await store.close();
    dir ??= await mkdtemp(join(tmpdir(), 'kubegate-bootstrap-'));
    store = await openSqliteStore({ path: join(dir, `${randomBytes(4).toString('hex')}.db`), secretBox: createSecretBox(randomBytes(32)) });
    lines = [];
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates an enabled admin with a random password on an empty store and logs that password once, at warn', async () => {
    assert.equal(await bootstrapAdmin({ store, username: 'admin', logger: logger() }), true);
    const user = await store.getUserByUsername('admin');
    assert.equal(user?.globalRole, 'admin');
    assert.equal(user?.enabled, true);
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as { level: number; msg: string };
    assert.equal(line.level, 40);
    const match = /^bootstrap admin password: (\S+) /.exec(line.msg);
    assert.ok(match, 'the log line carries the password, uncensored');
    assert.ok(match[1]!.length >= 20);
    assert.ok(await verifyPassword(match[1]!, user!.passwordHash!));
  });

  it('does nothing, and logs nothing, once any user exists', async () => {
    await store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'someone' });
    assert.equal(await bootstrapAdmin({ store, username: 'admin', logger: logger() }), false);
    assert.equal(await store.getUserByUsername('admin'), undefined);
    assert.deepEqual(lines, []);
  });

  it('uses the configured password and never logs it', async () => {
    assert.equal(await bootstrapAdmin({ store, username: 'root', password: 'configured-Pa55word', logger: logger() }), true);
    const user = await store.getUserByUsername('root');
    assert.ok(await verifyPassword('configured-Pa55word', user!.passwordHash!));
    assert.ok(!lines.join('\n').includes('configured-Pa55word'));
    assert.ok(!lines.join('\n').includes('bootstrap admin password'));
  });

  it('creates exactly one admin when two start at once on the same store', async () => {
    const results = await Promise.all([
      bootstrapAdmin({ store, username: 'admin', logger: logger() }),
      bootstrapAdmin({ store, username: 'admin', logger: logger() }),
    ]);
    assert.deepEqual(results.sort(), [false, true]);
    assert.equal(await store.countUsers(), 1);
    assert.equal(lines.filter((line) => line.includes('bootstrap admin password')).length, 1);
  });
});
