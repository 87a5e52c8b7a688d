/**
 * At-rest encryption for the secrets the store keeps (cluster credentials, identity
 * provider settings).
 *
 * AES-256-GCM through crypto/envelope.ts (the one authenticated-encryption module: a fresh
 * random 12-byte IV per value, a 16-byte tag), written as a versioned string envelope:
 *
 *     v1:<key id>:<base64 IV>:<base64 ciphertext ‖ 16-byte tag>
 *
 * The key ID is the first 8 characters of base64url(SHA-256(key)): it names the key without
 * revealing it, so a box built with `previousKeys` can still open values sealed before a
 * rotation (new values are always sealed with the current key). The header `v1:<key id>` is
 * authenticated as additional data, so it cannot be altered either. Any failure to open —
 * wrong key, tampered or truncated envelope — is SECRET_DECRYPT_FAILED, never a crash and
 * never a partial plaintext.
 *
 * The embedded default keeps its key in a 0600 file in the data directory (`readKeyFile`,
 * `createKeyFile`; see store/open.ts for when a missing file may be created); deployments with several replicas pass the same base64 key to
 * each one through configuration (`parseSecretKey`).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ENVELOPE_IV_BYTES, ENVELOPE_KEY_BYTES, ENVELOPE_TAG_BYTES, openBytes, sealBytes } from '../crypto/envelope.js';
import { KubegateError } from '../errors.js';

export const SECRET_KEY_BYTES = ENVELOPE_KEY_BYTES;
const ENVELOPE_VERSION = 'v1';
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]+$/;

export interface SecretBox {
  /** Identifies the key new values are sealed with (not secret). */
  readonly keyId: string;
  /** Encrypts `plaintext` into a self-describing envelope string. */
  seal(plaintext: string): string;
  /** Decrypts an envelope made by `seal`; SECRET_DECRYPT_FAILED if it cannot. */
  open(envelope: string): string;
}

export interface SecretBoxOptions {
  /** Keys that sealed older values, accepted by `open` only (key rotation). */
  readonly previousKeys?: readonly Buffer[];
}

/** A SecretBox sealing with `key` (32 bytes); SECRET_KEY_INVALID for any other length. */
export function createSecretBox(key: Buffer, options: SecretBoxOptions = {}): SecretBox {
  const current = copyKey(key);
  const keysById = new Map<string, Buffer>();
  for (const previous of options.previousKeys ?? []) {
    const copy = copyKey(previous);
    keysById.set(keyIdOf(copy), copy);
  }
  const currentId = keyIdOf(current);
  keysById.set(currentId, current);

  return {
    keyId: currentId,
    seal(plaintext: string): string {
      if (typeof plaintext !== 'string') throw new TypeError('SecretBox.seal expects a string');
      const header = `${ENVELOPE_VERSION}:${currentId}`;
      const { iv, body } = sealBytes(current, plaintext, Buffer.from(header, 'utf8'));
      return `${header}:${iv.toString('base64')}:${body.toString('base64')}`;
    },
    open(envelope: string): string {
      if (typeof envelope !== 'string') throw new TypeError('SecretBox.open expects a string');
      const parts = envelope.split(':');
      if (parts.length !== 4 || parts[0] !== ENVELOPE_VERSION) {
        throw new KubegateError('SECRET_DECRYPT_FAILED', 'the stored secret is not a v1 envelope');
      }
      const [version, keyId, ivText, bodyText] = parts as [string, string, string, string];
      const key = keysById.get(keyId);
      if (key === undefined) {
        throw new KubegateError('SECRET_DECRYPT_FAILED', 'the stored secret was sealed with an unknown key');
      }
      const iv = decodeStrictBase64(ivText);
      const body = decodeStrictBase64(bodyText);
      if (iv === undefined || iv.length !== ENVELOPE_IV_BYTES || body === undefined || body.length < ENVELOPE_TAG_BYTES) {
        throw new KubegateError('SECRET_DECRYPT_FAILED', 'the stored secret envelope is malformed');
      }
      const plaintext = openBytes(key, { iv, body }, Buffer.from(`${version}:${keyId}`, 'utf8'));
      if (plaintext === undefined) throw new KubegateError('SECRET_DECRYPT_FAILED');
      return plaintext.toString('utf8');
    },
  };
}

/**
 * Decodes a key given as base64 (standard or URL alphabet, surrounding whitespace ignored);
 * SECRET_KEY_INVALID unless it is exactly 32 bytes.
 */
export function parseSecretKey(base64: string): Buffer {
  if (typeof base64 !== 'string') throw new TypeError('parseSecretKey expects a string');
  const text = base64.trim();
  const decoded = decodeStrictBase64(text) ?? (BASE64URL_PATTERN.test(text) ? Buffer.from(text, 'base64url') : undefined);
  if (decoded === undefined || decoded.length !== SECRET_KEY_BYTES) {
    throw new KubegateError('SECRET_KEY_INVALID', `the secret key must be ${SECRET_KEY_BYTES} bytes, base64-encoded`);
  }
  return decoded;
}

/**
 * Reads the base64 key kept in `path`; undefined when the file does not exist,
 * SECRET_KEY_INVALID when it cannot be read or holds no 32-byte key (never replaced then).
 */
export function readKeyFile(path: string): Buffer | undefined {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('readKeyFile expects a file path');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw new KubegateError('SECRET_KEY_INVALID', `the secret key file ${path} cannot be read`, { cause: error });
  }
  try {
    return parseSecretKey(text);
  } catch (error) {
    throw new KubegateError('SECRET_KEY_INVALID', `the secret key file ${path} does not hold a base64 key of ${SECRET_KEY_BYTES} bytes`, { cause: error });
  }
}

/**
 * Writes `key` to a new file `path` (mode 0600, parent directories 0700) and returns the key
 * the file holds: `key`, or — when another process created the file first — that one's.
 * Creation is exclusive, so an existing key is never overwritten.
 */
export function createKeyFile(path: string, key: Buffer): Buffer {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('createKeyFile expects a file path');
  const own = copyKey(key);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${own.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return own;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) {
      const raced = readKeyFile(path);
      if (raced !== undefined) return raced;
    }
    throw new KubegateError('SECRET_KEY_INVALID', `the secret key file ${path} cannot be created`, { cause: error });
  }
}

function copyKey(key: Buffer): Buffer {
  if (!Buffer.isBuffer(key)) throw new TypeError('a secret key must be a Buffer');
  if (key.length !== SECRET_KEY_BYTES) {
    throw new KubegateError('SECRET_KEY_INVALID', `the secret key must be ${SECRET_KEY_BYTES} bytes`);
  }
  return Buffer.from(key);
}

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 8);
}

/** Standard base64 with correct padding, or undefined; Buffer.from alone accepts garbage. */
function decodeStrictBase64(text: string): Buffer | undefined {
  return text.length > 0 && BASE64_PATTERN.test(text) ? Buffer.from(text, 'base64') : undefined;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
