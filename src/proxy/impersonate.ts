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
 * A kubegate user's extras are forwarded only when the configured allow-list names them
 * (`identity.forwardedExtras`), so a cluster never needs RBAC for an extra it did not expect;
 * the `kubectl --as` review names the same filtered extras (`withForwardedExtras`).
 *
 * A client may ask to act as someone else (`kubectl --as`, `--as-group`, `--as-uid`,
 * `--as-user-extra`): `requestedIdentity` reads its `Impersonate-*` lines the way
 * kube-apiserver's impersonation filter does — names in any case; the first
 * `Impersonate-User` and `Impersonate-Uid` value (an empty one counts as absent); every
 * `Impersonate-Group` line a group, never split at commas; an `Impersonate-Extra-<key>` key
 * lower-cased then percent-decoded (a key that does not decode is kept as sent), every line
 * a value. Groups, a uid or extras without a user are refused (400), as the API server
 * refuses them. `impersonationAttributes` lists what must then be authorized, one entry per
 * requested attribute with verb `impersonate`, in the API server's order: the user (a
 * `system:serviceaccount:<namespace>:<name>` name is the ServiceAccount `<name>` in
 * `<namespace>`), each group, each extra value (resource `userextras`, subresource = key),
 * the uid. The requested identity then travels upstream through `impersonationHeaders`, so
 * it is checked and encoded like any kubegate identity.
 */
import { KubegateError } from '../errors.js';
import type { UserInfo } from '../auth/user.js';
import { kubernetesNameOf } from '../auth/principal.js';

const IMPERSONATE_USER = 'Impersonate-User';
const IMPERSONATE_UID = 'Impersonate-Uid';
const IMPERSONATE_GROUP = 'Impersonate-Group';
const IMPERSONATE_EXTRA_PREFIX = 'Impersonate-Extra-';

/** RFC 7230 `tchar`: the bytes allowed in a header name. */
const TOKEN_CHAR = /^[!#$&'*+\-.^_`|~0-9a-z]$/;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
const NON_ASCII = /[^\u0000-\u007f]/;

const cache = new WeakMap<UserInfo, readonly string[]>();

/** More requested attributes than this (each one a SubjectAccessReview) is refused. */
export const MAX_IMPERSONATION_ATTRIBUTES = 64;
const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
/** RFC 1123 label (a namespace name) and subdomain (a ServiceAccount name). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_SUBDOMAIN_LENGTH = 253;

/**
 * The impersonation headers for `user` as a flat `[name, value, name, value, …]` list, in the
 * order User, Uid (when set), Group…, Extra… — only the extras `forwardedExtras` names, when
 * given. Cached per UserInfo object (and allow-list). Throws
 * KubegateError IDENTITY_NAME_INVALID for a value HTTP cannot carry unchanged.
 */
export function impersonationHeaders(user: UserInfo, forwardedExtras?: ReadonlySet<string>): readonly string[] {
  if (forwardedExtras !== undefined) return filteredHeaders(user, forwardedExtras);
  let headers = cache.get(user);
  if (headers === undefined) {
    headers = buildImpersonationHeaders(user);
    cache.set(user, headers);
  }
  return headers;
}

/** Per allow-list, per UserInfo: the headers with only the extras the list names. */
const filteredCache = new WeakMap<ReadonlySet<string>, WeakMap<UserInfo, readonly string[]>>();

function filteredHeaders(user: UserInfo, forwardedExtras: ReadonlySet<string>): readonly string[] {
  let perUser = filteredCache.get(forwardedExtras);
  if (perUser === undefined) {
    perUser = new WeakMap();
    filteredCache.set(forwardedExtras, perUser);
  }
  let headers = perUser.get(user);
  if (headers === undefined) {
    headers = buildImpersonationHeaders(withForwardedExtras(user, forwardedExtras));
    perUser.set(user, headers);
  }
  return headers;
}

/**
 * `user` as a cluster sees it on the proxy path: only the extras `forwardedExtras` names
 * (all of them when undefined). The `kubectl --as` review asks about this identity, so the
 * cluster decides on the one it will actually see.
 */
export function withForwardedExtras(user: UserInfo, forwardedExtras: ReadonlySet<string> | undefined): UserInfo {
  if (forwardedExtras === undefined || Object.keys(user.extra).every((key) => forwardedExtras.has(key))) return user;
  return { ...user, extra: Object.fromEntries(Object.entries(user.extra).filter(([key]) => forwardedExtras.has(key))) };
}

/**
 * Whether an API server of this `gitVersion` knows `Impersonate-Uid` (Kubernetes 1.22 and
 * later). An unknown version (not probed yet, or unparsable) counts as knowing it: clusters
 * older than 1.22 are the exception, and the probe names them within one round.
 */
export function acceptsImpersonateUid(gitVersion: string | undefined): boolean {
  if (gitVersion === undefined) return true;
  // Asked on every forwarded request; a cluster reports one version for long stretches.
  let accepts = uidByVersion.get(gitVersion);
  if (accepts === undefined) {
    const match = /^v?(\d+)\.(\d+)/.exec(gitVersion);
    const major = Number(match?.[1]);
    accepts = match === null || major > 1 || (major === 1 && Number(match[2]) >= 22);
    if (uidByVersion.size >= 256) uidByVersion.clear();
    uidByVersion.set(gitVersion, accepts);
  }
  return accepts;
}

const uidByVersion = new Map<string, boolean>();

/** A flat impersonation header list without its `Impersonate-Uid` line. */
export function withoutImpersonateUid(headers: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== IMPERSONATE_UID) kept.push(headers[i] as string, headers[i + 1] as string);
  }
  return kept;
}

