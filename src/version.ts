/**
 * kubegate's version, from package.json (one level above both src/ and dist/), read once.
 * Agents report it to the proxy; `kubegate --version` prints it.
 */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const KUBEGATE_VERSION = readVersion();
