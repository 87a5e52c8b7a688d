/**
 * The forwarding hot path: `/k8s/clusters/<id>/…` from kubectl to that cluster's API server,
 * before express ever sees the request.
 *
 * Design note (fail closed). Every request, ordinary or upgrade, first goes through one
 * admission (admission.ts: path → headers → origin → token → membership → cluster →
 * identity headers), which touches no socket; a refusal becomes a Kubernetes Status and an
 * audit record, and nothing reaches the cluster. What follows is only forwarding. A token
 * the cache knows is admitted in the same synchronous step as the request arrives (no
 * promise); only a token's first use and a reviewed `kubectl --as` wait.
 *
 * Ordinary requests go upstream on the cluster's undici Pool (`dispatch`, the lowest-level
 * call: no response object, no stream per answer): the outgoing header list is built from
 * `rawHeaders` (so every duplicate and spelling is handled), the request body is streamed
 * from the client, and the answer is written to the client chunk by chunk as it arrives,
 * pausing the upstream whenever more than RELAY_BUFFER_BYTES wait to reach the client (a
 * bound above one TLS record, so that a fast client does not pause it at every chunk) —
 * never buffered whole. Teardown is
 * explicit — the client going away aborts the upstream exchange at once (watches included),
 * an upstream failure before the answer becomes a Status, after it cuts the client
 * connection. The upstream's answer head is handled in one place (`relayResponseHead`).
 * Paired runs measured the undici exchange well below node:http's per request
 * (BENCHMARKS.md). Long-running requests (watch, follow, exec/attach/port-forward, proxy) get
 * no timeout and have their headers flushed at once; others fail with 504 when the upstream
 * has not started its answer within `idleTimeoutMs` of silence (undici's headers timeout,
 * kept on its shared timer wheel rather than a timer per request). Once the answer flows there is no timeout:
 * a pause then is usually the client reading slowly (backpressure), and kube-apiserver bounds
 * non-long-running requests itself. Long-running streams are registered: `closeStreams`
 * cuts them on revocation, they end when their token expires, and at shutdown the server's
 * tracker ends watches cleanly (kubectl watches again elsewhere). A request still in
 * admission when `closeStreams` runs (its token looked up just before a revocation) is
 * checked against that match once admitted, and refused instead of forwarded: otherwise a
 * watch admitted a moment before its token was revoked would outlive the revocation.
 *
 * Stale keep-alive connections: a server, or a load balancer in front of the API servers,
 * may close an idle connection just as the pool reuses it; the request then fails before
 * any byte of the answer (`other side closed`, a reset). Like Go's http.Transport, such a
 * request is sent again once, on a new connection, when it is replayable — GET, HEAD or
 * OPTIONS without a body (watches included) — and only when it failed on a reused
 * connection (upstreams.ts tells which, and owns the pool for the replay) before its
 * answer's head. A request with a body (it was streamed from the client and is gone), an
 * upgrade (not on the pool), a failure on a new connection (a real connect error, which
 * keeps its Status), a timeout, an answer cut after its head, and a replay that fails too
 * are never sent again. This is a check in the dispatch handler rather than undici's
 * RetryHandler/RetryAgent: those retry by error code alone, new connections included, with
 * backoff and a wrapper handler per request, and cannot tell a reused connection from a
 * new one. A tunnel that drops fails its connections with TunnelDroppedError, which is
 * CLUSTER_DISCONNECTED here (not a stale-connection error), so it is never replayed.
 *
 * Upgrades (SPDY/3.1 POST, WebSocket GET) are passed through by hand on an agent that never
 * reuses a socket: on 101 the raw answer is written back and the two sockets are piped; any
 * other answer is relayed with `Connection: close` and the upstream socket destroyed
 * (CVE-2018-1002105); a redirect is never followed and becomes a 502 Status (CVE-2020-8559),
 * since a compromised cluster could otherwise steer kubectl, token in hand, elsewhere.
 *
 * The upstream's answer head goes through upstream-culprit.ts: a 401 there is the cluster
 * refusing the proxy's own credential and becomes CLUSTER_CREDENTIAL_REFUSED (the cluster's
 * status turns unhealthy); everything else is relayed. Refusals of kubectl's discovery reads
 * are written in the form kubectl prints for them (kube/status.ts).
 *
 * Audit records carry identity, cluster, method, path without query (exec commands and
 * selectors live in the query) and sizes — never headers, cookies or tokens; `tokenName` is
 * the token's public name. `X-Forwarded-For` is passed through untouched and not added.
 */
