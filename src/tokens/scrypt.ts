/**
 * scrypt with bounded parameters, shared by `$1` token hashes and local password hashes.
 *
 * The parameters of a stored hash are data, and data can be hostile or corrupt: a hash
 * claiming N=2^30 would make one verification allocate 128 GiB. So every derivation checks
 * its parameters against fixed limits first — memory (128·N·r bytes) at most 64 MiB, work
 * (N·r·p) at most 4× Rancher's default — and runs on libuv's thread pool (async scrypt),
 * never on the event loop. Out-of-bounds or inconsistent parameters are HASH_MALFORMED.
 */
import { scrypt } from 'node:crypto';
import { KubegateError } from '../errors.js';

export interface ScryptParams {
  /** log2 of the cost N. */
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
}

export const SCRYPT_LIMITS = Object.freeze({
  maxLog2N: 20,
  maxR: 16,
  maxP: 4,
  /** 128·N·r, the size of scrypt's big buffer. */
  maxMemoryBytes: 64 * 1024 * 1024,
  /** N·r·p; Rancher's N=2^15, r=8, p=1 is 2^18. */
  maxWork: 2 ** 20,
  minKeyLength: 16,
  maxKeyLength: 128,
});

/** Why `params` and `keyLength` are refused, or undefined when they are within the limits. */
export function scryptParamsProblem(params: ScryptParams, keyLength: number): string | undefined {
  const { log2N, r, p } = params;
  if (!Number.isInteger(log2N) || log2N < 1 || log2N > SCRYPT_LIMITS.maxLog2N) {
    return `scrypt log2(N) must be an integer from 1 to ${SCRYPT_LIMITS.maxLog2N}`;
  }
  if (!Number.isInteger(r) || r < 1 || r > SCRYPT_LIMITS.maxR) {
    return `scrypt r must be an integer from 1 to ${SCRYPT_LIMITS.maxR}`;
  }
  if (!Number.isInteger(p) || p < 1 || p > SCRYPT_LIMITS.maxP) {
    return `scrypt p must be an integer from 1 to ${SCRYPT_LIMITS.maxP}`;
  }
  const n = 2 ** log2N;
  if (128 * n * r > SCRYPT_LIMITS.maxMemoryBytes) return 'scrypt N·r needs more memory than allowed';
  if (n * r * p > SCRYPT_LIMITS.maxWork) return 'scrypt N·r·p is more work than allowed';
  if (!Number.isInteger(keyLength) || keyLength < SCRYPT_LIMITS.minKeyLength || keyLength > SCRYPT_LIMITS.maxKeyLength) {
    return `scrypt key length must be from ${SCRYPT_LIMITS.minKeyLength} to ${SCRYPT_LIMITS.maxKeyLength} bytes`;
  }
  return undefined;
}

/**
 * Derives `keyLength` bytes from `secret` (UTF-8) and `salt`. Rejects with HASH_MALFORMED
 * when the parameters are out of bounds or scrypt itself refuses them (e.g. N ≥ 2^(16·r)).
 */
export function deriveScryptKey(secret: string, salt: Uint8Array, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const problem = scryptParamsProblem(params, keyLength);
  if (problem !== undefined) return Promise.reject(new KubegateError('HASH_MALFORMED', problem));
  const n = 2 ** params.log2N;
  // What OpenSSL allocates: 128·r·(N+2) for V plus 128·r·p for B; a little slack on top.
  const maxmem = 128 * params.r * (n + params.p + 2) + 64 * 1024;
  return new Promise((resolve, reject) => {
    try {
      scrypt(secret, salt, keyLength, { N: n, r: params.r, p: params.p, maxmem }, (error, key) => {
        if (error) reject(new KubegateError('HASH_MALFORMED', 'scrypt refused the stored parameters', { cause: error }));
        else resolve(key);
      });
    } catch (error) {
      // Node validates the parameters synchronously and throws a RangeError.
      reject(new KubegateError('HASH_MALFORMED', 'scrypt refused the stored parameters', { cause: error }));
    }
  });
}
