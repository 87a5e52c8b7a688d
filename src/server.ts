/**
 * Serving, shared by the proxy and the webhook: listen (HTTP or HTTPS), health and metrics
 * endpoints, and a graceful stop.
 *
 * Graceful stop, in order: stop accepting connections; close idle keep-alive connections
 * and make every further response the last one on its connection (`Connection: close`);
 * end the long-running streams registered with a LongRunningRegistry (watches, upgraded
 * exec/attach/port-forward connections), which would otherwise never finish — kubectl
 * re-establishes a watch that ends cleanly; let ordinary in-flight requests finish; after
 * `graceMs`, destroy whatever is left. Readiness should turn 503 before this starts (see
 * createHealthHandler's markShuttingDown), so that load balancers stop sending traffic.
 *
 * Timeouts: `headersTimeout` bounds how long a client may take to send its headers
 * (slowloris), and on HTTPS the TLS handshake before them gets as long (`handshakeTimeout`,
 * node's default 120 s otherwise). `requestTimeout` is 0 on purpose: Node applies it to receiving the whole
 * request, body included, and the proxy streams request bodies of any size and duration to
 * the API server, which enforces its own limits; `timeout` (socket inactivity) is 0 too, as
 * a watch may stay silent for minutes. Every other request body — read whole before it is
 * answered (the REST API, the console, the webhook), or not read at all (health, metrics, a
 * refusal: node then reads and drops it) — gets `bodyTimeoutMs` instead, on every listener
 * unless a listener lifts it for the bodies it streams: a body still not in full by then is
 * answered 408 REQUEST_TIMEOUT and its connection closed, or, when the answer went out
 * already, the connection is cut, so a client trickling a body cannot hold a connection for
 * ever. `keepAliveTimeout` is longer than the 60-second idle
 * timeout of common load balancers, so that they never reuse a connection we just closed.
 *
 * Pipelining: node hands every request it parses to the handler at once, answers queued in
 * order, and stops reading only once the queued answers fill the socket's buffer — never, when
 * the first answer is a silent watch. So one connection's first read alone (64 KiB) could
 * become hundreds of requests in flight, each forwarded upstream and each holding its relay
 * buffer. At most MAX_PIPELINED_REQUESTS of a connection are in flight: the next one is
 * answered 429 TOO_MANY_PIPELINED_REQUESTS (in order, after the earlier ones) and closes the
 * connection, and no request after it reaches the handler. Clients do not pipeline (Go's and
 * browsers' never do), so this only ever meets a hostile one. And when a connection dies,
 * node emits 'close' only for the answer on its socket, never for those queued behind it:
 * their handlers would never learn the client left (a queued watch would hold its upstream
 * watch for ever). The server emits that 'close' itself, once node has closed its own.
 *
 * Header count: node keeps only the first `maxHeadersCount` (2000) header lines of a request
 * and drops the rest without a word, so a handler could never see — nor refuse — an
 * `Authorization`, `Connection` or `Impersonate-*` line sent after 2000 junk lines, and would
 * forward a request that is not the one the client sent. The limit is off here: the header
 * block's size limit (node's 16 KiB, 431 beyond) bounds the count anyway, and a handler that
 * forwards refuses too many lines itself with an error naming the limit (proxy/sanitize.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { KubegateError, errorCatalog, isKubegateError } from './errors.js';
import type { ErrorCode } from './errors.js';
import { formatHost, parseListenAddress } from './config/listen.js';
import type { Logger } from './log.js';

/** A rejected promise it returns is answered like a throw: 500 INTERNAL. */
export type RequestHandler = (request: IncomingMessage, response: ServerResponse) => unknown;
export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface ServerTlsOptions {
  /** PEM certificate chain. */
  readonly cert: string | Buffer;
  /** PEM private key. */
  readonly key: string | Buffer;
}

