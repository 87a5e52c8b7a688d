/**
 * `kubegate token`, the kubeconfig exec credential plugin (and the options it shares with
 * `kubegate login`, src/cmd/login.ts). Both take the proxy URL, an optional provider, `--device` for
 * OIDC device logins, and the proxy's CA from `--certificate-authority <file>` or
 * `KUBEGATE_CA_DATA` (base64 PEM, as `?auth=exec` kubeconfigs set it); without either the
 * system roots verify the proxy.
 */
import { readFileSync } from 'node:fs';
import { KubegateError } from '../errors.js';
import { clusterCredential, execCredential } from '../cli/exec-credential.js';
import { createProxyClient } from '../cli/proxy-client.js';
import { openBrowser, terminalPrompter } from '../cli/terminal.js';
import { createTokenCache, tokenCacheDir } from '../cli/token-cache.js';
import type { CliLoginOptions } from '../cli/login.js';

export interface ClientFlags {
  readonly server: string;
  readonly provider?: string | undefined;
  readonly device?: boolean | undefined;
  readonly certificateAuthority?: string | undefined;
}

/** The login options both client commands share. */
export function cliLoginOptions(flags: ClientFlags, env: NodeJS.ProcessEnv): CliLoginOptions {
  return {
    client: createProxyClient(flags.server, proxyCa(flags, env)),
    provider: flags.provider,
    device: flags.device === true,
    env,
    prompter: terminalPrompter(),
    openBrowser,
    say: (line) => process.stderr.write(`${line}\n`),
  };
}

function proxyCa(flags: ClientFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.certificateAuthority !== undefined) {
    try {
      return readFileSync(flags.certificateAuthority, 'utf8');
    } catch (error) {
      throw new KubegateError('BAD_REQUEST', '--certificate-authority cannot be read', { field: 'certificateAuthority', cause: error });
    }
  }
  const data = env['KUBEGATE_CA_DATA'];
  return data === undefined || data === '' ? undefined : Buffer.from(data, 'base64').toString('utf8');
}

/** `kubegate token --server <proxy> --cluster <id>`: prints an ExecCredential. */
export async function runToken(flags: ClientFlags & { readonly cluster: string }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const cache = createTokenCache(tokenCacheDir(env));
  const token = await clusterCredential({ ...cliLoginOptions(flags, env), cache, cluster: flags.cluster });
  process.stdout.write(`${JSON.stringify(execCredential(token))}\n`);
}

