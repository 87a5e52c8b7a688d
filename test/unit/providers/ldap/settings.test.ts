import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { isKubegateError } from '../../../../src/errors.js';
import { createCertificateAuthority } from '../../../../src/pki/certificates.js';
import { parseLdapSettings } from '../../../../src/providers/ldap/settings.js';

const SECRET = 'service-secret-never-shown';
const minimal = {
  servers: ['ldap.example.org'],
  serviceAccountDn: 'cn=svc,dc=example,dc=org',
  serviceAccountPassword: SECRET,
  userSearchBase: 'ou=people,dc=example,dc=org',
};

function assertInvalid(settings: Record<string, unknown>, field: string, type: 'ldap' | 'activedirectory' = 'ldap'): void {
  assert.throws(
    () => parseLdapSettings(type, 'corp', settings),
    (error: unknown) => {
      assert.ok(isKubegateError(error, 'CONFIG_INVALID'), String(error));
      assert.equal(error.field, field);
      assert.ok(error.message.startsWith(field), error.message);
      assert.ok(!error.message.includes(SECRET));
      return true;
    },
  );
}

describe('parseLdapSettings', () => {
  let caPem: string;
  before(async () => {
    caPem = (await createCertificateAuthority({ commonName: 'ldap ca', validityDays: 1 })).certPem;
  });

  it('fills OpenLDAP defaults: StartTLS on 389, uid/inetOrgPerson/cn, memberOf, groupOfNames/member/dn, groups under the user base', () => {
    const settings = parseLdapSettings('ldap', 'corp', minimal);
    assert.deepEqual(settings.servers, [{ host: 'ldap.example.org', port: 389, url: 'ldap://ldap.example.org:389' }]);
    assert.equal(settings.tls, 'starttls');
    assert.equal(settings.connectionTimeoutMs, 10_000);
    assert.equal(settings.userLoginAttribute, 'uid');
    assert.equal(settings.userObjectClass, 'inetOrgPerson');
    assert.equal(settings.userNameAttribute, 'cn');
    assert.equal(settings.userEmailAttribute, 'mail');
    assert.equal(parseLdapSettings('ldap', 'corp', { ...minimal, userEmailAttribute: '' }).userEmailAttribute, undefined);
    assert.equal(settings.userMemberAttribute, 'memberOf');
    assert.equal(settings.userEnabledAttribute, undefined);
    assert.equal(settings.groupObjectClass, 'groupOfNames');
    assert.equal(settings.groupMemberMappingAttribute, 'member');
    assert.equal(settings.groupMemberUserAttribute, 'dn');
    assert.equal(settings.groupSearchBase, minimal.userSearchBase);
    assert.equal(settings.nestedGroupMembership, false);
    assert.deepEqual(settings.access, { mode: 'unrestricted', allowedPrincipals: [] });
  });

  it('fills Active Directory defaults: sAMAccountName/person/displayName, group, and the userAccountControl disabled bit 2', () => {
    const settings = parseLdapSettings('activedirectory', 'corp', minimal);
    assert.equal(settings.userLoginAttribute, 'sAMAccountName');
    assert.equal(settings.userObjectClass, 'person');
    assert.equal(settings.userNameAttribute, 'displayName');
    assert.equal(settings.userEnabledAttribute, 'userAccountControl');
    assert.equal(settings.userDisabledBitMask, 2n);
    assert.equal(settings.groupObjectClass, 'group');
    assert.equal(parseLdapSettings('activedirectory', 'corp', { ...minimal, userEnabledAttribute: '' }).userEnabledAttribute, undefined);
  });

  it('reads servers as hosts, host:port, IPv6 and URLs, with the port from the entry, the port setting or the TLS mode', () => {
    const plain = parseLdapSettings('ldap', 'corp', { ...minimal, tls: 'none', port: 1389, servers: ['a.example', 'b.example:2389', '[::1]', 'ldap://10.0.0.5'] });
    assert.deepEqual(plain.servers.map((server) => server.url), ['ldap://a.example:1389', 'ldap://b.example:2389', 'ldap://[::1]:1389', 'ldap://10.0.0.5:1389']);
    assert.equal(plain.servers[2]?.host, '::1');
    const ldaps = parseLdapSettings('ldap', 'corp', { ...minimal, tls: 'ldaps', caCertificate: caPem, servers: ['a.example', 'ldaps://b.example:1636/'] });
    assert.deepEqual(ldaps.servers.map((server) => server.url), ['ldaps://a.example:636', 'ldaps://b.example:1636']);
  });

  it('refuses a server URL whose scheme contradicts tls, so one setting alone says whether traffic is encrypted', () => {
    assertInvalid({ ...minimal, tls: 'starttls', servers: ['ldap.example.org', 'ldaps://b.example'] }, 'settings.servers[1]');
    assertInvalid({ ...minimal, tls: 'ldaps', servers: ['ldap://b.example'] }, 'settings.servers[0]');
  });

  it('refuses malformed servers, naming the entry', () => {
    for (const server of ['http://x.example', 'ldap://user:pw@x.example', 'ldap://x.example/dc=org', 'x.example/path', 'x.example:99999', 'ldap://']) {
      assertInvalid({ ...minimal, servers: ['ok.example', server] }, 'settings.servers[1]');
    }
    assertInvalid({ ...minimal, servers: [] }, 'settings.servers');
  });

  it('checks every field it knows and refuses the ones it does not, without quoting values', () => {
    assertInvalid({ ...minimal, serviceAccountPassword: '' }, 'settings.serviceAccountPassword');
    assertInvalid({ ...minimal, serviceAccountDn: SECRET }, 'settings.serviceAccountDn');
    assertInvalid({ ...minimal, userSearchBase: undefined }, 'settings.userSearchBase');
    assertInvalid({ ...minimal, tls: 'maybe' }, 'settings.tls');
    assertInvalid({ ...minimal, connectionTimeoutSeconds: 0 }, 'settings.connectionTimeoutSeconds');
    assertInvalid({ ...minimal, userLoginAttribute: 'uid)(x' }, 'settings.userLoginAttribute');
    assertInvalid({ ...minimal, userEmailAttribute: 'mail)(x' }, 'settings.userEmailAttribute');
    assertInvalid({ ...minimal, userSearchFilter: 'department=ops' }, 'settings.userSearchFilter');
    assertInvalid({ ...minimal, groupSearchFilter: '(&(a=b)' }, 'settings.groupSearchFilter');
    assertInvalid({ ...minimal, groupMemberUserAttribute: 'not valid' }, 'settings.groupMemberUserAttribute');
    assertInvalid({ ...minimal, serviceAcountDn: 'cn=typo' }, 'settings.serviceAcountDn');
  });

  it('accepts a PEM CA bundle only with TLS, and refuses text that is not a certificate', () => {
    assert.equal(parseLdapSettings('ldap', 'corp', { ...minimal, caCertificate: `${caPem}\n${caPem}` }).caCertificate, `${caPem}\n${caPem}`);
    assertInvalid({ ...minimal, caCertificate: '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----' }, 'settings.caCertificate');
    assertInvalid({ ...minimal, tls: 'none', caCertificate: caPem }, 'settings.caCertificate');
  });

  it('needs a disabled bit mask when an enabled attribute is set, since a zero mask would disable nobody', () => {
    assertInvalid({ ...minimal, userEnabledAttribute: 'employeeType' }, 'settings.userDisabledBitMask');
    assertInvalid({ ...minimal, userDisabledBitMask: 0 }, 'settings.userDisabledBitMask', 'activedirectory');
  });

  it('normalises allowed principals to the provider’s DN spelling and refuses required mode without any', () => {
    const settings = parseLdapSettings('ldap', 'corp', {
      ...minimal,
      accessMode: 'required',
      allowedPrincipals: ['user:UID=Alice, OU=People,DC=example,DC=org', 'openldap_group://CN=Ops,DC=example,DC=org'],
    });
    assert.deepEqual(settings.access.allowedPrincipals, ['user:uid=alice,ou=people,dc=example,dc=org', 'group:corp:cn=ops,dc=example,dc=org']);
    assertInvalid({ ...minimal, accessMode: 'required' }, 'settings.allowedPrincipals');
    assertInvalid({ ...minimal, allowedPrincipals: ['user:x', 'alice'] }, 'settings.allowedPrincipals[1]');
  });
});
