/**
 * Every way kubegate is started gives V8 the same flags (`--max-semi-space-size=N`, README
 * "Operating → Memory"): the `kubegate` bin (the shebang of src/cmd/main.ts, kept by tsc),
 * `npm start`, the image's ENTRYPOINT (proxy, webhook and agent), and deploy/ and the agent
 * import, which must not replace that ENTRYPOINT. The files users run are read, and the bin,
 * the ENTRYPOINT's command line and `npm start` (with `--workers`) are started from a fresh
 * build: a probe loaded through NODE_OPTIONS records in each kubegate process its node flags
 * and V8's heap size limit, which moves with the semi-space size and must equal that of a
 * plain `node` given the shipped flags.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { importManifestObjects } from '../../src/clusters/import-manifest.js';
import { eventually } from '../support/eventually.js';
import { shebangNodeFlags, startScriptNodeFlags } from '../support/shipped-node-flags.js';

const run = promisify(execFile);
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const manifest = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; scripts: Record<string, string> };
const BIN = manifest.bin['kubegate']!;
/** The flags as written once, in the bin's shebang. */
const SHIPPED = shebangNodeFlags(await readFile(join(REPO, 'src/cmd/main.ts'), 'utf8'));

/** Records, in each process that runs kubegate's entry point, its pid, whether it is a cluster worker, its node flags and V8's heap size limit. */
const PROBE = `
import { appendFileSync, realpathSync } from 'node:fs';
import cluster from 'node:cluster';
import v8 from 'node:v8';
const out = process.env.KUBEGATE_HEAP_PROBE_FILE;
let entry = '';
try { entry = realpathSync(process.argv[1] ?? ''); } catch {}
if (out && entry.endsWith('/dist/cmd/main.js')) {
  appendFileSync(out, JSON.stringify({ pid: process.pid, worker: cluster.isWorker, execArgv: process.execArgv, heapSizeLimit: v8.getHeapStatistics().heap_size_limit }) + '\\n');
}
`;

interface ProbeRecord {
  readonly pid: number;
  readonly worker: boolean;
  readonly execArgv: readonly string[];
  readonly heapSizeLimit: number;
}

async function heapSizeLimitOf(flags: readonly string[]): Promise<number> {
  const { stdout } = await run(process.execPath, [...flags, '-p', 'v8.getHeapStatistics().heap_size_limit']);
  return Number(stdout.trim());
}

/** Every container spec in `value` (a manifest object, at any depth). */
function containersIn(value: unknown): Record<string, unknown>[] {
  if (Array.isArray(value)) return value.flatMap(containersIn);
  if (value === null || typeof value !== 'object') return [];
  const found: Record<string, unknown>[] = [];
  for (const [key, inner] of Object.entries(value)) {
    if ((key === 'containers' || key === 'initContainers') && Array.isArray(inner)) found.push(...(inner as Record<string, unknown>[]));
    else found.push(...containersIn(inner));
  }
  return found;
}

async function yamlFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name)).map((entry) => join(entry.parentPath, entry.name));
}

/** What a container gets wrong about the image's ENTRYPOINT flags, if anything. */
function entrypointOverride(container: Record<string, unknown>): string | undefined {
  if (container['command'] !== undefined) return `replaces the ENTRYPOINT with command ${JSON.stringify(container['command'])}`;
  const env = (container['env'] ?? []) as Array<{ name?: string; value?: string }>;
  const nodeOptions = env.find((variable) => variable.name === 'NODE_OPTIONS');
  // The ENTRYPOINT's command line wins over NODE_OPTIONS: a value there would be dead.
  if (nodeOptions?.value?.includes('--max-semi-space-size') === true) return `sets NODE_OPTIONS=${nodeOptions.value}, which the ENTRYPOINT's flag overrides`;
  return undefined;
}

