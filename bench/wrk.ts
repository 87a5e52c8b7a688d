/**
 * wrk (Debian's 4.1) as the load generator, in its own process: one thread, a fixed number
 * of keep-alive connections, a Lua script that sets the method, headers and body and
 * prints the summary as JSON. The generator's own CPU time (user + system, from the
 * shell's `times`) is reported with every run, so that its share of the two cores stays
 * visible beside the proxy's.
 *
 * The percentiles are wrk's own, after its coordinated-omission correction: a request that
 * took n ≥ 2e (e = duration ÷ requests per connection) adds synthetic samples at n − e,
 * n − 2e, … — so they are not percentiles of the requests timed, and one stall can carry
 * p99 (bench/loop-stalls.ts explains; Debian's wrk cannot hand the raw histogram to Lua).
 * `maxMs` is untouched by the correction: the slowest request as served.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Lua defining `request = function() … end`, for a different request each time (wrk then calls Lua per request). */
  readonly requestScript?: string;
  /** Where the Lua script is written. */
  readonly workDir: string;
  readonly timeoutSeconds?: number;
}

export interface WrkResult {
  readonly requests: number;
  readonly durationSeconds: number;
  readonly requestsPerSecond: number;
  readonly bytesPerSecond: number;
  /** Latency percentiles in milliseconds. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Socket errors plus non-2xx/3xx answers. */
  readonly errors: number;
  readonly non2xx: number;
  /** CPU seconds the generator used per second of run (1.0 = one core). */
  readonly generatorCores: number;
}

let scriptCount = 0;

function luaString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const script = join(options.workDir, `wrk-${process.pid}-${scriptCount++}.lua`);
  const lines = [`wrk.method = ${luaString(options.method ?? 'GET')}`];
  for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  if (options.body !== undefined) lines.push(`wrk.body = ${luaString(options.body)}`);
  if (options.requestScript !== undefined) lines.push(options.requestScript);
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d}\\n\',',
    '    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency:percentile(50), latency:percentile(99), latency.max))',
    'end',
  );
  writeFileSync(script, `${lines.join('\n')}\n`);
  const timeout = options.timeoutSeconds ?? 10;
  const command = `ulimit -n 20000 2>/dev/null; wrk -t1 -c${options.connections} -d${options.durationSeconds}s --timeout ${timeout}s -s "$1" "$2"; status=$?; times; exit $status`;
  const output = await new Promise<string>((resolve, reject) => {
    const proc = spawn('bash', ['-c', command, 'wrk', script, options.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const killer = setTimeout(() => proc.kill('SIGKILL'), (options.durationSeconds + timeout + 30) * 1000);
    // 'close', not 'exit': under load the process can exit before its output has been read.
    proc.once('close', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve(text);
      else reject(new Error(`wrk failed (${code}): ${text.slice(-1000)}`));
    });
  });
  const jsonLine = output.split('\n').find((line) => line.startsWith('WRKJSON '));
  if (jsonLine === undefined) throw new Error(`wrk printed no summary: ${output.slice(-1000)}`);
  const summary = JSON.parse(jsonLine.slice('WRKJSON '.length)) as Record<string, number>;
  const durationSeconds = (summary.duration_us ?? 1) / 1e6;
  // `times` prints the shell's own times, then its children's: "0m1.234s 0m0.567s".
  const timesLines = output.split('\n').filter((line) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(line.trim()));
  const childTimes = timesLines.at(-1) ?? '0m0s 0m0s';
  const generatorSeconds = childTimes
    .trim()
    .split(' ')
    .map((part) => {
      const match = /^(\d+)m([\d.]+)s$/.exec(part);
      return match === null ? 0 : Number(match[1]) * 60 + Number(match[2]);
    })
    .reduce((a, b) => a + b, 0);
  const requests = summary.requests ?? 0;
  const socketErrors = (summary.connect ?? 0) + (summary.read ?? 0) + (summary.write ?? 0) + (summary.timeout ?? 0);
  return {
    requests,
    durationSeconds,
    requestsPerSecond: requests / durationSeconds,
    bytesPerSecond: (summary.bytes ?? 0) / durationSeconds,
    p50Ms: (summary.p50 ?? 0) / 1000,
    p99Ms: (summary.p99 ?? 0) / 1000,
    maxMs: (summary.max ?? 0) / 1000,
    errors: socketErrors + (summary.status ?? 0),
    non2xx: summary.status ?? 0,
    generatorCores: generatorSeconds / durationSeconds,
  };
}
