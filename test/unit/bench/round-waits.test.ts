/**
 * The bench's reading of where a small-GET round's slowest requests waited (bench/round-waits.ts):
 * kubegate's `slow request` lines as its own logger writes them, the upstream's round
 * readings, and the short table the report prints from them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { formatRoundWaits } from '../../../bench/report.js';
import type { BenchResults } from '../../../bench/report.js';
import { createSlowRequestLog, describeSlowest, parseSlowRequestLine, parseTcpCounters, parseUpstreamRoundReading, readTcpCounters, slowestOf, tcpCountersDelta, upstreamRound } from '../../../bench/round-waits.js';
import type { SmallRow } from '../../../bench/scenarios.js';
import { createLogger } from '../../../src/log.js';
import { slowRequestTimings } from '../../../src/proxy/forward.js';

/** Lines exactly as kubegate's logger writes them. */
function kubegateLines(write: (logger: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', name: 'proxy', destination: { write: (text: string) => lines.push(...text.split('\n').filter((line) => line !== '')) } });
  write(logger);
  return lines;
}

test("reads kubegate's slow-request lines as its logger writes them, and nothing else", () => {
  const timings = slowRequestTimings(1000, { dispatched: 1000.5, connected: 1190.5, head: 1200, upstreamEnd: 1201 }, 210);
  const lines = kubegateLines((logger) => {
    logger.info({ cluster: 'bench' }, 'kubegate proxy is serving');
    logger.warn({ cluster: 'bench', method: 'GET', status: 200, ...timings }, 'slow request');
    logger.warn({ cluster: 'bench', method: 'GET', status: 499, ...slowRequestTimings(2000, { dispatched: 2000.25, connected: 0, head: 0, upstreamEnd: 0 }, 80) }, 'slow request');
  });
  assert.equal(lines.length, 3);
  assert.equal(parseSlowRequestLine(lines[0] as string), undefined);
  assert.equal(parseSlowRequestLine('{"msg":"slow request", broken'), undefined);
  const first = parseSlowRequestLine(lines[1] as string);
  assert.ok(first !== undefined);
  assert.ok(Math.abs(first.time - Date.now()) < 60_000, 'the ISO time is read as epoch ms');
  assert.deepEqual({ ...first, time: 0 }, { time: 0, status: 200, durationMs: 210, admitMs: 0.5, connectionMs: 190, upstreamHeadMs: 9.5, upstreamBodyMs: 1, clientWriteMs: 9 });
  const second = parseSlowRequestLine(lines[2] as string);
  assert.deepEqual(second && { ...second, time: 0 }, { time: 0, status: 499, durationMs: 80, admitMs: 0.25, connectionMs: 79.75, upstreamHeadMs: null, upstreamBodyMs: null, clientWriteMs: null });

  const log = createSlowRequestLog();
  for (const line of lines) log.onLine(line);
  const all = log.between(0, Date.now() + 60_000);
  assert.equal(all.length, 2);
  assert.deepEqual(log.between(0, 1), []);
  assert.equal(slowestOf(all)?.durationMs, 210);
  assert.equal(slowestOf([]), null);
  assert.equal(describeSlowest(first), '210 = 1+190+10+1+9');
  assert.equal(describeSlowest(second ?? null), '80 = 0+80+–+–+–');
});

test("reads the upstream's round readings, refuses anything else, and takes the connections opened over the round", () => {
  const before = parseUpstreamRoundReading('{"loopDelayMaxMs":3.1,"connectionsAccepted":40,"connectionsOpen":30}');
  const after = parseUpstreamRoundReading('{"loopDelayMaxMs":12.5,"connectionsAccepted":56,"connectionsOpen":46}');
  assert.deepEqual(upstreamRound(before, after), { loopDelayMaxMs: 12.5, connectionsOpened: 16, connectionsOpen: 46 });
  assert.throws(() => parseUpstreamRoundReading('{"openWatches":0}'), /not an upstream round reading/);
});

test('the report shows each row its round with the highest max, and leaves the table out for a run recorded without these figures', () => {
  const recorded = JSON.parse(readFileSync(new URL('../../../bench/recorded/2026-12-05-final.json', import.meta.url), 'utf8')) as BenchResults;
  assert.deepEqual(formatRoundWaits(recorded.small), []);
  const base = recorded.small.find((row) => row.target === 'kubegate' && row.connections === 16) as SmallRow;
  const quiet = { requestsPerSecond: 5600, p99Ms: 9, maxMs: 21, loopDelayMaxMs: 20, waits: { slowRequests: 0, slowest: null, slowestEndedAtMs: null, upstream: { loopDelayMaxMs: 9, connectionsOpened: 0, connectionsOpen: 40 }, tcp: null }, warmUp: null };
  const slowest = { time: 0, status: 200, durationMs: 205, admitMs: 0.1, connectionMs: 201, upstreamHeadMs: 2, upstreamBodyMs: 0.5, clientWriteMs: 1.4 };
  const stalled = { requestsPerSecond: 5500, p99Ms: 160, maxMs: 219, loopDelayMaxMs: 24, waits: { slowRequests: 3, slowest, slowestEndedAtMs: 230, upstream: { loopDelayMaxMs: 11, connectionsOpened: 16, connectionsOpen: 56 }, tcp: { retransmittedSegments: 3, timeouts: 1, synRetransmits: 0, listenDrops: 0, lossProbes: 2 } }, warmUp: { maxMs: 230, loopDelayMaxMs: 20, waits: { slowRequests: 16, slowest: { ...slowest, durationMs: 228, connectionMs: 224 }, slowestEndedAtMs: 240, upstream: { loopDelayMaxMs: 8, connectionsOpened: 16, connectionsOpen: 56 }, tcp: null } } };
  const text = formatRoundWaits([{ ...base, everyRound: [quiet, stalled, quiet] }]).join('\n');
  const row = text.split('\n').find((line) => line.startsWith('kubegate '));
  assert.ok(row !== undefined, text);
  assert.deepEqual(row.trim().split(/\s{2,}/), ['kubegate', '16', '21 / 219 / 21', '219.0', '24.0', '3', '205 = 0+201+2+1+1', '230', '11.0', '16', '56', '1 / 0 / 0 / 3', '230.0', '228 = 0+224+2+1+1', '16']);
});

test("reads the machine's TCP counters from /proc/net/snmp and /proc/net/netstat text, and what they grew by", () => {
  // Shortened lines in the kernel's format: a line of names, then a line of values, per prefix.
  const snmp = 'Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RetransSegs InErrs\nTcp: 1 200 260957 4\nUdp: InDatagrams\nUdp: 7\n';
  const netstat = 'TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPLossProbes TCPTimeouts TCPSynRetrans\nTcpExt: 0 468282 468282 230660 38073 26093\nIpExt: InNoRoutes\nIpExt: 0\n';
  const before = parseTcpCounters(`${snmp}\n${netstat}`);
  assert.deepEqual(before, { retransmittedSegments: 260957, timeouts: 38073, synRetransmits: 26093, listenDrops: 468282, lossProbes: 230660 });
  const after = parseTcpCounters(`${snmp.replace('260957', '260960')}\n${netstat.replace('38073 26093', '38074 26093')}`);
  assert.deepEqual(tcpCountersDelta(before, after), { retransmittedSegments: 3, timeouts: 1, synRetransmits: 0, listenDrops: 0, lossProbes: 0 });
  assert.deepEqual(parseTcpCounters('nothing here'), { retransmittedSegments: 0, timeouts: 0, synRetransmits: 0, listenDrops: 0, lossProbes: 0 });
  // This machine's own files parse to whole numbers (Linux; elsewhere there is nothing to read).
  const now = readTcpCounters();
  if (now !== undefined) for (const value of Object.values(now)) assert.ok(Number.isInteger(value) && value >= 0, JSON.stringify(now));
});
