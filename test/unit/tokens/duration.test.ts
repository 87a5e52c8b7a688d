import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isKubegateError } from '../../../src/errors.js';
import { MAX_DURATION_SECONDS, formatDuration, parseDurationSeconds } from '../../../src/tokens/duration.js';

function assertInvalid(input: string | number, messagePart?: RegExp): void {
  assert.throws(
    () => parseDurationSeconds(input),
    (error: unknown) => {
      assert.ok(isKubegateError(error, 'DURATION_INVALID'), `${JSON.stringify(input)}: ${String(error)}`);
      if (messagePart) assert.match(error.message, messagePart);
      return true;
    },
  );
}

describe('parseDurationSeconds', () => {
  it('reads days, hours, minutes and seconds', () => {
    assert.equal(parseDurationSeconds('30d'), 30 * 86_400);
    assert.equal(parseDurationSeconds('24h'), 86_400);
    assert.equal(parseDurationSeconds('90m'), 5_400);
    assert.equal(parseDurationSeconds('45s'), 45);
  });

  it('reads combinations in descending unit order', () => {
    assert.equal(parseDurationSeconds('1h30m'), 5_400);
    assert.equal(parseDurationSeconds('1d2h3m4s'), 86_400 + 7_200 + 180 + 4);
    assert.equal(parseDurationSeconds('1h0m'), 3_600);
  });

  it('reads whole seconds given as a number or a digit string', () => {
    assert.equal(parseDurationSeconds(3600), 3600);
    assert.equal(parseDurationSeconds('3600'), 3600);
  });

  it('refuses zero, because a token lifetime of zero is not a lifetime', () => {
    for (const input of [0, '0', '0s', '0d0h', '000']) assertInvalid(input, /zero/);
  });

  it('refuses the empty string', () => {
    assertInvalid('', /empty/);
  });

  it('refuses negative, fractional and non-finite numbers', () => {
    for (const input of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) assertInvalid(input);
  });

  it('refuses junk: signs, fractions, spaces, upper case, unknown, repeated or out-of-order units', () => {
    for (const input of ['-1h', '+1h', '1.5h', '1e3', ' 1h', '1h ', '1 h', '1H', '1w', '1y', '1ms', 'h', 'd1', '1h1h', '30m1h', '1s1m', '1h30', '0x10', '١٢', '1h\n']) {
      assertInvalid(input, /not understood/);
    }
  });

  it('refuses more than ten years, so a typo cannot mint a practically eternal token', () => {
    assert.equal(parseDurationSeconds(`${MAX_DURATION_SECONDS}`), MAX_DURATION_SECONDS);
    assertInvalid(MAX_DURATION_SECONDS + 1, /ten years/);
    assertInvalid('3651d', /ten years/);
    assertInvalid('9999999999d', /ten years/);
    assertInvalid('999999999999', /ten years/);
  });

  it('refuses hostile long input without echoing it, and quotes at most 32 characters of shorter junk', () => {
    assertInvalid('1'.repeat(100_000), /longer than 64/);
    assert.throws(
      () => parseDurationSeconds(`x${'y'.repeat(60)}`),
      (error: unknown) => isKubegateError(error, 'DURATION_INVALID') && error.message.includes(`"x${'y'.repeat(31)}…"`) && !error.message.includes('y'.repeat(32)),
    );
  });

  it('escapes control characters it quotes, so an error message cannot forge log lines', () => {
    assert.throws(
      () => parseDurationSeconds('1h\nlevel=error'),
      (error: unknown) => isKubegateError(error, 'DURATION_INVALID') && !error.message.includes('\n') && error.message.includes('\\n'),
    );
  });

  it('never throws anything but DURATION_INVALID on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80, unit: 'binary' }), (input) => {
        try {
          const seconds = parseDurationSeconds(input);
          assert.ok(Number.isSafeInteger(seconds) && seconds > 0 && seconds <= MAX_DURATION_SECONDS);
        } catch (error) {
          assert.ok(isKubegateError(error, 'DURATION_INVALID'));
        }
      }),
    );
  });

  it('treats an argument of another type as a programming error', () => {
    assert.throws(() => parseDurationSeconds(null as unknown as string), TypeError);
  });
});

describe('formatDuration', () => {
  it('writes the largest units first and skips zero units', () => {
    assert.equal(formatDuration(5_400), '1h30m');
    assert.equal(formatDuration(90 * 86_400), '90d');
    assert.equal(formatDuration(86_400 + 1), '1d1s');
    assert.equal(formatDuration(0), '0s');
  });

  it('round-trips through parseDurationSeconds for every valid duration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_DURATION_SECONDS }), (seconds) => {
        assert.equal(parseDurationSeconds(formatDuration(seconds)), seconds);
      }),
    );
  });

  it('treats negative or fractional seconds as a programming error', () => {
    assert.throws(() => formatDuration(-1), TypeError);
    assert.throws(() => formatDuration(1.5), TypeError);
  });
});
