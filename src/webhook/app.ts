/**
 * The webhook's HTTP surface (no listen; cmd/webhook.ts serves it):
 *
 * - `POST /v1/authenticate`: a TokenReview (v1 or v1beta1), answered in the request's version
 *   from the cached verifier. Bodies over `maxBodyBytes` are 413, bodies that are not JSON
 *   or not a TokenReview 400, both as Kubernetes Status JSON with a message naming the
 *   problem (never the token); other methods 405. A decided review is always HTTP 200 —
 *   see token-review.ts for how "rejected" (cached by kube-apiserver) and "could not
 *   decide" (not cached, `status.error`) differ, and verify.ts for which failure is which.
 * - `GET /healthcheck`: 200 `ok`, as kube-api-auth (its DaemonSet probes use it).
 * - `GET /healthz`, `/readyz` (ready once every resource was listed), and `/metrics` when
 *   given a registry (cmd/webhook.ts leaves it out when metrics have a listener of their
 *   own), only to scrapes with the bearer token when one is configured.
 *
 * A token valid for none of the requested audiences (config `audiences`, token-review.ts) is
 * answered `authenticated: false` and not stamped as used.
 *
 * Per review: metrics (latency; the result counted in plain numbers, which `/metrics` reads
 * when scraped, as it reads cache hits and misses), a debug log line with the outcome and the token NAME only (built only when debug
 * is on), and, on success, a background `lastUsedAt` stamp. The reply is written from a
 * template (token-review.ts). A body seen before is answered from the answer cache
 * (answers.ts: when, and for how long, that is the same answer) with its prebuilt reply —
 * read by callback, written with a raw header list, no promise, no parse; the same counts,
 * stamp, metrics and log as any review. Any other body is parsed and its token verified
 * (verify.ts; no cache between the two but slow-hashes.ts's `$1` matches), and the reply
 * remembered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { undecided } from '../auth/authenticator.js';
import type { AuthResult, TokenAuthenticator } from '../auth/authenticator.js';
import { KubegateError, toKubegateError } from '../errors.js';
import { writeStatus } from '../kube/status.js';
import type { Logger } from '../log.js';
import type { ReviewResult, WebhookMetrics } from '../metrics.js';
import { createHealthHandler } from '../server.js';
import { tryParseToken } from '../tokens/format.js';
import type { AnswerCache } from './answers.js';
import { checkAudiences, parseTokenReview, tokenReviewReplyJson } from './token-review.js';

const AUTHENTICATE_PATH = '/v1/authenticate';
const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

export interface WebhookAppDeps {
  /** The token verifier (verify.ts), asked on every review the answer cache does not answer. */
  readonly authenticator: TokenAuthenticator;
  /** Readiness, and where successful uses are recorded. */
  readonly source: { readonly ready: boolean; recordUse(name: string, at: Date): void };
  readonly metrics: WebhookMetrics;
  /** Served as `/metrics`; absent: `/metrics` is 404 here. */
  readonly registry?: Registry | undefined;
  /** Scrapes of `/metrics` must present `Authorization: Bearer <this>`. */
  readonly metricsBearerToken?: string | undefined;
  readonly logger: Logger;
  /** Audiences kubegate tokens are valid for (config `audiences`); empty: the API server's default. */
  readonly audiences?: readonly string[];
  /** The answer cache by request body (answers.ts); without it every review is parsed and verified. */
  readonly answers?: AnswerCache | undefined;
  /** Largest TokenReview body accepted. Default 65 536. */
  readonly maxBodyBytes?: number;
  readonly now?: () => Date;
}

export interface WebhookHandler {
  (request: IncomingMessage, response: ServerResponse): void;
  /** `/readyz` answers 503 from now on. */
  markShuttingDown(): void;
  /** TokenReviews answered since start, by result (`kubegate_webhook_reviews_total` reads them when scraped). */
  reviewCounts(): Readonly<Record<ReviewResult, number>>;
}

