/**
 * The results: one JSON document (machine-readable, every figure), a plain-text table a
 * person can read at a glance (absolute figures, then ratios to direct and to bare
 * http-proxy-3), and the tracked targets with met / missed. Targets are never asserted:
 * a miss is reported, not failed.
 */
import { describeSlowest, SLOW_REQUEST_MS } from './round-waits.js';
import type { ExecRow, FirstRequestRow, IdleRow, LargeRow, RevocationRow, RoundOfSmallGet, SmallRow, WatchRow } from './scenarios.js';

export interface Machine {
  readonly date: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly nginx: string;
  readonly wrk: string;
  readonly go: string;
  readonly kernel: string;
}

export interface WebhookResult {
  readonly status: 'measured' | 'pending';
  readonly reason?: string;
  readonly rows?: readonly Record<string, unknown>[];
}

export interface BenchResults {
  readonly mode: 'smoke' | 'quick' | 'full';
  readonly machine: Machine;
  readonly settings: Record<string, unknown>;
  readonly targets: readonly string[];
  readonly small: readonly SmallRow[];
  readonly large: readonly LargeRow[];
  readonly watches: readonly WatchRow[];
  readonly idle: readonly IdleRow[];
  readonly exec: readonly ExecRow[];
  readonly firstRequest: readonly FirstRequestRow[];
  readonly revocation: readonly RevocationRow[];
  readonly webhook: WebhookResult;
  readonly targetsCheck: readonly TargetCheck[];
  readonly durationSeconds: number;
}

export interface TargetCheck {
  readonly target: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | null;
}

const MB = 1024 * 1024;
/** The Go peer's row name (bench/go-reverseproxy). */
const GO = 'go-reverseproxy';
/** The prototype of a native serving core in front of kubegate's decisions (bench/native-core). */
const NATIVE_CORE = 'native-core';

/** The rows of kubegate's data path: its own processes, and the native-core prototype. */
function isKubegatePath(target: string): boolean {
  return target.startsWith('kubegate') || target === NATIVE_CORE;
}

