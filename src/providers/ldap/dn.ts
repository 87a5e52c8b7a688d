/**
 * Distinguished names as kubegate stores and compares them.
 *
 * An LDAP provider names users and groups by DN (`providerUserId`, group names), like
 * Rancher's `openldap_user://<dn>` principals: DNs are stable and unique, where login and
 * common names are not. Directories hand the same DN back in different spellings
 * (`CN=Ops, OU=Groups` from memberOf, `cn=ops,ou=groups` from a search), and every attribute
 * that names entries in practice (cn, ou, dc, uid, o, l) matches case-insensitively, so
 * kubegate keeps ONE spelling: attribute types and values lower case, no spaces around the
 * `,` `+` `=` separators (RFC 4514). Escapes are kept as written (lower-cased hex), so the
 * result is still a valid DN the directory accepts as a search base. Admins write cluster
 * memberships and allowed principals the same way (or have them normalised on input).
 */

/** The DN in kubegate's spelling; input that does not parse as a DN is only lower-cased and trimmed. */
export function normaliseDn(dn: string): string {
  return tryNormaliseDn(dn) ?? dn.trim().toLowerCase();
}

/** Whether `text` is a non-empty DN: `type=value` pairs separated by `,` (or `+` within one RDN). */
export function isDistinguishedName(text: string): boolean {
  return tryNormaliseDn(text) !== undefined;
}

function tryNormaliseDn(dn: string): string | undefined {
  const normalised: string[] = [];
  for (const rdn of splitUnescaped(dn, ',')) {
    const avas: string[] = [];
    for (const ava of splitUnescaped(rdn, '+')) {
      const pair = normaliseAttributeValue(ava);
      if (pair === undefined) return undefined;
      avas.push(pair);
    }
    normalised.push(avas.join('+'));
  }
  return normalised.join(',');
}

/** Whether `dn` is `base` or lies below it (both in any spelling). */
export function isDnWithin(dn: string, base: string): boolean {
  const child = normaliseDn(dn);
  const parent = normaliseDn(base);
  if (parent === '') return true;
  return child === parent || child.endsWith(`,${parent}`);
}

function normaliseAttributeValue(ava: string): string | undefined {
  const equals = indexOfUnescaped(ava, '=');
  if (equals <= 0) return undefined;
  const type = ava.slice(0, equals).trim();
  const value = trimUnescaped(ava.slice(equals + 1));
  if (type === '' || value === '') return undefined;
  return `${type.toLowerCase()}=${value.toLowerCase()}`;
}

/** Splits on `separator` where it is not escaped with a backslash. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '\\') i += 1;
    else if (text[i] === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function indexOfUnescaped(text: string, character: string): number {
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '\\') i += 1;
    else if (text[i] === character) return i;
  }
  return -1;
}

/** Trims spaces, except a trailing space escaped as `\ ` (significant in a DN value). */
function trimUnescaped(value: string): string {
  let end = value.length;
  while (end > 0 && value[end - 1] === ' ' && !isEscapedAt(value, end - 1)) end -= 1;
  return value.slice(0, end).trimStart();
}

function isEscapedAt(text: string, index: number): boolean {
  let backslashes = 0;
  for (let i = index - 1; i >= 0 && text[i] === '\\'; i -= 1) backslashes += 1;
  return backslashes % 2 === 1;
}
