import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { isKubegateError } from '../../../src/errors.js';
import { SCRYPT_LIMITS, deriveScryptKey, scryptParamsProblem } from '../../../src/tokens/scrypt.js';

describe('deriveScryptKey', () => {
  it('derives the same key as node:crypto scryptSync for Rancher’s parameters (N=2^15, r=8, p=1)', async () => {
    const salt = Buffer.from('0102030405060708', 'hex');
    const expected = scryptSync('secret', salt, 64, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
    assert.deepEqual(await deriveScryptKey('secret', salt, { log2N: 15, r: 8, p: 1 }, 64), expected);
  });

  it('runs the largest parameters the limits allow, so the memory ceiling passed to scrypt is enough', async () => {
    const key = await deriveScryptKey('s', Buffer.alloc(8), { log2N: 15, r: 16, p: 2 }, 16);
    assert.equal(key.length, 16);
  });

  it('rejects with HASH_MALFORMED, not a RangeError, when scrypt itself refuses the parameters', async () => {
    await assert.rejects(deriveScryptKey('s', Buffer.alloc(8), { log2N: 16, r: 1, p: 1 }, 16), (error: unknown) =>
      isKubegateError(error, 'HASH_MALFORMED'),
    );
  });
});

describe('scryptParamsProblem', () => {
  it('accepts Rancher’s parameters and the password parameters', () => {
    assert.equal(scryptParamsProblem({ log2N: 15, r: 8, p: 1 }, 64), undefined);
    assert.equal(scryptParamsProblem({ log2N: 15, r: 8, p: 1 }, 32), undefined);
  });

  it('bounds memory to 64 MiB and work to 2^20, whatever the combination', () => {
    assert.equal(SCRYPT_LIMITS.maxMemoryBytes, 64 * 1024 * 1024);
    for (let log2N = 1; log2N <= 24; log2N++) {
      for (let r = 1; r <= 20; r++) {
        for (let p = 1; p <= 6; p++) {
          if (scryptParamsProblem({ log2N, r, p }, 64) === undefined) {
            assert.ok(128 * 2 ** log2N * r <= SCRYPT_LIMITS.maxMemoryBytes);
            assert.ok(2 ** log2N * r * p <= SCRYPT_LIMITS.maxWork);
          }
        }
      }
    }
  });

  it('refuses non-integers and key lengths outside 16–128 bytes', () => {
    assert.match(scryptParamsProblem({ log2N: 14.5, r: 8, p: 1 }, 64) ?? '', /log2\(N\)/);
    assert.match(scryptParamsProblem({ log2N: 15, r: Number.NaN, p: 1 }, 64) ?? '', /r must/);
    assert.match(scryptParamsProblem({ log2N: 15, r: 8, p: 1 }, 15) ?? '', /key length/);
    assert.match(scryptParamsProblem({ log2N: 15, r: 8, p: 1 }, 129) ?? '', /key length/);
  });
});
