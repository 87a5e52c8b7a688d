/**
 * The e-mail addresses kubegate records (src/auth/email.ts): a strict, simple addr-spec,
 * because an address can become a Kubernetes user name and a header value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalisedEmailAddress, parseEmailAddress, vouchedEmail } from '../../../src/auth/email.js';
import { isKubegateError } from '../../../src/errors.js';

describe('e-mail addresses', () => {
  it('accepts a dot-atom local part at a DNS domain, and lower-cases only the domain', () => {
    assert.equal(normalisedEmailAddress('alice@example.org'), 'alice@example.org');
    assert.equal(normalisedEmailAddress('Alice.Smith@Example.ORG'), 'Alice.Smith@example.org');
    assert.equal(normalisedEmailAddress("o'brien+k8s=ops@mail-1.corp.example"), "o'brien+k8s=ops@mail-1.corp.example");
    const longest = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.org`;
    assert.equal(longest.length, 254);
    assert.equal(normalisedEmailAddress(longest), longest);
  });

  it('refuses what could be something else: a colon (system:, kubegate:, provider:login), spaces, control characters, quotes, two @', () => {
    const refused = [
      'system:masters@example.org',
      'kubegate:sync@example.org',
      'ldap:alice',
      'alice@example.org:443',
      'al ice@example.org',
      ' alice@example.org',
      'alice@example.org ',
      'alice\n@example.org',
      'alice@exa\u0000mple.org',
      '"alice"@example.org',
      'alice@[192.0.2.1]',
      'alice@bob@example.org',
      'alice',
      '@example.org',
      'alice@',
      'alice@localhost',
      '.alice@example.org',
      'alice.@example.org',
      'al..ice@example.org',
      'alice@-example.org',
      'alice@example..org',
      'alicé@example.org',
      'alice@exämple.org',
      `${'a'.repeat(65)}@example.org`,
      `a@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(60)}.org`,
      '',
    ];
    for (const value of refused) assert.equal(normalisedEmailAddress(value), undefined, JSON.stringify(value));
    for (const value of [undefined, null, 42, ['alice@example.org'], { email: 'alice@example.org' }]) assert.equal(normalisedEmailAddress(value), undefined);
  });

  it('refuses with BAD_REQUEST naming the field, without quoting the value', () => {
    assert.throws(
      () => parseEmailAddress('secret person@example.org', 'email'),
      (error: unknown) => isKubegateError(error, 'BAD_REQUEST') && error.field === 'email' && !error.message.includes('secret person'),
    );
    assert.equal(parseEmailAddress('Bob@EXAMPLE.org'), 'Bob@example.org');
  });

  it('answers what a provider vouches for: the first address kubegate accepts, else "refused" when one was given, so a login can go on and say so', () => {
    assert.deepEqual(vouchedEmail(['yūki@example.org', 'Yuki@Example.org']), { email: 'Yuki@example.org' });
    assert.deepEqual(vouchedEmail(['yūki@example.org']), { emailRefused: true });
    assert.deepEqual(vouchedEmail(['"quoted"@example.org', 'not an address']), { emailRefused: true });
    assert.deepEqual(vouchedEmail([]), {}, 'none given: nothing refused');
    assert.deepEqual(vouchedEmail([undefined, '', 42]), {}, 'nothing that could be an address: nothing refused');
  });
});
