/**
 * `kubectl port-forward` for the fake API server: the portforward.k8s.io protocol over
 * SPDY/3.1 — on the upgraded connection itself (kubectl < 1.31, SPDY upgrade), or inside a
 * WebSocket (`SPDY/3.1+portforward.k8s.io`, the tunnelled form kubectl ≥ 1.31 tries first).
 *
 * Design note — what kubelet does and this copies: for every local connection the client
 * opens two streams carrying the same `port` and `requestID` headers, `streamType: error`
 * and `streamType: data`, and waits for a reply to each. Once both exist, the data stream is
 * joined to the pod's port; a port nothing listens on gets a message on the error stream
 * (kubectl prints it) and both streams end. The fake pod runs one service: an echo on
 * ECHO_PORT, answering every byte it receives, and ending its side when the client half-
 * closes. Header values are checked as kubelet does (a port must be a number 1–65535).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { controlFrame, readFrames, dataFrame, flagFin, frameType, HeaderBlockReader, HeaderBlockWriter, u32 } from './spdy-codec.js';

/** The port every running fake pod serves (an echo). */
export const ECHO_PORT = 8080;

export interface SpdyPortForwardOptions {
  /** The upgraded connection (or the WebSocket's byte stream); the upgrade answer is already written. */
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly podName: string;
  /** Called once when the connection ends for any reason. */
  readonly onClose: () => void;
}

interface ForwardPair {
  error?: number;
  data?: number;
  port: string;
  joined: boolean;
}

export function runSpdyPortForward(options: SpdyPortForwardOptions): void {
  const { socket } = options;
  const reader = new HeaderBlockReader();
  const writer = new HeaderBlockWriter();
  const pairs = new Map<string, ForwardPair>();
  /** data stream id → its pair, once joined to the echo. */
  const echoes = new Map<number, ForwardPair>();

  const write = (frame: Buffer): void => {
    if (!socket.destroyed && socket.writable) socket.write(frame);
  };
  const endStream = (streamId: number | undefined): void => {
    if (streamId !== undefined) write(dataFrame(streamId, flagFin, Buffer.alloc(0)));
  };

  const join = (requestId: string, pair: ForwardPair): void => {
    if (pair.joined || pair.error === undefined || pair.data === undefined) return;
    pair.joined = true;
    const port = Number(pair.port);
    if (port !== ECHO_PORT) {
      const message = `error forwarding port ${pair.port} to pod ${options.podName}: dial tcp4 127.0.0.1:${pair.port}: connect: connection refused`;
      write(dataFrame(pair.error, 0, Buffer.from(message)));
      endStream(pair.error);
      endStream(pair.data);
      pairs.delete(requestId);
      return;
    }
    echoes.set(pair.data, pair);
  };

  const handleControl = (type: number, _flags: number, payload: Buffer): void => {
    switch (type) {
      case frameType.synStream: {
        const streamId = payload.readUInt32BE(0) & 0x7fffffff;
        const headers = reader.read(payload.subarray(10));
        const streamType = headers.get('streamtype')?.[0];
        const port = headers.get('port')?.[0] ?? '';
        const requestId = headers.get('requestid')?.[0] ?? '';
        if ((streamType !== 'error' && streamType !== 'data') || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
          // kubelet refuses such a stream: RST_STREAM with PROTOCOL_ERROR (1).
          write(controlFrame(frameType.rstStream, 0, Buffer.concat([u32(streamId), u32(1)])));
          return;
        }
        write(controlFrame(frameType.synReply, 0, Buffer.concat([u32(streamId), writer.write(new Map())])));
        const pair = pairs.get(requestId) ?? { port, joined: false };
        pairs.set(requestId, pair);
        pair[streamType] = streamId;
        join(requestId, pair);
        return;
      }
      case frameType.headers:
        reader.read(payload.subarray(4));
        return;
      case frameType.ping:
        write(controlFrame(frameType.ping, 0, payload));
        return;
      case frameType.rstStream: {
        const streamId = payload.readUInt32BE(0) & 0x7fffffff;
        echoes.delete(streamId);
        return;
      }
      case frameType.goAway:
        socket.end();
        return;
      default:
        // SETTINGS, WINDOW_UPDATE: the echo moves little data.
        return;
    }
  };

  const handleData = (streamId: number, flags: number, payload: Buffer): void => {
    const pair = echoes.get(streamId);
    if (pair === undefined) return;
    if (payload.length > 0) write(dataFrame(streamId, 0, payload));
    if ((flags & flagFin) !== 0) {
      echoes.delete(streamId);
      endStream(streamId);
      endStream(pair.error);
    }
  };

  readFrames(socket, options.head, { control: handleControl, data: handleData }, options.onClose);
}

/** The subprotocol of port-forward's SPDY session tunnelled through a WebSocket. */
export const TUNNELED_PORT_FORWARD_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';

/** Owns the ws server for tunnelled port-forward upgrades (noServer mode); close() ends every session. */
export class WebsocketPortForwardServer {
  private readonly server = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<WebSocket>();

  constructor() {
    // ws refuses `SPDY/3.1+portforward.k8s.io` as a subprotocol ('/' is not a token character
    // in RFC 6455's grammar), so the caller checked it, accept() hides it from ws, and the
    // answer names it here, as kube-apiserver's answer does.
    this.server.on('headers', (headers) => headers.push(`Sec-WebSocket-Protocol: ${TUNNELED_PORT_FORWARD_PROTOCOL}`));
  }

  accept(options: { readonly request: IncomingMessage; readonly socket: Duplex; readonly head: Buffer; readonly podName: string; readonly onClose: () => void }): void {
    delete options.request.headers['sec-websocket-protocol'];
    this.server.handleUpgrade(options.request, options.socket, options.head, (ws) => {
      this.sockets.add(ws);
      // Each WebSocket binary message carries SPDY bytes; the stream joins them back up.
      const stream = createWebSocketStream(ws);
      ws.on('close', () => {
        this.sockets.delete(ws);
        stream.destroy();
        options.onClose();
      });
      runSpdyPortForward({ socket: stream, head: Buffer.alloc(0), podName: options.podName, onClose: () => undefined });
    });
  }

  close(): void {
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    this.server.close();
  }
}
