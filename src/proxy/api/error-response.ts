/**
 * The one place where the REST API turns errors into responses:
 * `{"error":{"code","message"[,"field"]}}` with the catalog status.
 *
 * - A KubegateError is answered as it is (its message is caller-safe by contract).
 * - Errors of express's body parser and router (they carry `type`/`status`) become catalog
 *   errors: malformed JSON → BAD_REQUEST, too large → PAYLOAD_TOO_LARGE, an unsupported
 *   charset or encoding → UNSUPPORTED_MEDIA_TYPE, a path that cannot be decoded → BAD_REQUEST.
 * - Anything else is INTERNAL with the catalog message: nothing about it reaches the client;
 *   it is logged with its cause. Server-side failures (5xx) are logged at error level,
 *   refusals (4xx) at debug, neither with headers or bodies.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { KubegateError, toKubegateError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { recordErrorCode } from './audit.js';

const BODY_PARSER_CODES: Readonly<Record<string, ErrorCode>> = {
  'entity.parse.failed': 'BAD_REQUEST',
  'entity.verify.failed': 'BAD_REQUEST',
  'entity.too.large': 'PAYLOAD_TOO_LARGE',
  'request.size.invalid': 'BAD_REQUEST',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'parameters.too.many': 'BAD_REQUEST',
};

const BODY_PARSER_MESSAGES: Readonly<Record<string, string>> = {
  'entity.parse.failed': 'the request body is not valid JSON (an object is expected)',
  'entity.too.large': 'the request body is larger than 64 KiB',
  'charset.unsupported': 'the request body must be UTF-8 JSON',
  'encoding.unsupported': 'the request body has an unsupported Content-Encoding',
};

/** Maps anything thrown by a route or middleware to a KubegateError. */
function toApiError(error: unknown): KubegateError {
  if (error instanceof KubegateError) return error;
  const { type, status, expose } = (error ?? {}) as { type?: unknown; status?: unknown; expose?: unknown };
  if (typeof type === 'string' && BODY_PARSER_CODES[type] !== undefined) {
    return new KubegateError(BODY_PARSER_CODES[type], BODY_PARSER_MESSAGES[type], { cause: error });
  }
  // The router marks a path parameter that is not valid percent-encoding as a 400 URIError.
  if (error instanceof URIError && status === 400) {
    return new KubegateError('BAD_REQUEST', 'the path is not valid percent-encoding', { cause: error });
  }
  // Other client errors from express's own parts (http-errors with `expose`).
  if (expose === true && typeof status === 'number' && status >= 400 && status < 500) {
    return new KubegateError(status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', undefined, { cause: error });
  }
  return toKubegateError(error);
}

export function apiErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, request, response, _next) => {
    const apiError = toApiError(error);
    recordErrorCode(response, apiError.code);
    const where = { method: request.method, path: request.path, code: apiError.code };
    if (apiError.status >= 500) logger.error({ ...where, err: apiError.cause ?? apiError }, 'REST API request failed');
    else logger.debug({ ...where, field: apiError.field }, 'REST API request refused');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.status(apiError.status).json(apiError.toJSON());
  };
}

/** The last handler: no route matched. */
export const notFound: RequestHandler = () => {
  throw new KubegateError('NOT_FOUND', 'no such route');
};

/** For `router.route(path).all(...)` after the handled methods: 405 with `Allow`. */
export function methodNotAllowed(...methods: readonly string[]): RequestHandler {
  const allow = [...new Set([...methods, ...(methods.includes('GET') ? ['HEAD'] : [])])].join(', ');
  return (_request, response) => {
    response.setHeader('Allow', allow);
    throw new KubegateError('METHOD_NOT_ALLOWED');
  };
}
