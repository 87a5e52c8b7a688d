/**
 * `npm run dev` is the newcomer's walkthrough: it must start on a machine without a real
 * cluster and print commands that work as printed. The test runs scripts/dev.ts as npm
 * does (node with tsx), runs the printed commands with bash (real curl, real kubectl),
 * and checks that kubectl lists the sample cluster's pods; then stops the script.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Holds 127.0.0.1:9464 (`npm start`'s metrics port) for the test, as a running `npm start`
 * would. When something else holds it already, that serves as well.
 */
async function holdDefaultMetricsPort(): Promise<() => Promise<void>> {
  const server = createServer();
  const bound = await new Promise<boolean>((done, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? done(false) : fail(error)));
    server.listen(9464, '127.0.0.1', () => done(true));
  });
  return async () => {
    if (bound) await new Promise<void>((done) => server.close(() => done()));
  };
}

test('npm run dev starts the proxy with a sample cluster and prints commands that end in a working kubectl get pods, beside a running npm start', async (t) => {
  t.after(await holdDefaultMetricsPort());
  const script = spawn(process.execPath, ['--import', 'tsx', join(repositoryRoot, 'scripts', 'dev.ts')], {
    cwd: repositoryRoot,
    env: { ...process.env, KUBEGATE_DEV_LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let errors = '';
  script.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
  try {
    await new Promise<void>((done, fail) => {
      script.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('Ctrl-C to stop.')) done();
      });
      script.once('exit', (code) => fail(new Error(`scripts/dev.ts exited (${code}) before printing its commands: ${output}${errors}`)));
    });
    const metricsUrl = /^Metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m.exec(output)?.[1];
    assert.ok(metricsUrl, `the metrics address is printed: ${output}`);
    assert.notEqual(new URL(metricsUrl).port, '9464', 'the dev proxy keeps off the metrics port of npm start');
    assert.match(await (await fetch(metricsUrl)).text(), /^kubegate_/m);
    const commands = output.split('Try, in another shell:\n')[1]?.split('\n\n')[0] ?? '';
    assert.match(commands, /kubectl --kubeconfig dev\.kubeconfig get pods$/);
    const dataDir = /^cd (.+)$/m.exec(commands)?.[1];
    assert.ok(dataDir && existsSync(dataDir));
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', commands], { timeout: 60_000 });
    assert.match(stdout, /^NAME\s+READY\s+STATUS/m);
    assert.match(stdout, /^web-0\s/m);
    assert.match(stdout, /^web-1\s/m);

    // The sample cluster is a whole one: the sync's first pass (at start) writes its role binding without an error.
    const api = createApiClient(/^P=(.+)$/m.exec(commands)![1]!, readFileSync(join(dataDir, 'ca.pem'), 'utf8'));
    const admin = await api.login('admin', /Admin: admin \/ (\S+)/.exec(output)![1]!);
    let sync: { ok: boolean; lastAttemptAt: string | null; error?: string } | undefined;
    await eventually(async () => (sync = (await api.request('GET', '/v1/clusters/dev', { token: admin })).json.sync)?.lastAttemptAt != null, 10_000, 'the first sync of dev');
    assert.equal(sync?.ok, true, sync?.error);
    script.kill('SIGTERM');
    const [code] = await once(script, 'exit');
    assert.equal(code, 0, errors);
    assert.equal(existsSync(dataDir), false, 'the data dir (and the kubeconfig with a live token in it) is removed');
  } finally {
    if (script.exitCode === null) script.kill('SIGKILL');
  }
});
