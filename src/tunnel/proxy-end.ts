/**
 * The proxy's end of a tunnel: an HTTP/2 client session on the connection an agent dialled
 * in (see wire.ts for the protocol).
 *
 * Design note. The session is handed the upgraded socket only once the 101 answer has been
 * written out (HTTP/2 takes over the TLS stream's native handle and must not find a write
 * in flight). It then asks for the agent's hello and is usable only after a valid one has
 * arrived within `helloTimeoutMs`; a malformed or oversized hello, a hello stream that ends,
 * a peer that stops answering PINGs, or any HTTP/2 protocol error ends the whole session —
 * the agent reconnects, which is always safe. `dial()` is synchronous: it opens a stream at
 * once and the caller may write to it immediately (TLS's ClientHello leaves with the stream's
 * first frames); a stream the agent answers with anything but 200 is destroyed with
 * UPSTREAM_UNREACHABLE, which the forwarder turns into a Status. `closed` tells why an
 * established tunnel ended (TunnelEnd): what the proxy asked for with `close(reason)` first,
 * else what the session saw (wire.ts `sessionEnd`), for `kubegate_tunnel_closes_total`.
 */
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { KubegateError } from '../errors.js';
import type { TunnelCloseReason } from '../metrics.js';
import { keepAlive } from './liveness.js';
import {
  DIAL_PATH,
  HELLO_PATH,
  MAX_HELLO_BYTES,
  PING_INTERVAL_MS,
  PING_TIMEOUT_MS,
  SESSION_SETTINGS,
  SESSION_WINDOW_BYTES,
  asProtocolError,
  parseHello,
  sessionEnd,
  type AgentHello,
} from './wire.js';

export interface ProxyEndOptions {
  /** How long the agent has to send its first hello. Default 10000. */
  readonly helloTimeoutMs?: number;
  readonly pingIntervalMs?: number;
  readonly pingTimeoutMs?: number;
}

/**
 * Why a tunnel ended after its hello: a counted reason (see TUNNEL_CLOSE_REASONS), or
 * `shutdown` — this proxy process stopping, which no scrape of it would see.
 */
export type TunnelEndReason = TunnelCloseReason | 'shutdown';

/** Ends the proxy asks for itself: a newer tunnel of the same agent, a revocation, its own stop. */
export type TunnelCloseRequest = Extract<TunnelEndReason, 'replaced' | 'revoked' | 'shutdown'>;

export interface TunnelEnd {
  readonly reason: TunnelEndReason;
  /** What failed, when something did. */
  readonly error: Error | undefined;
}

export interface TunnelSession {
  /** The agent's latest hello. */
  readonly hello: AgentHello;
  /** When the tunnel was established. */
  readonly connectedAt: Date;
  /** Resolves when the session has ended, with why. */
  readonly closed: Promise<TunnelEnd>;
  /** True once the session is closing or closed: no new stream may be opened. */
  readonly closing: boolean;
  /** A new byte stream to the agent's API server. Throws CLUSTER_DISCONNECTED when closing. */
  dial(): Duplex;
  /** Called with each hello after the first. */
  onHello(listener: (hello: AgentHello) => void): void;
  /** Streams open on this tunnel. */
  openStreams(): number;
  /** Bytes read from / written to the agent's connection so far. */
  bytes(): { readonly read: number; readonly written: number };
  /** Ends the tunnel (a GOAWAY; open streams get a grace period); the first reason given is kept. */
  close(reason: TunnelCloseRequest): void;
}

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS, NGHTTP2_NO_ERROR } = http2.constants;
const DEFAULT_HELLO_TIMEOUT_MS = 10_000;

/**
 * Runs the 101 answer on `socket` (an agent's upgrade request, already authenticated) and
 * resolves with the session once the agent's hello has arrived. Rejects with a
 * KubegateError (TUNNEL_PROTOCOL_ERROR, or CLUSTER_DISCONNECTED when the agent went away).
 */
