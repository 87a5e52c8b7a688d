/**
 * Prometheus metrics of both processes, registered into a Registry the caller owns (never
 * prom-client's global one), so that tests and several servers in one process do not
 * collide. Each create function also registers Node's default process metrics
 * (`process_*`, `nodejs_*`) into that registry: call one of them once per registry.
 *
 * Label values must come from bounded sets — the values documented on each metric, and for
 * `cluster` only IDs of clusters kubegate knows (use `unknown` otherwise): a label taken
 * from a request path would let any client create unbounded time series.
 *
 * README.md, section "Metrics", documents every metric; keep the two in step.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { Registry } from 'prom-client';

export interface ProxyMetrics {
  /** Forwarded `/k8s/clusters/…` requests by cluster ID, HTTP status code and method. */
  readonly requests: Counter<'cluster' | 'code' | 'method'>;
  /** Time to the end of a forwarded response; long-running requests (watch, upgrade) are not observed. */
  readonly requestDuration: Histogram<'cluster'>;
  /** Requests being served now (all routes). */
  readonly inflightRequests: Gauge;
  /** Open long-running streams, `kind`: `watch` | `upgrade`. */
  readonly activeStreams: Gauge<'kind'>;
  /** Token authentication cache lookups, `result`: `hit` | `miss`. */
  readonly authCache: Counter<'result'>;
  /** Login attempts, `result`: `success` | `failure` | `rate_limited` | `error`. */
  readonly logins: Counter<'provider' | 'result'>;
}

export interface WebhookMetrics {
  /** TokenReviews answered, `result`: `authenticated` | `unauthenticated` | `error`. */
  readonly reviews: Counter<'result'>;
  readonly reviewDuration: CountedHistogram;
  /** Answer cache lookups by request body, `result`: `hit` | `miss`. */
  readonly answerCache: Counter<'result'>;
  /** Watches restarted (expired, dropped or failed), by resource. */
  readonly watchRestarts: Counter<'resource'>;
  /** Objects currently known, by resource (`clusterauthtokens`, `clusteruserattributes`, `secrets`). */
  readonly objects: Gauge<'resource'>;
  /** `lastUsedAt` stamps, `result`: `sent` | `failed` | `dropped` (the queue was full). */
  readonly stamps: Counter<'result'>;
  /** Tokens waiting for their `lastUsedAt` stamp. */
  readonly stampsQueued: Gauge;
}

const PROXY_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** From a cached hit (well under a millisecond) to an uncached scrypt `$1` hash. */
const REVIEW_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * Figures other parts already count, read when /metrics is scraped rather than mirrored on
 * every request. Functions, because those parts are created after the metrics.
 */
export interface ProxyMetricsSources {
  /** Cumulative token cache lookups since start. */
  readonly authCache?: () => { readonly hits: number; readonly misses: number };
  /** Long-running streams open now. */
  readonly activeStreams?: () => { readonly watch: number; readonly upgrade: number };
  /** The enabled providers' last health check: up, down, or not checked yet (undefined). */
  readonly providerUp?: () => Iterable<readonly [provider: string, up: boolean | undefined]>;
  /** Whether this process holds the background job lease (runs the sync, probes, refreshes). */
  readonly backgroundLeader?: () => boolean;
  /** The forwarding pool's cumulative counts by cluster ID (clusters/upstreams.ts). */
  readonly upstreams?: () => ReadonlyMap<string, { readonly opened: number; readonly requests: number; readonly retries: number }>;
}

