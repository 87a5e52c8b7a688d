import { once } from 'node:events';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { KubegateError } from '../../../src/errors.js';
import { Registry } from 'prom-client';
import { createProxyMetrics } from '../../../src/metrics.js';
import { createAuditSink, forwardMetrics } from '../../../src/proxy/audit-trail.js';
import type { AuditRecord } from '../../../src/proxy/forward.js';
import fc from 'fast-check';
import { eventually } from '../../support/eventually.js';

function record(path: string): AuditRecord {
  return {
    time: Date.UTC(2026, 10, 24, 12, 0, 0),
    user: 'u-alice',
    groups: ['dev'],
    impersonated: null,
    tokenName: 't-abc',
    cluster: 'edge',
    role: 'member',
    method: 'GET',
    path,
    status: 200,
    code: null,
    durationMs: 1.5,
    bytesIn: 100,
    bytesOut: 2000,
    upgrade: false,
    longRunning: false,
    via: 'agent',
  };
}

describe('audit sink', () => {
  it('writes a lone line to the file within a few seconds, though far less than a buffer was written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegate-audit-'));
    const file = join(dir, 'audit.log');
    const sink = createAuditSink({ enabled: true, file });
    try {
      sink.write(record('/api/v1/namespaces/default/pods'));
      await eventually(async () => (await readFile(file, 'utf8').catch(() => '')).includes('/api/v1/namespaces/default/pods'), 5000);
      const line = JSON.parse((await readFile(file, 'utf8')).trim()) as Record<string, unknown>;
      assert.equal(line['type'], 'audit');
      assert.equal(line['time'], '2026-11-24T12:00:00.000Z');
      assert.equal(line['user'], 'u-alice');
      assert.equal(line['status'], 200);
    } finally {
      sink.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes everything still buffered when closed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegate-audit-'));
    const file = join(dir, 'audit.log');
    // The sink's kind of destination (asynchronous, buffered), opened before lines arrive.
    const destination = pino.destination({ dest: file, sync: false, minLength: 8 * 1024 });
    await once(destination, 'ready');
    const sink = createAuditSink({ enabled: true, file, destination });
    try {
      // Lines the flush timer has not written yet.
      for (let i = 0; i < 5; i++) sink.write(record(`/api/v1/namespaces/ns-${i}/pods`));
      sink.close();
      const lines = (await readFile(file, 'utf8')).trim().split('\n');
      assert.equal(lines.length, 5);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('audit file', () => {
  it('is created 0600, and a reopen sends every later line to the new file at once, even if the process ends right after', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegate-audit-'));
    const file = join(dir, 'nested', 'audit.log');
    const sink = createAuditSink({ enabled: true, file });
    try {
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      sink.write(record('/api/before'));
      await rename(file, `${file}.1`);
      sink.reopen();
      sink.write(record('/api/after'));
      sink.close();
      const paths = async (path: string) => (await readFile(path, 'utf8')).trim().split('\n').map((line) => (JSON.parse(line) as { path: string }).path);
      assert.deepEqual(await paths(`${file}.1`), ['/api/before']);
      assert.deepEqual(await paths(file), ['/api/after']);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a path that cannot be opened with CONFIG_INVALID naming audit.file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegate-audit-'));
    try {
      await writeFile(join(dir, 'not-a-directory'), '');
      assert.throws(
        () => createAuditSink({ enabled: true, file: join(dir, 'not-a-directory', 'audit.log') }),
        (error: unknown) => error instanceof KubegateError && error.code === 'CONFIG_INVALID' && error.field === 'audit.file',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('audit lines', () => {
  it('tells forwarded requests (kind "request") and REST API events (kind "api") apart in one JSON line format', () => {
    const lines: string[] = [];
    const sink = createAuditSink({ enabled: true, file: undefined, destination: { write: (line: string) => void lines.push(line) } });
    sink.write(record('/api/v1/pods'));
    const event = {
      action: 'user.create',
      user: 'u-admin',
      tokenName: 't-admin',
      status: 201,
      code: null,
      address: '192.0.2.7',
      userAgent: 'curl/8',
      target: { username: 'carol', userId: 'u-carol' },
    };
    sink.writeEvent({ ...event, time: Date.UTC(2026, 10, 24, 12, 0, 1) });
    sink.close();
    const texts = lines.join('').split('\n');
    assert.equal(texts.pop(), '', 'every line ends with a newline');
    const [request, line] = texts.map((text) => JSON.parse(text) as Record<string, unknown>);
    assert.equal(request?.['type'], 'audit');
    assert.equal(request?.['kind'], 'request');
    assert.deepEqual(line, { type: 'audit', kind: 'api', time: '2026-11-24T12:00:01.000Z', ...event });
  });
});

describe('audit request lines', () => {
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  const nullable = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: null });
  const records: fc.Arbitrary<AuditRecord> = fc.record({
    time: fc.integer({ min: 0, max: Date.UTC(2100, 0, 1) }),
    user: nullable(text),
    groups: fc.array(text, { maxLength: 4 }),
    impersonated: nullable(fc.record({ user: text, uid: text, groups: fc.array(text, { maxLength: 3 }), extra: fc.dictionary(text, fc.array(text, { maxLength: 2 })) })),
    tokenName: nullable(text),
    cluster: nullable(text),
    role: nullable(fc.constantFrom('member' as const, 'viewer' as const, 'owner' as const)),
    method: text,
    path: text,
    status: fc.integer({ min: 100, max: 599 }),
    code: nullable(fc.constantFrom('UNAUTHENTICATED' as const, 'FORBIDDEN' as const, 'UPSTREAM_TIMEOUT' as const)),
    durationMs: fc.oneof(fc.double({ noDefaultInfinity: true, noNaN: true }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY)),
    bytesIn: fc.integer({ min: 0 }),
    bytesOut: fc.integer({ min: 0 }),
    upgrade: fc.boolean(),
    longRunning: fc.boolean(),
    via: nullable(fc.constantFrom('direct' as const, 'agent' as const)),
  });

  it('are the JSON of the record, byte for byte, whatever its strings and numbers hold', () => {
    fc.assert(
      fc.property(records, (entry) => {
        const lines: string[] = [];
        const sink = createAuditSink({ enabled: true, file: undefined, destination: { write: (line: string) => void lines.push(line) } });
        sink.write(entry);
        sink.close();
        const { time, ...fields } = entry;
        assert.equal(lines.join(''), `${JSON.stringify({ type: 'audit', kind: 'request', time: new Date(time).toISOString(), ...fields })}\n`);
      }),
    );
  });

  it('are the JSON of each record when one after another they share some identity fields, the same group arrays included, and not others', () => {
    // Each record is the previous one with one field (or none) changed, to one of a few values,
    // each the very same object every time it is drawn: the line reuses what it can from the
    // previous record, and must never reuse a field that changed.
    const sameLength = ['dev', 'ops'];
    const pools = {
      time: [Date.UTC(2026, 11, 5, 6, 0, 0), Date.UTC(2026, 11, 5, 6, 0, 0, 7), Date.UTC(2026, 11, 5, 6, 0, 0, 42), Date.UTC(2026, 11, 5, 6, 0, 1, 999), Date.UTC(1969, 11, 31, 23, 59, 59, 1)],
      user: ['u-alice', 'u-bob', null],
      groups: [Object.freeze(['dev']), Object.freeze(['dev', 'ops']), Object.freeze([] as string[]), sameLength],
      impersonated: [null, { user: 'carol', uid: '', groups: ['dev'], extra: {} }],
      tokenName: ['t-abc', 't-def', null],
      cluster: ['edge', 'core', null],
      role: ['member', 'viewer', null],
    } as const;
    const fields = Object.keys(pools) as (keyof typeof pools)[];
    const steps = fc.array(fc.record({ field: fc.constantFrom(...fields, undefined), pick: fc.nat(4), mutate: fc.boolean() }), { minLength: 1, maxLength: 16 });
    fc.assert(
      fc.property(steps, (changes) => {
        const lines: string[] = [];
        const sink = createAuditSink({ enabled: true, file: undefined, destination: { write: (chunk: string) => void lines.push(chunk) } });
        const expected: string[] = [];
        let entry: AuditRecord = record('/api/v1/namespaces/default/pods');
        for (const { field, pick, mutate } of changes) {
          if (field !== undefined) {
            const pool = pools[field];
            entry = { ...entry, [field]: pool[pick % pool.length] };
          }
          // An array that is not frozen, changed in place between two records, shows its new content.
          if (mutate) sameLength[1] = sameLength[1] === 'ops' ? 'sre' : 'ops';
          sink.write(entry);
          const { time, ...rest } = entry;
          expected.push(`${JSON.stringify({ type: 'audit', kind: 'request', time: new Date(time).toISOString(), ...rest })}\n`);
        }
        sink.close();
        assert.equal(lines.join(''), expected.join(''));
      }),
    );
  });

  it('reach the destination in batches, in order, and all of them once the sink is closed', () => {
    const writes: string[] = [];
    const sink = createAuditSink({ enabled: true, file: undefined, destination: { write: (chunk: string) => void writes.push(chunk) } });
    const count = 500;
    for (let i = 0; i < count; i++) sink.write(record(`/api/v1/namespaces/ns-${i}/pods`));
    const beforeClose = writes.length;
    sink.close();
    assert.ok(beforeClose > 1 && beforeClose < count / 10, `${beforeClose} writes before close: batched, yet handed over while the proxy runs`);
    const paths = writes.join('').trim().split('\n').map((line) => (JSON.parse(line) as { path: string }).path);
    assert.deepEqual(paths, Array.from({ length: count }, (_, i) => `/api/v1/namespaces/ns-${i}/pods`));
  });
});

describe('forwardMetrics', () => {
  it('labels only clusters kubegate knows, and every other ID "unknown", so URLs cannot create time series (issue #15)', async () => {
    const registry = new Registry();
    const hooks = forwardMetrics(createProxyMetrics(registry), (id) => id === 'edge');
    for (const cluster of ['edge', 'made-up-1', 'made-up-2', null]) {
      hooks.requestStarted();
      hooks.requestFinished({ ...record('/api'), cluster, status: 401 });
    }
    const values = (await registry.getSingleMetric('kubegate_proxy_requests_total')!.get()).values;
    assert.deepEqual(
      values.map((value) => [value.labels['cluster'], value.value]),
      [
        ['edge', 1],
        ['unknown', 3],
      ],
    );
  });
});
