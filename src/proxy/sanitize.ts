/**
 * What may cross the proxy: the client's headers on the way up, the cluster's on the way
 * back.
 *
 * Design note (fail closed): the outgoing header list is built from `rawHeaders`, so every
 * duplicate and every spelling (`impersonate-user`, `IMPERSONATE-USER`) is seen. Up, the
 * client's credentials and identity claims never pass: `Authorization`,
 * `Proxy-Authorization`, `Cookie`, `Host`, `X-Remote-*` (request-header authentication) and
 * hop-by-hop headers are dropped, and every header named in `Connection` too. `Impersonate-*`
 * is never forwarded as sent either, but not dropped silently: its lines are handed to the
 * caller, which either has the target cluster authorize them and sets the identity itself, or
 * refuses the request — a client asking to act as someone else must learn when it is not
 * honoured. A
 * `Connection` header that names a header the proxy protects or sets (`Authorization`,
 * `Impersonate-*`, `Cookie`, `Host`, `Content-Length`, …) is refused outright (400): an
 * intermediary applying hop-by-hop rules after us would otherwise remove the identity we set
 * (CVE-2021-31999). Transfer codings other than `chunked` are refused, since re-framing them
 * could desynchronise the upstream connection; a chunked body is reported (`hasBody`) and
 * re-framed by the forwarding client, which declares the framing itself. Upgrades are limited to WebSocket and SPDY/3.1
 * and carry no body. More than MAX_REQUEST_HEADER_LINES header lines are refused (400): with
 * the lines the proxy adds, the request must stay under what the servers behind it keep — node
 * keeps 1000 lines and drops the rest without a word, which would drop the proxy's own
 * credential and identity, as they come last. Down, hop-by-hop headers and `Set-Cookie` are
 * dropped: a cluster must not plant cookies on the proxy's origin.
 */
import { KubegateError } from '../errors.js';

export interface SanitizedRequest {
  /** The client's headers that may go upstream, flat `[name, value, …]`; `Content-Length` kept, no `Transfer-Encoding`. */
  readonly headers: string[];
  /** The value of the one `Authorization` header, if any. */
  readonly authorization: string | undefined;
  /** The client's `Impersonate-*` lines (any case), flat `[name, value, …]`; empty when none. */
  readonly impersonation: readonly string[];
  /** The `Origin` header, if any. */
  readonly origin: string | undefined;
  /** The request has a body to forward (a non-zero `Content-Length`, or chunked). */
  readonly hasBody: boolean;
}

/** kubectl sends about ten, plus at most 64 `Impersonate-*` lines (`--as-group`…). */
export const MAX_REQUEST_HEADER_LINES = 256;

/** Dropped from every request; the proxy sets its own where needed. */
const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'proxy-authorization',
  'cookie',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'expect',
  'http2-settings',
]);

/** Headers a `Connection` header may never name. */
const PROTECTED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'content-length',
  'transfer-encoding',
  'origin',
]);

/** Dropped from every response. */
const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'set-cookie',
]);

const UPGRADE_PROTOCOLS: ReadonlyMap<string, string> = new Map([
  ['websocket', 'websocket'],
  ['spdy/3.1', 'SPDY/3.1'],
]);
/** The WebSocket subprotocol through which a browser can pass a bearer token to Kubernetes. */
const BEARER_SUBPROTOCOL = 'base64url.bearer.authorization.k8s.io.';

function isIdentityHeader(lowerName: string): boolean {
  return lowerName.startsWith('impersonate-') || lowerName.startsWith('x-remote-');
}

/**
 * Builds the upstream header list from a request's `rawHeaders`. `upgrade` says the request
 * is an HTTP upgrade (exec, attach, port-forward). Throws KubegateError for a request the
 * proxy refuses to forward whoever sends it (BAD_REQUEST, CONNECTION_HEADER_REFUSED).
 */
