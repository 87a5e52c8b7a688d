/**
 * Versioned token-secret hashes, byte-for-byte compatible with Rancher's hashers:
 *
 * | tag  | layout                                      | algorithm                                  |
 * |------|---------------------------------------------|--------------------------------------------|
 * | `$1` | `$1:<hex salt>:<log2 N>:<r>:<p>:<b64 key>`  | scrypt(secret, salt), N=2^15 r=8 p=1, 64 B |
 * | `$2` | `$2:<b64 salt>:<b64 hash>`                  | SHA-256(salt ‖ secret)                     |
 * | `$3` | `$3:1:<b64 salt>:<b64 hash>`                | SHA3-512(salt ‖ secret), 8-byte salt       |
 *
 * base64 is the standard alphabet without padding (padded is accepted when verifying); the
 * secret is hashed as UTF-8. New hashes are `$3`. Hashes are read back from the store or from
 * Kubernetes Secrets, so parsing treats them as untrusted: every field is checked, digests
 * must have their algorithm's exact length, salts are 1–64 bytes, scrypt parameters are
 * bounded (see scrypt.ts), and the comparison is constant-time. A string that does not parse
 * is HASH_MALFORMED; a well-formed tag kubegate does not know is HASH_UNSUPPORTED. Error
 * messages never quote the hash.
 *
 * verifySecret is async because `$1` is; `$2`/`$3` are computed synchronously inside it, so
 * the only extra cost on those is one microtask (no separate sync variant is offered).
 *
 * A stored hash that is checked again and again (the webhook's, one per Secret) is parsed
 * once, when it is read: prepareHash keeps the decoded salt and digest — or, for a hash that
 * does not parse, the very error verifySecret would reject with — and verifyPrepared checks
 * a secret against that. Same answers, same errors, same constant-time compare as
 * verifySecret; what a review no longer pays is the string's parse and base64 decoding.
 * `$2`/`$3` digests are one-shot (`crypto.hash`) over salt ‖ secret laid out in one scratch
 * buffer (no Hash object per check; the buffer is zeroed after each), and secrets too long
 * for it take createHash.
 */
import { createHash, hash as digestOnce, randomBytes, timingSafeEqual } from 'node:crypto';
import { KubegateError } from '../errors.js';
import { decodeBase64Strict, encodeBase64Unpadded } from './base64.js';
import { deriveScryptKey } from './scrypt.js';
import type { ScryptParams } from './scrypt.js';

export type HashVersion = 1 | 2 | 3;

const SALT_LENGTH = 8;
const MAX_SALT_LENGTH = 64;
const MAX_HASH_LENGTH = 1024;
const SHA3_VARIATION_SHA512 = '1';
const RANCHER_SCRYPT: ScryptParams = Object.freeze({ log2N: 15, r: 8, p: 1 });
const RANCHER_SCRYPT_KEY_LENGTH = 64;
const SHA256_LENGTH = 32;
const SHA3_512_LENGTH = 64;

const TAG_PATTERN = /^\$([0-9]{1,9}):/;
const SMALL_INTEGER = /^[0-9]{1,3}$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

type ParsedHash =
  | { readonly version: 1; readonly salt: Buffer; readonly params: ScryptParams; readonly key: Buffer }
  | { readonly version: 2 | 3; readonly salt: Buffer; readonly digest: Buffer };

function malformed(problem: string): KubegateError {
  return new KubegateError('HASH_MALFORMED', `the stored hash is malformed: ${problem}`);
}

function decodeSalt(text: string, hex: boolean): Buffer {
  const salt = hex ? (HEX.test(text) ? Buffer.from(text, 'hex') : undefined) : decodeBase64Strict(text);
  if (salt === undefined) throw malformed(`the salt is not ${hex ? 'hex' : 'base64'}`);
  if (salt.length === 0 || salt.length > MAX_SALT_LENGTH) {
    throw malformed(`the salt must be 1 to ${MAX_SALT_LENGTH} bytes`);
  }
  return salt;
}

function decodeDigest(text: string, length: number | undefined): Buffer {
  const digest = decodeBase64Strict(text);
  if (digest === undefined) throw malformed('the hash value is not base64');
  if (length !== undefined && digest.length !== length) throw malformed(`the hash value must be ${length} bytes`);
  if (digest.length === 0) throw malformed('the hash value is empty');
  return digest;
}

function parseSmallInteger(text: string, what: string): number {
  if (!SMALL_INTEGER.test(text)) throw malformed(`${what} is not a small decimal integer`);
  return Number(text);
}

