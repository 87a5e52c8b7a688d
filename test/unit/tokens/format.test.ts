import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isKubegateError } from '../../../src/errors.js';
import {
  MAX_TOKEN_LENGTH,
  MAX_TOKEN_NAME_LENGTH,
  formatToken,
  parseBearer,
  parseToken,
  tryParseToken,
} from '../../../src/tokens/format.js';

function assertMalformed(token: string, messagePart: RegExp): void {
  assert.throws(
    () => parseToken(token),
    (error: unknown) => isKubegateError(error, 'TOKEN_MALFORMED') && messagePart.test(error.message),
  );
  assert.equal(tryParseToken(token), undefined);
}

const nameArbitrary = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,30}[A-Za-z0-9])?$/).filter((name) => !name.startsWith('ext/'));
const secretArbitrary = fc.stringMatching(/^[\x21-\x7e]{1,80}$/);

describe('parseToken', () => {
  it('splits a kubegate token into its name and secret', () => {
    assert.deepEqual(parseToken('t-abcdefghijkl:s3cr3t'), { name: 't-abcdefghijkl', secret: 's3cr3t' });
  });

  it('accepts Rancher token names such as kubeconfig-u-abc12 and token-xyz, because kubegate replaces kube-api-auth as a drop-in', () => {
    assert.deepEqual(parseToken('kubeconfig-u-abc12:x'), { name: 'kubeconfig-u-abc12', secret: 'x' });
    assert.deepEqual(parseToken('token-xyz:abc'), { name: 'token-xyz', secret: 'abc' });
  });

  it('splits at the first colon, because Rancher secrets may contain colons', () => {
    assert.deepEqual(parseToken('token-a:b:c::d'), { name: 'token-a', secret: 'b:c::d' });
  });

  it('strips an ext/ prefix from the name, because Rancher ext tokens carry it on the wire', () => {
    assert.deepEqual(parseToken('ext/token-abc:secret'), { name: 'token-abc', secret: 'secret' });
  });

  it('strips the ext/ prefix only once, so ext/ext/x is refused for its slash', () => {
    assertMalformed('ext/ext/x:secret', /may only contain/);
  });

  it('rejects an empty token, because there is nothing to look up', () => {
    assertMalformed('', /empty/);
  });

  it('rejects a token without a colon, because name and secret cannot be told apart', () => {
    assertMalformed('justasecret', /no colon/);
  });

  it('rejects an empty name, with or without the ext/ prefix', () => {
    assertMalformed(':secret', /name is empty/);
    assertMalformed('ext/:secret', /name is empty/);
  });

  it('rejects an empty secret, because an empty secret would match an empty-secret hash', () => {
    assertMalformed('token-abc:', /secret is empty/);
  });

  it('rejects a token longer than the cap before scanning it, because the token is attacker input', () => {
    const long = `t-a:${'s'.repeat(MAX_TOKEN_LENGTH)}`;
    assertMalformed(long, /longer than 4096/);
    assert.doesNotThrow(() => parseToken(`t-a:${'s'.repeat(MAX_TOKEN_LENGTH - 4)}`));
  });

  it('rejects whitespace, control and non-ASCII characters anywhere, because a token travels in headers and kubeconfigs', () => {
    for (const token of ['t-a:se cret', 't-a:secret\n', '\tt-a:secret', 't-a:sec\u0000ret', 't-a:sec\u007fret', 't-é:secret', 't-a:sécret', 't-a:secret\u200b', 't-a:🔑']) {
      assertMalformed(token, /printable ASCII/);
    }
  });

  it('rejects names with characters outside [A-Za-z0-9._-], because the name becomes an object name and a URL path segment', () => {
    for (const token of ['a/b:s', 'a%2f:s', 'a@b:s', 'a+b:s', 'a$b:s', 'a"b:s', 'a\\b:s']) assertMalformed(token, /may only contain/);
  });

  it('rejects . and .. and names with a leading or trailing punctuation mark, because they could walk a URL path', () => {
    for (const token of ['.:s', '..:s', '-a:s', 'a-:s', '_a:s', 'a.:s']) assertMalformed(token, /must start and end/);
  });

  it('rejects a name longer than a Kubernetes object name', () => {
    assertMalformed(`${'a'.repeat(MAX_TOKEN_NAME_LENGTH + 1)}:s`, /name is longer than 253/);
    assert.equal(parseToken(`${'a'.repeat(MAX_TOKEN_NAME_LENGTH)}:s`).name.length, MAX_TOKEN_NAME_LENGTH);
  });

  it('never repeats any part of the token in its error message, because a "name" without a colon may be a secret', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 8, maxLength: 200, unit: 'binary' }), (token) => {
        try {
          parseToken(`zz${token}`);
        } catch (error) {
          assert.ok(isKubegateError(error, 'TOKEN_MALFORMED'));
          assert.ok(!error.message.includes(`zz${token}`.slice(0, 8)));
        }
      }),
    );
  });

  it('never throws anything but TOKEN_MALFORMED on arbitrary strings, because tokens are untrusted input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (token) => {
        try {
          const parsed = parseToken(token);
          assert.equal(tryParseToken(token)?.name, parsed.name);
        } catch (error) {
          assert.ok(isKubegateError(error, 'TOKEN_MALFORMED'));
        }
      }),
    );
  });

  it('treats a non-string argument as a programming error (TypeError)', () => {
    assert.throws(() => parseToken(42 as unknown as string), TypeError);
    assert.equal(tryParseToken(undefined as unknown as string), undefined);
  });
});

