/**
 * Webhook scenarios: TokenReviews/s and latency with a warm cache (wrk, one token, c=16),
 * with every token distinct (each review a cold `$3` SHA3-512 verify: the cache cannot
 * help), and with distinct `$1` scrypt tokens (Rancher's oldest, deliberately slow hash).
 * Distinct-token runs cannot use wrk (each token must be reviewed once), so a node:http
 * driver in this process sends each token once over `connections` keep-alive sockets.
 */
import http from 'node:http';
import { join } from 'node:path';
import type { WebhookResult } from './report.js';
import { startChild } from './processes.js';
import { percentile } from './scenarios.js';
import type { BenchSettings } from './scenarios.js';
import type { Tls } from './targets.js';
import { runWrk } from './wrk.js';

const REPO = new URL('..', import.meta.url).pathname;
const CONNECTIONS = 16;

function reviewBody(token: string): string {
  return JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
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

export async function webhookScenario(_tls: Tls, settings: BenchSettings, log: (message: string) => void): Promise<WebhookResult> {
  const sha3Tokens = settings.quick ? 500 : 20_000;
  const scryptTokens = settings.quick ? 8 : 64;
  let started;
  try {
    started = await startChild('webhook', process.execPath, ['--import', 'tsx', join(REPO, 'bench/webhook-server.ts'), JSON.stringify({ sha3Tokens, scryptTokens })], {
      cwd: REPO,
      readyTimeoutMs: 300_000,
    });
  } catch (error) {
    log(`webhook could not be started: ${String(error).slice(0, 300)}`);
    return { status: 'pending', reason: `kubegate webhook could not be started here: ${String(error).split('\n')[0]}` };
  }
  const { child, readyLine } = started;
  try {
    const url = (JSON.parse(readyLine) as { url: string }).url;
    const rows: Record<string, unknown>[] = [];
    const body = reviewBody('t-sha3-0:secret-0');
    const headers = { 'content-type': 'application/json' };
    await runWrk({ url: `${url}/v1/authenticate`, connections: CONNECTIONS, durationSeconds: 1, method: 'POST', headers, body, workDir: settings.workDir });
    for (const connections of [1, CONNECTIONS]) {
      const warm = await runWrk({ url: `${url}/v1/authenticate`, connections, durationSeconds: settings.webhookSeconds, method: 'POST', headers, body, workDir: settings.workDir });
      rows.push({ case: 'cached', hash: '$3', connections, reviews: warm.requests, reviewsPerSecond: warm.requestsPerSecond, p50Ms: warm.p50Ms, p99Ms: warm.p99Ms, failures: warm.errors, generatorCores: warm.generatorCores });
    }
    // Token 0 was reviewed above: the distinct run starts at 1.
    const distinct = Array.from({ length: sha3Tokens - 1 }, (_, i) => `t-sha3-${i + 1}:secret-${i + 1}`);
    rows.push({ case: 'every token distinct', hash: '$3', connections: CONNECTIONS, ...(await reviewEach(url, distinct, CONNECTIONS)), generatorCores: null });
    const scrypt = Array.from({ length: scryptTokens }, (_, i) => `t-scrypt-${i}:secret-${i}`);
    rows.push({ case: 'every token distinct', hash: '$1 scrypt', connections: CONNECTIONS, ...(await reviewEach(url, scrypt, CONNECTIONS)), generatorCores: null });
    return { status: 'measured', rows };
  } finally {
    await child.stop();
  }
}
