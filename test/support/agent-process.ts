/**
 * `kubegate agent` as a real child process (this repository's CLI through tsx), for end-to-end
 * tests: its JSON log lines are collected, and a test can wait for one, or kill the process
 * the hard way (SIGKILL, as a node failure would).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface AgentProcessOptions {
  readonly proxyUrl: string;
  readonly proxyCaFile: string;
  readonly clusterId: string;
  readonly agentId: string;
  readonly apiServer: string;
  readonly apiCaFile: string;
  readonly apiTokenFile: string;
  readonly apiServerName?: string;
  /** Default: the `kubegate-agent` Secret of `kubegate-system` (through the API server). */
  readonly credentialDir?: string;
  readonly extraEnv?: Readonly<Record<string, string>>;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  /** Log lines so far, parsed. */
  lines(): readonly Record<string, unknown>[];
  /** Resolves with the first log line (past or future) whose `msg` matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the number of lines whose `msg` matches. */
  count(pattern: RegExp): number;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnAgent(options: AgentProcessOptions): AgentProcess {
  const tsx = fileURLToPath(import.meta.resolve('tsx'));
  const args = [
    '--import',
    tsx,
    join(repositoryRoot, 'src', 'cmd', 'main.ts'),
    'agent',
    '--proxy-url',
    options.proxyUrl,
    '--proxy-ca-file',
    options.proxyCaFile,
    '--cluster',
    options.clusterId,
    '--agent-id',
    options.agentId,
    '--api-server',
    options.apiServer,
    '--api-ca-file',
    options.apiCaFile,
    '--api-token-file',
    options.apiTokenFile,
    '--health-listen',
    '127.0.0.1:0',
    '--log-level',
    'debug',
    ...(options.apiServerName === undefined ? [] : ['--api-server-name', options.apiServerName]),
    ...(options.credentialDir === undefined ? ['--namespace', 'kubegate-system'] : ['--credential-dir', options.credentialDir]),
  ];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...(options.extraEnv ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const parsed: Record<string, unknown>[] = [];
  const waiters: { pattern: RegExp; resolve: (line: Record<string, unknown>) => void }[] = [];
  let pending = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const text = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      parsed.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(String(line['msg']))) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  const exited = once(child, 'exit');

  return {
    child,
    lines: () => parsed,
    count: (pattern) => parsed.filter((line) => pattern.test(String(line['msg']))).length,
    waitForLog(pattern, timeoutMs = 20_000) {
      const found = parsed.find((line) => pattern.test(String(line['msg'])));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`agent ${options.agentId} logged no ${String(pattern)} within ${timeoutMs} ms\n${parsed.map((line) => JSON.stringify(line)).join('\n')}\n${stderr}`));
        }, timeoutMs);
        waiters.push({
          pattern,
          resolve: (line) => {
            clearTimeout(timer);
            resolvePromise(line);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`agent ${options.agentId} exited before logging ${String(pattern)}\n${stderr}`));
        });
      });
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}
