/**
 * The few GitHub HTTP calls a login needs: the OAuth code exchange and paginated REST reads
 * with the user's access token; and the background health check's anonymous `rate_limit`.
 *
 * Design notes:
 * - Every request has a deadline (`timeoutSeconds`, body included), a bounded answer size and
 *   no redirects; anything unexpected — unreachable, timeout, non-2xx, not JSON, wrong shape —
 *   is PROVIDER_UNAVAILABLE, never "unauthenticated": GitHub already vouched for the person
 *   when it issued the code, so a failure after that is ours or GitHub's, not theirs.
 * - The code exchange follows GitHub, which answers refusals with 200 and `{"error": …}`:
 *   `bad_verification_code` (expired, used or foreign code) → LOGIN_CALLBACK_INVALID;
 *   `unverified_user_email` → LOGIN_DENIED; a wrong client secret, a redirect URI mismatch and
 *   anything else → PROVIDER_UNAVAILABLE (a configuration problem the person cannot fix).
 * - Pagination follows `Link: <…>; rel="next"` for at most `maxPages` pages, and only to URLs
 *   under the configured API base, so the access token is never sent anywhere else.
 */
import { KubegateError } from '../../errors.js';
import type { GithubEndpoints } from './settings.js';

const PER_PAGE = 100;
const DEFAULT_MAX_PAGES = 10;
const MAX_TOKEN_ANSWER_BYTES = 64 * 1024;
const MAX_PAGE_BYTES = 4 * 1024 * 1024;
const API_VERSION = '2022-11-28';
const USER_AGENT = 'kubegate';

export interface GithubClientOptions {
  readonly endpoints: GithubEndpoints;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly timeoutSeconds: number;
  /** Most pages read of one list (100 entries each); default 10. */
  readonly maxPages?: number;
}

export interface GithubList {
  readonly items: readonly unknown[];
  /** True when GitHub had more pages than `maxPages`. */
  readonly truncated: boolean;
}

export interface GithubClient {
  /** The user's access token for a callback's code. */
  exchangeCode(code: string, redirectUri: string, codeVerifier: string): Promise<string>;
  /** One REST object, `path` relative to the API base (`user`). */
  getObject(path: string, accessToken: string): Promise<Readonly<Record<string, unknown>>>;
  /** Every page of a REST list (`user/orgs`). */
  getList(path: string, accessToken: string): Promise<GithubList>;
  /**
   * Whether the REST API answers: `GET rate_limit` without a token (GitHub documents that it
   * does not count against the rate limit). Throws PROVIDER_UNAVAILABLE with the reason.
   */
  checkApi(): Promise<void>;
}

export function createGithubClient(options: GithubClientOptions): GithubClient {
  const { endpoints } = options;
  const maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
  const timeoutMs = options.timeoutSeconds * 1000;

  async function call(url: URL, init: RequestInit, maxBytes: number): Promise<{ response: Response; body: string }> {
    try {
      const response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
      return { response, body: await readBounded(response, maxBytes) };
    } catch (error) {
      throw unavailable('GitHub could not be reached', error);
    }
  }

  function apiHeaders(accessToken?: string): Record<string, string> {
    return {
      Accept: 'application/vnd.github+json',
      ...(accessToken === undefined ? {} : { Authorization: `Bearer ${accessToken}` }),
      'User-Agent': USER_AGENT,
      'X-GitHub-Api-Version': API_VERSION,
    };
  }

  async function getJson(url: URL, accessToken: string): Promise<{ value: unknown; next: URL | undefined }> {
    const { response, body } = await call(url, { headers: apiHeaders(accessToken) }, MAX_PAGE_BYTES);
    if (response.status !== 200) throw unavailable(`the GitHub API answered ${response.status}`);
    const next = nextLink(response.headers.get('link'), url);
    if (next !== undefined && !isUnder(next, endpoints.api)) throw unavailable('the GitHub API paginated to another site');
    return { value: parseJson(body), next };
  }

  return {
    async exchangeCode(code, redirectUri, codeVerifier) {
      const form = new URLSearchParams({ client_id: options.clientId, client_secret: options.clientSecret, code, redirect_uri: redirectUri, code_verifier: codeVerifier });
      const { response, body } = await call(
        endpoints.accessToken,
        { method: 'POST', headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': USER_AGENT }, body: form },
        MAX_TOKEN_ANSWER_BYTES,
      );
      if (response.status !== 200) throw unavailable(`the GitHub token endpoint answered ${response.status}`);
      const answer = parseJson(body);
      if (!isRecord(answer)) throw unavailable('the GitHub token endpoint answered something other than an object');
      const { error, access_token: accessToken } = answer;
      if (typeof error === 'string') throw tokenError(error);
      if (typeof accessToken !== 'string' || accessToken.length === 0 || accessToken.length > 4096) throw unavailable('the GitHub token endpoint answered no access token');
      return accessToken;
    },

    async getObject(path, accessToken) {
      const { value } = await getJson(new URL(path, endpoints.api), accessToken);
      if (!isRecord(value)) throw unavailable('the GitHub API answered something other than an object');
      return value;
    },

    async getList(path, accessToken) {
      const items: unknown[] = [];
      let url: URL | undefined = new URL(path, endpoints.api);
      url.searchParams.set('per_page', String(PER_PAGE));
      for (let page = 0; page < maxPages && url !== undefined; page += 1) {
        const answer: { value: unknown; next: URL | undefined } = await getJson(url, accessToken);
        if (!Array.isArray(answer.value)) throw unavailable('the GitHub API answered something other than a list');
        items.push(...answer.value);
        url = answer.next;
      }
      return { items, truncated: url !== undefined };
    },

    async checkApi() {
      const { response, body } = await call(new URL('rate_limit', endpoints.api), { headers: apiHeaders() }, MAX_TOKEN_ANSWER_BYTES);
      if (response.status !== 200) throw unavailable(`the GitHub API answered ${response.status}`);
      if (!isRecord(parseJson(body))) throw unavailable('the GitHub API answered something other than an object');
    },
  };
}

function tokenError(error: string): KubegateError {
  if (error === 'bad_verification_code') return new KubegateError('LOGIN_CALLBACK_INVALID', 'GitHub refused the code: it is wrong, expired or already used');
  if (error === 'unverified_user_email') return new KubegateError('LOGIN_DENIED', 'GitHub refused the login: the account has no verified e-mail address');
  if (error === 'incorrect_client_credentials') return unavailable('GitHub refused the client ID or client secret: check the provider settings');
  if (error === 'redirect_uri_mismatch') return unavailable('GitHub refused the callback URL: register <externalUrl>/v1/login/<provider>/callback for the OAuth app');
  return unavailable('GitHub refused the code exchange');
}

function unavailable(message: string, cause?: unknown): KubegateError {
  return new KubegateError('PROVIDER_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

/** The body as text, or an error once it exceeds `maxBytes`. */
async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new RangeError('the answer is too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    throw unavailable('GitHub answered something other than JSON', error);
  }
}

export function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `rel="next"` target of a Link header, resolved against the request URL. */
export function nextLink(header: string | null, base: URL): URL | undefined {
  if (header === null) return undefined;
  for (const match of header.matchAll(/<([^>]*)>\s*((?:;\s*[^;,]*)*)/g)) {
    const [, target = '', params = ''] = match;
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(params)?.[1] ?? '';
    if (rel.split(/\s+/).includes('next')) {
      try {
        return new URL(target, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** `url` is on the API's origin and below its path. */
function isUnder(url: URL, base: URL): boolean {
  return url.origin === base.origin && url.pathname.startsWith(base.pathname) && url.username === '' && url.password === '';
}
