/**
 * A strict fake of the parts of GitHub a login uses, on 127.0.0.1 and a free port: the OAuth
 * web flow (`/login/oauth/authorize`, `/login/oauth/access_token`) and the REST API
 * (`/user`, `/user/orgs`, `/user/teams`). GitHub itself cannot run here; this fake follows its
 * documented behaviour, and refuses whatever GitHub would refuse:
 *
 * - authorize: the registered client ID and redirect URI exactly, a `state`, an optional S256
 *   PKCE challenge; no pages — it redirects back at once with a code for `nextUser`, or with
 *   `error=access_denied` when `declineNext` is set.
 * - access_token: POST only; the right client secret (else 200 `incorrect_client_credentials`,
 *   as GitHub answers), codes single-use and expiring after `codeTtlMs` (else 200
 *   `bad_verification_code`), the same redirect URI, the PKCE verifier when a challenge was
 *   sent. JSON only with `Accept: application/json`; form-encoded otherwise, as GitHub does.
 * - scopes: a token holds the scopes its authorize asked for (GitHub grants what the OAuth
 *   app asks, space- or comma-separated), answered in `scope` and `X-OAuth-Scopes`.
 *   `GET /user/emails` needs `user:email` (or `user`): without it 404 `Not Found`, as GitHub
 *   answers an OAuth token that lacks the scope; it lists every address with `primary`,
 *   `verified` and `visibility`.
 * - REST: `Authorization: Bearer|token <access token>` or 401 JSON `Bad credentials`;
 *   `per_page` (default 30, at most `maxPerPage`) and `page`, with a `Link` header
 *   (`rel="next"`, `rel="last"`) when there are more pages; 403 without a User-Agent, as
 *   GitHub requires one. `apiDown` makes every REST call 503.
 * - `GET /rate_limit`: anonymous (no Authorization header; a bad token is 401 as above), the
 *   User-Agent rule and `apiDown` apply; answers GitHub's `{resources, rate}` object.
 * Every request is recorded (method, path and query, selected headers) for assertions.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeGithubUser {
  readonly id: number;
  login: string;
  name?: string | null;
  orgs: string[];
  teams: { readonly org: string; readonly slug: string }[];
  /** What `/user/emails` lists (none by default). */
  emails?: { readonly email: string; readonly primary: boolean; readonly verified: boolean }[];
}

export interface FakeGithubRequest {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  readonly accept: string | undefined;
  readonly authorization: string | undefined;
  readonly userAgent: string | undefined;
}

export interface FakeGithubOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The callback URLs registered (one OAuth app per URL in reality; one client here). */
  readonly redirectUris: readonly string[];
  /** GitHub's cap on `per_page` is 100. */
  readonly maxPerPage?: number;
}

export interface FakeGithub {
  /** `http://127.0.0.1:<port>`: both the OAuth base and the API base. */
  readonly url: string;
  /** By numeric ID. */
  readonly users: Map<number, FakeGithubUser>;
  /** The user the next authorize logs in. */
  nextUser: number;
  declineNext: boolean;
  apiDown: boolean;
  codeTtlMs: number;
  /** Where `Link` headers point (default `url`): a hostile server points them elsewhere. */
  linkBase: string;
  readonly requests: FakeGithubRequest[];
  close(): Promise<void>;
}

interface IssuedCode {
  readonly userId: number;
  readonly redirectUri: string;
  readonly challenge: string | undefined;
  readonly expiresAtMs: number;
  readonly scopes: readonly string[];
}

const DOCS = 'https://docs.github.com/rest';

