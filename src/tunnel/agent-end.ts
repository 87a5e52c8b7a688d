/**
 * The agent's end of a tunnel: an HTTP/2 server session on the connection the agent dialled
 * (see wire.ts for the protocol and why the roles turn around).
 *
 * Design note (fail closed). The only thing the proxy can make this end do is open a TCP
 * connection to `dialApiServer()` — the agent's own API server, fixed at start-up. No
 * header, path or body the proxy sends can name another host or port, so a compromised or
 * confused proxy cannot use the agent to reach anything else in the cluster's network. The
 * agent relays bytes and never reads them: the proxy speaks TLS to the API server inside
 * the stream. Every stream is torn down with its peer (the API server connection closes the
 * stream and the other way round), and a session that stops answering PINGs is destroyed so
 * the agent reconnects.
 */
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { keepAlive } from './liveness.js';
import { KubegateError } from '../errors.js';
import type { AgentTunnelCloseReason } from '../metrics.js';
import { asProtocolError, DIAL_PATH, HELLO_PATH, PING_INTERVAL_MS, PING_TIMEOUT_MS, SESSION_SETTINGS, SESSION_WINDOW_BYTES, sessionEnd, type AgentHello } from './wire.js';

export interface AgentEndOptions {
  /** Opens a TCP connection to the agent's own API server; 'connect' means it is open. */
  readonly dialApiServer: () => Duplex;
  /** The current hello; read when the proxy asks, and again after `helloChanged()`. */
  readonly hello: () => AgentHello;
  /** Streams the proxy asked for that this end does not serve, and other faults. */
  readonly onFault?: (message: string, cause?: unknown) => void;
  readonly pingIntervalMs?: number;
  readonly pingTimeoutMs?: number;
}

/** Why the agent's tunnel ended: a counted reason, or `stopped` — the agent's own close(). */
export type AgentTunnelEndReason = AgentTunnelCloseReason | 'stopped';

export interface AgentTunnel {
  /** Resolves when the session has ended, with why. */
  readonly closed: Promise<AgentTunnelEndReason>;
  /** Sends the current hello on every open hello stream (after a token rotation). */
  helloChanged(): void;
  /** Streams relaying to the API server right now. */
  openDials(): number;
  close(): void;
}

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/** Serves the proxy on `socket`, a TLS connection whose 101 answer has been read. */
export function serveTunnel(socket: TLSSocket, options: AgentEndOptions): AgentTunnel {
  const helloStreams = new Set<http2.ServerHttp2Stream>();
  let dials = 0;
  const server = http2.createServer({ settings: SESSION_SETTINGS, maxSessionMemory: 64 });
  let session: http2.ServerHttp2Session | undefined;
  let resolveClosed: (reason: AgentTunnelEndReason) => void = () => undefined;
  const closed = new Promise<AgentTunnelEndReason>((resolve) => {
    resolveClosed = resolve;
  });
  let pinger: NodeJS.Timeout | undefined;
  let failure: Error | undefined;
  let proxySentGoaway = false;
  let stopping = false;

  server.on('session', (created: http2.ServerHttp2Session) => {
    session = created;
    created.on('error', (error) => {
      failure ??= asProtocolError(error);
      options.onFault?.('tunnel session failed', failure);
    });
    created.on('frameError', (type: number, code: number) => {
      const error = new KubegateError('TUNNEL_PROTOCOL_ERROR', `an HTTP/2 frame of type ${type} could not be sent to the proxy (nghttp2 error ${code})`);
      failure ??= error;
      options.onFault?.('tunnel session failed', error);
      created.destroy();
    });
    // A GOAWAY with an error code also fails the session (ERR_HTTP2_SESSION_ERROR, above).
    created.on('goaway', (code: number) => {
      if (code === NGHTTP2_NO_ERROR) proxySentGoaway = true;
    });
    created.on('close', () => {
      if (pinger !== undefined) clearInterval(pinger);
      const end = sessionEnd(failure, proxySentGoaway);
      resolveClosed(stopping ? 'stopped' : end === 'peer_closed' ? 'proxy_closed' : end);
    });
    created.once('connect', () => created.setLocalWindowSize(SESSION_WINDOW_BYTES));
    pinger = keepAlive(created, options.pingIntervalMs ?? PING_INTERVAL_MS, options.pingTimeoutMs ?? PING_TIMEOUT_MS);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', ignoreError);
    const method = headers[HTTP2_HEADER_METHOD];
    const path = headers[HTTP2_HEADER_PATH];
    if (method === 'POST' && path === DIAL_PATH) dial(stream);
    else if (method === 'GET' && path === HELLO_PATH) serveHello(stream);
    else {
      options.onFault?.('the proxy asked for a stream this agent does not serve');
      stream.respond({ [HTTP2_HEADER_STATUS]: 404 }, { endStream: true });
    }
  });

  function serveHello(stream: http2.ServerHttp2Stream): void {
    stream.respond({ [HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/x-ndjson' });
    helloStreams.add(stream);
    stream.once('close', () => helloStreams.delete(stream));
    stream.resume();
    writeHello(stream);
  }

  function writeHello(stream: http2.ServerHttp2Stream): void {
    let line: string;
    try {
      line = `${JSON.stringify(options.hello())}\n`;
    } catch (error) {
      options.onFault?.('the agent hello could not be built', error);
      stream.close(NGHTTP2_CANCEL);
      return;
    }
    stream.write(line);
  }

  function dial(stream: http2.ServerHttp2Stream): void {
    let api: Duplex;
    try {
      api = options.dialApiServer();
    } catch (error) {
      options.onFault?.('the API server could not be dialled', error);
      stream.respond({ [HTTP2_HEADER_STATUS]: 502 }, { endStream: true });
      return;
    }
    dials++;
    let connected = false;
    api.once('connect', () => {
      connected = true;
      if (stream.destroyed) {
        api.destroy();
        return;
      }
      stream.respond({ [HTTP2_HEADER_STATUS]: 200 });
      api.pipe(stream);
      stream.pipe(api);
    });
    api.on('error', (error) => {
      if (!connected && !stream.destroyed && !stream.headersSent) {
        options.onFault?.('the API server could not be reached', error);
        stream.respond({ [HTTP2_HEADER_STATUS]: 502 }, { endStream: true });
      } else {
        stream.close(NGHTTP2_CANCEL);
      }
    });
    api.once('close', () => {
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    });
    stream.once('close', () => {
      dials--;
      api.destroy();
    });
  }

  server.emit('connection', asHttp2Socket(socket));

  return {
    closed,
    helloChanged() {
      for (const stream of helloStreams) writeHello(stream);
    },
    openDials: () => dials,
    close() {
      stopping = true;
      if (session === undefined || session.destroyed) {
        socket.destroy();
        return;
      }
      session.close();
      for (const stream of helloStreams) stream.end();
      // Dials still open after a grace period are cut with the socket.
      if (dials > 0) setTimeout(() => socket.destroy(), 2000).unref();
    },
  };
}

/**
 * Node's HTTP/2 server refuses a TLS socket whose ALPN did not pick `h2` (the agent's
 * connection was negotiated as HTTP/1.1 for the upgrade); after the 101 it carries HTTP/2,
 * so it is marked as such before the session takes it over.
 */
function asHttp2Socket(socket: TLSSocket): TLSSocket {
  Object.defineProperty(socket, 'alpnProtocol', { value: 'h2', configurable: true });
  return socket;
}

function ignoreError(): void {}
