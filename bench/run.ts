/**
 * `npm run bench [-- --quick | --smoke] [--workers N] [--out DIR] [--only a,b] [--cpu-prof]`:
 * kubegate side by side with the direct path and peer proxies, everything on loopback and
 * started inside the run (see BENCHMARKS.md for what each scenario measures and the last results).
 *
 * --quick runs every scenario briefly (smaller counts and sizes, a few minutes); its figures
 * are rough. --smoke runs every scenario against every target at the smallest size that still
 * produces each figure, with the targets measured at the same time rather than in turn (about
 * a minute): CI runs it (test/integration/bench-smoke.test.ts) so the harness never rots; its
 * figures mean nothing. Targets start side by side in every mode. Prints a table and writes `bench-<mode>.json` and
 * `bench-<mode>.txt` to the output directory (default bench/results/). --cpu-prof runs the
 * kubegate processes under node's --cpu-prof and leaves their profiles in DIR/profiles.
 * --targets a,b,… starts and measures only those rows (names as in the table; e.g. to find
 * which company a figure of one target needs, BENCHMARKS.md 2026-12-05).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopAllChildren } from './processes.js';
import { checkTargets, formatResults } from './report.js';
import type { BenchResults, Machine, WebhookResult } from './report.js';
import { execSessions, firstRequest, heldWatches, idleConnections, largeList, revocation, smallGet } from './scenarios.js';
import type { BenchSettings, FreshTarget } from './scenarios.js';
import { createTls, directTarget, kubegateEntry, nativeCoreDeciderEntry, startBareForwarder, startGoReverseProxy, startKubegate, startNativeCore, startNginx, startUpstream } from './targets.js';
import type { Target } from './targets.js';
import { webhookScenario } from './webhook.js';

const SCENARIOS = ['idle', 'small', 'large', 'watches', 'exec', 'first-request', 'revocation', 'webhook'] as const;
type Scenario = (typeof SCENARIOS)[number];
const MB = 1024 * 1024;

type Mode = 'smoke' | 'quick' | 'full';

function settingsFor(mode: Mode, workDir: string): BenchSettings {
  if (mode === 'smoke') {
    return {
      quick: true,
      parallel: true,
      workDir,
      smallSeconds: 1,
      rounds: 1,
      concurrencies: [1, 16, 64],
      largeSizes: [MB],
      largeSeconds: 1,
      watchCounts: [20],
      idleConnections: 20,
      idleRounds: 1,
      events: 1,
      eventIntervalMs: 100,
      execSessions: 2,
      execEchoes: 2,
      firstRequestTokens: 2,
      revocationRounds: 1,
      webhookSeconds: 1,
      webhookSha3Tokens: 500,
      webhookScryptTokens: 2,
    };
  }
  return mode === 'quick'
    ? {
        quick: true,
        parallel: false,
        workDir,
        smallSeconds: 1,
        rounds: 1,
        concurrencies: [1, 16, 64],
        largeSizes: [2 * MB],
        largeSeconds: 1,
        watchCounts: [100],
        idleConnections: 200,
        idleRounds: 2,
        events: 2,
        eventIntervalMs: 200,
        execSessions: 5,
        execEchoes: 5,
        firstRequestTokens: 5,
        revocationRounds: 2,
        webhookSeconds: 1,
        webhookSha3Tokens: 5_000,
        webhookScryptTokens: 8,
      }
    : {
        quick: false,
        parallel: false,
        workDir,
        smallSeconds: 5,
        rounds: 3,
        concurrencies: [1, 16, 64],
        largeSizes: [10 * MB, 100 * MB],
        largeSeconds: 8,
        watchCounts: [1000, 8000],
        idleConnections: 8000,
        idleRounds: 3,
        events: 5,
        eventIntervalMs: 500,
        execSessions: 200,
        execEchoes: 20,
        firstRequestTokens: 200,
        revocationRounds: 10,
        webhookSeconds: 5,
        webhookSha3Tokens: 30_000,
        webhookScryptTokens: 64,
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
    go: versionOf('go', ['version']).replace(/^go version /, ''),
    kernel: `Linux ${release()}`,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      workers: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      targets: { type: 'string' },
    },
  });
  if (values.quick === true && values.smoke === true) throw new TypeError('--quick and --smoke: pick one');
  const mode: Mode = values.smoke === true ? 'smoke' : values.quick === true ? 'quick' : 'full';
  const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new TypeError('--workers must be a whole number from 1 to 64');
  const only = new Set((values.only ?? SCENARIOS.join(',')).split(',').map((name) => name.trim()) as Scenario[]);
  for (const name of only) if (!SCENARIOS.includes(name)) throw new TypeError(`--only: unknown scenario ${name} (${SCENARIOS.join(', ')})`);
  const outDir = values.out ?? join(new URL('..', import.meta.url).pathname, 'bench/results');
  const startedAt = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'kubegate-bench-'));
  const settings = settingsFor(mode, workDir);
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
    // kubegate is compiled before any process starts: the build blocks this process, and a
    // child started during it would miss its ready deadline on a loaded machine.
    log('building kubegate and the native-core decider');
    kubegateEntry();
    nativeCoreDeciderEntry();
    log(`starting upstream and targets in ${workDir}`);
    const tls = await createTls(workDir);
    const upstream = await startUpstream(tls);
    const profileDir = values['cpu-prof'] === true ? join(outDir, 'profiles') : undefined;
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
    // Started side by side (the order of the list is the order of the rows), each into `dir`.
    const starters: [name: string, start: (dir: string) => Target | Promise<Target>][] = [
      ['direct', () => directTarget(upstream)],
      ['nginx', (dir) => startNginx(upstream, tls, dir)],
      ['http-proxy-3', () => startBareForwarder('http-proxy-3', upstream, tls)],
      ['node-http', () => startBareForwarder('node-http', upstream, tls)],
      ['go-reverseproxy', (dir) => startGoReverseProxy(upstream, tls, dir)],
      ['native-core', (dir) => startNativeCore(upstream, tls, dir)],
      ['kubegate', (dir) => startKubegate(upstream, tls, dir, { workers: 1, cpuProfileDir: profileDir })],
      ...(workers > 1 ? [[`kubegate-w${workers}`, (dir: string) => startKubegate(upstream, tls, dir, { workers, cpuProfileDir: profileDir })] as [string, (dir: string) => Promise<Target>]] : []),
      ['kubegate-agent', (dir) => startKubegate(upstream, tls, dir, { workers: 1, cpuProfileDir: profileDir, via: 'agent' })],
    ];
    const chosen = values.targets === undefined ? undefined : new Set(values.targets.split(',').map((name) => name.trim()));
    for (const name of chosen ?? []) if (!starters.some(([known]) => known === name)) throw new TypeError(`--targets: unknown target ${name} (${starters.map(([known]) => known).join(', ')})`);
    const selected = starters.filter(([name]) => chosen === undefined || chosen.has(name));
    const targets: Target[] = await Promise.all(selected.map(async ([, start]) => start(workDir)));
    /** The idle scenario's: a process of its own for every round, in a directory of its own (proxies only: direct has no process). */
    const fresh: FreshTarget[] = selected
      .filter(([name]) => name !== 'direct')
      .map(([name, start]) => ({ name, start: async () => start(mkdtempSync(join(workDir, `idle-${name}-`))) }));
    const kubegates = targets.filter((target) => target.kind === 'kubegate');
    log(`targets: ${targets.map((target) => target.name).join(', ')}`);

    const run = async <T>(name: Scenario, empty: T, body: () => Promise<T>): Promise<T> => {
      if (!only.has(name)) return empty;
      log(`scenario ${name}`);
      return body();
    };
    /** In turn, or (smoke) every target at once, rows in the targets' order. */
    const each = async <T>(list: readonly Target[], scenario: (subset: readonly Target[]) => Promise<T[]>): Promise<T[]> =>
      settings.parallel ? (await Promise.all(list.map((target) => scenario([target])))).flat() : scenario(list);
    // Smoke: with every target loaded at once, a busy machine may not finish the TLS handshakes
    // of 64 connections, or a 1 MB answer, within the second; such a row is measured again on
    // its own, for 2, then 4, then 8 seconds, until it has its figure.
    const measureEmptyAgain = async <R extends { readonly target: string }>(rows: R[], empty: (row: R) => boolean, again: (target: Target, row: R, seconds: number) => Promise<R | undefined>): Promise<R[]> => {
      if (!settings.parallel) return rows;
      const measured: R[] = [];
      for (const row of rows) {
        const target = targets.find((candidate) => candidate.name === row.target);
        let current = row;
        for (let seconds = 2; empty(current) && target !== undefined && seconds <= 8; seconds *= 2) current = (await again(target, row, seconds)) ?? current;
        measured.push(current);
      }
      return measured;
    };
    const alone = { ...settings, parallel: false };
    const idle = await run('idle', [], async () =>
      settings.parallel ? (await Promise.all(fresh.map((entry) => idleConnections([entry], upstream, tls, settings)))).flat() : idleConnections(fresh, upstream, tls, settings),
    );
    const small = await run('small', [], async () =>
      measureEmptyAgain(
        await each(targets, (subset) => smallGet(subset, settings, upstream)),
        (row) => row.requestsPerSecond === 0,
        async (target, row, seconds) => (await smallGet([target], { ...alone, concurrencies: [row.connections], smallSeconds: seconds }, upstream))[0],
      ),
    );
    const large = await run('large', [], async () =>
      measureEmptyAgain(
        await each(targets, (subset) => largeList(subset, settings)),
        (row) => row.bytesPerSecond === 0,
        async (target, row, seconds) => (await largeList([target], { ...alone, largeSizes: [row.bytes], largeSeconds: seconds }))[0],
      ),
    );
    const watches = await run('watches', [], () => each(targets, (subset) => heldWatches(subset, upstream, tls, settings)));
    const exec = await run('exec', [], () => each(targets, (subset) => execSessions(subset, tls, settings)));
    const first = await run('first-request', [], () => each(kubegates, (subset) => firstRequest(subset, tls, settings)));
    const revoked = await run('revocation', [], () => each(kubegates, (subset) => revocation(subset, tls, settings)));
    for (const target of targets) await target.stop();
    const webhook = await run<WebhookResult>('webhook', { status: 'pending', reason: 'not selected (--only)' }, () => webhookScenario(tls, settings, log));

    const partial = {
      mode,
      machine,
      settings: { ...settings, workDir: undefined, workers },
      targets: targets.map((target) => target.name),
      small,
      large,
      watches,
      idle,
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