export function createProxyMetrics(registry: Registry, sources: ProxyMetricsSources = {}): ProxyMetrics {
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const metrics: ProxyMetrics = {
    requests: new Counter({
      name: 'kubegate_proxy_requests_total',
      help: 'Requests forwarded to cluster API servers, by cluster, HTTP status code and method.',
      labelNames: ['cluster', 'code', 'method'] as const,
      registers,
    }),
    requestDuration: new Histogram({
      name: 'kubegate_proxy_request_duration_seconds',
      help: 'Duration of forwarded requests that are not long-running (no watch, no upgrade), by cluster.',
      labelNames: ['cluster'] as const,
      buckets: PROXY_DURATION_BUCKETS,
      registers,
    }),
    inflightRequests: new Gauge({
      name: 'kubegate_proxy_inflight_requests',
      help: 'Requests being served.',
      registers,
    }),
    activeStreams: new Gauge({
      name: 'kubegate_proxy_active_streams',
      help: 'Open long-running streams: watch responses and upgraded connections (exec, attach, port-forward).',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        const open = sources.activeStreams?.();
        if (open === undefined) return;
        this.set({ kind: 'watch' }, open.watch);
        this.set({ kind: 'upgrade' }, open.upgrade);
      },
    }),
    authCache: hitMissCounter('kubegate_auth_cache_total', 'Token authentication cache lookups, by result (hit or miss).', registers, sources.authCache),
    logins: new Counter({
      name: 'kubegate_login_total',
      help: 'Login attempts, by identity provider and result (success, failure, rate_limited, error).',
      labelNames: ['provider', 'result'] as const,
      registers,
    }),
  };
  new Gauge({
    name: 'kubegate_provider_up',
    help: "1 when the identity provider's last background health check passed, 0 when it failed.",
    labelNames: ['provider'] as const,
    // Summed over workers it would count workers; a provider is up only if it is up in every one.
    aggregator: 'min',
    registers,
    collect() {
      const states = sources.providerUp?.();
      if (states === undefined) return;
      this.reset();
      for (const [provider, up] of states) if (up !== undefined) this.set({ provider }, up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'kubegate_background_leader',
    help: '1 in the process that holds the background job lease and runs the sync, cluster probes, group refresh and provider health checks; 0 elsewhere.',
    // Summed over workers: 1 on the replica one of whose workers holds it.
    registers,
    collect() {
      this.set(sources.backgroundLeader?.() === true ? 1 : 0);
    },
  });
  // Counted per request by the upstream pool in plain numbers, read here: nothing per request.
  const upstreamCounts = (field: 'opened' | 'requests' | 'retries') => (): Record<string, number> | undefined => {
    const counts = sources.upstreams?.();
    return counts === undefined ? undefined : Object.fromEntries([...counts].map(([cluster, count]) => [cluster, count[field]]));
  };
  scrapedCounter('kubegate_upstream_connections_total', "Connections the forwarding pool opened to clusters' API servers (connect and TLS handshake), by cluster.", 'cluster', registers, upstreamCounts('opened'));
  scrapedCounter('kubegate_upstream_requests_total', "Requests the forwarding pool wrote to clusters' API servers, retries included, by cluster; keep-alive reuse is 1 - connections / requests.", 'cluster', registers, upstreamCounts('requests'));
  scrapedCounter('kubegate_upstream_retries_total', 'Requests sent again on a new connection because the reused keep-alive connection they were written on closed before any answer, by cluster.', 'cluster', registers, upstreamCounts('retries'));
  // Series with a fixed label set exist from the start, so that rate() sees their first increase.
  for (const kind of ['watch', 'upgrade']) metrics.activeStreams.set({ kind }, 0);
  for (const result of ['hit', 'miss']) metrics.authCache.inc({ result }, 0);
  return metrics;
}

/** Cache lookups by `result` (`hit`, `miss`), read from the cache's own plain counts when scraped: nothing per lookup. */
function hitMissCounter(name: string, help: string, registers: Registry[], stats: (() => { readonly hits: number; readonly misses: number }) | undefined): Counter<'result'> {
  return scrapedCounter(name, help, 'result', registers, () => {
    const counts = stats?.();
    return counts === undefined ? undefined : { hit: counts.hits, miss: counts.misses };
  });
}

/**
 * A counter with one label whose values another part counts in plain numbers: `read` gives
 * the totals since start by label value (undefined: nothing to report yet) when scraped.
 */
function scrapedCounter<L extends string>(name: string, help: string, label: L, registers: Registry[], read: () => Readonly<Record<string, number>> | undefined): Counter<L> {
  return new Counter({
    name,
    help,
    labelNames: [label] as const,
    registers,
    collect() {
      const totals = read();
      if (totals === undefined) return;
      this.reset();
      for (const [value, total] of Object.entries(totals)) this.inc({ [label]: value } as Partial<Record<L, string>>, total);
    },
  });
}

/** A gauge without labels whose value another part holds: `read` gives it (undefined: not yet) when scraped. */
function scrapedGauge(name: string, help: string, registers: Registry[], read: () => number | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers,
    collect() {
      const value = read();
      if (value !== undefined) this.set(value);
    },
  });
}

/** A histogram without labels, observed per request. */
export interface CountedHistogram {
  observe(value: number): void;
}

/**
 * A histogram without labels counted in plain numbers — `observe` is a bucket search and two
 * additions, where prom-client's Histogram builds, validates and hashes a label set on every
 * call (~2 µs of a ~60 µs cached TokenReview, profiled) — exported in the same histogram
 * form (`_bucket` by `le`, `_sum`, `_count`) when scraped. Registered as what the registry
 * reads of a metric: `name`, `help`, `type`, `aggregator`, `get()` and `reset()`.
 */
