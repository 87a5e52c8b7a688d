/**
 * A kubegate process's own account of its event-loop stalls during a benchmark round, read
 * from its `/metrics` (prom-client's default metrics, on the metrics listener the harness
 * gives every kubegate it starts).
 *
 * Why: wrk's p99 is not a percentile of the requests it timed. Before it reports, wrk 4
 * "corrects for coordinated omission" (stats_correct): every request that took n µs, where
 * n is at least twice the round's mean interval between two requests on one connection
 * (e = duration ÷ (requests ÷ connections)), adds synthetic samples at n − e, n − 2e, … down
 * to e. One stall of D ms that holds every connection at c=16 (e ≈ 3.5 ms at 4,600 req/s)
 * so adds about 16 × D/e samples spread evenly below D — at D ≈ 250 ms more than 1 % of a
 * 5-second round, which puts wrk's p99 near D − 50 ms although the other requests were
 * fast and the throughput did not move (BENCHMARKS.md, 2026-12-05, "the single process's
 * c=16 p99"). So the table prints beside it the slowest request as served (wrk's max,
 * which the correction leaves alone) and, for kubegate, the longest event-loop delay of the
 * round and how many garbage-collector pauses of 100 ms or more it had: a p99 in the
 * hundreds of milliseconds then shows whether one stall made it, and what kind.
 *
 * `nodejs_eventloop_lag_max_seconds` is reset by every scrape (prom-client reads and resets
 * its monitorEventLoopDelay histogram), so `watchLoopStalls` scrapes once just before the
 * round (which resets it) and once after it (the round's maximum); the GC figure is the
 * difference of the `nodejs_gc_duration_seconds` counts over 0.1 s between the two scrapes. With `--workers`,
 * the primary's aggregated registry answers: the largest delay of any worker, the pauses of all.
 * The same scrape also gives the idle scenario its V8 heap figure (`heapUsedBytes`).
 */
import http from 'node:http';

/** What one round cost the process in stalls. */
export interface RoundStalls {
  /** The longest event-loop delay of the round, ms. */
  readonly loopDelayMaxMs: number;
  /** Garbage-collector pauses of 100 ms or more during the round. */
  readonly gcPausesOver100Ms: number;
}

function scrape(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

/** Sum of the samples of `name` whose labels match `labels` (every label given, any others). */
function sum(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const labelText = rest[0] === '{' ? rest.slice(1, rest.indexOf('}')) : '';
    if (Object.entries(labels).some(([key, value]) => !labelText.includes(`${key}="${value}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The longest event-loop delay since the previous scrape, and the GC pauses of 100 ms or more since the start. */
async function readLoopStalls(metricsUrl: string): Promise<RoundStalls> {
  const text = await scrape(metricsUrl);
  const pauses = sum(text, 'nodejs_gc_duration_seconds_count');
  const shortPauses = sum(text, 'nodejs_gc_duration_seconds_bucket', { le: '0.1' });
  return { loopDelayMaxMs: sum(text, 'nodejs_eventloop_lag_max_seconds') * 1000, gcPausesOver100Ms: pauses - shortPauses };
}

/** Call before a round; the function it returns, after it: the round's stalls. */
export async function watchLoopStalls(metricsUrl: string): Promise<() => Promise<RoundStalls>> {
  const before = await readLoopStalls(metricsUrl);
  return async () => {
    const after = await readLoopStalls(metricsUrl);
    return { loopDelayMaxMs: after.loopDelayMaxMs, gcPausesOver100Ms: after.gcPausesOver100Ms - before.gcPausesOver100Ms };
  };
}

/** The V8 heap in use now (`nodejs_heap_size_used_bytes`; with `--workers`, all workers'): the idle scenario's heap figure. */
export async function heapUsedBytes(metricsUrl: string): Promise<number> {
  return sum(await scrape(metricsUrl), 'nodejs_heap_size_used_bytes');
}
