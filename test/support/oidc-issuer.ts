/**
 * A real OIDC provider (the `oidc-provider` package) for tests, on 127.0.0.1 and a free port,
 * plus a small "browser" that walks its pages without a real one.
 *
 * Design note: the issuer is real — discovery, JWKS, PKCE (required), the code and device
 * grants, ID token signing — and only the pages a person would click through are replaced:
 * `/interaction/:uid` logs in the account the test chose (`issuer.nextAccount`) and grants
 * every requested scope, through oidc-provider's own interactionFinished API. The signing
 * key is made here, so tests can also sign tokens the issuer "could have" issued (expired,
 * wrong audience) and rotate keys (`rotateKey`).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'kubegate';
export const CLIENT_SECRET = 'kubegate-test-client-secret';

export interface TestAccount {
  readonly sub: string;
  readonly preferred_username?: string;
  readonly name?: string;
  readonly email?: string;
  readonly email_verified?: boolean;
  readonly groups?: readonly unknown[];
}

export interface OidcIssuer {
  readonly issuer: string;
  readonly accounts: Map<string, TestAccount>;
  /** The account the next interaction logs in (by `sub`). */
  nextAccount: string;
  /** When true, the next interaction is declined (the user says no). */
  declineNext: boolean;
  /** Signs a JWT with the issuer's current key (tests of expiry, audience, rotation). */
  sign(payload: JWTPayload, options?: { alg?: string; kid?: string }): Promise<string>;
  /** Replaces the signing key (the old one is no longer published); returns the new kid. */
  rotateKey(): Promise<string>;
  close(): Promise<void>;
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function newSigningKey(index: number): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `test-key-${index}`;
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, jwk };
}

export interface StartOidcIssuerOptions {
  /** Redirect URIs registered for the client (the proxy's callback). */
  readonly redirectUris: readonly string[];
}

export async function startOidcIssuer(options: StartOidcIssuerOptions): Promise<OidcIssuer> {
  const server = http.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const accounts = new Map<string, TestAccount>();
  let keyIndex = 0;
  let key = await newSigningKey(keyIndex);
  let provider = makeProvider();

  function makeProvider(): Provider {
    const made = new Provider(issuer, {
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          redirect_uris: [...options.redirectUris],
          grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      pkce: { required: () => true },
      features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true } },
      jwks: { keys: [key.jwk] },
      claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email', 'email_verified'], groups: ['groups'] },
      conformIdTokenClaims: false,
      cookies: { keys: ['oidc-issuer-test-cookie-key'] },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      async findAccount(_ctx: unknown, sub: string) {
        const account = accounts.get(sub);
        if (account === undefined) return undefined;
        return { accountId: sub, claims: () => ({ ...account }) as { sub: string } };
      },
    });
    made.on('server_error', (_ctx: unknown, error: unknown) => process.stderr.write(`oidc-provider server_error: ${String(error)}\n`));
    return made;
  }

  const state = {
    issuer,
    accounts,
    nextAccount: '',
    declineNext: false,
    async sign(payload: JWTPayload, signOptions: { alg?: string; kid?: string } = {}): Promise<string> {
      return new SignJWT(payload).setProtectedHeader({ alg: signOptions.alg ?? 'RS256', kid: signOptions.kid ?? key.kid }).sign(key.privateKey);
    },
    async rotateKey(): Promise<string> {
      key = await newSigningKey(++keyIndex);
      provider = makeProvider();
      return key.kid;
    },
    async close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if ((req.url ?? '').startsWith('/interaction/')) {
      void finishInteraction(provider, req, res, state).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    void provider.callback()(req, res);
  });
  return state;
}

/** The pages a person would see: log in as `nextAccount`, grant everything asked for. */
async function finishInteraction(provider: Provider, req: http.IncomingMessage, res: http.ServerResponse, state: { nextAccount: string; declineNext: boolean }): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (state.declineNext) {
    state.declineNext = false;
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user declined' }, { mergeWithLastSubmission: false });
    return;
  }
  if (details.prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: state.nextAccount } }, { mergeWithLastSubmission: false });
    return;
  }
  const accountId = details.session?.accountId ?? state.nextAccount;
  const grant = new provider.Grant({ accountId, clientId: String(details.params['client_id']) });
  grant.addOIDCScope(String(details.params['scope'] ?? 'openid'));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

/**
 * A minimal browser: keeps cookies per host (ignoring path), follows redirects by hand and
 * stops at the first one that leaves for `stopAt` (returning that URL).
 */
export class TestBrowser {
  readonly #cookies = new Map<string, Map<string, string>>();

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url);
    const jar = this.#cookies.get(target.host) ?? new Map<string, string>();
    const headers: Record<string, string> = {};
    if (jar.size > 0) headers['cookie'] = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    let body: string | undefined;
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const response = await fetch(target, { method: init.method ?? 'GET', headers, redirect: 'manual', ...(body === undefined ? {} : { body }) });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      if (at > 0) jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    this.#cookies.set(target.host, jar);
    return response;
  }

  /** Follows redirects from `url` until one points under `stopAt`; returns that location. */
  async followUntil(url: string, stopAt: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<URL> {
    let response = await this.request(url, init);
    let current = new URL(url);
    for (let hops = 0; hops < 20; hops++) {
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || location === null) {
        throw new Error(`the flow stopped at ${current.pathname} with ${response.status}: ${(await response.text()).slice(0, 300)}`);
      }
      await response.body?.cancel();
      current = new URL(location, current);
      if (current.href.startsWith(stopAt)) return current;
      response = await this.request(current.href);
    }
    throw new Error('too many redirects');
  }

  /** Approves a device login at `verificationUriComplete` (confirm page → interaction). */
  async approveDevice(verificationUriComplete: string): Promise<string> {
    const page = await this.request(verificationUriComplete);
    const html = await page.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    const userCode = /name="user_code" value="([^"]+)"/.exec(html)?.[1];
    if (xsrf === undefined || userCode === undefined) throw new Error(`no confirm form: ${html.slice(0, 300)}`);
    const origin = new URL(verificationUriComplete).origin;
    let response = await this.request(`${origin}/device`, { method: 'POST', form: { xsrf, user_code: userCode, confirm: 'yes' } });
    let current = new URL(`${origin}/device`);
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops++) {
      await response.body?.cancel();
      current = new URL(response.headers.get('location') ?? '', current);
      response = await this.request(current.href);
    }
    const text = await response.text();
    if (response.status !== 200 || !text.includes('Success')) throw new Error(`the device approval ended with ${response.status}: ${text.slice(0, 300)}`);
    return text;
  }
}