function countedHistogram(name: string, help: string, buckets: readonly number[], registry: Registry): CountedHistogram {
  /** Observations per bucket (not cumulative); the last one is above every bound. */
  const counts = new Array<number>(buckets.length + 1).fill(0);
  let sum = 0;
  const metric = {
    name,
    help,
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    get: async () => {
      const values: { labels: { le?: number | string }; value: number; metricName: string }[] = [];
      let cumulative = 0;
      buckets.forEach((bound, i) => {
        cumulative += counts[i] as number;
        values.push({ labels: { le: bound }, value: cumulative, metricName: `${name}_bucket` });
      });
      cumulative += counts[buckets.length] as number;
      values.push({ labels: { le: '+Inf' }, value: cumulative, metricName: `${name}_bucket` });
      values.push({ labels: {}, value: sum, metricName: `${name}_sum` }, { labels: {}, value: cumulative, metricName: `${name}_count` });
      return { name, help, type: metric.type, aggregator: metric.aggregator, values };
    },
    reset: () => {
      counts.fill(0);
      sum = 0;
    },
  };
  registry.registerMetric(metric as unknown as Histogram);
  return {
    observe(value) {
      let bucket = 0;
      while (bucket < buckets.length && value > (buckets[bucket] as number)) bucket++;
      counts[bucket] = (counts[bucket] as number) + 1;
      sum += value;
    },
  };
}

/** As ProxyMetricsSources, for the webhook. */
export interface WebhookMetricsSources {
  /** Cumulative answer cache lookups (reviews answered by request body) since start. */
  readonly answerCache?: () => { readonly hits: number; readonly misses: number };
  /** Cumulative TokenReviews answered since start, by result (counted by the handler in plain numbers). */
  readonly reviews?: () => Readonly<Record<ReviewResult, number>>;
  /** `lastUsedAt` stamps since start, and queued now (undefined before the source exists). */
  readonly stamps?: () => { readonly sent: number; readonly failed: number; readonly dropped: number; readonly queued: number } | undefined;
}

export type ReviewResult = 'authenticated' | 'unauthenticated' | 'error';

export function createWebhookMetrics(registry: Registry, sources: WebhookMetricsSources = {}): WebhookMetrics {
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const metrics: WebhookMetrics = {
    // A labelled increment per review cost ~10 µs of a cached review's ~80 (paired runs): counted by the handler, read here.
    reviews: scrapedCounter('kubegate_webhook_reviews_total', 'TokenReviews answered, by result (authenticated, unauthenticated, error).', 'result', registers, () => sources.reviews?.()),
    reviewDuration: countedHistogram('kubegate_webhook_review_duration_seconds', 'Time to answer a TokenReview.', REVIEW_DURATION_BUCKETS, registry),
    answerCache: hitMissCounter('kubegate_webhook_answer_cache_total', 'TokenReview answer cache lookups by request body, by result (hit or miss).', registers, sources.answerCache),
    watchRestarts: new Counter({
      name: 'kubegate_webhook_watch_restarts_total',
      help: 'Watches of the Kubernetes API restarted, by resource.',
      labelNames: ['resource'] as const,
      registers,
    }),
    objects: new Gauge({
      name: 'kubegate_webhook_objects',
      help: 'Objects currently held from the Kubernetes API, by resource.',
      labelNames: ['resource'] as const,
      registers,
    }),
    stamps: scrapedCounter('kubegate_webhook_stamps_total', 'lastUsedAt stamps of ClusterAuthTokens, by result (sent, failed, dropped: the queue was full).', 'result', registers, () => {
      const counts = sources.stamps?.();
      return counts === undefined ? undefined : { sent: counts.sent, failed: counts.failed, dropped: counts.dropped };
    }),
    stampsQueued: scrapedGauge('kubegate_webhook_stamps_queued', 'Tokens waiting for their lastUsedAt stamp (stamps.perSecond is the budget).', registers, () => sources.stamps?.()?.queued),
  };
  for (const result of ['authenticated', 'unauthenticated', 'error']) metrics.reviews.inc({ result }, 0);
  for (const result of ['sent', 'failed', 'dropped']) metrics.stamps.inc({ result }, 0);
  for (const result of ['hit', 'miss']) metrics.answerCache.inc({ result }, 0);
  return metrics;
}

export interface TunnelMetrics {
  /** Tunnels opened by agents, by cluster (each reconnect counts). */
  readonly connects: Counter<'cluster'>;
  /** Agent tunnel requests refused, `reason`: see TUNNEL_REFUSAL_REASONS. */
  readonly refused: Counter<'reason'>;
  /** Tunnels that ended after their hello, by cluster and `reason`: see TUNNEL_CLOSE_REASONS. */
  readonly closes: Counter<'cluster' | 'reason'>;
}

