/**
 * What kubegate records about each forwarded request (one audit line of `kind: "request"`
 * and the metrics) and about each administrative action and login through the REST API (a
 * line of `kind: "api"`, built in api/audit.ts).
 *
 * Audit lines are JSON, one per request, written to standard output or a file through
 * pino's asynchronous destination. They are built only from AuditRecord fields (user ID, groups, whom the user acted as
 * with `kubectl --as`, token name, cluster,
 * method, path without query, status, timing, bytes), so no header, query string, token
 * secret or body can reach them. The destination is asynchronous and buffered (lines leave
 * in writes of AUDIT_BUFFER_BYTES), so an audit line never blocks the forwarding path nor
 * costs a write of its own; a buffer that has not filled is written within
 * AUDIT_FLUSH_INTERVAL_MS, so a quiet proxy's trail is still current.
 *
 * A request line is one per forwarded request, so it is cheap: formatted by one template
 * straight from the record (no intermediate object, every string through JSON.stringify),
 * and collected here into a batch that is handed to the destination whole once it reaches
 * AUDIT_BATCH_CHARS — the destination measures and appends each string it gets, which per
 * line cost more than the line itself, and each of its writes is a hand-off to the thread
 * pool, so a batch is one write (BENCHMARKS.md, 2026-12-05). Every path that writes
 * out (the timer, close, reopen, exit) hands the batch over first, so batching loses nothing
 * and keeps the order of lines. `close()` drains it
 * at shutdown, and whatever is still buffered when the process exits by any other path
 * (a second signal, a fatal error, process.exit) is written synchronously from the `exit`
 * event: no buffered line is lost short of SIGKILL.
 *
 * The file is created 0600 (it names users, groups and what they did) and opened
 * synchronously, here, rather than by the destination in the background: `reopen()` (SIGHUP,
 * logrotate's convention) writes out the buffer to the old file, opens the path anew and
 * swaps destinations in one synchronous step, so no line can go to the rotated file after
 * it, and there is never a moment without an open file for an exit to flush into.
 */
import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import { KubegateError } from '../errors.js';
import type { ProxyMetrics } from '../metrics.js';
import type { ApiAuditEvent } from './api/audit-event.js';
import type { AuditRecord, ForwardMetrics } from './forward.js';

export interface AuditSink {
  /** A forwarded request: a line of `kind: "request"`. */
  readonly write: (record: AuditRecord) => void;
  /** An administrative action or a login through the REST API: a line of `kind: "api"`. */
  readonly writeEvent: (event: ApiAuditEvent) => void;
  /** Writes out what is buffered and continues in a newly opened `file` (no-op for standard output). */
  reopen(): void;
  /** Writes out what is buffered, synchronously, and stops the flush timer. */
  close(): void;
}

// sonic-boom requires less than its largest single write (16 KiB).
const AUDIT_BUFFER_BYTES = 8 * 1024;
/** Request lines are handed to the destination in batches of about this many characters. */
const AUDIT_BATCH_CHARS = 64 * 1024;
const AUDIT_FLUSH_INTERVAL_MS = 1000;

export interface AuditSinkOptions {
  readonly enabled: boolean;
  /** File to append to; standard output when undefined. */
  readonly file: string | undefined;
  /** For tests: where lines go instead of `file`/standard output. */
  readonly destination?: pino.DestinationStream;
}

/** The file mode of a new audit file: owner only. */
const AUDIT_FILE_MODE = 0o600;

type AuditDestination = pino.DestinationStream & { fd?: number; flush?: () => void; flushSync?: () => void; end?: () => void };

/** An asynchronous, buffered destination on `file` (opened now, 0600 when new) or standard output. */
function openDestination(file: string | undefined): AuditDestination {
  let fd = 1;
  if (file !== undefined) {
    mkdirSync(dirname(file), { recursive: true });
    fd = openSync(file, 'a', AUDIT_FILE_MODE);
  }
  return pino.destination({ dest: fd, sync: false, minLength: AUDIT_BUFFER_BYTES });
}

export function createAuditSink(options: AuditSinkOptions): AuditSink {
  if (!options.enabled) return { write: () => undefined, writeEvent: () => undefined, reopen: () => undefined, close: () => undefined };
  let destination: AuditDestination;
  try {
    destination = options.destination ?? openDestination(options.file);
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', 'audit.file: cannot open the file for appending', { field: 'audit.file', cause });
  }
  /** Lines not yet handed to the destination, in order. */
  let batch = '';
  const handOver = (): void => {
    if (batch === '') return;
    const lines = batch;
    batch = '';
    destination.write(lines);
  };
  const flushNow = (): void => {
    try {
      handOver();
      destination.flushSync?.();
    } catch {
      // nothing buffered, or the destination is closed
    }
  };
  process.on('exit', flushNow);
  let buffered = false;
  const timer = setInterval(() => {
    if (!buffered) return;
    buffered = false;
    try {
      handOver();
      destination.flush?.();
    } catch {
      // the destination is closed: nothing more can be written
    }
  }, AUDIT_FLUSH_INTERVAL_MS).unref();
  function append(line: string): void {
    buffered = true;
    batch += line;
    if (batch.length >= AUDIT_BATCH_CHARS) handOver();
  }
  return {
    write(record) {
      append(requestLine(record));
    },
    writeEvent(event) {
      // Fields listed one by one: nothing else of the event reaches the line.
      const line = {
        type: 'audit',
        kind: 'api',
        time: new Date(event.time).toISOString(),
        action: event.action,
        user: event.user,
        tokenName: event.tokenName,
        status: event.status,
        code: event.code,
        address: event.address,
        userAgent: event.userAgent,
        target: event.target,
      };
      append(`${JSON.stringify(line)}\n`);
    },
    reopen() {
      if (options.file === undefined || options.destination !== undefined) return;
      flushNow();
      const rotated = destination;
      destination = openDestination(options.file);
      rotated.end?.();
    },
    close() {
      clearInterval(timer);
      process.off('exit', flushNow);
      flushNow();
    },
  };
}