/** Whether any process of the process group `pgid` is still running. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the V8 flags kubegate ships with', () => {
  test('are written in the bin’s shebang with env -S, and name the young generation’s cap', () => {
    assert.ok(SHIPPED.some((flag) => /^--max-semi-space-size=\d+$/.test(flag)), `shebang flags: ${SHIPPED.join(' ')}`);
  });

  test('npm start gives the same flags', () => {
    assert.deepEqual(startScriptNodeFlags(REPO), SHIPPED);
  });

  test('the image’s ENTRYPOINT gives the same flags to the compiled entry point, for every subcommand', async () => {
    const dockerfile = await readFile(join(REPO, 'Dockerfile'), 'utf8');
    const entrypoints = dockerfile.split('\n').filter((line) => line.startsWith('ENTRYPOINT '));
    assert.equal(entrypoints.length, 1, 'one ENTRYPOINT');
    assert.deepEqual(JSON.parse(entrypoints[0]!.slice('ENTRYPOINT '.length)), ['node', ...SHIPPED, `/app/${BIN}`]);
  });

  test('no manifest in deploy/ nor the agent import replaces the ENTRYPOINT or sets the flag where it would be overridden', async () => {
    const problems: string[] = [];
    let kubegateContainers = 0;
    for (const file of await yamlFilesUnder(join(REPO, 'deploy'))) {
      for (const document of parseAllDocuments(await readFile(file, 'utf8'))) {
        for (const container of containersIn(document.toJS())) {
          if (!String(container['image'] ?? '').startsWith('kubegate')) continue;
          kubegateContainers += 1;
          const problem = entrypointOverride(container);
          if (problem !== undefined) problems.push(`${file.slice(REPO.length + 1)}: container ${String(container['name'])} ${problem}`);
        }
      }
    }
    const imported = importManifestObjects({
      clusterId: 'edge',
      proxyUrl: 'https://proxy.example:8443',
      proxyCaPem: null,
      registrationToken: 'r-name:secret',
      image: 'kubegate:0.1.0',
      syncNamespace: 'cattle-system',
      ace: true,
      roleNames: ['cluster-admin', 'edit', 'view'],
    });
    for (const container of containersIn(imported)) {
      kubegateContainers += 1;
      const problem = entrypointOverride(container);
      if (problem !== undefined) problems.push(`agent import: container ${String(container['name'])} ${problem}`);
    }
    // deploy/proxy, deploy/webhook, deploy/agent and the import's agent.
    assert.ok(kubegateContainers >= 4, `kubegate containers found: ${kubegateContainers}`);
    assert.deepEqual(problems, []);
  });

  describe('in the running processes of a fresh build', () => {
    let dir: string;
    let pkg: string;
    let probeFile: string;
    let expected: number;
    let probeEnv: NodeJS.ProcessEnv;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'kubegate-node-flags-'));
      // The package as npm installs it: package.json, the compiled dist/ and node_modules.
      pkg = join(dir, 'package');
      await mkdir(pkg);
      await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], { cwd: REPO, timeout: 300_000 });
      await cp(join(REPO, 'package.json'), join(pkg, 'package.json'));
      await symlink(join(REPO, 'node_modules'), join(pkg, 'node_modules'), 'dir');
      const probe = join(dir, 'probe.mjs');
      await writeFile(probe, PROBE);
      probeFile = join(dir, 'probe.jsonl');
      // When the shipped value is V8's default, the limit alone cannot tell: execArgv is checked too.
      expected = await heapSizeLimitOf(SHIPPED);
      probeEnv = {
        PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
        HOME: dir,
        NODE_OPTIONS: `--import=${pathToFileURL(probe).href}`,
        KUBEGATE_HEAP_PROBE_FILE: probeFile,
      };
    });

    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    async function records(): Promise<ProbeRecord[]> {
      const text = await readFile(probeFile, 'utf8').catch(() => '');
      return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as ProbeRecord);
    }

    test('tsc keeps the shebang in the compiled bin', async () => {
      assert.deepEqual(shebangNodeFlags(await readFile(join(pkg, BIN), 'utf8')), SHIPPED);
    });

    test('`kubegate`, the bin npm links (executable, run through its shebang), runs with the shipped heap limit', async () => {
      await rm(probeFile, { force: true });
      const entry = join(pkg, BIN);
      await chmod(entry, 0o755);
      const bin = join(dir, 'bin');
      await mkdir(bin);
      await symlink(entry, join(bin, 'kubegate'));
      const { stdout } = await run(join(bin, 'kubegate'), ['--version'], { cwd: dir, env: probeEnv });
      assert.equal(stdout.trim(), manifest.version);
      const [record, ...more] = await records();
      assert.deepEqual(more, []);
      assert.equal(record?.heapSizeLimit, expected);
      assert.deepEqual(record?.execArgv, SHIPPED);
    });

    test('the image’s ENTRYPOINT command line runs kubegate with the shipped heap limit', async () => {
      await rm(probeFile, { force: true });
      const dockerfile = await readFile(join(REPO, 'Dockerfile'), 'utf8');
      const line = dockerfile.split('\n').find((text) => text.startsWith('ENTRYPOINT '))!;
      const [command, ...args] = (JSON.parse(line.slice('ENTRYPOINT '.length)) as string[]).map((word) => word.replace(/^\/app\//, `${pkg}/`));
      const { stdout } = await run(command!, [...args, '--version'], { cwd: dir, env: probeEnv });
      assert.equal(stdout.trim(), manifest.version);
      assert.deepEqual((await records()).map((record) => [record.heapSizeLimit, record.execArgv]), [[expected, SHIPPED]]);
    });

    test('`npm start -- --workers 2`: the primary and both workers run with the shipped heap limit', async () => {
      await rm(probeFile, { force: true });
      const config = join(dir, 'proxy.yaml');
      await writeFile(config, `listen: 127.0.0.1:0\ndataDir: ${join(dir, 'data')}\nmetrics:\n  listen: none\naudit:\n  enabled: false\n`);
      // Its own process group, so that the whole tree (npm, sh, the primary, the workers) is stopped at the end.
      const npm = spawn('npm', ['start', '--silent', '--', '--config', config, '--workers', '2'], {
        cwd: pkg,
        detached: true,
        env: { ...probeEnv, KUBEGATE_BOOTSTRAP_PASSWORD: 'node-flags-Pa55word' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const output: string[] = [];
      npm.stderr.setEncoding('utf8').on('data', (text: string) => output.push(text));
      const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
      try {
        await new Promise<void>((resolve, reject) => {
          npm.once('exit', (code) => reject(new Error(`npm start exited (${code}): ${output.join('')}`)));
          createInterface({ input: npm.stdout }).on('line', (line) => {
            output.push(line);
            if (line.includes('"msg":"kubegate proxy workers are serving"')) resolve();
          });
        });
        await eventually(async () => (await records()).length >= 3, 10_000, 'the probe records of the primary and both workers');
        const seen = await records();
        assert.deepEqual(seen.map((record) => record.worker).sort(), [false, true, true]);
        assert.deepEqual(seen.map((record) => [record.heapSizeLimit, record.execArgv]), [[expected, SHIPPED], [expected, SHIPPED], [expected, SHIPPED]]);
      } finally {
        if (npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid!, 'SIGTERM');
        await exited;
        await eventually(() => !groupAlive(npm.pid!), 30_000, 'the proxy and its workers to stop');
      }
    });
  });
});
