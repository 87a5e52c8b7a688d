/**
 * Change notifications between kubegate replicas sharing one PostgreSQL database.
 *
 * Every write transaction calls `pg_notify('kubegate_changes', '<instance> <kind>:<key>')`
 * before COMMIT, so a notification exists exactly when its change was committed. Each store
 * instance keeps one dedicated connection that LISTENs on the channel and hands every
 * change made by ANOTHER instance to its local listeners. Changes of its own are delivered
 * locally right after commit (before the write resolves), and their echo from the server
 * is dropped by instance ID — so each subscriber hears each change exactly once, and the
 * writer's own caches do not depend on the notification round trip.
 *
 * When the connection drops, it is re-established with exponential backoff (with jitter,
 * capped) and every loss is reported to `onError`. A connection that silently stops
 * answering (a network partition sends no reset) is found by a periodic `SELECT 1` that
 * must answer within the connect timeout. Changes committed while the connection was down
 * are not replayed: caches must keep their own TTLs as the bound on staleness.
 */
import pg from 'pg';
import { KubegateError } from '../errors.js';
import type { ChangeKind, StoreChange } from './store.js';

export const CHANGE_CHANNEL = 'kubegate_changes';
/** A listener connection is named so, in `pg_stat_activity.application_name`. */
export const CHANGE_LISTENER_APPLICATION_NAME = 'kubegate-changes';

/** Kinds that travel in notifications; `resync` is made locally after a reconnection. */
const CHANGE_KINDS: readonly ChangeKind[] = ['user', 'identity', 'token', 'cluster', 'membership', 'provider', 'groups', 'agent', 'tunnel', 'report'];
const PAYLOAD_PATTERN = /^([0-9a-f]{16}) ([a-z]+):(.*)$/s;

export function changePayload(instanceId: string, change: StoreChange): string {
  return `${instanceId} ${change.kind}:${change.key}`;
}

export function parseChangePayload(payload: string): { instanceId: string; change: StoreChange } | undefined {
  const match = PAYLOAD_PATTERN.exec(payload);
  if (match === null || !CHANGE_KINDS.includes(match[2] as ChangeKind)) return undefined;
  return { instanceId: match[1]!, change: { kind: match[2] as ChangeKind, key: match[3]! } };
}

export interface ChangeFeedOptions {
  readonly connectionString: string;
  /** This store instance's ID (16 hex characters); its own notifications are dropped. */
  readonly instanceId: string;
  readonly connectTimeoutMs: number;
  readonly onChange: (change: StoreChange) => void;
  readonly onError: (error: unknown) => void;
  /** First reconnection delay; doubled after each failure up to `maxRetryDelayMs`. Default 100. */
  readonly minRetryDelayMs?: number;
  /** Default 10000. */
  readonly maxRetryDelayMs?: number;
  /** How often the connection is checked with `SELECT 1`; default 15000. */
  readonly checkIntervalMs?: number | undefined;
}

export interface ChangeFeed {
  close(): Promise<void>;
}

/** Starts listening; resolves once the first LISTEN is in place, rejects if it cannot be. */
export async function listenForChanges(options: ChangeFeedOptions): Promise<ChangeFeed> {
  const minDelayMs = options.minRetryDelayMs ?? 100;
  const maxDelayMs = options.maxRetryDelayMs ?? 10_000;
  let client: pg.Client | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  let listening = false;
  let checking = false;

  const check = (): void => {
    const current = client;
    // Only a connection that is listening and idle: pg clients take one query at a time.
    if (current === undefined || !listening || checking) return;
    checking = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the notification connection did not answer in time')), options.connectTimeoutMs);
    });
    Promise.race([current.query('SELECT 1'), deadline]).then(
      () => {
        clearTimeout(timer);
        checking = false;
      },
      (error: unknown) => {
        clearTimeout(timer);
        checking = false;
        lost(current, error);
      },
    );
  };
  const checkTimer = setInterval(check, options.checkIntervalMs ?? 15_000);
  checkTimer.unref();

  const deliver = (message: pg.Notification): void => {
    if (message.channel !== CHANGE_CHANNEL) return;
    const parsed = parseChangePayload(message.payload ?? '');
    if (parsed === undefined) {
      options.onError(new KubegateError('INTERNAL', 'ignored a malformed change notification'));
      return;
    }
    if (parsed.instanceId !== options.instanceId) options.onChange(parsed.change);
  };

  const lost = (which: pg.Client, error: unknown): void => {
    if (which !== client || closed) return;
    client = undefined;
    listening = false;
    which.end().catch(() => {});
    options.onError(new KubegateError('STORE_UNAVAILABLE', 'the change notification connection was lost; reconnecting', { cause: error }));
    scheduleReconnect();
  };

  const connect = async (): Promise<void> => {
    const next = new pg.Client({
      connectionString: options.connectionString,
      application_name: CHANGE_LISTENER_APPLICATION_NAME,
      connectionTimeoutMillis: options.connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    next.on('error', (error) => lost(next, error));
    next.on('end', () => lost(next, undefined));
    next.on('notification', deliver);
    client = next;
    try {
      await next.connect();
      await next.query(`LISTEN ${CHANGE_CHANNEL}`);
      listening = client === next;
    } catch (error) {
      lost(next, error);
      throw error;
    }
  };

  const scheduleReconnect = (): void => {
    if (closed || retryTimer !== undefined) return;
    const delayMs = Math.min(maxDelayMs, minDelayMs * 2 ** failures) * (0.5 + Math.random() / 2);
    failures += 1;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect().then(
        () => {
          failures = 0;
          // Whatever was committed while the connection was down was never heard.
          options.onChange({ kind: 'resync', key: '' });
        },
        () => {}, // `lost` has reported it and scheduled the next attempt
      );
    }, delayMs);
  };

  const close = async (): Promise<void> => {
    closed = true;
    clearInterval(checkTimer);
    clearTimeout(retryTimer);
    retryTimer = undefined;
    const current = client;
    client = undefined;
    listening = false;
    if (current !== undefined) await settledWithin(current.end(), options.connectTimeoutMs);
  };

  try {
    await connect();
  } catch (error) {
    await close();
    throw error;
  }
  return { close };
}

/**
 * Waits for `promise` to settle, but no longer than `timeoutMs`: ending a connection to a
 * peer that vanished without a reset would otherwise wait for TCP to give up.
 */
export async function settledWithin(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    const settled = promise.then(
      () => {},
      () => {},
    );
    await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
