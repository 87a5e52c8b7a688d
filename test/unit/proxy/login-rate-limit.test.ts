import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressKey, createLoginRateLimiter, createMemoryFailureCounter } from '../../../src/proxy/login-rate-limit.js';
import type { FailureCounter, LoginAttempt, LoginLimitKind, LoginRateLimiter } from '../../../src/proxy/login-rate-limit.js';

function setUp(maxFailures = 3, windowSeconds = 60, options: { maxKeys?: number; maxFailuresPerAddress?: number } = {}) {
  const clock = { ms: 1_700_000_000_000 };
  const limiter = createLoginRateLimiter({
    maxFailures,
    maxFailuresPerAddress: options.maxFailuresPerAddress ?? maxFailures,
    windowSeconds,
    now: () => clock.ms,
    ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
  });
  return { clock, limiter };
}

const attempt = (username: string, address: string | undefined, provider = 'local'): LoginAttempt => ({ provider, username, address });

/** What an attempt would be told now, without leaving a trace in the counters. */
async function probe(limiter: LoginRateLimiter, what: LoginAttempt): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> {
  const decision = await limiter.reserve(what);
  if (!decision.allowed) return { allowed: false, retryAfterSeconds: decision.retryAfterSeconds };
  decision.reservation.abandoned();
  await settled();
  return { allowed: true };
}

/** Settling a reservation gives places back asynchronously (a shared counter would do I/O). */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A completed attempt with a wrong password. */
async function fail(limiter: LoginRateLimiter, what: LoginAttempt): Promise<void> {
  const decision = await limiter.reserve(what);
  assert.ok(decision.allowed, `${what.username} from ${what.address} was refused`);
  decision.reservation.failed();
}

/** A completed attempt with the right password. */
async function succeed(limiter: LoginRateLimiter, what: LoginAttempt): Promise<void> {
  const decision = await limiter.reserve(what);
  assert.ok(decision.allowed, `${what.username} from ${what.address} was refused`);
  decision.reservation.succeeded();
  await settled();
}

