/**
 * The one catalog of kubegate error codes.
 *
 * Every error that crosses a process boundary (an HTTP response, a TokenReview status, a
 * CLI exit, a log line) carries one of these codes. A code is declared once, with the HTTP
 * status it maps to and a message that is safe to show to any caller: catalog messages
 * never contain user input, tokens or internal detail. Extra, caller-safe detail travels
 * in `KubegateError.message`; anything else goes in `cause`, which is logged, never sent.
 *
 * Codes are stable: never reuse or rename one. README.md documents each code and a test
 * keeps that table and this catalog in step.
 */

export const errorCatalog = {
  // --- generic -------------------------------------------------------------------------
  INTERNAL: { status: 500, message: 'internal error' },
  BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  NOT_FOUND: { status: 404, message: 'not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'request body too large' },
  REQUEST_TIMEOUT: { status: 408, message: 'the request body did not arrive in time' },
  TOO_MANY_PIPELINED_REQUESTS: { status: 429, message: 'too many requests in flight on one connection' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'request body must be JSON' },
  CONFLICT: { status: 409, message: 'the object already exists' },
  SHUTTING_DOWN: { status: 503, message: 'the server is shutting down' },
  NOT_READY: { status: 503, message: 'the server is not ready' },
  LISTEN_FAILED: { status: 500, message: 'the server cannot listen on the configured address' },

  // --- tokens and hashes ---------------------------------------------------------------
  TOKEN_MALFORMED: { status: 401, message: 'the token is malformed' },
  TOKEN_INVALID: { status: 401, message: 'the token is unknown, revoked or wrong' },
  TOKEN_EXPIRED: { status: 401, message: 'the token has expired' },
  TOKEN_DISABLED: { status: 401, message: 'the token is disabled' },
  TOKEN_WRONG_CLUSTER: { status: 401, message: 'the token is not valid for this cluster' },
  TOKEN_AUDIENCE_MISMATCH: { status: 401, message: 'the token is not valid for the requested audience' },
  HASH_MALFORMED: { status: 500, message: 'a stored token hash is malformed' },
  HASH_UNSUPPORTED: { status: 500, message: 'a stored token hash has an unsupported version' },
  DURATION_INVALID: { status: 400, message: 'the duration is invalid' },
  TTL_TOO_LONG: { status: 400, message: 'the requested lifetime exceeds the maximum' },

  // --- authentication and authorization -------------------------------------------------
  UNAUTHENTICATED: { status: 401, message: 'authentication required' },
  AUTH_UNDECIDED: { status: 503, message: 'authentication could not be decided; try again' },
  USER_DISABLED: { status: 403, message: 'the user is disabled' },
  FORBIDDEN: { status: 403, message: 'forbidden' },
  ROLE_READ_ONLY: { status: 403, message: 'your role on this cluster may only read' },
  IDENTITY_NAME_RESERVED: { status: 400, message: 'the name is reserved for Kubernetes system identities' },
  IDENTITY_NAME_INVALID: { status: 400, message: 'the identity name is invalid' },
  LOGIN_FAILED: { status: 401, message: 'wrong username or password' },
  LOGIN_RATE_LIMITED: { status: 429, message: 'too many failed logins; try again later' },
  PROVIDER_UNKNOWN: { status: 400, message: 'unknown identity provider' },
  PROVIDER_UNAVAILABLE: { status: 503, message: 'the identity provider could not be reached' },
  LOGIN_METHOD_UNSUPPORTED: { status: 400, message: 'the identity provider does not support this way of logging in' },
  LOGIN_STATE_INVALID: { status: 400, message: 'the login state is unknown, expired or already used; start the login again' },
  LOGIN_CALLBACK_INVALID: { status: 400, message: 'the identity provider callback is invalid or its code was already used' },
  LOGIN_DENIED: { status: 403, message: 'the identity provider did not grant the login' },
  LOGIN_REDIRECT_INVALID: { status: 400, message: 'the redirect must be an http loopback URL (127.0.0.1 or localhost)' },
  LOGIN_PENDING: { status: 400, message: 'the device login is not finished yet' },
  OIDC_TOKEN_INVALID: { status: 401, message: 'the ID token is invalid' },
  IDENTITY_NOT_LINKED: { status: 401, message: 'no kubegate user is linked to this identity; log in through the proxy first' },
  LAST_ADMIN: { status: 409, message: 'the change would leave no enabled administrator' },
  IMPERSONATION_REFUSED: { status: 403, message: 'impersonation headers are not accepted from clients of the proxy' },
  IMPERSONATION_INVALID: { status: 400, message: 'the Impersonate-* headers are malformed' },
  IMPERSONATION_DENIED: { status: 403, message: 'the cluster does not allow you to impersonate the requested identity' },
  IMPERSONATION_UNVERIFIED: { status: 503, message: 'the cluster could not be asked whether you may impersonate; try again' },
  ORIGIN_REFUSED: { status: 403, message: 'the request origin is not allowed' },
  CONNECTION_HEADER_REFUSED: { status: 400, message: 'the Connection header names a header the proxy protects' },
  UPSTREAM_UNREACHABLE: { status: 502, message: "the cluster's API server could not be reached" },
  UPSTREAM_TIMEOUT: { status: 504, message: "the cluster's API server did not answer in time" },
  UPSTREAM_REDIRECT_REFUSED: { status: 502, message: "the cluster's API server answered an upgrade with a redirect, which the proxy does not follow" },
  KUBE_API_FAILED: { status: 502, message: 'a request to the Kubernetes API failed' },
  PROXY_CERTIFICATE_UNTRUSTED: { status: 502, message: "the proxy's TLS certificate is not trusted; pass its CA with --certificate-authority <file>" },
  CLUSTER_CREDENTIAL_REFUSED: { status: 502, message: "the cluster's API server refused the proxy's credential for it" },

  // --- cluster agents and tunnels ------------------------------------------------------
  CLUSTER_DISCONNECTED: { status: 503, message: "the cluster's agent is not connected to the proxy; check the kubegate agent in that cluster" },
  AGENT_CREDENTIAL_INVALID: { status: 401, message: 'the agent credential is unknown, revoked, expired or not valid for this cluster' },
  REGISTRATION_TOKEN_INVALID: { status: 401, message: 'the registration token is unknown, expired or already used' },
  TUNNEL_PROTOCOL_ERROR: { status: 400, message: 'the tunnel request or message is malformed' },
  CLUSTER_MODE_MISMATCH: { status: 409, message: 'the operation does not apply to a cluster of this mode' },
  CLUSTER_DELETING: { status: 409, message: 'the cluster is being deleted' },
  SYNC_SUPERSEDED: { status: 409, message: 'another copy of this installation writes to the cluster' },

  // --- configuration --------------------------------------------------------------------
  CONFIG_INVALID: { status: 500, message: 'the configuration is invalid' },
  CONFIG_UNREADABLE: { status: 500, message: 'the configuration file cannot be read' },
  PKI_INVALID: { status: 500, message: 'the TLS certificate material is invalid or unreadable' },

  // --- store ----------------------------------------------------------------------------
  STORE_UNAVAILABLE: { status: 503, message: 'the store is unavailable' },
  STORE_CONSTRAINT: { status: 409, message: 'the change conflicts with existing data' },
  SECRET_KEY_INVALID: { status: 500, message: 'the secret encryption key is invalid' },
  SECRET_DECRYPT_FAILED: { status: 500, message: 'a stored secret cannot be decrypted' },
  SECRET_KEY_MISSING: { status: 500, message: 'the secret key file is missing while the store holds secrets sealed with it' },
  DATA_DIR_LOCKED: { status: 500, message: 'the data directory is in use by another kubegate proxy' },
} as const satisfies Record<string, { readonly status: number; readonly message: string }>;

export type ErrorCode = keyof typeof errorCatalog;

export interface KubegateErrorOptions {
  /** The underlying error; logged for operators, never sent to clients. */
  readonly cause?: unknown;
  /** Field path for configuration and request validation errors, e.g. `store.postgres.url`. */
  readonly field?: string;
}

/**
 * A typed error with a stable code. `message` must be safe to send to the caller: never put
 * a token, password or raw upstream answer in it.
 */
export class KubegateError extends Error {
  override readonly name = 'KubegateError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message?: string, options: KubegateErrorOptions = {}) {
    super(message ?? errorCatalog[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = errorCatalog[code].status;
    this.field = options.field;
  }

  /** The body kubegate's REST API answers with. */
  toJSON(): { error: { code: ErrorCode; message: string; field?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.field === undefined ? {} : { field: this.field }) } };
  }
}

export function isKubegateError(value: unknown, code?: ErrorCode): value is KubegateError {
  return value instanceof KubegateError && (code === undefined || value.code === code);
}

/**
 * Turns anything thrown into a KubegateError. Unknown errors become INTERNAL with the
 * catalog message, so nothing about their content reaches a client; the original is kept
 * as `cause` for the log.
 */
export function toKubegateError(value: unknown): KubegateError {
  if (value instanceof KubegateError) return value;
  return new KubegateError('INTERNAL', undefined, { cause: value });
}

/**
 * The REST API's error body `{"error":{"code","message"[,"field"]}}` as a KubegateError, for
 * its clients (the CLI, the web console). A body that is not one, or names a code this
 * build does not know, is INTERNAL saying the HTTP status; messages are cut at 500
 * characters.
 */
export function errorFromApiBody(status: number, body: unknown): KubegateError {
  const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' && Object.hasOwn(errorCatalog, error.code) ? (error.code as ErrorCode) : 'INTERNAL';
  const message = typeof error?.message === 'string' ? error.message.slice(0, 500) : `the proxy answered HTTP ${status}`;
  return new KubegateError(code, message, typeof error?.field === 'string' ? { field: error.field } : {});
}
