import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, scryptSync } from 'node:crypto';
import fc from 'fast-check';
import { isKubegateError } from '../../../src/errors.js';
import type { ErrorCode } from '../../../src/errors.js';
import { hashSecret, hashSecretWith, prepareHash, verifyPrepared, verifySecret } from '../../../src/tokens/hash.js';

/** Unpadded standard base64, written out here independently of src/tokens/base64.ts. */
function b64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

function sha(algorithm: string, salt: Buffer, secret: string): Buffer {
  return createHash(algorithm).update(Buffer.concat([salt, Buffer.from(secret, 'utf8')])).digest();
}

function rancherScrypt(secret: string, salt: Buffer, log2N = 15, r = 8, p = 1, keyLength = 64): Buffer {
  return scryptSync(secret, salt, keyLength, { N: 2 ** log2N, r, p, maxmem: 256 * 2 ** log2N * r });
}

/** Both ways of checking a stored hash (as a string, and parsed once) reject it with `code`. */
async function assertRejects(hash: string, code: ErrorCode, secret = 'secret'): Promise<void> {
  const prepared = prepareHash(hash);
  for (const check of [() => verifySecret(secret, hash), () => verifyPrepared(secret, prepared)]) {
    await assert.rejects(check(), (error: unknown) => {
      assert.ok(isKubegateError(error, code), `expected ${code}, got ${String(error)}`);
      if (hash.length >= 6) assert.ok(!error.message.includes(hash), 'the message must not quote the hash');
      return true;
    });
  }
}

const SALT = Buffer.from('0011223344556677', 'hex');
const SECRET = 'dddddddddddddddddddddddddddddddddddddddddddddddddddddd';

describe('hashSecret', () => {
  it('writes $3:1:<b64 salt>:<b64 SHA3-512(salt ‖ secret)> with an 8-byte salt and no padding, as Rancher does', () => {
    const hash = hashSecret(SECRET);
    const match = /^\$3:1:([A-Za-z0-9+/]+):([A-Za-z0-9+/]+)$/.exec(hash);
    assert.ok(match, hash);
    const salt = Buffer.from(match[1]!, 'base64');
    assert.equal(salt.length, 8);
    assert.equal(match[1], b64(salt));
    assert.equal(match[2], b64(sha('sha3-512', salt, SECRET)));
  });

  it('uses a fresh salt every time, so equal secrets do not have equal hashes', () => {
    assert.notEqual(hashSecret('same'), hashSecret('same'));
  });
});

describe('hashSecretWith', () => {
  it('writes $2:<b64 salt>:<b64 SHA-256(salt ‖ secret)>, the layout of Rancher’s SHA-256 hasher', async () => {
    const hash = await hashSecretWith(2, SECRET);
    const match = /^\$2:([A-Za-z0-9+/]+):([A-Za-z0-9+/]+)$/.exec(hash);
    assert.ok(match, hash);
    const salt = Buffer.from(match[1]!, 'base64');
    assert.equal(salt.length, 8);
    assert.equal(match[2], b64(sha('sha256', salt, SECRET)));
  });

  it('writes $1:<hex salt>:15:8:1:<b64 64-byte scrypt key>, the layout of Rancher’s scrypt hasher', async () => {
    const hash = await hashSecretWith(1, SECRET);
    const match = /^\$1:([0-9a-f]{16}):15:8:1:([A-Za-z0-9+/]+)$/.exec(hash);
    assert.ok(match, hash);
    assert.equal(match[2], b64(rancherScrypt(SECRET, Buffer.from(match[1]!, 'hex'))));
  });

  it('writes a $3 hash for version 3', async () => {
    assert.match(await hashSecretWith(3, SECRET), /^\$3:1:/);
  });

  it('treats an unknown version as a programming error', async () => {
    await assert.rejects(hashSecretWith(4 as 3, SECRET), TypeError);
  });
});

