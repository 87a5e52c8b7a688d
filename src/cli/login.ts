/**
 * Logging in to the proxy from a terminal (`kubegate login`, and `kubegate token` when it
 * has no usable login token), by the provider's kind:
 *
 * - password providers (local, LDAP, Active Directory): `KUBEGATE_USERNAME` and
 *   `KUBEGATE_PASSWORD` when set (automation), else a prompt on the terminal (the password
 *   is not echoed); with neither, a clear error rather than a hang.
 * - OIDC / GitHub in a browser: a one-shot HTTP listener on 127.0.0.1 and a random port, the
 *   browser sent to the proxy's `/v1/login/<provider>?cli_redirect=…&cli_challenge=…`, and
 *   the one-time code that comes back to the loopback exchanged together with a verifier
 *   only this process knows (see src/proxy/api/browser-login.ts). No token travels in a URL.
 * - OIDC with `--device`: the proxy's device flow; the user code and URL are printed, and
 *   the proxy is polled at the interval it asks for (`Retry-After`).
 * Everything for the user goes to stderr: stdout belongs to the ExecCredential.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubegateError, isKubegateError } from '../errors.js';
import { newPkceVerifier, pkceChallenge } from '../providers/web-login.js';
import { apiError } from './proxy-client.js';
import type { ProxyClient } from './proxy-client.js';
import type { CachedToken } from './token-cache.js';

export interface Prompter {
  readLine(question: string): Promise<string>;
  /** Reads without echo. */
  readSecret(question: string): Promise<string>;
}

export interface CliLoginOptions {
  readonly client: ProxyClient;
  /** The provider's name; default: the only provider the proxy offers. */
  readonly provider?: string | undefined;
  /** Use the device flow instead of a browser (OIDC). */
  readonly device?: boolean;
  readonly env: NodeJS.ProcessEnv;
  /** Undefined when there is no terminal to ask on. */
  readonly prompter: Prompter | undefined;
  readonly openBrowser: (url: string) => void | Promise<void>;
  /** A line for the user (stderr). */
  readonly say: (line: string) => void;
  /** How long to wait for the browser; default 5 minutes. */
  readonly browserTimeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface CliLogin {
  readonly provider: string;
  readonly token: CachedToken;
}

export async function loginToProxy(options: CliLoginOptions): Promise<CliLogin> {
  const provider = await chooseProvider(options.client, options.provider);
  let token: CachedToken;
  if (provider.login === 'password') token = await passwordLogin(options, provider.name);
  else if (options.device === true) token = await deviceLogin(options, provider.name);
  else token = await browserLogin(options, provider.name);
  return { provider: provider.name, token };
}

/** A provider as GET /v1/providers lists it; `login` is `password` or `browser`. */
interface OfferedProvider {
  readonly name: string;
  readonly type: string;
  readonly login: string;
}

async function chooseProvider(client: ProxyClient, name: string | undefined): Promise<OfferedProvider> {
  const response = await client.call('GET', '/v1/providers');
  const items = ((response.body as { items?: unknown } | undefined)?.items ?? []) as OfferedProvider[];
  if (name !== undefined) {
    const found = items.find((item) => item.name === name);
    if (found === undefined) throw new KubegateError('PROVIDER_UNKNOWN', `the proxy offers no provider of that name (it offers: ${items.map((item) => item.name).join(', ')})`);
    return found;
  }
  if (items.length === 1 && items[0] !== undefined) return items[0];
  throw new KubegateError('PROVIDER_UNKNOWN', `choose a provider with --provider (the proxy offers: ${items.map((item) => item.name).join(', ')})`);
}

function tokenOf(body: unknown): CachedToken {
  const { token, expiresAt } = (body ?? {}) as { token?: unknown; expiresAt?: unknown };
  if (typeof token !== 'string') throw new KubegateError('INTERNAL', 'the proxy answered a login without a token');
  return { token, expiresAt: typeof expiresAt === 'string' ? expiresAt : null };
}

async function passwordLogin(options: CliLoginOptions, provider: string): Promise<CachedToken> {
  let username = options.env['KUBEGATE_USERNAME'];
  let password = options.env['KUBEGATE_PASSWORD'];
  if ((username === undefined || password === undefined) && options.prompter === undefined) {
    throw new KubegateError('LOGIN_FAILED', 'no terminal to ask for a password on: set KUBEGATE_USERNAME and KUBEGATE_PASSWORD');
  }
  username ??= await options.prompter!.readLine(`Username for ${provider}: `);
  password ??= await options.prompter!.readSecret('Password: ');
  const response = await options.client.call('POST', '/v1/login', { body: { provider, username, password } });
  return tokenOf(response.body);
}

async function browserLogin(options: CliLoginOptions, provider: string): Promise<CachedToken> {
  // PKCE (RFC 7636, S256), as the proxy does with the identity provider.
  const verifier = await newPkceVerifier();
  const challenge = await pkceChallenge(verifier);
  let resolveCode!: (code: string) => void;
  let rejectCode!: (error: Error) => void;
  const codeArrived = new Promise<string>((resolve, reject) => {
    resolveCode = resolve;
    rejectCode = reject;
  });
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const code = url.searchParams.get('code');
    if (url.pathname !== '/callback' || code === null) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    response.end('Logged in to kubegate. You can close this window.\n');
    resolveCode(code);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const timer = setTimeout(() => rejectCode(new KubegateError('LOGIN_STATE_INVALID', 'the browser login did not finish in time')), options.browserTimeoutMs ?? 5 * 60_000);
  try {
    const { port } = server.address() as AddressInfo;
    const start = new URL(`${options.client.server}/v1/login/${encodeURIComponent(provider)}`);
    start.searchParams.set('cli_redirect', `http://127.0.0.1:${port}/callback`);
    start.searchParams.set('cli_challenge', challenge);
    options.say(`Opening your browser to log in with ${provider}. If it does not open, visit:\n  ${start.href}`);
    await options.openBrowser(start.href);
    const code = await codeArrived;
    const response = await options.client.call('POST', `/v1/login/${encodeURIComponent(provider)}/exchange`, { body: { code, code_verifier: verifier } });
    return tokenOf(response.body);
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}

async function deviceLogin(options: CliLoginOptions, provider: string): Promise<CachedToken> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const path = `/v1/login/${encodeURIComponent(provider)}/device`;
  const started = (await options.client.call('POST', path, { body: {} })).body as {
    device_code: string;
    user_code: string;
    verification_uri: string;
    verification_uri_complete?: string;
    expires_in: number;
    interval: number;
  };
  options.say(`To log in with ${provider}, visit ${started.verification_uri} and enter the code ${started.user_code}`);
  if (started.verification_uri_complete !== undefined) options.say(`  (or open ${started.verification_uri_complete})`);
  const deadline = Date.now() + started.expires_in * 1000;
  let waitSeconds = started.interval;
  while (Date.now() < deadline) {
    await sleep(waitSeconds * 1000);
    const response = await options.client.send('POST', `${path}/token`, { body: { device_code: started.device_code } });
    if (response.status === 201) return tokenOf(response.body);
    const error = apiError(response);
    if (!isKubegateError(error, 'LOGIN_PENDING')) throw error;
    const retryAfter = Number(response.headers['retry-after']);
    if (Number.isFinite(retryAfter) && retryAfter > 0) waitSeconds = retryAfter;
  }
  throw new KubegateError('LOGIN_DENIED', 'the device login expired before it was approved');
}