export interface StartServerOptions {
  /** `HOST:PORT`; port 0 picks a free port. */
  readonly listen: string;
  /** The setting `listen` comes from (`metrics.listen`), named first in LISTEN_FAILED as configuration errors name theirs. */
  readonly setting?: string | undefined;
  /** Serve HTTPS with this certificate; plain HTTP without. */
  readonly tls?: ServerTlsOptions | undefined;
  readonly handler: RequestHandler;
  /** Upgrade requests (WebSocket, SPDY); without it they reach `handler` as plain requests. */
  readonly onUpgrade?: UpgradeHandler | undefined;
  readonly logger: Logger;
  /** Streams that close() ends instead of waiting for them. */
  readonly longRunning?: LongRunningRegistry | undefined;
  /** Default 30 000. */
  readonly headersTimeoutMs?: number | undefined;
  /** Default 65 000. */
  readonly keepAliveTimeoutMs?: number | undefined;
  /**
   * How long the body of `request` may take to arrive in full after its headers (then 408
   * REQUEST_TIMEOUT, or the connection cut when the answer was already sent); undefined: no
   * limit (a body streamed upstream). Default: DEFAULT_BODY_TIMEOUT_MS for every request.
   */
  readonly bodyTimeoutMs?: ((request: IncomingMessage) => number | undefined) | undefined;
  /**
   * Bind a socket of this process's own, even in a node:cluster worker (where listen()
   * otherwise shares the primary's socket, and port 0 means one port for every worker).
   */
  readonly exclusive?: boolean | undefined;
}

export interface CloseOptions {
  /** How long in-flight requests may take before their connections are destroyed. Default 10 000. */
  readonly graceMs?: number | undefined;
}

export interface RunningServer {
  /** The bound address (the real port when `listen` asked for port 0). */
  address(): { host: string; port: number };
  /** `http(s)://host:port`, with a wildcard host replaced by loopback; for logs and tests. */
  readonly url: string;
  /** Graceful stop (see the file comment). Idempotent: later calls return the same promise. */
  close(options?: CloseOptions): Promise<void>;
  /** True once close() was called. */
  readonly closing: boolean;
}

/**
 * Streams that never end by themselves. Register each one when it starts; close() ends them
 * all, and an entry goes away when its stream closes.
 */
export interface LongRunningRegistry {
  /**
   * `end` stops the stream cleanly (e.g. unpipe the upstream and end the response);
   * default: `stream.end()`.
   */
  track(stream: ServerResponse | Duplex, end?: () => void): void;
  /** Streams open now. */
  readonly size: number;
  /** Ends every registered stream. */
  endAll(): void;
}

export function createLongRunningRegistry(): LongRunningRegistry {
  const streams = new Map<ServerResponse | Duplex, () => void>();
  return {
    track(stream, end) {
      if (stream.destroyed) return;
      streams.set(stream, end ?? (() => stream.end()));
      stream.once('close', () => streams.delete(stream));
    },
    get size() {
      return streams.size;
    },
    endAll() {
      for (const [stream, end] of [...streams]) {
        streams.delete(stream);
        try {
          end();
        } catch {
          stream.destroy();
        }
      }
    },
  };
}

