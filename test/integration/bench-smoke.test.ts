/**
 * `npm run bench -- --smoke` end to end, so that the harness never rots: every scenario runs
 * against every target (the targets measured at the same time, at the smallest sizes, about a
 * minute in all) and the JSON carries a figure for every row. No timing is asserted — figures
 * on a shared CI machine say nothing; BENCHMARKS.md records a full run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

const REPO = new URL('../..', import.meta.url).pathname;
const TARGETS = ['direct', 'nginx', 'http-proxy-3', 'node-http', 'go-reverseproxy', 'native-core', 'kubegate', 'kubegate-w2', 'kubegate-agent'];
const PROXIES = TARGETS.filter((target) => target !== 'direct');

describe('npm run bench -- --smoke', () => {
  let dir: string;
  let exitCode: number | null;
  let output = '';
  // The harness's own JSON: many shapes, read field by field below.
  let results: any;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-bench-smoke-'));
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench/run.ts'), '--smoke', '--workers', '2', '--out', dir], { cwd: REPO });
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const timer = setTimeout(() => child.kill('SIGTERM'), 420_000);
    exitCode = await new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    clearTimeout(timer);
    if (exitCode === 0) results = JSON.parse(await readFile(join(dir, 'bench-smoke.json'), 'utf8'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the harness exits 0 and prints the table, because CI must notice a scenario that broke', async () => {
    assert.equal(exitCode, 0, output.slice(-4000));
    assert.match(output, /## small GET/);
    assert.match(output, /## targets \(tracked, not asserted\)/);
    assert.match(await readFile(join(dir, 'bench-smoke.txt'), 'utf8'), /## revocation/);
  });

  test('the JSON has every section, with a row for every target where the scenario applies to it', () => {
    assert.deepEqual(results.targets, TARGETS);
    assert.equal(results.mode, 'smoke');
    for (const key of ['date', 'cpus', 'node', 'nginx', 'wrk', 'go']) assert.ok(results.machine[key], `machine.${key}`);
    for (const target of TARGETS) {
      for (const connections of [1, 16, 64]) {
        const row = results.small.find((r: any) => r.target === target && r.connections === connections);
        assert.ok(row?.requestsPerSecond > 0, `small ${target} c=${connections}`);
        assert.equal(row.errors, 0, `small ${target} c=${connections} answered errors`);
        assert.ok(row.maxMs >= row.p50Ms, `small ${target} c=${connections}: the slowest request as served`);
        // kubegate's own account of its stalls, from its /metrics; the other targets have none.
        if (target.startsWith('kubegate')) {
          assert.ok(row.loopDelayMaxMs > 0, `small ${target} c=${connections}: no event-loop delay read`);
          assert.ok(Number.isInteger(row.gcPausesOver100Ms) && row.gcPausesOver100Ms >= 0, `small ${target} c=${connections}: GC pauses`);
        } else {
          assert.equal(row.loopDelayMaxMs, null, `small ${target} c=${connections}`);
        }
      }
      assert.equal(results.large.filter((r: any) => r.target === target && r.bytesPerSecond > 0).length, 1, `large ${target}`);
      const watches = results.watches.filter((r: any) => r.target === target);
      assert.equal(watches.length, 1, `watches ${target}`);
      assert.ok(watches[0].eventsReceived > 0, `watches ${target}: no event delivered`);
      const exec = results.exec.filter((r: any) => r.target === target);
      assert.equal(exec.length, 2, `exec ${target}`);
      for (const row of exec) {
        // http-proxy-3's ws() passes WebSocket upgrades only (BENCHMARKS.md): its SPDY row is all failures.
        if (target === 'http-proxy-3' && row.protocol === 'spdy') continue;
        assert.ok(row.sessions > 0 && row.firstByteP50Ms > 0, `exec ${target} ${row.protocol}: no session measured`);
      }
    }
    for (const target of PROXIES) {
      assert.equal(typeof results.watches.find((r: any) => r.target === target)?.perWatchBytes, 'number', `memory per watch of ${target}`);
      const idle = results.idle.find((r: any) => r.target === target);
      assert.equal(typeof idle?.perConnectionBytes, 'number', `memory per idle connection of ${target}`);
      assert.equal(idle.roundSlopesBytes.length, 1, `${target}: one slope per idle round`);
      assert.equal(idle.opened, idle.connections, `${target}: every idle connection opened`);
      // kubegate's heap slope is read from its /metrics; the other targets expose none.
      assert.equal(typeof idle.heapPerConnectionBytes, target.startsWith('kubegate') ? 'number' : 'object', `${target}: heap per idle connection`);
    }
    assert.deepEqual(results.idle.map((r: any) => r.target), PROXIES, 'idle connections for every proxy (not direct)');
    assert.deepEqual(results.firstRequest.map((r: any) => r.target), ['kubegate', 'kubegate-w2', 'kubegate-agent']);
    assert.deepEqual(results.revocation.map((r: any) => r.target), ['kubegate', 'kubegate-w2', 'kubegate-agent']);
    assert.equal(results.webhook.status, 'measured', results.webhook.reason);
    for (const [name, hash, connections] of [['reference (bare node:http answer)', '–', 16], ['cached', '$3', 1], ['cached', '$3', 16], ['every token distinct', '$3', 16], ['every token distinct', '$1 scrypt', 16]]) {
      const row = results.webhook.rows.find((r: any) => r.case === name && r.hash === hash && r.connections === connections);
      assert.ok(row?.reviewsPerSecond > 0, `webhook ${name} ${hash} c=${connections}`);
      assert.equal(row.failures, 0, `webhook ${name} ${hash} c=${connections} failed reviews`);
    }
    assert.ok(results.targetsCheck.length > 0);
  });

  test('kubegate (and the native-core prototype in front of its decisions) holds every watch, delivers every event and closes every dropped watch upstream, because a leak is a bug even in a smoke run', () => {
    for (const row of results.watches.filter((r: any) => r.target.startsWith('kubegate') || r.target === 'native-core')) {
      assert.equal(row.opened, row.watches, `${row.target} opened`);
      assert.equal(row.eventsReceived, row.eventsExpected, `${row.target} events`);
      assert.equal(row.upstreamOpenAfter1s, 0, `${row.target} upstream watches left open`);
    }
    for (const row of results.revocation) assert.equal(row.unrevokedLanes, 0, `${row.target} kept serving a revoked token`);
  });
});