import { performance } from 'node:perf_hooks';
import { STATUS_CODES, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestOptions } from 'node:http';
import type { Dispatcher } from 'undici';
import type { TokenFacts } from '../auth/authenticator.js';
import type { UserInfo } from '../auth/user.js';
import { KubegateError, type ErrorCode } from '../errors.js';
import { isDiscoveryRead, writeStatus, writeStatusToSocket } from '../kube/status.js';
import { TunnelDroppedError, type ForwardingConnections } from '../clusters/upstreams.js';
import type { ClusterRole } from '../store/store.js';
import { admit, type Admission, type AdmissionDeps, type Admitted } from './admission.js';
import { filterResponseHeaders } from './sanitize.js';
import { credentialRefusal, namingCluster, upstreamFailure as describeUpstreamFailure, type CredentialRefusedReport } from './upstream-culprit.js';

export interface AuditRecord {
  /** Start of the request, epoch milliseconds. */
  readonly time: number;
  /** Kubernetes user name (kubegate user ID), or null when not authenticated. */
  readonly user: string | null;
  readonly groups: readonly string[];
  /** Whom the user acted as (`kubectl --as`, allowed or not), or null when it asked for nobody. */
  readonly impersonated: ImpersonatedIdentity | null;
  /** The public name of the token used (never its secret), or null. */
  readonly tokenName: string | null;
  readonly cluster: string | null;
  readonly role: ClusterRole | null;
  readonly method: string;
  /** Path asked of the cluster, without query; the raw path when it could not be parsed. */
  readonly path: string;
  /** HTTP status sent; 101 for upgrades; 499 when the client left before an answer. */
  readonly status: number;
  /** Why kubegate refused or failed the request, or null when the cluster answered. */
  readonly code: ErrorCode | null;
  readonly durationMs: number;
  /** Bytes read from / written to the client connection during the request (approximate). */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly upgrade: boolean;
  readonly longRunning: boolean;
  /** How the cluster was reached (`agent`: through its tunnel); null when nothing was forwarded. */
  readonly via: 'direct' | 'agent' | null;
}

