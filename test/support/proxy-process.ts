/**
 * One `kubegate proxy` as a real child process (this repository's CLI through tsx), for tests
 * that must kill a replica the hard way (SIGKILL: no graceful stop, no lease given up).
 * Resolves once it serves, with its URLs; its JSON log lines are collected.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const REPO = new URL('../..', import.meta.url).pathname;

export interface ProxyProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** `https://127.0.0.1:port` of the main listener. */
  readonly url: string;
  /** `http://127.0.0.1:port` of the metrics listener. */
  readonly metricsUrl: string;
  /** PEM of the CA the proxy made, or null when its configuration names certificate files. */
  readonly caPem: string | null;
  /** Log lines so far, parsed. */
  lines(): readonly Record<string, unknown>[];
  /** SIGKILL, and resolves once the process is gone. */
  kill(): Promise<void>;
}

export interface ProxyProcessOptions {
  readonly dataDir: string;
  /** A YAML configuration file (`--config`). */
  readonly configFile?: string;
  readonly env: Readonly<Record<string, string>>;
  /** Node options before the entry point (e.g. another `--import`). */
  readonly nodeArgs?: readonly string[];
}

export async function spawnProxy(options: ProxyProcessOptions): Promise<ProxyProcess> {
  const args = ['--import', 'tsx', ...(options.nodeArgs ?? []), join(REPO, 'src/cmd/main.ts'), 'proxy', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--data-dir', options.dataDir];
  if (options.configFile !== undefined) args.push('--config', options.configFile);
  const child = spawn(process.execPath, [...args, '--log-level', 'debug'], { cwd: REPO, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...options.env } });
  const exited = once(child, 'exit');
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const serving = new Promise<{ url: string; metricsUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the proxy did not start: ${stderr}`)), 60_000);
    void exited.then(() => reject(new Error(`the proxy exited: ${stderr}`)));
    let metricsUrl: string | undefined;
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(line);
      if (line['msg'] === 'listening' && line['tls'] === false) metricsUrl = `http://${String(line['address'])}`;
      if (line['msg'] === 'kubegate proxy is serving' && metricsUrl !== undefined) {
        clearTimeout(timer);
        resolve({ url: String(line['url']), metricsUrl });
      }
    });
  });
  try {
    const { url, metricsUrl } = await serving;
    return {
      child,
      url,
      metricsUrl,
      caPem: await readFile(join(options.dataDir, 'tls', 'ca.crt'), 'utf8').catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }),
      lines: () => lines,
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGKILL');
        await exited;
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}
