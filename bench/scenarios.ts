/**
 * The scenarios. Each takes the running targets and returns rows of absolute figures; the
 * ratios (to direct, to bare http-proxy-3) are added by report.ts. Throughput scenarios use
 * wrk in its own process; held connections use watch-client.ts in its own process; exec,
 * first-request and revocation are driven from this process with node's https and ws (they
 * measure latency of single sessions, not throughput). Every loop is bounded in count and time.
 */
import https from 'node:https';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { cpuSeconds, rssBytes, sampleRss, startChild } from './processes.js';
import { CLUSTER_PATH, createUserToken } from './targets.js';
import type { Target, Tls, Upstream } from './targets.js';
import { heapUsedBytes, watchLoopStalls } from './loop-stalls.js';
import { readTcpCounters, slowestOf, tcpCountersDelta, upstreamRound } from './round-waits.js';
import type { RoundWaits } from './round-waits.js';
import { runWrk } from './wrk.js';
import type { WrkResult } from './wrk.js';

const REPO = new URL('..', import.meta.url).pathname;
const SMALL_PATH = `${CLUSTER_PATH}/api/v1/namespaces/default/pods`;

export interface BenchSettings {
  /** Short runs (--quick and --smoke): no warm-up rounds. */
  readonly quick: boolean;
  /** --smoke: every target measured at the same time (figures not comparable, only present). */
  readonly parallel: boolean;
  readonly workDir: string;
  readonly smallSeconds: number;
  readonly rounds: number;
  readonly concurrencies: readonly number[];
  readonly largeSizes: readonly number[];
  readonly largeSeconds: number;
  readonly watchCounts: readonly number[];
  readonly idleConnections: number;
  /** Rounds of the idle scenario (targets alternate; the row is the median slope). */
  readonly idleRounds: number;
  readonly events: number;
  readonly eventIntervalMs: number;
  readonly execSessions: number;
  readonly execEchoes: number;
  readonly firstRequestTokens: number;
  readonly revocationRounds: number;
  readonly webhookSeconds: number;
  readonly webhookSha3Tokens: number;
  readonly webhookScryptTokens: number;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function median<T>(items: readonly T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] as T;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- small GET -----------------------------------------------------------------------------

export interface SmallRow {
  readonly target: string;
  readonly connections: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  /** wrk's p99: after its coordinated-omission correction (loop-stalls.ts), not a percentile of the requests timed. */
  readonly p99Ms: number;
  /** The slowest request as served (the correction leaves the maximum alone). */
  readonly maxMs: number;
  /** kubegate: its longest event-loop delay during the round; null for the other targets. */
  readonly loopDelayMaxMs: number | null;
  /** kubegate: its garbage-collector pauses of 100 ms or more during the round; null for the other targets. */
  readonly gcPausesOver100Ms: number | null;
  readonly errors: number;
  /** CPU of the proxy process tree, in cores (1.0 = one core busy). */
  readonly proxyCores: number | null;
  readonly generatorCores: number;
  readonly rounds: number;
  /** Where this round's slowest requests waited (round-waits.ts). */
  readonly waits: RoundWaits;
  /** Every round of this target and concurrency (the row's figures are the median round's), in order. */
  readonly everyRound: readonly RoundOfSmallGet[];
}

/** One small-GET round's latency figures and waits. */
export interface RoundOfSmallGet {
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly loopDelayMaxMs: number | null;
  readonly waits: RoundWaits;
  /** The 1-second warm-up just before the round (full runs; null in quick and smoke runs): its slowest request and where it waited. */
  readonly warmUp: { readonly maxMs: number; readonly loopDelayMaxMs: number | null; readonly waits: RoundWaits } | null;
}

/** One wrk run against a target with what the harness reads around it (round-waits.ts, loop-stalls.ts). */
interface MeasuredRun {
  readonly result: WrkResult;
  readonly proxyCores: number | null;
  readonly loopDelayMaxMs: number | null;
  readonly gcPausesOver100Ms: number | null;
  readonly waits: RoundWaits;
}

async function measuredRun(target: Target, connections: number, durationSeconds: number, settings: BenchSettings, upstream: Pick<Upstream, 'round'> | undefined): Promise<MeasuredRun> {
  const stallsOfRound = target.kubegate === undefined ? undefined : await watchLoopStalls(target.kubegate.metricsUrl);
  const upstreamBefore = await upstream?.round();
  const tcpBefore = readTcpCounters();
  const startedAt = Date.now();
  const cpuBefore = target.pid === undefined ? 0 : cpuSeconds(target.pid);
  const result = await runWrk({ url: `${target.origin}${SMALL_PATH}`, connections, durationSeconds, headers: target.headers, workDir: settings.workDir });
  const proxyCores = target.pid === undefined ? null : (cpuSeconds(target.pid) - cpuBefore) / result.durationSeconds;
  const endedAt = Date.now();
  const tcpAfter = readTcpCounters();
  const upstreamAfter = upstreamBefore === undefined ? undefined : await upstream?.round();
  const stalls = await stallsOfRound?.();
  const slow = target.kubegate?.slowRequests.between(startedAt, endedAt);
  const slowest = slow === undefined ? null : slowestOf(slow);
  return {
    result,
    proxyCores,
    loopDelayMaxMs: stalls?.loopDelayMaxMs ?? null,
    gcPausesOver100Ms: stalls?.gcPausesOver100Ms ?? null,
    waits: {
      slowRequests: slow === undefined ? null : slow.length,
      slowest,
      slowestEndedAtMs: slowest === null ? null : slowest.time - startedAt,
      upstream: upstreamBefore === undefined || upstreamAfter === undefined ? null : upstreamRound(upstreamBefore, upstreamAfter),
      tcp: tcpBefore === undefined || tcpAfter === undefined ? null : tcpCountersDelta(tcpBefore, tcpAfter),
    },
  };
}

/**
 * Small GETs, the targets in turn, rounds interleaved. Every measured round (full runs) is
 * preceded by a 1-second warm-up of the same target at the same concurrency: a target's
 * rounds are minutes apart (the other targets' rounds come between), longer than the idle
 * timeout of some proxies' upstream pools (kubegate's and the Go peer's: 30 s) but not of
 * others' (nginx 60 s, the bare Node forwarders none), so without it some rows would start
 * each round by opening all their upstream connections and others not (BENCHMARKS.md,
 * 2026-12-05, "the ~200 ms wait"). The warm-up's figures are kept as `warmUp`: that cold
 * start, measured alike for every target. `upstream`: the bench upstream, whose own figures
 * per round the rows then carry (round-waits.ts).
 */
export async function smallGet(targets: readonly Target[], settings: BenchSettings, upstream?: Pick<Upstream, 'round'>): Promise<SmallRow[]> {
  const runs = new Map<string, { row: Omit<SmallRow, 'everyRound'>; round: RoundOfSmallGet }[]>();
  for (let round = 0; round < settings.rounds; round++) {
    for (const connections of settings.concurrencies) {
      for (const target of targets) {
        const warm = settings.quick ? undefined : await measuredRun(target, connections, 1, settings, upstream);
        const measured = await measuredRun(target, connections, settings.smallSeconds, settings, upstream);
        const { result, waits } = measured;
        const key = `${target.name}/${connections}`;
        const list = runs.get(key) ?? [];
        list.push({
          row: {
            target: target.name,
            connections,
            requestsPerSecond: result.requestsPerSecond,
            p50Ms: result.p50Ms,
            p99Ms: result.p99Ms,
            maxMs: result.maxMs,
            loopDelayMaxMs: measured.loopDelayMaxMs,
            gcPausesOver100Ms: measured.gcPausesOver100Ms,
            errors: result.errors,
            proxyCores: measured.proxyCores,
            generatorCores: result.generatorCores,
            rounds: settings.rounds,
            waits,
          },
          round: {
            requestsPerSecond: result.requestsPerSecond,
            p99Ms: result.p99Ms,
            maxMs: result.maxMs,
            loopDelayMaxMs: measured.loopDelayMaxMs,
            waits,
            warmUp: warm === undefined ? null : { maxMs: warm.result.maxMs, loopDelayMaxMs: warm.loopDelayMaxMs, waits: warm.waits },
          },
        });
        runs.set(key, list);
      }
    }
  }
  return [...runs.values()].map((list) => ({ ...median(list, (entry) => entry.row.requestsPerSecond).row, everyRound: list.map((entry) => entry.round) }));
}

// --- large lists ---------------------------------------------------------------------------

export interface LargeRow {
  readonly target: string;
  readonly bytes: number;
  readonly bytesPerSecond: number;
  readonly requests: number;
  readonly errors: number;
  /** Peak RSS of the proxy during the run minus RSS before it; null for direct. */
  readonly peakRssGrowthBytes: number | null;
  readonly peakRssBytes: number | null;
  readonly generatorCores: number;
}

export async function largeList(targets: readonly Target[], settings: BenchSettings): Promise<LargeRow[]> {
  const rows: LargeRow[] = [];
  for (const bytes of settings.largeSizes) {
    for (const target of targets) {
      const url = `${target.origin}${CLUSTER_PATH}/api/v1/pods?size=${bytes}`;
      // Warm-up: the upstream builds the list once; the proxy's buffers reach their steady size.
      if (!settings.quick) await runWrk({ url, connections: 1, durationSeconds: 1, headers: target.headers, workDir: settings.workDir, timeoutSeconds: 30 });
      const sampler = target.pid === undefined ? undefined : sampleRss(target.pid);
      const result = await runWrk({ url, connections: 4, durationSeconds: settings.largeSeconds, headers: target.headers, workDir: settings.workDir, timeoutSeconds: 30 });
      const memory = sampler?.stop();
      rows.push({
        target: target.name,
        bytes,
        bytesPerSecond: result.bytesPerSecond,
        requests: result.requests,
        errors: result.errors,
        peakRssGrowthBytes: memory === undefined ? null : memory.peakBytes - memory.startBytes,
        peakRssBytes: memory === undefined ? null : memory.peakBytes,
        generatorCores: result.generatorCores,
      });
    }
  }
  return rows;
}

// --- held watches and idle connections -------------------------------------------------------

export interface WatchRow {
  readonly target: string;
  readonly watches: number;
  readonly opened: number;
  readonly failed: number;
  readonly openMs: number;
  readonly rssBeforeBytes: number | null;
  readonly rssHeldBytes: number | null;
  readonly perWatchBytes: number | null;
  readonly eventsExpected: number;
  readonly eventsReceived: number;
  readonly eventP50Ms: number;
  readonly eventP99Ms: number;
  /** Upstream watch requests still open 1 s after every client dropped its watch. */
  readonly upstreamOpenAfter1s: number;
  /** From the drop to the last upstream watch closed (polled every 100 ms, up to 15 s); null when some never closed. */
  readonly upstreamDrainMs: number | null;
}

export interface IdleRow {
  readonly target: string;
  /** Connections held at the last step of each round (`idleConnections`). */
  readonly connections: number;
  /** The fewest any round still held at its last step (a keep-alive timeout closes connections held too long). */
  readonly opened: number;
  /** Median over the rounds of the least-squares slope of settled RSS against connections held, bytes per connection. */
  readonly perConnectionBytes: number | null;
  /** Each round's slope, in round order (the spread the median is read with). */
  readonly roundSlopesBytes: readonly number[];
  /** Median over the rounds of the slope's standard error within its fit (how straight the steps lie). */
  readonly slopeStdErrorBytes: number | null;
  /** Median over the rounds of the fit's intercept above the RSS before the round: what the first connections cost once (TLS context, pools, lazily built code), not per connection. */
  readonly onceBytes: number | null;
  /** kubegate only: the same slope of its V8 heap in use (`nodejs_heap_size_used_bytes`), median over the rounds. */
  readonly heapPerConnectionBytes: number | null;
}

interface ClientReport {
  readonly phase: string;
  readonly [key: string]: unknown;
}

interface HeldConnections {
  readonly opened: ClientReport;
  /** Sends a command to the client and waits for its report of `phase`. */
  command(command: string, phase: string, timeoutMs: number): Promise<ClientReport>;
  stop(): Promise<void>;
}

async function holdConnections(target: Target, upstream: Upstream, tls: Tls, settings: BenchSettings, mode: 'watch' | 'idle', count: number): Promise<HeldConnections> {
  const options = {
    mode,
    origin: target.origin,
    path: CLUSTER_PATH,
    headers: target.headers,
    caPem: tls.caPem,
    count,
    openConcurrency: 32,
    upstreamOrigin: upstream.origin,
    client: target.name,
    events: settings.events,
    eventIntervalMs: settings.eventIntervalMs,
    eventTimeoutMs: 10_000,
    openTimeoutMs: 15_000,
  };
  const { child } = await startChild(`watch-client-${target.name}`, process.execPath, ['--import', 'tsx', join(REPO, 'bench/watch-client.ts'), JSON.stringify(options)], {
    cwd: REPO,
  });
  const reports: ClientReport[] = [];
  const waiters: { phase: string; resolve: (report: ClientReport) => void }[] = [];
  child.onLine((line) => {
    if (!line.startsWith('{')) return;
    const report = JSON.parse(line) as ClientReport;
    const index = waiters.findIndex((waiter) => waiter.phase === report.phase);
    if (index >= 0) waiters.splice(index, 1)[0]?.resolve(report);
    else reports.push(report);
  });
  const next = (phase: string, timeoutMs: number): Promise<ClientReport> => {
    const known = reports.findIndex((report) => report.phase === phase);
    if (known >= 0) return Promise.resolve(reports.splice(known, 1)[0] as ClientReport);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${child.name}: no ${phase} report in time ${child.stderrTail()}`)), timeoutMs);
      waiters.push({
        phase,
        resolve: (report) => {
          clearTimeout(timer);
          resolve(report);
        },
      });
    });
  };
  try {
    const opened = await next('opened', 240_000);
    return {
      opened,
      command(command, phase, timeoutMs) {
        const answer = next(phase, timeoutMs);
        child.send(command);
        return answer;
      },
      stop: () => child.stop(),
    };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

function perItem(before: number | null, after: number | null, count: number): number | null {
  return before === null || after === null || count === 0 ? null : (after - before) / count;
}

export async function heldWatches(targets: readonly Target[], upstream: Upstream, tls: Tls, settings: BenchSettings): Promise<WatchRow[]> {
  const watches: WatchRow[] = [];
  for (const count of settings.watchCounts) {
    for (const target of targets) {
      await waitForUpstreamWatches(upstream, target.name, 10_000);
      const rssBefore = target.pid === undefined ? null : rssBytes(target.pid);
      const held = await holdConnections(target, upstream, tls, settings, 'watch', count);
      try {
        await sleep(settings.quick ? 300 : 1000);
        const rssHeld = target.pid === undefined ? null : rssBytes(target.pid);
        const opened = Number(held.opened.opened);
        const events = await held.command('emit', 'events', 60_000);
        await held.command('drop', 'dropped', 10_000);
        const droppedAt = Date.now();
        await sleep(1000);
        const upstreamOpenAfter1s = (await upstream.stats(target.name)).openWatches;
        const left = await waitForUpstreamWatches(upstream, target.name, 14_000);
        const upstreamDrainMs = left === 0 ? Date.now() - droppedAt : null;
        watches.push({
          target: target.name,
          watches: count,
          opened,
          failed: Number(held.opened.failed),
          openMs: Number(held.opened.ms),
          rssBeforeBytes: rssBefore,
          rssHeldBytes: rssHeld,
          perWatchBytes: perItem(rssBefore, rssHeld, opened),
          eventsExpected: Number(events.expected),
          eventsReceived: Number(events.received),
          eventP50Ms: Number(events.p50Ms),
          eventP99Ms: Number(events.p99Ms),
          upstreamOpenAfter1s,
          upstreamDrainMs,
        });
      } finally {
        await held.stop();
      }
    }
  }
  return watches;
}

// --- idle keep-alive connections ----------------------------------------------------------

/** Least-squares line through the points: its slope, the slope's standard error and the intercept. */
export function fitLine(points: readonly (readonly [x: number, y: number])[]): { slope: number; slopeStdError: number; intercept: number } {
  const n = points.length;
  const meanX = points.reduce((total, [x]) => total + x, 0) / n;
  const meanY = points.reduce((total, [, y]) => total + y, 0) / n;
  const sxx = points.reduce((total, [x]) => total + (x - meanX) ** 2, 0);
  const sxy = points.reduce((total, [x, y]) => total + (x - meanX) * (y - meanY), 0);
  const slope = sxy / sxx;
  const intercept = meanY - slope * meanX;
  const residuals = points.reduce((total, [x, y]) => total + (y - intercept - slope * x) ** 2, 0);
  return { slope, slopeStdError: n > 2 ? Math.sqrt(residuals / (n - 2) / sxx) : 0, intercept };
}

/** RSS once it stops moving: read until two reads apart differ by at most 64 KB or 0.2 % (bounded). */
async function settledRss(pid: number, quick: boolean): Promise<number> {
  const intervalMs = quick ? 100 : 500;
  const deadline = Date.now() + (quick ? 1_000 : 10_000);
  let last = rssBytes(pid);
  for (;;) {
    await sleep(intervalMs);
    const now = rssBytes(pid);
    if (Math.abs(now - last) <= Math.max(64 * 1024, last * 0.002) || Date.now() >= deadline) return now;
    last = now;
  }
}

const IDLE_STEPS = 4;

/**
 * Memory per idle keep-alive connection, as a slope: each round opens `idleConnections` in
 * four equal steps (one small GET each, then held), reads the target's RSS once it has
 * settled after each step, and fits a line through the four points; the row is the median
 * of the rounds' slopes with their spread. A slope is not moved by what the process grew and
 * freed before the round (one difference before/after is), and the first connections' one-off
 * costs land in the intercept (`onceBytes`). Every round measures a process started for it
 * (so that neither another scenario's nor an earlier round's freed memory, which a process
 * reuses without growing, hides the cost); the targets take turns within a round and the
 * order reverses every round.
 */
/** A target the idle scenario starts afresh for each of its rounds, and stops after it. */
export interface FreshTarget {
  readonly name: string;
  start(): Promise<Target>;
}

export async function idleConnections(fresh: readonly FreshTarget[], upstream: Upstream, tls: Tls, settings: BenchSettings): Promise<IdleRow[]> {
  const step = Math.max(1, Math.floor(settings.idleConnections / IDLE_STEPS));
  const rounds = new Map<string, { slope: number; slopeStdError: number; once: number; heapSlope: number | null; opened: number }[]>();
  for (let round = 0; round < settings.idleRounds; round++) {
    for (const entry of round % 2 === 0 ? fresh : [...fresh].reverse()) {
      const target = await entry.start();
      const rss: [number, number][] = [];
      const heap: [number, number][] = [];
      let baseBytes = 0;
      let opened = 0;
      try {
        const pid = target.pid;
        if (pid === undefined) throw new Error(`${target.name}: no process to measure`);
        const metricsUrl = target.kubegate?.metricsUrl;
        baseBytes = await settledRss(pid, settings.quick);
        const held = await holdConnections(target, upstream, tls, settings, 'idle', step);
        try {
          let report = held.opened;
          for (let i = 1; i <= IDLE_STEPS; i++) {
            if (i > 1) report = await held.command(`open ${step}`, 'opened', 240_000);
            // The connections still open, not those opened: a keep-alive timeout (kubegate's is
            // 65 s) may close the first steps' while a loaded machine opens the last.
            opened = Number(report.held);
            rss.push([opened, await settledRss(pid, settings.quick)]);
            if (metricsUrl !== undefined) heap.push([opened, await heapUsedBytes(metricsUrl)]);
          }
        } finally {
          await held.stop();
        }
      } finally {
        await target.stop();
      }
      const fit = fitLine(rss);
      const list = rounds.get(entry.name) ?? [];
      list.push({ slope: fit.slope, slopeStdError: fit.slopeStdError, once: fit.intercept - baseBytes, heapSlope: heap.length > 0 ? fitLine(heap).slope : null, opened });
      rounds.set(entry.name, list);
    }
  }
  return fresh.map((target) => {
    const list = rounds.get(target.name) ?? [];
    const middle = (values: readonly number[]): number | null => (values.length === 0 ? null : median(values, (value) => value));
    const heapSlopes = list.flatMap((entry) => (entry.heapSlope === null ? [] : [entry.heapSlope]));
    return {
      target: target.name,
      connections: step * IDLE_STEPS,
      opened: Math.min(...list.map((entry) => entry.opened)),
      perConnectionBytes: middle(list.map((entry) => entry.slope)),
      roundSlopesBytes: list.map((entry) => entry.slope),
      slopeStdErrorBytes: middle(list.map((entry) => entry.slopeStdError)),
      onceBytes: middle(list.map((entry) => entry.once)),
      heapPerConnectionBytes: middle(heapSlopes),
    };
  });
}

/** Waits until no watch of `client` is open upstream (bounded); returns how many still are. */
async function waitForUpstreamWatches(upstream: Upstream, client: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let open = (await upstream.stats(client)).openWatches;
  while (open > 0 && Date.now() < deadline) {
    await sleep(100);
    open = (await upstream.stats(client)).openWatches;
  }
  return open;
}

// --- exec upgrades ---------------------------------------------------------------------------

export interface ExecRow {
  readonly target: string;
  readonly protocol: 'spdy' | 'websocket';
  readonly sessions: number;
  readonly failed: number;
  readonly firstByteP50Ms: number;
  readonly firstByteP99Ms: number;
  readonly echoP50Ms: number;
  readonly echoP99Ms: number;
}

const EXEC_PATH = `${CLUSTER_PATH}/api/v1/namespaces/default/pods/web-0/exec?command=cat&stdin=true&stdout=true`;
const ECHO = Buffer.from('0123456789abcdef');

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** One exec session: the time to its first byte, then `echoes` round trips of 16 bytes. */
function spdySession(target: Target, tls: Tls, echoes: number): Promise<{ firstByteMs: number; echoMs: number[] }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const url = new URL(target.origin);
    const req = https.request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: EXEC_PATH,
      ca: tls.caPem,
      agent: false,
      headers: { ...target.headers, Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' },
      timeout: 10_000,
    });
    req.on('timeout', () => req.destroy(new Error('exec timeout')));
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      reject(new Error(`exec answered ${res.statusCode}`));
    });
    req.on('upgrade', (_res, socket, head) => {
      socket.on('error', reject);
      const echoMs: number[] = [];
      let firstByteMs = -1;
      let pending = 0;
      let sentAt = 0n;
      const sendEcho = (): void => {
        if (echoMs.length >= echoes) {
          socket.destroy();
          resolve({ firstByteMs, echoMs });
          return;
        }
        pending = ECHO.length;
        sentAt = process.hrtime.bigint();
        socket.write(ECHO);
      };
      const onData = (chunk: Buffer): void => {
        if (firstByteMs < 0) {
          firstByteMs = elapsedMs(start);
          chunk = chunk.subarray(1);
          sendEcho();
        }
        if (chunk.length === 0) return;
        pending -= chunk.length;
        if (pending <= 0) {
          echoMs.push(elapsedMs(sentAt));
          sendEcho();
        }
      };
      socket.on('data', onData);
      if (head.length > 0) onData(head);
    });
    req.end();
  });
}

function websocketSession(target: Target, tls: Tls, echoes: number): Promise<{ firstByteMs: number; echoMs: number[] }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const url = `${target.origin.replace('https:', 'wss:')}${EXEC_PATH}`;
    const ws = new WebSocket(url, ['v5.channel.k8s.io'], { ca: tls.caPem, headers: target.headers, perMessageDeflate: false, handshakeTimeout: 10_000 });
    const echoMs: number[] = [];
    let firstByteMs = -1;
    let sentAt = 0n;
    const sendEcho = (): void => {
      if (echoMs.length >= echoes) {
        ws.terminate();
        resolve({ firstByteMs, echoMs });
        return;
      }
      sentAt = process.hrtime.bigint();
      ws.send(ECHO);
    };
    ws.on('message', () => {
      if (firstByteMs < 0) firstByteMs = elapsedMs(start);
      else echoMs.push(elapsedMs(sentAt));
      sendEcho();
    });
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`websocket answered ${res.statusCode}`)));
  });
}

export async function execSessions(targets: readonly Target[], tls: Tls, settings: BenchSettings): Promise<ExecRow[]> {
  const rows: ExecRow[] = [];
  for (const protocol of ['spdy', 'websocket'] as const) {
    for (const target of targets) {
      const firstBytes: number[] = [];
      const echoes: number[] = [];
      let failed = 0;
      const deadline = Date.now() + 60_000;
      for (let i = 0; i < settings.execSessions && Date.now() < deadline; i++) {
        try {
          const session = await (protocol === 'spdy' ? spdySession : websocketSession)(target, tls, settings.execEchoes);
          firstBytes.push(session.firstByteMs);
          echoes.push(...session.echoMs);
        } catch {
          failed++;
        }
      }
      rows.push({
        target: target.name,
        protocol,
        sessions: firstBytes.length,
        failed,
        firstByteP50Ms: percentile(firstBytes, 50),
        firstByteP99Ms: percentile(firstBytes, 99),
        echoP50Ms: percentile(echoes, 50),
        echoP99Ms: percentile(echoes, 99),
      });
    }
  }
  return rows;
}

// --- kubegate only: first request, revocation ---------------------------------------------------

export interface FirstRequestRow {
  readonly target: string;
  readonly tokens: number;
  readonly uncachedP50Ms: number;
  readonly uncachedP99Ms: number;
  readonly cachedP50Ms: number;
  readonly cachedP99Ms: number;
  readonly failures: number;
}

function timedGet(target: Target, agent: https.Agent, token: string): Promise<{ status: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = https.request(`${target.origin}${SMALL_PATH}`, { agent, headers: { authorization: `Bearer ${token}` }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: elapsedMs(start) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export async function firstRequest(targets: readonly Target[], tls: Tls, settings: BenchSettings): Promise<FirstRequestRow[]> {
  const rows: FirstRequestRow[] = [];
  for (const target of targets) {
    const handle = target.kubegate;
    if (handle === undefined) continue;
    const tokens: string[] = [];
    for (let i = 0; i < settings.firstRequestTokens; i++) tokens.push((await createUserToken(handle)).token);
    const agent = new https.Agent({ ca: tls.caPem, keepAlive: true, maxSockets: 1 });
    const uncached: number[] = [];
    const cached: number[] = [];
    let failures = 0;
    await timedGet(target, agent, handle.userToken);
    for (const list of [uncached, cached]) {
      for (const token of tokens) {
        const answer = await timedGet(target, agent, token);
        if (answer.status === 200) list.push(answer.ms);
        else failures++;
      }
    }
    agent.destroy();
    rows.push({
      target: target.name,
      tokens: tokens.length,
      uncachedP50Ms: percentile(uncached, 50),
      uncachedP99Ms: percentile(uncached, 99),
      cachedP50Ms: percentile(cached, 50),
      cachedP99Ms: percentile(cached, 99),
      failures,
    });
  }
  return rows;
}

export interface RevocationRow {
  readonly target: string;
  readonly rounds: number;
  readonly lanes: number;
  /** From sending DELETE /v1/tokens/:name to the first 401 on any connection. */
  readonly firstP50Ms: number;
  readonly firstMaxMs: number;
  /** … to the moment every connection (every worker) had answered 401. */
  readonly allP50Ms: number;
  readonly allMaxMs: number;
  /** Requests answered 200 after the DELETE had been answered (should be 0). */
  readonly servedAfterDelete: number;
  /** Lanes that never saw a 401 within 5 s. */
  readonly unrevokedLanes: number;
}

export async function revocation(targets: readonly Target[], tls: Tls, settings: BenchSettings): Promise<RevocationRow[]> {
  const rows: RevocationRow[] = [];
  const LANES = 4;
  for (const target of targets) {
    const handle = target.kubegate;
    if (handle === undefined) continue;
    const first: number[] = [];
    const all: number[] = [];
    let servedAfterDelete = 0;
    let unrevokedLanes = 0;
    for (let round = 0; round < settings.revocationRounds; round++) {
      const { name, token } = await createUserToken(handle);
      const agents = Array.from({ length: LANES }, () => new https.Agent({ ca: tls.caPem, keepAlive: true, maxSockets: 1 }));
      for (const agent of agents) await timedGet(target, agent, token);
      let deleteSentAt = 0n;
      let deleteAnsweredAt = 0n;
      const lane = async (agent: https.Agent): Promise<number | undefined> => {
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline) {
          const answer = await timedGet(target, agent, token);
          const now = process.hrtime.bigint();
          if (answer.status === 401 && deleteSentAt !== 0n) return Number(now - deleteSentAt) / 1e6;
          // A request started after the DELETE was answered must not be served.
          if (answer.status === 200 && deleteAnsweredAt !== 0n && now - BigInt(Math.round(answer.ms * 1e6)) > deleteAnsweredAt) servedAfterDelete++;
        }
        return undefined;
      };
      const lanes = agents.map(lane);
      await sleep(100);
      deleteSentAt = process.hrtime.bigint();
      const deleted = await handle.api.request('DELETE', `/v1/tokens/${name}`, { token: handle.adminToken });
      deleteAnsweredAt = process.hrtime.bigint();
      if (deleted.status !== 204) throw new Error(`DELETE /v1/tokens answered ${deleted.status}: ${deleted.text}`);
      const results = await Promise.all(lanes);
      for (const agent of agents) agent.destroy();
      const seen = results.filter((ms): ms is number => ms !== undefined);
      unrevokedLanes += LANES - seen.length;
      if (seen.length > 0) first.push(Math.min(...seen));
      if (seen.length === LANES) all.push(Math.max(...seen));
    }
    rows.push({
      target: target.name,
      rounds: settings.revocationRounds,
      lanes: LANES,
      firstP50Ms: percentile(first, 50),
      firstMaxMs: Math.max(0, ...first),
      allP50Ms: percentile(all, 50),
      allMaxMs: Math.max(0, ...all),
      servedAfterDelete,
      unrevokedLanes,
    });
  }
  return rows;
}
