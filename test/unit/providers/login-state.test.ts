import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import * as z from 'zod';
import { ExpiringCache, createLoginStateSealer, createUsedLoginStates, deriveLoginStateKey } from '../../../src/providers/login-state.js';
import { createProxyApp } from '../../../src/proxy/app.js';
import { startHarness } from '../proxy/api/harness.js';

const payload = z.strictObject({ n: z.string(), t: z.number() });

function sealerAt(key: Buffer, clock: { ms: number }) {
  return createLoginStateSealer({ key, now: () => clock.ms });
}

describe('sealed login state', () => {
  const secretKey = randomBytes(32);

  it('opens in another sealer built from the same secret key, because any worker or replica may receive the callback', () => {
    const clock = { ms: 1_000_000 };
    const sealed = sealerAt(deriveLoginStateKey(secretKey), clock).seal('state', 'github', { n: 'nonce', t: 60 }, 10_000);
    assert.match(sealed, /^[A-Za-z0-9_-]+$/);
    const opened = sealerAt(deriveLoginStateKey(Buffer.from(secretKey)), clock).open('state', 'github', sealed, payload);
    assert.deepEqual(opened?.payload, { n: 'nonce', t: 60 });
    assert.equal(opened?.expiresAtMs, 1_010_000);
    assert.match(opened?.id ?? '', /^[A-Za-z0-9_-]{16}$/);
  });

  it('keeps the payload secret, because the state carries the PKCE verifier', () => {
    const sealed = sealerAt(deriveLoginStateKey(secretKey), { ms: 0 }).seal('state', 'github', { n: 'very-secret-verifier', t: 1 }, 1000);
    assert.ok(!Buffer.from(sealed, 'base64url').toString('latin1').includes('very-secret-verifier'));
  });

  it('refuses a value sealed under another secret key, because only replicas sharing the key may complete logins', () => {
    const clock = { ms: 0 };
    const sealed = sealerAt(deriveLoginStateKey(secretKey), clock).seal('state', 'github', { n: 'x', t: 1 }, 1000);
    assert.equal(sealerAt(deriveLoginStateKey(randomBytes(32)), clock).open('state', 'github', sealed, payload), undefined);
  });

  it('refuses every single-character change and any appended character, because the value is authenticated and canonically encoded', () => {
    const clock = { ms: 0 };
    const sealer = sealerAt(deriveLoginStateKey(secretKey), clock);
    const sealed = sealer.seal('state', 'github', { n: 'x', t: 1 }, 1000);
    for (let i = 0; i < sealed.length; i += 1) {
      const replacement = sealed[i] === 'A' ? 'B' : 'A';
      const tampered = `${sealed.slice(0, i)}${replacement}${sealed.slice(i + 1)}`;
      assert.equal(sealer.open('state', 'github', tampered, payload), undefined, `position ${i}`);
    }
    for (const suffix of ['x', 'A', '=', 'AA']) assert.equal(sealer.open('state', 'github', `${sealed}${suffix}`, payload), undefined, suffix);
    assert.equal(sealer.open('state', 'github', sealed.slice(0, -1), payload), undefined);
  });

  it('refuses an expired value, because an abandoned login must not be completable later', () => {
    const clock = { ms: 5000 };
    const sealer = sealerAt(deriveLoginStateKey(secretKey), clock);
    const sealed = sealer.seal('exchange', 'github', { n: 'x', t: 1 }, 1000);
    clock.ms = 5999;
    assert.notEqual(sealer.open('exchange', 'github', sealed, payload), undefined);
    clock.ms = 6000;
    assert.equal(sealer.open('exchange', 'github', sealed, payload), undefined);
  });

  it('refuses a value for another provider or another purpose, because they are authenticated data', () => {
    const sealer = sealerAt(deriveLoginStateKey(secretKey), { ms: 0 });
    const sealed = sealer.seal('state', 'github', { n: 'x', t: 1 }, 1000);
    assert.equal(sealer.open('state', 'corp-oidc', sealed, payload), undefined);
    assert.equal(sealer.open('exchange', 'github', sealed, payload), undefined);
    assert.equal(sealer.open('device', 'github', sealed, payload), undefined);
  });

  it('answers nothing for garbage, never an exception, because the value comes from the network', () => {
    const sealer = sealerAt(deriveLoginStateKey(secretKey), { ms: 0 });
    for (const input of [undefined, 42, ['a'], '', 'made-up', '!!!', 'A'.repeat(7000), Buffer.alloc(40).toString('base64url')]) {
      assert.equal(sealer.open('state', 'github', input, payload), undefined);
    }
  });

  it('refuses a payload of the wrong shape even with a good seal, because each purpose has its own schema', () => {
    const sealer = sealerAt(deriveLoginStateKey(secretKey), { ms: 0 });
    const sealed = sealer.seal('state', 'github', { other: true }, 1000);
    assert.equal(sealer.open('state', 'github', sealed, payload), undefined);
  });

  it('derives a key that is not the secret key itself, because the at-rest key must not encrypt values clients hold', () => {
    const derived = deriveLoginStateKey(secretKey);
    assert.equal(derived.length, 32);
    assert.notDeepEqual(derived, secretKey);
    assert.deepEqual(deriveLoginStateKey(secretKey), derived);
  });
});

describe('used login states (per process)', () => {
  it('accepts an ID once until it expires, because a replay on the same process must fail', () => {
    let now = 1_700_000_000_000;
    const used = createUsedLoginStates({ maxEntries: 10, now: () => now });
    assert.equal(used.markUsed('a', now + 1000), true);
    assert.equal(used.markUsed('a', now + 1000), false);
    assert.equal(used.isUsed('a'), true);
    now += 1001;
    assert.equal(used.isUsed('a'), false, 'the sealed value itself has expired by then');
    assert.equal(used.markUsed('a', now + 1000), true);
  });

  it('drops the least recently used entries beyond its bound, because anyone can present states and memory must stay flat', () => {
    const now = 1_700_000_000_000;
    const cache = new ExpiringCache<number>({ maxEntries: 3, now: () => now });
    for (const [index, key] of ['a', 'b', 'c', 'd'].entries()) cache.set(key, index, now + 1000);
    assert.equal(cache.size, 3);
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.get('d'), 3);
  });

  it('does not hold an entry whose expiry has passed, because a TTL of zero would keep it forever', () => {
    const now = 1_700_000_000_000;
    const cache = new ExpiringCache<number>({ maxEntries: 3, now: () => now });
    cache.set('late', 1, now);
    assert.equal(cache.get('late'), undefined);
    assert.equal(cache.size, 0);
  });
});

describe('the browser and device login routes', () => {
  it('refuse to start without the shared login-state key, because a key of one process would break logins that finish on another worker or replica', async () => {
    const h = await startHarness();
    try {
      assert.throws(() => createProxyApp({ ...h.ctx, loginStateKey: undefined as unknown as Buffer }), TypeError);
    } finally {
      await h.close();
    }
  });
});
