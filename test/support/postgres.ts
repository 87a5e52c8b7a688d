/**
 * A real, throwaway PostgreSQL server for tests.
 *
 * `initdb` into a fresh temporary directory, then `pg_ctl start` with a unix socket in that
 * directory and no TCP listener (no port to race for), fsync off. PostgreSQL refuses to run
 * as root, so when the tests run as root (CI) every server command runs as the unprivileged
 * user `kubegate-test` (created by scripts/setup-postgres.sh) through `runuser`, and the
 * directory is handed to that user. A developer running as themselves needs nothing more
 * than the server binaries. Stop with `stop()`; a server still running when the test
 * process exits is stopped then too.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const execFileAsync = promisify(execFile);

/** The unprivileged user scripts/setup-postgres.sh creates for running PostgreSQL as root. */
export const POSTGRES_TEST_USER = 'kubegate-test';
const SUPERUSER = 'kubegate';
const DEFAULT_DATABASE = 'kubegate';

export interface StartPostgresOptions {
  /** Require this password (scram-sha-256) instead of trusting every local connection; urls carry it. */
  readonly password?: string;
}

export interface TestPostgres {
  /** Connection string of the (empty) database `kubegate`. */
  readonly url: string;
  /** The directory holding the server's unix socket. */
  readonly socketDir: string;
  /** The superuser every url connects as. */
  readonly user: string;
  /** Creates another empty database and returns its connection string. */
  createDatabase(): Promise<string>;
  /** Stops the server at once (`-m immediate`) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const binDir = findPostgresBinDir();
  const runAs = process.getuid?.() === 0 ? lookUpTestUser() : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'kubegate-pg-'));
  if (runAs !== undefined) chownSync(dir, runAs.uid, runAs.gid);
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');

  const run = async (program: string, args: string[]): Promise<void> => {
    const [file, fileArgs] = runAs === undefined ? [join(binDir, program), args] : ['runuser', ['-u', POSTGRES_TEST_USER, '--', join(binDir, program), ...args]];
    try {
      await execFileAsync(file, fileArgs, { cwd: dir, timeout: 60_000 });
    } catch (error) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
      throw new Error(`${program} failed: ${(error as Error).message}\n${log}`, { cause: error });
    }
  };

  let running = false;
  const stopNow = (): void => {
    if (running) {
      running = false;
      try {
        const stopArgs = ['-D', dataDir, '-m', 'immediate', '-w', 'stop'];
        if (runAs === undefined) execFileSync(join(binDir, 'pg_ctl'), stopArgs, { cwd: dir, stdio: 'ignore' });
        else execFileSync('runuser', ['-u', POSTGRES_TEST_USER, '--', join(binDir, 'pg_ctl'), ...stopArgs], { cwd: dir, stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);

  const password = options.password === undefined ? '' : `&password=${encodeURIComponent(options.password)}`;
  const urlOf = (database: string): string => `postgresql:///${database}?host=${encodeURIComponent(dir)}&user=${SUPERUSER}${password}`;
  const createDatabase = async (name: string): Promise<string> => {
    const client = new pg.Client({ connectionString: urlOf('postgres') });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${name}`);
    } finally {
      await client.end();
    }
    return urlOf(name);
  };
  let databases = 0;

  try {
    let auth = ['--auth=trust'];
    if (options.password !== undefined) {
      const passwordFile = join(dir, 'password');
      writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
      if (runAs !== undefined) chownSync(passwordFile, runAs.uid, runAs.gid);
      auth = ['--auth=scram-sha-256', `--pwfile=${passwordFile}`];
    }
    await run('initdb', ['-D', dataDir, '-U', SUPERUSER, ...auth, '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    const serverOptions = [
      `-k '${dir}'`,
      "-c listen_addresses=''",
      '-F',
      '-c shared_buffers=16MB',
      '-c max_connections=100',
      '-c full_page_writes=off',
      '-c synchronous_commit=off',
    ].join(' ');
    running = true;
    await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverOptions, 'start']);
    await createDatabase(DEFAULT_DATABASE);
  } catch (error) {
    process.removeListener('exit', stopNow);
    stopNow();
    throw error;
  }

  return {
    url: urlOf(DEFAULT_DATABASE),
    socketDir: dir,
    user: SUPERUSER,
    createDatabase: () => createDatabase(`test_${(databases += 1)}`),
    async stop(): Promise<void> {
      process.removeListener('exit', stopNow);
      stopNow();
    },
  };
}

/** The directory of `initdb` and `pg_ctl`: from PATH, else the newest /usr/lib/postgresql/<v>/bin. */
function findPostgresBinDir(): string {
  const candidates = (process.env.PATH ?? '').split(delimiter).filter((entry) => entry.length > 0);
  const versioned = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .filter((version) => /^\d+(\.\d+)?$/.test(version))
        .sort((a, b) => Number(b) - Number(a))
        .map((version) => join('/usr/lib/postgresql', version, 'bin'))
    : [];
  for (const dir of [...candidates, ...versioned]) {
    const initdb = join(dir, 'initdb');
    if (existsSync(initdb) && existsSync(join(dir, 'pg_ctl'))) {
      // Symlinks such as /usr/local/bin/initdb: use the real directory, where postgres lives too.
      return dirname(realpathSync(initdb));
    }
  }
  throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup-postgres.sh');
}

function lookUpTestUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', POSTGRES_TEST_USER], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', POSTGRES_TEST_USER], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch (error) {
    throw new Error(`running as root needs the user ${POSTGRES_TEST_USER}: run scripts/setup-postgres.sh`, { cause: error });
  }
}
