/**
 * The identity kubegate hands to Kubernetes, on both paths (proxy impersonation and the
 * webhook's TokenReview answer).
 *
 * - `name` is the kubegate user's stable ID (`u-` + 12 base32 characters): a valid
 *   Kubernetes object name that never changes when a display name does.
 * - `groups` are provider groups with a provider prefix (`ldap:cn=ops,…`, `github:acme/sre`,
 *   `oidc:admins`, `local:admins`) plus `system:authenticated`.
 * - `extra` carries the login name, the provider and the token name.
 *
 * Provider data is end-user controlled: nothing it supplies may become a `system:` name,
 * and every UserInfo is deeply frozen so that a cache can share one between requests.
 * Decorators build a new UserInfo; they never mutate one.
 */
import { randomBytes } from 'node:crypto';
import { KubegateError } from '../errors.js';

export interface UserInfo {
  /** The kubegate user ID (or, for Rancher's tokens in the webhook, the token's user name). */
  readonly name: string;
  /**
   * The Kubernetes user name, when the installation names users other than by ID
   * (`identity.kubernetesUsername`, principal.ts); absent means `name`.
   */
  readonly kubernetesName?: string;
  readonly uid: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

export const SYSTEM_AUTHENTICATED = 'system:authenticated';

/** Extra keys kubegate sets. Lower case, as Kubernetes requires of extra keys. */
export const EXTRA_LOGIN_NAME = 'kubegate.io/login-name';
export const EXTRA_PROVIDER = 'kubegate.io/provider';
export const EXTRA_TOKEN_NAME = 'kubegate.io/token-name';

const USER_ID_PATTERN = /^u-[a-z2-7]{12}$/;
const PROVIDER_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
/** Extra keys: lower case, a DNS-ish prefix allowed; checked before they reach a header. */
const EXTRA_KEY_PATTERN = /^[a-z0-9]([a-z0-9._/-]{0,126}[a-z0-9])?$/;
const MAX_NAME_LENGTH = 1024;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** A fresh stable user ID, e.g. `u-k3j5x2mzq7ab`: 60 random bits, a valid object name. */
export function newUserId(): string {
  const bytes = randomBytes(12);
  let id = 'u-';
  for (const byte of bytes) id += BASE32[byte & 31];
  return id;
}

export function isUserId(value: string): boolean {
  return USER_ID_PATTERN.test(value);
}

/**
 * Checks a name that came from an identity provider (a group, a login name). Rejects empty,
 * over-long, control characters, and anything starting with `system:`, in any case.
 */
export function assertProviderName(value: string, what = 'name'): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new KubegateError('IDENTITY_NAME_INVALID', `${what} is empty`);
  }
  if (value.length > MAX_NAME_LENGTH) {
    throw new KubegateError('IDENTITY_NAME_INVALID', `${what} is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new KubegateError('IDENTITY_NAME_INVALID', `${what} contains control characters`);
  }
  if (value.trimStart().toLowerCase().startsWith('system:')) {
    throw new KubegateError('IDENTITY_NAME_RESERVED', `${what} must not start with "system:"`);
  }
  return value;
}

/** `ldap` + `cn=ops,dc=example` → `ldap:cn=ops,dc=example`. The prefix keeps providers apart. */
export function providerGroup(provider: string, group: string): string {
  if (!PROVIDER_NAME_PATTERN.test(provider)) {
    throw new TypeError(`invalid provider name ${JSON.stringify(provider)}`);
  }
  return `${provider}:${assertProviderName(group, 'group')}`;
}

export interface UserInfoInput {
  name: string;
  /** Kept only when it differs from `name`. */
  kubernetesName?: string | undefined;
  uid?: string;
  groups?: Iterable<string>;
  extra?: Record<string, Iterable<string>>;
}

/**
 * Builds a deeply frozen UserInfo: groups de-duplicated in first-seen order, extra keys
 * validated and lower case. `uid` defaults to the name (kubegate user IDs are stable).
 */
export function makeUserInfo(input: UserInfoInput): UserInfo {
  if (typeof input.name !== 'string' || input.name.length === 0) {
    throw new TypeError('UserInfo.name must be a non-empty string');
  }
  const groups = Object.freeze([...new Set(input.groups ?? [])]);
  const extra: Record<string, readonly string[]> = {};
  for (const [key, values] of Object.entries(input.extra ?? {})) {
    if (!EXTRA_KEY_PATTERN.test(key)) {
      throw new KubegateError('IDENTITY_NAME_INVALID', `extra key ${JSON.stringify(key)} is not a lower-case key`);
    }
    extra[key] = Object.freeze([...values]);
  }
  const kubernetesName = input.kubernetesName !== undefined && input.kubernetesName !== input.name ? input.kubernetesName : undefined;
  return Object.freeze({
    name: input.name,
    ...(kubernetesName === undefined ? {} : { kubernetesName }),
    uid: input.uid ?? input.name,
    groups,
    extra: Object.freeze(extra),
  });
}

/** A copy of `user` with `groups` appended (skipping ones it already has). */
export function withGroups(user: UserInfo, groups: Iterable<string>): UserInfo {
  const merged = [...user.groups];
  let changed = false;
  for (const group of groups) {
    if (!merged.includes(group)) {
      merged.push(group);
      changed = true;
    }
  }
  return changed ? makeUserInfo({ ...user, groups: merged }) : user;
}
