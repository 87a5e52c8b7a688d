/**
 * Failed-login limits: per username (tight), per client address (loose), and per user for
 * changing one's own password.
 *
 * Design notes:
 * - Fixed windows that open at the first attempt: once a key holds its limit of failures
 *   within `windowSeconds`, every attempt for that key is refused until the window closes,
 *   and Retry-After says when that is. The limit is checked BEFORE the password is verified,
 *   so a blocked attacker learns nothing from further guesses.
 * - Check and count are one step (`reserve`): an attempt takes its place in the counters
 *   before the password is verified, and gives it back only when it did not fail (success,
 *   provider outage). Checking first and counting after the verification would let a burst
 *   of concurrent guesses all pass the check while the first ones are still being verified
 *   (issue #16: 123 of 170 got through a limit of 5). So at most the limit of verifications
 *   per window are ever under way or done for a key. Each counter's `take` is atomic on its
 *   own; a username place taken before the address refuses is given back.
 * - Two independent login counters: the username one (`maxFailures`, tight) stops guessing
 *   one account from many addresses; the address one (`maxFailuresPerAddress`, loose, since
 *   a whole office may share one NAT address) stops one address from trying many accounts
 *   (spraying). A success forgets the username's failures (the owner got in) but never the
 *   address's: otherwise an attacker with one valid account could reset their budget at will.
 * - Changing one's own password (`reservePasswordChange`) has a counter of its own per user
 *   ID and none of the login counters: only a holder of the user's token can fill it, so an
 *   attacker who filled the username's login limit cannot lock an admin out of changing a
 *   password, while a stolen token still cannot become an unlimited password oracle.
 * - Keys are normalised so trivial variants count together: usernames are NFC, lower case
 *   and scoped by provider (LDAP compares case-insensitively), kept as a SHA-256 digest so
 *   every entry has the same small size; IPv4-mapped IPv6 addresses are their IPv4 address;
 *   other IPv6 addresses count per /64, the block one host usually controls.
 * - Counters sit behind FailureCounter. The proxy uses the store's (createStoreFailureCounter):
 *   one row per key in `login_failures`, taken in one transaction that locks the row, so
 *   every worker (`--workers`, SQLite) and every replica (PostgreSQL) counts against the same
 *   limits and the reserve-before-verify guarantee holds across them. A place is named by its
 *   window's start, so a place given back after its window closed (and a new one opened)
 *   changes nothing. The one in process memory (createMemoryFailureCounter) is for a limiter
 *   without a store; its memory is bounded: each counter holds at most `maxKeys` keys (least
 *   recently used go first; closed windows count as absent). Evicting a username's counter
 *   needs many failures from many addresses, each of which is limited itself.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Store } from '../store/store.js';

/** One counted attempt in one key's window; handed back to `giveBack`. */
export interface CounterPlace {
  readonly key: string;
}

export type CounterTake =
  | { readonly taken: true; readonly place: CounterPlace }
  /** `firstRefusal`: the key's window refuses for the first time (the limit just tripped). */
  | { readonly taken: false; readonly retryAfterSeconds: number; readonly firstRefusal: boolean };

/**
 * Failure counts in fixed windows. Implementations must make `take` atomic: no two callers
 * may both see room for the last place.
 */
export interface FailureCounter {
  /** Refuses when the key's window holds `limit` places, else takes one. */
  take(key: string, limit: number): Promise<CounterTake>;
  /** Returns a place, unless its window has closed or was forgotten meanwhile. */
  giveBack(place: CounterPlace): Promise<void>;
  /** Forgets the key's window; with `place`, only when that place is still in it. */
  forget(key: string, place?: CounterPlace): Promise<void>;
}

export interface MemoryFailureCounterOptions {
  readonly windowSeconds: number;
  /** Most keys tracked. Default 10 000. */
  readonly maxKeys?: number;
  /** Wall clock in epoch milliseconds; Date.now by default. */
  readonly now?: () => number;
}

interface Window {
  readonly startMs: number;
  /** Failures plus attempts still being verified. */
  count: number;
  refused: boolean;
}

interface MemoryPlace extends CounterPlace {
  readonly window: Window;
}

const DEFAULT_MAX_KEYS = 10_000;
const UNKNOWN_ADDRESS = 'unknown';