function fixed(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

function kilo(value: number): string {
  return value >= 10_000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(0);
}

/** Bytes as KB with one decimal. */
function kb(bytes: number): string {
  return fixed(bytes / 1024, 1);
}

function ratio(value: number, base: number | undefined): string {
  return base === undefined || base === 0 ? '–' : `${(value / base).toFixed(2)}×`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * The short table of where the slowest requests waited (round-waits.ts): per row, its round
 * with the slowest request as served (wrk's max). Runs recorded before these figures existed
 * have none: the table is left out.
 */
export function formatRoundWaits(small: readonly SmallRow[]): string[] {
  /** The row's round with the highest max, and its warm-up with the highest max (old runs: neither). */
  const extremes = (row: SmallRow): { worst: RoundOfSmallGet | undefined; coldest: RoundOfSmallGet['warmUp'] | undefined } => {
    let worst: RoundOfSmallGet | undefined;
    let coldest: RoundOfSmallGet['warmUp'] | undefined;
    for (const round of row.everyRound ?? []) {
      if (worst === undefined || round.maxMs > worst.maxMs) worst = round;
      if (round.warmUp !== null && (coldest === undefined || coldest === null || round.warmUp.maxMs > coldest.maxMs)) coldest = round.warmUp;
    }
    return { worst, coldest };
  };
  const rows = small.flatMap((row) => {
    const { worst: round, coldest: cold } = extremes(row);
    if (round === undefined) return [];
    const { waits } = round;
    return [
      [
        row.target,
        String(row.connections),
        `${row.everyRound.map((r) => r.maxMs.toFixed(0)).join(' / ')}`,
        fixed(round.maxMs, 1),
        fixed(round.loopDelayMaxMs, 1),
        waits.slowRequests === null ? '–' : String(waits.slowRequests),
        describeSlowest(waits.slowest),
        fixed(waits.slowestEndedAtMs, 0),
        fixed(waits.upstream?.loopDelayMaxMs, 1),
        waits.upstream === null ? '–' : String(waits.upstream.connectionsOpened),
        waits.upstream === null ? '–' : String(waits.upstream.connectionsOpen),
        waits.tcp === null ? '–' : `${waits.tcp.timeouts} / ${waits.tcp.synRetransmits} / ${waits.tcp.listenDrops} / ${waits.tcp.retransmittedSegments}`,
        fixed(cold?.maxMs, 1),
        cold === undefined || cold === null ? '–' : describeSlowest(cold.waits.slowest),
        cold?.waits.upstream === null || cold?.waits.upstream === undefined ? '–' : String(cold.waits.upstream.connectionsOpened),
      ],
    ];
  });
  if (rows.length === 0) return [];
  return [
    '### where the slowest requests waited (per row, its round with the highest max)',
    `"kubegate ≥${SLOW_REQUEST_MS} ms" counts the requests kubegate itself logged as slow (log.slowRequestMs: from their head to the end of the answer); "its slowest"`,
    'splits the longest: total = admission + waiting for an upstream connection + the upstream\'s answer head + its body + writing to the client (ms),',
    'and says when it ended, ms into the round (the round starts on fresh client connections, and on new upstream ones if the pool closed its idle ones).',
    'A high wrk max with no such request: the wait was outside kubegate\'s handler (TCP, TLS, the client side). "upstream" figures are the bench',
    "upstream's own: its longest loop delay, the TLS connections it accepted during the round (the target's pool opening new ones) and those open at its end.",
    'The "tcp" counters are the machine\'s over the round: retransmission timeouts (each a wait of 200 ms or more), SYNs sent again (1 s), connections',
    "dropped by a full accept queue, segments retransmitted. The last three are the row's slowest 1-second warm-up (before every round of a full run):",
    'the cold start, where a pool that closed its idle connections since the target\'s previous round opens them again.',
    table(
      ['target', 'c', 'max ms, each round', 'worst max ms', 'loop stall ms', `kubegate ≥${SLOW_REQUEST_MS} ms`, 'its slowest ms (= admit+conn+head+body+write)', 'it ended at ms', 'upstream loop ms', 'upstream new conns', 'upstream open conns', 'tcp RTO / SYN again / listen drops / retransmits', 'warm-up max ms', 'its slowest ms', 'its new conns'],
      rows,
    ),
  ];
}

export function checkTargets(results: Omit<BenchResults, 'targetsCheck'>): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const small = (target: string, c: number): SmallRow | undefined => results.small.find((row) => row.target === target && row.connections === c);
  // kubegate's single process, and the native-core prototype of its serving core (bench/native-core), against the same goals.
  for (const target of ['kubegate', NATIVE_CORE]) {
    for (const connections of [1, 16, 64]) {
      const kg = small(target, connections);
      if (kg === undefined) continue;
      const nodeHttp = small('node-http', connections)?.requestsPerSecond ?? 0;
      const goPeer = small(GO, connections)?.requestsPerSecond ?? 0;
      const nginx = small('nginx', connections)?.requestsPerSecond ?? 0;
      const rate = kg.requestsPerSecond;
      checks.push({ target, goal: `small GET c=${connections} ≥ 1.0× the bare Node forwarder (node-http)`, measured: ratio(rate, nodeHttp), met: rate >= nodeHttp });
      checks.push({ target, goal: `small GET c=${connections} ≥ 1.0× ${GO}`, measured: ratio(rate, goPeer), met: rate >= goPeer });
      checks.push({ target, goal: `small GET c=${connections} ≥ 0.5× nginx`, measured: ratio(rate, nginx), met: rate >= 0.5 * nginx });
    }
    const kg1 = small(target, 1);
    const direct1 = small('direct', 1);
    const go1 = small(GO, 1);
    if (kg1 !== undefined && direct1 !== undefined) {
      const added = kg1.p50Ms - direct1.p50Ms;
      checks.push({ target, goal: 'p50 added at c=1 ≤ 0.15 ms', measured: `${fixed(added, 3)} ms`, met: added <= 0.15 });
      if (go1 !== undefined) {
        const goAdded = go1.p50Ms - direct1.p50Ms;
        checks.push({ target, goal: `p50 added at c=1 ≤ ${GO}'s`, measured: `${fixed(added, 3)} ms vs ${fixed(goAdded, 3)} ms`, met: added <= goAdded });
      }
    }
  }
  const nginx16 = small('nginx', 16)?.requestsPerSecond ?? 0;
  for (const connections of [1, 16, 64]) {
    const viaAgent = small('kubegate-agent', connections);
    const direct = small('kubegate', connections);
    if (viaAgent !== undefined && direct !== undefined) {
      checks.push({
        target: 'kubegate-agent',
        goal: `small GET c=${connections} through the agent tunnel ≥ 0.7× kubegate dialling directly`,
        measured: ratio(viaAgent.requestsPerSecond, direct.requestsPerSecond),
        met: viaAgent.requestsPerSecond >= 0.7 * direct.requestsPerSecond,
      });
    }
  }
  for (const row of results.small.filter((r) => r.target.startsWith('kubegate-w') && r.connections === 16)) {
    checks.push({ target: row.target, goal: 'small GET c=16 ≥ 0.8× nginx', measured: ratio(row.requestsPerSecond, nginx16), met: row.requestsPerSecond >= 0.8 * nginx16 });
  }
  for (const row of results.large.filter((r) => isKubegatePath(r.target))) {
    const mb = Math.round(row.bytes / MB);
    checks.push({ target: row.target, goal: `${mb} MB list ≥ 1.3 GB/s`, measured: `${fixed(row.bytesPerSecond / 1e9)} GB/s`, met: row.bytesPerSecond >= 1.3e9 });
    const goRate = results.large.find((r) => r.target === GO && r.bytes === row.bytes)?.bytesPerSecond;
    if (goRate !== undefined) checks.push({ target: row.target, goal: `${mb} MB list ≥ 0.8× ${GO}`, measured: ratio(row.bytesPerSecond, goRate), met: row.bytesPerSecond >= 0.8 * goRate });
    if (row.peakRssBytes !== null) {
      checks.push({ target: row.target, goal: `${mb} MB list: proxy peak RSS ≤ 150 MB`, measured: `${fixed(row.peakRssBytes / MB, 0)} MB`, met: row.peakRssBytes <= 150 * MB });
    }
  }
  /** A memory growth per connection or watch: none, zero or negative (a GC during the measurement) is no figure, never a goal met. */
  const usable = (bytes: number | null | undefined): number => (bytes === null || bytes === undefined || bytes <= 0 ? Infinity : bytes);
  /** Median slope with the rounds' range: `20.1 KB [19.0–21.3]`. */
  const slopeOf = (row: IdleRow): string =>
    row.roundSlopesBytes.length > 1 ? `${kb(row.perConnectionBytes ?? 0)} KB [${kb(Math.min(...row.roundSlopesBytes))}–${kb(Math.max(...row.roundSlopesBytes))}]` : `${kb(row.perConnectionBytes ?? 0)} KB`;
  const goIdle = results.idle.find((r) => r.target === GO);
  for (const row of results.idle.filter((r) => isKubegatePath(r.target))) {
    checks.push({ target: row.target, goal: '≤ 8 KB per idle keep-alive connection', measured: slopeOf(row), met: usable(row.perConnectionBytes) <= 8 * 1024 });
    if (goIdle !== undefined && goIdle.roundSlopesBytes.length > 0 && usable(goIdle.perConnectionBytes) !== Infinity) {
      // Decided only when the rounds' ranges do not overlap: met when kubegate's worst round is at or below go's best.
      const worst = row.roundSlopesBytes.length === 0 ? Infinity : Math.max(...row.roundSlopesBytes.map(usable));
      const goBest = Math.min(...goIdle.roundSlopesBytes.map(usable));
      const undecided = worst > goBest && Math.min(...row.roundSlopesBytes) <= Math.max(...goIdle.roundSlopesBytes);
      checks.push({ target: row.target, goal: `per idle connection ≤ ${GO}'s (slope; every round)`, measured: `${slopeOf(row)} vs ${slopeOf(goIdle)}${undecided ? ' (rounds overlap: undecided)' : ''}`, met: worst <= goBest });
    }
  }
  for (const row of results.watches.filter((r) => isKubegatePath(r.target))) {
    checks.push({ target: row.target, goal: `${row.watches} watches: ≤ 20 KB per held watch`, measured: `${fixed((row.perWatchBytes ?? 0) / 1024, 1)} KB`, met: usable(row.perWatchBytes) <= 20 * 1024 });
    const goWatch = results.watches.find((r) => r.target === GO && r.watches === row.watches)?.perWatchBytes;
    if (goWatch !== undefined && goWatch !== null && usable(goWatch) !== Infinity) {
      checks.push({ target: row.target, goal: `${row.watches} watches: per held watch ≤ ${GO}'s`, measured: `${fixed((row.perWatchBytes ?? 0) / 1024, 1)} KB vs ${fixed(goWatch / 1024, 1)} KB`, met: usable(row.perWatchBytes) <= goWatch });
    }
    checks.push({ target: row.target, goal: `${row.watches} watches held`, measured: `${row.opened} opened, ${row.failed} failed`, met: row.failed === 0 && row.opened === row.watches });
    checks.push({ target: row.target, goal: `${row.watches} dropped watches closed upstream within 1 s`, measured: `${row.upstreamOpenAfter1s} still open`, met: row.upstreamOpenAfter1s === 0 });
  }
  for (const row of results.revocation) {
    checks.push({ target: row.target, goal: 'revocation ≤ 1 s (every connection)', measured: `${fixed(row.allMaxMs, 1)} ms max, ${row.unrevokedLanes} lanes unrevoked`, met: row.unrevokedLanes === 0 && row.allMaxMs <= 1000 });
  }
  const webhookRow = results.webhook.rows?.find((row) => row.case === 'cached' && row.connections === 16);
  checks.push(
    webhookRow === undefined
      ? { target: 'webhook', goal: '≥ 20,000 cached TokenReviews/s at c=16', measured: results.webhook.reason ?? 'pending', met: null }
      : {
          target: 'webhook',
          goal: '≥ 20,000 cached TokenReviews/s at c=16',
          measured: `${kilo(Number(webhookRow.reviewsPerSecond))}/s`,
          met: Number(webhookRow.reviewsPerSecond) >= 20_000,
        },
  );
  return checks;
}

export function formatResults(results: BenchResults): string {
  const out: string[] = [];
  const m = results.machine;
  out.push(`kubegate benchmarks (${results.mode}) — ${m.date}`);
  out.push(`machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}; node ${m.node}; ${m.nginx}; ${m.wrk}; ${m.go}`);
  out.push('generator, proxy and upstream share these CPUs: wrk -t1; "proxy cpu" and "wrk cpu" are cores busy during the run.');
  out.push('');

  const direct = (c: number): SmallRow | undefined => results.small.find((r) => r.target === 'direct' && r.connections === c);
  const bare = (c: number): SmallRow | undefined => results.small.find((r) => r.target === 'http-proxy-3' && r.connections === c);
  const go = (c: number): SmallRow | undefined => results.small.find((r) => r.target === GO && r.connections === c);
  out.push('## small GET (2 KB pod list, keep-alive, TLS both sides)');
  out.push(
    "p50/p99 are wrk's, corrected for coordinated omission: a request held D ms adds D/e synthetic samples below D (e = c ÷ req/s), so one stall",
    'of ~250 ms holding every connection of a 5 s round puts p99 near 200 ms. "max" is the slowest request as served; "loop stall" and "GC ≥100 ms"',
    "are kubegate's own longest event-loop delay and its garbage-collector pauses of 100 ms or more during the round (its /metrics; bench/loop-stalls.ts).",
  );
  out.push(
    table(
      ['target', 'c', 'req/s', 'p50 ms', 'p99 ms', 'max ms', '+p99 vs direct', '× direct', '× http-proxy-3', '× go', 'proxy cpu', 'µs cpu/req', 'wrk cpu', 'loop stall ms', 'GC ≥100 ms', 'errors'],
      results.small.map((row) => [
        row.target,
        String(row.connections),
        kilo(row.requestsPerSecond),
        fixed(row.p50Ms, 3),
        fixed(row.p99Ms, 3),
        fixed(row.maxMs, 1),
        fixed(row.p99Ms - (direct(row.connections)?.p99Ms ?? 0), 3),
        ratio(row.requestsPerSecond, direct(row.connections)?.requestsPerSecond),
        ratio(row.requestsPerSecond, bare(row.connections)?.requestsPerSecond),
        ratio(row.requestsPerSecond, go(row.connections)?.requestsPerSecond),
        fixed(row.proxyCores),
        row.proxyCores === null || row.requestsPerSecond === 0 ? '–' : fixed((row.proxyCores / row.requestsPerSecond) * 1e6, 0),
        fixed(row.generatorCores),
        fixed(row.loopDelayMaxMs, 1),
        fixed(row.gcPausesOver100Ms, 0),
        String(row.errors),
      ]),
    ),
  );
  out.push('');
  out.push(...formatRoundWaits(results.small));
  out.push('');

  const largeBase = (target: string, bytes: number): number | undefined => results.large.find((r) => r.target === target && r.bytes === bytes)?.bytesPerSecond;
  out.push('## large list (c=4)');
  out.push(
    table(
      ['target', 'size', 'GB/s', '× direct', '× http-proxy-3', '× go', 'proxy peak RSS MB', 'RSS growth MB', 'errors'],
      results.large.map((row) => [
        row.target,
        `${Math.round(row.bytes / MB)} MB`,
        fixed(row.bytesPerSecond / 1e9),
        ratio(row.bytesPerSecond, largeBase('direct', row.bytes)),
        ratio(row.bytesPerSecond, largeBase('http-proxy-3', row.bytes)),
        ratio(row.bytesPerSecond, largeBase(GO, row.bytes)),
        row.peakRssBytes === null ? '–' : fixed(row.peakRssBytes / MB, 0),
        row.peakRssGrowthBytes === null ? '–' : fixed(row.peakRssGrowthBytes / MB, 0),
        String(row.errors),
      ]),
    ),
  );
  out.push('');

  const watchBase = (target: string, watches: number): WatchRow | undefined => results.watches.find((r) => r.target === target && r.watches === watches);
  out.push('## held watches (idle, then events fanned out while open, then every client dropped)');
  out.push(
    table(
      ['target', 'watches', 'opened', 'open s', 'RSS MB', 'KB/watch', '× http-proxy-3', '× go', 'event p50 ms', 'event p99 ms', 'events', 'upstream open 1 s after drop', 'all closed after s'],
      results.watches.map((row) => {
        const base = watchBase('http-proxy-3', row.watches)?.perWatchBytes ?? undefined;
        const goBase = watchBase(GO, row.watches)?.perWatchBytes ?? undefined;
        return [
          row.target,
          String(row.watches),
          `${row.opened}${row.failed > 0 ? ` (${row.failed} failed)` : ''}`,
          fixed(row.openMs / 1000, 1),
          row.rssHeldBytes === null ? '–' : fixed(row.rssHeldBytes / MB, 0),
          row.perWatchBytes === null ? '–' : fixed(row.perWatchBytes / 1024, 1),
          row.perWatchBytes === null ? '–' : ratio(row.perWatchBytes, base),
          row.perWatchBytes === null ? '–' : ratio(row.perWatchBytes, goBase),
          fixed(row.eventP50Ms),
          fixed(row.eventP99Ms),
          `${row.eventsReceived}/${row.eventsExpected}`,
          String(row.upstreamOpenAfter1s),
          row.upstreamDrainMs === null ? 'never (15 s)' : fixed(row.upstreamDrainMs / 1000, 1),
        ];
      }),
    ),
  );
  out.push('');
  const goIdle = results.idle.find((r) => r.target === GO);
  out.push('## idle keep-alive connections (one small GET each, then held): slope of settled RSS over four steps, median of the rounds [range]');
  out.push(
    table(
      ['target', 'connections', 'opened', 'KB/connection', 'rounds', '± fit KB', 'once MB', 'heap KB/conn', '× go'],
      results.idle.map((row) => [
        row.target,
        String(row.connections),
        String(row.opened),
        row.perConnectionBytes === null ? '–' : kb(row.perConnectionBytes),
        row.roundSlopesBytes.map(kb).join(' '),
        row.slopeStdErrorBytes === null ? '–' : kb(row.slopeStdErrorBytes),
        row.onceBytes === null ? '–' : fixed(row.onceBytes / MB, 1),
        row.heapPerConnectionBytes === null ? '–' : kb(row.heapPerConnectionBytes),
        row.perConnectionBytes === null ? '–' : ratio(row.perConnectionBytes, goIdle?.perConnectionBytes ?? undefined),
      ]),
    ),
  );
  out.push('');

  const execBase = (target: string, protocol: string): ExecRow | undefined => results.exec.find((r) => r.target === target && r.protocol === protocol);
  out.push('## exec upgrade (time to first byte of a session; 16-byte echo round trip)');
  out.push(
    table(
      ['target', 'protocol', 'sessions', 'TTFB p50 ms', 'TTFB p99 ms', '+p50 vs direct', '+p50 vs go', 'echo p50 ms', 'echo p99 ms', '+echo p50 vs direct', '+echo p50 vs go', 'failed'],
      results.exec.map((row) => [
        row.target,
        row.protocol,
        String(row.sessions),
        fixed(row.firstByteP50Ms, 3),
        fixed(row.firstByteP99Ms, 3),
        fixed(row.firstByteP50Ms - (execBase('direct', row.protocol)?.firstByteP50Ms ?? 0), 3),
        fixed(row.firstByteP50Ms - (execBase(GO, row.protocol)?.firstByteP50Ms ?? NaN), 3),
        fixed(row.echoP50Ms, 3),
        fixed(row.echoP99Ms, 3),
        fixed(row.echoP50Ms - (execBase('direct', row.protocol)?.echoP50Ms ?? 0), 3),
        fixed(row.echoP50Ms - (execBase(GO, row.protocol)?.echoP50Ms ?? NaN), 3),
        String(row.failed),
      ]),
    ),
  );
  out.push('');
  out.push('## first request of a token never seen (store lookup + hash verify) vs cached, sequential, one connection');
  out.push(
    table(
      ['target', 'tokens', 'uncached p50 ms', 'uncached p99 ms', 'cached p50 ms', 'cached p99 ms', 'failures'],
      results.firstRequest.map((row) => [row.target, String(row.tokens), fixed(row.uncachedP50Ms, 3), fixed(row.uncachedP99Ms, 3), fixed(row.cachedP50Ms, 3), fixed(row.cachedP99Ms, 3), String(row.failures)]),
    ),
  );
  out.push('');
  out.push('## revocation (DELETE /v1/tokens/:name while 4 connections keep requesting with the token)');
  out.push(
    table(
      ['target', 'rounds', 'first 401 p50 ms', 'first 401 max ms', 'all 401 p50 ms', 'all 401 max ms', '200 after DELETE answered', 'lanes never 401'],
      results.revocation.map((row) => [
        row.target,
        String(row.rounds),
        fixed(row.firstP50Ms, 1),
        fixed(row.firstMaxMs, 1),
        fixed(row.allP50Ms, 1),
        fixed(row.allMaxMs, 1),
        String(row.servedAfterDelete),
        String(row.unrevokedLanes),
      ]),
    ),
  );
  out.push('');
  out.push('## webhook (TokenReviews)');
  if (results.webhook.status === 'pending') out.push(`pending: ${results.webhook.reason ?? ''}`);
  else {
    const rows = results.webhook.rows ?? [];
    const keys = Object.keys(rows[0] ?? {});
    const cell = (value: unknown): string => (typeof value === 'number' ? (Number.isInteger(value) ? String(value) : fixed(value, 3)) : value === null ? '–' : String(value));
    out.push(table(keys, rows.map((row) => keys.map((key) => cell(row[key])))));
  }
  out.push('');
  out.push('## targets (tracked, not asserted)');
  out.push(table(['target', 'goal', 'measured', 'met'], results.targetsCheck.map((c) => [c.target, c.goal, c.measured, c.met === null ? 'pending' : c.met ? 'yes' : 'NO'])));
  out.push('');
  out.push(`total ${fixed(results.durationSeconds, 0)} s`);
  return out.join('\n');
}