export function openTunnelSession(socket: Duplex & { bytesRead?: number; bytesWritten?: number }, head: Buffer, options: ProxyEndOptions = {}): Promise<TunnelSession> {
  return new Promise((resolve, reject) => {
    socket.on('error', ignoreError);
    const answer = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kubegate-tunnel/1\r\n\r\n';
    socket.write(answer, 'latin1', (writeError) => {
      if (writeError !== null && writeError !== undefined) {
        socket.destroy();
        reject(new KubegateError('CLUSTER_DISCONNECTED', 'the agent went away during the tunnel handshake', { cause: writeError }));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      start(socket, options).then(resolve, reject);
    });
  });
}

function start(socket: Duplex & { bytesRead?: number; bytesWritten?: number }, options: ProxyEndOptions): Promise<TunnelSession> {
  const session = http2.connect('http://agent.tunnel.invalid', {
    createConnection: () => socket,
    settings: SESSION_SETTINGS,
    maxSessionMemory: 64,
  });
  let failure: Error | undefined;
  let agentSentGoaway = false;
  session.on('error', (error) => {
    failure ??= asProtocolError(error);
  });
  // A GOAWAY with an error code also fails the session (ERR_HTTP2_SESSION_ERROR, above).
  session.on('goaway', (code: number) => {
    if (code === NGHTTP2_NO_ERROR) agentSentGoaway = true;
  });
  session.on('frameError', (type: number, code: number) => {
    fail(new KubegateError('TUNNEL_PROTOCOL_ERROR', `an HTTP/2 frame of type ${type} could not be sent to the agent (nghttp2 error ${code})`));
  });
  session.once('connect', () => session.setLocalWindowSize(SESSION_WINDOW_BYTES));
  const pinger = keepAlive(session, options.pingIntervalMs ?? PING_INTERVAL_MS, options.pingTimeoutMs ?? PING_TIMEOUT_MS);
  const closed = new Promise<Error | undefined>((resolve) => {
    session.once('close', () => {
      clearInterval(pinger);
      socket.destroy();
      resolve(failure);
    });
  });
  const fail = (error: Error): void => {
    failure ??= error;
    session.destroy();
  };

  return new Promise((resolve, reject) => {
    const helloListeners: ((hello: AgentHello) => void)[] = [];
    let current: AgentHello | undefined;
    let settled = false;
    const timer = setTimeout(() => {
      fail(new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the agent sent no hello in time'));
    }, options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS);
    timer.unref();
    void closed.then((error) => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        reject(isKubegate(error) ? error : new KubegateError('CLUSTER_DISCONNECTED', 'the agent closed the tunnel before its hello', { cause: error }));
      }
    });

    const helloStream = session.request({ [HTTP2_HEADER_METHOD]: 'GET', [HTTP2_HEADER_PATH]: HELLO_PATH }, { endStream: true });
    helloStream.on('error', (error) => {
      if (!session.closed) fail(asProtocolError(error));
    });
    helloStream.on('response', (headers) => {
      if (Number(headers[HTTP2_HEADER_STATUS]) !== 200) fail(new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the agent refused the hello stream'));
    });
    helloStream.once('end', () => {
      if (!session.closed) fail(new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the agent ended its hello stream'));
    });
    let pending = '';
    helloStream.setEncoding('utf8');
    helloStream.on('data', (chunk: string) => {
      pending += chunk;
      if (pending.length > MAX_HELLO_BYTES) {
        fail(new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the agent hello is too large'));
        return;
      }
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
        let hello: AgentHello;
        try {
          hello = parseHello(line);
        } catch (error) {
          fail(error as Error);
          return;
        }
        if (current !== undefined && hello.agentId !== current.agentId) {
          fail(new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the agent changed its ID within one tunnel'));
          return;
        }
        current = hello;
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          const ended = closed.then((error) => ({ error, agentSentGoaway }));
          resolve(tunnelSession(session, socket, ended, helloListeners, () => current ?? hello, () => helloStream.close()));
        } else {
          for (const listener of helloListeners) listener(hello);
        }
      }
    });
  });
}

function tunnelSession(
  session: http2.ClientHttp2Session,
  socket: Duplex & { bytesRead?: number; bytesWritten?: number },
  ended: Promise<{ readonly error: Error | undefined; readonly agentSentGoaway: boolean }>,
  helloListeners: ((hello: AgentHello) => void)[],
  latest: () => AgentHello,
  endHello: () => void,
): TunnelSession {
  const connectedAt = new Date();
  let streams = 0;
  let requested: TunnelCloseRequest | undefined;
  const closed = ended.then(({ error, agentSentGoaway }): TunnelEnd => {
    if (requested !== undefined) return { reason: requested, error };
    const end = sessionEnd(error, agentSentGoaway);
    return { reason: end === 'peer_closed' ? 'agent_closed' : end, error };
  });
  return {
    get hello() {
      return latest();
    },
    connectedAt,
    closed,
    get closing() {
      return session.closed || session.destroyed;
    },
    dial() {
      if (session.closed || session.destroyed) throw new KubegateError('CLUSTER_DISCONNECTED');
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({ [HTTP2_HEADER_METHOD]: 'POST', [HTTP2_HEADER_PATH]: DIAL_PATH });
      } catch (cause) {
        throw new KubegateError('CLUSTER_DISCONNECTED', undefined, { cause });
      }
      streams++;
      stream.once('close', () => {
        streams--;
      });
      stream.once('response', (headers) => {
        if (Number(headers[HTTP2_HEADER_STATUS]) !== 200) {
          stream.destroy(new KubegateError('UPSTREAM_UNREACHABLE', "the cluster's agent could not reach its API server"));
        }
      });
      return stream;
    },
    onHello(listener) {
      helloListeners.push(listener);
    },
    openStreams: () => streams,
    bytes: () => ({ read: socket.bytesRead ?? 0, written: socket.bytesWritten ?? 0 }),
    close(reason) {
      if (session.destroyed) return;
      requested ??= reason;
      // The hello stream never ends by itself; in-flight dials get a grace period.
      session.close();
      endHello();
      if (streams > 0) setTimeout(() => session.destroy(), 2000).unref();
    },
  };
}

function isKubegate(error: Error | undefined): error is KubegateError {
  return error instanceof KubegateError;
}

function ignoreError(): void {}
