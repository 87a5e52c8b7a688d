/**
 * The connection the admin commands (`kubegate cluster|user|member|token|kubeconfig|whoami`)
 * use: which proxy, its CA, which provider — from the flags, else the environment
 * (`KUBEGATE_SERVER`, `KUBEGATE_CA_DATA`), else what `kubegate login` remembered — and the
 * cached login token of `kubegate login` (src/cli/token-cache.ts), logging in when there is
 * none. A token the proxy no longer accepts (401) is dropped and the login done again, once,
 * as the exec plugin does.
 */
import { readFileSync } from 'node:fs';
import { KubegateError, isKubegateError } from '../errors.js';
import { loginToken } from './exec-credential.js';
import type { CliLoginOptions } from './login.js';
import { createProxyClient } from './proxy-client.js';
import type { ProxyResponse } from './proxy-client.js';
import type { CurrentProxy, TokenCache } from './token-cache.js';

/** Flags every client command takes. */
export interface ConnectionFlags {
  readonly server?: string | undefined;
  readonly provider?: string | undefined;
  readonly device?: boolean | undefined;
  readonly certificateAuthority?: string | undefined;
}

export interface ConnectionDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly cache: TokenCache;
  readonly prompter: CliLoginOptions['prompter'];
  readonly openBrowser: CliLoginOptions['openBrowser'];
  readonly say: CliLoginOptions['say'];
}

/** `--certificate-authority <file>`, else KUBEGATE_CA_DATA (base64 PEM), else undefined. */
export function proxyCaFrom(flags: ConnectionFlags, env: NodeJS.ProcessEnv): string | undefined {
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

/** The proxy to talk to: flags, environment, then the remembered login. */
export async function resolveConnection(flags: ConnectionFlags, deps: ConnectionDeps): Promise<CurrentProxy> {
  const remembered = await deps.cache.readCurrent();
  const server = flags.server ?? nonEmpty(deps.env['KUBEGATE_SERVER']) ?? remembered?.server;
  if (server === undefined) {
    throw new KubegateError('BAD_REQUEST', 'no proxy to talk to: run `kubegate login <proxy-url>` first, or give --server (or KUBEGATE_SERVER)', { field: 'server' });
  }
  const sameProxy = remembered !== undefined && remembered.server === server;
  return {
    server,
    provider: flags.provider ?? (sameProxy ? remembered.provider : undefined),
    caPem: proxyCaFrom(flags, deps.env) ?? (sameProxy ? remembered.caPem : undefined),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** The login options for `connection`, as `kubegate login` and `kubegate token` use them. */
export function loginOptionsFor(connection: CurrentProxy, flags: ConnectionFlags, deps: ConnectionDeps): CliLoginOptions {
  return {
    client: createProxyClient(connection.server, connection.caPem),
    provider: connection.provider,
    device: flags.device === true,
    env: deps.env,
    prompter: deps.prompter,
    openBrowser: deps.openBrowser,
    say: deps.say,
  };
}

export interface AdminSession {
  /** One REST call with the login token; a non-2xx answer throws its KubegateError. */
  call(method: string, path: string, body?: unknown): Promise<ProxyResponse>;
}

export async function openAdminSession(flags: ConnectionFlags, deps: ConnectionDeps): Promise<AdminSession> {
  const connection = await resolveConnection(flags, deps);
  const options = { ...loginOptionsFor(connection, flags, deps), cache: deps.cache };
  let token = await loginToken(options);
  return {
    async call(method, path, body) {
      try {
        return await options.client.call(method, path, { token: token.token, body });
      } catch (error) {
        if (!isKubegateError(error, 'UNAUTHENTICATED')) throw error;
        token = await loginToken(options, true);
        return options.client.call(method, path, { token: token.token, body });
      }
    },
  };
}