function buildImpersonationHeaders(user: UserInfo): readonly string[] {
  const headers: string[] = [IMPERSONATE_USER, headerValue(kubernetesNameOf(user), 'the user name', false)];
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

/**
 * The identity a client asks to act as, from its `Impersonate-*` header lines (flat
 * `[name, value, …]` in any spelling, as sanitizeRequest collected them); undefined when
 * they ask for nothing (no line, or only an empty `Impersonate-User`). The result is a
 * frozen UserInfo: `name` the requested user, `uid` '' when none. Throws KubegateError
 * IMPERSONATION_INVALID for groups, a uid or extras without a user, an empty group or extra
 * key, a value HTTP cannot carry unchanged, or more than MAX_IMPERSONATION_ATTRIBUTES.
 */
export function requestedIdentity(lines: readonly string[]): UserInfo | undefined {
  let name: string | undefined;
  let uid: string | undefined;
  const groups: string[] = [];
  const extra: Record<string, string[]> = {};
  let attributes = 0;
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const header = (lines[i] as string).toLowerCase();
    const value = fromWire(lines[i + 1] as string);
    if (header === 'impersonate-user') {
      name ??= value;
    } else if (header === 'impersonate-uid') {
      uid ??= value;
    } else if (header === 'impersonate-group') {
      if (value.length === 0) throw invalidImpersonation('an Impersonate-Group header is empty');
      groups.push(value);
      attributes++;
    } else if (header.startsWith('impersonate-extra-')) {
      const key = decodeExtraKey(header.slice('impersonate-extra-'.length));
      if (key.length === 0) throw invalidImpersonation('an Impersonate-Extra- header has no key');
      (extra[key] ??= []).push(value);
      attributes++;
    }
  }
  const user = name ?? '';
  const hasUid = uid !== undefined && uid.length > 0;
  if (user.length === 0) {
    if (groups.length > 0 || hasUid || Object.keys(extra).length > 0) {
      throw invalidImpersonation('Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* require Impersonate-User');
    }
    return undefined;
  }
  attributes += hasUid ? 2 : 1;
  if (attributes > MAX_IMPERSONATION_ATTRIBUTES) throw invalidImpersonation(`more than ${MAX_IMPERSONATION_ATTRIBUTES} users, groups, uids and extra values are requested`);
  const requested: UserInfo = Object.freeze({
    name: user,
    uid: hasUid ? uid! : '',
    groups: Object.freeze(groups),
    extra: Object.freeze(Object.fromEntries(Object.entries(extra).map(([key, values]) => [key, Object.freeze(values)]))),
  });
  try {
    impersonationHeaders(requested);
  } catch (cause) {
    throw invalidImpersonation(cause instanceof KubegateError ? cause.message : 'a value cannot be forwarded', cause);
  }
  return requested;
}

