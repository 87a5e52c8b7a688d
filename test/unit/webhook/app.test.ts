/**
 * The webhook handler over a real node:http server: a failure while answering from the cache
 * is a Kubernetes Status, never an uncaught exception in the request's 'end' event (which would
 * end the process), and a verifier that throws answers an undecided review.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Registry } from 'prom-client';
import { authenticated } from '../../../src/auth/authenticator.js';
import type { TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { makeUserInfo } from '../../../src/auth/user.js';
import { createLogger } from '../../../src/log.js';
import { createWebhookMetrics } from '../../../src/metrics.js';
import { startServer } from '../../../src/server.js';
import type { RunningServer } from '../../../src/server.js';
import { createAnswerCache } from '../../../src/webhook/answers.js';
import { createWebhookHandler } from '../../../src/webhook/app.js';

function post(url: string, body: string): Promise<{ status: number; json: { kind?: string; code?: number; status?: unknown } }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}/v1/authenticate`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) as { kind?: string } }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

const logger = createLogger({ level: 'silent', name: 'webhook' });

/** The handler with this verifier and an answer cache, served on a port of its own. */
function serve(authenticator: TokenAuthenticator, recordUse: () => void = () => undefined): Promise<RunningServer> {
  const handler = createWebhookHandler({
    authenticator,
    answers: createAnswerCache({ successTtlMs: 60_000, failureTtlMs: 60_000, maxEntries: 10 }),
    source: { ready: true, recordUse },
    metrics: createWebhookMetrics(new Registry()),
    logger,
  });
  return startServer({ listen: '127.0.0.1:0', handler, logger });
}

describe('webhook handler: answers from the answer cache', () => {
  let server: RunningServer;
  let failStamping = false;
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 't-a:s' } });

  before(async () => {
    const verifier = { authenticateToken: async () => authenticated(makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: [] }), { name: 't-a', expiresAt: null, clusterId: null }) };
    const recordUse = (): void => {
      if (failStamping) throw new Error('stamping broke');
    };
    server = await serve(verifier, recordUse);
  });

  after(async () => {
    await server.close();
  });

  it('answers a failure on the cached path with a 500 Status and keeps serving', { timeout: 20_000 }, async () => {
    assert.equal((await post(server.url, body)).status, 200);
    failStamping = true;
    const failed = await post(server.url, body);
    assert.equal(failed.status, 500);
    assert.equal(failed.json.kind, 'Status');
    failStamping = false;
    const again = await post(server.url, body);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.status, { authenticated: true, user: { username: 'u-aaaaaaaaaaaa', uid: 'u-aaaaaaaaaaaa', groups: [] } });
  });
});

describe('webhook handler: a verifier that throws', () => {
  let server: RunningServer;
  let calls = 0;

  before(async () => {
    server = await serve({
      authenticateToken: async () => {
        calls++;
        throw new Error('the verifier broke');
      },
    });
  });

  after(async () => {
    await server.close();
  });

  it('answers an undecided review (status.error, which the API server does not cache), remembers nothing, and asks again next time', { timeout: 20_000 }, async () => {
    const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 't-a:s' } });
    for (const expectedCalls of [1, 2]) {
      const answer = await post(server.url, body);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json.status, { authenticated: false, error: 'INTERNAL: internal error' }, 'the cause stays in the log');
      assert.equal(calls, expectedCalls);
    }
  });
});