/** A FailureCounter in this process's memory. */
export function createMemoryFailureCounter(options: MemoryFailureCounterOptions): FailureCounter {
  const { windowSeconds } = options;
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1) throw new TypeError('windowSeconds must be a positive whole number');
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new TypeError('maxKeys must be a positive whole number');
  const now = options.now ?? Date.now;
  const windowMs = windowSeconds * 1000;
  const windows = new LRUCache<string, Window>({ max: maxKeys });

  function current(key: string, at: number): Window | undefined {
    const window = windows.get(key);
    if (window === undefined) return undefined;
    if (at - window.startMs >= windowMs) {
      windows.delete(key);
      return undefined;
    }
    return window;
  }

  function takeNow(key: string, limit: number): CounterTake {
    const at = now();
    const window = current(key, at);
    if (window === undefined) {
      const opened: Window = { startMs: at, count: 1, refused: false };
      windows.set(key, opened);
      return { taken: true, place: { key, window: opened } as MemoryPlace };
    }
    if (window.count >= limit) {
      const firstRefusal = !window.refused;
      window.refused = true;
      return { taken: false, retryAfterSeconds: Math.max(1, Math.ceil((window.startMs + windowMs - at) / 1000)), firstRefusal };
    }
    window.count++;
    return { taken: true, place: { key, window } as MemoryPlace };
  }

  function isCurrent(place: CounterPlace): place is MemoryPlace {
    const { window } = place as Partial<MemoryPlace>;
    return window !== undefined && windows.peek(place.key) === window;
  }

  return {
    take: async (key, limit) => takeNow(key, limit),
    async giveBack(place) {
      if (isCurrent(place) && place.window.count > 0) place.window.count--;
    },
    async forget(key, place) {
      if (place === undefined || isCurrent(place)) windows.delete(key);
    },
  };
}

export interface StoreFailureCounterOptions {
  readonly store: Pick<Store, 'takeLoginFailure' | 'giveBackLoginFailure' | 'forgetLoginFailures'>;
  /** Which counter of the store (`username`, `address`, `password-change`). */
  readonly counter: string;
  readonly windowSeconds: number;
  /** Wall clock in epoch milliseconds; Date.now by default. */
  readonly now?: () => number;
}

interface StorePlace extends CounterPlace {
  /** The start of the window the place was taken in (epoch ms): the window's identity. */
  readonly windowStart: number;
}

/** A FailureCounter in the store, shared by every process on it. */
export function createStoreFailureCounter(options: StoreFailureCounterOptions): FailureCounter {
  const { store, counter, windowSeconds } = options;
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1) throw new TypeError('windowSeconds must be a positive whole number');
  const now = options.now ?? Date.now;
  const windowOf = (place: CounterPlace): number => (place as StorePlace).windowStart;
  return {
    async take(key, limit) {
      const take = await store.takeLoginFailure(counter, key, limit, windowSeconds, new Date(now()));
      if (!take.taken) return take;
      const place: StorePlace = { key, windowStart: take.windowStart };
      return { taken: true, place };
    },
    giveBack: (place) => store.giveBackLoginFailure(counter, place.key, windowOf(place)),
    forget: (key, place) => store.forgetLoginFailures(counter, key, place === undefined ? undefined : windowOf(place)),
  };
}

export interface LoginAttempt {
  /** The provider the login is for; usernames of different providers are different accounts. */
  readonly provider: string;
  readonly username: string;
  /** The client's address (see client-address.ts). */
  readonly address: string | undefined;
}

/** Which limit refused. */
export type LoginLimitKind = 'username' | 'address' | 'password-change';

/** A place taken in the counters by one attempt; settle it once the password was checked. */
export interface LoginReservation {
  /** Wrong username or password: the places stay taken until their windows close. */
  failed(): void;
  /** The password was right: the username's counter is forgotten, the address's place given back. */
  succeeded(): void;
  /** The attempt could not be decided (provider outage): the places are given back. */
  abandoned(): void;
}

export type LoginRateDecision =
  | { readonly allowed: true; readonly reservation: LoginReservation }
  | {
      readonly allowed: false;
      readonly retryAfterSeconds: number;
      readonly limit: LoginLimitKind;
      /** The limit tripped with this attempt: the first refusal of its window (worth a log line). */
      readonly tripped: boolean;
    };

/** What to forget: a username (at one provider) or a client address. */
export type LoginLimitReset =
  | { readonly provider: string; readonly username: string }
  | { readonly address: string };

