/**
 * `kubegate agent` as a real child process (this repository's CLI through tsx), for end-to-end
 * tests: its JSON log lines are collected, and a test can wait for one, or kill the process
 * the hard way (SIGKILL, as a node failure would).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiClient } from './api-client.js';

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
  /** `--metrics-listen`; default `127.0.0.1:0`. */
  readonly metricsListen?: string;
  /** `--metrics-bearer-token-file`; default none. */
  readonly metricsBearerTokenFile?: string;
  readonly extraEnv?: Readonly<Record<string, string>>;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  /** Log lines so far, parsed. */
  lines(): readonly Record<string, unknown>[];
  /** Resolves with the first log line (past or future) whose `msg` matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** `http://host:port` of the agent's `health` or `metrics` listener, once it listens. */
  listenerUrl(listener: 'health' | 'metrics'): Promise<string>;
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
    '--metrics-listen',
    options.metricsListen ?? '127.0.0.1:0',
    ...(options.metricsBearerTokenFile === undefined ? [] : ['--metrics-bearer-token-file', options.metricsBearerTokenFile]),
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
  const waiters: { matches: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
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
        if (waiter.matches(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  const exited = once(child, 'exit');

  function waitForLine(matches: (line: Record<string, unknown>) => boolean, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const found = parsed.find(matches);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`agent ${options.agentId} logged no ${what} within ${timeoutMs} ms\n${parsed.map((line) => JSON.stringify(line)).join('\n')}\n${stderr}`));
      }, timeoutMs);
      waiters.push({
        matches,
        resolve: (line) => {
          clearTimeout(timer);
          resolvePromise(line);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`agent ${options.agentId} exited before logging ${what}\n${stderr}`));
      });
    });
  }

  return {
    child,
    lines: () => parsed,
    count: (pattern) => parsed.filter((line) => pattern.test(String(line['msg']))).length,
    waitForLog(pattern, timeoutMs = 20_000) {
      return waitForLine((line) => pattern.test(String(line['msg'])), String(pattern), timeoutMs);
    },
    async listenerUrl(listener) {
      const line = await waitForLine((candidate) => candidate['msg'] === 'listening' && candidate['listener'] === listener, `${listener} listening`, 20_000);
      return `http://${String(line['address'])}`;
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

export interface RegisteredAgentOptions {
  /** A directory of the test's own (files and the credential directory go under it). */
  readonly dir: string;
  readonly proxyUrl: string;
  readonly proxyCaPem: string;
  /** The proxy's REST API, as an admin. */
  readonly api: ApiClient;
  readonly adminToken: string;
  /** The cluster's API server (the fake), with the service account token it accepts. */
  readonly apiServer: { readonly url: string; readonly caPem: string; readonly token: string };
  readonly clusterId: string;
  readonly agentId: string;
  readonly metricsBearerTokenFile?: string;
}

/**
 * Registers the agent-mode cluster `clusterId` through the REST API, hands its one-time
 * registration token to a new agent process (credential directory under `dir`), and resolves
 * once that agent's tunnel is up.
 */
export async function spawnRegisteredAgent(options: RegisteredAgentOptions): Promise<AgentProcess> {
  const created = await options.api.request('POST', '/v1/clusters', { token: options.adminToken, body: { id: options.clusterId, mode: 'agent' } });
  if (created.status !== 201) throw new Error(`cannot create the agent-mode cluster ${options.clusterId}: ${created.text}`);
  const registration = new URL(created.json.import.url).pathname.replace(/^\/v1\/import\//, '').replace(/\.yaml$/, '');
  const files = join(options.dir, `agent-${options.agentId}`);
  const credentialDir = join(files, 'credential');
  await mkdir(credentialDir, { recursive: true, mode: 0o700 });
  await writeFile(join(files, 'proxy-ca.pem'), options.proxyCaPem);
  await writeFile(join(files, 'api-ca.pem'), options.apiServer.caPem);
  await writeFile(join(files, 'api-token'), options.apiServer.token);
  await writeFile(join(credentialDir, 'registration-token'), registration, { mode: 0o600 });
  const agent = spawnAgent({
    proxyUrl: options.proxyUrl,
    proxyCaFile: join(files, 'proxy-ca.pem'),
    clusterId: options.clusterId,
    agentId: options.agentId,
    apiServer: options.apiServer.url,
    apiServerName: 'localhost',
    apiCaFile: join(files, 'api-ca.pem'),
    apiTokenFile: join(files, 'api-token'),
    credentialDir,
    ...(options.metricsBearerTokenFile === undefined ? {} : { metricsBearerTokenFile: options.metricsBearerTokenFile }),
  });
  try {
    // Generous: a loaded machine (the whole suite on two cores) slows the agent's start a lot.
    await agent.waitForLog(/tunnel to the proxy is up/, 60_000);
  } catch (error) {
    await agent.kill('SIGKILL');
    throw error;
  }
  return agent;
}
