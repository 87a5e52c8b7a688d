/**
 * Authentication and impersonation as kube-apiserver performs them, for the fake server.
 *
 * Design note: this mirrors the real filter chain so the proxy's tests fail the way a real
 * cluster would fail them: authentication (client certificate, then bearer token; no
 * anonymous access, as with `--anonymous-auth=false`) answers 401 Status JSON; then the
 * impersonation filter reads `Impersonate-*` headers the way Go's net/http sees them
 * (header names case-insensitive, each header line a separate value, never split at
 * commas), rejects group/uid/extra without a user with the same plain-text 500 that
 * `responsewriters.InternalError` writes, lower-cases and percent-decodes extra keys
 * (`url.PathUnescape`, keeping the raw key when decoding fails), and adds
 * `system:authenticated` like the real filter.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { failureStatus, unauthorizedStatus } from './kube-objects.js';
import type { KubeStatus } from './kube-objects.js';

export interface FakeUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

export interface EffectiveUser extends FakeUser {
  /** Whether the identity came from Impersonate-* headers. */
  readonly impersonated: boolean;
  /** How the caller itself authenticated (`webhook`: a token the webhook authenticator vouched for). */
  readonly authenticatedBy: 'token' | 'client-certificate' | 'webhook' | 'jwt';
  /** The caller's own name (the proxy's identity when impersonating). */
  readonly requester: string;
}

export type IdentityOutcome =
  | { readonly ok: true; readonly user: EffectiveUser }
  | { readonly ok: false; readonly status: number; readonly contentType: string; readonly body: string };

export interface IdentityOptions {
  readonly token: string;
  readonly tokenUser: FakeUser;
  /** Accept client certificates (CN = user, O = groups) verified against the configured CA. */
  readonly clientCertificates: boolean;
  /** When false, every impersonation request is forbidden (the caller lacks the RBAC verb). */
  readonly allowImpersonation: boolean;
  /** Who the webhook token authenticator said the request's other bearer token is. */
  readonly webhookUser?: FakeUser | undefined;
  /** Who the JWT authenticator (`--authentication-config`, kube-jwt-authn.ts) said the bearer token is. */
  readonly jwtUser?: FakeUser | undefined;
}

const bearerPrefix = /^bearer /i;
const websocketTokenProtocolPrefix = 'base64url.bearer.authorization.k8s.io.';

/** The bearer token of a request, also from a WebSocket subprotocol as kube-apiserver accepts it. */
export function readBearerToken(request: IncomingMessage): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    return bearerPrefix.test(authorization) ? authorization.slice('bearer '.length).trim() : undefined;
  }
  const protocols = request.headers['sec-websocket-protocol'];
  if (protocols === undefined) return undefined;
  for (const protocol of protocols.split(',').map((part) => part.trim())) {
    if (protocol.startsWith(websocketTokenProtocolPrefix)) {
      return Buffer.from(protocol.slice(websocketTokenProtocolPrefix.length), 'base64url').toString('utf8');
    }
  }
  return undefined;
}

function tokensEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function statusOutcome(status: KubeStatus): IdentityOutcome {
  return { ok: false, status: status.code, contentType: 'application/json', body: JSON.stringify(status) };
}

/** Authenticates the caller, then applies impersonation headers. */
export function resolveIdentity(request: IncomingMessage, options: IdentityOptions): IdentityOutcome {
  const caller = authenticate(request, options);
  if (caller === undefined) return statusOutcome(unauthorizedStatus());
  return impersonate(request, caller.user, caller.by, options.allowImpersonation);
}

