import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { identityFromClaims, groupsFromClaims } from '../../../../src/providers/oidc/claims.js';
import { createOidcProvider } from '../../../../src/providers/oidc/oidc.js';

function config(settings: Record<string, unknown>) {
  return { name: 'corp', type: 'oidc', enabled: true, settings: { issuer: 'https://id.example.com', clientId: 'kubegate', ...settings } };
}

function configError(settings: Record<string, unknown>): { code: string; field?: string; message: string } {
  try {
    createOidcProvider(config(settings));
  } catch (error) {
    return error as { code: string; field?: string; message: string };
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('OIDC provider settings', () => {
  it('refuses an http issuer, because ID tokens and codes must not cross the network in clear text', () => {
    const error = configError({ issuer: 'http://id.example.com' });
    assert.equal(error.code, 'CONFIG_INVALID');
    assert.equal(error.field, 'settings.issuer');
  });

  it('accepts an http issuer only with the test-only allowInsecureIssuerForTests', () => {
    assert.equal(createOidcProvider(config({ issuer: 'http://127.0.0.1:1', allowInsecureIssuerForTests: true })).type, 'oidc');
  });

  it('refuses an unknown setting by name, because a typo must not silently change behaviour', () => {
    assert.equal(configError({ clientSecrett: 'x' }).field, 'settings.clientSecrett');
  });

  it('refuses an empty emailClaim and a non-boolean assumeEmailVerified by name', () => {
    assert.equal(configError({ emailClaim: '' }).field, 'settings.emailClaim');
    assert.equal(configError({ assumeEmailVerified: 'yes' }).field, 'settings.assumeEmailVerified');
  });

  it('refuses scopes without openid, because there would be no ID token', () => {
    assert.equal(configError({ scopes: ['profile'] }).field, 'settings.scopes');
  });

  it('never quotes a setting value in its error, because settings hold client secrets', () => {
    assert.ok(!configError({ clientSecret: 42, issuer: 'ftp://secret-host' }).message.includes('secret-host'));
  });

  it('accepts ID tokens for the client ID unless audiences are configured', () => {
    assert.deepEqual(createOidcProvider(config({})).bearer.audiences, ['kubegate']);
    assert.deepEqual(createOidcProvider(config({ audiences: ['a', 'b'] })).bearer.audiences, ['a', 'b']);
  });
});

describe('OIDC claims to identity', () => {
  const names = { usernameClaim: 'preferred_username', groupsClaim: 'groups', emailClaim: 'email', assumeEmailVerified: false };

  it('links by sub and prefixes groups, dropping system: and non-string ones, because provider data never becomes a system: name', () => {
    const identity = identityFromClaims('corp', { sub: 'abc', preferred_username: 'erin', groups: ['dev', 'system:masters', 7, ' System:nodes', 'dev'] }, names);
    assert.equal(identity.providerUserId, 'abc');
    assert.equal(identity.loginName, 'erin');
    assert.deepEqual(identity.groups, ['corp:dev']);
  });

  it('falls back to sub for the login name and takes a single-string groups claim', () => {
    const identity = identityFromClaims('corp', { sub: 'abc', groups: 'ops' }, names);
    assert.equal(identity.loginName, 'abc');
    assert.deepEqual(identity.groups, ['corp:ops']);
  });

  it('refuses a reserved login name instead of replacing it', () => {
    assert.throws(() => identityFromClaims('corp', { sub: 'abc', preferred_username: 'system:admin' }, names), { code: 'IDENTITY_NAME_RESERVED' });
  });

  it('refuses a token without a usable sub, because sub is the stable link', () => {
    assert.throws(() => identityFromClaims('corp', { preferred_username: 'erin' }, names), { code: 'IDENTITY_NAME_INVALID' });
  });

  it('takes the e-mail address only when email_verified is true (the boolean), normalised', () => {
    const email = (claims: Record<string, unknown>, overrides: Partial<typeof names> = {}): string | undefined => identityFromClaims('corp', { sub: 'abc', ...claims }, { ...names, ...overrides }).email;
    assert.equal(email({ email: 'Erin@Example.ORG', email_verified: true }), 'Erin@example.org');
    assert.equal(email({ email: 'erin@example.org', email_verified: false }), undefined);
    assert.equal(email({ email: 'erin@example.org' }), undefined, 'no email_verified: not verified');
    assert.equal(email({ email: 'erin@example.org', email_verified: 'true' }), undefined, 'only the boolean counts, as for Kubernetes');
    assert.equal(email({ email: 'not an address', email_verified: true }), undefined);
    assert.equal(email({ email: 'system:masters@example.org', email_verified: true }), undefined);
    assert.equal(email({ mail: 'erin@example.org', email: 'other@example.org', email_verified: true }, { emailClaim: 'mail' }), 'erin@example.org');
  });

  it('with assumeEmailVerified, takes an address without email_verified, but never one marked false', () => {
    const trusted = { ...names, assumeEmailVerified: true };
    assert.equal(identityFromClaims('corp', { sub: 'abc', email: 'erin@example.org' }, trusted).email, 'erin@example.org');
    assert.equal(identityFromClaims('corp', { sub: 'abc', email: 'erin@example.org', email_verified: false }, trusted).email, undefined);
  });

  it('reads groups from another claim when configured', () => {
    assert.deepEqual(groupsFromClaims('corp', { roles: ['a'] }, 'roles'), ['corp:a']);
  });
});
