/**
 * This repository's `kubegate` CLI as an executable on PATH, for tests where another program
 * runs it (kubectl running the exec credential plugin): a small shell wrapper that starts
 * src/cmd/main.ts through tsx with the current Node.
 */
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
