import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProviderConfig } from '../../../src/config/proxy.js';
import { KubegateError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { createProviderHealthMonitor, safeMessage, upOf } from '../../../src/providers/health.js';

const logger = createLogger({ level: 'silent', name: 'health-test' });
const BIND_PASSWORD = 'bind-Pa55word-never-shown';

function config(name: string, settings: Record<string, unknown> = {}): ProviderConfig {
  return { name, type: 'ldap', enabled: true, settings };
}

const FIXED = new Date('2026-12-04T12:00:00.000Z');

describe('provider health monitor', () => {
  it('is unknown before the first check, then healthy or unhealthy with the time of the check', async () => {
    let failing = false;
    const monitor = createProviderHealthMonitor({
      providers: [
        { name: 'local' },
        {
          name: 'corp',
          checkHealth: async () => {
            if (failing) throw new KubegateError('PROVIDER_UNAVAILABLE', undefined, { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:389'), { code: 'ECONNREFUSED' }) });
          },
        },
      ],
      configs: [config('local'), config('corp')],
      intervalMs: 60_000,
      timeoutMs: 1000,
      logger,
      now: () => FIXED,
    });
    assert.deepEqual(monitor.get('corp'), { state: 'unknown', checkedAt: null, message: null });
    assert.equal(upOf(monitor.get('corp')), undefined);
    assert.equal(monitor.get('nobody'), undefined);
    await monitor.checkNow();
    assert.deepEqual(monitor.get('local'), { state: 'healthy', checkedAt: FIXED.toISOString(), message: null }, 'a provider without a check is always healthy');
    assert.equal(monitor.get('corp')?.state, 'healthy');
    assert.equal(upOf(monitor.get('corp')), true);
    failing = true;
    await monitor.checkNow();
    assert.deepEqual(monitor.get('corp'), {
      state: 'unhealthy',
      checkedAt: FIXED.toISOString(),
      message: 'the identity provider could not be reached: connect ECONNREFUSED 127.0.0.1:389',
    });
    assert.equal(upOf(monitor.get('corp')), false);
    await monitor.stop();
  });

  it("never shows the value of a provider's secret setting, even when the directory echoes it back", async () => {
    const monitor = createProviderHealthMonitor({
      providers: [
        {
          name: 'corp',
          checkHealth: async () => {
            throw new Error(`bind failed for cn=kubegate with password ${BIND_PASSWORD} (Authorization: Bearer abc.def)`);
          },
        },
      ],
      configs: [config('corp', { serviceAccountDn: 'cn=kubegate', serviceAccountPassword: BIND_PASSWORD, servers: ['ldap://127.0.0.1'] })],
      intervalMs: 60_000,
      timeoutMs: 1000,
      logger,
    });
    await monitor.checkNow();
    const message = monitor.get('corp')?.message ?? '';
    assert.ok(!message.includes(BIND_PASSWORD), message);
    assert.ok(!message.includes('abc.def'), message);
    assert.match(message, /bind failed for cn=kubegate with password \[REDACTED\]/, 'what is not secret stays readable');
    await monitor.stop();
  });

  it('marks a check that does not answer in time unhealthy, without holding up the other providers', async () => {
    let release: () => void = () => undefined;
    const monitor = createProviderHealthMonitor({
      providers: [
        { name: 'hung', checkHealth: () => new Promise<void>((resolve) => (release = resolve)) },
        { name: 'fine', checkHealth: async () => undefined },
      ],
      configs: [],
      intervalMs: 60_000,
      timeoutMs: 50,
      logger,
    });
    await monitor.checkNow();
    assert.equal(monitor.get('hung')?.state, 'unhealthy');
    assert.match(monitor.get('hung')?.message ?? '', /no answer within/);
    assert.equal(monitor.get('fine')?.state, 'healthy');
    release();
    await monitor.stop();
  });

  it('runs one round at a time: a check asked for while one runs joins it', async () => {
    let calls = 0;
    let finish: () => void = () => undefined;
    const monitor = createProviderHealthMonitor({
      providers: [
        {
          name: 'slow',
          checkHealth: () => {
            calls += 1;
            return new Promise<void>((resolve) => (finish = resolve));
          },
        },
      ],
      configs: [],
      intervalMs: 60_000,
      timeoutMs: 60_000,
      logger,
    });
    const first = monitor.checkNow();
    const second = monitor.checkNow();
    finish();
    await Promise.all([first, second]);
    assert.equal(calls, 1);
    await monitor.stop();
  });

  it('refuses an interval or timeout that is not positive with a TypeError', () => {
    assert.throws(() => createProviderHealthMonitor({ providers: [], configs: [], intervalMs: 0, timeoutMs: 1, logger }), TypeError);
    assert.throws(() => createProviderHealthMonitor({ providers: [], configs: [], intervalMs: 1, timeoutMs: -1, logger }), TypeError);
  });
});

describe('safeMessage', () => {
  it('joins an aggregate of server failures, strips control characters and cuts long text short', () => {
    const aggregate = new AggregateError([new Error('connect ECONNREFUSED 10.0.0.1:636'), new Error('connect ETIMEDOUT 10.0.0.2:636')], 'every LDAP server failed');
    assert.equal(safeMessage(new KubegateError('PROVIDER_UNAVAILABLE', undefined, { cause: aggregate }), []), 'the identity provider could not be reached: connect ECONNREFUSED 10.0.0.1:636: connect ETIMEDOUT 10.0.0.2:636');
    assert.equal(safeMessage(new Error('line one\nline two\u0000'), []), 'line one line two ');
    assert.ok(safeMessage(new Error('x'.repeat(1000)), []).length <= 300);
    assert.equal(safeMessage(undefined, []), 'the check failed');
  });
});