/** The identity a request asked to act as, as the audit records it. */
export interface ImpersonatedIdentity {
  readonly user: string;
  readonly uid: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

/** The subset of a pino logger the forwarder uses. */
export interface ForwardLogger {
  warn(details: object, message: string): void;
  debug(details: object, message: string): void;
}

/** Optional metrics hooks: exactly one `requestFinished` follows every `requestStarted`. */
export interface ForwardMetrics {
  requestStarted(): void;
  requestFinished(record: AuditRecord): void;
}

/**
 * The server's registry of streams that never end by themselves, for graceful shutdown. The
 * tracker forgets a stream when it closes; at shutdown it calls `end`, which finishes a watch
 * cleanly (a terminated chunked answer, so kubectl simply watches again) or, for an upgraded
 * connection, ends the socket.
 */
export interface LongRunningTracker {
  track(stream: ServerResponse | Duplex, end?: () => void): void;
}

/** Admission's lookups (admission.ts), and where the forwarder reports. */
export interface ForwarderDeps extends AdmissionDeps {
  readonly audit: (record: AuditRecord) => void;
  readonly logger: ForwardLogger;
  readonly metrics?: ForwardMetrics;
  readonly longRunning?: LongRunningTracker;
  /** Told when a cluster answered 401 to the proxy's own credential (upstream-culprit.ts); it logs, once per streak. */
  readonly credentialRefused?: CredentialRefusedReport;
}

export interface ForwarderOptions {
  /**
   * Non-long-running requests (and upgrades, until the 101) fail with 504 when the upstream
   * connection stays silent this long before the answer starts. Default 120000.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Ordinary requests that take at least this long (from their head to the end of the
   * answer) are logged with where the time went: `slowRequestTimings`. Off when undefined;
   * then no clock is read beyond the audit record's.
   */
  readonly slowRequestMs?: number | undefined;
}

/**
 * Where a slow ordinary request's time went, in milliseconds, as logged (`slow request`):
 * consecutive stretches that add up to `durationMs`. A stretch that did not happen (the
 * client left before it) is null.
 */
export interface SlowRequestTimings {
  readonly durationMs: number;
  /** Head received → handed to the cluster's pool (admission). */
  readonly admitMs: number | null;
  /** Handed to the pool → written on an upstream connection (waiting for a free or new connection, its TLS handshake). */
  readonly connectionMs: number | null;
  /** Written upstream → the upstream's answer head arrived. */
  readonly upstreamHeadMs: number | null;
  /** The answer head → the upstream's last body byte. */
  readonly upstreamBodyMs: number | null;
  /** The upstream's last byte → the answer written out to the client. */
  readonly clientWriteMs: number | null;
}

/** A long-running stream or upgrade in flight, as seen by `closeStreams`. */
export interface OpenStream {
  readonly user: UserInfo;
  readonly tokenName: string;
  readonly clusterId: string;
  readonly method: string;
  /** The path asked of the cluster, without the query. */
  readonly path: string;
  readonly upgrade: boolean;
}

export interface Forwarder {
  /** For requests whose URL starts with `/k8s/clusters/` (server `request` event). */
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  /** For upgrade requests whose URL starts with `/k8s/clusters/` (server `upgrade` event). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Ends every open long-running stream and upgrade that `match` selects and returns how
   * many; requests still in admission that it selects once authenticated are refused with
   * `refusal` (default UNAUTHENTICATED).
   */
  closeStreams(match: (stream: OpenStream) => boolean, refusal?: ErrorCode): number;
  /** The open long-running streams and upgrades, as closeStreams sees them. */
  openStreams(): readonly OpenStream[];
  /** How many long-running streams and upgrades are open. */
  openStreamCount(): number;
  /** Open long-running streams by kind: watches and follows (`watch`) and upgrades. */
  openStreamCounts(): { watch: number; upgrade: number };
}

const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
const MAX_TIMER_MS = 2_147_483_647;
const TCP_KEEPALIVE_MS = 30_000;
const LINGER_MS = 2000;
const MAX_AUDIT_PATH = 1024;
const CLIENT_GONE = 499;
/**
 * How much of an answer may wait in the client connection's buffer before the upstream is
 * paused. A TLS socket's own mark is 16 KiB, exactly one TLS record, and every TLS write
 * completes asynchronously: at that mark every chunk relayed paused the upstream and resumed
 * it a turn of the event loop later. Past this bound a slow client still pauses the upstream.
 */
const RELAY_BUFFER_BYTES = 256 * 1024;
/**
 * How a keep-alive connection closed by its peer fails a request written on it: undici's
 * `other side closed`/`closed` (UND_ERR_SOCKET), a reset, a write into a closed socket.
 */
const STALE_CONNECTION_ERRORS: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/** Per-request state: what the audit record needs and what teardown must reach. */
class Exchange implements OpenStream {
  readonly time = Date.now();
  readonly startedAt = performance.now();
  readonly bytesReadAtStart: number;
  readonly bytesWrittenAtStart: number;
  clusterId = '';
  path: string;
  longRunning = false;
  via: 'direct' | 'agent' | null = null;
  user: UserInfo = ANONYMOUS;
  impersonated: UserInfo | undefined;
  authenticated = false;
  tokenName = '';
  role: ClusterRole | null = null;
  code: ErrorCode | null = null;
  status = CLIENT_GONE;
  /** Ordinary requests: the upstream exchange on the cluster's pool. */
  call: { cancel(): void } | undefined;
  /** Upgrades: the upstream request, then the upstream socket once switched. */
  upstreamReq: ClientRequest | undefined;
  upstreamSocket: Duplex | undefined;
  /** A graceful end (shutdown) is under way: upstream teardown must not cut the client. */
  ending = false;
  expiryTimer: NodeJS.Timeout | undefined;
  finished = false;
  /** With `slowRequestMs`: performance.now() when the request reached the pool, a connection, its head, its end (0: not yet). */
  marks: { dispatched: number; connected: number; head: number; upstreamEnd: number } | undefined;
  /** closeStreams calls made while this exchange was in admission. */
  closedWhileAdmitting: { readonly match: (stream: OpenStream) => boolean; readonly refusal: ErrorCode }[] | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly upgrade: boolean,
    readonly clientSocket: Duplex,
    readonly res: ServerResponse | undefined,
    /** Upgrades: the first bytes after the request head, for the upstream. */
    readonly upgradeHead: Buffer,
  ) {
    const socket = clientSocket as Partial<Socket>;
    this.bytesReadAtStart = socket.bytesRead ?? 0;
    this.bytesWrittenAtStart = socket.bytesWritten ?? 0;
    const url = req.url ?? '';
    const queryStart = url.indexOf('?');
    this.path = (queryStart < 0 ? url : url.slice(0, queryStart)).slice(0, MAX_AUDIT_PATH);
  }

  get method(): string {
    return this.req.method ?? '';
  }

  /** Cuts the exchange: used by `closeStreams` and at token expiry. */
  abort(): void {
    this.call?.cancel();
    this.upstreamReq?.destroy();
    this.upstreamSocket?.destroy();
    if (this.res !== undefined) this.res.destroy();
    else this.clientSocket.destroy();
  }
}

const NO_HEAD = Buffer.alloc(0);

/** Why a cancelled exchange is aborted upstream; nobody reads it (the exchange is over), so one serves all. */
const CANCELLED = new Error('the exchange was cancelled: its client left, or the proxy ended it');

/**
 * Aborts an undici exchange without stack traces. undici makes an error of its own to destroy
 * the connection with, and Node formats that error's stack as the socket is destroyed; a
 * cancellation has no caller worth a trace. With the shared reasons, this took the proxy's CPU
 * for 8,000 watches dropped at once from 4.2–4.9 s to 2.8–3.0 s (BENCHMARKS.md, "dropping
 * many watches at once"). Only errors made during this synchronous call go without one.
 */
