/**
 * AES-256-GCM, the one authenticated encryption kubegate uses (the store's secret box and
 * login state both seal through it, each with its own string format): a fresh random 12-byte IV per
 * value, a 16-byte tag, and additional data that binds a value to its use (a header, a
 * purpose) without being secret. Opening fails — `undefined`, never a throw and never a
 * partial plaintext — for a wrong key, a changed byte or different additional data.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const ENVELOPE_KEY_BYTES = 32;
export const ENVELOPE_IV_BYTES = 12;
export const ENVELOPE_TAG_BYTES = 16;

export interface SealedBytes {
  readonly iv: Buffer;
  /** Ciphertext followed by the tag. */
  readonly body: Buffer;
}

/** Encrypts `plaintext` under `key` (32 bytes) with a fresh IV, authenticating `additionalData`. */
export function sealBytes(key: Buffer, plaintext: Buffer | string, additionalData: Buffer): SealedBytes {
  const iv = randomBytes(ENVELOPE_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: ENVELOPE_TAG_BYTES });
  cipher.setAAD(additionalData);
  const ciphertext = typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext);
  return { iv, body: Buffer.concat([ciphertext, cipher.final(), cipher.getAuthTag()]) };
}

/** The plaintext of a value sealed by `sealBytes` with the same key and additional data, else undefined. */
export function openBytes(key: Buffer, sealed: SealedBytes, additionalData: Buffer): Buffer | undefined {
  const { iv, body } = sealed;
  if (iv.length !== ENVELOPE_IV_BYTES || body.length < ENVELOPE_TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: ENVELOPE_TAG_BYTES });
    decipher.setAAD(additionalData);
    decipher.setAuthTag(body.subarray(body.length - ENVELOPE_TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - ENVELOPE_TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}
