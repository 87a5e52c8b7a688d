/**
 * The webhook's `lastUsedAt` stamps: which uses of a token are written back to its
 * ClusterAuthToken, and how fast.
 *
 * Design note:
 * - A stamp is a merge PATCH over TLS to the API server (~480 µs of this process's CPU with
 *   its request) whose watch event then comes back to the informer (~270 µs more): ~150×
 *   the `$3` hash a review of a new token costs. Unbudgeted, a burst of distinct tokens was
 *   bounded by its stamps, not by hashing, and wrote to etcd at the rate tokens were seen.
 * - So stamps spend a token bucket: `perSecond` refilled continuously, at most one second's
 *   worth (`perSecond`, at least 1) saved up, one spent per PATCH, at most
 *   MAX_STAMPS_IN_FLIGHT PATCHes at once. The rest wait in a queue, one entry per token (a
 *   later use of a token already queued only moves its time forward: the newest use wins),
 *   at most `maxQueued` tokens. A use of a token not queued while the queue is full is
 *   dropped, counted (`dropped`), and not remembered as stamped, so the token's next use
 *   tries again. `perSecond` 0 stamps nothing.
 * - Reviews never wait for stamps: `record` only updates in-memory state; sending starts on
 *   a later turn of the event loop, after the review's answer was written.
 * - Each token is stamped at most once per `touchIntervalMs` (by the times of use, as the
 *   proxy stamps its own tokens). Which tokens were stamped when is remembered in an LRU of
 *   MAX_REMEMBERED_TOKENS, read with `peek` (a cached review's only cost here): past that
 *   many tokens the least recently stamped are forgotten one by one (each is stamped again
 *   on its next use, through the budget), never all at once.
 * - A failed PATCH is counted (`failed`) and not retried before the token's next use after
 *   the interval: an API server that refuses writes is not hammered.
 * - Time comes from `clock` (monotonic ms and a timer), injectable so that tests step it.
 */
import { LRUCache } from 'lru-cache';

/** PATCHes sent at once, whatever the budget. */
const MAX_STAMPS_IN_FLIGHT = 4;
/** Tokens whose last stamp is remembered (to stamp each once per interval). */
const MAX_REMEMBERED_TOKENS = 100_000;

export interface StampClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Runs `run` after `delayMs` (0: on a later turn of the event loop); returns a cancel. */
  schedule(run: () => void, delayMs: number): () => void;
}

const realStampClock: StampClock = {
  now: () => performance.now(),
  schedule(run, delayMs) {
    if (delayMs <= 0) {
      const immediate = setImmediate(run);
      return () => clearImmediate(immediate);
    }
    const timer = setTimeout(run, Math.ceil(delayMs));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface StampQueueOptions {
  /** Writes the stamp (the token's merge PATCH). */
  readonly send: (name: string, at: Date) => Promise<unknown>;
  /** PATCHes per second on average; 0 = never stamp. */
  readonly perSecond: number;
  /** Tokens waiting for their stamp, at most. */
  readonly maxQueued: number;
  /** Least time between two stamps of one token. */
  readonly touchIntervalMs: number;
  /** Whether `name` may be stamped (its object exists), asked only when a stamp would be queued. */
  readonly stampable?: (name: string) => boolean;
  readonly onFailed?: (name: string, error: unknown) => void;
  readonly clock?: StampClock;
  /** Tokens whose last stamp is remembered; default MAX_REMEMBERED_TOKENS (smaller in tests). */
  readonly rememberedTokens?: number;
}

export interface StampStats {
  /** PATCHes that succeeded. */
  readonly sent: number;
  /** PATCHes that failed. */
  readonly failed: number;
  /** Uses not recorded because the queue was full. */
  readonly dropped: number;
  /** Tokens waiting for their stamp now. */
  readonly queued: number;
}

export interface StampQueue {
  /** A successful use of token `name` at `at`; stamped later, within the budget. */
  record(name: string, at: Date): void;
  /** Sends nothing more; forgets what was queued. */
  stop(): void;
  stats(): StampStats;
}

export function createStampQueue(options: StampQueueOptions): StampQueue {
  const { send, perSecond, maxQueued, touchIntervalMs } = options;
  const clock = options.clock ?? realStampClock;
  const capacity = Math.max(1, perSecond);
  const lastStamped = new LRUCache<string, number>({ max: options.rememberedTokens ?? MAX_REMEMBERED_TOKENS });
  /** Token name → newest time of use not stamped yet, in the order first queued. */
  const pending = new Map<string, Date>();
  let budget = capacity;
  let refilledAt = clock.now();
  let inFlight = 0;
  let cancelWake: (() => void) | undefined;
  let stopped = false;
  let sent = 0;
  let failed = 0;
  let dropped = 0;

  function record(name: string, at: Date): void {
    if (stopped || perSecond <= 0) return;
    const time = at.getTime();
    const previous = lastStamped.peek(name);
    if (previous !== undefined && time - previous < touchIntervalMs) return;
    if (options.stampable !== undefined && !options.stampable(name)) return;
    if (pending.size >= maxQueued && !pending.has(name)) {
      dropped++;
      return;
    }
    lastStamped.set(name, time);
    pending.set(name, at);
    wake(0);
  }

  /** Drains on a later turn (or after `delayMs`), unless a wake-up is already due. */
  function wake(delayMs: number): void {
    if (cancelWake !== undefined) return;
    cancelWake = clock.schedule(() => {
      cancelWake = undefined;
      drain();
    }, delayMs);
  }

  function refill(): void {
    const now = clock.now();
    budget = Math.min(capacity, budget + ((now - refilledAt) * perSecond) / 1000);
    refilledAt = now;
  }

  function drain(): void {
    while (!stopped && inFlight < MAX_STAMPS_IN_FLIGHT && pending.size > 0) {
      refill();
      if (budget < 1) {
        wake(((1 - budget) * 1000) / perSecond);
        return;
      }
      budget -= 1;
      const [name, at] = pending.entries().next().value as [string, Date];
      pending.delete(name);
      inFlight++;
      send(name, at)
        .then(
          () => void sent++,
          (error: unknown) => {
            failed++;
            options.onFailed?.(name, error);
          },
        )
        .finally(() => {
          inFlight--;
          drain();
        });
    }
  }

  return {
    record,
    stop() {
      stopped = true;
      pending.clear();
      cancelWake?.();
      cancelWake = undefined;
    },
    stats: () => ({ sent, failed, dropped, queued: pending.size }),
  };
}
