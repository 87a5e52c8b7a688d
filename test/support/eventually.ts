/**
 * Waits for a condition that something else (a sync loop, a stream closing, a background
 * write) makes true. Prefer waiting on the event itself (`once(emitter, 'close')`); use this
 * when the only observable is state. Nothing is measured: a test never asserts how long it
 * took. The deadline is on the monotonic clock (`performance.now()`): a jump of the wall
 * clock (seen once on the test machine: ~10 minutes) neither ends a wait at once nor
 * stretches it without bound.
 */

const CHECK_INTERVAL_MS = 10;

/**
 * Resolves once `check()` holds (checked at once, then every 10 ms); rejects after
 * `timeoutMs` with an error naming `what`.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'a condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, CHECK_INTERVAL_MS));
  }
}
