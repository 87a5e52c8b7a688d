/**
 * The webhook's `lastUsedAt` stamp budget (src/webhook/sources/stamps.ts) with a stepped
 * clock: PATCHes spend a token bucket, the rest wait in a bounded queue (newest use per
 * token), a full queue drops and counts, each token is stamped once per interval, and the
 * memory of stamped tokens is an LRU that forgets one token at a time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createStampQueue } from '../../../src/webhook/sources/stamps.js';
import type { StampClock, StampQueueOptions } from '../../../src/webhook/sources/stamps.js';

const T0 = Date.parse('2026-12-05T06:00:00Z');

/** Time moves only when the test says so; timers run when it reaches their due time. */
class SteppedClock implements StampClock {
  ms = 0;
  private timers: { at: number; run: () => void; cancelled: boolean }[] = [];
  now = (): number => this.ms;
  schedule = (run: () => void, delayMs: number): (() => void) => {
    const timer = { at: this.ms + Math.max(0, delayMs), run, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };

  /** Runs every timer due by now (and those they schedule, when due), letting sends settle between. */
  async settle(): Promise<void> {
    for (;;) {
      await nextTurn();
      const due = this.timers.filter((timer) => !timer.cancelled && timer.at <= this.ms);
      if (due.length === 0) return;
      this.timers = this.timers.filter((timer) => !due.includes(timer));
      for (const timer of due) timer.run();
    }
  }

  /** Moves to now + ms, stopping at each timer's due time on the way (timers fire on time). */
  async advance(ms: number): Promise<void> {
    const target = this.ms + ms;
    for (;;) {
      await this.settle();
      const next = Math.min(...this.timers.filter((timer) => !timer.cancelled).map((timer) => timer.at));
      if (!(next <= target)) break;
      this.ms = next;
    }
    this.ms = target;
    await this.settle();
  }
}

/** A queue whose sends are recorded (and succeed, unless `fail`) on a stepped clock. */
function queueOn(options: Partial<StampQueueOptions> & { fail?: boolean } = {}) {
  const clock = new SteppedClock();
  const sends: { name: string; at: Date }[] = [];
  const queue = createStampQueue({
    perSecond: 10,
    maxQueued: 1000,
    touchIntervalMs: 60_000,
    clock,
    send: (name, at) => {
      sends.push({ name, at });
      return options.fail === true ? Promise.reject(new Error('refused')) : Promise.resolve();
    },
    ...options,
  });
  return { clock, sends, queue };
}

const use = (offsetMs = 0): Date => new Date(T0 + offsetMs);

describe('lastUsedAt stamp budget', () => {
  it('sends a burst of first uses at the budget: one second of stamps at once, then perSecond, the rest queued', async () => {
    const { clock, sends, queue } = queueOn({ perSecond: 10 });
    for (let i = 0; i < 45; i++) queue.record(`t-${i}`, use());
    await clock.settle();
    assert.equal(sends.length, 10, 'the saved-up second');
    assert.deepEqual(queue.stats(), { sent: 10, failed: 0, dropped: 0, queued: 35 });
    await clock.advance(99);
    assert.equal(sends.length, 10, 'not one whole stamp earned yet');
    await clock.advance(1);
    assert.equal(sends.length, 11);
    await clock.advance(1000);
    assert.equal(sends.length, 21);
    await clock.advance(2400);
    assert.equal(sends.length, 45);
    assert.deepEqual(
      sends.map((send) => send.name),
      Array.from({ length: 45 }, (_, i) => `t-${i}`),
      'first queued, first sent; each once',
    );
    assert.deepEqual(queue.stats(), { sent: 45, failed: 0, dropped: 0, queued: 0 });
  });

  it('saves up no more than one second of stamps while idle', async () => {
    const { clock, sends, queue } = queueOn({ perSecond: 5 });
    await clock.advance(60_000);
    for (let i = 0; i < 20; i++) queue.record(`t-${i}`, use());
    await clock.settle();
    assert.equal(sends.length, 5);
  });

  it('stamps a queued token with its newest use, in its first place in the queue', async () => {
    const { clock, sends, queue } = queueOn({ perSecond: 1 });
    queue.record('t-first', use());
    queue.record('t-a', use());
    queue.record('t-b', use());
    queue.record('t-a', use(61_000));
    await clock.settle();
    assert.deepEqual(sends.map((send) => send.name), ['t-first']);
    await clock.advance(1000);
    assert.deepEqual(sends.at(-1), { name: 't-a', at: use(61_000) });
    await clock.advance(1000);
    assert.equal(sends.at(-1)?.name, 't-b');
  });

  it('stamps a token at most once per interval, by the times of use', async () => {
    const { clock, sends, queue } = queueOn();
    queue.record('t-a', use());
    queue.record('t-a', use(30_000));
    await clock.advance(5000);
    assert.equal(sends.length, 1);
    queue.record('t-a', use(59_999));
    await clock.advance(5000);
    assert.equal(sends.length, 1);
    queue.record('t-a', use(60_000));
    await clock.advance(5000);
    assert.deepEqual(sends.map((send) => send.at), [use(), use(60_000)]);
  });

  it('drops and counts a use when the queue is full, and stamps that token on a later use once there is room', async () => {
    const { clock, sends, queue } = queueOn({ perSecond: 1, maxQueued: 3 });
    for (const name of ['t-1', 't-2', 't-3', 't-4', 't-5']) queue.record(name, use());
    queue.record('t-2', use(90_000));
    assert.deepEqual(queue.stats(), { sent: 0, failed: 0, dropped: 2, queued: 3 }, 't-4 and t-5 dropped; a queued token still moves forward');
    await clock.advance(10_000);
    assert.deepEqual(sends.map((send) => send.name), ['t-1', 't-2', 't-3']);
    assert.deepEqual(sends[1]?.at, use(90_000));
    queue.record('t-4', use(1000));
    await clock.advance(10_000);
    assert.equal(sends.at(-1)?.name, 't-4', 'a dropped use is not remembered as stamped');
    assert.deepEqual(queue.stats(), { sent: 4, failed: 0, dropped: 2, queued: 0 });
  });

  it('never sends more than 4 stamps at once, whatever the budget', async () => {
    const clock = new SteppedClock();
    const held: (() => void)[] = [];
    const queue = createStampQueue({
      perSecond: 1000,
      maxQueued: 100,
      touchIntervalMs: 60_000,
      clock,
      send: () => new Promise<void>((resolve) => held.push(resolve)),
    });
    for (let i = 0; i < 10; i++) queue.record(`t-${i}`, use());
    await clock.settle();
    assert.equal(held.length, 4);
    held[0]?.();
    await clock.settle();
    assert.equal(held.length, 5);
    for (const release of held) release();
    await clock.settle();
    for (const release of held) release();
    await clock.settle();
    for (const release of held) release();
    await clock.settle();
    assert.equal(held.length, 10);
    assert.equal(queue.stats().queued, 0);
  });

  it('counts a failed stamp and does not retry it before the next interval', async () => {
    const { clock, sends, queue } = queueOn({ fail: true });
    queue.record('t-a', use());
    await clock.advance(1000);
    queue.record('t-a', use(1000));
    await clock.advance(1000);
    assert.equal(sends.length, 1);
    assert.deepEqual(queue.stats(), { sent: 0, failed: 1, dropped: 0, queued: 0 });
  });

  it('queues no stamp for a token that may not be stamped (its object is gone), and does not remember it as stamped', async () => {
    let exists = false;
    const { clock, sends, queue } = queueOn({ stampable: () => exists });
    queue.record('t-a', use());
    await clock.advance(1000);
    assert.equal(sends.length, 0);
    exists = true;
    queue.record('t-a', use(1000));
    await clock.advance(1000);
    assert.deepEqual(sends, [{ name: 't-a', at: use(1000) }]);
  });

  it('stamps nothing with perSecond 0', async () => {
    const { clock, sends, queue } = queueOn({ perSecond: 0 });
    for (let i = 0; i < 5; i++) queue.record(`t-${i}`, use());
    await clock.advance(10_000);
    assert.equal(sends.length, 0);
    assert.deepEqual(queue.stats(), { sent: 0, failed: 0, dropped: 0, queued: 0 });
  });

  it('forgets the least recently stamped token past its bound, one at a time, never all at once', async () => {
    const { clock, sends, queue } = queueOn({ rememberedTokens: 3 });
    for (const name of ['t-a', 't-b', 't-c', 't-d']) queue.record(name, use());
    await clock.advance(1000);
    assert.equal(sends.length, 4);
    for (const name of ['t-b', 't-c', 't-d']) queue.record(name, use(1000));
    await clock.advance(1000);
    assert.equal(sends.length, 4, 'the three remembered tokens are not stamped again');
    queue.record('t-a', use(1000));
    await clock.advance(1000);
    assert.deepEqual(sends.slice(4).map((send) => send.name), ['t-a'], 'only the forgotten one is');
  });

  it('sends nothing after stop and forgets what was queued', async () => {
    const { clock, sends, queue } = queueOn({ perSecond: 1 });
    for (let i = 0; i < 5; i++) queue.record(`t-${i}`, use());
    await clock.settle();
    assert.equal(sends.length, 1);
    queue.stop();
    queue.record('t-late', use());
    await clock.advance(10_000);
    assert.equal(sends.length, 1);
    assert.equal(queue.stats().queued, 0);
  });
});
