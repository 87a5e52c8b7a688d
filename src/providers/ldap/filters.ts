/**
 * The search filters of the LDAP provider, built as filter OBJECTS, never as strings.
 *
 * A login name goes into an EqualityFilter's value, which ldapts encodes as a BER octet
 * string: on the wire it is data, not filter syntax, so `*`, `(`, `)`, `\` and NUL in a
 * username match those characters literally (RFC 4511 §4.5.1.7). There is no string to
 * escape and thus no escaping to get wrong; `toString()` of these filters shows the RFC 4515
 * escaped form (`\2a`, `\28`, …), which the unit tests check. The admin-written
 * `userSearchFilter` / `groupSearchFilter` were parsed once from the configuration and are
 * ANDed in as objects too.
 */
import { AndFilter, EqualityFilter, ExtensibleFilter, OrFilter } from 'ldapts';
import type { Filter } from 'ldapts';
import type { LdapSettings } from './settings.js';

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: transitive membership in one search. */
const AD_IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

type UserFilterSettings = Pick<LdapSettings, 'userObjectClass' | 'userLoginAttribute' | 'userSearchFilter'>;
type GroupFilterSettings = Pick<LdapSettings, 'groupObjectClass' | 'groupMemberMappingAttribute' | 'groupSearchFilter'>;

/** `(&(objectClass=<userObjectClass>)(<loginAttribute>=<login>)<userSearchFilter>)`. */
export function userLoginFilter(settings: UserFilterSettings, login: string): Filter {
  return and([objectClass(settings.userObjectClass), new EqualityFilter({ attribute: settings.userLoginAttribute, value: login }), settings.userSearchFilter]);
}

/** What every user entry must match (for a base search on a known DN). */
export function userEntryFilter(settings: Omit<UserFilterSettings, 'userLoginAttribute'>): Filter {
  return and([objectClass(settings.userObjectClass), settings.userSearchFilter]);
}

/** Groups whose member attribute holds any of `values` (a user DN, a uid, group DNs). */
export function groupsWithMemberFilter(settings: GroupFilterSettings, values: readonly string[]): Filter {
  if (values.length === 0) throw new TypeError('groupsWithMemberFilter needs at least one value');
  const members = values.map((value) => new EqualityFilter({ attribute: settings.groupMemberMappingAttribute, value }));
  const member = members.length === 1 ? members[0] : new OrFilter({ filters: members });
  return and([objectClass(settings.groupObjectClass), member, settings.groupSearchFilter]);
}

/** Active Directory: every group that contains `userDn`, directly or through other groups. */
export function groupsInChainFilter(settings: GroupFilterSettings, userDn: string): Filter {
  return and([
    objectClass(settings.groupObjectClass),
    new ExtensibleFilter({ matchType: settings.groupMemberMappingAttribute, rule: AD_IN_CHAIN_RULE, value: userDn }),
    settings.groupSearchFilter,
  ]);
}

function objectClass(name: string): Filter {
  return new EqualityFilter({ attribute: 'objectClass', value: name });
}

function and(filters: readonly (Filter | undefined)[]): Filter {
  return new AndFilter({ filters: filters.filter((filter): filter is Filter => filter !== undefined) });
}
