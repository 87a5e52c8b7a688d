import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isKubegateError, type ErrorCode } from '../../../src/errors.js';
import { createKeyFile, createSecretBox, parseSecretKey, readKeyFile } from '../../../src/store/secret-box.js';

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isKubegateError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  });
}

/** Replaces one character of the base64 field `index` (1-based among the `:` fields). */
function tamper(envelope: string, index: number): string {
  const parts = envelope.split(':');
  const field = parts[index]!;
  parts[index] = `${field[0] === 'A' ? 'B' : 'A'}${field.slice(1)}`;
  return parts.join(':');
}

describe('createSecretBox', () => {
  const key = randomBytes(32);

  it('opens what it sealed, for empty, unicode and large plaintexts', () => {
    const box = createSecretBox(key);
    for (const plaintext of ['', 'token-abc', '日本語 😀 \u0000 "quoted"', 'x'.repeat(1_000_000)]) {
      assert.equal(box.open(box.seal(plaintext)), plaintext);
    }
  });

  it('seals the same plaintext differently each time, because every value gets a fresh IV', () => {
    const box = createSecretBox(key);
    const first = box.seal('same');
    const second = box.seal('same');
    assert.notEqual(first, second);
    assert.notEqual(first.split(':')[2], second.split(':')[2]);
  });

  it('writes a versioned envelope naming its key without containing the plaintext', () => {
    const box = createSecretBox(key);
    const envelope = box.seal('super-secret-credential');
    assert.match(envelope, /^v1:[A-Za-z0-9_-]{8}:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$/);
    assert.equal(envelope.split(':')[1], box.keyId);
    assert.ok(!envelope.includes('super-secret'));
    assert.ok(!Buffer.from(envelope.split(':')[3]!, 'base64').toString('latin1').includes('super-secret'));
  });

  it('refuses a tampered IV, ciphertext, key ID or version with SECRET_DECRYPT_FAILED, because GCM authenticates all of it', () => {
    const box = createSecretBox(key);
    const envelope = box.seal('credential');
    throwsCode(() => box.open(tamper(envelope, 2)), 'SECRET_DECRYPT_FAILED');
    throwsCode(() => box.open(tamper(envelope, 3)), 'SECRET_DECRYPT_FAILED');
    throwsCode(() => box.open(tamper(envelope, 1)), 'SECRET_DECRYPT_FAILED');
    throwsCode(() => box.open(envelope.replace(/^v1/, 'v2')), 'SECRET_DECRYPT_FAILED');
    throwsCode(() => box.open(envelope.slice(0, -4)), 'SECRET_DECRYPT_FAILED');
  });

  it('refuses garbage and truncated envelopes with SECRET_DECRYPT_FAILED rather than crashing', () => {
    const box = createSecretBox(key);
    for (const garbage of ['', 'plaintext', 'v1:', 'v1:abc:def:ghi', `v1:${box.keyId}::`, `v1:${box.keyId}:AAAAAAAAAAAAAAAA:AAAA`, `v1:${box.keyId}:!!:!!`]) {
      throwsCode(() => box.open(garbage), 'SECRET_DECRYPT_FAILED');
    }
  });

  it('refuses values sealed under another key, because a wrong key must never yield plaintext', () => {
    const sealed = createSecretBox(key).seal('credential');
    throwsCode(() => createSecretBox(randomBytes(32)).open(sealed), 'SECRET_DECRYPT_FAILED');
  });

  it('opens values sealed under a previous key and seals new ones under the current key, for key rotation', () => {
    const oldBox = createSecretBox(key);
    const sealedBefore = oldBox.seal('credential');
    const rotated = createSecretBox(randomBytes(32), { previousKeys: [key] });
    assert.equal(rotated.open(sealedBefore), 'credential');
    const sealedAfter = rotated.seal('credential');
    assert.equal(sealedAfter.split(':')[1], rotated.keyId);
    assert.notEqual(rotated.keyId, oldBox.keyId);
    throwsCode(() => oldBox.open(sealedAfter), 'SECRET_DECRYPT_FAILED');
  });

  it('refuses keys that are not 32 bytes with SECRET_KEY_INVALID, and non-Buffers with a TypeError', () => {
    throwsCode(() => createSecretBox(randomBytes(16)), 'SECRET_KEY_INVALID');
    throwsCode(() => createSecretBox(randomBytes(33)), 'SECRET_KEY_INVALID');
    throwsCode(() => createSecretBox(key, { previousKeys: [Buffer.alloc(0)] }), 'SECRET_KEY_INVALID');
    assert.throws(() => createSecretBox(key.toString('base64') as unknown as Buffer), TypeError);
  });

  it('opens a value sealed before the box moved onto crypto/envelope.ts, because stored secrets must outlive the code that sealed them', () => {
    // Sealed by the former self-contained implementation under the key 0x00, 0x01, … 0x1f.
    const formerKey = Buffer.from(Array.from({ length: 32 }, (_, index) => index));
    const sealedByFormerCode = 'v1:Yw3NKWbE:uEA70uUqJL4YWbS4:TLg0mKcFSEquMQcvuw4Cvsots2RlnQ+oh6sqxFGvETulB4OFu5mLstKwHFqqBrDpfN3vjnVbnLRVXW9b7Wo32aD/';
    const box = createSecretBox(formerKey);
    assert.equal(box.keyId, 'Yw3NKWbE');
    assert.equal(box.open(sealedByFormerCode), 'sealed before the envelope module: {"token":"abc"}');
  });

  it('is not affected when the caller later overwrites the key buffer it passed', () => {
    const mutable = Buffer.from(key);
    const box = createSecretBox(mutable);
    const sealed = box.seal('credential');
    mutable.fill(0);
    assert.equal(box.open(sealed), 'credential');
  });
});

