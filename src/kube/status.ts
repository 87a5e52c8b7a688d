/**
 * Kubernetes `Status` bodies: how every refusal on the `/k8s/clusters/…` path looks to
 * kubectl, which prints `Error from server (<reason>): <message>`.
 *
 * Design note: the body carries only what a KubegateError says is safe to send — its code,
 * its (catalog or caller-safe) message and the HTTP status; `cause` never leaves the
 * process. `reason` is the Kubernetes StatusReason for the HTTP status (502 has none in
 * Kubernetes; it is reported as `ServiceUnavailable`, the reason kube-apiserver itself uses
 * when a backend cannot be reached). The kubegate code travels in `details.causes[0].reason`.
 * Bodies of errors that carry their catalog message are serialised once and reused, so a
 * refusal on the hot path costs one lookup and one write.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorCatalog, type ErrorCode, type KubegateError } from '../errors.js';

export interface StatusCause {
  readonly reason: ErrorCode;
  readonly field?: string;
}

export interface KubernetesStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: string;
  readonly details: { readonly causes: readonly StatusCause[] };
  readonly code: number;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'ServiceUnavailable',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

const REASON_PHRASES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The Kubernetes StatusReason for an HTTP status. */
export function statusReason(httpStatus: number): string {
  return REASONS[httpStatus] ?? (httpStatus >= 500 ? 'InternalError' : 'BadRequest');
}

export function statusFromError(err: KubegateError): KubernetesStatus {
  const cause: StatusCause = err.field === undefined ? { reason: err.code } : { reason: err.code, field: err.field };
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.message,
    reason: statusReason(err.status),
    details: { causes: [cause] },
    code: err.status,
  };
}

const catalogBodies = new Map<ErrorCode, Buffer>();

/** The serialised Status for `err`; shared buffers for errors that carry their catalog message. */
export function statusBody(err: KubegateError): Buffer {
  const cacheable = err.field === undefined && err.message === errorCatalog[err.code].message;
  if (cacheable) {
    const cached = catalogBodies.get(err.code);
    if (cached !== undefined) return cached;
  }
  const body = Buffer.from(JSON.stringify(statusFromError(err)), 'utf8');
  if (cacheable) catalogBodies.set(err.code, body);
  return body;
}

/**
 * Answers `res` with the Status for `err`. When the response has already started (an error
 * in the middle of a stream) the only honest signal left is to cut the connection.
 *
 * `form: 'discovery'` is for kubectl's discovery reads (see `isDiscoveryRead`): client-go
 * reads them with `Raw()`, which never decodes a Status. For a 5xx it then prints
 * `an error on the server ("<body>") has prevented the request from succeeding` when the
 * body is `text/*` and the status is neither 503 nor 504 (for those it prints a fixed
 * sentence), and `("unknown")` for a JSON body. So a 5xx refusal of a discovery read is sent
 * as 502 with the message as plain text — the one form in which kubectl shows the culprit.
 */
export function writeStatus(res: ServerResponse, err: KubegateError, form: 'status' | 'discovery' = 'status'): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = statusAnswer(err, form);
  res.writeHead(answer.status, ['Content-Type', answer.contentType, 'Content-Length', String(answer.body.length), 'Cache-Control', 'no-store']);
  res.end(answer.body);
}

/** What `writeStatus` sends for `err` in `form`: the HTTP status, the content type and the body. */
export function statusAnswer(err: KubegateError, form: 'status' | 'discovery' = 'status'): { readonly status: number; readonly contentType: string; readonly body: Buffer } {
  if (form === 'discovery' && err.status >= 500) {
    return { status: err.status === 503 || err.status === 504 ? 502 : err.status, contentType: 'text/plain; charset=utf-8', body: Buffer.from(`${err.message} (${err.code})\n`, 'utf8') };
  }
  return { status: err.status, contentType: 'application/json', body: statusBody(err) };
}

/** The paths client-go's discovery reads without decoding a Status (`Raw()`), relative to the cluster. */
const DISCOVERY_PATHS: ReadonlySet<string> = new Set(['/api', '/apis', '/version']);

/** Whether a request is one of kubectl's discovery reads (`GET /api`, `/apis`, `/version`). */
export function isDiscoveryRead(method: string, clusterPath: string): boolean {
  return method === 'GET' && DISCOVERY_PATHS.has(clusterPath);
}

/** How long a refused upgrade connection may linger after the answer before it is destroyed. */
const LINGER_MS = 2000;

/**
 * Answers a raw socket (an upgrade request, before any upgrade happened) with the Status for
 * `err` and closes it. The connection is never reused after a refused upgrade. Whatever the
 * client sends meanwhile is read and discarded (closing with unread input would reset the
 * connection and could lose the answer), and the socket is destroyed shortly after.
 */
export function writeStatusToSocket(socket: Duplex, err: KubegateError): void {
  if (socket.destroyed) return;
  const body = statusBody(err);
  const head =
    `HTTP/1.1 ${err.status} ${REASON_PHRASES[err.status] ?? 'Error'}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n`;
  socket.resume();
  socket.write(head, 'latin1');
  socket.end(body);
  setTimeout(destroySocket, LINGER_MS, socket).unref();
}

function destroySocket(socket: Duplex): void {
  socket.destroy();
}
