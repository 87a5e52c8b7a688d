/**
 * Local-user password hashes: scrypt (N=2^15, r=8, p=1), 16-byte salt, 32-byte key, stored as
 * `$scrypt$ln=15,r=8,p=1$<b64 salt>$<b64 key>` (standard base64 without padding).
 *
 * Decisions:
 * - Passwords are normalised to Unicode NFC before hashing, so the same password typed on
 *   different systems (composed or decomposed accents) matches.
 * - A password longer than 1024 UTF-8 bytes is refused: hashPassword throws BAD_REQUEST
 *   (the password comes from a user), verifyPassword answers false without running scrypt
 *   (no such password can have been stored), so long inputs cannot be used to burn CPU.
 *   An empty password is treated the same way.
 * - A stored hash that does not parse, or whose parameters are out of bounds (scrypt.ts),
 *   is corrupt data: verifyPassword throws HASH_MALFORMED instead of answering false, so
 *   that a login over a damaged record is reported as a server fault, not "wrong password".
 * - Comparison is constant-time.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { KubegateError } from '../errors.js';
import { decodeBase64Strict, encodeBase64Unpadded } from '../tokens/base64.js';
import { deriveScryptKey } from '../tokens/scrypt.js';
import type { ScryptParams } from '../tokens/scrypt.js';

/** Longest password accepted, in UTF-8 bytes after NFC normalisation. */
export const MAX_PASSWORD_BYTES = 1024;

const PARAMS: ScryptParams = Object.freeze({ log2N: 15, r: 8, p: 1 });
const SALT_LENGTH = 16;
const KEY_LENGTH = 32;
const MIN_SALT_LENGTH = 8;
const MAX_SALT_LENGTH = 64;
const MAX_STORED_LENGTH = 512;
const STORED_PATTERN = /^\$scrypt\$ln=([0-9]{1,2}),r=([0-9]{1,2}),p=([0-9]{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

interface StoredPassword {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly key: Buffer;
}

function malformed(problem: string): KubegateError {
  return new KubegateError('HASH_MALFORMED', `the stored password hash is malformed: ${problem}`);
}

function parseStored(stored: string): StoredPassword {
  if (typeof stored !== 'string') throw new TypeError('the stored password hash must be a string');
  if (stored.length > MAX_STORED_LENGTH) throw malformed(`it is longer than ${MAX_STORED_LENGTH} characters`);
  const match = STORED_PATTERN.exec(stored);
  if (match === null) throw malformed('it is not of the form $scrypt$ln=…,r=…,p=…$<salt>$<key>');
  const [, log2N, r, p, saltText, keyText] = match as unknown as [string, string, string, string, string, string];
  const salt = decodeBase64Strict(saltText);
  const key = decodeBase64Strict(keyText);
  if (salt === undefined || key === undefined) throw malformed('the salt or key is not base64');
  if (salt.length < MIN_SALT_LENGTH || salt.length > MAX_SALT_LENGTH) {
    throw malformed(`the salt must be ${MIN_SALT_LENGTH} to ${MAX_SALT_LENGTH} bytes`);
  }
  return { params: { log2N: Number(log2N), r: Number(r), p: Number(p) }, salt, key };
}

/** The password as hashed: NFC-normalised, or undefined when empty or too long. */
function normalise(password: string): string | undefined {
  if (typeof password !== 'string') throw new TypeError('the password must be a string');
  // A cheap bound before normalising a huge string: NFC composes at most 4 code points into
  // one, and UTF-8 has at least one byte per UTF-16 unit, so longer input cannot fit.
  if (password.length === 0 || password.length > MAX_PASSWORD_BYTES * 4) return undefined;
  const normalised = password.normalize('NFC');
  return Buffer.byteLength(normalised, 'utf8') > MAX_PASSWORD_BYTES ? undefined : normalised;
}

/** A new stored hash of `password`. Throws BAD_REQUEST for an empty or over-long password. */
export async function hashPassword(password: string): Promise<string> {
  const normalised = normalise(password);
  if (normalised === undefined) {
    throw new KubegateError('BAD_REQUEST', `the password must be 1 to ${MAX_PASSWORD_BYTES} bytes long`, { field: 'password' });
  }
  const salt = randomBytes(SALT_LENGTH);
  const key = await deriveScryptKey(normalised, salt, PARAMS, KEY_LENGTH);
  return `$scrypt$ln=${PARAMS.log2N},r=${PARAMS.r},p=${PARAMS.p}$${encodeBase64Unpadded(salt)}$${encodeBase64Unpadded(key)}`;
}

/**
 * Whether `password` matches `stored`. Answers false for an empty or over-long password;
 * throws HASH_MALFORMED when `stored` is corrupt or asks for out-of-bounds parameters.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseStored(stored);
  const normalised = normalise(password);
  if (normalised === undefined) return false;
  const key = await deriveScryptKey(normalised, parsed.salt, parsed.params, parsed.key.length);
  return timingSafeEqual(key, parsed.key);
}
