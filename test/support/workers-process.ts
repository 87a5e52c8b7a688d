/**
 * `kubegate proxy --workers N` as a real process tree (this repository's CLI through tsx):
 * resolves once the primary announces that every worker serves, and kills the whole tree
 * the hard way in cleanup.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const REPO = new URL('../..', import.meta.url).pathname;

export interface WorkersProcess {
  readonly process: ChildProcessWithoutNullStreams;
  /** Exit code of the primary. */
  readonly exited: Promise<number | null>;
  /** `https://host:port` of the shared listener. */
  readonly origin: string;
  readonly caPem: string;
  readonly workerPids: readonly number[];
  /** The primary's metrics listener. */
  readonly metricsUrl: string;
  /** stdout lines and stderr chunks so far. */
  readonly output: string[];
  /** SIGKILL to the primary and every worker, if still running. */
  kill(): void;
}

export async function startWorkersProcess(options: { readonly dataDir: string; readonly workers: number; readonly env: Readonly<Record<string, string>> }): Promise<WorkersProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'src/cmd/main.ts'), 'proxy', '--workers', String(options.workers), '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--data-dir', options.dataDir, '--log-level', 'info'],
    { cwd: REPO, env: { ...process.env, KUBEGATE_WORKERS: undefined, ...options.env } },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const output: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (text: string) => output.push(text));
  const serving = await new Promise<{ address: string; workers: number[]; metricsUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the workers did not start: ${output.join('')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`the proxy exited (${code}): ${output.join('')}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      output.push(line);
      if (line.includes('"msg":"kubegate proxy workers are serving"')) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
  });
  return {
    process: child,
    exited,
    origin: `https://${serving.address}`,
    caPem: await readFile(join(options.dataDir, 'tls', 'ca.crt'), 'utf8'),
    workerPids: serving.workers,
    metricsUrl: serving.metricsUrl,
    output,
    kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      for (const pid of serving.workers) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}
