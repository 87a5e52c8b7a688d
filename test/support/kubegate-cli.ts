/**
 * This repository's `kubegate` CLI as an executable on PATH, for tests where another program
 * runs it (kubectl running the exec credential plugin) or a test runs it as a person would
 * (the admin commands): a small shell wrapper that starts src/cmd/main.ts through tsx with
 * the current Node.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Writes `<binDir>/kubegate` and answers binDir, ready to put first on PATH. */
export async function installKubegateCli(binDir: string): Promise<string> {
  await mkdir(binDir, { recursive: true });
  const tsx = fileURLToPath(import.meta.resolve('tsx'));
  const main = join(repositoryRoot, 'src', 'cmd', 'main.ts');
  await writeFile(join(binDir, 'kubegate'), `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${main}" "$@"\n`);
  await chmod(join(binDir, 'kubegate'), 0o755);
  return binDir;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `<binDir>/kubegate args…` to completion with exactly `env` (plus PATH), optional
 * standard input; never throws for a non-zero exit, so tests assert on the code.
 */
export async function runKubegateCli(binDir: string, args: readonly string[], options: { env: Readonly<Record<string, string>>; stdin?: string }): Promise<CliResult> {
  const child = spawn(join(binDir, 'kubegate'), args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.stdin ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}
