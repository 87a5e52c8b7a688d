import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
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
  let passwordFile: string;
  const logger = () => createLogger({ level: 'info', name: 'test', destination: { write: (line: string) => void lines.push(line) } });

  beforeEach(async () => {
    if (store !== undefined) await store.close();
    dir ??= await mkdtemp(join(tmpdir(), 'kubegate-bootstrap-'));
    store = await openSqliteStore({ path: join(dir, `${randomBytes(4).toString('hex')}.db`), secretBox: createSecretBox(randomBytes(32)) });
    lines = [];
    const dataDir = join(dir, `data-${randomBytes(4).toString('hex')}`);
    passwordFile = join(dataDir, 'bootstrap-password');
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates an enabled admin with a random password, written to a file only its owner can read, and logs where, never the password', async () => {
    assert.equal(await bootstrapAdmin({ store, username: 'admin', passwordFile, logger: logger() }), true);
    const user = await store.getUserByUsername('admin');
    assert.equal(user?.globalRole, 'admin');
    assert.equal(user?.enabled, true);
    const password = (await readFile(passwordFile, 'utf8')).trim();
    assert.ok(password.length >= 20);
    assert.ok(await verifyPassword(password, user!.passwordHash!));
    assert.equal((await stat(passwordFile)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(join(passwordFile, '..')), ['bootstrap-password'], 'no temporary file is left behind');
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as { level: number; msg: string; passwordFile: string };
    assert.equal(line.level, 40);
    assert.equal(line.passwordFile, passwordFile);
    assert.ok(!lines[0]!.includes(password), 'the password never reaches the log');
  });

  it('fails with a clear error, creating no user, when the password file cannot be written', async () => {
    // A regular file where the data dir should be: unwritable even for root.
    const notADirectory = join(dir, `file-${randomBytes(4).toString('hex')}`);
    await writeFile(notADirectory, 'x');
    await assert.rejects(
      bootstrapAdmin({ store, username: 'admin', passwordFile: join(notADirectory, 'bootstrap-password'), logger: logger() }),
      (error: Error & { code?: string }) => error.code === 'CONFIG_INVALID' && error.message.includes('bootstrap password file'),
    );
    assert.equal(await store.countUsers(), 0, 'without its password an admin would be locked out: none is created');
  });

  it('does nothing, and logs nothing, once any user exists', async () => {
    await store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'someone' });
    assert.equal(await bootstrapAdmin({ store, username: 'admin', passwordFile, logger: logger() }), false);
    assert.equal(await store.getUserByUsername('admin'), undefined);
    assert.deepEqual(lines, []);
    await assert.rejects(readFile(passwordFile), { code: 'ENOENT' });
  });

  it('uses the configured password and never writes it anywhere', async () => {
    assert.equal(await bootstrapAdmin({ store, username: 'root', password: 'configured-Pa55word', passwordFile, logger: logger() }), true);
    const user = await store.getUserByUsername('root');
    assert.ok(await verifyPassword('configured-Pa55word', user!.passwordHash!));
    assert.ok(!lines.join('\n').includes('configured-Pa55word'));
    await assert.rejects(readFile(passwordFile), { code: 'ENOENT' });
  });

  it('creates exactly one admin when two start at once on the same store, and the file holds that admin\'s password', async () => {
    const results = await Promise.all([
      bootstrapAdmin({ store, username: 'admin', passwordFile, logger: logger() }),
      bootstrapAdmin({ store, username: 'admin', passwordFile, logger: logger() }),
    ]);
    assert.deepEqual(results.sort(), [false, true]);
    assert.equal(await store.countUsers(), 1);
    const user = await store.getUserByUsername('admin');
    assert.ok(await verifyPassword((await readFile(passwordFile, 'utf8')).trim(), user!.passwordHash!));
    assert.deepEqual(await readdir(join(passwordFile, '..')), ['bootstrap-password']);
    assert.equal(lines.filter((line) => line.includes('bootstrap admin created')).length, 1);
  });
});
