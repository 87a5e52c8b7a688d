/**
 * Exit codes of the `kubegate` client commands, by the error catalog's HTTP status of the
 * error (src/errors.ts), so a script can tell "not found" from "not allowed" without reading
 * the message. README ("Admin CLI") lists them.
 */
import type { KubegateError } from '../errors.js';

export const EXIT_CODES = {
  /** Anything unexpected (INTERNAL and the like). */
  failed: 1,
  /** Bad input: a usage error, a malformed request (400, 405, 413, 415). */
  badInput: 2,
  /** Not logged in, or the token is no longer valid (401). */
  unauthenticated: 3,
  /** Logged in, but not allowed (403). */
  forbidden: 4,
  notFound: 5,
  /** Already exists, or would leave no administrator (409). */
  conflict: 6,
  rateLimited: 7,
  /** The proxy, the store, a cluster or an identity provider cannot be reached (502, 503, 504). */
  unavailable: 8,
} as const;

export function exitCodeFor(error: KubegateError): number {
  const { status } = error;
  if (status === 401) return EXIT_CODES.unauthenticated;
  if (status === 403) return EXIT_CODES.forbidden;
  if (status === 404) return EXIT_CODES.notFound;
  if (status === 409) return EXIT_CODES.conflict;
  if (status === 429) return EXIT_CODES.rateLimited;
  if (status === 502 || status === 503 || status === 504) return EXIT_CODES.unavailable;
  if (status >= 400 && status < 500) return EXIT_CODES.badInput;
  return EXIT_CODES.failed;
}
