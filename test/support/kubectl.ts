/**
 * Drives real kubectl binaries from tests.
 *
 * Design note: two clients matter. `system` is /usr/bin/kubectl, a dispatcher that runs the
 * client (1.27–1.33) matching the server's /version minor; kubectl ≥ 1.30 execs over
 * WebSocket. `1.20` is Debian's kubernetes-client unpacked by scripts/setup-kubectl.sh into
 * .test-tools/ — the SPDY-only exec path older clients still use. Every run gets its own
 * HOME and discovery cache directory, so no test sees another's cached discovery, and the
 * kubeconfig is a 0600 temp file removed afterwards. Children are killed by pid only.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

export type KubectlBinary = 'system' | '1.20';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of a kubectl binary; throws with the fix when it is missing. */
export function kubectlPath(binary: KubectlBinary): string {
  const path = binary === 'system' ? '/usr/bin/kubectl' : join(repositoryRoot, '.test-tools', 'kubectl-1.20', 'usr', 'bin', 'kubectl');
  if (!existsSync(path)) throw new Error(`kubectl ${binary} not found at ${path}; run: bash scripts/setup-kubectl.sh`);
  return path;
}

export interface KubeconfigOptions {
  readonly server: string;
  readonly caPem: string;
  readonly token?: string;
  readonly clientCertificatePem?: string;
  readonly clientKeyPem?: string;
  readonly namespace?: string;
  /** Extra fields for the user entry, e.g. `{ as: 'alice', 'as-groups': ['dev'] }`. */
  readonly user?: Readonly<Record<string, unknown>>;
}

/** A kubeconfig object with one cluster, user and context named `test`. */
export function buildKubeconfig(options: KubeconfigOptions): Record<string, unknown> {
  const user: Record<string, unknown> = { ...(options.user ?? {}) };
  if (options.token !== undefined) user.token = options.token;
  if (options.clientCertificatePem !== undefined) user['client-certificate-data'] = Buffer.from(options.clientCertificatePem).toString('base64');
  if (options.clientKeyPem !== undefined) user['client-key-data'] = Buffer.from(options.clientKeyPem).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: options.server, 'certificate-authority-data': Buffer.from(options.caPem).toString('base64') } }],
    users: [{ name: 'test', user }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test', namespace: options.namespace ?? 'default' } }],
    'current-context': 'test',
  };
}

export interface WrittenKubeconfig {
  readonly path: string;
  /** Removes the file and its temp directory. */
  remove(): Promise<void>;
}

