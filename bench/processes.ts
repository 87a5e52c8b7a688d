/**
 * Child processes of a benchmark run and what is measured of them from outside: every
 * server and generator starts with the soft open-file limit raised to the hard one (up to
 * 20,000), memory is read from /proc (VmRSS of the process and all its descendants, so a
 * multi-process server — nginx, kubegate --workers — is counted whole), and CPU time from
 * /proc/<pid>/stat. Every child is stopped (SIGTERM, then SIGKILL after a grace period) by
 * its own pid when the run ends or fails.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcessWithoutNullStreams;
  /** Lines the child printed on stdout, as they come (after the ready line). */
  onLine(listener: (line: string) => void): void;
  /** Writes one line to the child's stdin. */
  send(line: string): void;
  stop(): Promise<void>;
  /** The last lines of stderr, for error messages. */
  stderrTail(): string;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Resolves start() when a stdout line matches; default: a JSON line with `"ready":true`. */
  readonly ready?: ((line: string) => boolean) | 'at-once';
  readonly readyTimeoutMs?: number;
}

const OPEN_FILES = 20_000;
const live = new Set<Child>();

/** Runs `command args…` under a shell that raised the open-file limit first. */
export async function startChild(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Promise<{ child: Child; readyLine: string }> {
  const wrapper = `ulimit -n ${OPEN_FILES} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const proc = spawn('bash', ['-c', wrapper, 'bench-child', command, ...args], {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (text: string) => {
    stderr.push(text);
    if (stderr.length > 50) stderr.shift();
  });
  const listeners: ((line: string) => void)[] = [];
  /** Lines printed after the ready line but before anyone listened. */
  const early: string[] = [];
  const lines = createInterface({ input: proc.stdout });
  const readyOption = options.ready ?? ((line: string) => line.startsWith('{') && line.includes('"ready":true'));
  const isReady = readyOption === 'at-once' ? () => false : readyOption;
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.once('exit', () => {
    exited = true;
    resolve();
  }));
  const child: Child = {
    name,
    pid: proc.pid ?? -1,
    process: proc,
    onLine: (listener) => {
      listeners.push(listener);
      for (const line of early.splice(0)) listener(line);
    },
    send: (line) => {
      if (!proc.stdin.destroyed) proc.stdin.write(`${line}\n`);
    },
    async stop() {
      live.delete(child);
      if (exited) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 8000);
      await exit;
      clearTimeout(timer);
    },
    stderrTail: () => stderr.join('').slice(-2000),
  };
  live.add(child);
  const readyLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not get ready in time: ${child.stderrTail()}`)), options.readyTimeoutMs ?? 60_000);
    let ready = false;
    if (readyOption === 'at-once') {
      ready = true;
      clearTimeout(timer);
      resolve('');
    }
    lines.on('line', (line) => {
      if (!ready && isReady(line)) {
        ready = true;
        clearTimeout(timer);
        resolve(line);
        return;
      }
      if (listeners.length === 0) early.push(line);
      for (const listener of listeners) listener(line);
    });
    proc.once('exit', (code) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before it was ready: ${child.stderrTail()}`));
      }
    });
  });
  return { child, readyLine };
}

/** Stops every child still running (SIGTERM by pid, then SIGKILL). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => child.stop()));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The pid and every descendant's pid (bash wrappers `exec`, so the pid is the program's). */
export function processTree(pid: number): number[] {
  const result = [pid];
  for (let i = 0; i < result.length && i < 1000; i++) {
    const current = result[i] as number;
    try {
      for (const task of readdirSync(`/proc/${current}/task`)) {
        const children = readFileSync(`/proc/${current}/task/${task}/children`, 'utf8').trim();
        if (children !== '') for (const child of children.split(/\s+/)) result.push(Number(child));
      }
    } catch {
      // the process is gone
    }
  }
  return result;
}

/** Resident memory of the process tree, bytes. */
export function rssBytes(pid: number): number {
  let total = 0;
  for (const member of processTree(pid)) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${member}/status`, 'utf8'));
      if (match !== null) total += Number(match[1]) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) used so far by the process tree. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${member}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** Samples the tree's RSS every `intervalMs` until stopped; reports the peak. */
export function sampleRss(pid: number, intervalMs = 50): { stop(): { startBytes: number; peakBytes: number; endBytes: number } } {
  const startBytes = rssBytes(pid);
  let peakBytes = startBytes;
  let last = startBytes;
  const timer = setInterval(() => {
    last = rssBytes(pid);
    if (last > peakBytes) peakBytes = last;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      last = rssBytes(pid);
      if (last > peakBytes) peakBytes = last;
      return { startBytes, peakBytes, endBytes: last };
    },
  };
}
