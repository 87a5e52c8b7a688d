/**
 * Request input for the REST API: the JSON body gate and zod-based validation whose errors
 * name the field.
 *
 * - Bodies are JSON only. A POST/PATCH/PUT/DELETE that carries a body with another content
 *   type is refused (415) before anything reads it; bodies are limited to 64 KiB and must
 *   be a JSON object or array (an array then fails validation). A request without a body is
 *   validated as `{}`, so `POST /v1/tokens` with nothing to say works.
 * - Schemas are strict: an unknown field is a 400 that names it (typos are not ignored).
 * - Every error is BAD_REQUEST with `field` set to the path (`ace.nodes[0].address`) and a
 *   message that starts with it. Messages describe the rule, never echo the value.
 */
import express from 'express';
import type { Request, RequestHandler } from 'express';
import * as z from 'zod';
import { KubegateError, isKubegateError } from '../../errors.js';
import { parseDurationSeconds } from '../../tokens/duration.js';

export const MAX_BODY_BYTES = 64 * 1024;
const BODY_METHODS = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);
const MAX_SHOWN_KEY_LENGTH = 64;

function hasBody(request: Request): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Refuses non-JSON bodies (415), then parses JSON bodies into `request.body`. */
export function jsonBody(): RequestHandler {
  const parse = express.json({ limit: MAX_BODY_BYTES, strict: true, type: () => true });
  return (request, response, next) => {
    if (!BODY_METHODS.has(request.method) || !hasBody(request)) {
      next();
      return;
    }
    if (!request.is(['application/json', '+json'])) {
      throw new KubegateError('UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json');
    }
    parse(request, response, next);
  };
}

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** Whether `value` holds a control character (newline, NUL, …), which no name or text needs. */
export function hasControlCharacters(value: string): boolean {
  return CONTROL_CHARACTER.test(value);
}

/** A single-line string of `min` to `max` characters. */
export function plainText(min: number, max: number) {
  return z
    .string()
    .min(min, { error: min <= 1 ? 'must not be empty' : `must be at least ${min} characters long` })
    .max(max, { error: `must be at most ${max} characters long` })
    .refine((value) => !hasControlCharacters(value), { error: 'must not contain control characters' });
}

/** A non-empty single-line text of at most `max` characters. */
export function text(max: number) {
  return plainText(1, max);
}

/** A lifetime as `30d`, `1h30m` or whole seconds; resolved by ttlSeconds. */
export const ttlInput = z.union([z.string().max(64), z.number()], { error: 'must be a duration such as 30d, 24h or 3600' });

/** `value` in seconds; DURATION_INVALID naming `field` when it is not a positive duration. */
export function ttlSeconds(value: string | number, field: string): number {
  try {
    return parseDurationSeconds(value);
  } catch (error) {
    if (isKubegateError(error, 'DURATION_INVALID')) throw new KubegateError('DURATION_INVALID', `${field}: ${error.message}`, { field });
    throw error;
  }
}

/** Validates a request body (absent → `{}`); BAD_REQUEST naming the first bad field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  return parseWith(schema, body === undefined ? {} : body, 'the request body');
}

/** Validates `request.query`; repeated parameters arrive as arrays and fail a string schema. */
export function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.output<S> {
  return parseWith(schema, query, 'the query');
}

function parseWith<S extends z.ZodType>(schema: S, input: unknown, whole: string): z.output<S> {
  const result = schema.safeParse(input, { error: describeIssue });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  let path = formatPath(issue.path);
  let problem = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const key = String(issue.keys[0]).slice(0, MAX_SHOWN_KEY_LENGTH);
    path = path === '' ? key : `${path}.${key}`;
    problem = 'is not a known field';
  }
  if (path === '') throw new KubegateError('BAD_REQUEST', `${whole} ${problem}`);
  throw new KubegateError('BAD_REQUEST', `${path} ${problem}`, { field: path });
}

/** The default wording of an issue; schemas override it with their own `error`. */
function describeIssue(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return issue.expected === 'object' ? 'must be a JSON object' : `must be a ${issue.expected}`;
    case 'too_big':
      return issue.origin === 'string' ? `must be at most ${String(issue.maximum)} characters long` : `must be at most ${String(issue.maximum)}`;
    case 'too_small':
      if (issue.origin === 'string') return Number(issue.minimum) <= 1 ? 'must not be empty' : `must be at least ${String(issue.minimum)} characters long`;
      return `must be at least ${String(issue.minimum)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'invalid_format':
      return 'has an invalid format';
    case 'unrecognized_keys':
      return 'is not a known field';
    default:
      return 'is invalid';
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? String(part) : `.${String(part)}`;
  }
  return text;
}
