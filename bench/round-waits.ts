/**
 * Where a small-GET round's slowest requests waited, from both ends of the proxy:
 *
 * - kubegate's own account: every kubegate the harness starts runs with
 *   `log.slowRequestMs` = SLOW_REQUEST_MS (KUBEGATE_LOG_SLOW_REQUEST_MS), so each forwarded
 *   request that took that long logs a `slow request` line on its stdout with where the time
 *   went (admission, waiting for an upstream connection, the upstream's answer head and body,
 *   writing to the client; src/proxy/forward.ts). The lines whose `time` falls in the round
 *   are the round's: how many, and the slowest with its split.
 * - the upstream's account (bench/upstream.ts `GET /bench/round`): its own longest
 *   event-loop delay since the previous call (which resets it), the TLS connections it
 *   accepted so far and those open now — the difference over a round is the connections the
 *   target under test opened to it (only that target is loaded; a new connection there is
 *   a proxy pool that closed or lost its idle ones).
 * - the machine's TCP counters over the round (retransmission timeouts, SYN retransmits,
 *   listen drops): a wait of 200 ms or more with both loops free is what one of those costs.
 *
 * Why: in the quiet full runs kubegate's single process served a request in ~200 ms at c=16
 * while its own event loop never stalled more than 24 ms (BENCHMARKS.md, 2026-12-05): the
 * request waited on something else. wrk's max says that one waited; these say where — before
 * kubegate saw the head (nothing logged although wrk's max is high), for an upstream
 * connection, at the upstream (its loop stalled, or it answered late), or writing to the client.
 */

import { readFileSync } from 'node:fs';
import type { SlowRequestTimings } from '../src/proxy/forward.js';

/** Requests at least this long (ms) are logged by kubegate during the bench. */
export const SLOW_REQUEST_MS = 50;

/** One `slow request` line of kubegate: its timings (forward.ts), when and with which status. */
export interface SlowRequest extends SlowRequestTimings {
  /** When it was logged, epoch ms (the line's `time`: ISO text in kubegate's logs, or epoch ms). */
  readonly time: number;
  readonly status: number;
}

/** What the upstream said about itself over one round. */
export interface UpstreamRound {
  /** Its longest event-loop delay during the round, ms. */
  readonly loopDelayMaxMs: number;
  /** TLS connections it accepted during the round. */
  readonly connectionsOpened: number;
  /** TLS connections open at the end of the round (every target's pool, not only the one measured). */
  readonly connectionsOpen: number;
}

/** The upstream's answer to `GET /bench/round`, as it sends it. */
export interface UpstreamRoundReading {
  readonly loopDelayMaxMs: number;
  readonly connectionsAccepted: number;
  readonly connectionsOpen: number;
}

/**
 * The machine's TCP counters that a wait of ~200 ms or more would leave (Linux's minimum
 * retransmission timeout is 200 ms, a lost SYN waits 1 s), from /proc/net/snmp and
 * /proc/net/netstat: machine-wide, so over a round on a quiet machine they are the round's.
 */
export interface TcpCounters {
  /** Segments retransmitted (Tcp RetransSegs). */
  readonly retransmittedSegments: number;
  /** Retransmission timeouts that fired (TcpExt TCPTimeouts): the 200 ms-and-up waits. */
  readonly timeouts: number;
  /** SYNs sent again (TcpExt TCPSynRetrans): a connection that waited 1 s or more. */
  readonly synRetransmits: number;
  /** Connections a listener's full accept queue dropped (TcpExt ListenDrops). */
  readonly listenDrops: number;
  /** Tail-loss probes sent (TcpExt TCPLossProbes): usually answered, no wait. */
  readonly lossProbes: number;
}

const TCP_COUNTERS: readonly [keyof TcpCounters, prefix: string, name: string][] = [
  ['retransmittedSegments', 'Tcp', 'RetransSegs'],
  ['timeouts', 'TcpExt', 'TCPTimeouts'],
  ['synRetransmits', 'TcpExt', 'TCPSynRetrans'],
  ['listenDrops', 'TcpExt', 'ListenDrops'],
  ['lossProbes', 'TcpExt', 'TCPLossProbes'],
];

/** The counters in the text of /proc/net/snmp and /proc/net/netstat (pairs of lines: `Prefix: names…`, `Prefix: values…`); a missing one is 0. */
export function parseTcpCounters(text: string): TcpCounters {
  const values = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = (lines[i] as string).trim().split(/\s+/);
    const numbers = (lines[i + 1] as string).trim().split(/\s+/);
    const prefix = names[0];
    if (prefix === undefined || !prefix.endsWith(':') || numbers[0] !== prefix || names.length !== numbers.length || !/^-?\d/.test(numbers[1] ?? '')) continue;
    for (let j = 1; j < names.length; j++) values.set(`${prefix.slice(0, -1)}.${names[j]}`, Number(numbers[j]));
    i++;
  }
  return Object.fromEntries(TCP_COUNTERS.map(([key, prefix, name]) => [key, values.get(`${prefix}.${name}`) ?? 0])) as unknown as TcpCounters;
}

