import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LdapEntry } from '../../../../src/providers/ldap/connection.js';
import { accountStateOf } from '../../../../src/providers/ldap/queries.js';

const ad = { userEnabledAttribute: 'userAccountControl', userDisabledBitMask: 2n };
const entry = (values?: string[]): LdapEntry => ({
  dn: 'cn=x,dc=corp',
  attributes: new Map(values === undefined ? [] : [['useraccountcontrol', values]]),
});

describe('accountStateOf', () => {
  it("reads Active Directory's ACCOUNTDISABLE bit (2) of userAccountControl", () => {
    assert.equal(accountStateOf(ad, entry(['512'])), 'enabled', 'NORMAL_ACCOUNT');
    assert.equal(accountStateOf(ad, entry(['514'])), 'disabled', 'NORMAL_ACCOUNT | ACCOUNTDISABLE');
    assert.equal(accountStateOf(ad, entry(['66050'])), 'disabled', 'DONT_EXPIRE_PASSWORD | NORMAL_ACCOUNT | ACCOUNTDISABLE');
    assert.equal(accountStateOf(ad, entry(['66048'])), 'enabled', 'DONT_EXPIRE_PASSWORD | NORMAL_ACCOUNT');
  });

  it('handles values beyond 32 bits and negative (signed) values exactly', () => {
    assert.equal(accountStateOf({ ...ad, userDisabledBitMask: 0x80000000n }, entry(['-2147483648'])), 'disabled');
    assert.equal(accountStateOf({ ...ad, userDisabledBitMask: 0x80000000n }, entry(['2147483647'])), 'enabled');
    assert.equal(accountStateOf(ad, entry(['4294967296'])), 'enabled');
  });

  it('counts a missing attribute, or no configured attribute, as enabled', () => {
    assert.equal(accountStateOf(ad, entry()), 'enabled');
    assert.equal(accountStateOf({ userEnabledAttribute: undefined, userDisabledBitMask: 0n }, entry(['514'])), 'enabled');
  });

  it('reports a value that is not a whole number as unreadable, which the provider treats as disabled (fail closed)', () => {
    for (const value of ['TRUE', '', '0x2', '5.5', '9'.repeat(30)]) assert.equal(accountStateOf(ad, entry([value])), 'unreadable', value);
  });
});
