/**
 * Webhook scenarios: TokenReviews/s and latency of `kubegate webhook` (the real command, in
 * its own process, reading its objects from the fake kube-apiserver in another process) with
 * a warm cache (one token), with every token distinct (each review a cold `$3` SHA3-512
 * verify the cache cannot help; wrk's Lua makes each request's token), and with distinct `$1`
 * scrypt tokens (Rancher's oldest, deliberately slow hash; few, so a node:http driver in this
 * process sends each once). A bare node:http TokenReview answerer (bench/review-reference.ts)
 * gives the reference row, the floor of any Node webhook on this machine.
 */
import http from 'node:http';
import { join } from 'node:path';
import type { WebhookResult } from './report.js';
import { freePort, startChild } from './processes.js';
import type { Child } from './processes.js';
import { percentile } from './scenarios.js';
import type { BenchSettings } from './scenarios.js';
import { kubegateEntry } from './targets.js';
import type { Tls } from './targets.js';
import { runWrk } from './wrk.js';
import type { WrkResult } from './wrk.js';

const REPO = new URL('..', import.meta.url).pathname;
const NODE_ARGS = ['--import', 'tsx'];
const CONNECTIONS = 16;
const API_VERSION = 'authentication.k8s.io/v1';

function reviewBody(token: string): string {
  return JSON.stringify({ apiVersion: API_VERSION, kind: 'TokenReview', spec: { token } });
}

/** The warm-cache review: token 0 of the `$3` tokens the bench API server holds. */
export const CACHED_REVIEW_BODY = reviewBody('t-sha3-0:secret-0');
export const REVIEW_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'application/json' };

/**
 * wrk's Lua for reviews of distinct `$3` tokens: the i-th request reviews `t-sha3-<first+i>`
 * (i from 1); with `tokens`, indexes wrap to 1…tokens−1 (token 0 is the warm-cache one).
 */
export function distinctReviewScript(first: number, tokens?: number): string {
  const index = tokens === undefined ? 'i' : `1 + ((i - 1) % ${tokens - 1})`;
  return [
    `local i = ${first}`,
    'request = function()',
    '  i = i + 1',
    `  local n = ${index}`,
    `  local body = '{"apiVersion":"${API_VERSION}","kind":"TokenReview","spec":{"token":"t-sha3-' .. n .. ':secret-' .. n .. '"}}'`,
    '  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)',
    'end',
  ].join('\n');
}