/** What the counters grew by from `before` to `after`. */
export function tcpCountersDelta(before: TcpCounters, after: TcpCounters): TcpCounters {
  return Object.fromEntries(TCP_COUNTERS.map(([key]) => [key, after[key] - before[key]])) as unknown as TcpCounters;
}

/** The counters now, or undefined where /proc/net is not there (not Linux). */
export function readTcpCounters(): TcpCounters | undefined {
  try {
    return parseTcpCounters(`${readFileSync('/proc/net/snmp', 'utf8')}\n${readFileSync('/proc/net/netstat', 'utf8')}`);
  } catch {
    return undefined;
  }
}

/** The round's waits, as a small-GET row carries them. */
export interface RoundWaits {
  /** kubegate rows: how many requests it logged as slow (≥ SLOW_REQUEST_MS) in the round; null for other targets. */
  readonly slowRequests: number | null;
  /** kubegate rows: the slowest of them, or null (none, or not kubegate). */
  readonly slowest: SlowRequest | null;
  /** When the slowest ended, ms after the round started (near its duration: at the round's start, new connections). */
  readonly slowestEndedAtMs: number | null;
  readonly upstream: UpstreamRound | null;
  /** The machine's TCP counters over the round (null where not readable). */
  readonly tcp: TcpCounters | null;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A `slow request` log line of kubegate, or undefined for any other line. */
export function parseSlowRequestLine(line: string): SlowRequest | undefined {
  if (!line.startsWith('{') || !line.includes('"msg":"slow request"')) return undefined;
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const time = typeof fields['time'] === 'string' ? numberOrNull(Date.parse(fields['time'])) : numberOrNull(fields['time']);
  const durationMs = numberOrNull(fields['durationMs']);
  if (fields['msg'] !== 'slow request' || time === null || durationMs === null) return undefined;
  return {
    time,
    status: numberOrNull(fields['status']) ?? 0,
    durationMs,
    admitMs: numberOrNull(fields['admitMs']),
    connectionMs: numberOrNull(fields['connectionMs']),
    upstreamHeadMs: numberOrNull(fields['upstreamHeadMs']),
    upstreamBodyMs: numberOrNull(fields['upstreamBodyMs']),
    clientWriteMs: numberOrNull(fields['clientWriteMs']),
  };
}

/** The slow requests of a process, kept as its lines arrive (the last MAX_KEPT). */
export interface SlowRequestLog {
  /** Take every line the process prints (Child.onLine). */
  readonly onLine: (line: string) => void;
  /** Those logged from `fromMs` to `toMs` (epoch ms, inclusive). */
  between(fromMs: number, toMs: number): SlowRequest[];
}

const MAX_KEPT = 10_000;

export function createSlowRequestLog(): SlowRequestLog {
  const kept: SlowRequest[] = [];
  return {
    onLine: (line) => {
      const slow = parseSlowRequestLine(line);
      if (slow === undefined) return;
      kept.push(slow);
      if (kept.length > MAX_KEPT) kept.splice(0, kept.length - MAX_KEPT);
    },
    between: (fromMs, toMs) => kept.filter((slow) => slow.time >= fromMs && slow.time <= toMs),
  };
}

/** The longest of `requests`, or null. */
export function slowestOf(requests: readonly SlowRequest[]): SlowRequest | null {
  let slowest: SlowRequest | null = null;
  for (const request of requests) if (slowest === null || request.durationMs > slowest.durationMs) slowest = request;
  return slowest;
}

/** The upstream's figures over a round, from its readings before and after it. */
export function upstreamRound(before: UpstreamRoundReading, after: UpstreamRoundReading): UpstreamRound {
  return { loopDelayMaxMs: after.loopDelayMaxMs, connectionsOpened: after.connectionsAccepted - before.connectionsAccepted, connectionsOpen: after.connectionsOpen };
}

/** Parses the upstream's `GET /bench/round` answer; throws on anything else. */
export function parseUpstreamRoundReading(text: string): UpstreamRoundReading {
  const fields = JSON.parse(text) as Record<string, unknown>;
  const loopDelayMaxMs = numberOrNull(fields['loopDelayMaxMs']);
  const connectionsAccepted = numberOrNull(fields['connectionsAccepted']);
  const connectionsOpen = numberOrNull(fields['connectionsOpen']);
  if (loopDelayMaxMs === null || connectionsAccepted === null || connectionsOpen === null) throw new TypeError(`not an upstream round reading: ${text.slice(0, 200)}`);
  return { loopDelayMaxMs, connectionsAccepted, connectionsOpen };
}

/** "total = admit + connection + head + body + write" of a slow request, ms, for the table. */
export function describeSlowest(slow: SlowRequest | null): string {
  if (slow === null) return '–';
  const part = (value: number | null): string => (value === null ? '–' : value.toFixed(0));
  return `${slow.durationMs.toFixed(0)} = ${[slow.admitMs, slow.connectionMs, slow.upstreamHeadMs, slow.upstreamBodyMs, slow.clientWriteMs].map(part).join('+')}`;
}
