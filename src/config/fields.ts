/**
 * Field schemas shared by the proxy and webhook configuration. Each one carries its own
 * operator-facing problem text; none of them echoes the value it rejects.
 */
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import * as z from 'zod';
import { isKubegateError } from '../errors.js';
import { parseDurationSeconds } from '../tokens/duration.js';
import { parseListenAddress } from './listen.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const DNS_NAME_PATTERN = /^(?=.{1,253}$)(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A whole number in [min, max]. */
export function wholeNumber(min: number, max: number) {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const DURATION_PROBLEM = 'must be a positive duration such as 30d, 24h, 90m, 1h30m or whole seconds (at most 10 years)';

/** `30d`, `24h`, `90m`, `45s` or a number of seconds → a positive number of seconds. */
export function durationSeconds(defaultValue: string) {
  return z
    .union([z.string(), z.number()], { error: DURATION_PROBLEM })
    .transform((value, context) => {
      try {
        return parseDurationSeconds(value);
      } catch (error) {
        if (!isKubegateError(error, 'DURATION_INVALID')) throw error;
        context.addIssue({ code: 'custom', message: DURATION_PROBLEM });
        return z.NEVER;
      }
    })
    .prefault(defaultValue);
}

/** `HOST:PORT`, kept as written (the server parses it again when it binds). */
export function listenAddress(defaultValue: string) {
  return z
    .string()
    .refine((text) => parseListenAddress(text) !== undefined, { error: 'must be HOST:PORT, e.g. 0.0.0.0:8443 or [::]:8443' })
    .default(defaultValue);
}

/** A non-empty file system path, made absolute against the working directory. */
export const filePath = z.string().min(1).transform((path) => resolve(path));

export const logLevel = z.enum(LOG_LEVELS).default('info');

/** A DNS name (a leading `*.` allowed) or an IP address, as certificate SANs are. */
export const hostNameOrIp = z
  .string()
  .refine((text) => isIP(text) !== 0 || DNS_NAME_PATTERN.test(text), { error: 'must be a DNS name or an IP address' });

/** `certFile` and `keyFile`: both or neither. */
export const tlsFiles = {
  certFile: filePath.optional(),
  keyFile: filePath.optional(),
};

export function checkBothOrNeither(
  value: { certFile?: string | undefined; keyFile?: string | undefined },
  context: z.core.$RefinementCtx,
): void {
  if ((value.certFile === undefined) !== (value.keyFile === undefined)) {
    const missing = value.certFile === undefined ? 'certFile' : 'keyFile';
    context.addIssue({ code: 'custom', path: [missing], message: 'is required when the other of certFile/keyFile is set' });
  }
}

/** Turns `"8"` from an environment variable into 8 so the number schema can judge it. */
export function numberFromText(text: string): number | string {
  return /^\s*-?\d+\s*$/.test(text) ? Number(text) : text;
}

/** The authentication cache settings, shared by the proxy's and the webhook's cache. */
export function authCacheSchema(defaults: { successTtl: string; failureTtl: string }) {
  return z
    .strictObject({
      successTtl: durationSeconds(defaults.successTtl),
      failureTtl: durationSeconds(defaults.failureTtl),
      maxEntries: wholeNumber(1, 10_000_000).default(10_000),
    })
    .prefault({});
}

export interface AuthCacheConfig {
  /** How long a successful authentication is reused (never past the token's expiry). */
  readonly successTtlSeconds: number;
  /** How long a rejected token is remembered as rejected. */
  readonly failureTtlSeconds: number;
  readonly maxEntries: number;
}

/**
 * `metrics.listen`: `HOST:PORT` of the separate metrics listener, or `none` for no such
 * listener; undefined stands for `none` once parsed.
 */
export function metricsListenAddress(defaultValue: string) {
  return z
    .string()
    .refine((text) => text === 'none' || parseListenAddress(text) !== undefined, { error: 'must be HOST:PORT, e.g. 127.0.0.1:9464, or none' })
    .default(defaultValue)
    .transform((text) => (text === 'none' ? undefined : text));
}

/** Where `/metrics` is served, shared by the proxy and the webhook. */
export interface MetricsConfig {
  /** `HOST:PORT` of the separate plain-HTTP metrics listener; undefined: none. */
  readonly listen: string | undefined;
  /** A file holding the bearer token every scrape must present; undefined: none needed. */
  readonly bearerTokenFile: string | undefined;
}
