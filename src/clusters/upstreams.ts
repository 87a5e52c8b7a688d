/**
 * One upstream per cluster: how to reach its API server as the proxy's impersonate-only
 * identity.
 *
 * Design note: each cluster gets a TLS secure context made once (CA bundle, client
 * certificate) — a new connection never re-parses PEM — with `rejectUnauthorized` on unless
 * the cluster says `insecureSkipTlsVerify`, and three ways to the API server built on it:
 * - `dispatcher`, an undici Pool, for every ordinary request the proxy forwards (watches
 *   included): keep-alive, no pipelining (a watch holds its connection), no cap on
 *   connections (a cap would queue every watch past it), no body timeout (an idle watch is
 *   not a failure), TLS sessions resumed on new connections. Measured in paired runs, an
 *   undici exchange costs markedly less CPU than node:http's ClientRequest/IncomingMessage
 *   pair (BENCHMARKS.md).
 * - `agent`, a node:http keep-alive agent, for the proxy's own calls (status probes, the
 *   cluster endpoint of the kube client): off the hot path.
 * - `upgradeAgent`, without keep-alive, for upgrades (exec, attach, port-forward): a socket
 *   used for an upgrade attempt is never handed back to a pool, whatever the answer
 *   (CVE-2018-1002105).
 * Bearer-token credentials become one precomputed `Authorization` header. New connections
 * must connect (and finish the TLS handshake) within `connectTimeoutMs`, so an unreachable
 * cluster answers promptly instead of after the kernel's SYN retries.
 *
 * Stale keep-alive connections: an idle forwarding connection is closed after
 * `freeSocketTimeoutMs` (60 s by default, a margin below kube-apiserver's own 90 s
 * `IdleTimeout`), but a load balancer in front of the API servers may close it sooner, and
 * may do so just as the pool reuses it. `connections` is what the forwarder needs to replay
 * such a request once (forward.ts decides which): `requestSent()`, called from the dispatch
 * handler's onConnect, tells whether the request goes on a reused connection — undici writes
 * a new connection's first request synchronously inside the connector's callback, so a
 * request written while that callback runs is on a connection opened for it — and
 * `retry()` replays a request on a second pool sharing the connector (and its TLS session
 * cache) whose requests carry `Connection: close`: it never has an idle connection, so a
 * replay always gets a fresh one. Connections opened, requests sent and retries are plain
 * numbers per cluster, kept across rebuilt upstreams until the cluster is evicted, and read
 * by /metrics when scraped (`stats()`): reuse = 1 − opened / requests. Through a tunnel, an
 * API server closing a connection arrives as the tunnel stream's clean end, and is such a
 * stale connection; a tunnel that drops fails its connections with TunnelDroppedError
 * instead (`failWhenTunnelDrops`): CLUSTER_DISCONNECTED to the forwarder, never replayed.
 *
 * `get(cluster)` is on the hot path: the Cluster object the directory hands out is the
 * cache key (one WeakMap lookup). A new object for the same cluster (after any reload) is
 * compared by a digest of server, CA, TLS flag and credentials; only when that changed is a
 * new upstream built and the old agents destroyed — which also cuts streams still open on
 * the old settings, so rotated credentials or a moved server take effect at once.
 *
 * `http://` servers send the proxy's credentials in clear text; they are refused unless the
 * pool is created with `allowPlainHttp` (tests, or a cluster reached through a local tunnel).
 *
 * Agent-mode clusters (`mode: 'agent'`) have no server or credentials in the store: their
 * upstream connects through the tunnel hub (tunnels.ts). Its pool and agents open each
 * connection as a tunnel stream and run TLS to the API server inside it, verified against the CA and server
 * name the agent reported, so only the API server can read what the proxy sends; new
 * connections (pool and upgrades alike) resume the upstream's last verified TLS session
 * (secureTunnelStream). The
 * `Authorization` header is the agent's service account token, read per request from the
 * hub, so a rotated token changes no upstream and cuts no stream; only a changed CA, server
 * name or host builds a new upstream. With no tunnel anywhere, `get` throws
 * CLUSTER_DISCONNECTED.
 */
import { createHash, X509Certificate } from 'node:crypto';
import http from 'node:http';
import { constants as http2Constants } from 'node:http2';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import { KubegateError } from '../errors.js';
import { serverIdentityOptions } from '../kube/tls-name.js';
import type { Cluster, ClusterCredentials } from '../store/store.js';
import type { AgentHello } from '../tunnel/wire.js';
import type { TunnelHub } from './tunnels.js';