/** Why the proxy refused an agent's tunnel or registration: a bounded label set. */
export const TUNNEL_REFUSAL_REASONS = ['malformed', 'credential', 'wrong_cluster', 'not_agent_cluster', 'unavailable', 'handshake'] as const;
export type TunnelRefusalReason = (typeof TUNNEL_REFUSAL_REASONS)[number];

/**
 * Why an established tunnel ended, as the proxy counts it: the agent's GOAWAY (it stopped),
 * the connection lost without one, PINGs unanswered, an HTTP/2 or hello protocol error, a
 * newer tunnel of the same agent, a revoked credential or deleted cluster. A bounded label set.
 */
export const TUNNEL_CLOSE_REASONS = ['agent_closed', 'connection_lost', 'ping_timeout', 'protocol_error', 'replaced', 'revoked'] as const;
export type TunnelCloseReason = (typeof TUNNEL_CLOSE_REASONS)[number];

export interface TunnelMetricsSources {
  readonly stats?: () => {
    readonly tunnels: ReadonlyMap<string, number>;
    readonly streams: number;
    readonly bytesIn: number;
    readonly bytesOut: number;
  };
}

/** The proxy's tunnel metrics (registered next to createProxyMetrics' in the same registry). */
export function createTunnelMetrics(registry: Registry, sources: TunnelMetricsSources = {}): TunnelMetrics {
  const registers = [registry];
  new Gauge({
    name: 'kubegate_tunnels',
    help: 'Agent tunnels connected to this process, by cluster.',
    labelNames: ['cluster'] as const,
    registers,
    collect() {
      const stats = sources.stats?.();
      if (stats === undefined) return;
      this.reset();
      for (const [cluster, count] of stats.tunnels) this.set({ cluster }, count);
    },
  });
  scrapedGauge('kubegate_tunnel_streams', 'Streams open through agent tunnels (connections to cluster API servers).', registers, () => sources.stats?.().streams);
  scrapedCounter('kubegate_tunnel_bytes_total', 'Bytes through agent tunnels, by direction (in: from agents, out: to agents).', 'direction', registers, () => {
    const stats = sources.stats?.();
    return stats === undefined ? undefined : { in: stats.bytesIn, out: stats.bytesOut };
  });
  const metrics: TunnelMetrics = {
    connects: new Counter({
      name: 'kubegate_tunnel_connects_total',
      help: 'Tunnels opened by cluster agents, by cluster (reconnects included).',
      labelNames: ['cluster'] as const,
      registers,
    }),
    refused: new Counter({
      name: 'kubegate_tunnel_refused_total',
      help: 'Agent tunnel and registration requests refused, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    closes: new Counter({
      name: 'kubegate_tunnel_closes_total',
      help: 'Agent tunnels that ended after their hello, by cluster and reason.',
      labelNames: ['cluster', 'reason'] as const,
      registers,
    }),
  };
  for (const reason of TUNNEL_REFUSAL_REASONS) metrics.refused.inc({ reason }, 0);
  return metrics;
}

export interface AgentMetricsSources {
  readonly connected?: () => boolean;
}

export interface AgentMetrics {
  /** Tunnels the agent opened (reconnects included). */
  readonly connects: Counter;
  /** Attempts that failed (proxy unreachable or refusing). */
  readonly connectFailures: Counter;
  /** Tunnels that ended, by `reason`: see AGENT_TUNNEL_CLOSE_REASONS. */
  readonly closes: Counter<'reason'>;
}

/** Why the agent's tunnel ended, as the agent counts it (its own stop is not counted). */
export const AGENT_TUNNEL_CLOSE_REASONS = ['proxy_closed', 'connection_lost', 'ping_timeout', 'protocol_error'] as const;
export type AgentTunnelCloseReason = (typeof AGENT_TUNNEL_CLOSE_REASONS)[number];

export function createAgentMetrics(registry: Registry, sources: AgentMetricsSources = {}): AgentMetrics {
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: 'kubegate_agent_connected',
    help: '1 while the agent holds a tunnel to the proxy.',
    registers,
    collect() {
      this.set(sources.connected?.() === true ? 1 : 0);
    },
  });
  const metrics: AgentMetrics = {
    connects: new Counter({ name: 'kubegate_agent_connects_total', help: 'Tunnels the agent opened to the proxy.', registers }),
    connectFailures: new Counter({
      name: 'kubegate_agent_connect_failures_total',
      help: 'Attempts to open a tunnel that failed (proxy unreachable or refusing).',
      registers,
    }),
    closes: new Counter({
      name: 'kubegate_agent_tunnel_closes_total',
      help: 'Tunnels to the proxy that ended, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
  };
  for (const reason of AGENT_TUNNEL_CLOSE_REASONS) metrics.closes.inc({ reason }, 0);
  return metrics;
}
