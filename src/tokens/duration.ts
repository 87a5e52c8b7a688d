/**
 * Token lifetimes as people write them: `30d`, `24h`, `90m`, `45s`, combinations in
 * descending unit order (`1d12h`, `1h30m`), or whole seconds (`3600`, as a string or a
 * number). Zero is not a lifetime and is refused, as are negative and fractional values,
 * upper-case units, whitespace, repeated or out-of-order units, and anything above ten years.
 * Input is checked for length before any pattern runs; error messages quote at most 32
 * characters of it.
 */
import { KubegateError } from '../errors.js';

/** The longest duration accepted at all (ten 365-day years); TTL maxima are usually lower. */
export const MAX_DURATION_SECONDS = 10 * 365 * 86_400;

const MAX_INPUT_LENGTH = 64;
const QUOTE_LENGTH = 32;
const WHOLE_SECONDS = /^[0-9]{1,12}$/;
const UNITS = /^(?:([0-9]{1,10})d)?(?:([0-9]{1,10})h)?(?:([0-9]{1,10})m)?(?:([0-9]{1,10})s)?$/;
const UNIT_SECONDS = [86_400, 3_600, 60, 1] as const;
const EXPECTED = 'expected a duration such as 30d, 24h, 90m, 45s, 1h30m or whole seconds';

function quote(input: string): string {
  return JSON.stringify(input.length > QUOTE_LENGTH ? `${input.slice(0, QUOTE_LENGTH)}…` : input);
}

function invalid(message: string): KubegateError {
  return new KubegateError('DURATION_INVALID', message);
}

function checkRange(seconds: number, shown: string): number {
  if (seconds === 0) throw invalid(`duration ${shown} is zero; a lifetime must be positive`);
  if (seconds > MAX_DURATION_SECONDS) throw invalid(`duration ${shown} is longer than ten years`);
  return seconds;
}

/** `"1h30m"` → 5400. Throws DURATION_INVALID for anything else than a positive duration. */
export function parseDurationSeconds(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw invalid(`duration ${String(input)} is not a whole, non-negative number of seconds`);
    }
    return checkRange(input, String(input));
  }
  if (typeof input !== 'string') throw new TypeError('a duration must be a string or a number');
  if (input.length === 0) throw invalid(`the duration is empty; ${EXPECTED}`);
  if (input.length > MAX_INPUT_LENGTH) throw invalid(`the duration is longer than ${MAX_INPUT_LENGTH} characters; ${EXPECTED}`);
  if (WHOLE_SECONDS.test(input)) return checkRange(Number(input), quote(input));
  const units = UNITS.exec(input);
  if (units === null) throw invalid(`duration ${quote(input)} is not understood; ${EXPECTED}`);
  let seconds = 0;
  for (let i = 0; i < UNIT_SECONDS.length; i++) {
    const amount = units[i + 1];
    if (amount !== undefined) seconds += Number(amount) * UNIT_SECONDS[i]!;
  }
  return checkRange(seconds, quote(input));
}

/** 5400 → `"1h30m"`; 0 → `"0s"`. The inverse of parseDurationSeconds for positive values. */
export function formatDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new TypeError('formatDuration expects a whole, non-negative number of seconds');
  }
  if (seconds === 0) return '0s';
  let rest = seconds;
  let text = '';
  for (const [unitSeconds, unit] of [[86_400, 'd'], [3_600, 'h'], [60, 'm'], [1, 's']] as const) {
    const amount = Math.floor(rest / unitSeconds);
    if (amount > 0) text += `${amount}${unit}`;
    rest -= amount * unitSeconds;
  }
  return text;
}
