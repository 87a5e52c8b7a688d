import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry, register as globalRegistry } from 'prom-client';
import { createProxyMetrics, createWebhookMetrics } from '../../src/metrics.js';

describe('createProxyMetrics', () => {
  it('registers every proxy metric and the process metrics into the given registry only', async () => {
    const registry = new Registry();
    const metrics = createProxyMetrics(registry);
    metrics.requests.inc({ cluster: 'c-1', code: '200', method: 'GET' });
    metrics.requestDuration.observe({ cluster: 'c-1' }, 0.02);
    metrics.inflightRequests.inc();
    metrics.activeStreams.inc({ kind: 'watch' });
    metrics.authCache.inc({ result: 'hit' });
    metrics.logins.inc({ provider: 'local', result: 'success' });
    const text = await registry.metrics();
    for (const line of [
      'kubegate_proxy_requests_total{cluster="c-1",code="200",method="GET"} 1',
      'kubegate_proxy_request_duration_seconds_bucket{le="0.025",cluster="c-1"} 1',
      'kubegate_proxy_inflight_requests 1',
      'kubegate_proxy_active_streams{kind="watch"} 1',
      'kubegate_proxy_active_streams{kind="upgrade"} 0',
      'kubegate_auth_cache_total{result="hit"} 1',
      'kubegate_auth_cache_total{result="miss"} 0',
      'kubegate_login_total{provider="local",result="success"} 1',
    ]) {
      assert.ok(text.includes(line), `missing ${line}`);
    }
    assert.match(text, /^process_cpu_user_seconds_total /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    assert.equal(globalRegistry.getMetricsAsArray().length, 0, 'nothing leaks into the global registry');
  });

  it("reads the upstream pool's connection, request and retry counts by cluster when scraped, and forgets a cluster the pool forgot", async () => {
    const registry = new Registry();
    const counts = new Map([
      ['dev', { opened: 2, requests: 40, retries: 1 }],
      ['prod', { opened: 1, requests: 3, retries: 0 }],
    ]);
    createProxyMetrics(registry, { upstreams: () => counts });
    let text = await registry.metrics();
    for (const line of [
      'kubegate_upstream_connections_total{cluster="dev"} 2',
      'kubegate_upstream_requests_total{cluster="dev"} 40',
      'kubegate_upstream_retries_total{cluster="dev"} 1',
      'kubegate_upstream_connections_total{cluster="prod"} 1',
      'kubegate_upstream_requests_total{cluster="prod"} 3',
      'kubegate_upstream_retries_total{cluster="prod"} 0',
    ]) {
      assert.ok(text.includes(line), `missing ${line}`);
    }
    counts.set('dev', { opened: 2, requests: 45, retries: 2 });
    counts.delete('prod');
    text = await registry.metrics();
    assert.ok(text.includes('kubegate_upstream_requests_total{cluster="dev"} 45'), text);
    assert.ok(text.includes('kubegate_upstream_retries_total{cluster="dev"} 2'), text);
    assert.ok(!text.includes('cluster="prod"'), 'a deleted cluster leaves no series');
  });

  it('lets two servers in one process keep separate registries, because tests and workers run several', async () => {
    const first = new Registry();
    const second = new Registry();
    const a = createProxyMetrics(first);
    createProxyMetrics(second);
    a.requests.inc({ cluster: 'c-1', code: '200', method: 'GET' }, 5);
    assert.match(await first.metrics(), /kubegate_proxy_requests_total\{cluster="c-1",code="200",method="GET"\} 5/);
    assert.doesNotMatch(await second.metrics(), /kubegate_proxy_requests_total\{/);
  });
});

describe('createWebhookMetrics', () => {
  it('registers every webhook metric, with the fixed result series present from the start', async () => {
    const registry = new Registry();
    const metrics = createWebhookMetrics(registry);
    metrics.reviews.inc({ result: 'authenticated' });
    metrics.reviewDuration.observe(0.003);
    metrics.answerCache.inc({ result: 'miss' });
    metrics.watchRestarts.inc({ resource: 'clusterauthtokens' });
    metrics.objects.set({ resource: 'secrets' }, 42);
    const text = await registry.metrics();
    for (const line of [
      'kubegate_webhook_reviews_total{result="authenticated"} 1',
      'kubegate_webhook_reviews_total{result="unauthenticated"} 0',
      'kubegate_webhook_reviews_total{result="error"} 0',
      'kubegate_webhook_review_duration_seconds_bucket{le="0.005"} 1',
      'kubegate_webhook_answer_cache_total{result="miss"} 1',
      'kubegate_webhook_answer_cache_total{result="hit"} 0',
      'kubegate_webhook_watch_restarts_total{resource="clusterauthtokens"} 1',
      'kubegate_webhook_objects{resource="secrets"} 42',
    ]) {
      assert.ok(text.includes(line), `missing ${line}`);
    }
    assert.match(text, /^process_resident_memory_bytes /m);
  });

  for (const [source, metric] of [['answerCache', 'kubegate_webhook_answer_cache_total']] as const) {
    it(`reads the ${source} counts when scraped (${metric}), so that a review does no metrics work for them`, async () => {
      const registry = new Registry();
      let stats = { hits: 0, misses: 0 };
      createWebhookMetrics(registry, { [source]: () => stats });
      assert.ok((await registry.metrics()).includes(`${metric}{result="hit"} 0`));
      stats = { hits: 41, misses: 3 };
      const text = await registry.metrics();
      assert.ok(text.includes(`${metric}{result="hit"} 41`), text);
      assert.ok(text.includes(`${metric}{result="miss"} 3`), text);
    });
  }

  it('reads the review counts when scraped, so that a review does no metrics work for its result', async () => {
    const registry = new Registry();
    let counts = { authenticated: 0, unauthenticated: 0, error: 0 };
    createWebhookMetrics(registry, { reviews: () => counts });
    assert.match(await registry.metrics(), /kubegate_webhook_reviews_total\{result="authenticated"\} 0/);
    counts = { authenticated: 7, unauthenticated: 2, error: 1 };
    const text = await registry.metrics();
    for (const line of ['{result="authenticated"} 7', '{result="unauthenticated"} 2', '{result="error"} 1']) {
      assert.ok(text.includes(`kubegate_webhook_reviews_total${line}`), text);
    }
  });

  it("exports the review durations exactly as prom-client's own histogram would, though counted in plain numbers", async () => {
    const registry = new Registry();
    const metrics = createWebhookMetrics(registry);
    const reference = new Registry();
    const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
    const histogram = new Histogram({ name: 'kubegate_webhook_review_duration_seconds', help: 'Time to answer a TokenReview.', buckets, registers: [reference] });
    for (const seconds of [0, 0.0004, 0.0005, 0.0006, 0.003, 0.003, 0.3, 1, 2.5, 40]) {
      metrics.reviewDuration.observe(seconds);
      histogram.observe(seconds);
    }
    const lines = (text: string): string[] => text.split('\n').filter((line) => line.includes('kubegate_webhook_review_duration_seconds'));
    const expected = lines(await reference.metrics());
    assert.equal(expected.length, 2 + buckets.length + 1 + 2);
    assert.deepEqual(lines(await registry.metrics()), expected);
    registry.resetMetrics();
    reference.resetMetrics();
    assert.match((await registry.metrics()), /^kubegate_webhook_review_duration_seconds_count 0$/m);
  });

  it('reads the lastUsedAt stamp counts and queue length when scraped', async () => {
    const registry = new Registry();
    let stamps: { sent: number; failed: number; dropped: number; queued: number } | undefined;
    createWebhookMetrics(registry, { stamps: () => stamps });
    const before = await registry.metrics();
    for (const result of ['sent', 'failed', 'dropped']) assert.ok(before.includes(`kubegate_webhook_stamps_total{result="${result}"} 0`), before);
    stamps = { sent: 20, failed: 1, dropped: 5, queued: 300 };
    const text = await registry.metrics();
    for (const line of ['kubegate_webhook_stamps_total{result="sent"} 20', 'kubegate_webhook_stamps_total{result="failed"} 1', 'kubegate_webhook_stamps_total{result="dropped"} 5', 'kubegate_webhook_stamps_queued 300']) {
      assert.ok(text.includes(line), `missing ${line}`);
    }
  });

  it('refuses a second registration into the same registry, because duplicate series would be ambiguous', () => {
    const registry = new Registry();
    createWebhookMetrics(registry);
    assert.throws(() => createWebhookMetrics(registry), /already been registered/);
  });
});
