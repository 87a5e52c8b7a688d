import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AndFilter, BerReader, BerWriter, EqualityFilter, FilterParser } from 'ldapts';
import type { Filter } from 'ldapts';
import { groupsInChainFilter, groupsWithMemberFilter, userEntryFilter, userLoginFilter } from '../../../../src/providers/ldap/filters.js';

const userSettings = { userObjectClass: 'inetOrgPerson', userLoginAttribute: 'uid', userSearchFilter: undefined };
const groupSettings = { groupObjectClass: 'groupOfNames', groupMemberMappingAttribute: 'member', groupSearchFilter: undefined };

/** The filter as the directory receives it: encoded to BER and decoded again. */
function overTheWire(filter: Filter): Filter {
  const writer = new BerWriter();
  filter.write(writer);
  return FilterParser.parse(new BerReader(writer.buffer));
}

describe('userLoginFilter', () => {
  it('carries filter syntax in a login name as one literal value, so it cannot add, widen or close clauses', () => {
    for (const login of ['*', 'al*', 'alice)(uid=*', '*)(|(uid=*', 'a\\b', 'nul\u0000byte', '(', ')']) {
      const filter = overTheWire(userLoginFilter(userSettings, login));
      assert.ok(filter instanceof AndFilter, login);
      assert.equal(filter.filters.length, 2, login);
      const [objectClass, loginClause] = filter.filters;
      assert.ok(objectClass instanceof EqualityFilter && loginClause instanceof EqualityFilter, login);
      assert.equal(loginClause.attribute, 'uid');
      assert.equal(loginClause.value, login, 'an equality match on exactly what was typed');
    }
  });

  it('shows as the RFC 4515 escaped form (\\2a \\28 \\29 \\5c \\00)', () => {
    assert.equal(userLoginFilter(userSettings, '*)(uid=\\\u0000').toString(), '(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28uid=\\5c\\00))');
  });

  it('ANDs the configured userSearchFilter', () => {
    const extra = FilterParser.parseString('(|(department=ops)(department=dev))');
    assert.equal(
      userLoginFilter({ ...userSettings, userSearchFilter: extra }, 'alice').toString(),
      '(&(objectClass=inetOrgPerson)(uid=alice)(|(department=ops)(department=dev)))',
    );
    assert.equal(userEntryFilter({ userObjectClass: 'person', userSearchFilter: extra }).toString(), '(&(objectClass=person)(|(department=ops)(department=dev)))');
  });
});

describe('group filters', () => {
  it('searches groups holding one member value, or any of several (a level of the nested walk)', () => {
    assert.equal(groupsWithMemberFilter(groupSettings, ['uid=a,dc=org']).toString(), '(&(objectClass=groupOfNames)(member=uid=a,dc=org))');
    assert.equal(
      groupsWithMemberFilter({ ...groupSettings, groupSearchFilter: FilterParser.parseString('(ou=x)') }, ['cn=a*', 'cn=b']).toString(),
      '(&(objectClass=groupOfNames)(|(member=cn=a\\2a)(member=cn=b))(ou=x))',
    );
    assert.throws(() => groupsWithMemberFilter(groupSettings, []), TypeError);
  });

  it("uses Active Directory's in-chain matching rule for nested membership", () => {
    const filter = overTheWire(groupsInChainFilter({ ...groupSettings, groupObjectClass: 'group' }, 'CN=Alice,OU=People,DC=corp'));
    assert.equal(filter.toString(), '(&(objectclass=group)(member:1.2.840.113556.1.4.1941:=CN=Alice,OU=People,DC=corp))');
  });
});