describe('createLoginRateLimiter', () => {
  it('blocks an address after maxFailuresPerAddress across different usernames, because that is password spraying', async () => {
    const { limiter } = setUp(3, 60, { maxFailuresPerAddress: 4 });
    for (const username of ['a', 'b', 'c', 'd']) await fail(limiter, attempt(username, '192.0.2.1'));
    const refused = await limiter.reserve(attempt('e', '192.0.2.1'));
    assert.deepEqual(refused, { allowed: false, retryAfterSeconds: 60, limit: 'address', tripped: true });
    assert.deepEqual(await probe(limiter, attempt('e', '192.0.2.2')), { allowed: true }, 'another address is not affected');
  });

  it('blocks a username after maxFailures from different addresses, because that is a distributed guess', async () => {
    const { limiter } = setUp(3, 60, { maxFailuresPerAddress: 100 });
    for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) await fail(limiter, attempt('alice', address));
    const refused = await limiter.reserve(attempt('alice', '192.0.2.9'));
    assert.deepEqual(refused, { allowed: false, retryAfterSeconds: 60, limit: 'username', tripped: true });
    assert.equal((await probe(limiter, attempt('alice', '192.0.2.9', 'corp-ldap'))).allowed, true, 'the same name at another provider is another account');
  });

  it('says the limit tripped on the first refusal of a window only, so it is logged once', async () => {
    const { clock, limiter } = setUp(1, 60);
    await fail(limiter, attempt('a', '192.0.2.1'));
    const first = await limiter.reserve(attempt('a', '192.0.2.1'));
    const second = await limiter.reserve(attempt('a', '192.0.2.1'));
    assert.ok(!first.allowed && first.tripped);
    assert.ok(!second.allowed && !second.tripped);
    clock.ms += 60_000;
    await fail(limiter, attempt('a', '192.0.2.1'));
    const nextWindow = await limiter.reserve(attempt('a', '192.0.2.1'));
    assert.ok(!nextWindow.allowed && nextWindow.tripped);
  });

  it('does not count a username refused by its own limit against the address', async () => {
    const { limiter } = setUp(1, 60, { maxFailuresPerAddress: 2 });
    await fail(limiter, attempt('a', '192.0.2.1'));
    for (let i = 0; i < 5; i++) assert.equal((await probe(limiter, attempt('a', '192.0.2.1'))).allowed, false);
    await fail(limiter, attempt('b', '192.0.2.1'));
    assert.equal((await probe(limiter, attempt('c', '192.0.2.1'))).allowed, false);
  });

  it('gives the username place back when the address refuses, so a sprayed address does not fill a victim account', async () => {
    const { limiter } = setUp(1, 60, { maxFailuresPerAddress: 1 });
    await fail(limiter, attempt('mallory', '192.0.2.1'));
    for (let i = 0; i < 3; i++) assert.equal((await probe(limiter, attempt('victim', '192.0.2.1'))).allowed, false);
    assert.equal((await probe(limiter, attempt('victim', '192.0.2.2'))).allowed, true);
  });

  it('opens again when the window has passed, and Retry-After counts down to it', async () => {
    const { clock, limiter } = setUp(2, 60);
    await fail(limiter, attempt('a', '192.0.2.1'));
    clock.ms += 10_000;
    await fail(limiter, attempt('a', '192.0.2.1'));
    assert.deepEqual(await probe(limiter, attempt('a', '192.0.2.1')), { allowed: false, retryAfterSeconds: 50 });
    clock.ms += 49_500;
    assert.deepEqual(await probe(limiter, attempt('a', '192.0.2.1')), { allowed: false, retryAfterSeconds: 1 });
    clock.ms += 500;
    assert.deepEqual(await probe(limiter, attempt('a', '192.0.2.1')), { allowed: true });
    await fail(limiter, attempt('a', '192.0.2.1'));
    assert.deepEqual(await probe(limiter, attempt('a', '192.0.2.1')), { allowed: true }, 'a new window starts with one failure');
  });

  it('forgets the username on success but keeps the address, so a valid account cannot reset an attacker budget', async () => {
    const { limiter } = setUp(3);
    await fail(limiter, attempt('mallory', '192.0.2.1'));
    await fail(limiter, attempt('mallory', '192.0.2.2'));
    await fail(limiter, attempt('victim', '192.0.2.1'));
    await fail(limiter, attempt('other', '192.0.2.1'));
    await succeed(limiter, attempt('mallory', '192.0.2.5'));
    assert.equal((await probe(limiter, attempt('x', '192.0.2.1'))).allowed, false, 'the address keeps its failures');
    await fail(limiter, attempt('mallory', '192.0.2.6'));
    await fail(limiter, attempt('mallory', '192.0.2.7'));
    assert.equal((await probe(limiter, attempt('mallory', '192.0.2.8'))).allowed, true, 'the username started over');
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address, and IPv6 addresses per /64', async () => {
    const { limiter } = setUp(2);
    await fail(limiter, attempt('a', '::ffff:192.0.2.1'));
    await fail(limiter, attempt('b', '192.0.2.1'));
    assert.equal((await probe(limiter, attempt('c', '192.0.2.1'))).allowed, false);
    await fail(limiter, attempt('a', '2001:db8:1:2::1'));
    await fail(limiter, attempt('b', '2001:db8:1:2:ffff:ffff:ffff:ffff'));
    assert.equal((await probe(limiter, attempt('c', '2001:db8:1:2::abcd'))).allowed, false);
    assert.equal((await probe(limiter, attempt('c', '2001:db8:1:3::1'))).allowed, true);
  });

  it('keeps at most maxKeys entries per counter, so that memory stays bounded whatever clients send', async () => {
    const { limiter } = setUp(1, 60, { maxKeys: 100, maxFailuresPerAddress: 1000 });
    await fail(limiter, attempt('first', '198.51.100.1'));
    assert.equal((await probe(limiter, attempt('first', '198.51.100.200'))).allowed, false);
    for (let i = 0; i < 100; i++) await fail(limiter, attempt(`user-${i}`, `203.0.113.${i}`));
    assert.equal((await probe(limiter, attempt('first', '198.51.100.200'))).allowed, true, 'the oldest username entry was evicted');
  });

  it('counts attempts still being verified, so a concurrent burst gets exactly maxFailures verifications (issue #16)', async () => {
    const { limiter } = setUp(3, 60, { maxFailuresPerAddress: 100 });
    const inFlight = await Promise.all(Array.from({ length: 10 }, (_, i) => limiter.reserve(attempt('victim', `192.0.2.${i}`))));
    assert.equal(inFlight.filter((decision) => decision.allowed).length, 3);
  });

  it('gives the places back when an attempt could not be decided, so a provider outage locks nobody out', async () => {
    const { limiter } = setUp(2);
    for (let i = 0; i < 5; i++) {
      const decision = await limiter.reserve(attempt('alice', '192.0.2.1'));
      assert.ok(decision.allowed, `attempt ${i}`);
      decision.reservation.abandoned();
      await settled();
    }
    await fail(limiter, attempt('alice', '192.0.2.1'));
    assert.equal((await probe(limiter, attempt('alice', '192.0.2.1'))).allowed, true);
  });

  it('gives the address place back on success, and settles a reservation once only', async () => {
    const { limiter } = setUp(2);
    await fail(limiter, attempt('mallory', '192.0.2.1'));
    const decision = await limiter.reserve(attempt('alice', '192.0.2.1'));
    assert.ok(decision.allowed);
    decision.reservation.succeeded();
    decision.reservation.abandoned();
    decision.reservation.succeeded();
    await settled();
    assert.equal((await probe(limiter, attempt('bob', '192.0.2.1'))).allowed, true, 'one failure and no place held');
    await fail(limiter, attempt('bob', '192.0.2.1'));
    assert.equal((await probe(limiter, attempt('carol', '192.0.2.1'))).allowed, false);
  });

  it('does not give a place back into a window opened after the reservation was made', async () => {
    const { clock, limiter } = setUp(1, 60);
    const old = await limiter.reserve(attempt('alice', '192.0.2.1'));
    assert.ok(old.allowed);
    clock.ms += 60_000;
    await fail(limiter, attempt('alice', '192.0.2.1'));
    old.reservation.abandoned();
    await settled();
    assert.equal((await probe(limiter, attempt('alice', '192.0.2.1'))).allowed, false);
  });

  it('limits password changes per user ID, apart from the login counters that anyone can fill', async () => {
    const { limiter } = setUp(2, 60);
    for (let i = 0; i < 2; i++) await fail(limiter, attempt('admin', '192.0.2.1'));
    assert.equal((await probe(limiter, attempt('admin', '192.0.2.1'))).allowed, false);
    for (let i = 0; i < 2; i++) {
      const decision = await limiter.reservePasswordChange('u-admin0000000');
      assert.ok(decision.allowed);
      decision.reservation.failed();
    }
    const refused = await limiter.reservePasswordChange('u-admin0000000');
    assert.ok(!refused.allowed && refused.limit === 'password-change');
    assert.equal((await limiter.reservePasswordChange('u-other0000000')).allowed, true);
  });

  it('resets a username (case-insensitively, at one provider) or an address on request', async () => {
    const { limiter } = setUp(1, 60, { maxFailuresPerAddress: 2 });
    await fail(limiter, attempt('Alice', '192.0.2.1'));
    await fail(limiter, attempt('bob', '192.0.2.1'));
    await limiter.reset({ provider: 'corp', username: 'alice' });
    assert.equal((await probe(limiter, attempt('alice', '192.0.2.7'))).allowed, false, 'another provider was reset');
    await limiter.reset({ provider: 'local', username: 'ALICE' });
    assert.equal((await probe(limiter, attempt('alice', '192.0.2.7'))).allowed, true);
    assert.equal((await probe(limiter, attempt('carol', '::ffff:192.0.2.1'))).allowed, false);
    await limiter.reset({ address: '::ffff:192.0.2.1' });
    assert.equal((await probe(limiter, attempt('carol', '192.0.2.1'))).allowed, true);
  });

  it('takes its counters from the caller, so that a counter shared by replicas can be plugged in', async () => {
    const asked: LoginLimitKind[] = [];
    const taken: string[] = [];
    const limiter = createLoginRateLimiter({
      maxFailures: 1,
      maxFailuresPerAddress: 1,
      windowSeconds: 60,
      counters: (kind): FailureCounter => {
        asked.push(kind);
        const memory = createMemoryFailureCounter({ windowSeconds: 60 });
        return { ...memory, take: (key, limit) => (taken.push(kind), memory.take(key, limit)) };
      },
    });
    await fail(limiter, attempt('a', '192.0.2.1'));
    assert.deepEqual(asked, ['username', 'address', 'password-change']);
    assert.deepEqual(taken, ['username', 'address']);
  });

  it('refuses nonsensical options as programming errors', () => {
    assert.throws(() => createLoginRateLimiter({ maxFailures: 0, maxFailuresPerAddress: 1, windowSeconds: 60 }), TypeError);
    assert.throws(() => createLoginRateLimiter({ maxFailures: 1, maxFailuresPerAddress: 0, windowSeconds: 60 }), TypeError);
    assert.throws(() => createLoginRateLimiter({ maxFailures: 1, maxFailuresPerAddress: 1, windowSeconds: 1.5 }), TypeError);
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
