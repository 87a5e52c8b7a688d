/**
 * kube-apiserver's webhook token authenticator, for the fake API server
 * (`--authentication-token-webhook-config-file`), so that kubectl with an authorized
 * cluster endpoint context is authenticated by the real kubegate webhook.
 *
 * Design note: it behaves as the real one in what kubegate depends on —
 * - it POSTs `{"apiVersion":"authentication.k8s.io/<v>","kind":"TokenReview","spec":{"token"}}`
 *   to the configured URL (v1 by default, v1beta1 when configured);
 * - a non-2xx answer, a transport error, an unparsable body, or an answer whose apiVersion
 *   or kind differs from the request's is an error: the request gets 401 and nothing is
 *   cached;
 * - `authenticated:false` WITH a `status.error` is an error too (webhook.go turns a non-empty
 *   error into `err`, and the cache does not keep errors: `cacheErrs` is false for webhooks);
 * - `authenticated:false` without an error is cached for the failure TTL, success for the
 *   success TTL (both `--authentication-token-webhook-cache-ttl`, default 2m), keyed by a
 *   hash of the token;
 * - `system:authenticated` is added to a successful user's groups (the group adder).
 * Retries (500 ms × 1.5, 5 steps on 429/5xx/resets) are left out: they only delay.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { FakeUser } from './kube-identity.js';

export interface FakeWebhookAuthnConfig {
  /** Full URL, e.g. `http://127.0.0.1:6440/v1/authenticate`. */
  readonly url: string;
  /** `--authentication-token-webhook-version`. Default v1. */
  readonly version?: 'v1' | 'v1beta1';
  /** `--authentication-token-webhook-cache-ttl` in ms, for successes and failures. Default 120 000. */
  readonly cacheTtlMs?: number;
  /** CA to verify an https webhook with. */
  readonly caPem?: string;
}

export interface RecordedReview {
  /** The name part of the token (before the colon); never the secret. */
  readonly tokenName: string;
  /** HTTP status of the webhook's answer, 0 on a transport error. */
  readonly status: number;
  readonly outcome: 'authenticated' | 'unauthenticated' | 'error';
  /** The webhook's answer as parsed, when it was JSON. */
  readonly answer: unknown;
}

interface CacheEntry {
  readonly user: FakeUser | undefined;
  readonly expiresAtMs: number;
}

export class FakeWebhookAuthenticator {
  /** Every TokenReview sent to the webhook (cache hits are not sent). */
  readonly reviews: RecordedReview[] = [];
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly config: FakeWebhookAuthnConfig) {}

  /** Forgets every cached answer (as a restarted API server would). */
  clearCache(): void {
    this.cache.clear();
  }

  /** The user the webhook vouches for, or undefined (401). */
  async authenticate(token: string): Promise<FakeUser | undefined> {
    const key = createHash('sha256').update(token).digest('hex');
    const cached = this.cache.get(key);
    if (cached !== undefined && Date.now() < cached.expiresAtMs) return cached.user;
    const version = this.config.version ?? 'v1';
    const apiVersion = `authentication.k8s.io/${version}`;
    const tokenName = token.includes(':') ? token.slice(0, token.indexOf(':')) : '';
    let status = 0;
    let answer: unknown;
    try {
      ({ status, answer } = await this.post({ apiVersion, kind: 'TokenReview', spec: { token } }));
    } catch {
      this.reviews.push({ tokenName, status: 0, outcome: 'error', answer: undefined });
      return undefined;
    }
    const review = answer as { apiVersion?: unknown; kind?: unknown; status?: { authenticated?: unknown; error?: unknown; user?: { username?: unknown; uid?: unknown; groups?: unknown; extra?: unknown } } } | undefined;
    const ttlMs = this.config.cacheTtlMs ?? 120_000;
    if (status < 200 || status > 299 || review === undefined || review.apiVersion !== apiVersion || review.kind !== 'TokenReview') {
      this.reviews.push({ tokenName, status, outcome: 'error', answer });
      return undefined;
    }
    const result = review.status ?? {};
    if (result.authenticated !== true) {
      const isError = typeof result.error === 'string' && result.error.length > 0;
      this.reviews.push({ tokenName, status, outcome: isError ? 'error' : 'unauthenticated', answer });
      if (!isError && ttlMs > 0) this.cache.set(key, { user: undefined, expiresAtMs: Date.now() + ttlMs });
      return undefined;
    }
    const user = result.user ?? {};
    if (typeof user.username !== 'string' || user.username === '') {
      this.reviews.push({ tokenName, status, outcome: 'error', answer });
      return undefined;
    }
    const groups = Array.isArray(user.groups) ? user.groups.filter((group): group is string => typeof group === 'string') : [];
    if (!groups.includes('system:authenticated')) groups.push('system:authenticated');
    const extra: Record<string, readonly string[]> = {};
    if (user.extra !== null && typeof user.extra === 'object') {
      for (const [extraKey, values] of Object.entries(user.extra as Record<string, unknown>)) {
        if (Array.isArray(values)) extra[extraKey] = values.filter((value): value is string => typeof value === 'string');
      }
    }
    const fakeUser: FakeUser = { username: user.username, ...(typeof user.uid === 'string' && user.uid !== '' ? { uid: user.uid } : {}), groups, extra };
    this.reviews.push({ tokenName, status, outcome: 'authenticated', answer });
    if (ttlMs > 0) this.cache.set(key, { user: fakeUser, expiresAtMs: Date.now() + ttlMs });
    return fakeUser;
  }

  private post(body: unknown): Promise<{ status: number; answer: unknown }> {
    const url = new URL(this.config.url);
    const payload = JSON.stringify(body);
    const send = url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const request = send(
        url,
        {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Content-Length': Buffer.byteLength(payload) },
          agent: false,
          timeout: 5000,
          ...(this.config.caPem === undefined ? {} : { ca: this.config.caPem }),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            let answer: unknown;
            try {
              answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              answer = undefined;
            }
            resolve({ status: response.statusCode ?? 0, answer });
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error('webhook timeout')));
      request.on('error', reject);
      request.end(payload);
    });
  }
}
