/**
 * The `Impersonate-*` headers that carry a kubegate identity to a cluster's API server.
 *
 * Design note: identity reaches Kubernetes RBAC only through these headers, so they are
 * built from the UserInfo alone and validated before use; a value that HTTP could not carry
 * faithfully is refused rather than repaired:
 * - control characters (CR, LF, NUL, TAB, DEL…) would split or corrupt the header;
 * - leading or trailing spaces are stripped by every HTTP parser, so `"ops "` would arrive
 *   as `"ops"`, another group;
 * - an empty user or group name is not an identity.
 * Non-ASCII values are sent as their UTF-8 bytes (what Go's client sends and the API server
 * reads). Extra keys are lower-cased and every byte that is not an RFC 7230 token character,
 * and `%` itself, is percent-encoded as UTF-8 — Kubernetes lower-cases the header name and
 * percent-decodes it, so `kubegate.io/login-name` travels as
 * `Impersonate-Extra-kubegate.io%2flogin-name`.
 *
 * UserInfo objects are deeply frozen and shared by the authentication cache, so the header
 * list is computed once per UserInfo and kept in a WeakMap: a repeat user costs one lookup.
 */
import { KubegateError } from '../errors.js';
import type { UserInfo } from '../auth/user.js';

const IMPERSONATE_USER = 'Impersonate-User';
const IMPERSONATE_UID = 'Impersonate-Uid';
const IMPERSONATE_GROUP = 'Impersonate-Group';
const IMPERSONATE_EXTRA_PREFIX = 'Impersonate-Extra-';

/** RFC 7230 `tchar`: the bytes allowed in a header name. */
const TOKEN_CHAR = /^[!#$&'*+\-.^_`|~0-9a-z]$/;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
const NON_ASCII = /[^\u0000-\u007f]/;

const cache = new WeakMap<UserInfo, readonly string[]>();

/**
 * The impersonation headers for `user` as a flat `[name, value, name, value, …]` list, in the
 * order User, Uid (when set), Group…, Extra…. Cached per UserInfo object. Throws
 * KubegateError IDENTITY_NAME_INVALID for a value HTTP cannot carry unchanged.
 */
export function impersonationHeaders(user: UserInfo): readonly string[] {
  let headers = cache.get(user);
  if (headers === undefined) {
    headers = buildImpersonationHeaders(user);
    cache.set(user, headers);
  }
  return headers;
}

function buildImpersonationHeaders(user: UserInfo): readonly string[] {
  const headers: string[] = [IMPERSONATE_USER, headerValue(user.name, 'the user name', false)];
  if (user.uid.length > 0) headers.push(IMPERSONATE_UID, headerValue(user.uid, 'the user uid', false));
  for (const group of user.groups) headers.push(IMPERSONATE_GROUP, headerValue(group, 'a group', false));
  for (const [key, values] of Object.entries(user.extra)) {
    const name = IMPERSONATE_EXTRA_PREFIX + encodeExtraKey(key);
    for (const value of values) headers.push(name, headerValue(value, 'an extra value', true));
  }
  return Object.freeze(headers);
}

/** `acme.com/Project` → `acme.com%2fproject`: lower case, non-token bytes and `%` as `%xx`. */
export function encodeExtraKey(key: string): string {
  if (key.length === 0) throw new KubegateError('IDENTITY_NAME_INVALID', 'an extra key is empty');
  let encoded = '';
  for (const byte of Buffer.from(key.toLowerCase(), 'utf8')) {
    const char = String.fromCharCode(byte);
    encoded += byte < 0x80 && char !== '%' && TOKEN_CHAR.test(char) ? char : '%' + byte.toString(16).padStart(2, '0');
  }
  return encoded;
}

/**
 * Checks a value and returns it in the form node:http writes byte for byte (node writes
 * header strings as latin1, so non-ASCII text is first turned into its UTF-8 bytes).
 */
function headerValue(value: string, what: string, allowEmpty: boolean): string {
  if (typeof value !== 'string' || (value.length === 0 && !allowEmpty)) {
    throw new KubegateError('IDENTITY_NAME_INVALID', `${what} is empty`);
  }
  if (CONTROL_CHARACTER.test(value)) {
    throw new KubegateError('IDENTITY_NAME_INVALID', `${what} contains control characters`);
  }
  if (value.length > 0 && (value.startsWith(' ') || value.endsWith(' '))) {
    throw new KubegateError('IDENTITY_NAME_INVALID', `${what} starts or ends with a space`);
  }
  return NON_ASCII.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}
