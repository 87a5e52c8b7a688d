import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressKey, createLoginRateLimiter } from '../../../src/proxy/login-rate-limit.js';
import type { LoginAttempt, LoginRateLimiter } from '../../../src/proxy/login-rate-limit.js';

function setUp(maxFailures = 3, windowSeconds = 60, maxKeys?: number) {
  const clock = { ms: 1_700_000_000_000 };
  const limiter = createLoginRateLimiter({ maxFailures, windowSeconds, now: () => clock.ms, ...(maxKeys === undefined ? {} : { maxKeys }) });
  return { clock, limiter };
}

const attempt = (username: string, address: string | undefined, provider = 'local'): LoginAttempt => ({ provider, username, address });

/** What an attempt would be told now, without leaving a trace in the counters. */
function probe(limiter: LoginRateLimiter, what: LoginAttempt): { allowed: true } | { allowed: false; retryAfterSeconds: number } {
  const decision = limiter.reserve(what);
  if (!decision.allowed) return decision;
  decision.reservation.abandoned();
  return { allowed: true };
}

/** A completed attempt with a wrong password. */
function fail(limiter: LoginRateLimiter, what: LoginAttempt): void {
  const decision = limiter.reserve(what);
  assert.ok(decision.allowed, `${what.username} from ${what.address} was refused`);
  decision.reservation.failed();
}

/** A completed attempt with the right password. */
function succeed(limiter: LoginRateLimiter, what: LoginAttempt): void {
  const decision = limiter.reserve(what);
  assert.ok(decision.allowed, `${what.username} from ${what.address} was refused`);
  decision.reservation.succeeded();
}