describe('parseSecretKey', () => {
  it('accepts a 32-byte key in base64 or base64url, ignoring surrounding whitespace', () => {
    const key = randomBytes(32);
    assert.deepEqual(parseSecretKey(key.toString('base64')), key);
    assert.deepEqual(parseSecretKey(` ${key.toString('base64')}\n`), key);
    assert.deepEqual(parseSecretKey(key.toString('base64url')), key);
  });

  it('refuses keys of another length or with stray characters with SECRET_KEY_INVALID, because a truncated key is a weak key', () => {
    throwsCode(() => parseSecretKey(randomBytes(16).toString('base64')), 'SECRET_KEY_INVALID');
    throwsCode(() => parseSecretKey(randomBytes(48).toString('base64')), 'SECRET_KEY_INVALID');
    throwsCode(() => parseSecretKey(''), 'SECRET_KEY_INVALID');
    throwsCode(() => parseSecretKey(`${randomBytes(32).toString('base64')}!`), 'SECRET_KEY_INVALID');
    throwsCode(() => parseSecretKey('a'.repeat(43) + '*'), 'SECRET_KEY_INVALID');
  });
});

describe('readKeyFile and createKeyFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubegate-key-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a private file with the key, reads the same key afterwards, and answers undefined for a missing file', () => {
    const path = join(dir, 'data', 'secret.key');
    assert.equal(readKeyFile(path), undefined);
    const key = randomBytes(32);
    assert.deepEqual(createKeyFile(path, key), key);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'data')).mode & 0o077, 0);
    assert.deepEqual(parseSecretKey(readFileSync(path, 'utf8')), key);
    assert.deepEqual(readKeyFile(path), key);
  });

  it('never overwrites an existing key file: a second creator gets the key already there, because racing processes must agree on one key', () => {
    const path = join(dir, 'secret.key');
    const first = createKeyFile(path, randomBytes(32));
    assert.deepEqual(createKeyFile(path, randomBytes(32)), first);
    assert.deepEqual(readKeyFile(path), first);
  });

  it('reads a key an operator wrote into the file', () => {
    const key = randomBytes(32);
    const path = join(dir, 'secret.key');
    writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600 });
    assert.deepEqual(readKeyFile(path), key);
  });

  it('refuses a file that does not hold a 32-byte base64 key with SECRET_KEY_INVALID, instead of replacing it', () => {
    const path = join(dir, 'secret.key');
    writeFileSync(path, 'not a key\n', { mode: 0o600 });
    throwsCode(() => readKeyFile(path), 'SECRET_KEY_INVALID');
    throwsCode(() => createKeyFile(path, randomBytes(32)), 'SECRET_KEY_INVALID');
    assert.equal(readFileSync(path, 'utf8'), 'not a key\n');
  });

  it('refuses a path it cannot read with SECRET_KEY_INVALID', () => {
    throwsCode(() => readKeyFile(dir), 'SECRET_KEY_INVALID');
  });
});