describe('formatToken', () => {
  it('round-trips through parseToken for every valid name and secret, including secrets with colons', () => {
    fc.assert(
      fc.property(nameArbitrary, secretArbitrary, (name, secret) => {
        assert.deepEqual(parseToken(formatToken(name, secret)), { name, secret });
      }),
    );
  });

  it('refuses a name or secret that would not parse back, because kubegate must never hand out an unusable token', () => {
    assert.throws(() => formatToken('', 's'), TypeError);
    assert.throws(() => formatToken('a', ''), TypeError);
    assert.throws(() => formatToken('a b', 's'), TypeError);
    assert.throws(() => formatToken('a:b', 's'), TypeError);
    assert.throws(() => formatToken('a', 's s'), TypeError);
  });
});

describe('parseBearer', () => {
  it('returns the credential of a Bearer header, whatever the case of the scheme', () => {
    assert.equal(parseBearer('Bearer t-a:s'), 't-a:s');
    assert.equal(parseBearer('bearer t-a:s'), 't-a:s');
    assert.equal(parseBearer('BEARER t-a:s'), 't-a:s');
  });

  it('returns undefined when there is no header or another scheme, so other authenticators may try', () => {
    assert.equal(parseBearer(undefined), undefined);
    assert.equal(parseBearer(''), undefined);
    assert.equal(parseBearer('Basic dXNlcjpwYXNz'), undefined);
    assert.equal(parseBearer('Bearerx t-a:s'), undefined);
    assert.equal(parseBearer('Bear t-a:s'), undefined);
  });

  it('rejects a Bearer header without a credential, because it is a malformed request rather than a missing one', () => {
    for (const value of ['Bearer', 'Bearer ', 'bearer ']) {
      assert.throws(() => parseBearer(value), (error: unknown) => isKubegateError(error, 'TOKEN_MALFORMED'));
    }
  });

  it('rejects more than one credential or extra whitespace, because the header must hold exactly one token', () => {
    for (const value of ['Bearer a b', 'Bearer  a', 'Bearer a ', 'Bearer a\tb']) {
      assert.throws(() => parseBearer(value), (error: unknown) => isKubegateError(error, 'TOKEN_MALFORMED'));
    }
  });
});