function parseHash(hash: string): ParsedHash {
  if (typeof hash !== 'string') throw new TypeError('the stored hash must be a string');
  if (hash.length > MAX_HASH_LENGTH) throw malformed(`it is longer than ${MAX_HASH_LENGTH} characters`);
  const tag = TAG_PATTERN.exec(hash);
  if (tag === null) throw malformed('it does not start with a version tag such as "$3:"');
  const fields = hash.split(':');
  switch (tag[1]) {
    case '1': {
      if (fields.length !== 6) throw malformed('a $1 hash has 6 colon-separated fields');
      const [, salt, log2N, r, p, key] = fields as [string, string, string, string, string, string];
      return {
        version: 1,
        salt: decodeSalt(salt, true),
        params: {
          log2N: parseSmallInteger(log2N, 'log2(N)'),
          r: parseSmallInteger(r, 'r'),
          p: parseSmallInteger(p, 'p'),
        },
        key: decodeDigest(key, undefined),
      };
    }
    case '2': {
      if (fields.length !== 3) throw malformed('a $2 hash has 3 colon-separated fields');
      const [, salt, digest] = fields as [string, string, string];
      return { version: 2, salt: decodeSalt(salt, false), digest: decodeDigest(digest, SHA256_LENGTH) };
    }
    case '3': {
      if (fields.length !== 4) throw malformed('a $3 hash has 4 colon-separated fields');
      const [, variation, salt, digest] = fields as [string, string, string, string];
      if (!/^[0-9]{1,9}$/.test(variation)) throw malformed('the $3 variation is not a number');
      if (variation !== SHA3_VARIATION_SHA512) {
        throw new KubegateError('HASH_UNSUPPORTED', 'the stored $3 hash uses an unsupported SHA-3 variation');
      }
      return { version: 3, salt: decodeSalt(salt, false), digest: decodeDigest(digest, SHA3_512_LENGTH) };
    }
    default:
      throw new KubegateError('HASH_UNSUPPORTED', 'the stored hash has an unsupported version tag');
  }
}

/** salt ‖ secret is laid out here for a one-shot digest (salts are ≤ 64 bytes); longer secrets take createHash. */
const scratch = Buffer.alloc(8192);

function digestOf(algorithm: 'sha256' | 'sha3-512', salt: Uint8Array, secret: string): Buffer {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: when this fits, all of the secret is written.
  if (salt.length + secret.length * 3 > scratch.length) return createHash(algorithm).update(salt).update(secret, 'utf8').digest();
  scratch.set(salt, 0);
  const end = salt.length + scratch.write(secret, salt.length, 'utf8');
  const digest = digestOnce(algorithm, scratch.subarray(0, end), 'buffer');
  scratch.fill(0, 0, end); // the secret does not stay in memory past its check
  return digest;
}

function assertSecret(secret: string): void {
  if (typeof secret !== 'string') throw new TypeError('the secret must be a string');
}

/** A `$3` (SHA3-512) hash of `secret` with a fresh 8-byte salt. */
export function hashSecret(secret: string): string {
  assertSecret(secret);
  const salt = randomBytes(SALT_LENGTH);
  return `$3:${SHA3_VARIATION_SHA512}:${encodeBase64Unpadded(salt)}:${encodeBase64Unpadded(digestOf('sha3-512', salt, secret))}`;
}

/** A hash of `secret` in any supported version, laid out exactly as Rancher writes it. */
export async function hashSecretWith(version: HashVersion, secret: string): Promise<string> {
  assertSecret(secret);
  const salt = randomBytes(SALT_LENGTH);
  switch (version) {
    case 1: {
      const key = await deriveScryptKey(secret, salt, RANCHER_SCRYPT, RANCHER_SCRYPT_KEY_LENGTH);
      const { log2N, r, p } = RANCHER_SCRYPT;
      return `$1:${salt.toString('hex')}:${log2N}:${r}:${p}:${encodeBase64Unpadded(key)}`;
    }
    case 2:
      return `$2:${encodeBase64Unpadded(salt)}:${encodeBase64Unpadded(digestOf('sha256', salt, secret))}`;
    case 3:
      return hashSecret(secret);
    default:
      throw new TypeError(`unknown hash version ${String(version)}`);
  }
}

/**
 * Whether `secret` matches the stored `hash`. Rejects with HASH_MALFORMED or
 * HASH_UNSUPPORTED (never a raw error) when the hash cannot be used; callers turn that into
 * an authenticator `error`, not a rejection.
 */
export async function verifySecret(secret: string, hash: string): Promise<boolean> {
  assertSecret(secret);
  return verifyParsed(secret, parseHash(hash));
}

/** A stored hash read once: its parsed fields, or the error verifying against it rejects with. */
export type PreparedHash = ParsedHash | { readonly version: 0; readonly error: unknown };

/** Parses `hash` for verifyPrepared; never throws (a hash that does not parse keeps its error). */
export function prepareHash(hash: string): PreparedHash {
  try {
    return parseHash(hash);
  } catch (error) {
    return { version: 0, error };
  }
}

/** verifySecret against a prepared hash: the same answer, or the same rejection, without parsing it again. */
export async function verifyPrepared(secret: string, prepared: PreparedHash): Promise<boolean> {
  assertSecret(secret);
  if (prepared.version === 0) throw prepared.error;
  return verifyParsed(secret, prepared);
}

async function verifyParsed(secret: string, parsed: ParsedHash): Promise<boolean> {
  if (parsed.version === 1) {
    const key = await deriveScryptKey(secret, parsed.salt, parsed.params, parsed.key.length);
    return timingSafeEqual(key, parsed.key);
  }
  const actual = digestOf(parsed.version === 2 ? 'sha256' : 'sha3-512', parsed.salt, secret);
  return timingSafeEqual(actual, parsed.digest);
}
