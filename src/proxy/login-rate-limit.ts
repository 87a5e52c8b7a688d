/**
 * Failed-login limits, per username and per client address, in memory.
 *
 * Design notes:
 * - Fixed windows that open at the first failure: after `maxFailures` failures within
 *   `windowSeconds`, every attempt for that key is refused until the window closes, and
 *   Retry-After says when that is. The limit is checked BEFORE the password is verified, so
 *   a blocked attacker learns nothing from further guesses.
 * - Two independent counters: the username one stops guessing one account from many
 *   addresses; the address one stops one address from trying many accounts (spraying).
 *   A success resets the username's counter (the owner got in) but never the address's:
 *   otherwise an attacker with one valid account could reset their own budget at will.
 * - Keys are normalised so trivial variants count together: usernames are NFC, lower case
 *   and scoped by provider (LDAP compares case-insensitively), kept as a SHA-256 digest so
 *   every entry has the same small size; IPv4-mapped IPv6 addresses
 *   are their IPv4 address; other IPv6 addresses count per /64, the block one host usually
 *   controls.
 * - Memory is bounded: each counter map holds at most `maxKeys` entries (least recently used
 *   go first; expired windows count as absent). Evicting a username's counter needs many
 *   failures from many addresses, each of which is limited itself.
 * - Per process: several workers or replicas each keep their own counters, so the effective
 *   limit is multiplied by their number.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';

export interface LoginRateLimiterOptions {
  readonly maxFailures: number;
  readonly windowSeconds: number;
  /** Most usernames and most addresses tracked (each). Default 10 000. */
  readonly maxKeys?: number;
  /** Wall clock in epoch milliseconds; Date.now by default. */
  readonly now?: () => number;
}

export interface LoginAttempt {
  /** The provider the login is for; usernames of different providers are different accounts. */
  readonly provider: string;
  readonly username: string;
  /** The client's socket address. */
  readonly address: string | undefined;
}

export type LoginRateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

export interface LoginRateLimiter {
  /** Whether another attempt may be made now. */
  check(attempt: LoginAttempt): LoginRateDecision;
  /** Counts a wrong username or password against both keys. */
  recordFailure(attempt: LoginAttempt): void;
  /** Forgets the username's failures (not the address's). */
  recordSuccess(attempt: LoginAttempt): void;
}

interface Window {
  startMs: number;
  failures: number;
}

const DEFAULT_MAX_KEYS = 10_000;
const UNKNOWN_ADDRESS = 'unknown';

export function createLoginRateLimiter(options: LoginRateLimiterOptions): LoginRateLimiter {
  const { maxFailures, windowSeconds } = options;
  if (!Number.isSafeInteger(maxFailures) || maxFailures < 1) throw new TypeError('maxFailures must be a positive whole number');
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1) throw new TypeError('windowSeconds must be a positive whole number');
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new TypeError('maxKeys must be a positive whole number');
  const now = options.now ?? Date.now;
  const windowMs = windowSeconds * 1000;
  const byUsername = new LRUCache<string, Window>({ max: maxKeys });
  const byAddress = new LRUCache<string, Window>({ max: maxKeys });

  function current(map: LRUCache<string, Window>, key: string, at: number): Window | undefined {
    const window = map.get(key);
    if (window === undefined) return undefined;
    if (at - window.startMs >= windowMs) {
      map.delete(key);
      return undefined;
    }
    return window;
  }

  function blockedFor(map: LRUCache<string, Window>, key: string, at: number): number {
    const window = current(map, key, at);
    if (window === undefined || window.failures < maxFailures) return 0;
    return Math.max(1, Math.ceil((window.startMs + windowMs - at) / 1000));
  }

  function count(map: LRUCache<string, Window>, key: string, at: number): void {
    const window = current(map, key, at);
    if (window === undefined) map.set(key, { startMs: at, failures: 1 });
    else window.failures++;
  }

  return {
    check(attempt) {
      const at = now();
      const seconds = Math.max(blockedFor(byUsername, usernameKey(attempt), at), blockedFor(byAddress, addressKey(attempt.address), at));
      return seconds === 0 ? { allowed: true } : { allowed: false, retryAfterSeconds: seconds };
    },
    recordFailure(attempt) {
      const at = now();
      count(byUsername, usernameKey(attempt), at);
      count(byAddress, addressKey(attempt.address), at);
    },
    recordSuccess(attempt) {
      byUsername.delete(usernameKey(attempt));
    },
  };
}

/** A digest, so that a long username costs the same memory as a short one. */
function usernameKey(attempt: LoginAttempt): string {
  return createHash('sha256').update(`${attempt.provider}\u0000${attempt.username.normalize('NFC').toLowerCase()}`).digest('base64');
}

/** `::ffff:192.0.2.1` → `192.0.2.1`; `2001:db8:1:2:3:4:5:6` → `2001:db8:1:2::/64`. */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address.length === 0) return UNKNOWN_ADDRESS;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const groups = expandIPv6(address.split('%')[0]!);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.toLowerCase().split('::') as [string, string | undefined];
  const parse = (part: string): string[] => (part === '' ? [] : part.split(':').flatMap(groupsOf));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const zeros = Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...zeros, ...right];
}

/** One hex group, or two for a trailing dotted IPv4 part (`::1.2.3.4`). */
function groupsOf(part: string): string[] {
  if (!part.includes('.')) return [Number.parseInt(part, 16).toString(16)];
  const [a = 0, b = 0, c = 0, d = 0] = part.split('.').map(Number);
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}