describe('verifySecret', () => {
  it('accepts a $3 hash produced by Rancher itself (a vector from Rancher’s hasher tests), and refuses another secret', async () => {
    const rancher = '$3:1:uFrxm43ggfw:zsN1zEFC7SvABTdR58o7yjIqfrI4cQ/HSYz3jBwwVnx5X+/ph4etGDIU9dvIYuy1IvnYUVe6a/Ar95xE+gfjhA';
    assert.equal(await verifySecret(SECRET, rancher), true);
    assert.equal(await verifySecret('wrong', rancher), false);
  });

  it('accepts $1, $2 and $3 hashes built by hand from the documented layouts', async () => {
    const byHand = [
      `$1:${SALT.toString('hex')}:15:8:1:${b64(rancherScrypt(SECRET, SALT))}`,
      `$2:${b64(SALT)}:${b64(sha('sha256', SALT, SECRET))}`,
      `$3:1:${b64(SALT)}:${b64(sha('sha3-512', SALT, SECRET))}`,
    ];
    for (const hash of byHand) {
      assert.equal(await verifySecret(SECRET, hash), true, hash);
      assert.equal(await verifySecret(`${SECRET}x`, hash), false, hash);
    }
  });

  it('accepts an upper-case hex salt and scrypt parameters other than the default, as Go’s parser does', async () => {
    const key = rancherScrypt(SECRET, SALT, 10, 4, 2, 32);
    assert.equal(await verifySecret(SECRET, `$1:${SALT.toString('hex').toUpperCase()}:10:4:2:${b64(key)}`), true);
  });

  it('accepts padded base64 as well as unpadded', async () => {
    const digest = sha('sha3-512', SALT, SECRET).toString('base64');
    assert.ok(digest.endsWith('='));
    assert.equal(await verifySecret(SECRET, `$3:1:${SALT.toString('base64')}:${digest}`), true);
  });

  it('hashes the secret as UTF-8, so non-ASCII secrets match what Go would compute', async () => {
    const secret = 'pässwörd-🔑';
    assert.equal(await verifySecret(secret, `$3:1:${b64(SALT)}:${b64(sha('sha3-512', SALT, secret))}`), true);
  });

  it('round-trips every version for arbitrary secrets, including empty, colon-laden and unicode ones', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 100, unit: 'grapheme' }), fc.constantFrom(2 as const, 3 as const), async (secret, version) => {
        const hash = await hashSecretWith(version, secret);
        assert.equal(await verifySecret(secret, hash), true);
        assert.equal(await verifySecret(`${secret}:`, hash), false);
      }),
      { numRuns: 200 },
    );
    // scrypt costs ~50 ms per run; a few runs cover the layout.
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40, unit: 'grapheme' }), async (secret) => {
        const hash = await hashSecretWith(1, secret);
        assert.equal(await verifySecret(secret, hash), true);
        assert.equal(await verifySecret(`${secret}x`, hash), false);
      }),
      { numRuns: 4 },
    );
  });

  it('rejects strings that are not versioned hashes as HASH_MALFORMED, because stored data is corrupt', async () => {
    const digest3 = b64(sha('sha3-512', SALT, SECRET));
    const digest2 = b64(sha('sha256', SALT, SECRET));
    const malformed = [
      '',
      'plaintext',
      '3:1:abc:def',
      '$:1:abc',
      '$A:1:abc:def',
      '$-3:1:abc:def',
      '$3',
      `$3:1:${b64(SALT)}`,
      `$3:1:${b64(SALT)}:${digest3}:extra`,
      `$3:B:${b64(SALT)}:${digest3}`,
      `$3:1:#Frxm43ggfw:${digest3}`,
      `$3:1:${b64(SALT)}:#${digest3.slice(1)}`,
      `$3:1::${digest3}`,
      `$3:1:${b64(SALT)}:`,
      `$3:1:${b64(SALT)}:${digest2}`,
      `$3:1:${b64(SALT)}:${digest3} `,
      `$3:1:${b64(SALT)}:${digest3.slice(0, -1)}`,
      `$3:1:${b64(SALT)}==:${digest3}`,
      `$3:1:${b64(Buffer.alloc(65, 1))}:${digest3}`,
      `$2:${b64(SALT)}:${digest3}`,
      `$2:${b64(SALT)}`,
      `$1:${SALT.toString('hex')}:15:8:1`,
      `$1:abc:15:8:1:${digest3}`,
      `$1:zz:15:8:1:${digest3}`,
      `$1:${SALT.toString('hex')}:x:8:1:${digest3}`,
      `$1:${SALT.toString('hex')}:-1:8:1:${digest3}`,
      `$1:${SALT.toString('hex')}:15:8:1:`,
      `$3:1:${b64(SALT)}:${'A'.repeat(2000)}`,
    ];
    for (const hash of malformed) await assertRejects(hash, 'HASH_MALFORMED');
  });

  it('refuses hostile scrypt parameters before running scrypt, so a planted hash cannot exhaust memory or CPU', async () => {
    const salt = SALT.toString('hex');
    const key = b64(Buffer.alloc(64, 7));
    const hostile = [
      `$1:${salt}:31:8:1:${key}`, // 2^31 × 8 × 128 bytes
      `$1:${salt}:21:1:1:${key}`,
      `$1:${salt}:20:8:1:${key}`, // 1 GiB
      `$1:${salt}:15:17:1:${key}`,
      `$1:${salt}:15:8:5:${key}`,
      `$1:${salt}:15:16:4:${key}`, // 64 MiB is allowed, but N·r·p = 2^21 is too much work
      `$1:${salt}:15:8:999:${key}`,
      `$1:${salt}:0:8:1:${key}`,
      `$1:${salt}:15:0:1:${key}`,
      `$1:${salt}:15:8:0:${key}`,
      `$1:${salt}:15:8:1:${b64(Buffer.alloc(8, 7))}`, // key too short to mean anything
      `$1:${salt}:15:8:1:${b64(Buffer.alloc(200, 7))}`,
      `$1:${salt}:16:1:1:${key}`, // scrypt needs N < 2^(16 r)
    ];
    const started = performance.now();
    for (const hash of hostile) await assertRejects(hash, 'HASH_MALFORMED');
    assert.ok(performance.now() - started < 1000, 'hostile hashes must be refused quickly');
  });

  it('reports a well-formed but unknown version or SHA-3 variation as HASH_UNSUPPORTED', async () => {
    const digest3 = b64(sha('sha3-512', SALT, SECRET));
    for (const hash of [`$4:1:${b64(SALT)}:${digest3}`, `$0:x`, `$99:a:b`, `$3:2:${b64(SALT)}:${digest3}`]) {
      await assertRejects(hash, 'HASH_UNSUPPORTED');
    }
  });

  it('never rejects with anything but a KubegateError on arbitrary hash strings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200, unit: 'binary' }),
          fc.tuple(fc.constantFrom('$1:', '$2:', '$3:', '$3:1:'), fc.string({ maxLength: 120 })).map(([tag, rest]) => tag + rest),
        ),
        async (hash) => {
          try {
            assert.equal(typeof (await verifySecret(SECRET, hash)), 'boolean');
          } catch (error) {
            assert.ok(isKubegateError(error, 'HASH_MALFORMED') || isKubegateError(error, 'HASH_UNSUPPORTED'), String(error));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('answers exactly as verifySecret against a hash parsed once, for arbitrary hash strings, so the webhook can parse each Secret once', async () => {
    const outcome = async (check: () => Promise<boolean>): Promise<string> => {
      try {
        return String(await check());
      } catch (error) {
        return isKubegateError(error) ? `${error.code}: ${error.message}` : `not a KubegateError: ${String(error)}`;
      }
    };
    const good = [hashSecret(SECRET), await hashSecretWith(2, SECRET), `$3:1:${SALT.toString('base64')}:${sha('sha3-512', SALT, SECRET).toString('base64')}`];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(...good),
          fc.string({ maxLength: 200, unit: 'binary' }),
          fc.tuple(fc.constantFrom('$1:', '$2:', '$3:', '$3:1:'), fc.string({ maxLength: 120 })).map(([tag, rest]) => tag + rest),
        ),
        fc.constantFrom(SECRET, `${SECRET}x`, ''),
        async (hash, secret) => {
          const prepared = prepareHash(hash); // never throws, whatever the string
          assert.equal(await outcome(() => verifyPrepared(secret, prepared)), await outcome(() => verifySecret(secret, hash)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('checks one prepared hash again and again with secrets of any length, longer and shorter in turn', async () => {
    // Lengths around and past the one-shot digest's scratch space (8 KiB: salt ‖ secret as UTF-8).
    const secrets = ['a', 'x'.repeat(2700), 'é'.repeat(2800), '🔑'.repeat(1400), 'y'.repeat(8184), 'z'.repeat(9000), 'b', ''];
    for (const version of [2, 3] as const) {
      for (const secret of secrets) {
        const prepared = prepareHash(await hashSecretWith(version, secret));
        for (const other of secrets) {
          assert.equal(await verifyPrepared(other, prepared), other === secret, `$${version}: ${secret.length} against ${other.length} characters`);
        }
      }
    }
    // And against digests computed independently (salt ‖ UTF-8 secret).
    for (const secret of secrets) {
      assert.equal(await verifyPrepared(secret, prepareHash(`$3:1:${b64(SALT)}:${b64(sha('sha3-512', SALT, secret))}`)), true);
      assert.equal(await verifyPrepared(secret, prepareHash(`$2:${b64(SALT)}:${b64(sha('sha256', SALT, secret))}`)), true);
    }
  });

  it('treats a non-string secret as a programming error', async () => {
    await assert.rejects(verifySecret(undefined as unknown as string, hashSecret('x')), TypeError);
    await assert.rejects(verifyPrepared(undefined as unknown as string, prepareHash(hashSecret('x'))), TypeError);
  });
});
