/**
 * The web console's browser-facing defences: response headers, cookies and CSRF tokens.
 *
 * Design notes (fail closed):
 * - Headers on every console answer: a Content-Security-Policy that allows nothing but the
 *   console's own stylesheet (`default-src 'none'; style-src 'self'`, no script at all, forms
 *   only to this origin, no framing, no `<base>`), `X-Frame-Options: DENY` for old browsers,
 *   `Referrer-Policy: same-origin` (nothing to other sites; `no-referrer` would make browsers
 *   send `Origin: null` on the console's own form posts), `Cache-Control: no-store` (pages
 *   carry per-user data and, once, a new token), `X-Content-Type-Options: nosniff`,
 *   `Cross-Origin-Opener-Policy`.
 * - Cookies use the `__Host-` prefix (the browser then insists on `Secure`, `Path=/` and no
 *   `Domain`, so a sibling host cannot plant or shadow them), `HttpOnly` (no script can read
 *   them) and `SameSite=Lax` (not sent on cross-site POSTs).
 * - The session cookie holds a kubegate `login` token: short-lived, and revocable on the
 *   server like any token (logging out deletes it). The REST API never reads cookies and the
 *   forwarding path strips them: the cookie is worth something only to the console, which
 *   turns it into a bearer token after the checks below.
 * - CSRF: every state-changing console request carries a synchronizer token in a form field,
 *   HMAC-SHA256 under a key derived from the proxy's secret key of the session's token (or,
 *   before login, of a random pre-login cookie), compared in constant time. A forged form
 *   cannot know it: it is bound to a secret the other site never sees. Requests whose
 *   `Origin` or `Sec-Fetch-Site` says they come from another site are refused as well.
 *   Every replica derives the same key, so a form served by one may be posted to another.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const SESSION_COOKIE = '__Host-kubegate-session';
/** Random value binding the login form's CSRF token before there is a session. */
export const PRELOGIN_COOKIE = '__Host-kubegate-prelogin';
/** PKCE verifier of a browser login (OIDC, GitHub) started from the console. */
export const LOGIN_VERIFIER_COOKIE = '__Host-kubegate-login-verifier';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The form field that carries the CSRF token. */
export const CSRF_FIELD = '_csrf';

const KEY_BYTES = 32;
const HKDF_SALT = Buffer.from('kubegate console');
const HKDF_INFO = Buffer.from('console csrf v1');

/** The console's HMAC key, derived from the proxy's secret key (the same in every replica). */
export function deriveConsoleKey(secretKey: Buffer): Buffer {
  if (!Buffer.isBuffer(secretKey) || secretKey.length < 32) throw new TypeError('deriveConsoleKey needs a secret key of at least 32 bytes');
  return Buffer.from(hkdfSync('sha256', secretKey, HKDF_SALT, HKDF_INFO, KEY_BYTES));
}

export function setSecurityHeaders(response: ServerResponse): void {
  response.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  response.setHeader('X-Frame-Options', 'DENY');
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('Referrer-Policy', 'same-origin');
  response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  response.setHeader('Cache-Control', 'no-store');
}

/** The value of cookie `name` in the request, or undefined. */
export function readCookie(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at === -1) continue;
    if (part.slice(0, at).trim() === name) {
      const value = part.slice(at + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/** A `Set-Cookie` value: `__Host-` rules, HttpOnly, SameSite=Lax. `maxAgeSeconds` 0 deletes. */
export function cookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

/** Adds a `Set-Cookie` header without dropping the ones already set. */
export function appendCookie(response: ServerResponse, value: string): void {
  const existing = response.getHeader('Set-Cookie');
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  response.setHeader('Set-Cookie', [...list, value]);
}

/** A fresh random cookie value (base64url, 256 bits). */
export function randomCookieValue(): string {
  return randomBytes(32).toString('base64url');
}

export interface CsrfTokens {
  /** The token for forms of the session (or pre-login value) `binding`. */
  tokenFor(purpose: 'session' | 'login', binding: string): string;
  /** Whether `presented` is the token for `binding`, compared in constant time. */
  verify(purpose: 'session' | 'login', binding: string, presented: unknown): boolean;
}

export function createCsrfTokens(key: Buffer): CsrfTokens {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) throw new TypeError('the console key must be 32 bytes');
  const tokenFor = (purpose: 'session' | 'login', binding: string): string =>
    createHmac('sha256', key).update(`${purpose}\0${binding}`).digest('base64url');
  return {
    tokenFor,
    verify(purpose, binding, presented) {
      if (typeof presented !== 'string') return false;
      const expected = Buffer.from(tokenFor(purpose, binding));
      const given = Buffer.from(presented);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

/**
 * False when the browser says the request comes from elsewhere: an `Origin` that is not this
 * host's https origin, or a `Sec-Fetch-Site` other than `same-origin` / `none` (a sibling
 * subdomain is `same-site`, and may belong to someone else). Absent headers (old browsers,
 * privacy settings) pass: the CSRF token is the defence that must hold on its own.
 */
export function isSameOriginRequest(request: IncomingMessage): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  const host = request.headers.host;
  return host !== undefined && origin === `https://${host}`;
}
