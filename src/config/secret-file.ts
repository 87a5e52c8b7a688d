/**
 * Secrets kept in files the operator mounts (a Kubernetes Secret volume), read once at start:
 * the content without surrounding white space. The message names the setting, never the
 * content.
 */
import { readFileSync } from 'node:fs';
import { KubegateError } from '../errors.js';

/** Throws CONFIG_INVALID naming `field` when the file cannot be read or holds nothing. */
export function readSecretFile(path: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', `${field}: cannot read the file`, { field, cause });
  }
  const secret = text.trim();
  if (secret.length === 0) throw new KubegateError('CONFIG_INVALID', `${field}: the file is empty`, { field });
  return secret;
}
