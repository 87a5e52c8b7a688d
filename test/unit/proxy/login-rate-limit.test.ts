import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressKey, createLoginRateLimiter } from '../../../src/proxy/login-rate-limit.js';
import type { LoginAttempt } from '../../../src/proxy/login-rate-limit.js';

function setUp(maxFailures = 3, windowSeconds = 60, maxKeys?: number) {
  const clock = { ms: 1_700_000_000_000 };
  const limiter = createLoginRateLimiter({ maxFailures, windowSeconds, now: () => clock.ms, ...(maxKeys === undefined ? {} : { maxKeys }) });
  return { clock, limiter };
}

const attempt = (username: string, address: string | undefined, provider = 'local'): LoginAttempt => ({ provider, username, address });

describe('createLoginRateLimiter', () => {
  it('blocks an address after maxFailures across different usernames, because that is password spraying', () => {
    const { limiter } = setUp();
    for (const username of ['a', 'b', 'c']) {
      assert.deepEqual(limiter.check(attempt(username, '192.0.2.1')), { allowed: true });
      limiter.recordFailure(attempt(username, '192.0.2.1'));
    }
    assert.deepEqual(limiter.check(attempt('d', '192.0.2.1')), { allowed: false, retryAfterSeconds: 60 });
    assert.deepEqual(limiter.check(attempt('d', '192.0.2.2')), { allowed: true }, 'another address is not affected');
  });

  it('blocks a username after maxFailures from different addresses, because that is a distributed guess', () => {
    const { limiter } = setUp();
    for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) limiter.recordFailure(attempt('alice', address));
    assert.equal(limiter.check(attempt('alice', '192.0.2.9')).allowed, false);
    assert.equal(limiter.check(attempt('alice', '192.0.2.9', 'corp-ldap')).allowed, true, 'the same name at another provider is another account');
  });

  it('opens again when the window has passed, and Retry-After counts down to it', () => {
    const { clock, limiter } = setUp(2, 60);
    limiter.recordFailure(attempt('a', '192.0.2.1'));
    clock.ms += 10_000;
    limiter.recordFailure(attempt('a', '192.0.2.1'));
    assert.deepEqual(limiter.check(attempt('a', '192.0.2.1')), { allowed: false, retryAfterSeconds: 50 });
    clock.ms += 49_500;
    assert.deepEqual(limiter.check(attempt('a', '192.0.2.1')), { allowed: false, retryAfterSeconds: 1 });
    clock.ms += 500;
    assert.deepEqual(limiter.check(attempt('a', '192.0.2.1')), { allowed: true });
    limiter.recordFailure(attempt('a', '192.0.2.1'));
    assert.deepEqual(limiter.check(attempt('a', '192.0.2.1')), { allowed: true }, 'a new window starts with one failure');
  });

  it('forgets the username on success but keeps the address, so a valid account cannot reset an attacker budget', () => {
    const { limiter } = setUp(2);
    limiter.recordFailure(attempt('mallory', '192.0.2.1'));
    limiter.recordFailure(attempt('victim', '192.0.2.1'));
    assert.equal(limiter.check(attempt('x', '192.0.2.1')).allowed, false);
    limiter.recordSuccess(attempt('mallory', '192.0.2.1'));
    assert.equal(limiter.check(attempt('x', '192.0.2.1')).allowed, false);
    assert.equal(limiter.check(attempt('mallory', '192.0.2.7')).allowed, true);
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address, and IPv6 addresses per /64', () => {
    const { limiter } = setUp(2);
    limiter.recordFailure(attempt('a', '::ffff:192.0.2.1'));
    limiter.recordFailure(attempt('b', '192.0.2.1'));
    assert.equal(limiter.check(attempt('c', '192.0.2.1')).allowed, false);
    limiter.recordFailure(attempt('a', '2001:db8:1:2::1'));
    limiter.recordFailure(attempt('b', '2001:db8:1:2:ffff:ffff:ffff:ffff'));
    assert.equal(limiter.check(attempt('c', '2001:db8:1:2::abcd')).allowed, false);
    assert.equal(limiter.check(attempt('c', '2001:db8:1:3::1')).allowed, true);
  });

  it('keeps at most maxKeys entries per counter, so that memory stays bounded whatever clients send', () => {
    const { limiter } = setUp(1, 60, 100);
    limiter.recordFailure(attempt('first', '198.51.100.1'));
    assert.equal(limiter.check(attempt('first', '198.51.100.200')).allowed, false);
    for (let i = 0; i < 100; i++) limiter.recordFailure(attempt(`user-${i}`, `203.0.113.${i}`));
    assert.equal(limiter.check(attempt('first', '198.51.100.200')).allowed, true, 'the oldest username entry was evicted');
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