export interface Upstream {
  readonly clusterId: string;
  /** How the connection is made: dialled by the proxy, or through an agent's tunnel (audited). */
  readonly via: 'direct' | 'agent';
  /** The proxy's forwarding client for ordinary requests, watches included (undici Pool). */
  readonly dispatcher: Dispatcher;
  /** `https.request` or `http.request`, for upgrades and the proxy's own calls. */
  readonly request: (options: http.RequestOptions) => http.ClientRequest;
  /** Keep-alive agent for the proxy's own calls (status probes, the kube client). */
  readonly agent: http.Agent;
  /** Agent without keep-alive for upgrade requests. */
  readonly upgradeAgent: http.Agent;
  /** Host name or IP to connect to (IPv6 without brackets). */
  readonly hostname: string;
  readonly port: number;
  /** `Host` header value for the upstream. */
  readonly hostHeader: string;
  /** Path of the server URL without trailing slash (`''` for `https://host:6443`). */
  readonly pathPrefix: string;
  /** The proxy's own credentials as flat headers (`Authorization: Bearer …`), or none. */
  readonly authHeaders: readonly string[];
  /** The forwarding pool's connection bookkeeping, for the replay of requests on stale connections. */
  readonly connections: ForwardingConnections;
}

/** See the design note: stale keep-alive connections. */
export interface ForwardingConnections {
  /**
   * Call from the dispatch handler's onConnect (the request is being written): counts the
   * request and answers whether it goes on a reused keep-alive connection (false: on one
   * opened for it).
   */
  requestSent(): boolean;
  /** Sends `options` again on a connection opened for it and closed after the answer; counted as a retry. */
  retry(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void;
  /** Destroys the retries' connections (done with the upstream; not for the forwarder). */
  destroy(): void;
}

/** A cluster's forwarding connections since start (or since it was last evicted). */
export interface UpstreamCounts {
  /** Connections opened (TCP connect and TLS handshake done). */
  opened: number;
  /** Requests written on a connection, retries included. */
  requests: number;
  /** Requests sent again after their reused connection failed before the answer. */
  retries: number;
}

export interface UpstreamPoolOptions {
  /** Accept `http://` cluster servers (credentials in clear text). Default false. */
  readonly allowPlainHttp?: boolean;
  /** TCP connect plus TLS handshake limit for new connections. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this long. Default 60000. */
  readonly freeSocketTimeoutMs?: number;
  /** Idle keep-alive connections kept per cluster. Default 64. */
  readonly maxFreeSockets?: number;
  /** Where agent-mode clusters are reached; without it they are CLUSTER_DISCONNECTED. */
  readonly tunnels?: Pick<TunnelHub, 'credentials' | 'dial'>;
}

export interface UpstreamPool {
  /** The upstream for the cluster's current settings. Throws KubegateError CONFIG_INVALID. */
  get(cluster: Cluster): Upstream;
  /** Destroys the upstream of a deleted cluster (its open streams too). */
  evict(clusterId: string): void;
  /** Destroys every upstream. */
  close(): void;
  /** The forwarding counts of every cluster the pool has an upstream for, by cluster ID. */
  stats(): ReadonlyMap<string, Readonly<UpstreamCounts>>;
}

interface PoolEntry {
  readonly digest: string;
  readonly upstream: Upstream;
  /** For agent-mode clusters: the hello the upstream was built from. */
  readonly hello?: AgentHello;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_FREE_SOCKET_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_FREE_SOCKETS = 64;
const TCP_KEEPALIVE_MS = 30_000;
const { NGHTTP2_NO_ERROR } = http2Constants;
const INVALID_TOKEN_CHARACTER = /[\u0000-\u0020\u007f-\uffff]/;

export function createUpstreamPool(options: UpstreamPoolOptions = {}): UpstreamPool {
  const tunnels = options.tunnels;
  const settings = {
    allowPlainHttp: options.allowPlainHttp ?? false,
    connectTimeoutMs: positive(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs'),
    freeSocketTimeoutMs: positive(options.freeSocketTimeoutMs, DEFAULT_FREE_SOCKET_TIMEOUT_MS, 'freeSocketTimeoutMs'),
    maxFreeSockets: positive(options.maxFreeSockets, DEFAULT_MAX_FREE_SOCKETS, 'maxFreeSockets'),
  };
  const byId = new Map<string, PoolEntry>();
  let byObject = new WeakMap<Cluster, Upstream>();
  const counts = new Map<string, UpstreamCounts>();

  /** The cluster's counts, shared by its successive upstreams. */
  function countsOf(clusterId: string): UpstreamCounts {
    let found = counts.get(clusterId);
    if (found === undefined) {
      found = { opened: 0, requests: 0, retries: 0 };
      counts.set(clusterId, found);
    }
    return found;
  }

  function get(cluster: Cluster): Upstream {
    if (cluster.mode === 'agent') return getTunnelled(cluster);
    const { credentials } = cluster;
    if (credentials === null) throw new KubegateError('CONFIG_INVALID', 'the cluster has no credentials', { field: 'cluster.credentials' });
    const known = byObject.get(cluster);
    if (known !== undefined && byId.get(cluster.id)?.upstream === known) return known;
    const digest = digestOf(cluster, credentials);
    const entry = byId.get(cluster.id);
    if (entry !== undefined && entry.digest === digest) {
      byObject.set(cluster, entry.upstream);
      return entry.upstream;
    }
    const upstream = buildUpstream(cluster, credentials, settings, countsOf(cluster.id));
    if (entry !== undefined) destroyUpstream(entry.upstream);
    byId.set(cluster.id, { digest, upstream });
    byObject.set(cluster, upstream);
    return upstream;
  }

  function getTunnelled(cluster: Cluster): Upstream {
    const hello = tunnels?.credentials(cluster.id);
    if (tunnels === undefined || hello === undefined) throw new KubegateError('CLUSTER_DISCONNECTED');
    const entry = byId.get(cluster.id);
    if (entry !== undefined && entry.hello === hello) return entry.upstream;
    const digest = tunnelDigestOf(hello);
    if (entry !== undefined && entry.digest === digest) {
      byId.set(cluster.id, { digest, upstream: entry.upstream, hello });
      return entry.upstream;
    }
    const upstream = buildTunnelUpstream(cluster.id, hello, tunnels, settings, countsOf(cluster.id));
    if (entry !== undefined) destroyUpstream(entry.upstream);
    byId.set(cluster.id, { digest, upstream, hello });
    return upstream;
  }

  function evict(clusterId: string): void {
    counts.delete(clusterId);
    const entry = byId.get(clusterId);
    if (entry === undefined) return;
    byId.delete(clusterId);
    destroyUpstream(entry.upstream);
  }

  function close(): void {
    for (const entry of byId.values()) destroyUpstream(entry.upstream);
    byId.clear();
    counts.clear();
    byObject = new WeakMap();
  }

  return { get, evict, close, stats: () => counts };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number`);
  return value;
}

function digestOf(cluster: Cluster, credentials: ClusterCredentials): string {
  const parts =
    credentials.kind === 'token'
      ? [cluster.server, cluster.caPem ?? '', String(cluster.insecureSkipTlsVerify), 'token', credentials.token]
      : [cluster.server, cluster.caPem ?? '', String(cluster.insecureSkipTlsVerify), 'cert', credentials.certPem, credentials.keyPem];
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64');
}

function tunnelDigestOf(hello: AgentHello): string {
  const { host, servername, caPem } = hello.apiServer;
  return createHash('sha256').update(JSON.stringify(['agent', host, servername, caPem])).digest('base64');
}

function buildTunnelUpstream(clusterId: string, hello: AgentHello, tunnels: Pick<TunnelHub, 'credentials' | 'dial'>, settings: Required<Omit<UpstreamPoolOptions, 'tunnels'>>, counts: UpstreamCounts): Upstream {
  const { servername, caPem, host } = hello.apiServer;
  let secureContext: tls.SecureContext;
  try {
    assertCertificates(caPem);
    secureContext = tls.createSecureContext({ ca: caPem });
  } catch (cause) {
    throw new KubegateError('UPSTREAM_UNREACHABLE', "the CA the cluster's agent reported cannot be loaded", { cause });
  }
  const connect: TunnelConnect = {
    dial: () => tunnels.dial(clusterId),
    tls: { secureContext, ...serverIdentityOptions(servername), rejectUnauthorized: true },
    connectTimeoutMs: settings.connectTimeoutMs,
    sessions: { last: undefined },
  };
  const common: https.AgentOptions = {
    keepAliveMsecs: TCP_KEEPALIVE_MS,
    maxFreeSockets: settings.maxFreeSockets,
    timeout: settings.freeSocketTimeoutMs,
    scheduling: 'lifo',
  };
  let token = '';
  let authHeaders: readonly string[] = [];
  const hostname = `${clusterId}.tunnel.kubegate.invalid`;
  const forwarding = forwardingPools(`https://${hostname}`, tunnelConnector(connect), settings, counts);
  return Object.freeze({
    clusterId,
    via: 'agent',
    dispatcher: forwarding.dispatcher,
    connections: forwarding.connections,
    request: https.request,
    agent: new TunnelAgent({ ...common, keepAlive: true }, connect),
    upgradeAgent: new TunnelAgent({ ...common, keepAlive: false }, connect),
    // Never dialled: the pool and agents above open tunnel streams. It names the pool entry only.
    hostname,
    port: 443,
    hostHeader: host,
    pathPrefix: '',
    get authHeaders(): readonly string[] {
      const current = tunnels.credentials(clusterId)?.token ?? '';
      if (current !== token) {
        token = current;
        authHeaders = current === '' ? [] : Object.freeze(['Authorization', `Bearer ${current}`]);
      }
      return authHeaders;
    },
  });
}

interface TunnelConnect {
  readonly dial: () => Duplex | Promise<Duplex>;
  readonly tls: tls.ConnectionOptions;
  readonly connectTimeoutMs: number;
  /** The upstream's TLS session cache: the last session its API server gave (see secureTunnelStream). */
  readonly sessions: { last: Buffer | undefined };
}

/**
 * TLS to the API server inside a tunnel stream, bounded by the connect timeout. The last
 * session the API server gave any connection of this upstream is offered for resumption,
 * as undici's connector and https.Agent do for direct-dial clusters: one verified session
 * per upstream, and an upstream is made for one CA, server name and host (a new hello with
 * other ones builds a new upstream, whose cache starts empty), so a session is only ever
 * offered to the server and CA it was verified against when it was made. A server that
 * declines it gets a full handshake, verified as always.
 */
function secureTunnelStream(connect: TunnelConnect, raw: Duplex): tls.TLSSocket {
  const cached = connect.sessions.last;
  const socket = tls.connect({ ...connect.tls, socket: raw, ...(cached === undefined ? {} : { session: cached }) });
  // Node emits 'session' only once the connection is verified, chain and server name: a
  // session TLS 1.2 hands over before the check is held back, and dropped when it fails.
  socket.on('session', (session: Buffer) => {
    connect.sessions.last = session;
  });
  armConnectTimeout(socket, connect.connectTimeoutMs, 'secureConnect');
  return socket;
}

/** undici's connector over the tunnel: the socket is handed over once its TLS handshake completed. */
function tunnelConnector(connect: TunnelConnect): buildConnector.connector {
  return (_options, callback) => {
    let pending = true;
    const fail = (error: unknown): void => {
      if (!pending) return;
      pending = false;
      callback(error instanceof Error ? error : new Error(String(error)), null);
    };
    const secure = (raw: Duplex): void => {
      const established = failWhenTunnelDrops(raw);
      const socket = secureTunnelStream(connect, raw);
      socket.once('secureConnect', () => {
        if (!pending) return;
        pending = false;
        established(socket);
        callback(null, socket);
      });
      socket.once('error', fail);
    };
    let raw: Duplex | Promise<Duplex>;
    try {
      raw = connect.dial();
    } catch (error) {
      fail(error);
      return;
    }
    if (raw instanceof Promise) raw.then(secure, fail);
    else secure(raw);
  };
}

/**
 * What a connection through a tunnel fails with when the tunnel drops. To undici it is a
 * socket error (`UND_ERR_SOCKET`), so that requests not yet written on the connection go to
 * another one, as for any closed connection; the request that was on it fails with
 * `disconnected`, CLUSTER_DISCONNECTED, which the forwarder answers and never replays.
 */
export class TunnelDroppedError extends Error {
  readonly code = 'UND_ERR_SOCKET';
  readonly disconnected: KubegateError;
  constructor(cause?: unknown) {
    super('the tunnel to the cluster dropped');
    this.name = 'TunnelDroppedError';
    this.disconnected = new KubegateError('CLUSTER_DISCONNECTED', undefined, cause === undefined ? {} : { cause });
  }
}

/**
 * A tunnel stream that goes away without its clean end — the tunnel dropped, the agent went
 * away — fails the connection on it with TunnelDroppedError. An API server closing the
 * connection (idle, say) reaches the proxy as the stream's clean end instead (the agent ends
 * the stream), and only that is a stale connection whose request the forwarder may replay.
 * An HTTP/2 stream of a local tunnel tells by its reset code (a dropped session resets it);
 * a peer link's socket by whether it ended before it closed. Called before TLS wraps the
 * stream (its listeners must run before TLS closes the connection); armed with the
 * connection once its handshake is done — before, a failure is the connector's.
 */
function failWhenTunnelDrops(raw: Duplex & { readonly rstCode?: number }): (socket: tls.TLSSocket) => void {
  let connection: tls.TLSSocket | undefined;
  const disconnected = (cause?: unknown): void => {
    if (connection !== undefined && !connection.destroyed) connection.destroy(new TunnelDroppedError(cause));
  };
  raw.once('error', disconnected);
  raw.once('close', () => {
    if (raw.rstCode === undefined ? !raw.readableEnded : raw.rstCode !== NGHTTP2_NO_ERROR) disconnected();
  });
  return (socket) => {
    connection = socket;
  };
}

/** An https.Agent whose connections are TLS over tunnel streams (upgrades, the proxy's own calls). */
class TunnelAgent extends https.Agent {
  readonly #connect: TunnelConnect;
  constructor(options: https.AgentOptions, connect: TunnelConnect) {
    super(options);
    this.#connect = connect;
  }
  override createConnection(_options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    let raw: Duplex | Promise<Duplex>;
    try {
      raw = this.#connect.dial();
    } catch (error) {
      callback?.(error as Error, undefined as never);
      return undefined;
    }
    if (!(raw instanceof Promise)) return secureTunnelStream(this.#connect, raw);
    raw.then(
      (stream) => callback?.(null, secureTunnelStream(this.#connect, stream)),
      (error: unknown) => callback?.(error as Error, undefined as never),
    );
    return undefined;
  }
}

function destroyUpstream(upstream: Upstream): void {
  upstream.dispatcher.destroy().catch(ignoreError);
  upstream.connections.destroy();
  upstream.agent.destroy();
  upstream.upgradeAgent.destroy();
}

function invalid(message: string, cause?: unknown): KubegateError {
  return new KubegateError('CONFIG_INVALID', message, { field: 'cluster.server', cause });
}

function buildUpstream(cluster: Cluster, credentials: ClusterCredentials, settings: Required<Omit<UpstreamPoolOptions, 'tunnels'>>, counts: UpstreamCounts): Upstream {
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch (cause) {
    throw invalid("the cluster's server URL cannot be parsed", cause);
  }
  const secure = url.protocol === 'https:';
  if (!secure && !(url.protocol === 'http:' && settings.allowPlainHttp)) throw invalid("the cluster's server URL must use https");
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw invalid("the cluster's server URL must not carry credentials, a query or a fragment");
  }

  const authHeaders: string[] = [];
  if (credentials.kind === 'token') {
    const token = credentials.token;
    if (token.length === 0 || INVALID_TOKEN_CHARACTER.test(token)) {
      throw new KubegateError('CONFIG_INVALID', "the cluster's bearer token is empty or contains invalid characters", { field: 'cluster.credentials' });
    }
    authHeaders.push('Authorization', `Bearer ${token}`);
  }

  const common: http.AgentOptions = {
    keepAliveMsecs: TCP_KEEPALIVE_MS,
    maxFreeSockets: settings.maxFreeSockets,
    timeout: settings.freeSocketTimeoutMs,
    scheduling: 'lifo',
  };
  let agent: http.Agent;
  let upgradeAgent: http.Agent;
  let connect: { secureContext: tls.SecureContext; rejectUnauthorized: boolean } | undefined;
  if (secure) {
    let secureContext: tls.SecureContext;
    try {
      if (cluster.caPem !== null) assertCertificates(cluster.caPem);
      secureContext = tls.createSecureContext({
        ...(cluster.caPem === null ? {} : { ca: cluster.caPem }),
        ...(credentials.kind === 'clientCertificate' ? { cert: credentials.certPem, key: credentials.keyPem } : {}),
      });
    } catch (cause) {
      throw new KubegateError('CONFIG_INVALID', "the cluster's CA bundle or client certificate cannot be loaded", { field: 'cluster.caPem', cause });
    }
    connect = { secureContext, rejectUnauthorized: !cluster.insecureSkipTlsVerify };
    const tlsOptions: https.AgentOptions = connect;
    agent = new TimedHttpsAgent({ ...common, ...tlsOptions, keepAlive: true }, settings.connectTimeoutMs);
    upgradeAgent = new TimedHttpsAgent({ ...common, ...tlsOptions, keepAlive: false }, settings.connectTimeoutMs);
  } else {
    agent = new TimedHttpAgent({ ...common, keepAlive: true }, settings.connectTimeoutMs);
    upgradeAgent = new TimedHttpAgent({ ...common, keepAlive: false }, settings.connectTimeoutMs);
  }

  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const connector = buildConnector({ ...connect, timeout: settings.connectTimeoutMs, keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_MS });
  const forwarding = forwardingPools(`${url.protocol}//${url.host}`, connector, settings, counts);
  return Object.freeze({
    clusterId: cluster.id,
    via: 'direct',
    dispatcher: forwarding.dispatcher,
    connections: forwarding.connections,
    request: secure ? https.request : http.request,
    agent,
    upgradeAgent,
    hostname,
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    hostHeader: url.host,
    pathPrefix: url.pathname.replace(/\/+$/, ''),
    authHeaders: Object.freeze(authHeaders),
  });
}

/**
 * The forwarding pool and its retry pool on one counting connector (see the design note:
 * stale keep-alive connections). Both: one request per connection at a time, as many
 * connections as requests in flight, idle ones closed after `freeSocketTimeoutMs`; timeouts
 * are the forwarder's, per request.
 */
function forwardingPools(origin: string, connector: buildConnector.connector, settings: Required<Omit<UpstreamPoolOptions, 'tunnels'>>, counts: UpstreamCounts): { dispatcher: Dispatcher; connections: ForwardingConnections } {
  /** True only while undici takes a new connection, and writes its first request on it. */
  let opening = false;
  const connect: buildConnector.connector = (options, callback) => {
    connector(options, (...args) => {
      if (args[0] !== null) {
        callback(...args);
        return;
      }
      counts.opened++;
      opening = true;
      try {
        callback(...args);
      } finally {
        opening = false;
      }
    });
  };
  const options: Pool.Options = {
    connections: null,
    pipelining: 1,
    keepAliveTimeout: settings.freeSocketTimeoutMs,
    keepAliveMaxTimeout: settings.freeSocketTimeoutMs,
    headersTimeout: 0,
    bodyTimeout: 0,
    connect,
  };
  const dispatcher = new Pool(origin, options);
  const fresh = new Pool(origin, options);
  return {
    dispatcher,
    connections: {
      requestSent() {
        counts.requests++;
        return !opening;
      },
      retry(request, handler) {
        counts.retries++;
        fresh.dispatch({ ...request, reset: true }, handler);
      },
      destroy() {
        fresh.destroy().catch(ignoreError);
      },
    },
  };
}

function ignoreError(): void {}

/**
 * Node ignores PEM blocks it cannot read in a CA bundle; a bundle without one readable
 * certificate would fail every handshake, so it is reported when the cluster is loaded.
 */
function assertCertificates(pem: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
  if (blocks === null) throw new Error('no certificate in the CA bundle');
  for (const block of blocks) new X509Certificate(block);
}

/** Destroys a new connection that has not connected (TLS: finished its handshake) in time. */
function armConnectTimeout(socket: Duplex | null | undefined, timeoutMs: number, readyEvent: 'connect' | 'secureConnect'): void {
  if (socket === null || socket === undefined) return;
  const timer = setTimeout(destroyUnconnected, timeoutMs, socket);
  const clear = (): void => clearTimeout(timer);
  socket.once(readyEvent, clear);
  socket.once('close', clear);
}

function destroyUnconnected(socket: Duplex): void {
  socket.destroy(new KubegateError('UPSTREAM_TIMEOUT', undefined, { cause: new Error('connect timeout') }));
}

class TimedHttpsAgent extends https.Agent {
  readonly #connectTimeoutMs: number;
  constructor(options: https.AgentOptions, connectTimeoutMs: number) {
    super(options);
    this.#connectTimeoutMs = connectTimeoutMs;
  }
  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    armConnectTimeout(socket, this.#connectTimeoutMs, 'secureConnect');
    return socket;
  }
}

class TimedHttpAgent extends http.Agent {
  readonly #connectTimeoutMs: number;
  constructor(options: http.AgentOptions, connectTimeoutMs: number) {
    super(options);
    this.#connectTimeoutMs = connectTimeoutMs;
  }
  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    armConnectTimeout(socket, this.#connectTimeoutMs, 'connect');
    return socket;
  }
}
