import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDistinguishedName, isDnWithin, normaliseDn } from '../../../../src/providers/ldap/dn.js';

describe('normaliseDn', () => {
  it('lower-cases types and values and drops spaces around separators, so every spelling of one DN becomes one name', () => {
    assert.equal(normaliseDn('CN=Ops Team , OU=Groups,DC=Example, dc=org'), 'cn=ops team,ou=groups,dc=example,dc=org');
    assert.equal(normaliseDn('uid=alice,ou=people,dc=example,dc=org'), 'uid=alice,ou=people,dc=example,dc=org');
    assert.equal(normaliseDn('cn=A + sn=B,dc=org'), 'cn=a+sn=b,dc=org');
  });

  it('keeps escaped separators and an escaped trailing space, because they are part of the value', () => {
    assert.equal(normaliseDn('CN=Smith\\, John,OU=People'), 'cn=smith\\, john,ou=people');
    assert.equal(normaliseDn('cn=x\\2Cy,dc=org'), 'cn=x\\2cy,dc=org');
    assert.equal(normaliseDn('cn=trailing\\ ,dc=org'), 'cn=trailing\\ ,dc=org');
    assert.equal(normaliseDn('cn=a\\+b,dc=org'), 'cn=a\\+b,dc=org');
  });

  it('only lower-cases and trims what is not a DN, so a bad value never throws', () => {
    assert.equal(normaliseDn('  Not A DN '), 'not a dn');
    assert.equal(normaliseDn(''), '');
  });
});

describe('isDistinguishedName', () => {
  it('accepts type=value RDNs and refuses empty parts', () => {
    assert.equal(isDistinguishedName('dc=example,dc=org'), true);
    assert.equal(isDistinguishedName('cn=Smith\\, John,dc=org'), true);
    for (const bad of ['', 'example', 'dc=example,', '=x', 'cn=', 'dc=example,,dc=org']) assert.equal(isDistinguishedName(bad), false, bad);
  });
});

describe('isDnWithin', () => {
  it('accepts the base itself and entries below it in any spelling, and nothing that merely ends with the same text', () => {
    assert.equal(isDnWithin('UID=alice, OU=People,dc=example,dc=org', 'ou=people,dc=example,dc=org'), true);
    assert.equal(isDnWithin('ou=people,dc=example,dc=org', 'OU=People,DC=Example,DC=Org'), true);
    assert.equal(isDnWithin('uid=alice,ou=services,dc=example,dc=org', 'ou=people,dc=example,dc=org'), false);
    assert.equal(isDnWithin('uid=alice,ou=xpeople,dc=example,dc=org', 'ou=people,dc=example,dc=org'), false);
  });
});