const DEFAULT_GRACE_MS = 10_000;
/** Requests of one connection in flight at once (see the design note: pipelining). */
const MAX_PIPELINED_REQUESTS = 16;
/** The `bodyTimeoutMs` of bodies read whole: a 64 KiB body takes a fraction of a second. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const bind = parseListenAddress(options.listen);
  if (bind === undefined) throw new TypeError(`listen must be HOST:PORT, got ${JSON.stringify(options.listen)}`);
  const { logger, handler } = options;
  const longRunning = options.longRunning ?? createLongRunningRegistry();
  const headersTimeoutMs = options.headersTimeoutMs ?? 30_000;
  const serverOptions = {
    headersTimeout: headersTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 65_000,
    // How often headersTimeout is checked; Node's default (30 s) would let it overrun.
    connectionsCheckingInterval: Math.max(10, Math.min(5_000, Math.floor(headersTimeoutMs / 4))),
  };
  const server: Server =
    options.tls === undefined
      ? createHttpServer(serverOptions)
      : // The handshake gets the headers' time, not node's 120 s (a deadline: handshake bytes do not extend it).
        createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2', handshakeTimeout: headersTimeoutMs });
  server.timeout = 0;
  server.maxHeadersCount = 0;

  const connections = new Set<Socket>();
  const inFlight = new Set<ServerResponse>();
  const pipelines = new WeakMap<Duplex, Pipeline>();

  /**
   * The connection's queue of pipelined answers, made when its first request arrives while an
   * earlier one is still answered (request.socket: TLS over the TCP socket of 'connection');
   * a connection that never pipelines has none.
   */
  function pipelineOf(socket: Duplex): Pipeline {
    let pipeline = pipelines.get(socket);
    if (pipeline === undefined) {
      const made: Pipeline = { responses: new Set(), refused: false };
      pipelines.set(socket, made);
      // After node's own 'close' of the answer on the socket (see the design note: pipelining).
      socket.once('close', () => setImmediate(() => closeQueued(made)));
      pipeline = made;
    }
    return pipeline;
  }
  let closing = false;
  let closed: Promise<void> | undefined;

  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    // Node assigns the socket before 'request' unless an earlier answer still holds it.
    const queued = response.socket === null;
    const pipeline = queued ? pipelineOf(socket) : pipelines.get(socket);
    if (queued) pipeline?.responses.add(response);
    inFlight.add(response);
    if (closing) response.setHeader('connection', 'close');
    // One listener per request ('close' follows 'finish', or a cut connection).
    response.once('close', () => {
      inFlight.delete(response);
      pipeline?.responses.delete(response);
      // A keep-alive connection would wait for another request that must not come; end()
      // sends what is still buffered first.
      if (closing && !socket.destroyed) socket.end();
    });
    if (pipeline?.refused === true) return;
    // The queued answers and the one before them on the socket.
    if (pipeline !== undefined && pipeline.responses.size >= MAX_PIPELINED_REQUESTS) {
      // Node closes the connection after this answer; what follows it is never answered.
      pipeline.refused = true;
      sendError(response, 'TOO_MANY_PIPELINED_REQUESTS', { connection: 'close' });
      return;
    }
    const bodyTimeoutMs = options.bodyTimeoutMs === undefined ? DEFAULT_BODY_TIMEOUT_MS : options.bodyTimeoutMs(request);
    if (bodyTimeoutMs !== undefined && hasBody(request)) limitBodyTime(request, response, bodyTimeoutMs);
    let result: unknown;
    try {
      result = handler(request, response);
    } catch (error) {
      failRequest(response, error, logger);
      return;
    }
    if (result instanceof Promise) result.catch((error: unknown) => failRequest(response, error, logger));
  });

  if (options.onUpgrade !== undefined) {
    const onUpgrade = options.onUpgrade;
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (closing) {
        socket.destroy();
        return;
      }
      try {
        onUpgrade(request, socket, head);
      } catch (error) {
        logger.error({ err: error }, 'upgrade handler threw');
        socket.destroy();
      }
    });
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new KubegateError('LISTEN_FAILED', `${options.setting === undefined ? '' : `${options.setting}: `}cannot listen on ${options.listen} (${error.code ?? error.message})`, {
          cause: error,
        }),
      );
    };
    server.once('error', onError);
    server.listen({ host: bind.host, port: bind.port, exclusive: options.exclusive === true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error }, 'server error'));

  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  const urlHost = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  const url = `${options.tls === undefined ? 'http' : 'https'}://${formatHost(urlHost)}:${address.port}`;
  logger.info({ address: `${formatHost(address.host)}:${address.port}`, tls: options.tls !== undefined }, 'listening');

  function close(closeOptions: CloseOptions = {}): Promise<void> {
    closed ??= (async () => {
      closing = true;
      const graceMs = closeOptions.graceMs ?? DEFAULT_GRACE_MS;
      const allClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (const response of inFlight) {
        if (!response.headersSent) response.setHeader('connection', 'close');
      }
      const streams = longRunning.size;
      longRunning.endAll();
      logger.info({ inFlight: inFlight.size, streams, graceMs }, 'stopping: waiting for in-flight requests');
      const timer = setTimeout(() => {
        if (connections.size > 0) logger.warn({ connections: connections.size }, 'grace period over: closing connections');
        for (const socket of connections) socket.destroy();
      }, graceMs);
      await allClosed;
      clearTimeout(timer);
      logger.info('stopped');
    })();
    return closed;
  }

  return {
    address: () => ({ ...address }),
    url,
    close,
    get closing() {
      return closing;
    },
  };
}

/** One connection's requests in flight (see the design note: pipelining). */
interface Pipeline {
  /** Answers that were queued behind another when their request came, not closed yet. */
  readonly responses: Set<ServerResponse>;
  /** A request past MAX_PIPELINED_REQUESTS was refused: nothing more of the connection is served. */
  refused: boolean;
}

/**
 * The connection is gone: its queued answers get the 'close' node never gives them, so that
 * whoever serves them stops (a forwarded request is aborted upstream, a watch ends).
 */
