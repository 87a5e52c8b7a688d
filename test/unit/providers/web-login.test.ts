import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPendingLoginStore } from '../../../src/providers/web-login.js';

describe('pending login store', () => {
  it('hands a value out once, because a replayed callback must find nothing', () => {
    const store = createPendingLoginStore<string>({ maxEntries: 10, ttlMs: 1000 });
    const key = store.put('login');
    assert.match(key, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(store.take(key), 'login');
    assert.equal(store.take(key), undefined);
  });

  it('forgets a value after its lifetime, because an abandoned login must not be completable later', () => {
    let now = 0;
    const store = createPendingLoginStore<string>({ maxEntries: 10, ttlMs: 1000, now: () => now });
    const key = store.put('login');
    now = 999;
    assert.equal(store.peek(key), 'login');
    now = 1000;
    assert.equal(store.take(key), undefined);
  });

  it('drops the oldest entries beyond its bound, because anyone can start logins and memory must stay flat', () => {
    const store = createPendingLoginStore<number>({ maxEntries: 3, ttlMs: 1000 });
    const keys = [1, 2, 3, 4].map((value) => store.put(value));
    assert.equal(store.size, 3);
    assert.equal(store.take(keys[0]!), undefined);
    assert.equal(store.take(keys[3]!), 4);
  });

  it('lets a value carry its own key (a login request carries its state)', () => {
    const store = createPendingLoginStore<{ state: string }>({ maxEntries: 1, ttlMs: 1000 });
    const key = store.putWithKey((state) => ({ state }));
    assert.equal(store.take(key)?.state, key);
  });
});
