/**
 * The token wire format, `[ext/]<name>:<secret>`, shared with Rancher's kube-api-auth.
 *
 * The split is at the FIRST colon, so a secret may itself contain colons. An `ext/` prefix
 * on the name is stripped (Rancher's ext tokens). The name is later used as an object name
 * and in URL paths, so it is held to a strict pattern: letters, digits, `.`, `_`, `-`,
 * starting and ending with a letter or digit (which also rules out `.` and `..`). Both parts
 * must be printable ASCII without spaces: a token travels in an HTTP header and a kubeconfig.
 *
 * Error messages describe the problem only; they never repeat any part of the token,
 * because a "name" that lacks its colon may well be a secret.
 */
import { KubegateError } from '../errors.js';

/** Longest token accepted on the wire, in characters. */
export const MAX_TOKEN_LENGTH = 4096;
/** Longest token name: a Kubernetes object name. */
export const MAX_TOKEN_NAME_LENGTH = 253;

const EXT_PREFIX = 'ext/';
const NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
/** Anything outside printable ASCII (0x21–0x7e): whitespace, control characters, non-ASCII. */
const FORBIDDEN_CHARACTER = /[^\x21-\x7e]/;

export interface ParsedToken {
  readonly name: string;
  readonly secret: string;
}

/** The problem with `token` as a sentence, or the parsed token. */
function checkToken(token: string): ParsedToken | string {
  if (token.length === 0) return 'the token is empty';
  if (token.length > MAX_TOKEN_LENGTH) return `the token is longer than ${MAX_TOKEN_LENGTH} characters`;
  if (FORBIDDEN_CHARACTER.test(token)) {
    return 'the token may only contain printable ASCII characters, without whitespace';
  }
  const colon = token.indexOf(':');
  if (colon === -1) return 'the token has no colon between its name and its secret';
  let name = token.slice(0, colon);
  if (name.startsWith(EXT_PREFIX)) name = name.slice(EXT_PREFIX.length);
  const secret = token.slice(colon + 1);
  if (name.length === 0) return 'the token name is empty';
  if (secret.length === 0) return 'the token secret is empty';
  if (name.length > MAX_TOKEN_NAME_LENGTH) {
    return `the token name is longer than ${MAX_TOKEN_NAME_LENGTH} characters`;
  }
  if (!NAME_PATTERN.test(name)) {
    return 'the token name may only contain letters, digits, ".", "_" and "-", and must start and end with a letter or digit';
  }
  return { name, secret };
}

/**
 * Parses `[ext/]<name>:<secret>`. Throws KubegateError TOKEN_MALFORMED with a precise,
 * token-free message when the input is not a well-formed token.
 */
export function parseToken(token: string): ParsedToken {
  if (typeof token !== 'string') throw new TypeError('parseToken expects a string');
  const parsed = checkToken(token);
  if (typeof parsed === 'string') throw new KubegateError('TOKEN_MALFORMED', parsed);
  return parsed;
}

/** Like parseToken, but answers undefined instead of throwing (for hot paths and indexes). */
export function tryParseToken(token: string): ParsedToken | undefined {
  if (typeof token !== 'string') return undefined;
  const parsed = checkToken(token);
  return typeof parsed === 'string' ? undefined : parsed;
}

/** `name` + `secret` → `name:secret`. A name or secret that would not parse back is a TypeError. */
export function formatToken(name: string, secret: string): string {
  if (typeof name !== 'string' || typeof secret !== 'string') {
    throw new TypeError('formatToken expects two strings');
  }
  const token = `${name}:${secret}`;
  const parsed = checkToken(token);
  if (typeof parsed === 'string') throw new TypeError(`formatToken: ${parsed}`);
  if (parsed.name !== name) throw new TypeError('formatToken: the token name must not start with "ext/"');
  return token;
}

/**
 * The credential of an `Authorization: Bearer <credential>` header value.
 *
 * Answers undefined when the header is absent, empty or uses another scheme (the scheme is
 * case-insensitive). A Bearer header whose credential is missing, or that holds more than
 * one space-separated credential, is malformed: TOKEN_MALFORMED. The credential is returned
 * as is; parseToken checks it when it is meant to be a kubegate token.
 */
export function parseBearer(headerValue: string | undefined): string | undefined {
  if (headerValue === undefined || headerValue.length === 0) return undefined;
  const space = headerValue.indexOf(' ');
  const scheme = space === -1 ? headerValue : headerValue.slice(0, space);
  if (scheme.length !== 6 || scheme.toLowerCase() !== 'bearer') return undefined;
  const credential = space === -1 ? '' : headerValue.slice(space + 1);
  if (credential.length === 0) {
    throw new KubegateError('TOKEN_MALFORMED', 'the Bearer credential is empty');
  }
  if (/\s/.test(credential)) {
    throw new KubegateError('TOKEN_MALFORMED', 'the Authorization header must hold exactly one credential after "Bearer "');
  }
  return credential;
}
