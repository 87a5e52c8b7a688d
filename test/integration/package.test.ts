/**
 * The npm package is what operators and kubeconfig users install (`npm install -g
 * ./kubegate-<version>.tgz` gives the `kubegate` the exec kubeconfig runs). The test packs
 * a copy of the repository the way a release does (`npm pack`, whose `prepare` script
 * compiles dist/), then checks the tarball: it holds the compiled entry point the `bin`
 * names and nothing of the source tree, tests or data. Installing it needs the registry
 * (the npm cache here has no registry metadata, so `npm install --offline` cannot resolve
 * the dependencies), so the packed CLI is run from an extracted copy whose node_modules
 * links the repository's dependencies — all but better-sqlite3, to prove that the CLI
 * never needs the native module and that a SQLite proxy without it says what is missing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runNode(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...args], { cwd, env: { PATH: process.env['PATH'], HOME: cwd, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('npm package', () => {
  let dir: string;
  let files: string[];
  let installed: string;
  let manifest: { version: string; bin: Record<string, string>; files: string[] };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-pack-'));
    // A clean copy of what a clone holds (no dist/, no data/), with the installed dependencies.
    const source = join(dir, 'source');
    await mkdir(source);
    for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src']) {
      await cp(join(repositoryRoot, entry), join(source, entry), { recursive: true });
    }
    await symlink(join(repositoryRoot, 'node_modules'), join(source, 'node_modules'), 'dir');
    manifest = JSON.parse(await readFile(join(source, 'package.json'), 'utf8'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: source, timeout: 540_000, maxBuffer: 16 * 1024 * 1024 });
    const [result] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = result!.files.map((file) => file.path).sort();
    // Extract and link every dependency but the native SQLite module.
    installed = join(dir, 'installed');
    await mkdir(installed);
    await run('tar', ['xzf', join(dir, result!.filename), '-C', installed]);
    const modules = join(installed, 'package', 'node_modules');
    await mkdir(modules);
    for (const entry of await readdir(join(repositoryRoot, 'node_modules'))) {
      if (entry === 'better-sqlite3' || entry === '.bin') continue;
      await symlink(join(repositoryRoot, 'node_modules', entry), join(modules, entry));
    }
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the tarball holds the compiled entry point the bin names, and no sources, tests or data', () => {
    const entry = manifest.bin['kubegate'];
    assert.equal(entry, 'dist/cmd/main.js');
    assert.ok(files.includes(entry), 'the bin target is packed');
    assert.ok(files.includes('package.json') && files.includes('README.md'));
    assert.ok(files.includes('dist/version.js') && files.includes('dist/store/sqlite.js'));
    const stray = files.filter((file) => !file.startsWith('dist/') && file !== 'package.json' && file !== 'README.md');
    assert.deepEqual(stray, []);
    assert.deepEqual(files.filter((file) => /\.ts$|(^|\/)(test|data|src)\//.test(file) && !file.endsWith('.d.ts')), []);
  });

  test('the packed entry point is an executable script: npm links it as `kubegate`', async () => {
    const entry = join(installed, 'package', manifest.bin['kubegate']!);
    assert.match(await readFile(entry, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.ok((await stat(entry)).isFile());
  });

  test('`kubegate --version` and `kubegate --help` of the packed copy work without better-sqlite3', async () => {
    const entry = join(installed, 'package', manifest.bin['kubegate']!);
    const version = await runNode([entry, '--version'], dir);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), manifest.version);
    const help = await runNode([entry, '--help'], dir);
    assert.equal(help.code, 0, help.stderr);
    for (const command of ['proxy', 'webhook', 'agent', 'login', 'token']) assert.match(help.stdout, new RegExp(`\\n  ${command}\\b`));
    const token = await runNode([entry, 'token', '--help'], dir);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, /--cluster <id>/);
  });

  test('a SQLite proxy from a copy without better-sqlite3 fails at start with CONFIG_INVALID naming the module, not a stack trace', async () => {
    const entry = join(installed, 'package', manifest.bin['kubegate']!);
    const dataDir = join(dir, 'data');
    const config = join(dir, 'proxy.yaml');
    await writeFile(config, `listen: 127.0.0.1:0\ndataDir: ${dataDir}\n`);
    const started = await runNode([entry, 'proxy', '--config', config, '--log-level', 'silent'], dir, { KUBEGATE_BOOTSTRAP_PASSWORD: 'package-test-Pa55' });
    assert.equal(started.code, 1, started.stdout + started.stderr);
    assert.match(started.stderr, /^kubegate: CONFIG_INVALID: store\.type: the SQLite store needs the better-sqlite3 module/m);
    assert.doesNotMatch(started.stderr, /\n\s+at /, 'no stack trace');
  });
});
