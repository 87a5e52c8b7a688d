import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { isKubegateError } from '../../../src/errors.js';
import { MAX_PASSWORD_BYTES, hashPassword, verifyPassword } from '../../../src/auth/password.js';
import { scryptCallsDuring } from '../../support/scrypt-calls.js';

function b64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

function byHand(password: string, salt: Buffer, log2N = 15, r = 8, p = 1, keyLength = 32): string {
  const key = scryptSync(password, salt, keyLength, { N: 2 ** log2N, r, p, maxmem: 256 * 2 ** log2N * r });
  return `$scrypt$ln=${log2N},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
}

const SALT = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');


describe('hashPassword', () => {
  it('writes $scrypt$ln=15,r=8,p=1$<b64 16-byte salt>$<b64 32-byte scrypt key>', async () => {
    const stored = await hashPassword('correct horse');
    const match = /^\$scrypt\$ln=15,r=8,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(stored);
    assert.ok(match, stored);
    const salt = Buffer.from(match[1]!, 'base64');
    assert.equal(salt.length, 16);
    assert.equal(stored, byHand('correct horse', salt));
  });

  it('uses a fresh salt every time', async () => {
    assert.notEqual(await hashPassword('same'), await hashPassword('same'));
  });

  it('refuses an empty password or one over 1024 UTF-8 bytes with BAD_REQUEST, because it comes from a user', async () => {
    for (const password of ['', 'a'.repeat(MAX_PASSWORD_BYTES + 1), 'é'.repeat(513)]) {
      await assert.rejects(hashPassword(password), (error: unknown) => isKubegateError(error, 'BAD_REQUEST') && error.field === 'password');
    }
    assert.match(await hashPassword('é'.repeat(512)), /^\$scrypt\$/);
  });
});

describe('verifyPassword', () => {
  it('accepts the right password and refuses a wrong one', async () => {
    const stored = await hashPassword('correct horse');
    assert.equal(await verifyPassword('correct horse', stored), true);
    assert.equal(await verifyPassword('correct horsE', stored), false);
    assert.equal(await verifyPassword('correct horse ', stored), false);
  });

  it('accepts a hash built by hand from the documented layout, padded or not, and other in-bounds parameters', async () => {
    assert.equal(await verifyPassword('pw', byHand('pw', SALT)), true);
    const padded = byHand('pw', SALT).replace(/\$([^$]+)\$([^$]+)$/, (_, salt: string, key: string) => `$${salt}==$${key}=`);
    assert.equal(await verifyPassword('pw', padded), true);
    assert.equal(await verifyPassword('pw', byHand('pw', SALT, 12, 8, 2, 64)), true);
  });

  it('matches a password typed in decomposed Unicode against one stored composed, because both are NFC-normalised', async () => {
    const stored = await hashPassword('caf\u00e9');
    assert.equal(await verifyPassword('cafe\u0301', stored), true);
  });

  it('answers false for an empty or over-long password without running scrypt, so long inputs cannot burn CPU', async () => {
    const stored = byHand('pw', SALT);
    const calls = await scryptCallsDuring(async () => {
      assert.equal(await verifyPassword('a'.repeat(10_000_000), stored), false);
      assert.equal(await verifyPassword('a'.repeat(MAX_PASSWORD_BYTES + 1), stored), false);
      assert.equal(await verifyPassword('', stored), false);
    });
    assert.equal(calls, 0, 'must answer without deriving a key');
    assert.equal(await scryptCallsDuring(async () => assert.equal(await verifyPassword('pw', stored), true)), 1, 'the spy sees a real derivation');
  });

  it('throws HASH_MALFORMED for a corrupt stored hash rather than answering false, so a damaged record is a server fault, not a wrong password', async () => {
    const good = byHand('pw', SALT);
    const corrupt = [
      '',
      'pw',
      good.replace('$scrypt$', '$bcrypt$'),
      good.replace('ln=15', 'ln=x'),
      good.replace(',r=8', ''),
      good.replace(/\$[^$]+$/, '$'),
      good.replace(/\$[^$]+$/, '$#bad'),
      `${good}$extra`,
      `${good}\n`,
      good.replace(b64(SALT), b64(SALT.subarray(0, 4))),
      good.replace(/\$[^$]+$/, `$${b64(Buffer.alloc(8))}`),
      good + 'A'.repeat(600),
    ];
    for (const stored of corrupt) {
      await assert.rejects(verifyPassword('pw', stored), (error: unknown) => isKubegateError(error, 'HASH_MALFORMED'), JSON.stringify(stored));
    }
  });

  it('refuses hostile stored parameters before running scrypt', async () => {
    const key = b64(Buffer.alloc(32, 1));
    const calls = await scryptCallsDuring(async () => {
      for (const params of ['ln=30,r=8,p=1', 'ln=20,r=8,p=1', 'ln=15,r=99,p=1', 'ln=15,r=8,p=99', 'ln=0,r=8,p=1']) {
        await assert.rejects(verifyPassword('pw', `$scrypt$${params}$${b64(SALT)}$${key}`), (error: unknown) => isKubegateError(error, 'HASH_MALFORMED'));
      }
    });
    assert.equal(calls, 0, 'refused before scrypt ran');
  });

  it('treats non-string arguments as programming errors', async () => {
    const stored = byHand('pw', SALT);
    await assert.rejects(verifyPassword(undefined as unknown as string, stored), TypeError);
    await assert.rejects(verifyPassword('pw', null as unknown as string), TypeError);
  });
});