/** Reviews each token once over `connections` keep-alive sockets; every one must be authenticated. */
async function reviewEach(url: string, tokens: readonly string[], connections: number): Promise<Record<string, unknown>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  let failures = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  const review = (token: string): Promise<void> =>
    new Promise((resolve) => {
      const body = reviewBody(token);
      const start = process.hrtime.bigint();
      const req = http.request(`${url}/v1/authenticate`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 10_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
          if (!text.includes('"authenticated":true')) failures++;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end(body);
    });
  const lane = async (): Promise<void> => {
    while (next < tokens.length) await review(tokens[next++] as string);
  };
  await Promise.all(Array.from({ length: connections }, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  return {
    reviews: tokens.length,
    reviewsPerSecond: tokens.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    failures,
  };
}

/** The API server behind the webhook, in its own process; its kubeconfig. */
export async function startWebhookApiServer(sha3Tokens: number, scryptTokens: number, dir: string): Promise<{ child: Child; kubeconfig: string }> {
  const { child, readyLine } = await startChild('webhook-apiserver', process.execPath, [...NODE_ARGS, join(REPO, 'bench/webhook-apiserver.ts'), JSON.stringify({ sha3Tokens, scryptTokens, dir })], {
    cwd: REPO,
    readyTimeoutMs: 300_000,
  });
  return { child, kubeconfig: (JSON.parse(readyLine) as { kubeconfig: string }).kubeconfig };
}

/** The bare node:http answerer (the reference row); `cpuProfileDir`: under `node --cpu-prof`. */
export async function startReviewReference(cpuProfileDir?: string): Promise<{ child: Child; url: string }> {
  const profile = cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir];
  const { child, readyLine } = await startChild('review-reference', process.execPath, [...NODE_ARGS, ...profile, join(REPO, 'bench/review-reference.ts'), String(await freePort())], { cwd: REPO });
  return { child, url: (JSON.parse(readyLine) as { url: string }).url };
}

/** `kubegate webhook` from `repo`'s compiled dist/, once it has listed its objects. */
export async function startKubegateWebhook(kubeconfig: string, options: { readonly repo?: string; readonly name?: string; readonly cpuProfileDir?: string | undefined } = {}): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const profile = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir];
  const { child } = await startChild(options.name ?? 'webhook', process.execPath, [...profile, kubegateEntry(options.repo ?? REPO), 'webhook', '--listen', `127.0.0.1:${port}`, '--kubeconfig', kubeconfig], {
    cwd: REPO,
    ready: (line) => line.includes('"msg":"webhook objects listed; ready"'),
    readyTimeoutMs: 300_000,
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

export async function webhookScenario(_tls: Tls, settings: BenchSettings, log: (message: string) => void): Promise<WebhookResult> {
  // Enough distinct tokens that wrk never runs out within the run (it reports if it does).
  const sha3Tokens = settings.webhookSha3Tokens;
  const scryptTokens = settings.webhookScryptTokens;
  const children: Child[] = [];
  try {
    const reference = await startReviewReference();
    children.push(reference.child);
    const apiServer = await startWebhookApiServer(sha3Tokens, scryptTokens, settings.workDir);
    children.push(apiServer.child);
    const webhook = await startKubegateWebhook(apiServer.kubeconfig);
    children.push(webhook.child);
    const { url } = webhook;
    const referenceUrl = reference.url;

    const body = CACHED_REVIEW_BODY;
    const headers = REVIEW_HEADERS;
    const wrkReview = (target: string, connections: number, requestScript?: string): Promise<WrkResult> =>
      runWrk({ url: `${target}/v1/authenticate`, connections, durationSeconds: settings.webhookSeconds, method: 'POST', headers, body, workDir: settings.workDir, ...(requestScript === undefined ? {} : { requestScript }) });
    if (!settings.quick) {
      await runWrk({ url: `${url}/v1/authenticate`, connections: CONNECTIONS, durationSeconds: 1, method: 'POST', headers, body, workDir: settings.workDir });
      await runWrk({ url: `${referenceUrl}/v1/authenticate`, connections: CONNECTIONS, durationSeconds: 1, method: 'POST', headers, body, workDir: settings.workDir });
    }

    const rows: Record<string, unknown>[] = [];
    const row = (name: string, hash: string, connections: number, result: Omit<WrkResult, 'bytesPerSecond' | 'durationSeconds' | 'maxMs' | 'non2xx'>, reference: number | undefined): Record<string, unknown> => ({
      case: name,
      hash,
      connections,
      reviews: result.requests,
      reviewsPerSecond: result.requestsPerSecond,
      xReference: reference === undefined ? null : result.requestsPerSecond / reference,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      failures: result.errors,
      generatorCores: result.generatorCores,
    });
    const referenceRates = new Map<number, number>();
    for (const connections of [1, CONNECTIONS]) {
      const floor = await wrkReview(referenceUrl, connections);
      referenceRates.set(connections, floor.requestsPerSecond);
      rows.push(row('reference (bare node:http answer)', '–', connections, floor, undefined));
      const warm = await wrkReview(url, connections);
      rows.push(row('cached', '$3', connections, warm, floor.requestsPerSecond));
    }
    // Token 0 was reviewed above: the distinct run starts at 1 and must stay under sha3Tokens.
    const distinct = await wrkReview(url, CONNECTIONS, distinctReviewScript(0));
    if (distinct.requests >= sha3Tokens) log(`webhook: ${distinct.requests} distinct reviews asked of ${sha3Tokens - 1} tokens; the rest were unknown tokens`);
    rows.push(row('every token distinct', '$3', CONNECTIONS, distinct, referenceRates.get(CONNECTIONS)));
    const scrypt = Array.from({ length: scryptTokens }, (_, i) => `t-scrypt-${i}:secret-${i}`);
    rows.push({ case: 'every token distinct', hash: '$1 scrypt', connections: CONNECTIONS, xReference: null, ...(await reviewEach(url, scrypt, CONNECTIONS)), generatorCores: null });
    return { status: 'measured', rows };
  } catch (error) {
    log(`webhook scenario failed: ${String(error).slice(0, 300)}`);
    return { status: 'pending', reason: `the webhook scenario could not run here: ${String(error).split('\n')[0]}` };
  } finally {
    for (const child of children.reverse()) await child.stop();
  }
}
