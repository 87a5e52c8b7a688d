/**
 * Failed-login limits, per username and per client address, in memory.
 *
 * Design notes:
 * - Fixed windows that open at the first attempt: after `maxFailures` failures within
 *   `windowSeconds`, every attempt for that key is refused until the window closes, and
 *   Retry-After says when that is. The limit is checked BEFORE the password is verified, so
 *   a blocked attacker learns nothing from further guesses.
 * - Check and count are one step (`reserve`): an attempt takes its place in both counters
 *   before the password is verified, with no `await` in between, and gives the place back
 *   only when it did not fail (success, provider outage). Checking first and counting after
 *   the verification would let a burst of concurrent guesses all pass the check while the
 *   first ones are still being verified (issue #16: 123 of 170 got through a limit of 5).
 *   So at most `maxFailures` verifications per window are ever under way or done for a key.
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

/** A place taken in the counters by one attempt; settle it once the provider has answered. */
export interface LoginReservation {
  /** Wrong username or password: the place stays taken until the window closes. */
  failed(): void;
  /** The password was right: the username's counter is forgotten, the address's place is given back. */
  succeeded(): void;
  /** The attempt could not be decided (provider outage, bad request): the places are given back. */
  abandoned(): void;
}

export type LoginRateDecision =
  | { readonly allowed: true; readonly reservation: LoginReservation }
  | { readonly allowed: false; readonly retryAfterSeconds: number };

export interface LoginRateLimiter {
  /**
   * Atomically: refuses when either counter is full, else takes a place in both. Call before
   * verifying the password, and settle the reservation afterwards.
   */
  reserve(attempt: LoginAttempt): LoginRateDecision;
}

interface Window {
  startMs: number;
  /** Failures plus attempts still being verified. */
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

  /** Takes a place in the key's window (a new window when there is none) and returns it. */
  function take(map: LRUCache<string, Window>, key: string, at: number): Window {
    const window = current(map, key, at);
    if (window !== undefined) {
      window.failures++;
      return window;
    }
    const opened = { startMs: at, failures: 1 };
    map.set(key, opened);
    return opened;
  }

  /** Gives a place back, unless its window has closed or was forgotten meanwhile. */
  function giveBack(map: LRUCache<string, Window>, key: string, window: Window): void {
    if (map.peek(key) === window && window.failures > 0) window.failures--;
  }

  return {
    reserve(attempt) {
      const at = now();
      const user = usernameKey(attempt);
      const address = addressKey(attempt.address);
      const seconds = Math.max(blockedFor(byUsername, user, at), blockedFor(byAddress, address, at));
      if (seconds > 0) return { allowed: false, retryAfterSeconds: seconds };
      const userWindow = take(byUsername, user, at);
      const addressWindow = take(byAddress, address, at);
      let settled = false;
      const settle = (settle: () => void) => () => {
        if (settled) return;
        settled = true;
        settle();
      };
      return {
        allowed: true,
        reservation: {
          failed: settle(() => undefined),
          succeeded: settle(() => {
            if (byUsername.peek(user) === userWindow) byUsername.delete(user);
            giveBack(byAddress, address, addressWindow);
          }),
          abandoned: settle(() => {
            giveBack(byUsername, user, userWindow);
            giveBack(byAddress, address, addressWindow);
          }),
        },
      };
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