export function sanitizeRequest(raw: readonly string[], upgrade: boolean): SanitizedRequest {
  if (raw.length > 2 * MAX_REQUEST_HEADER_LINES) {
    throw new KubegateError('BAD_REQUEST', `more than ${MAX_REQUEST_HEADER_LINES} request header lines`);
  }
  const headers: string[] = [];
  let authorization: string | undefined;
  let authorizationCount = 0;
  const impersonation: string[] = [];
  let origin: string | undefined;
  let connection: string | undefined;
  let transferEncoding: string | undefined;
  let upgradeProtocol: string | undefined;
  let hasBody = false;
  let hasContentLength = false;

  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'authorization':
        authorization = value;
        authorizationCount++;
        continue;
      case 'connection':
        connection = connection === undefined ? value : `${connection},${value}`;
        continue;
      case 'transfer-encoding':
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding},${value}`;
        continue;
      case 'upgrade':
        upgradeProtocol = upgradeProtocol === undefined ? value : `${upgradeProtocol},${value}`;
        continue;
      case 'content-length':
        hasContentLength = true;
        if (value.trim() !== '0') hasBody = true;
        break;
      case 'origin':
        origin = value;
        break;
      case 'sec-websocket-protocol':
        if (value.includes(BEARER_SUBPROTOCOL)) {
          const kept = withoutBearerSubprotocol(value);
          if (kept.length > 0) headers.push(name, kept);
          continue;
        }
        break;
      default:
        if (DROPPED_REQUEST_HEADERS.has(lower)) continue;
        if (isIdentityHeader(lower)) {
          if (lower.startsWith('impersonate-')) impersonation.push(name, value);
          continue;
        }
    }
    headers.push(name, value);
  }

  if (authorizationCount > 1) throw new KubegateError('BAD_REQUEST', 'more than one Authorization header');
  if (connection !== undefined) dropConnectionNamedHeaders(headers, connection);

  if (transferEncoding !== undefined) {
    if (transferEncoding.trim().toLowerCase() !== 'chunked' || hasContentLength) {
      throw new KubegateError('BAD_REQUEST', 'only the chunked transfer coding, without Content-Length, is accepted');
    }
    hasBody = true;
  }

  if (upgrade) {
    const protocol = UPGRADE_PROTOCOLS.get((upgradeProtocol ?? '').trim().toLowerCase());
    if (protocol === undefined) throw new KubegateError('BAD_REQUEST', 'only WebSocket and SPDY/3.1 upgrades are accepted');
    if (hasBody) throw new KubegateError('BAD_REQUEST', 'an upgrade request must not have a body');
    headers.push('Connection', 'Upgrade', 'Upgrade', protocol);
  }

  return { headers, authorization, impersonation, origin, hasBody };
}

/**
 * Removes, in place, the headers a `Connection` header names. Throws
 * CONNECTION_HEADER_REFUSED when it names a protected or identity header.
 */
function dropConnectionNamedHeaders(headers: string[], connection: string): void {
  let named: string[] | undefined;
  for (const token of connection.split(',')) {
    const lower = token.trim().toLowerCase();
    if (lower === '' || lower === 'close' || lower === 'keep-alive' || lower === 'upgrade') continue;
    if (PROTECTED_HEADERS.has(lower) || isIdentityHeader(lower)) throw new KubegateError('CONNECTION_HEADER_REFUSED');
    (named ??= []).push(lower);
  }
  if (named !== undefined) removeNamedHeaders(headers, named);
}

/** Removes, in place, every header of a flat list whose lower-cased name is in `named`. */
function removeNamedHeaders(headers: string[], named: readonly string[]): void {
  let kept = 0;
  for (let i = 0; i < headers.length; i += 2) {
    if (named.includes((headers[i] as string).toLowerCase())) continue;
    headers[kept++] = headers[i] as string;
    headers[kept++] = headers[i + 1] as string;
  }
  headers.length = kept;
}

function withoutBearerSubprotocol(value: string): string {
  return value
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol.length > 0 && !protocol.startsWith(BEARER_SUBPROTOCOL))
    .join(', ');
}

/**
 * The upstream response headers that may go back to the client, flat. Hop-by-hop headers,
 * headers named in the response's `Connection`, and `Set-Cookie` are dropped; node re-frames
 * the body itself.
 */
export function filterResponseHeaders(raw: readonly string[]): string[] {
  const headers: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (DROPPED_RESPONSE_HEADERS.has(lower)) {
      if (lower === 'connection') connection = connection === undefined ? (raw[i + 1] as string) : `${connection},${raw[i + 1] as string}`;
      continue;
    }
    headers.push(name, raw[i + 1] as string);
  }
  if (connection !== undefined) {
    const named = connection
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== '' && token !== 'close' && token !== 'keep-alive' && token !== 'upgrade');
    if (named.length > 0) removeNamedHeaders(headers, named);
  }
  return headers;
}