export async function startFakeGithub(options: FakeGithubOptions): Promise<FakeGithub> {
  const maxPerPage = options.maxPerPage ?? 100;
  const codes = new Map<string, IssuedCode>();
  const accessTokens = new Map<string, { readonly userId: number; readonly scopes: readonly string[] }>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const fake: FakeGithub = {
    url,
    users: new Map(),
    nextUser: 0,
    declineNext: false,
    apiDown: false,
    codeTtlMs: 10 * 60_000,
    linkBase: url,
    requests: [],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };

  function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  }

  async function readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function authorize(query: URLSearchParams, res: http.ServerResponse): void {
    const redirectUri = query.get('redirect_uri');
    const state = query.get('state');
    const challenge = query.get('code_challenge') ?? undefined;
    if (query.get('client_id') !== options.clientId) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown client_id');
      return;
    }
    if (redirectUri === null || !options.redirectUris.includes(redirectUri)) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('redirect_uri is not registered');
      return;
    }
    if (state === null || state.length === 0) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('state is required');
      return;
    }
    if (challenge !== undefined && query.get('code_challenge_method') !== 'S256') {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('only S256 is supported');
      return;
    }
    const target = new URL(redirectUri);
    if (fake.declineNext) {
      fake.declineNext = false;
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_description', 'The user has denied your application access.');
    } else {
      if (!fake.users.has(fake.nextUser)) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('the test chose no known user');
        return;
      }
      const code = randomBytes(10).toString('hex');
      const scopes = (query.get('scope') ?? '').split(/[\s,]+/).filter((scope) => scope !== '');
      codes.set(code, { userId: fake.nextUser, redirectUri, challenge, expiresAtMs: Date.now() + fake.codeTtlMs, scopes });
      target.searchParams.set('code', code);
    }
    target.searchParams.set('state', state);
    res.writeHead(302, { location: target.href }).end();
  }

  async function accessToken(req: http.IncomingMessage, query: URLSearchParams, res: http.ServerResponse): Promise<void> {
    const text = await readBody(req);
    const params = new URLSearchParams(query);
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('application/json')) {
      for (const [key, value] of Object.entries(JSON.parse(text) as Record<string, string>)) params.set(key, value);
    } else {
      for (const [key, value] of new URLSearchParams(text)) params.set(key, value);
    }
    const wantsJson = (req.headers['accept'] ?? '').includes('application/json');
    const answer = (body: Record<string, string>): void => {
      if (wantsJson) json(res, 200, body);
      else res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }).end(new URLSearchParams(body).toString());
    };
    if (params.get('client_id') !== options.clientId || params.get('client_secret') !== options.clientSecret) {
      answer({ error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.', error_uri: DOCS });
      return;
    }
    const code = params.get('code') ?? '';
    const issued = codes.get(code);
    codes.delete(code);
    if (issued === undefined || Date.now() >= issued.expiresAtMs) {
      answer({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.', error_uri: DOCS });
      return;
    }
    const redirectUri = params.get('redirect_uri');
    if (redirectUri !== null && redirectUri !== issued.redirectUri) {
      answer({ error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.', error_uri: DOCS });
      return;
    }
    if (issued.challenge !== undefined) {
      const verifier = params.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== issued.challenge) {
        answer({ error: 'bad_verification_code', error_description: 'The code_verifier does not match the code_challenge.', error_uri: DOCS });
        return;
      }
    }
    const token = `gho_${randomBytes(18).toString('hex')}`;
    accessTokens.set(token, { userId: issued.userId, scopes: issued.scopes });
    answer({ access_token: token, token_type: 'bearer', scope: issued.scopes.join(',') });
  }

  function page(res: http.ServerResponse, path: string, query: URLSearchParams, items: readonly unknown[]): void {
    const perPage = Math.min(Math.max(Number(query.get('per_page') ?? 30) || 30, 1), maxPerPage);
    const pageNumber = Math.max(Number(query.get('page') ?? 1) || 1, 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const links: string[] = [];
    const link = (n: number, rel: string): string => `<${fake.linkBase}${path}?per_page=${perPage}&page=${n}>; rel="${rel}"`;
    if (pageNumber < last) links.push(link(pageNumber + 1, 'next'), link(last, 'last'));
    if (pageNumber > 1) links.push(link(pageNumber - 1, 'prev'), link(1, 'first'));
    json(res, 200, items.slice((pageNumber - 1) * perPage, pageNumber * perPage), links.length === 0 ? {} : { link: links.join(', ') });
  }

  /** Answers what GitHub refuses before looking at the request (`apiDown`, no User-Agent); true when it did. */
  function refusedUpFront(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (fake.apiDown) json(res, 503, { message: 'Service Unavailable' });
    else if ((req.headers['user-agent'] ?? '') === '') json(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.' });
    else return false;
    return true;
  }

  function rest(req: http.IncomingMessage, path: string, query: URLSearchParams, res: http.ServerResponse): void {
    if (refusedUpFront(req, res)) return;
    const match = /^(?:Bearer|token) (\S+)$/.exec(req.headers['authorization'] ?? '');
    const granted = match === null ? undefined : accessTokens.get(match[1] ?? '');
    const user = granted === undefined ? undefined : fake.users.get(granted.userId);
    if (user === undefined || granted === undefined) {
      json(res, 401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
      return;
    }
    res.setHeader('x-oauth-scopes', granted.scopes.join(', '));
    if (path === '/user') {
      json(res, 200, { login: user.login, id: user.id, type: 'User', name: user.name ?? null });
      return;
    }
    if (path === '/user/emails') {
      if (!granted.scopes.includes('user:email') && !granted.scopes.includes('user')) {
        json(res, 404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
        return;
      }
      page(res, path, query, (user.emails ?? []).map((entry) => ({ ...entry, visibility: entry.primary ? 'private' : null })));
      return;
    }
    const orgId = (org: string): number => createHash('sha256').update(org).digest().readUInt32BE(0);
    if (path === '/user/orgs') {
      page(res, path, query, user.orgs.map((org) => ({ login: org, id: orgId(org), url: `${url}/orgs/${org}` })));
      return;
    }
    page(res, path, query, user.teams.map((team, index) => ({ id: index + 1, slug: team.slug, name: team.slug, organization: { login: team.org, id: orgId(team.org) } })));
  }

  function rateLimit(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (refusedUpFront(req, res)) return;
    if (req.headers['authorization'] !== undefined) {
      json(res, 401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
      return;
    }
    const core = { limit: 60, remaining: 60, reset: Math.floor(Date.now() / 1000) + 3600, used: 0, resource: 'core' };
    json(res, 200, { resources: { core }, rate: core });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = new URL(req.url ?? '/', url);
    fake.requests.push({
      method: req.method ?? '',
      url: `${target.pathname}${target.search}`,
      accept: req.headers['accept'],
      authorization: req.headers['authorization'],
      userAgent: req.headers['user-agent'],
    });
    const route = `${req.method} ${target.pathname}`;
    if (route === 'GET /login/oauth/authorize') authorize(target.searchParams, res);
    else if (route === 'POST /login/oauth/access_token') await accessToken(req, target.searchParams, res);
    else if (route === 'GET /user' || route === 'GET /user/emails' || route === 'GET /user/orgs' || route === 'GET /user/teams') rest(req, target.pathname, target.searchParams, res);
    else if (route === 'GET /rate_limit') rateLimit(req, res);
    else json(res, 404, { message: 'Not Found', documentation_url: DOCS });
  }

  return fake;
}