export function createWebhookHandler(deps: WebhookAppDeps): WebhookHandler {
  const { authenticator, source, metrics, logger } = deps;
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const audiences = deps.audiences ?? [];
  const now = deps.now ?? (() => new Date());
  const reviewCounts: Record<ReviewResult, number> = { authenticated: 0, unauthenticated: 0, error: 0 };
  const health = createHealthHandler({
    registry: deps.registry,
    metricsBearerToken: deps.metricsBearerToken,
    ready: async () => {
      if (!source.ready) throw new KubegateError('NOT_READY', 'the webhook has not listed its objects yet');
    },
  });
  const { answers } = deps;

  /** Reads the body, then answers from the answer cache or `review`; no promise on a hit. */
  function authenticate(request: IncomingMessage, response: ServerResponse): void {
    const started = performance.now();
    readBody(request, maxBodyBytes, (failure, body) => {
      // Runs from the request's 'end' event: whatever throws is answered here, never left to crash the process.
      try {
        if (failure !== undefined) {
          fail(response, failure);
          return;
        }
        const key = answers?.keyOf(body);
        const hit = key === undefined ? undefined : answers?.get(key);
        if (hit === undefined) {
          review(body, key, response, started).catch((error: unknown) => fail(response, error));
          return;
        }
        if (hit.outcome === 'authenticated' && hit.tokenName !== undefined) source.recordUse(hit.tokenName, now());
        reviewCounts[hit.outcome]++;
        writeReply(response, hit.body, hit.bodyBytes);
        metrics.reviewDuration.observe((performance.now() - started) / 1000);
        if (logger.isLevelEnabled('debug')) logger.debug({ tokenName: hit.tokenName, outcome: hit.outcome, ...(hit.code === undefined ? {} : { code: hit.code }), answerCache: 'hit' }, 'token review');
      } catch (error) {
        fail(response, error);
      }
    });
  }

  async function review(body: Buffer, key: string | undefined, response: ServerResponse, started: number): Promise<void> {
    const parsed = parseTokenReview(parseJson(body));
    const epoch = answers?.epoch ?? 0;
    let verified: AuthResult;
    try {
      verified = await authenticator.authenticateToken(parsed.token, parsed.audiences.length === 0 ? undefined : { audiences: parsed.audiences });
    } catch (error) {
      // The verifier answers every failure itself; whatever still throws is a bug: logged, and undecided, never a rejection.
      logger.error({ err: error }, 'token verification failed');
      verified = undecided(toKubegateError(error));
    }
    const result = checkAudiences(parsed, verified, audiences);
    if (result.outcome === 'authenticated') source.recordUse(result.token.name, now());
    reviewCounts[result.outcome]++;
    const reply = tokenReviewReplyJson(parsed, result, audiences);
    const replyBytes = Buffer.byteLength(reply);
    writeReply(response, reply, replyBytes);
    metrics.reviewDuration.observe((performance.now() - started) / 1000);
    // The name on the wire (never the secret); an authenticated answer carries it already.
    const tokenName = verified.outcome === 'authenticated' ? verified.token.name : tryParseToken(parsed.token)?.name;
    if (key !== undefined && result.outcome !== 'error') answers?.remember(key, epoch, verified, result, reply, replyBytes, tokenName);
    if (result.outcome === 'error') {
      logger.info({ tokenName, outcome: result.outcome, code: result.error.code, reason: result.error.message }, 'token review undecided');
    } else if (logger.isLevelEnabled('debug')) {
      const code = result.outcome === 'unauthenticated' ? result.code : undefined;
      logger.debug({ tokenName, outcome: result.outcome, ...(code === undefined ? {} : { code }) }, 'token review');
    }
  }

  /** A review that could not be answered: Kubernetes Status (400/413/415/500), or a cut connection once the answer began. */
  function fail(response: ServerResponse, error: unknown): void {
    const failure = toKubegateError(error);
    if (failure.code === 'INTERNAL') logger.error({ err: error }, 'token review failed');
    if (failure.code === 'BAD_REQUEST' || failure.code === 'PAYLOAD_TOO_LARGE' || failure.code === 'UNSUPPORTED_MEDIA_TYPE') {
      reviewCounts.error++;
    }
    if (response.headersSent) response.destroy();
    else writeStatus(response, failure);
  }

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const url = request.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (path === AUTHENTICATE_PATH) {
      if (request.method !== 'POST') {
        response.setHeader('allow', 'POST');
        writeStatus(response, new KubegateError('METHOD_NOT_ALLOWED', 'POST a TokenReview to /v1/authenticate'));
        request.resume();
        return;
      }
      authenticate(request, response);
      return;
    }
    if (path === '/healthcheck') {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.setHeader('allow', 'GET, HEAD');
        writeStatus(response, new KubegateError('METHOD_NOT_ALLOWED'));
        return;
      }
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 3, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : 'ok\n');
      return;
    }
    if (health(request, response)) return;
    writeStatus(response, new KubegateError('NOT_FOUND', 'the webhook serves POST /v1/authenticate'));
  };
  return Object.assign(handle, { markShuttingDown: () => health.markShuttingDown(), reviewCounts: () => reviewCounts });
}

/** One review's answer: status 200, a raw header list and the whole body (`bytes` long) in one end(). */
function writeReply(response: ServerResponse, body: string, bytes: number): void {
  response.writeHead(200, ['content-type', 'application/json', 'content-length', String(bytes), 'cache-control', 'no-store']);
  response.end(body);
}

const EMPTY = Buffer.alloc(0);

/**
 * Reads a body of at most `maxBytes` and calls `done` once, with the body or with
 * UNSUPPORTED_MEDIA_TYPE / PAYLOAD_TOO_LARGE / BAD_REQUEST (empty) — by callback, so that an
 * answer from the cache waits for no promise. A one-chunk body is not copied.
 */
function readBody(request: IncomingMessage, maxBytes: number, done: (failure: unknown, body: Buffer) => void): void {
  const contentType = request.headers['content-type'];
  if (contentType !== undefined && !/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(contentType)) {
    request.resume();
    done(new KubegateError('UNSUPPORTED_MEDIA_TYPE', 'the TokenReview must be sent as application/json'), EMPTY);
    return;
  }
  const tooLarge = (): KubegateError => new KubegateError('PAYLOAD_TOO_LARGE', `the TokenReview body is larger than ${maxBytes} bytes`);
  const declared = Number(request.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    done(tooLarge(), EMPTY);
    return;
  }
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  let settled = false;
  const settle = (failure: unknown, body: Buffer): void => {
    if (settled) return;
    settled = true;
    done(failure, body);
  };
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > maxBytes) {
      // Stop keeping the body but let it drain, so that the 413 answer can be read.
      request.off('data', onData);
      request.resume();
      settle(tooLarge(), EMPTY);
      return;
    }
    if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
  };
  request.on('data', onData);
  request.once('end', () => {
    if (size === 0) settle(new KubegateError('BAD_REQUEST', 'the body is empty; POST a TokenReview', { field: 'body' }), EMPTY);
    else settle(undefined, more === undefined ? (first as Buffer) : Buffer.concat(more, size));
  });
  request.once('error', (error) => settle(error, EMPTY));
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new KubegateError('BAD_REQUEST', 'the body is not valid JSON', { field: 'body' });
  }
}
