/**
 * What the LDAP provider reads from the directory: the user entry, whether it is disabled,
 * and the user's groups. All of it runs on a session bound as the service account.
 *
 * Groups are the union of
 * 1. the DNs in the user's `userMemberAttribute` (memberOf: AD, OpenLDAP's memberof overlay);
 * 2. a search under `groupSearchBase` for groups of `groupObjectClass` whose
 *    `groupMemberMappingAttribute` holds the user (their DN, or the `groupMemberUserAttribute`
 *    value such as the uid for posixGroup `memberUid`);
 * 3. with `nestedGroupMembership`: Active Directory answers the transitive closure itself
 *    (matching rule 1.2.840.113556.1.4.1941, replacing search 2); other directories are
 *    walked level by level, searching for groups that list a group already found as a
 *    member. The walk remembers every group it has seen (a cycle A ∈ B ∈ A ends), stops
 *    after MAX_NESTING_DEPTH levels and MAX_GROUPS groups (logged: a directory that large
 *    needs a narrower groupSearchBase or filter), and queries up to QUERY_BATCH DNs at once.
 */
import type { Logger } from '../../log.js';
import { normaliseDn } from './dn.js';
import { groupsInChainFilter, groupsWithMemberFilter, userEntryFilter, userLoginFilter } from './filters.js';
import type { LdapEntry, LdapSession } from './connection.js';
import { isNoSuchObject, valuesOf } from './connection.js';
import type { LdapProviderType, LdapSettings } from './settings.js';

export const MAX_GROUPS = 2000;
const MAX_NESTING_DEPTH = 16;
const QUERY_BATCH = 50;

export type UserSearchResult =
  | { readonly kind: 'found'; readonly entry: LdapEntry }
  | { readonly kind: 'none' }
  | { readonly kind: 'ambiguous'; readonly count: number };

export type AccountState = 'enabled' | 'disabled' | 'unreadable';

/** The attributes a user search asks for. */
function userAttributes(settings: LdapSettings): string[] {
  const wanted = [settings.userLoginAttribute, settings.userNameAttribute, settings.userEmailAttribute, settings.userMemberAttribute, settings.userEnabledAttribute];
  if (settings.groupMemberUserAttribute !== 'dn') wanted.push(settings.groupMemberUserAttribute);
  return [...new Set(wanted.filter((attribute): attribute is string => attribute !== undefined))];
}

/** Exactly one entry must match the login name; two would make the login ambiguous. */
export async function findUserByLogin(session: LdapSession, settings: LdapSettings, login: string): Promise<UserSearchResult> {
  const entries = await session.search(settings.userSearchBase, {
    scope: 'sub',
    filter: userLoginFilter(settings, login),
    attributes: userAttributes(settings),
    sizeLimit: 2,
  });
  if (entries.length === 0) return { kind: 'none' };
  if (entries.length > 1) return { kind: 'ambiguous', count: entries.length };
  return { kind: 'found', entry: entries[0] as LdapEntry };
}

/** The user entry at `dn`, or undefined when it is gone or no longer matches the user filters. */
export async function readUserByDn(session: LdapSession, settings: LdapSettings, dn: string): Promise<LdapEntry | undefined> {
  try {
    const entries = await session.search(dn, { scope: 'base', filter: userEntryFilter(settings), attributes: userAttributes(settings) });
    return entries[0];
  } catch (error) {
    if (isNoSuchObject(error)) return undefined;
    throw error;
  }
}

/**
 * `disabled` when (value & userDisabledBitMask) ≠ 0; a missing attribute is `enabled`; a
 * value that is not a whole number is `unreadable` (callers treat it as disabled: fail closed).
 */
export function accountStateOf(settings: Pick<LdapSettings, 'userEnabledAttribute' | 'userDisabledBitMask'>, entry: LdapEntry): AccountState {
  if (settings.userEnabledAttribute === undefined) return 'enabled';
  const [value] = valuesOf(entry, settings.userEnabledAttribute);
  if (value === undefined) return 'enabled';
  const text = value.trim();
  if (!/^-?[0-9]{1,20}$/.test(text)) return 'unreadable';
  return (BigInt(text) & settings.userDisabledBitMask) === 0n ? 'enabled' : 'disabled';
}

/** The DNs (as the directory spells them) of every group of the user; see the file comment. */
export async function lookUpGroupDns(
  session: LdapSession,
  settings: LdapSettings,
  type: LdapProviderType,
  entry: LdapEntry,
  logger?: Logger,
): Promise<string[]> {
  const found = new Map<string, string>();
  const add = (dn: string): boolean => {
    const key = normaliseDn(dn);
    if (key === '' || found.has(key)) return false;
    found.set(key, dn);
    return true;
  };
  if (settings.userMemberAttribute !== undefined) {
    for (const dn of valuesOf(entry, settings.userMemberAttribute)) add(dn);
  }

  const memberValue = settings.groupMemberUserAttribute === 'dn' ? entry.dn : valuesOf(entry, settings.groupMemberUserAttribute)[0];
  if (memberValue !== undefined) {
    const filter =
      type === 'activedirectory' && settings.nestedGroupMembership && settings.groupMemberUserAttribute === 'dn'
        ? groupsInChainFilter(settings, memberValue)
        : groupsWithMemberFilter(settings, [memberValue]);
    for (const group of await searchGroups(session, settings, filter)) add(group.dn);
  }

  if (settings.nestedGroupMembership && type === 'ldap') {
    let frontier = [...found.values()];
    for (let depth = 0; frontier.length > 0; depth += 1) {
      if (depth >= MAX_NESTING_DEPTH || found.size >= MAX_GROUPS) {
        logger?.warn({ user: entry.dn, groups: found.size, depth }, 'nested group walk stopped at its limit; groups beyond it are ignored');
        break;
      }
      const next: string[] = [];
      for (let start = 0; start < frontier.length && found.size < MAX_GROUPS; start += QUERY_BATCH) {
        const batch = frontier.slice(start, start + QUERY_BATCH);
        for (const group of await searchGroups(session, settings, groupsWithMemberFilter(settings, batch))) {
          if (add(group.dn)) next.push(group.dn);
        }
      }
      frontier = next;
    }
  }

  const dns = [...found.values()];
  if (dns.length > MAX_GROUPS) {
    logger?.warn({ user: entry.dn, groups: dns.length }, `user is in more than ${MAX_GROUPS} groups; the rest are ignored`);
    return dns.slice(0, MAX_GROUPS);
  }
  return dns;
}

function searchGroups(session: LdapSession, settings: LdapSettings, filter: ReturnType<typeof groupsWithMemberFilter>): Promise<LdapEntry[]> {
  return session.search(settings.groupSearchBase, { scope: 'sub', filter, attributes: ['1.1'], paged: true });
}
