/**
 * Issue #15.5: one proxy per SQLite data dir. The lock is the operating system's, so it is
 * gone when its process dies, however it dies (kill -9 is shown with a real child process).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isKubegateError } from '../../../src/errors.js';
import { lockDataDir } from '../../../src/store/data-dir-lock.js';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('lockDataDir', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-lock-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second holder with DATA_DIR_LOCKED naming the directory and the holding process, and lets one in after release', () => {
    const first = lockDataDir(dir);
    assert.throws(
      () => lockDataDir(dir),
      (error: unknown) => {
        assert.ok(isKubegateError(error, 'DATA_DIR_LOCKED'), String(error));
        assert.equal(error.field, 'dataDir');
        assert.ok(error.message.includes(dir), error.message);
        assert.ok(error.message.includes(`pid ${process.pid}`), error.message);
        return true;
      },
    );
    first.release();
    first.release();
    lockDataDir(dir).release();
  });

  it('is free again once its holder was killed with SIGKILL, because a lock must never outlive its process', async () => {
    const script = `
      const { lockDataDir } = await import(${JSON.stringify(join(repositoryRoot, 'src/store/data-dir-lock.ts'))});
      lockDataDir(process.argv[1]);
      process.stdout.write('locked\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    assert.equal(line, 'locked');
    assert.throws(() => lockDataDir(dir), (error: unknown) => isKubegateError(error, 'DATA_DIR_LOCKED') && error.message.includes(`pid ${child.pid}`));
    child.kill('SIGKILL');
    await exited;
    lockDataDir(dir).release();
  });
});