function closeQueued(pipeline: Pipeline): void {
  for (const response of pipeline.responses) {
    pipeline.responses.delete(response);
    response.destroy();
    response.emit('close');
  }
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Answers 408 and closes the connection when the body is not in full after `timeoutMs`. The
 * limit outlives the answer: a handler that answers without reading the body (a refusal, a
 * health check) leaves node to read and drop it before the connection's next request, and a
 * body trickled then would hold the connection as surely as one trickled before the answer;
 * then there is nothing left to answer, and the connection is cut.
 */
function limitBodyTime(request: IncomingMessage, response: ServerResponse, timeoutMs: number): void {
  const socket = request.socket;
  const stop = (): void => {
    clearTimeout(timer);
    request.off('end', stop);
    socket.off('close', stop);
  };
  const timer = setTimeout(() => {
    stop();
    if (request.complete) return;
    if (response.headersSent) socket.destroy();
    else sendError(response, 'REQUEST_TIMEOUT', { connection: 'close' });
  }, timeoutMs);
  timer.unref();
  request.once('end', stop);
  socket.once('close', stop);
}

function failRequest(response: ServerResponse, error: unknown, logger: Logger): void {
  logger.error({ err: error }, 'request handler failed');
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendError(response, 'INTERNAL');
}

/** `{"error":{"code","message"}}` with the catalog message (never an instance's detail). */
function sendError(
  response: ServerResponse,
  code: ErrorCode,
  extraHeaders: Record<string, string> = {},
  status: number = errorCatalog[code].status,
): void {
  const body = JSON.stringify({ error: { code, message: errorCatalog[code].message } });
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  response.end(body);
}

/** What `/metrics` serves: a prom-client Registry, or anything answering like one. */
export type MetricsSource = Pick<Registry, 'metrics' | 'contentType'>;

export interface HealthHandlerOptions {
  /** Resolves when the process can serve (store reachable, caches primed…); rejects otherwise. */
  readonly ready: () => Promise<void>;
  /** Served as `GET /metrics`; without it `/metrics` is not answered here (another path). */
  readonly registry?: MetricsSource | undefined;
  /**
   * When set, `/metrics` answers only requests with `Authorization: Bearer <this>` (compared
   * in constant time); others get 401 UNAUTHENTICATED.
   */
  readonly metricsBearerToken?: string | undefined;
  /** A readiness check that takes longer fails with NOT_READY. Default 5 000. */
  readonly readyTimeoutMs?: number | undefined;
}

/**
 * Answers `GET /healthz`, `GET /readyz` and, when it has a registry, `GET /metrics` (also
 * HEAD) and returns true; for any other path returns false without touching the response.
 * Usable in front of express.
 */
export interface HealthHandler {
  (request: IncomingMessage, response: ServerResponse): boolean;
  /** From now on `/readyz` answers 503 SHUTTING_DOWN. */
  markShuttingDown(): void;
}

export function createHealthHandler(options: HealthHandlerOptions): HealthHandler {
  const readyTimeoutMs = options.readyTimeoutMs ?? 5_000;
  const expectedToken = options.metricsBearerToken === undefined ? undefined : digest(options.metricsBearerToken);
  let shuttingDown = false;

  const handle = (request: IncomingMessage, response: ServerResponse): boolean => {
    const url = request.url ?? '';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const registry = options.registry;
    if (path !== '/healthz' && path !== '/readyz' && (path !== '/metrics' || registry === undefined)) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendError(response, 'METHOD_NOT_ALLOWED', { allow: 'GET, HEAD' });
      return true;
    }
    if (path === '/healthz') {
      sendText(response, 200, 'text/plain; charset=utf-8', 'ok\n');
    } else if (path === '/readyz') {
      if (shuttingDown) sendError(response, 'SHUTTING_DOWN');
      else
        void checkReady(options.ready, readyTimeoutMs).then((code) => {
          if (shuttingDown) sendError(response, 'SHUTTING_DOWN');
          else if (code === undefined) sendText(response, 200, 'text/plain; charset=utf-8', 'ok\n');
          else sendError(response, code, {}, 503);
        });
    } else if (registry !== undefined) {
      if (expectedToken !== undefined && !hasBearer(request, expectedToken)) {
        sendError(response, 'UNAUTHENTICATED', { 'www-authenticate': 'Bearer' });
        return true;
      }
      registry.metrics().then(
        (text) => sendText(response, 200, registry.contentType, text),
        () => sendError(response, 'INTERNAL'),
      );
    }
    return true;
  };
  return Object.assign(handle, {
    markShuttingDown: () => {
      shuttingDown = true;
    },
  });
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Whether the request carries `Authorization: Bearer <token>` whose digest is `expected`. */
function hasBearer(request: IncomingMessage, expected: Buffer): boolean {
  const match = /^bearer +(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  return match !== null && timingSafeEqual(digest(match[1] as string), expected);
}

export interface MetricsServerOptions {
  /** `HOST:PORT`; served over plain HTTP (keep it on a private address). */
  readonly listen: string;
  readonly registry: MetricsSource;
  readonly metricsBearerToken?: string | undefined;
  /** `/readyz` on this listener; default always ready. */
  readonly ready?: (() => Promise<void>) | undefined;
  readonly logger: Logger;
  /** How long a request body may take (startServer's bodyTimeoutMs); default DEFAULT_BODY_TIMEOUT_MS (tests shorten it). */
  readonly bodyTimeoutMs?: number | undefined;
}

export interface MetricsServer extends RunningServer {
  /** From now on `/readyz` answers 503 SHUTTING_DOWN. */
  markShuttingDown(): void;
}

/**
 * The separate metrics listener: `/metrics`, `/healthz` and `/readyz`, nothing else (404),
 * so that Prometheus and probes can reach a port the public never does.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const health = createHealthHandler({
    ready: options.ready ?? (async () => undefined),
    registry: options.registry,
    metricsBearerToken: options.metricsBearerToken,
  });
  const server = await startServer({
    listen: options.listen,
    setting: 'metrics.listen',
    logger: options.logger.child({ listener: 'metrics' }),
    ...(options.bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs: () => options.bodyTimeoutMs }),
    handler(request, response) {
      if (!health(request, response)) sendError(response, 'NOT_FOUND');
    },
  });
  return Object.assign(server, { markShuttingDown: health.markShuttingDown });
}

/** undefined when ready; else the code to answer 503 with (a KubegateError's own, or NOT_READY). */
async function checkReady(ready: () => Promise<void>, timeoutMs: number): Promise<ErrorCode | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([Promise.resolve().then(ready), timedOut]);
    return outcome === 'timeout' ? 'NOT_READY' : undefined;
  } catch (error) {
    return isKubegateError(error) ? error.code : 'NOT_READY';
  } finally {
    clearTimeout(timer);
  }
}

