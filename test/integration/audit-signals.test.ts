/**
 * `kubegate proxy` as a real process and its audit file under signals (issue #15 F): the
 * file is created 0600; SIGHUP (logrotate) reopens it, logs that it did, and the process
 * keeps serving; SIGTERM and SIGINT stop the process with every buffered audit line written.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';

const REPO = new URL('../..', import.meta.url).pathname;

interface ProxyProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  readonly caPem: string;
  readonly exited: Promise<number | null>;
  /** Resolves with the first log line whose `msg` is `message`; rejects if the process exits first. */
  logLine(message: string): Promise<Record<string, unknown>>;
}

async function startProxyProcess(dir: string, auditFile: string): Promise<ProxyProcess> {
  await mkdir(dir, { recursive: true });
  const configFile = join(dir, 'kubegate.yaml');
  await writeFile(configFile, [`audit: { enabled: true, file: ${auditFile} }`, 'metrics: { listen: none }'].join('\n'));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'src/cmd/main.ts'), 'proxy', '--config', configFile, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
    { cwd: REPO, env: { ...process.env, KUBEGATE_BOOTSTRAP_PASSWORD: 'signals-Admin-pass-1', KUBEGATE_WORKERS: undefined } },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const output: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (text: string) => output.push(text));
  createInterface({ input: child.stdout }).on('line', (line) => {
    output.push(line);
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const wake of waiters) wake();
  });
  function logLine(message: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = lines.find((line) => line['msg'] === message);
        if (found === undefined) return;
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      void exited.then((code) => {
        waiters.delete(check);
        reject(new Error(`the proxy exited (${code}) before logging "${message}": ${output.join('\n')}`));
      });
      check();
    });
  }
  const serving = await logLine('kubegate proxy is serving');
  const caPem = await readFile(join(dir, 'data', 'tls', 'ca.crt'), 'utf8');
  return { child, url: serving['url'] as string, caPem, exited, logLine };
}

/** An unauthenticated request to cluster `a`: refused with 401 and audited with its path. */
function auditedRequest(proxy: ProxyProcess, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${proxy.url}/k8s/clusters/a${path}`, { ca: proxy.caPem, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function auditPaths(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => (JSON.parse(line) as { path: string }).path);
}

describe('the audit file of a running kubegate proxy under signals', () => {
  let dir: string;
  const children: ChildProcessWithoutNullStreams[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-signals-'));
  });

  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  test('creates the file 0600, reopens it on SIGHUP and keeps serving, and writes every buffered line on SIGTERM', async () => {
    const auditFile = join(dir, 'hup', 'audit.log');
    const proxy = await startProxyProcess(join(dir, 'hup'), auditFile);
    children.push(proxy.child);
    for (let i = 0; i < 3; i++) assert.equal(await auditedRequest(proxy, `/api/before-rotation-${i}`), 401);

    await rename(auditFile, `${auditFile}.1`);
    proxy.child.kill('SIGHUP');
    const reopened = await proxy.logLine('signal received: files reopened');
    assert.equal(reopened['signal'], 'SIGHUP');
    assert.equal(await auditedRequest(proxy, '/api/after-rotation'), 401, 'the proxy still serves after SIGHUP');

    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    assert.deepEqual(await auditPaths(`${auditFile}.1`), ['/api/before-rotation-0', '/api/before-rotation-1', '/api/before-rotation-2']);
    assert.deepEqual(await auditPaths(auditFile), ['/api/after-rotation'], 'the line buffered at SIGTERM was written, to the new file');
    for (const file of [auditFile, `${auditFile}.1`]) assert.equal((await stat(file)).mode & 0o777, 0o600, file);
  });

  test('writes every buffered line when stopped with SIGINT, and with a second signal that skips the graceful stop', async () => {
    for (const signals of [['SIGINT'], ['SIGTERM', 'SIGTERM']] as const) {
      const name = signals.join('-');
      const auditFile = join(dir, name, 'audit.log');
      const proxy = await startProxyProcess(join(dir, name), auditFile);
      children.push(proxy.child);
      assert.equal(await auditedRequest(proxy, `/api/${name}`), 401);
      for (const signal of signals) proxy.child.kill(signal);
      const code = await proxy.exited;
      assert.ok(code === 0 || code === 143, `${name}: exit code ${code}`);
      assert.deepEqual(await auditPaths(auditFile), [`/api/${name}`], name);
    }
  });
});