export interface LoginRateLimiter {
  /**
   * Refuses when the username's or the address's counter is full, else takes a place in
   * both. Call before verifying the password, and settle the reservation afterwards.
   */
  reserve(attempt: LoginAttempt): Promise<LoginRateDecision>;
  /** As reserve, for checking the current password of the user `userId` before changing it. */
  reservePasswordChange(userId: string): Promise<LoginRateDecision>;
  /** Forgets the failures of a username or an address (an administrator's reset). */
  reset(what: LoginLimitReset): Promise<void>;
}

export interface LoginRateLimiterOptions {
  /** Failures per username (and per user for password changes) within a window. */
  readonly maxFailures: number;
  /** Failures per client address within a window. */
  readonly maxFailuresPerAddress: number;
  readonly windowSeconds: number;
  /** Most usernames and most addresses tracked (each). Default 10 000. */
  readonly maxKeys?: number;
  /** Wall clock in epoch milliseconds; Date.now by default. */
  readonly now?: () => number;
  /** The counters; default one in memory per kind. */
  readonly counters?: (kind: LoginLimitKind) => FailureCounter;
}

export function createLoginRateLimiter(options: LoginRateLimiterOptions): LoginRateLimiter {
  const { maxFailures, maxFailuresPerAddress, windowSeconds } = options;
  if (!Number.isSafeInteger(maxFailures) || maxFailures < 1) throw new TypeError('maxFailures must be a positive whole number');
  if (!Number.isSafeInteger(maxFailuresPerAddress) || maxFailuresPerAddress < 1) {
    throw new TypeError('maxFailuresPerAddress must be a positive whole number');
  }
  const counterFor =
    options.counters ??
    (() => createMemoryFailureCounter({ windowSeconds, ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }), ...(options.now === undefined ? {} : { now: options.now }) }));
  const byUsername = counterFor('username');
  const byAddress = counterFor('address');
  const byPasswordChange = counterFor('password-change');

  const refusal = (limit: LoginLimitKind, take: Extract<CounterTake, { taken: false }>): LoginRateDecision => ({
    allowed: false,
    retryAfterSeconds: take.retryAfterSeconds,
    limit,
    tripped: take.firstRefusal,
  });

  function reservation(onFailed: () => void, onSucceeded: () => Promise<void>, onAbandoned: () => Promise<void>): LoginReservation {
    let settled = false;
    const once = (settle: () => void | Promise<void>) => () => {
      if (settled) return;
      settled = true;
      // A shared counter that fails here leaves a place taken until its window closes: the
      // safe side, and nothing the caller could do better.
      Promise.resolve().then(settle).catch(() => undefined);
    };
    return { failed: once(onFailed), succeeded: once(onSucceeded), abandoned: once(onAbandoned) };
  }

  return {
    async reserve(attempt) {
      const user = usernameKey(attempt.provider, attempt.username);
      const userTake = await byUsername.take(user, maxFailures);
      if (!userTake.taken) return refusal('username', userTake);
      const addressTake = await byAddress.take(addressKey(attempt.address), maxFailuresPerAddress);
      if (!addressTake.taken) {
        await byUsername.giveBack(userTake.place);
        return refusal('address', addressTake);
      }
      return {
        allowed: true,
        reservation: reservation(
          () => undefined,
          async () => {
            await byUsername.forget(user, userTake.place);
            await byAddress.giveBack(addressTake.place);
          },
          async () => {
            await byUsername.giveBack(userTake.place);
            await byAddress.giveBack(addressTake.place);
          },
        ),
      };
    },
    async reservePasswordChange(userId) {
      const take = await byPasswordChange.take(userId, maxFailures);
      if (!take.taken) return refusal('password-change', take);
      return {
        allowed: true,
        reservation: reservation(
          () => undefined,
          () => byPasswordChange.forget(userId, take.place),
          () => byPasswordChange.giveBack(take.place),
        ),
      };
    },
    async reset(what) {
      if ('address' in what) await byAddress.forget(addressKey(what.address));
      else await byUsername.forget(usernameKey(what.provider, what.username));
    },
  };
}

/** A digest, so that a long username costs the same memory as a short one. */
function usernameKey(provider: string, username: string): string {
  return createHash('sha256').update(`${provider}\u0000${username.normalize('NFC').toLowerCase()}`).digest('base64');
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
