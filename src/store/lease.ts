/**
 * Runs work in one process of the installation at a time: whoever holds a lease in the
 * store (`takeLease`), among every proxy replica and `--workers` worker sharing it.
 *
 * Design note:
 * - Every `renewIntervalMs` (a third of the lease by default) each process asks the store
 *   for the lease in one atomic statement: the holder renews it, a free or lapsed lease is
 *   taken, a lease held by another process is left alone. The database's clock decides
 *   lapses (PostgreSQL's `now()`), so replicas whose clocks disagree cannot both hold it.
 * - The holder counts its lease from the moment it *sent* the request that renewed it, by
 *   its own clock: the database's deadline is at least that late, so the holder's local
 *   deadline comes first and it has stopped before anyone can take over (clock rates
 *   agree even when clocks do not). If that local deadline passes without a renewal — the
 *   database hangs, answers late or refuses — the work stops then (`onLost`).
 * - Fail safe: a store error means "not held". While the store cannot be reached nobody
 *   runs the work (it needs the store anyway); that is logged once per outage, and the
 *   recovery once.
 * - A process that dies stops renewing: another takes over within one lease period plus one
 *   renewal interval. A process that stops gracefully gives the lease up (`releaseLease`),
 *   so its successor takes over at its next attempt.
 * - Acquiring and losing are logged at info level with this process's holder ID.
 */
import { toKubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from './store.js';

export interface LeaseOptions {
  readonly store: Pick<Store, 'takeLease' | 'releaseLease'>;
  /** The lease's name (one per kind of work). */
  readonly name: string;
  /** This process's ID: random, per process (logged). */
  readonly holder: string;
  readonly durationMs: number;
  /** Time between attempts. Default a third of `durationMs`. */
  readonly renewIntervalMs?: number;
  readonly logger: Logger;
  /** This process now holds the lease: start the work. */
  onAcquired(): void;
  /** This process no longer holds it (or may not): stop the work now. */
  onLost(): void | Promise<void>;
}

export interface HeldLease {
  /** Whether this process holds the lease now. */
  held(): boolean;
  /** Resolves once the first attempt is over (held or not). */
  readonly ready: Promise<void>;
  /** Stops trying; stops the work if it runs and gives the lease up. */
  stop(): Promise<void>;
}

export function holdLease(options: LeaseOptions): HeldLease {
  const { store, name, holder, durationMs, logger } = options;
  const renewIntervalMs = options.renewIntervalMs ?? Math.floor(durationMs / 3);
  if (!(durationMs > 0) || !(renewIntervalMs > 0) || renewIntervalMs >= durationMs) {
    throw new TypeError('durationMs must be positive and renewIntervalMs between 0 and durationMs');
  }
  const log = logger.child({ lease: name, holder });
  let holding = false;
  let stopped = false;
  let nextAttempt: NodeJS.Timeout | undefined;
  let lapse: NodeJS.Timeout | undefined;
  let attempting: Promise<void> = Promise.resolve();
  /** The store error last logged (one warning per outage). */
  let outage: string | undefined;
  /** The other holder last logged. */
  let otherHolder: string | undefined;

  function lose(reason: string): Promise<void> | void {
    if (lapse !== undefined) clearTimeout(lapse);
    lapse = undefined;
    if (!holding) return;
    holding = false;
    log.info({ reason }, 'this process no longer holds the background job lease: its background jobs stop');
    return Promise.resolve(options.onLost()).catch((error: unknown) => log.warn({ err: error }, 'stopping the background jobs failed'));
  }

  async function attempt(): Promise<void> {
    const sentAt = Date.now();
    let current: string;
    try {
      current = await store.takeLease(name, holder, durationMs);
    } catch (error) {
      const failure = toKubegateError(error);
      const reason = `${failure.code}: ${failure.message}`;
      if (outage === undefined) {
        log.warn({ error: reason }, 'the store cannot be asked for the background job lease: no process runs the background jobs until it can');
      }
      outage = reason;
      await lose('the store did not renew the lease');
      return;
    }
    if (outage !== undefined) log.info('the store answers the background job lease again');
    outage = undefined;
    if (stopped) return;
    const deadline = sentAt + durationMs;
    if (current !== holder || deadline <= Date.now()) {
      await lose(current === holder ? 'the renewal came back too late' : 'another process holds the lease');
      if (current !== holder && current !== otherHolder) log.info({ heldBy: current }, 'another process holds the background job lease and runs the background jobs');
      otherHolder = current === holder ? undefined : current;
      return;
    }
    otherHolder = undefined;
    if (lapse !== undefined) clearTimeout(lapse);
    lapse = setTimeout(() => void lose('the lease lapsed before it could be renewed'), deadline - Date.now());
    lapse.unref();
    if (!holding) {
      holding = true;
      log.info({ durationMs }, 'this process holds the background job lease: it runs the background jobs');
      try {
        options.onAcquired();
      } catch (error) {
        log.error({ err: error }, 'starting the background jobs failed');
      }
    }
  }

  function schedule(): void {
    if (stopped) return;
    nextAttempt = setTimeout(() => {
      attempting = attempt().finally(schedule);
    }, renewIntervalMs);
    nextAttempt.unref();
  }

  attempting = attempt().finally(schedule);
  return {
    held: () => holding,
    ready: attempting,
    async stop() {
      stopped = true;
      if (nextAttempt !== undefined) clearTimeout(nextAttempt);
      await attempting;
      if (nextAttempt !== undefined) clearTimeout(nextAttempt);
      await lose('the process stops');
      // Also when the last attempt took it just as the stop began: nobody should wait for it to lapse.
      await store.releaseLease(name, holder).catch((error: unknown) => log.warn({ error: toKubegateError(error).message }, 'giving the background job lease up failed; it lapses by itself'));
    },
  };
}
