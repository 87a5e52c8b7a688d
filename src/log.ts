/**
 * Structured logs: pino, one JSON object per line.
 *
 * Secrets must never reach a log line, and the code that logs is written by many hands, so
 * redaction happens here, in two layers:
 *
 * 1. By field name, at any depth: the value of every field whose name says it is secret
 *    (`authorization`, `cookie`, `set-cookie`, `kubeconfig`, and names ending in `password`,
 *    `secret`, `token`, `secretKey`, `privateKey`, `clientKey`, `clientKeyData`, `apiKey`;
 *    case-insensitive, `-`/`_` allowed) becomes `[REDACTED]` when it can carry a secret:
 *    strings, numbers, buffers, objects and arrays, whatever they hold (a password-named
 *    string is redacted even when it reads `true`). Two kinds of value cannot and are kept:
 *    booleans and null (flags such as `resetPassword: true`), and under `kubeconfig` an
 *    absolute file path on one line (where a kubeconfig is — the webhook logs it — never
 *    its contents, which are YAML or JSON and cannot start with `/`). This covers logged
 *    objects (plain objects and arrays), child-logger bindings, request and response
 *    headers (`req`/`res` serializers) and extra properties of errors (`err`).
 * 2. By shape, over every finished line (pino's `streamWrite` hook), which also covers
 *    message strings and error messages and stacks:
 *    - `Bearer …` / `Basic …` credentials,
 *    - kubegate and Rancher tokens `[ext/]name:secret` (the name is kept: it identifies the
 *      token without granting anything),
 *    - JSON Web Tokens (`eyJ….….…`),
 *    - passwords in URLs (`postgres://user:…@host`) and token-like query parameters.
 *
 * Why not pino's `redact` paths: they only reach fixed depths and, measured here, 4 paths
 * made each line 3× slower and 24 paths 10×; the walk below costs well under a microsecond
 * for a typical line and reaches every depth. It visits plain objects and arrays only (up to
 * 8 levels): instances of other classes are not walked, so log plain data. The shape pass
 * errs on the side of censoring: a 64-character digest after a colon looks like a token
 * secret too.
 */
import pino from 'pino';
import type { DestinationStream, Logger, LevelWithSilent } from 'pino';
import type { IncomingMessage, ServerResponse } from 'node:http';

export type { Logger } from 'pino';

export const REDACTED = '[REDACTED]';

export interface LoggerOptions {
  readonly level: LevelWithSilent;
  /** Where lines go; default standard output. */
  readonly destination?: DestinationStream | undefined;
  /** The `name` field of every line, e.g. `proxy` or `webhook`. */
  readonly name: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const logger = pino(
    {
      name: options.name,
      level: options.level,
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: serializeError, req: serializeRequest, res: serializeResponse },
      formatters: { log: (object) => censorFields(object) as Record<string, unknown> },
      hooks: { streamWrite: censorSecrets },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
  // pino applies no formatter to child bindings; children inherit this `child` through their
  // prototype, so bindings are censored at every level, once, when the child is made.
  const createChild = logger.child;
  logger.child = function child(this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions) {
    return Reflect.apply(createChild, this, [censorFields(bindings), childOptions]) as Logger;
  } as unknown as Logger['child'];
  return logger;
}

const SECRET_NAMES = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'kubeconfig']);
const SECRET_NAME_ENDINGS = [
  'password',
  'passwd',
  'secret',
  'token',
  'secretkey',
  'privatekey',
  'clientkey',
  'clientkeydata',
  'apikey',
];
const MAX_DEPTH = 8;

/** Whether a field of this name holds a secret (see the file comment). */
export function isSecretFieldName(name: string): boolean {
  const folded = name.toLowerCase();
  if (SECRET_NAMES.has(folded)) return true;
  const compact = folded.replace(/[-_]/g, '');
  return SECRET_NAME_ENDINGS.some((ending) => compact.endsWith(ending));
}

/**
 * A copy of `value` with the values of secret-named fields replaced, at any depth of plain
 * objects and arrays; `value` itself when nothing is secret. Never mutates.
 */
function censorFields(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let index = 0; index < value.length; index++) {
      const item: unknown = value[index];
      const censored = censorFields(item, depth + 1);
      if (censored !== item) (copy ??= value.slice())[index] = censored;
    }
    return copy ?? value;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    const field = record[key];
    const censored = field !== undefined && isSecretFieldName(key) ? censorSecretField(key, field) : censorFields(field, depth + 1);
    if (censored !== field) (copy ??= { ...record })[key] = censored;
  }
  return copy ?? value;
}

/** An absolute POSIX path on one line, no longer than PATH_MAX. */
const ABSOLUTE_FILE_PATH = /^\/[^\u0000-\u001f\u007f]{0,4095}$/;

/** The logged form of the value of a secret-named field (see the file comment, layer 1). */
function censorSecretField(name: string, value: unknown): unknown {
  if (typeof value === 'boolean' || value === null) return value;
  if (typeof value === 'string' && name.toLowerCase() === 'kubeconfig' && ABSOLUTE_FILE_PATH.test(value)) return value;
  return REDACTED;
}

function serializeError(error: unknown): unknown {
  const serialized: unknown = pino.stdSerializers.err(error as Error);
  // The serialized error has pino's own prototype; a plain copy lets censorFields walk it.
  return typeof serialized === 'object' && serialized !== null ? censorFields({ ...serialized }) : serialized;
}

function serializeRequest(request: IncomingMessage): unknown {
  return {
    method: request.method,
    url: request.url,
    headers: censorFields({ ...request.headers }),
    remoteAddress: request.socket?.remoteAddress,
  };
}

function serializeResponse(response: ServerResponse): unknown {
  return {
    statusCode: response.headersSent ? response.statusCode : undefined,
    headers: censorFields({ ...response.getHeaders() }),
  };
}

/** Cheap first look: nothing credential-shaped in most lines. */
const MAYBE_SECRET = /bearer|basic|:\/\/|[?&][\w-]*=|eyJ|:[A-Za-z0-9_-]{16}/i;
/** `Authorization`-style credentials in free text. */
const AUTH_SCHEME = /\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/:=-]+/gi;
/** `postgres://user:password@host` → the password. */
const URL_PASSWORD = /(:\/\/[^\s/:@"]*:)[^\s/@"]+@/g;
/** `?token=…`, `&access_token=…`, `&code=…` and similar query parameters. */
const QUERY_SECRET = /([?&](?:[\w-]*token|password|secret|client_secret|code)=)[^&\s"#]+/gi;
/** A JSON Web Token: three base64url parts, the first one a JSON object. */
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
/** The `:secret` of `[ext/]name:secret`: 16 or more token characters after a name character. */
const SECRET_AFTER_NAME = /:[A-Za-z0-9_-]{16,}/g;
const NAME_CHARACTER = /[A-Za-z0-9._-]/;

/**
 * Censors credential-shaped text (see the file comment) in anything about to be logged or
 * recorded: log lines, audit records. Idempotent.
 */
export function censorSecrets(text: string): string {
  if (!MAYBE_SECRET.test(text)) return text;
  return text
    .replace(AUTH_SCHEME, `$1$2${REDACTED}`)
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(QUERY_SECRET, `$1${REDACTED}`)
    .replace(JWT, REDACTED)
    .replace(SECRET_AFTER_NAME, (match: string, offset: number, whole: string) =>
      NAME_CHARACTER.test(whole.charAt(offset - 1)) ? `:${REDACTED}` : match,
    );
}
