import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { KubegateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createHealthHandler, createLongRunningRegistry, installSignalHandlers, startMetricsServer, startServer } from '../../src/server.js';
import type { RunningServer, StartServerOptions } from '../../src/server.js';
import { createCertificateAuthority, issueServingCertificate } from '../../src/pki/certificates.js';

const logLines: string[] = [];
const logger = createLogger({ level: 'info', name: 'server-test', destination: { write: (line: string) => void logLines.push(line) } });

const running: RunningServer[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  await Promise.all(running.splice(0).map((server) => server.close({ graceMs: 0 })));
  logLines.length = 0;
});

async function start(options: Partial<StartServerOptions> & Pick<StartServerOptions, 'handler'>): Promise<RunningServer> {
  const server = await startServer({ listen: '127.0.0.1:0', logger, ...options });
  running.push(server);
  return server;
}

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function get(url: string, options: { agent?: Agent; method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { agent: options.agent ?? false, method: options.method ?? 'GET', headers: options.headers ?? {} }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('error', reject).end();
  });
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

describe('startServer', () => {
  it('listens on port 0 and reports the real address and URL', async () => {
    const server = await start({ handler: (_request, response) => response.end('hello') });
    const { host, port } = server.address();
    assert.equal(host, '127.0.0.1');
    assert.ok(port > 0);
    assert.equal(server.url, `http://127.0.0.1:${port}`);
    assert.equal((await get(`${server.url}/`)).body, 'hello');
  });

  it('serves HTTPS with the given certificate', async () => {
    const ca = await createCertificateAuthority({ commonName: 'test-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['127.0.0.1'], validityDays: 1 });
    const server = await start({ tls: { cert: serving.certPem, key: serving.keyPem }, handler: (_request, response) => response.end('secure') });
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const body = await new Promise<string>((resolve, reject) => {
      httpsRequest(`${server.url}/`, { ca: ca.certPem, agent: false }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    assert.equal(body, 'secure');
  });

  it('fails with LISTEN_FAILED naming the address when the port is taken', async () => {
    const first = await start({ handler: (_request, response) => response.end() });
    const listen = `127.0.0.1:${first.address().port}`;
    await assert.rejects(
      startServer({ listen, logger, handler: (_request, response) => response.end() }),
      (error: unknown) => error instanceof KubegateError && error.code === 'LISTEN_FAILED' && error.message.includes(`${listen} (EADDRINUSE)`),
    );
  });

  it('names the setting first when the port is taken, so a second proxy says which listener to move (metrics.listen)', async () => {
    const first = await start({ handler: (_request, response) => response.end() });
    const listen = `127.0.0.1:${first.address().port}`;
    await assert.rejects(startMetricsServer({ listen, registry: new Registry(), logger }), {
      code: 'LISTEN_FAILED',
      message: `metrics.listen: cannot listen on ${listen} (EADDRINUSE)`,
    });
    await assert.rejects(startServer({ listen, setting: 'healthListen', logger, handler: (_request, response) => response.end() }), {
      code: 'LISTEN_FAILED',
      message: `healthListen: cannot listen on ${listen} (EADDRINUSE)`,
    });
  });

  it('answers 500 INTERNAL when a handler throws or rejects, without the error text', async () => {
    const server = await start({
      handler: async (request) => {
        if (request.url === '/sync') throw new Error('secret detail');
        await Promise.resolve();
        throw new Error('secret detail');
      },
    });
    for (const path of ['/sync', '/async']) {
      const reply = await get(`${server.url}${path}`);
      assert.equal(reply.status, 500);
      assert.deepEqual(JSON.parse(reply.body), { error: { code: 'INTERNAL', message: 'internal error' } });
    }
  });

  it('answers 408 to a client that never finishes its headers, because slow clients must not hold connections', async () => {
    const server = await start({ headersTimeoutMs: 200, handler: (_request, response) => response.end() });
    const socket = connect(server.address().port, '127.0.0.1');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    const started = performance.now();
    await once(socket, 'close');
    assert.match(received, /^HTTP\/1\.1 408 /);
    assert.ok(performance.now() - started < 2_000);
  });

  it('closes an HTTPS connection whose TLS handshake does not finish within the header timeout, bytes trickling or none', { timeout: 60_000 }, async () => {
    const ca = await createCertificateAuthority({ commonName: 'handshake-test-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost'], validityDays: 1 });
    const server = await start({ tls: { cert: serving.certPem, key: serving.keyPem }, headersTimeoutMs: 200, handler: (_request, response) => response.end('ok') });
    // A handshake record announcing 16,000 bytes, and nothing more; the other sends nothing at all.
    const trickled = connect(server.address().port, '127.0.0.1');
    trickled.on('error', () => {});
    trickled.write(Buffer.from([0x16, 0x03, 0x01, 0x3e, 0x80]));
    const silent = connect(server.address().port, '127.0.0.1');
    silent.on('error', () => {});
    await Promise.all([once(trickled, 'close'), once(silent, 'close')]);
  });

  it('keeps a silent response open past the header and keep-alive timeouts, because a watch may be silent for minutes', async () => {
    const server = await start({
      headersTimeoutMs: 100,
      keepAliveTimeoutMs: 100,
      handler: (_request, response) => {
        response.write('first\n');
        setTimeout(() => response.end('last\n'), 400);
      },
    });
    assert.equal((await get(`${server.url}/`)).body, 'first\nlast\n');
  });

  it('does not time out a request body that streams longer than the header timeout, because bodies are streamed upstream', async () => {
    const server = await start({
      headersTimeoutMs: 200,
      handler: (request, response) => {
        let length = 0;
        request.on('data', (chunk: Buffer) => (length += chunk.length));
        request.on('end', () => response.end(`received ${length}`));
      },
    });
    const reply = await new Promise<Reply>((resolve, reject) => {
      const request = httpRequest(`${server.url}/upload`, { method: 'POST', agent: false }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      });
      request.on('error', reject);
      request.flushHeaders();
      let sent = 0;
      const timer = setInterval(() => {
        request.write('x'.repeat(100));
        sent += 1;
        if (sent === 6) {
          clearInterval(timer);
          request.end();
        }
      }, 100);
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'received 600');
  });
});

describe('bodyTimeoutMs', () => {
  /** A handler that reads the whole body before it answers, as express.json does. */
  const readWhole = (request: IncomingMessage, response: ServerResponse): void => {
    let length = 0;
    request.on('data', (chunk: Buffer) => (length += chunk.length));
    request.on('end', () => response.end(`received ${length}`));
  };

  it('answers 408 REQUEST_TIMEOUT and closes the connection when a body read whole does not arrive in full, because a trickled body must not hold a connection for ever', async () => {
    const server = await start({ bodyTimeoutMs: (request) => (request.url === '/limited' ? 100 : undefined), handler: readWhole });
    const socket = connect(server.address().port, '127.0.0.1');
    socket.write('POST /limited HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    await once(socket, 'close');
    assert.match(received, /^HTTP\/1\.1 408 /);
    assert.match(received, /\r\nconnection: close\r\n/i);
    assert.equal(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)).error.code, 'REQUEST_TIMEOUT');
  });

  it('leaves a body in full, a request without a body and a request without a limit alone', async () => {
    const server = await start({ bodyTimeoutMs: (request) => (request.url === '/limited' ? 100 : undefined), handler: readWhole });
    const whole = await new Promise<string>((resolve, reject) => {
      const request = httpRequest(`${server.url}/limited`, { method: 'POST', agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve(body));
      });
      request.on('error', reject).end('x'.repeat(1000));
    });
    assert.equal(whole, 'received 1000');
    assert.equal((await get(`${server.url}/limited`)).body, 'received 0');
    // Unlimited: the body is finished only once the limited request's 408 has arrived.
    const unlimited = connect(server.address().port, '127.0.0.1');
    unlimited.write('POST /streamed HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\nConnection: close\r\n\r\nfirst ten ');
    const limited = connect(server.address().port, '127.0.0.1');
    limited.write('POST /limited HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nfirst ten ');
    limited.resume();
    await once(limited, 'close');
    let received = '';
    unlimited.on('data', (chunk) => (received += chunk.toString()));
    unlimited.end('last ten b');
    await once(unlimited, 'close');
    assert.match(received, /^HTTP\/1\.1 200 [^]*received 20$/);
  });

  /** Sends a head announcing 100 bytes and ten of them; resolves with all it received once the server closed the connection. */
  async function partialBodyUntilClosed(port: number, method: string, path: string): Promise<string> {
    const socket = connect(port, '127.0.0.1');
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b`);
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    await once(socket, 'close');
    return received;
  }

  it('outlives an answer sent before the body was read: the connection is cut when the rest of the body does not arrive, because node would read and drop a trickled body for ever', { timeout: 20_000 }, async () => {
    // Keep-alive far beyond the test's own timeout: only the body limit can close the connection.
    const server = await start({ bodyTimeoutMs: () => 100, keepAliveTimeoutMs: 600_000, handler: (_request, response) => response.end('answered at once') });
    const received = await partialBodyUntilClosed(server.address().port, 'POST', '/refused');
    assert.match(received, /^HTTP\/1\.1 200 [^]*answered at once$/);
  });

  it('is on for the metrics listener, whose handlers never read a body', { timeout: 20_000 }, async () => {
    const server = await startMetricsServer({ listen: '127.0.0.1:0', registry: new Registry(), logger, bodyTimeoutMs: 100 });
    running.push(server);
    for (const [method, path, status] of [['GET', '/healthz', 200], ['POST', '/healthz', 405], ['POST', '/nothing-here', 404]] as const) {
      const received = await partialBodyUntilClosed(server.address().port, method, path);
      assert.match(received, new RegExp(`^HTTP/1\\.1 ${status} `), `${method} ${path}`);
    }
  });
});

describe('pipelined requests', () => {
  it('serves at most 16 requests of one connection at a time: the 17th pipelined one is answered 429 and the connection closed, so one connection cannot fan out into as many requests as its bytes hold', { timeout: 20_000 }, async () => {
    const held: ServerResponse[] = [];
    let handled = 0;
    const enough = deferred();
    const server = await start({
      handler: (_request, response) => {
        handled++;
        held.push(response);
        if (held.length === 16) enough.resolve();
      },
    });
    const socket = connect(server.address().port, '127.0.0.1');
    socket.on('error', () => {});
    let pipelined = '';
    for (let i = 1; i <= 100; i++) pipelined += `GET /r${i} HTTP/1.1\r\nHost: x\r\n${i === 100 ? 'Connection: close\r\n' : ''}\r\n`;
    socket.write(pipelined);
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    await enough.promise;
    // Whatever the server parsed of the rest has been dealt with by now: answering the held
    // ones lets the queued answers out, in order.
    for (const [index, response] of held.entries()) response.end(`answer ${index + 1}`);
    await once(socket, 'close');
    const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
    assert.deepEqual(statuses.slice(0, 16), Array(16).fill(200));
    assert.equal(statuses[16], 429, received.slice(0, 2000));
    assert.equal(statuses.length, 17, 'the connection closes after the refusal');
    assert.match(received, /"code":"TOO_MANY_PIPELINED_REQUESTS"/);
    assert.equal(handled, 16, 'no request past the bound reached the handler');
  });

  it("closes the answers queued behind the one on the socket when the connection dies, so that their handlers learn the client left", { timeout: 20_000 }, async () => {
    const held: ServerResponse[] = [];
    const all = deferred();
    const server = await start({
      handler: (_request, response) => {
        held.push(response);
        if (held.length === 3) all.resolve();
      },
    });
    const socket = connect(server.address().port, '127.0.0.1');
    socket.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n');
    await all.promise;
    const closed = held.map((response) => once(response, 'close'));
    socket.destroy();
    await Promise.all(closed);
    assert.ok(held.every((response) => response.destroyed));
  });

  it('serves requests one after another on a keep-alive connection without any bound', async () => {
    const server = await start({ handler: (_request, response) => response.end('ok') });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    for (let i = 0; i < 40; i++) assert.equal((await get(`${server.url}/r${i}`, { agent })).status, 200);
  });
});

describe('RunningServer.close', () => {
  it('lets an in-flight request finish, refuses new connections and closes the kept-alive connection', async () => {
    const received = deferred();
    const server = await start({
      handler: (_request, response) => {
        received.resolve();
        setTimeout(() => response.end('done'), 300);
      },
    });
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    const reply = get(`${server.url}/slow`, { agent });
    await received.promise;
    const started = performance.now();
    const closed = server.close({ graceMs: 5_000 });
    assert.equal(server.closing, true);
    const refused = connect(server.address().port, '127.0.0.1');
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNREFUSED');
    const answer = await reply;
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'done');
    assert.equal(answer.headers.connection, 'close', 'the client learns not to reuse the connection');
    await closed;
    assert.ok(performance.now() - started < 2_000, 'close does not wait for the grace period or the keep-alive timeout');
  });

  it('closes a kept-alive connection after a response that was already streaming when close began', async () => {
    const received = deferred();
    const server = await start({
      handler: (_request, response) => {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write('part 1\n');
        received.resolve();
        setTimeout(() => response.end('part 2\n'), 200);
      },
    });
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    const reply = get(`${server.url}/streaming`, { agent });
    await received.promise;
    const started = performance.now();
    const closed = server.close({ graceMs: 5_000 });
    assert.equal((await reply).body, 'part 1\npart 2\n');
    await closed;
    assert.ok(performance.now() - started < 2_000, 'the connection did not linger until the grace period');
  });

  it('closes idle keep-alive connections at once', async () => {
    const server = await start({ handler: (_request, response) => response.end('ok') });
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    await get(`${server.url}/`, { agent });
    const started = performance.now();
    await server.close({ graceMs: 5_000 });
    assert.ok(performance.now() - started < 1_000);
  });

  it('ends tracked long-running responses cleanly instead of waiting for them', async () => {
    const streams = createLongRunningRegistry();
    const server = await start({
      longRunning: streams,
      handler: (_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write('{"type":"ADDED"}\n');
        const timer = setInterval(() => response.write('{"type":"BOOKMARK"}\n'), 20);
        response.on('close', () => clearInterval(timer));
        streams.track(response, () => {
          clearInterval(timer);
          response.end();
        });
      },
    });
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      httpRequest(`${server.url}/watch`, { agent: false }, resolve).on('error', reject).end();
    });
    let body = '';
    response.on('data', (chunk: Buffer) => (body += chunk.toString()));
    await once(response, 'data');
    assert.equal(streams.size, 1);
    const started = performance.now();
    const ended = once(response, 'end');
    await server.close({ graceMs: 10_000 });
    await ended;
    assert.ok(performance.now() - started < 1_000, 'the watch was ended, not waited for');
    assert.ok(response.complete, 'the watch ended with its terminating chunk, so kubectl simply re-establishes it');
    assert.match(body, /^\{"type":"ADDED"\}\n/);
    assert.equal(streams.size, 0);
  });

  it('ends tracked upgraded connections instead of waiting for them', async () => {
    const streams = createLongRunningRegistry();
    const server = await start({
      longRunning: streams,
      handler: (_request, response) => response.end(),
      onUpgrade: (_request: IncomingMessage, socket: Duplex) => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
        streams.track(socket);
      },
    });
    const upgraded = await new Promise<Duplex>((resolve, reject) => {
      httpRequest(`${server.url}/exec`, { agent: false, headers: { connection: 'Upgrade', upgrade: 'test' } })
        .on('upgrade', (_response, socket) => resolve(socket))
        .on('error', reject)
        .end();
    });
    const ended = once(upgraded, 'end');
    const started = performance.now();
    await server.close({ graceMs: 10_000 });
    await ended;
    assert.ok(performance.now() - started < 1_000);
    upgraded.destroy();
  });

  it('destroys what is still open when the grace period is over', async () => {
    const received = deferred();
    const server = await start({ handler: () => received.resolve() });
    const reply = get(`${server.url}/hang`);
    await received.promise;
    const started = performance.now();
    await server.close({ graceMs: 200 });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 2_000, `closed after ${elapsed} ms`);
    await assert.rejects(reply, /socket hang up|ECONNRESET/);
    assert.ok(logLines.some((line) => line.includes('grace period over')));
  });

  it('is idempotent: a second call returns the same promise', async () => {
    const server = await start({ handler: (_request, response) => response.end() });
    const first = server.close({ graceMs: 0 });
    assert.equal(server.close({ graceMs: 0 }), first);
    await first;
  });
});

describe('startMetricsServer', () => {
  it('serves /metrics, /healthz and /readyz over plain HTTP and nothing else, and readiness turns 503 when shutting down', async () => {
    const registry = new Registry();
    const server = await startMetricsServer({ listen: '127.0.0.1:0', registry, logger });
    running.push(server);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await get(`${server.url}/metrics`)).status, 200);
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
    assert.equal((await get(`${server.url}/readyz`)).status, 200);
    const other = await get(`${server.url}/v1/login`);
    assert.equal(other.status, 404);
    assert.equal(JSON.parse(other.body).error.code, 'NOT_FOUND');
    server.markShuttingDown();
    assert.equal((await get(`${server.url}/readyz`)).status, 503);
  });
});

describe('createHealthHandler', () => {
  async function startWithHealth(ready: () => Promise<void>, readyTimeoutMs?: number) {
    const registry = new Registry();
    registry.registerMetric(
      new (await import('prom-client')).Counter({ name: 'test_requests_total', help: 'test', registers: [] }),
    );
    const health = createHealthHandler({ ready, registry, readyTimeoutMs });
    const server = await start({
      handler: (request: IncomingMessage, response: ServerResponse) => {
        if (!health(request, response)) response.end('application');
      },
    });
    return { server, health };
  }

  it('answers /healthz, /readyz and /metrics, and passes every other path on', async () => {
    const { server } = await startWithHealth(async () => {});
    const healthz = await get(`${server.url}/healthz`);
    assert.equal(healthz.status, 200);
    assert.equal(healthz.body, 'ok\n');
    assert.equal(healthz.headers['cache-control'], 'no-store');
    const readyz = await get(`${server.url}/readyz?verbose`);
    assert.equal(readyz.status, 200);
    const metrics = await get(`${server.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(metrics.body, /^test_requests_total 0$/m);
    assert.equal((await get(`${server.url}/healthz/extra`)).body, 'application');
    assert.equal((await get(`${server.url}/`)).body, 'application');
  });

  it('passes /metrics on when it has no registry, so that the main listener need not serve metrics (issue #15)', async () => {
    const health = createHealthHandler({ ready: async () => {} });
    const server = await start({
      handler: (request: IncomingMessage, response: ServerResponse) => {
        if (!health(request, response)) response.end('application');
      },
    });
    assert.equal((await get(`${server.url}/metrics`)).body, 'application');
    assert.equal((await get(`${server.url}/healthz`)).body, 'ok\n');
  });

  it('serves /metrics only to a scrape with the configured bearer token, 401 to anyone else', async () => {
    const registry = new Registry();
    const health = createHealthHandler({ ready: async () => {}, registry, metricsBearerToken: 'scrape-token-1' });
    const server = await start({
      handler: (request: IncomingMessage, response: ServerResponse) => {
        if (!health(request, response)) response.end('application');
      },
    });
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer scrape-token-2' }, { authorization: 'Basic scrape-token-1' }, { authorization: 'Bearer scrape-token-1x' }]) {
      const refused = await get(`${server.url}/metrics`, { headers });
      assert.equal(refused.status, 401, JSON.stringify(headers));
      assert.equal(JSON.parse(refused.body).error.code, 'UNAUTHENTICATED');
      assert.equal(refused.headers['www-authenticate'], 'Bearer');
    }
    assert.equal((await get(`${server.url}/metrics`, { headers: { authorization: 'bearer scrape-token-1' } })).status, 200);
    assert.equal((await get(`${server.url}/healthz`)).status, 200, 'probes need no token');
  });

  it('answers HEAD without a body and refuses other methods with 405', async () => {
    const { server } = await startWithHealth(async () => {});
    const head = await get(`${server.url}/healthz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    const post = await get(`${server.url}/readyz`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  it("answers 503 with the readiness check's error code, so that an operator sees why", async () => {
    const { server } = await startWithHealth(async () => {
      throw new KubegateError('STORE_UNAVAILABLE', 'postgres at 10.0.0.7 refused');
    });
    const reply = await get(`${server.url}/readyz`);
    assert.equal(reply.status, 503);
    assert.deepEqual(JSON.parse(reply.body), { error: { code: 'STORE_UNAVAILABLE', message: 'the store is unavailable' } });
  });

  it('answers 503 NOT_READY for an unknown failure or a check that hangs, without its detail', async () => {
    const failing = await startWithHealth(async () => {
      throw new Error('detail that must not leak');
    });
    const failed = await get(`${failing.server.url}/readyz`);
    assert.equal(failed.status, 503);
    assert.equal(JSON.parse(failed.body).error.code, 'NOT_READY');
    assert.doesNotMatch(failed.body, /must not leak/);
    const hanging = await startWithHealth(() => new Promise(() => {}), 50);
    const hung = await get(`${hanging.server.url}/readyz`);
    assert.equal(hung.status, 503);
    assert.equal(JSON.parse(hung.body).error.code, 'NOT_READY');
  });

  it('answers 503 SHUTTING_DOWN once shutdown starts, while /healthz stays 200', async () => {
    const { server, health } = await startWithHealth(async () => {});
    health.markShuttingDown();
    const readyz = await get(`${server.url}/readyz`);
    assert.equal(readyz.status, 503);
    assert.equal(JSON.parse(readyz.body).error.code, 'SHUTTING_DOWN');
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
  });
});

describe('installSignalHandlers', () => {
  function setUp(stop: () => Promise<void>) {
    const target = new EventEmitter();
    const exits: number[] = [];
    const exited = deferred<number>();
    const uninstall = installSignalHandlers(stop, logger, {
      target,
      exit: (code) => {
        exits.push(code);
        exited.resolve(code);
      },
    });
    return { target, exits, exited: exited.promise, uninstall };
  }

  it('runs stop once on SIGTERM and then exits 0', async () => {
    let stops = 0;
    const { target, exited, exits } = setUp(async () => {
      stops += 1;
    });
    target.emit('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(stops, 1);
    assert.deepEqual(exits, [0]);
  });

  it('exits at once with 128 + the signal number on a second signal, because an operator pressing Ctrl-C twice means it', async () => {
    const release = deferred();
    const { target, exits } = setUp(() => release.promise);
    target.emit('SIGINT');
    target.emit('SIGINT');
    assert.deepEqual(exits, [130]);
    release.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(exits, [130, 0]);
  });

  it('exits 1 when the graceful stop fails', async () => {
    const { target, exited } = setUp(async () => {
      throw new Error('store close failed');
    });
    target.emit('SIGTERM');
    assert.equal(await exited, 1);
  });

  it('removes its listeners when uninstalled', () => {
    const { target, uninstall } = setUp(async () => {});
    assert.equal(target.listenerCount('SIGTERM'), 1);
    uninstall();
    assert.equal(target.listenerCount('SIGTERM'), 0);
    assert.equal(target.listenerCount('SIGINT'), 0);
  });
});
