/**
 * The tunnel's wire contract, shared by both ends: how an agent asks for a tunnel, the
 * HTTP/2 settings each end uses, the paths of the streams, and the agent's hello.
 *
 * Design note. The agent dials the proxy's ordinary HTTPS listener with an HTTP/1.1 upgrade
 * (`Upgrade: kubegate-tunnel/1`, its credential as a bearer token). After the 101 the roles
 * turn around: on that one TLS connection the proxy is the HTTP/2 *client* and the agent the
 * HTTP/2 *server*, so the proxy opens streams toward the cluster whenever it needs one and
 * nothing but the agent's own outbound connection is ever required. HTTP/2 gives what a
 * hand-made multiplexer would have to reinvent: per-stream flow control (a stalled watch
 * holds at most STREAM_WINDOW_BYTES at the proxy — and at the agent, which pipes its API
 * server connection into the stream, the stream's 16 KiB high-water mark plus one 64 KiB
 * read — and stops only itself), a connection window large enough that many stalled streams
 * cannot starve the rest, PING for liveness, RST_STREAM for teardown, and a frame parser
 * that refuses garbage and oversized frames.
 *
 * An oversized frame or garbage after the first frames from a credentialed peer is cut only by
 * the PING timeout: nghttp2 queues its GOAWAY, stops reading and tells Node nothing — tried
 * (Node 20): no session or socket event, `session.state` unchanged until a write, and a
 * PING sent then flushes the GOAWAY but is itself only queued, which only time tells apart
 * from a slow peer.
 *
 * Sizes, measured (BENCHMARKS.md, 2026-12-05 midday): Node's HTTP/2 sends DATA frames of at
 * most 16 KiB whatever SETTINGS_MAX_FRAME_SIZE the peer announces, so the default frame size
 * is kept. A 1 MiB or a 128 KiB stream window, and an agent that let 256 KiB wait per stream
 * instead of piping, each cost the proxy more CPU per MB relayed than 256 KiB with `pipe`:
 * the proxy, which serves every cluster, is the end to spare.
 *
 * Streams the proxy opens:
 *   GET  /hello — answered 200 with newline-delimited JSON: the AgentHello first, then a new
 *                 hello whenever something in it changes (a rotated service account token).
 *   POST /dial  — answered 200 once the agent has opened a TCP connection to ITS OWN API
 *                 server (the address it was configured with — nothing in the request can
 *                 name another), then carries raw bytes both ways. The proxy runs TLS to the
 *                 API server inside it, verified against the CA the agent reported, so the
 *                 agent relays ciphertext it cannot read. 502 when the API server cannot be
 *                 reached.
 * Anything else is answered 404 and counted as a protocol error by the agent.
 */
import * as z from 'zod';
import { KubegateError, isKubegateError } from '../errors.js';
import { PingTimeoutError } from './liveness.js';

/** The `Upgrade` token of an agent's tunnel request. */
export const TUNNEL_UPGRADE = 'kubegate-tunnel/1';
/** The path agents dial. */
export const TUNNEL_PATH = '/v1/tunnel';
export const HELLO_PATH = '/hello';
export const DIAL_PATH = '/dial';

/** Flow-control window of each stream: what one stalled reader may hold buffered. */
export const STREAM_WINDOW_BYTES = 256 * 1024;
/** Flow-control window of the whole connection (every stream together). */
export const SESSION_WINDOW_BYTES = 32 * 1024 * 1024;
/** Streams one tunnel carries at once (watches are long-lived: leave room). */
export const MAX_CONCURRENT_STREAMS = 16_384;
/** HPACK header list limit: stream requests carry almost no headers. */
export const MAX_HEADER_LIST_BYTES = 16 * 1024;
/** Longest hello line accepted (a CA bundle and a token fit many times over). */
export const MAX_HELLO_BYTES = 256 * 1024;
/** PING interval on both ends; a tunnel that misses PING_TIMEOUT_MS of answers is dropped. */
export const PING_INTERVAL_MS = 5_000;
export const PING_TIMEOUT_MS = 10_000;

/** HTTP/2 settings both ends announce. */
export const SESSION_SETTINGS = Object.freeze({
  initialWindowSize: STREAM_WINDOW_BYTES,
  maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
  maxHeaderListSize: MAX_HEADER_LIST_BYTES,
  enablePush: false,
});

const hostPattern = /^[A-Za-z0-9.:[\]-]{1,253}$/;
const pemPattern = /-----BEGIN CERTIFICATE-----/;

/** What an agent tells the proxy about itself and its cluster's API server. */
export const agentHelloSchema = z
  .object({
    /** The agent's instance (pod name): several agents of one cluster are told apart by it. */
    agentId: z.string().min(1).max(253).regex(/^[A-Za-z0-9._-]+$/),
    agentVersion: z.string().min(1).max(64),
    /** `gitVersion` of the API server, as its /version answered the agent (may be unknown). */
    kubernetesVersion: z.string().max(64),
    apiServer: z
      .object({
        /** `Host` header and TLS server name to use toward the API server. */
        host: z.string().regex(hostPattern),
        servername: z.string().max(253),
        /** PEM CA bundle that signed the API server's certificate. */
        caPem: z.string().max(MAX_HELLO_BYTES).regex(pemPattern),
      })
      .strict(),
    /** The agent's service account token: impersonate-only rights; held in memory only. */
    token: z
      .string()
      .min(1)
      .max(16 * 1024)
      .regex(/^[\x21-\x7e]+$/),
  })
  .strict();

export type AgentHello = z.infer<typeof agentHelloSchema>;

/** Parses one hello line; malformed input is a TUNNEL_PROTOCOL_ERROR naming the field. */
export function parseHello(line: string): AgentHello {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the agent hello is not JSON', { cause });
  }
  const result = agentHelloSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue === undefined ? 'hello' : ['hello', ...issue.path.map(String)].join('.');
    throw new KubegateError('TUNNEL_PROTOCOL_ERROR', `the agent hello is invalid at ${field}`, { field });
  }
  return result.data;
}

/**
 * What HTTP/2 itself refused — bytes nghttp2 could not parse (ERR_HTTP2_ERROR), a GOAWAY
 * with an error code (ERR_HTTP2_SESSION_ERROR) — is the peer's protocol error; a socket's
 * own errors and a PING timeout stay as they are (the peer went away).
 */
export function asProtocolError(error: Error): Error {
  const code = (error as { code?: unknown }).code;
  if (code !== 'ERR_HTTP2_ERROR' && code !== 'ERR_HTTP2_SESSION_ERROR') return error;
  return new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the tunnel peer broke the HTTP/2 protocol', { cause: error });
}

/**
 * How a session ended on its own, as both ends count it: the peer's protocol error (see
 * asProtocolError), a PING left unanswered, the peer's GOAWAY without an error (it is
 * stopping or closing the tunnel on purpose), or else the connection ending or failing
 * under it (a killed process, a network cut, a reset) — in that order when several apply.
 */
export type SessionEnd = 'protocol_error' | 'ping_timeout' | 'peer_closed' | 'connection_lost';

export function sessionEnd(failure: Error | undefined, peerSentGoaway: boolean): SessionEnd {
  if (isKubegateError(failure, 'TUNNEL_PROTOCOL_ERROR')) return 'protocol_error';
  if (failure instanceof PingTimeoutError) return 'ping_timeout';
  return peerSentGoaway ? 'peer_closed' : 'connection_lost';
}
