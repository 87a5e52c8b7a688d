/**
 * `npm run bench [-- --quick] [--workers N] [--out DIR] [--only a,b] [--cpu-prof]`: kubegate
 * side by side with the direct path and peer proxies, everything on loopback and started
 * inside the run (see BENCHMARKS.md for what each scenario measures and the last results).
 *
 * --quick runs every scenario briefly (smaller counts and sizes, well under two minutes):
 * CI runs it (test/integration/bench-smoke.test.ts) so the harness never rots; its figures
 * are not meant to be compared. Prints a table and writes `bench-<mode>.json` and
 * `bench-<mode>.txt` to the output directory (default bench/results/). --cpu-prof runs the
 * kubegate processes under node's --cpu-prof and leaves their profiles in DIR/profiles.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopAllChildren } from './processes.js';
import { checkTargets, formatResults } from './report.js';
import type { BenchResults, Machine, WebhookResult } from './report.js';
import { execSessions, firstRequest, heldWatches, largeList, revocation, smallGet } from './scenarios.js';
import type { BenchSettings } from './scenarios.js';
import { createTls, directTarget, startBareForwarder, startKubegate, startNginx, startUpstream } from './targets.js';
import type { Target } from './targets.js';
import { webhookScenario } from './webhook.js';

const SCENARIOS = ['small', 'large', 'watches', 'exec', 'first-request', 'revocation', 'webhook'] as const;
type Scenario = (typeof SCENARIOS)[number];
const MB = 1024 * 1024;

function settingsFor(quick: boolean, workDir: string): BenchSettings {
  return quick
    ? {
        quick,
        workDir,
        smallSeconds: 1,
        rounds: 1,
        concurrencies: [1, 16, 64],
        largeSizes: [2 * MB],
        largeSeconds: 1,
        watchCounts: [100],
        idleConnections: 200,
        events: 2,
        eventIntervalMs: 200,
        execSessions: 5,
        execEchoes: 5,
        firstRequestTokens: 5,
        revocationRounds: 2,
        webhookSeconds: 1,
      }
    : {
        quick,
        workDir,
        smallSeconds: 5,
        rounds: 3,
        concurrencies: [1, 16, 64],
        largeSizes: [10 * MB, 100 * MB],
        largeSeconds: 8,
        watchCounts: [1000, 8000],
        idleConnections: 8000,
        events: 5,
        eventIntervalMs: 500,
        execSessions: 200,
        execEchoes: 20,
        firstRequestTokens: 200,
        revocationRounds: 10,
        webhookSeconds: 5,
      };
}

/** The first line a tool prints about its version (nginx and wrk print it on stderr). */
function versionOf(command: string, args: readonly string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  return result.error === undefined ? (text.split('\n')[0] ?? '') : `${command} not found`;
}

function describeMachine(): Machine {
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    nginx: versionOf('/usr/sbin/nginx', ['-v']).replace(/^nginx version: /, ''),
    wrk: versionOf('wrk', ['-v']).replace(/ Copyright.*$/, ''),
    kernel: `Linux ${release()}`,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      workers: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
    },
  });
  const quick = values.quick ?? false;
  const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new TypeError('--workers must be a whole number from 1 to 64');
  const only = new Set((values.only ?? SCENARIOS.join(',')).split(',').map((name) => name.trim()) as Scenario[]);
  for (const name of only) if (!SCENARIOS.includes(name)) throw new TypeError(`--only: unknown scenario ${name} (${SCENARIOS.join(', ')})`);
  const outDir = values.out ?? join(new URL('..', import.meta.url).pathname, 'bench/results');
  const startedAt = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'kubegate-bench-'));
  const settings = settingsFor(quick, workDir);
  const log = (message: string): void => {
    process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(0)}s] ${message}\n`);
  };

  const stop = (): void => {
    void stopAllChildren().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  try {
    const machine = describeMachine();
    log(`starting upstream and targets in ${workDir}`);
    const tls = await createTls(workDir);
    const upstream = await startUpstream(tls);
    const targets: Target[] = [directTarget(upstream)];
    targets.push(await startNginx(upstream, tls, workDir));
    targets.push(await startBareForwarder('http-proxy-3', upstream, tls));
    targets.push(await startBareForwarder('node-http', upstream, tls));
    const profileDir = values['cpu-prof'] === true ? join(outDir, 'profiles') : undefined;
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
    targets.push(await startKubegate(upstream, tls, workDir, 1, profileDir));
    if (workers > 1) targets.push(await startKubegate(upstream, tls, workDir, workers, profileDir));
    targets.push(await startKubegate(upstream, tls, workDir, 1, profileDir, 'agent'));
    const kubegates = targets.filter((target) => target.kind === 'kubegate');
    log(`targets: ${targets.map((target) => target.name).join(', ')}`);

    const run = async <T>(name: Scenario, empty: T, body: () => Promise<T>): Promise<T> => {
      if (!only.has(name)) return empty;
      log(`scenario ${name}`);
      return body();
    };
    const small = await run('small', [], () => smallGet(targets, settings));
    const large = await run('large', [], () => largeList(targets, settings));
    const held = await run('watches', { watches: [], idle: [] }, () => heldWatches(targets, upstream, tls, settings));
    const exec = await run('exec', [], () => execSessions(targets, tls, settings));
    const first = await run('first-request', [], () => firstRequest(kubegates, tls, settings));
    const revoked = await run('revocation', [], () => revocation(kubegates, tls, settings));
    for (const target of targets) await target.stop();
    const webhook = await run<WebhookResult>('webhook', { status: 'pending', reason: 'not selected (--only)' }, () => webhookScenario(tls, settings, log));

    const partial = {
      mode: quick ? ('quick' as const) : ('full' as const),
      machine,
      settings: { ...settings, workDir: undefined, workers },
      targets: targets.map((target) => target.name),
      small,
      large,
      watches: held.watches,
      idle: held.idle,
      exec,
      firstRequest: first,
      revocation: revoked,
      webhook,
      durationSeconds: (Date.now() - startedAt) / 1000,
    };
    const results: BenchResults = { ...partial, targetsCheck: checkTargets(partial) };
    const text = formatResults(results);
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, `bench-${results.mode}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(outDir, `bench-${results.mode}.txt`), `${text}\n`);
    process.stdout.write(`${text}\n\nwritten: ${join(outDir, `bench-${results.mode}.json`)}\n`);
  } finally {
    await stopAllChildren();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch(async (error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllChildren();
  process.exitCode = 1;
});
