/**
 * A cluster the sync cannot reach logs one warning per streak of the same failure — its
 * code and message, never a stack trace — then debug lines, however often it is retried
 * (issue #15: a failing sync loop wrote a stack trace every minute).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { eventually } from '../support/eventually.js';
import { FIXTURE_CLUSTER_TOKEN, startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly cluster?: string;
  readonly [field: string]: unknown;
}

const WARN = 40;
const DEBUG = 20;

describe('sync failures in the log', () => {
  let fixture: ProxyFixture;
  const lines: LogLine[] = [];

  before(async () => {
    fixture = await startProxyFixture({
      name: 'sync-logging',
      logger: () =>
        createLogger({
          level: 'debug',
          name: 'proxy',
          destination: {
            write(chunk: string) {
              for (const line of chunk.split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
            },
          },
        }),
    });
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    for (const [id, ace] of [
      ['unreachable-ace', true],
      ['unreachable-plain', false],
    ] as const) {
      const created = await fixture.api.request('POST', '/v1/clusters', {
        token: fixture.adminToken,
        body: { id, server: `https://127.0.0.1:${port}`, caData: Buffer.from(fixture.fake.caPem).toString('base64'), token: FIXTURE_CLUSTER_TOKEN, ace: { enabled: ace } },
      });
      assert.equal(created.status, 201, created.text);
    }
  });
  after(() => fixture.close());

  it('logs one warning without a stack for a cluster that keeps failing, then debug lines', async () => {
    await eventually(
      async () => {
        const cluster = await fixture.api.request('GET', '/v1/clusters/unreachable-ace', { token: fixture.adminToken });
        return Number(cluster.json.sync?.consecutiveFailures ?? 0) >= 3;
      },
      30_000,
      'three failed sync attempts',
    );
    const failures = lines.filter((line) => line.cluster === 'unreachable-ace' && /cluster sync failed/.test(line.msg));
    assert.equal(failures.filter((line) => line.level === WARN).length, 1, JSON.stringify(failures));
    assert.ok(failures.filter((line) => line.level === DEBUG).length >= 2, 'the retries are debug lines');
    assert.match(String(failures.find((line) => line.level === WARN)?.['error']), /^UPSTREAM_UNREACHABLE: |^KUBE_API_FAILED: /);
  });

  it('never writes a stack trace about an unreachable cluster, with the authorized endpoint or without', () => {
    const about = lines.filter((line) => line.cluster === 'unreachable-ace' || line.cluster === 'unreachable-plain');
    assert.ok(about.length > 0);
    for (const line of about) assert.doesNotMatch(JSON.stringify(line), /"stack"|\\n\s+at /, line.msg);
    const plainWarnings = about.filter((line) => line.cluster === 'unreachable-plain' && line.level >= WARN && /sync/.test(line.msg));
    assert.ok(plainWarnings.length <= 1, 'at most one warning per streak for a cluster without the endpoint');
  });
});
