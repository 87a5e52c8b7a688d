/**
 * `kubegate proxy` start-up refusals, through the real command: clear messages naming the
 * setting to fix, exit status 1, no stack trace, never a password.
 * - issue #16.4: PostgreSQL connection failures (a real PostgreSQL that requires a password);
 * - issue #15.5: a second proxy on the same SQLite data dir (also after kill -9 of the first);
 * - issue #15.7: a deleted secret.key while sealed secrets are stored.
 */
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { KubegateError, errorCatalog, type ErrorCode } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { get } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { openStoreWithKey } from '../../src/store/open.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PASSWORD = 'pg-Pa55word-never-shown';
const SECRET_KEY = randomBytes(32).toString('base64');

interface ProxyProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** Resolves with the exit code and everything written to stderr. */
  readonly exited: Promise<{ code: number | null; stderr: string }>;
  /** Resolves when the proxy logs that it is serving; rejects if it exits first. */
  readonly serving: Promise<void>;
  /** Stops it with SIGTERM once it has answered /healthz (so its signal handlers are in place); answers the exit code. */
  stop(): Promise<number | null>;
}

function startKubegateProxy(dataDir: string, env: Record<string, string> = {}): ProxyProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'src/cmd/main.ts'), 'proxy', '--listen', '127.0.0.1:0', '--metrics-listen', 'none', '--data-dir', dataDir, '--log-level', 'info'],
    { cwd: REPO, env: { ...process.env, KUBEGATE_WORKERS: undefined, KUBEGATE_BOOTSTRAP_PASSWORD: 'bootstrap-password', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr }));
  let url = '';
  const serving = new Promise<void>((resolveServing, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.includes('"msg":"kubegate proxy is serving"')) return;
      url = (JSON.parse(line) as { url: string }).url;
      resolveServing();
    });
    void exited.then(({ code }) => reject(new Error(`the proxy exited (${code}) before serving: ${stderr}`)));
  });
  serving.catch(() => undefined);
  return {
    child,
    exited,
    serving,
    async stop() {
      await serving;
      const [response] = (await once(get(`${url}/healthz`, { rejectUnauthorized: false }), 'response')) as [IncomingMessage];
      response.resume();
      assert.equal(response.statusCode, 200);
      child.kill('SIGTERM');
      return (await exited).code;
    },
  };
}

/** Runs the proxy and expects it to refuse to start; answers its one stderr line. */
async function refusal(dataDir: string, env: Record<string, string> = {}): Promise<string> {
  const { exited } = startKubegateProxy(dataDir, env);
  const { code, stderr } = await exited;
  // The exit code is the catalog's for the error printed (src/cli/exit-codes.ts): never 0.
  const printed = /^kubegate: ([A-Z_]+):/.exec(stderr)?.[1] as ErrorCode | undefined;
  assert.ok(printed !== undefined && printed in errorCatalog, stderr);
  assert.equal(code, exitCodeFor(new KubegateError(printed)), stderr);
  assert.doesNotMatch(stderr, /^\s+at /m, 'a stack trace was printed');
  assert.doesNotMatch(stderr, new RegExp(PASSWORD), 'the password was printed');
  return stderr.trim();
}

async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

describe('kubegate proxy start-up refusals', () => {
  let dir: string;
  let postgres: TestPostgres;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-startup-'));
    postgres = await startPostgres({ password: PASSWORD });
  });
  after(async () => {
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('on PostgreSQL (issue #16.4)', () => {
    const socketUrl = (database: string, password: string, extra = ''): string =>
      `postgresql:///${database}?host=${encodeURIComponent(postgres.socketDir)}&user=${postgres.user}&password=${encodeURIComponent(password)}${extra}`;
    const start = (url: string): Promise<string> => refusal(join(dir, 'pg-data'), { KUBEGATE_STORE_URL: url, KUBEGATE_SECRET_KEY: SECRET_KEY });

    it('says that the password of the user was refused, naming store.url, instead of "internal error"', async () => {
      const line = await start(socketUrl('kubegate', `${PASSWORD}-wrong`));
      assert.match(line, /^kubegate: CONFIG_INVALID: store\.url: PostgreSQL refused the password of user "kubegate": fix the user or password in store\.url/);
    });

    it('says which database does not exist', async () => {
      const line = await start(socketUrl('no_such_database', PASSWORD));
      assert.match(line, /^kubegate: CONFIG_INVALID: store\.url: database "no_such_database" does not exist/);
    });

    it('says that nothing accepts connections at the host and port, without the password in the URL', async () => {
      const port = await closedPort();
      const line = await start(`postgres://kubegate:${PASSWORD}@127.0.0.1:${port}/kubegate`);
      assert.match(line, new RegExp(`^kubegate: STORE_UNAVAILABLE: store\\.url: nothing accepts connections at "127\\.0\\.0\\.1:${port}" \\(connection refused\\)`));
    });

    it('says that the server offers no TLS when store.url asks for it', async () => {
      const line = await start(socketUrl('kubegate', PASSWORD, '&sslmode=verify-full'));
      assert.match(line, /^kubegate: CONFIG_INVALID: store\.url: PostgreSQL at ".*" does not offer TLS, but store\.url asks for it/);
    });

    it('starts with the right password, so the refusals above are about the URL and nothing else', async () => {
      const proxy = startKubegateProxy(join(dir, 'pg-data'), { KUBEGATE_STORE_URL: socketUrl('kubegate', PASSWORD), KUBEGATE_SECRET_KEY: SECRET_KEY });
      assert.equal(await proxy.stop(), 0);
    });
  });

  describe('on one SQLite data dir (issue #15.5)', () => {
    it('refuses a second proxy naming the data dir and the first one’s PID, and starts again after the first stopped or was killed with SIGKILL', async () => {
      const dataDir = join(dir, 'shared');
      const first = startKubegateProxy(dataDir);
      await first.serving;
      const line = await refusal(dataDir);
      assert.equal(
        line,
        `kubegate: DATA_DIR_LOCKED: dataDir: ${dataDir} is in use by another kubegate proxy (pid ${first.child.pid}): ` +
          'stop that one, or give this one another data dir (--data-dir, KUBEGATE_DATA_DIR)',
      );
      assert.equal(await first.stop(), 0);

      const second = startKubegateProxy(dataDir);
      await second.serving;
      second.child.kill('SIGKILL');
      await second.exited;

      const third = startKubegateProxy(dataDir);
      assert.equal(await third.stop(), 0);
    });
  });

  describe('with a deleted secret.key (issue #15.7)', () => {
    it('refuses to start while the store holds sealed secrets, says what to do, and writes no new key', async () => {
      const dataDir = join(dir, 'lost-key');
      const keyFile = join(dataDir, 'secret.key');
      const { store } = await openStoreWithKey({ type: 'sqlite', path: join(dataDir, 'kubegate.db') }, { file: keyFile });
      await store.createCluster({ id: 'prod', server: 'https://prod.example.org', credentials: { kind: 'token', token: 'cluster-token' } });
      await store.close();
      unlinkSync(keyFile);

      const line = await refusal(dataDir);
      assert.equal(
        line,
        `kubegate: SECRET_KEY_MISSING: the secret key file ${keyFile} is missing, but the store holds cluster credentials or provider settings sealed with it: ` +
          'restore the file from a backup (or set secretKey / KUBEGATE_SECRET_KEY to the same key), or start with an empty data dir',
      );
      assert.equal(existsSync(keyFile), false);
    });
  });
});