describe('createLoginRateLimiter', () => {
  it('blocks an address after maxFailures across different usernames, because that is password spraying', () => {
    const { limiter } = setUp();
    for (const username of ['a', 'b', 'c']) fail(limiter, attempt(username, '192.0.2.1'));
    assert.deepEqual(probe(limiter, attempt('d', '192.0.2.1')), { allowed: false, retryAfterSeconds: 60 });
    assert.deepEqual(probe(limiter, attempt('d', '192.0.2.2')), { allowed: true }, 'another address is not affected');
  });

  it('blocks a username after maxFailures from different addresses, because that is a distributed guess', () => {
    const { limiter } = setUp();
    for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) fail(limiter, attempt('alice', address));
    assert.equal(probe(limiter, attempt('alice', '192.0.2.9')).allowed, false);
    assert.equal(probe(limiter, attempt('alice', '192.0.2.9', 'corp-ldap')).allowed, true, 'the same name at another provider is another account');
  });

  it('opens again when the window has passed, and Retry-After counts down to it', () => {
    const { clock, limiter } = setUp(2, 60);
    fail(limiter, attempt('a', '192.0.2.1'));
    clock.ms += 10_000;
    fail(limiter, attempt('a', '192.0.2.1'));
    assert.deepEqual(probe(limiter, attempt('a', '192.0.2.1')), { allowed: false, retryAfterSeconds: 50 });
    clock.ms += 49_500;
    assert.deepEqual(probe(limiter, attempt('a', '192.0.2.1')), { allowed: false, retryAfterSeconds: 1 });
    clock.ms += 500;
    assert.deepEqual(probe(limiter, attempt('a', '192.0.2.1')), { allowed: true });
    fail(limiter, attempt('a', '192.0.2.1'));
    assert.deepEqual(probe(limiter, attempt('a', '192.0.2.1')), { allowed: true }, 'a new window starts with one failure');
  });

  it('forgets the username on success but keeps the address, so a valid account cannot reset an attacker budget', () => {
    const { limiter } = setUp(3);
    fail(limiter, attempt('mallory', '192.0.2.1'));
    fail(limiter, attempt('mallory', '192.0.2.2'));
    fail(limiter, attempt('victim', '192.0.2.1'));
    fail(limiter, attempt('other', '192.0.2.1'));
    succeed(limiter, attempt('mallory', '192.0.2.5'));
    assert.equal(probe(limiter, attempt('x', '192.0.2.1')).allowed, false, 'the address keeps its failures');
    fail(limiter, attempt('mallory', '192.0.2.6'));
    fail(limiter, attempt('mallory', '192.0.2.7'));
    assert.equal(probe(limiter, attempt('mallory', '192.0.2.8')).allowed, true, 'the username started over');
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address, and IPv6 addresses per /64', () => {
    const { limiter } = setUp(2);
    fail(limiter, attempt('a', '::ffff:192.0.2.1'));
    fail(limiter, attempt('b', '192.0.2.1'));
    assert.equal(probe(limiter, attempt('c', '192.0.2.1')).allowed, false);
    fail(limiter, attempt('a', '2001:db8:1:2::1'));
    fail(limiter, attempt('b', '2001:db8:1:2:ffff:ffff:ffff:ffff'));
    assert.equal(probe(limiter, attempt('c', '2001:db8:1:2::abcd')).allowed, false);
    assert.equal(probe(limiter, attempt('c', '2001:db8:1:3::1')).allowed, true);
  });

  it('keeps at most maxKeys entries per counter, so that memory stays bounded whatever clients send', () => {
    const { limiter } = setUp(1, 60, 100);
    fail(limiter, attempt('first', '198.51.100.1'));
    assert.equal(probe(limiter, attempt('first', '198.51.100.200')).allowed, false);
    for (let i = 0; i < 100; i++) fail(limiter, attempt(`user-${i}`, `203.0.113.${i}`));
    assert.equal(probe(limiter, attempt('first', '198.51.100.200')).allowed, true, 'the oldest username entry was evicted');
  });

  it('counts attempts still being verified, so a concurrent burst gets exactly maxFailures verifications (issue #16)', () => {
    const { limiter } = setUp(3);
    const inFlight = Array.from({ length: 3 }, (_, i) => limiter.reserve(attempt('victim', `192.0.2.${i}`)));
    assert.ok(inFlight.every((decision) => decision.allowed));
    assert.equal(limiter.reserve(attempt('victim', '192.0.2.9')).allowed, false, 'a fourth guess waits for none of them to finish');
  });

  it('gives the places back when an attempt could not be decided, so a provider outage locks nobody out', () => {
    const { limiter } = setUp(2);
    for (let i = 0; i < 5; i++) {
      const decision = limiter.reserve(attempt('alice', '192.0.2.1'));
      assert.ok(decision.allowed, `attempt ${i}`);
      decision.reservation.abandoned();
    }
    fail(limiter, attempt('alice', '192.0.2.1'));
    assert.equal(probe(limiter, attempt('alice', '192.0.2.1')).allowed, true);
  });

  it('gives the address place back on success, and settles a reservation once only', () => {
    const { limiter } = setUp(2);
    fail(limiter, attempt('mallory', '192.0.2.1'));
    const decision = limiter.reserve(attempt('alice', '192.0.2.1'));
    assert.ok(decision.allowed);
    decision.reservation.succeeded();
    decision.reservation.abandoned();
    decision.reservation.succeeded();
    assert.equal(probe(limiter, attempt('bob', '192.0.2.1')).allowed, true, 'one failure and no place held');
    fail(limiter, attempt('bob', '192.0.2.1'));
    assert.equal(probe(limiter, attempt('carol', '192.0.2.1')).allowed, false);
  });

  it('does not give a place back into a window opened after the reservation was made', () => {
    const { clock, limiter } = setUp(1, 60);
    const old = limiter.reserve(attempt('alice', '192.0.2.1'));
    assert.ok(old.allowed);
    clock.ms += 60_000;
    fail(limiter, attempt('alice', '192.0.2.1'));
    old.reservation.abandoned();
    assert.equal(probe(limiter, attempt('alice', '192.0.2.1')).allowed, false);
  });

  it('refuses nonsensical options as programming errors', () => {
    assert.throws(() => createLoginRateLimiter({ maxFailures: 0, windowSeconds: 60 }), TypeError);
    assert.throws(() => createLoginRateLimiter({ maxFailures: 1, windowSeconds: 1.5 }), TypeError);
  });
});

describe('addressKey', () => {
  it('normalises addresses for counting', () => {
    assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('2001:DB8:0:0:1::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
    assert.equal(addressKey(undefined), 'unknown');
  });
});