function authenticate(request: IncomingMessage, options: IdentityOptions): { user: FakeUser; by: EffectiveUser['authenticatedBy'] } | undefined {
  if (options.clientCertificates) {
    const socket = request.socket as TLSSocket;
    if (socket.authorized) {
      const subject = socket.getPeerCertificate().subject;
      const commonName = subject?.CN;
      if (typeof commonName === 'string' && commonName !== '') {
        const organizations = subject.O === undefined ? [] : Array.isArray(subject.O) ? subject.O : [subject.O];
        return { user: { username: commonName, groups: [...organizations, 'system:authenticated'], extra: {} }, by: 'client-certificate' };
      }
    }
  }
  const token = readBearerToken(request);
  if (token !== undefined && tokensEqual(token, options.token)) return { user: options.tokenUser, by: 'token' };
  if (token !== undefined && options.jwtUser !== undefined) return { user: options.jwtUser, by: 'jwt' };
  if (token !== undefined && options.webhookUser !== undefined) return { user: options.webhookUser, by: 'webhook' };
  return undefined;
}

/** Header values by lower-cased name, one entry per header line, as Go's http.Header holds them. */
function headerLines(request: IncomingMessage): Map<string, string[]> {
  const lines = new Map<string, string[]>();
  for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) {
    const name = request.rawHeaders[index]!.toLowerCase();
    const values = lines.get(name) ?? [];
    values.push(request.rawHeaders[index + 1]!);
    lines.set(name, values);
  }
  return lines;
}

function unescapeExtraKey(encodedKey: string): string {
  // Go's url.PathUnescape: %XX sequences only; a malformed escape keeps the raw key.
  if (/%(?![0-9a-fA-F]{2})/.test(encodedKey)) return encodedKey;
  try {
    return decodeURIComponent(encodedKey);
  } catch {
    return encodedKey;
  }
}

function impersonate(request: IncomingMessage, caller: FakeUser, by: EffectiveUser['authenticatedBy'], allowed: boolean): IdentityOutcome {
  const lines = headerLines(request);
  const requestedUser = lines.get('impersonate-user')?.[0] ?? '';
  const requestedGroups = lines.get('impersonate-group') ?? [];
  const requestedUid = lines.get('impersonate-uid')?.[0] ?? '';
  const extra: Record<string, string[]> = {};
  for (const [name, values] of lines) {
    if (!name.startsWith('impersonate-extra-')) continue;
    const key = unescapeExtraKey(name.slice('impersonate-extra-'.length));
    extra[key] = [...(extra[key] ?? []), ...values];
  }
  const hasUser = requestedUser !== '';
  const hasOthers = requestedGroups.length > 0 || Object.keys(extra).length > 0 || requestedUid !== '';

  if (!hasUser && !hasOthers) {
    return { ok: true, user: { ...caller, impersonated: false, authenticatedBy: by, requester: caller.username } };
  }
  if (!hasUser) {
    const body = `Internal Server Error: ${JSON.stringify(request.url ?? '')}: requested impersonation of groups, uid or extra without impersonating a user\n`;
    return { ok: false, status: 500, contentType: 'text/plain; charset=utf-8', body };
  }
  if (!allowed) {
    const status = failureStatus(
      403,
      'Forbidden',
      `users "${requestedUser}" is forbidden: User "${caller.username}" cannot impersonate resource "users" in API group "" at the cluster scope`,
      { name: requestedUser, kind: 'users' },
    );
    return statusOutcome(status);
  }

  let groups = [...requestedGroups];
  const serviceAccount = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(requestedUser);
  if (serviceAccount !== null && requestedGroups.length === 0) {
    groups = ['system:serviceaccounts', `system:serviceaccounts:${serviceAccount[1]}`];
  }
  if (requestedUser !== 'system:anonymous') {
    if (!groups.includes('system:authenticated') && !groups.includes('system:unauthenticated')) groups.push('system:authenticated');
  } else if (!groups.includes('system:unauthenticated')) {
    groups.push('system:unauthenticated');
  }
  return {
    ok: true,
    user: {
      username: requestedUser,
      ...(requestedUid === '' ? {} : { uid: requestedUid }),
      groups,
      extra,
      impersonated: true,
      authenticatedBy: by,
      requester: caller.username,
    },
  };
}