/** One thing a request asks to impersonate: the `resourceAttributes` of its SubjectAccessReview (verb `impersonate`). */
export interface ImpersonationAttribute {
  /** API group: '' (core) for users, groups and ServiceAccounts; `authentication.k8s.io` for uids and extras. */
  readonly group: '' | 'authentication.k8s.io';
  readonly resource: 'users' | 'serviceaccounts' | 'groups' | 'uids' | 'userextras';
  /** The extra key for `userextras`, else ''. */
  readonly subresource: string;
  /** The ServiceAccount's namespace, else ''. */
  readonly namespace: string;
  readonly name: string;
}

/** What `requested` needs authorized, one attribute per user, group, extra value and uid, in kube-apiserver's order. */
export function impersonationAttributes(requested: UserInfo): ImpersonationAttribute[] {
  const attributes: ImpersonationAttribute[] = [userAttribute(requested.name)];
  for (const name of requested.groups) attributes.push({ group: '', resource: 'groups', subresource: '', namespace: '', name });
  for (const [key, values] of Object.entries(requested.extra)) {
    for (const name of values) attributes.push({ group: 'authentication.k8s.io', resource: 'userextras', subresource: key, namespace: '', name });
  }
  if (requested.uid.length > 0) attributes.push({ group: 'authentication.k8s.io', resource: 'uids', subresource: '', namespace: '', name: requested.uid });
  return attributes;
}

/** `users "bob"`, `serviceaccounts "ci/deployer"`, `userextras/scopes "view"`: for messages. */
export function describeAttribute(attribute: ImpersonationAttribute): string {
  const resource = attribute.subresource === '' ? attribute.resource : `${attribute.resource}/${attribute.subresource}`;
  const name = attribute.namespace === '' ? attribute.name : `${attribute.namespace}/${attribute.name}`;
  return `${resource} ${JSON.stringify(name)}`;
}

/** A ServiceAccount name splits into a valid namespace and name; anything else is a user. */
function userAttribute(user: string): ImpersonationAttribute {
  if (user.startsWith(SERVICE_ACCOUNT_PREFIX)) {
    const parts = user.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
    const [namespace, name] = parts as [string, string];
    if (parts.length === 2 && DNS_LABEL.test(namespace) && name.length <= MAX_SUBDOMAIN_LENGTH && DNS_SUBDOMAIN.test(name)) {
      return { group: '', resource: 'serviceaccounts', subresource: '', namespace, name };
    }
  }
  return { group: '', resource: 'users', subresource: '', namespace: '', name: user };
}

function invalidImpersonation(message: string, cause?: unknown): KubegateError {
  return new KubegateError('IMPERSONATION_INVALID', message, cause === undefined ? undefined : { cause });
}

/** node reads header values as latin1: the UTF-8 text a client sent. */
function fromWire(value: string): string {
  return NON_ASCII.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value;
}

/** `acme.com%2fproject` → `acme.com/project`; a key with a malformed escape or invalid UTF-8 is kept as sent. */
function decodeExtraKey(encoded: string): string {
  if (!encoded.includes('%')) return encoded;
  if (/%(?![0-9a-f]{2})/.test(encoded)) return encoded;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}