function sendText(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

export interface SignalTarget {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface SignalHandlerOptions {
  /** Default ['SIGTERM', 'SIGINT']. */
  readonly signals?: readonly NodeJS.Signals[] | undefined;
  /** Default `process`. */
  readonly target?: SignalTarget | undefined;
  /** Default `process.exit`. */
  readonly exit?: ((code: number) => void) | undefined;
}

/**
 * The first SIGTERM or SIGINT runs `stop` once, then exits 0 (1 if `stop` failed); a second
 * signal while stopping exits at once with 128 + the signal number. Returns a function that
 * removes the handlers.
 */
export function installSignalHandlers(
  stop: () => Promise<void>,
  logger: Logger,
  options: SignalHandlerOptions = {},
): () => void {
  const target = options.target ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;
  const listeners = signals.map((signal) => {
    const listener = (): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without waiting');
        exit(128 + (osConstants.signals[signal] ?? 0));
        return;
      }
      stopping = true;
      logger.info({ signal }, 'signal received: stopping');
      Promise.resolve()
        .then(stop)
        .then(
          () => exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'graceful stop failed');
            exit(1);
          },
        );
    };
    target.on(signal, listener);
    return { signal, listener };
  });
  return () => {
    for (const { signal, listener } of listeners) target.off(signal, listener);
  };
}

/**
 * SIGHUP, logrotate's convention: runs `reopen` (reopen the files the process writes) and
 * logs that it did, instead of Node's default of ending the process without a word. A
 * `reopen` that throws is logged and the process keeps running. Returns a function that
 * removes the handler.
 */
export function installReopenHandler(reopen: () => void, logger: Logger, target: SignalTarget = process): () => void {
  const listener = (): void => {
    try {
      reopen();
      logger.info({ signal: 'SIGHUP' }, 'signal received: files reopened');
    } catch (error) {
      logger.error({ err: error, signal: 'SIGHUP' }, 'reopening files failed');
    }
  };
  target.on('SIGHUP', listener);
  return () => target.off('SIGHUP', listener);
}
