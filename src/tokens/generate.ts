/**
 * New kubegate tokens: `t-<12 base32>` names (60 random bits, a valid object name that is
 * easy to tell from Rancher's `token-…`/`kubeconfig-u-…`) and 54-character base32 secrets
 * (270 random bits), lower case so that they are safe in headers, URLs and YAML unquoted.
 * Each base32 character takes the low 5 bits of one random byte: 256 is a multiple of 32,
 * so there is no modulo bias.
 */
import { randomBytes } from 'node:crypto';
import { formatToken } from './format.js';

const TOKEN_NAME_PREFIX = 't-';
const NAME_RANDOM_LENGTH = 12;
const SECRET_LENGTH = 54;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export interface GeneratedToken {
  readonly name: string;
  readonly secret: string;
  /** `name:secret`, what the user puts in a kubeconfig. */
  readonly token: string;
}

/** Prefixes of other secrets of the same shape: agent registration tokens and agent credentials. */
export const REGISTRATION_NAME_PREFIX = 'r-';
export const AGENT_CREDENTIAL_NAME_PREFIX = 'a-';

export function generateToken(prefix: string = TOKEN_NAME_PREFIX): GeneratedToken {
  const bytes = randomBytes(NAME_RANDOM_LENGTH + SECRET_LENGTH);
  let name = prefix;
  let secret = '';
  for (let i = 0; i < bytes.length; i++) {
    const character = BASE32[bytes[i]! & 31];
    if (i < NAME_RANDOM_LENGTH) name += character;
    else secret += character;
  }
  return { name, secret, token: formatToken(name, secret) };
}
