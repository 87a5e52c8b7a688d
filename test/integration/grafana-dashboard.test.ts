/**
 * deploy/grafana/kubegate.json against what the processes really export: the real proxy
 * (startProxy), the real webhook (startWebhook, reading the fake API server) and a real
 * `kubegate agent` process (registered with the proxy, its tunnel up) are started and
 * scraped, and every metric a dashboard query names must be among the scraped names
 * (a histogram's `_bucket`, `_sum` and `_count` included). And the other way round: every
 * kubegate_* metric the processes export is on the dashboard.
 */
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { startWebhook } from '../../src/cmd/webhook.js';
import type { RunningWebhook } from '../../src/cmd/webhook.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { loadWebhookConfig } from '../../src/config/webhook.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { spawnRegisteredAgent, type AgentProcess } from '../support/agent-process.js';
import { createApiClient } from '../support/api-client.js';
import { writeKubeconfig } from '../support/kubectl.js';
import type { WrittenKubeconfig } from '../support/kubectl.js';
import { scrapeMetrics } from '../support/scrape-metrics.js';

const DASHBOARD = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'deploy', 'grafana', 'kubegate.json');
const CLUSTER_TOKEN = 'grafana-test-cluster-token-0123456789';
const BOOTSTRAP_PASSWORD = 'grafana-test-password';

/** PromQL words that are not metric names. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression (or a Grafana label_values query) reads. */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals (label values, regexes)
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\$\{?\w+\}?/g, '') // Grafana variables
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // grouping label lists
  const names: string[] = [];
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    const word = match[0].replace(/\s*\($/, '');
    if (match[1] !== undefined) continue; // a function call
    if (KEYWORDS.has(word.toLowerCase())) continue;
    names.push(word);
  }
  // label_values(metric, label): the second argument is a label, not a metric.
  const labelValues = /label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)/.exec(expr);
  return labelValues === null ? names : names.filter((name) => name !== labelValues[2]);
}

/** Every sample name a Prometheus exposition can carry, from its `# TYPE` lines. */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

interface Dashboard {
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
  templating: { list: { type: string; query?: unknown }[] };
}

function queriesOf(dashboard: Dashboard): string[] {
  const panelQueries = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
  const variableQueries = dashboard.templating.list
    .filter((variable) => variable.type === 'query')
    .map((variable) => (typeof variable.query === 'string' ? variable.query : (variable.query as { query: string }).query));
  return [...panelQueries, ...variableQueries];
}

describe('the Grafana dashboard', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let webhook: RunningWebhook;
  let agent: AgentProcess;
  let kubeconfig: WrittenKubeconfig;
  let exported: Set<string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-grafana-'));
    fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: ['default', 'cattle-system'] });
    const configFile = join(dir, 'kubegate.yaml');
    await writeFile(configFile, ['listen: 127.0.0.1:0', `dataDir: ${join(dir, 'data')}`, 'audit:', '  enabled: false', 'metrics:', '  listen: 127.0.0.1:0'].join('\n'));
    const logger = createLogger({ level: 'silent', name: 'grafana-test' });
    proxy = await startProxy(loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: BOOTSTRAP_PASSWORD } }), { logger });
    kubeconfig = await writeKubeconfig({ server: fake.url, caPem: fake.caPem, token: CLUSTER_TOKEN });
    webhook = await startWebhook(loadWebhookConfig({ env: {}, flags: { listen: '127.0.0.1:0', kubeconfig: kubeconfig.path } }), { logger });
    await webhook.source.synced();
    const api = createApiClient(proxy.url, proxy.caPem ?? '');
    agent = await spawnRegisteredAgent({
      dir,
      proxyUrl: proxy.url,
      proxyCaPem: proxy.caPem ?? '',
      api,
      adminToken: await api.login('admin', BOOTSTRAP_PASSWORD),
      apiServer: { url: fake.url, caPem: fake.caPem, token: CLUSTER_TOKEN },
      clusterId: 'edge',
      agentId: 'grafana-agent',
    });
    const agentExposition = await scrapeMetrics(await agent.listenerUrl('metrics'));
    assert.match(agentExposition, /^kubegate_agent_connected 1$/m, 'the agent is scraped with its tunnel up');
    exported = new Set([...exportedNames(await scrapeMetrics(proxy.metricsUrl!)), ...exportedNames(await scrapeMetrics(webhook.url)), ...exportedNames(agentExposition)]);
  });

  after(async () => {
    await agent?.kill();
    await webhook?.stop();
    await proxy?.stop();
    await kubeconfig?.remove();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads metric names out of PromQL, leaving functions, labels, strings and variables aside', () => {
    assert.deepEqual(metricNamesIn('sum by (cluster) (rate(kubegate_a_total{job=~"$job",code=~"5.."}[$__rate_interval])) / sum(kubegate_b)'), ['kubegate_a_total', 'kubegate_b']);
    assert.deepEqual(metricNamesIn('histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))'), ['x_bucket']);
    assert.deepEqual(metricNamesIn('label_values(kubegate_c, job)'), ['kubegate_c']);
  });

  it('names only metrics that the proxy, the webhook and the agent export', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
    const queries = queriesOf(dashboard);
    assert.ok(queries.length >= 15, 'the dashboard has its queries');
    for (const query of queries) {
      const names = metricNamesIn(query);
      assert.ok(names.length > 0, `no metric in ${query}`);
      for (const name of names) assert.ok(exported.has(name), `${name} (in ${query}) is not exported by the proxy, the webhook or the agent`);
    }
  });

  it('shows every kubegate metric the processes export', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
    const used = new Set(queriesOf(dashboard).flatMap(metricNamesIn).map((name) => name.replace(/_(bucket|sum|count)$/, '')));
    const kubegate = [...exported].filter((name) => name.startsWith('kubegate_') && !/_(bucket|sum|count)$/.test(name));
    assert.ok(kubegate.length >= 10);
    for (const name of kubegate) assert.ok(used.has(name), `${name} is exported but on no panel`);
  });
});