/**
 * The `kind: "request"` line of a record: the fields of AuditRecord in its order, as
 * JSON.stringify would write them from an object, without building one. Two parts are
 * reused from the previous line when they would come out the same (a paired c=1 profile had
 * the line at ~10 µs per request, most of it these parts): the time's text up to its
 * milliseconds, per second; and the caller's identity (user, groups, whom it acted as, token,
 * cluster, role), which for a busy token is the same from one request to the next — reused
 * only when every field is the very same value (a UserInfo's groups are frozen, so the same
 * array is the same groups).
 */
function requestLine(record: AuditRecord): string {
  return (
    `{"type":"audit","kind":"request","time":"${isoTime(record.time)}",${identityFields(record)},"method":${json(record.method)},"path":${json(record.path)},` +
    `"status":${number(record.status)},"code":${json(record.code)},"durationMs":${number(record.durationMs)},` +
    `"bytesIn":${number(record.bytesIn)},"bytesOut":${number(record.bytesOut)},"upgrade":${record.upgrade},` +
    `"longRunning":${record.longRunning},"via":${json(record.via)}}\n`
  );
}

/** The second whose text was made last, and that text up to the milliseconds (`2026-12-05T06:00:00.`). */
let isoSecond = Number.NaN;
let isoSecondText = '';

/** `new Date(ms).toISOString()`, with the text up to the milliseconds made once per second. */
function isoTime(ms: number): string {
  if (!Number.isSafeInteger(ms) || Math.abs(ms) > MAX_DATE_MS) return new Date(ms).toISOString();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecondText = new Date(second * 1000).toISOString().slice(0, -4);
    isoSecond = second;
  }
  const milliseconds = ms - second * 1000;
  return `${isoSecondText}${milliseconds < 10 ? '00' : milliseconds < 100 ? '0' : ''}${milliseconds}Z`;
}

/** The latest time a Date can hold, in milliseconds either side of 1970. */
const MAX_DATE_MS = 8.64e15;

type IdentityInputs = Pick<AuditRecord, 'user' | 'groups' | 'impersonated' | 'tokenName' | 'cluster' | 'role'>;
/** The identity part of the last line whose identity cannot change in place, and what it was made from. */
let lastIdentity: { readonly inputs: IdentityInputs; readonly text: string } | undefined;

/** `"user":…,"groups":…,"impersonated":…,"tokenName":…,"cluster":…,"role":…` of the record. */
function identityFields(record: AuditRecord): string {
  const last = lastIdentity;
  if (last !== undefined && sameIdentity(last.inputs, record)) return last.text;
  const text =
    `"user":${json(record.user)},"groups":${JSON.stringify(record.groups)},"impersonated":${json(record.impersonated)},` +
    `"tokenName":${json(record.tokenName)},"cluster":${json(record.cluster)},"role":${json(record.role)}`;
  // Kept only when nothing in it can change in place: frozen groups, nobody impersonated (a new object per request).
  lastIdentity = Object.isFrozen(record.groups) && record.impersonated === null ? { inputs: identityInputs(record), text } : undefined;
  return text;
}

function sameIdentity(a: IdentityInputs, b: IdentityInputs): boolean {
  return a.user === b.user && a.groups === b.groups && a.impersonated === b.impersonated && a.tokenName === b.tokenName && a.cluster === b.cluster && a.role === b.role;
}

function identityInputs(record: AuditRecord): IdentityInputs {
  return { user: record.user, groups: record.groups, impersonated: record.impersonated, tokenName: record.tokenName, cluster: record.cluster, role: record.role };
}

function json(value: unknown): string {
  return value === null ? 'null' : JSON.stringify(value);
}

/** As JSON.stringify writes a number: `null` for NaN and infinities. */
function number(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

/** The `cluster` label of a request to a cluster kubegate does not know (or no cluster at all). */
export const UNKNOWN_CLUSTER = 'unknown';

/**
 * Feeds the forwarder's per-request hooks into the proxy's prom-client metrics. The cluster
 * ID of a request comes from its URL, which anyone may send: it becomes a label only when
 * `isKnownCluster` says kubegate knows that cluster, else `unknown` — otherwise every
 * anonymous request to a made-up ID would create a time series of its own.
 */
export function forwardMetrics(metrics: ProxyMetrics, isKnownCluster: (clusterId: string) => boolean): ForwardMetrics {
  return {
    requestStarted() {
      metrics.inflightRequests.inc();
    },
    requestFinished(record) {
      metrics.inflightRequests.dec();
      const cluster = record.cluster !== null && isKnownCluster(record.cluster) ? record.cluster : UNKNOWN_CLUSTER;
      metrics.requests.inc({ cluster, code: String(record.status), method: record.method });
      if (!record.longRunning && !record.upgrade) {
        metrics.requestDuration.observe({ cluster }, record.durationMs / 1000);
      }
    },
  };
}