function abortQuietly(abort: (reason?: Error) => void): void {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    abort(CANCELLED);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
const ANONYMOUS: UserInfo = Object.freeze({ name: '', uid: '', groups: Object.freeze([]), extra: Object.freeze({}) });

export function createForwarder(deps: ForwarderDeps, options: ForwarderOptions = {}): Forwarder {
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  if (!Number.isFinite(idleTimeoutMs) || idleTimeoutMs <= 0) throw new TypeError('idleTimeoutMs must be a positive number');
  const slowRequestMs = options.slowRequestMs;
  if (slowRequestMs !== undefined && (!Number.isFinite(slowRequestMs) || slowRequestMs <= 0)) throw new TypeError('slowRequestMs must be a positive number');
  const open = new Set<Exchange>();
  /** Exchanges between their start and the end of admission. */
  const admitting = new Set<Exchange>();
  const { logger } = deps;

  /**
   * Admits the exchange's request, then forwards it or answers the refusal. A token known to
   * the cache is decided at once; otherwise the exchange waits in `admitting`, and the
   * closeStreams calls made meanwhile are applied to it once authenticated, in the same
   * synchronous step that would forward it.
   */
  function admitExchange(ex: Exchange): void {
    const { req } = ex;
    const admission = admit({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, upgrade: ex.upgrade }, deps);
    if (!(admission instanceof Promise)) {
      try {
        settle(ex, admission);
      } catch (err) {
        forwardingFailed(ex, err);
      }
      return;
    }
    admitting.add(ex);
    admission
      .then((result) => {
        admitting.delete(ex);
        settle(ex, result);
      })
      .catch((err: unknown) => {
        admitting.delete(ex);
        forwardingFailed(ex, err);
      });
  }

  /** Forwards an admitted exchange, or records and answers its refusal. */
  function settle(ex: Exchange, admission: Admission): void {
    learn(ex, admission);
    let error: KubegateError;
    let code: ErrorCode;
    if (admission.admitted) {
      const closed = ex.closedWhileAdmitting?.find((entry) => entry.match(ex));
      if (closed === undefined) {
        forwardAdmitted(ex, admission);
        return;
      }
      error = new KubegateError(closed.refusal);
      code = closed.refusal === 'UNAUTHENTICATED' ? 'TOKEN_INVALID' : closed.refusal;
    } else {
      ({ error, code } = admission);
      error = namingCluster(error, ex.clusterId);
    }
    if (error.status >= 500) logger.warn({ err: error.cause ?? error, cluster: ex.clusterId, code: error.code }, 'request refused by the proxy');
    ex.code = code;
    ex.status = error.status;
    const res = ex.res;
    if (res === undefined) writeStatusToSocket(ex.clientSocket, error);
    else if (!res.destroyed) writeStatus(res, error, statusForm(ex));
  }

  function forwardAdmitted(ex: Exchange, admission: Admitted): void {
    const res = ex.res;
    if (res === undefined) {
      if (!ex.clientSocket.destroyed) forwardUpgrade(ex, ex.clientSocket, ex.upgradeHead, admission);
    } else if (!res.destroyed) {
      forwardRequest(ex, ex.req, res, admission);
    }
  }

  /** Not a refusal: a bug while starting to forward. The exchange is cut, never left open. */
  function forwardingFailed(ex: Exchange, err: unknown): void {
    logger.warn({ err, cluster: ex.clusterId }, 'forwarding failed');
    ex.code ??= 'INTERNAL';
    ex.abort();
  }

  /** The upstream request of an admitted upgrade, on the agent that never reuses a socket. */
  function upgradeRequest(ex: Exchange, admission: Admitted): ClientRequest {
    const { upstream, target } = admission;
    const options: RequestOptions = {
      host: upstream.hostname,
      port: upstream.port,
      agent: upstream.upgradeAgent,
      method: ex.req.method,
      path: upstream.pathPrefix + target.path + target.query,
      headers: admission.headers,
      timeout: idleTimeoutMs,
    };
    const upstreamReq = upstream.request(options);
    ex.upstreamReq = upstreamReq;
    upstreamReq.on('timeout', destroyOnTimeout);
    return upstreamReq;
  }

  function upstreamFailure(ex: Exchange, err: unknown): KubegateError {
    const error = describeUpstreamFailure(ex.clusterId, err);
    logger.warn({ cluster: ex.clusterId, code: error.code, cause: describeCause(error.cause ?? err) }, 'upstream request failed');
    return error;
  }

  function registerStream(ex: Exchange, token: TokenFacts): void {
    open.add(ex);
    if (deps.longRunning !== undefined) {
      if (ex.res === undefined) deps.longRunning.track(ex.clientSocket);
      else deps.longRunning.track(ex.res, () => endGracefully(ex));
    }
    const socket = ex.clientSocket as Partial<Socket>;
    socket.setKeepAlive?.(true, TCP_KEEPALIVE_MS);
    if (token.expiresAt !== null) {
      const delayMs = token.expiresAt.getTime() - Date.now();
      if (delayMs < MAX_TIMER_MS) ex.expiryTimer = setTimeout(abortExchange, Math.max(0, delayMs), ex).unref();
    }
  }

  /** Shutdown: a watch or log stream ends as if the cluster had ended it. */
  function endGracefully(ex: Exchange): void {
    const res = ex.res;
    if (res === undefined || res.writableEnded || res.destroyed) return;
    ex.ending = true;
    ex.call?.cancel();
    if (res.headersSent) {
      res.end();
    } else {
      ex.code = 'SHUTTING_DOWN';
      writeStatus(res, new KubegateError('SHUTTING_DOWN'));
    }
  }

  function finish(ex: Exchange): void {
    if (ex.finished) return;
    ex.finished = true;
    open.delete(ex);
    if (ex.expiryTimer !== undefined) clearTimeout(ex.expiryTimer);
    const socket = ex.clientSocket as Partial<Socket>;
    const record: AuditRecord = {
      time: ex.time,
      user: ex.authenticated ? ex.user.name : null,
      groups: ex.user.groups,
      impersonated: ex.impersonated === undefined ? null : { user: ex.impersonated.name, uid: ex.impersonated.uid, groups: ex.impersonated.groups, extra: ex.impersonated.extra },
      tokenName: ex.authenticated ? ex.tokenName : null,
      cluster: ex.clusterId === '' ? null : ex.clusterId,
      role: ex.role,
      method: ex.req.method ?? '',
      path: ex.path,
      status: ex.status,
      code: ex.code,
      durationMs: Math.round((performance.now() - ex.startedAt) * 1000) / 1000,
      bytesIn: (socket.bytesRead ?? 0) - ex.bytesReadAtStart,
      bytesOut: (socket.bytesWritten ?? 0) - ex.bytesWrittenAtStart,
      upgrade: ex.upgrade,
      longRunning: ex.longRunning,
      via: ex.via,
    };
    try {
      deps.audit(record);
      deps.metrics?.requestFinished(record);
    } catch (err) {
      logger.warn({ err }, 'audit or metrics hook failed');
    }
    if (ex.marks !== undefined && slowRequestMs !== undefined && record.durationMs >= slowRequestMs) {
      logger.warn({ cluster: record.cluster, method: record.method, status: record.status, ...slowRequestTimings(ex.startedAt, ex.marks, record.durationMs) }, 'slow request');
    }
  }

  // --- ordinary requests -----------------------------------------------------------------

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const ex = new Exchange(req, false, req.socket, res, NO_HEAD);
    if (slowRequestMs !== undefined) ex.marks = { dispatched: 0, connected: 0, head: 0, upstreamEnd: 0 };
    deps.metrics?.requestStarted();
    res.once('close', () => {
      if (!res.writableFinished) ex.call?.cancel();
      if (res.headersSent) ex.status = res.statusCode;
      finish(ex);
    });
    admitExchange(ex);
  }

  function forwardRequest(ex: Exchange, req: IncomingMessage, res: ServerResponse, admission: Admitted): void {
    const longRunning = admission.target.longRunning;
    if (longRunning) {
      registerStream(ex, admission.token);
      // The slow-request log is for requests that should be short: a watch lasts as long as it is held.
      ex.marks = undefined;
    }
    const { upstream, target } = admission;
    const method = req.method as Dispatcher.HttpMethod;
    const options: Dispatcher.DispatchOptions = {
      path: upstream.pathPrefix + target.path + target.query,
      method,
      headers: admission.headers,
      body: admission.hasBody ? req : null,
      headersTimeout: longRunning ? 0 : idleTimeoutMs,
      bodyTimeout: 0,
    };
    const replayable = !admission.hasBody && (method === 'GET' || method === 'HEAD' || method === 'OPTIONS');
    const call = new UpstreamCall(ex, res, longRunning, upstream.connections, replayable ? options : undefined);
    ex.call = call;
    if (ex.marks !== undefined) ex.marks.dispatched = performance.now();
    upstream.dispatcher.dispatch(options, call);
  }

  /**
   * The upstream half of an ordinary exchange, as undici's dispatch handler: the answer's head
   * goes through `relayResponseHead`, its body to the client as it arrives (the upstream is
   * paused while the client's socket is full), and a failure becomes a Status or, once the
   * answer has started, a cut connection — except the one replay of a stale connection
   * (`#replaysOnStaleConnection`).
   */
  class UpstreamCall implements Dispatcher.DispatchHandler {
    #abort: ((reason?: Error) => void) | undefined;
    #resume: (() => void) | undefined;
    #cancelled = false;
    /** The answer was replaced by a Status: its body is read and dropped. */
    #discard = false;
    /** The request went on a reused keep-alive connection. */
    #reused = false;
    /** The answer's head arrived. */
    #answered = false;
    /** What to send again if the request can be replayed; cleared once it was. */
    #replay: Dispatcher.DispatchOptions | undefined;

    constructor(
      readonly ex: Exchange,
      readonly res: ServerResponse,
      readonly longRunning: boolean,
      readonly connections: ForwardingConnections,
      replay: Dispatcher.DispatchOptions | undefined,
    ) {
      this.#replay = replay;
    }

    /** The client left, the stream was closed or the proxy is stopping: the exchange is aborted upstream. */
    cancel(): void {
      if (this.#cancelled) return;
      this.#cancelled = true;
      if (this.#abort !== undefined) abortQuietly(this.#abort);
    }

    onConnect(abort: (reason?: Error) => void): void {
      if (this.ex.marks !== undefined) this.ex.marks.connected = performance.now();
      this.#reused = this.connections.requestSent();
      this.#abort = abort;
      if (this.#cancelled) abortQuietly(abort);
    }

    onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
      const { ex, res } = this;
      this.#answered = true;
      if (ex.marks !== undefined) ex.marks.head = performance.now();
      if (this.#cancelled || res.destroyed || ex.ending) {
        this.cancel();
        return false;
      }
      this.#resume = resume;
      const headers: string[] = new Array<string>(rawHeaders.length);
      for (let i = 0; i < rawHeaders.length; i++) headers[i] = (rawHeaders[i] as Buffer).toString('latin1');
      const relayed = relayResponseHead(ex, res, statusCode, headers);
      if (relayed === 'replaced') {
        // The 401's small body is read and dropped (the connection stays reusable); ours replaced it.
        this.#discard = true;
        return true;
      }
      if (relayed === 'failed') {
        this.cancel();
        return false;
      }
      if (this.longRunning) res.flushHeaders();
      return true;
    }

    onData(chunk: Buffer): boolean {
      if (this.#cancelled) return false;
      if (this.#discard) return true;
      const res = this.res;
      if (res.write(chunk) || res.writableLength < RELAY_BUFFER_BYTES) return true;
      if (this.#resume !== undefined) res.once('drain', this.#resume);
      return false;
    }

    onComplete(): void {
      if (this.ex.marks !== undefined) this.ex.marks.upstreamEnd = performance.now();
      if (!this.#cancelled && !this.#discard) this.res.end();
    }

    onError(err: Error): void {
      const { ex, res } = this;
      if (res.destroyed || ex.finished || ex.ending || ex.code !== null) return;
      const failure = asUpstreamError(err);
      if (this.#replaysOnStaleConnection(failure)) return;
      const error = upstreamFailure(ex, failure);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      ex.code = error.code;
      writeStatus(res, error, statusForm(ex));
    }

    /**
     * A replayable request (GET, HEAD, OPTIONS without a body) whose reused connection was
     * closed or reset before any byte of the answer — the server or a load balancer closed it
     * as idle just as it was reused — is sent again once, on a new connection. A failure on a
     * new connection, a timeout, or one after the answer's head is never replayed.
     */
    #replaysOnStaleConnection(err: Error): boolean {
      const replay = this.#replay;
      if (replay === undefined || !this.#reused || this.#answered || this.#cancelled || !STALE_CONNECTION_ERRORS.has((err as NodeJS.ErrnoException).code ?? '')) return false;
      this.#replay = undefined;
      this.#reused = false;
      this.#abort = undefined;
      logger.debug({ cluster: this.ex.clusterId, code: (err as NodeJS.ErrnoException).code }, 'request replayed on a new connection: its reused connection was closed');
      this.connections.retry(replay, this);
      return true;
    }
  }

  /**
   * The upstream's answer head, relayed to the client: the one place where a status and the
   * response headers from a cluster are looked at. A 401 to the proxy's own credential is
   * `replaced` by a CLUSTER_CREDENTIAL_REFUSED Status (upstream-culprit.ts); an answer node
   * cannot relay `failed` (a Status was sent instead).
   */
  function relayResponseHead(ex: Exchange, res: ServerResponse, statusCode: number, rawHeaders: readonly string[]): 'relayed' | 'replaced' | 'failed' {
    const refusal = credentialRefusal(ex.clusterId, ex.via ?? 'direct', statusCode, deps.credentialRefused);
    if (refusal !== undefined) {
      ex.code = refusal.code;
      writeStatus(res, refusal, statusForm(ex));
      return 'replaced';
    }
    try {
      res.writeHead(statusCode, filterResponseHeaders(rawHeaders));
      return 'relayed';
    } catch (cause) {
      // A cluster must not be able to crash the proxy with an answer node will not relay.
      ex.code = 'UPSTREAM_UNREACHABLE';
      writeStatus(res, upstreamFailure(ex, new KubegateError('UPSTREAM_UNREACHABLE', "the cluster's API server sent an answer the proxy cannot relay", { cause })), statusForm(ex));
      return 'failed';
    }
  }

  // --- upgrades ------------------------------------------------------------------------

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreError);
    const ex = new Exchange(req, true, socket, undefined, head);
    deps.metrics?.requestStarted();
    socket.once('close', () => {
      ex.upstreamReq?.destroy();
      const upstreamSocket = ex.upstreamSocket;
      if (upstreamSocket !== undefined) closePeer(upstreamSocket);
      finish(ex);
    });
    admitExchange(ex);
  }

  function forwardUpgrade(ex: Exchange, socket: Duplex, head: Buffer, admission: Admitted): void {
    registerStream(ex, admission.token);
    const upstreamReq = upgradeRequest(ex, admission);

    upstreamReq.on('upgrade', (upstreamRes: IncomingMessage, upstreamSocket: Duplex, upstreamHead: Buffer) => {
      upstreamSocket.on('error', ignoreError);
      ex.upstreamSocket = upstreamSocket;
      if (socket.destroyed) {
        upstreamSocket.destroy();
        return;
      }
      prepareStreamSocket(upstreamSocket);
      prepareStreamSocket(socket);
      ex.status = 101;
      socket.write(upgradeHead(upstreamRes), 'latin1');
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.once('close', () => closePeer(socket));
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });

    upstreamReq.on('response', (upstreamRes: IncomingMessage) => {
      upstreamRes.on('error', ignoreError);
      const status = upstreamRes.statusCode ?? 502;
      if (status >= 300 && status < 400) {
        // Never followed, never relayed: the socket is dropped with the redirect.
        upstreamRes.socket?.destroy();
        const error = new KubegateError('UPSTREAM_REDIRECT_REFUSED');
        logger.warn({ cluster: ex.clusterId, status }, 'upstream answered an upgrade with a redirect');
        ex.code = error.code;
        ex.status = error.status;
        writeStatusToSocket(socket, error);
        return;
      }
      const refusal = credentialRefusal(ex.clusterId, admission.upstream.via, status, deps.credentialRefused);
      if (refusal !== undefined) {
        upstreamRes.socket?.destroy();
        ex.code = refusal.code;
        ex.status = refusal.status;
        writeStatusToSocket(socket, refusal);
        return;
      }
      ex.status = status;
      relayRefusedUpgrade(upstreamRes, socket);
    });

    upstreamReq.on('error', (err: Error) => {
      // Already answered with our own Status: that answer must not be cut short.
      if (socket.destroyed || ex.finished || ex.code !== null) return;
      if (ex.status !== CLIENT_GONE) {
        socket.destroy();
        return;
      }
      const error = upstreamFailure(ex, err);
      ex.code = error.code;
      ex.status = error.status;
      writeStatusToSocket(socket, error);
    });
    upstreamReq.end();
  }

  function closeStreams(match: (stream: OpenStream) => boolean, refusal: ErrorCode = 'UNAUTHENTICATED'): number {
    for (const ex of admitting) (ex.closedWhileAdmitting ??= []).push({ match, refusal });
    let closed = 0;
    for (const ex of [...open]) {
      if (match(ex)) {
        ex.abort();
        closed++;
      }
    }
    return closed;
  }

  function openStreamCounts(): { watch: number; upgrade: number } {
    let upgrade = 0;
    for (const ex of open) if (ex.upgrade) upgrade++;
    return { watch: open.size - upgrade, upgrade };
  }

  return { handleRequest, handleUpgrade, closeStreams, openStreams: () => [...open], openStreamCount: () => open.size, openStreamCounts };
}

/** What an exchange keeps of its admission for its audit record (and here for `closeStreams`). */
export interface AdmissionFactsHolder {
  clusterId: string;
  path: string;
  longRunning: boolean;
  user: UserInfo;
  authenticated: boolean;
  tokenName: string;
  role: ClusterRole | null;
  impersonated: UserInfo | undefined;
  via: 'direct' | 'agent' | null;
}

/** Copies what admission learnt onto the exchange, for its audit record and `closeStreams`. */
export function learn(ex: AdmissionFactsHolder, admission: Admission): void {
  if (admission.target !== undefined) {
    ex.clusterId = admission.target.clusterId;
    ex.path = admission.target.path;
  }
  ex.longRunning = admission.longRunning;
  if (admission.user !== undefined && admission.token !== undefined) {
    ex.user = admission.user;
    ex.authenticated = true;
    ex.tokenName = admission.token.name;
  }
  ex.role = admission.role;
  ex.impersonated = admission.impersonated;
  if (admission.admitted) ex.via = admission.upstream.via;
}

function ignoreError(): void {}

/** How a refusal is written: kubectl's discovery reads need the form it prints (kube/status.ts). */
function statusForm(ex: Exchange): 'status' | 'discovery' {
  return isDiscoveryRead(ex.req.method ?? '', ex.path) ? 'discovery' : 'status';
}

function abortExchange(ex: Exchange): void {
  ex.abort();
}

/**
 * undici's timeouts are the proxy's UPSTREAM_TIMEOUT, logged with the same cause as the
 * agents' connect timeout (upstreams.ts); a dropped tunnel is CLUSTER_DISCONNECTED; every
 * other failure is kept as it is.
 */
function asUpstreamError(err: Error): Error {
  if (err instanceof TunnelDroppedError) return err.disconnected;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new KubegateError('UPSTREAM_TIMEOUT', undefined, { cause: new Error('connect timeout') });
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new KubegateError('UPSTREAM_TIMEOUT', undefined, { cause: err });
  return err;
}

function destroyOnTimeout(this: ClientRequest): void {
  this.destroy(new KubegateError('UPSTREAM_TIMEOUT'));
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code === undefined ? cause.message : `${code}: ${cause.message}`;
  }
  return String(cause);
}

/** An upgraded socket carries a stream of its own: no idle timeout, no Nagle, TCP keep-alive. */
function prepareStreamSocket(socket: Duplex): void {
  const net = socket as Partial<Socket>;
  net.setTimeout?.(0);
  net.setNoDelay?.(true);
  net.setKeepAlive?.(true, TCP_KEEPALIVE_MS);
}

/**
 * One side of an upgraded pair closed: the other goes too. Its pending output is flushed
 * first when there is any (bounded by LINGER_MS); otherwise it is destroyed at once.
 */
function closePeer(peer: Duplex): void {
  if (peer.destroyed) return;
  if (peer.writableLength === 0) {
    peer.destroy();
    return;
  }
  peer.end();
  setTimeout(destroyStream, LINGER_MS, peer).unref();
}

function destroyStream(stream: Duplex): void {
  stream.destroy();
}

/** The upstream's 101 answer, byte for byte except `Set-Cookie`. */
function upgradeHead(upstreamRes: IncomingMessage): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  const raw = upstreamRes.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.toLowerCase() === 'set-cookie') continue;
    head += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  return head + '\r\n';
}

/**
 * Relays a non-101 answer to an upgrade (usually a Status from the API server) and closes
 * both connections: the upstream socket is destroyed once the body is read, never reused.
 * What the client sends meanwhile is read and discarded.
 */
function relayRefusedUpgrade(upstreamRes: IncomingMessage, socket: Duplex): void {
  const status = upstreamRes.statusCode ?? 502;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  const headers = filterResponseHeaders(upstreamRes.rawHeaders);
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name.toLowerCase() === 'content-length') continue;
    head += `${name}: ${headers[i + 1] as string}\r\n`;
  }
  head += 'Connection: close\r\n\r\n';
  // Captured now: node detaches the socket from the response when it ends.
  const upstreamSocket = upstreamRes.socket;
  socket.resume();
  socket.write(head, 'latin1');
  upstreamRes.once('end', () => {
    upstreamSocket.destroy();
    setTimeout(destroyStream, LINGER_MS, socket).unref();
  });
  upstreamRes.once('close', () => {
    if (!upstreamRes.complete) socket.destroy();
  });
  upstreamRes.pipe(socket);
}

/**
 * A slow request's marks as consecutive stretches (SlowRequestTimings). The last stretch
 * reached ends at `durationMs`; the ones never reached are null.
 */
export function slowRequestTimings(startedAt: number, marks: { readonly dispatched: number; readonly connected: number; readonly head: number; readonly upstreamEnd: number }, durationMs: number): SlowRequestTimings {
  const points = [startedAt, marks.dispatched, marks.connected, marks.head, marks.upstreamEnd];
  const [admitMs = null, connectionMs = null, upstreamHeadMs = null, upstreamBodyMs = null, clientWriteMs = null] = points.map((from, i) => {
    if (from === 0) return null;
    const next = points[i + 1] ?? 0;
    const to = next === 0 ? startedAt + durationMs : next;
    return Math.round((to - from) * 1000) / 1000;
  });
  return { durationMs, admitMs, connectionMs, upstreamHeadMs, upstreamBodyMs, clientWriteMs };
}
