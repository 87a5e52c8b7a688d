/**
 * `kubegate login --server <proxy> [--provider <name>] [--device]`: logs in (password prompt
 * or KUBEGATE_USERNAME/KUBEGATE_PASSWORD, browser, or device flow) and caches the login
 * token that `kubegate token` then uses. Options: see src/cmd/token.ts.
 */
import { loginToken } from '../cli/exec-credential.js';
import { createTokenCache, tokenCacheDir } from '../cli/token-cache.js';
import { cliLoginOptions } from './token.js';
import type { ClientFlags } from './token.js';

export async function runLogin(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const cache = createTokenCache(tokenCacheDir(env));
  const token = await loginToken({ ...cliLoginOptions(flags, env), cache }, true);
  process.stderr.write(`Logged in to ${flags.server}${token.expiresAt === null ? '' : ` until ${token.expiresAt}`}.\n`);
}
