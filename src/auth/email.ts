/**
 * E-mail addresses kubegate accepts as a user's verified address, and so as a Kubernetes
 * user name (`identity.kubernetesUsername: email`, principal.ts).
 *
 * Design note: a strict, simple subset of RFC 5321/5322, because the address becomes an
 * RBAC subject and a header value, not mail to deliver:
 * - `local@domain`, exactly one `@`; ASCII only (no SMTPUTF8), so both store dialects
 *   compare addresses case-insensitively the same way (`lower()` of ASCII);
 * - local part: a dot-atom (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots only between
 *   them), at most 64 characters: no quoted strings, so never a space, a control character
 *   or a `:`;
 * - domain: dot-separated DNS labels of letters, digits and inner hyphens, at least two
 *   labels, no domain literal (`[1.2.3.4]`) — so never a `:` either;
 * - at most 254 characters in all;
 * - the domain is lower-cased (domains are case-insensitive); the local part is kept as
 *   sent. Uniqueness among users ignores case altogether (the store's index).
 * An address never contains `:`, so it can never fall into `system:` or `kubegate:`, nor be
 * mistaken for a `provider:login` name (which always does): the two formats cannot collide.
 */
import { KubegateError } from '../errors.js';

const MAX_ADDRESS_LENGTH = 254;
const MAX_LOCAL_LENGTH = 64;
const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const LOCAL_PART = new RegExp(`^${ATOM}(\\.${ATOM})*$`);
const DOMAIN_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * `value` as kubegate records it (domain lower-cased); KubegateError BAD_REQUEST naming
 * `field` when it is not an address kubegate accepts. The message never quotes the value.
 */
export function parseEmailAddress(value: unknown, field = 'email'): string {
  const address = normalisedEmailAddress(value);
  if (address === undefined) {
    throw new KubegateError('BAD_REQUEST', `${field} must be an e-mail address such as alice@example.org (ASCII, no quotes, at most ${MAX_ADDRESS_LENGTH} characters)`, { field });
  }
  return address;
}

/**
 * What a provider vouches for, in ProviderIdentity's terms: `email`, the first of `values`
 * kubegate accepts; `emailRefused` when some were given (non-empty strings) and none is
 * accepted (e.g. a non-ASCII address) — the login goes on without one and says so.
 */
export function vouchedEmail(values: readonly unknown[]): { readonly email?: string; readonly emailRefused?: true } {
  for (const value of values) {
    const address = normalisedEmailAddress(value);
    if (address !== undefined) return { email: address };
  }
  return values.some((value) => typeof value === 'string' && value !== '') ? { emailRefused: true } : {};
}

/** `value` as kubegate records it, or undefined when it is not an address kubegate accepts. */
export function normalisedEmailAddress(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ADDRESS_LENGTH) return undefined;
  const at = value.indexOf('@');
  if (at <= 0 || at !== value.lastIndexOf('@')) return undefined;
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (local.length > MAX_LOCAL_LENGTH || !LOCAL_PART.test(local)) return undefined;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((label) => DOMAIN_LABEL.test(label))) return undefined;
  return `${local}@${domain.toLowerCase()}`;
}