/** Writes a kubeconfig (object or built from options) to a fresh 0600 temp file. */
export async function writeKubeconfig(config: KubeconfigOptions | Record<string, unknown>): Promise<WrittenKubeconfig> {
  const object = 'server' in config && 'caPem' in config ? buildKubeconfig(config as KubeconfigOptions) : config;
  const dir = await mkdtemp(join(tmpdir(), 'kubegate-kubeconfig-'));
  const path = join(dir, 'config');
  await writeFile(path, stringify(object), { mode: 0o600 });
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface KubectlOptions {
  readonly binary: KubectlBinary;
  /** A kubeconfig path, or an object / options written to a temp file for this run. */
  readonly kubeconfig: string | KubeconfigOptions | Record<string, unknown>;
  readonly args: readonly string[];
  readonly stdin?: string | Buffer;
  /** Kill the process after this long. Default 15000. */
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
}

export interface KubectlResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** A long-running kubectl (`get -w`, `logs -f`, `exec` with stdin). */
export interface KubectlProcess {
  readonly child: ChildProcess;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches; rejects on timeout or exit, with the output in the message. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Writes to stdin; `end()` closes it. */
  write(data: string | Buffer): void;
  end(): void;
  /** Resolves with the result once the process has exited. */
  exited(): Promise<KubectlResult>;
  /** SIGTERM (then SIGKILL after 2 s), waits for exit, removes temp files. */
  kill(): Promise<KubectlResult>;
}

/** Starts kubectl and returns helpers to wait for its output and to stop it. */
export async function spawnKubectl(options: KubectlOptions): Promise<KubectlProcess> {
  const binaryPath = kubectlPath(options.binary);
  const home = await mkdtemp(join(tmpdir(), 'kubegate-kubectl-home-'));
  let kubeconfigPath: string;
  if (typeof options.kubeconfig === 'string') {
    kubeconfigPath = options.kubeconfig;
  } else {
    kubeconfigPath = join(home, 'kubeconfig');
    const object = 'server' in options.kubeconfig && 'caPem' in options.kubeconfig ? buildKubeconfig(options.kubeconfig as KubeconfigOptions) : options.kubeconfig;
    await writeFile(kubeconfigPath, stringify(object), { mode: 0o600 });
  }
  const child = spawn(binaryPath, ['--kubeconfig', kubeconfigPath, '--cache-dir', join(home, 'cache'), ...options.args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...(options.env ?? {}) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined);
  if (options.stdin !== undefined) child.stdin.end(options.stdin);

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 15_000);
  const exit = (async (): Promise<KubectlResult> => {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    await rm(home, { recursive: true, force: true });
    return { code, signal, stdout, stderr, timedOut };
  })();

  const process_: KubectlProcess = {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async waitForOutput(pattern, timeoutMs = 10_000) {
      const matches = (): boolean => (typeof pattern === 'string' ? stdout.includes(pattern) : pattern.test(stdout));
      const deadline = performance.now() + timeoutMs;
      let hasExited = false;
      void exit.then(() => (hasExited = true));
      while (!matches()) {
        if (hasExited || performance.now() > deadline) {
          throw new Error(`kubectl output did not match ${String(pattern)}${hasExited ? ' before it exited' : ` within ${timeoutMs} ms`}\nstdout: ${stdout}\nstderr: ${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return stdout;
    },
    write: (data) => void child.stdin.write(data),
    end: () => child.stdin.end(),
    exited: () => exit,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const escalation = setTimeout(() => child.kill('SIGKILL'), 2000);
        const result = await exit;
        clearTimeout(escalation);
        return result;
      }
      return exit;
    },
  };
  return process_;
}

/** Runs kubectl to completion. */
export async function runKubectl(options: KubectlOptions): Promise<KubectlResult> {
  const kubectl = await spawnKubectl({ ...options, stdin: options.stdin ?? '' });
  return kubectl.exited();
}

export interface PortForwardResult {
  /** What came back through the forwarded connection for each message sent. */
  readonly echoes: readonly string[];
  /** kubectl's stderr (it reports forwarding errors there). */
  readonly stderr: string;
}

/**
 * `kubectl port-forward <pod> :<port>` against a fake pod's echo: waits for kubectl's
 * "Forwarding from 127.0.0.1:N" line, opens one local connection per message, sends it,
 * half-closes and collects everything that comes back, then stops kubectl.
 */
export async function portForwardEcho(options: { readonly binary: KubectlBinary; readonly kubeconfig: KubectlOptions['kubeconfig']; readonly pod: string; readonly port: number; readonly messages: readonly string[] }): Promise<PortForwardResult> {
  const kubectl = await spawnKubectl({ binary: options.binary, kubeconfig: options.kubeconfig, args: ['port-forward', options.pod, `:${options.port}`], timeoutMs: 60_000 });
  try {
    const output = await kubectl.waitForOutput(/Forwarding from 127\.0\.0\.1:(\d+)/, 20_000);
    const localPort = Number(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
    const echoes: string[] = [];
    for (const message of options.messages) {
      const socket = connect(localPort, '127.0.0.1');
      let received = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
      // kubectl resets the local connection when forwarding fails: what arrived is the answer.
      socket.on('error', () => undefined);
      const closed = new Promise((resolve) => socket.once('close', resolve));
      await once(socket, 'connect');
      socket.end(message);
      await closed;
      echoes.push(received);
    }
    return { echoes, stderr: kubectl.stderr() };
  } finally {
    await kubectl.kill();
  }
}

export interface AttachEchoOptions {
  readonly binary: KubectlBinary;
  readonly kubeconfig: KubectlOptions['kubeconfig'];
  readonly pod: string;
  /** Lines to type, each ending in `\n`. */
  readonly lines: readonly string[];
  /** Runs once the first line has come back, while the session is open (e.g. to count sessions). */
  readonly whileAttached?: () => Promise<void>;
}

/**
 * `kubectl attach -i <pod>` to a fake pod's main process, which echoes its stdin: types each
 * line only once the one before has come back — so the echo is proven interactive, not a copy
 * made after stdin closed — then closes stdin, which detaches, and resolves with kubectl's
 * result once it has exited.
 */
export async function attachEcho(options: AttachEchoOptions): Promise<KubectlResult> {
  const kubectl = await spawnKubectl({ binary: options.binary, kubeconfig: options.kubeconfig, args: ['attach', '-i', options.pod], timeoutMs: 60_000 });
  try {
    let expected = '';
    for (const [index, line] of options.lines.entries()) {
      kubectl.write(line);
      expected += line;
      await kubectl.waitForOutput(expected, 20_000);
      if (index === 0) await options.whileAttached?.();
    }
    kubectl.end();
    return await kubectl.exited();
  } finally {
    await kubectl.kill();
  }
}
