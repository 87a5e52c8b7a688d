/**
 * Test support for the forwarding path: a recording upstream (what the "cluster" received,
 * exactly), a proxy server that dispatches to a Forwarder the way the real one does, a
 * TokenAuthenticator backed by a map (our own interface), and small HTTP clients that send
 * exactly the bytes a test asks for.
 */
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AuthResult, TokenAuthenticator } from '../../src/auth/authenticator.js';
import { isClusterPath } from '../../src/proxy/cluster-path.js';
import type { Cluster } from '../../src/store/store.js';
import { createForwarder, type AuditRecord, type Forwarder, type ForwarderDeps, type ForwarderOptions } from '../../src/proxy/forward.js';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly upgrade: boolean;
  readonly socket: Socket;
}

export interface UpstreamTls {
  readonly certPem: string;
  readonly keyPem: string;
  /** When set, client certificates are requested and verified against this CA. */
  readonly clientCaPem?: string;
}

export interface RecordingUpstream {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Requests (ordinary or upgrade) whose connection or stream has not closed yet. */
  openRequests(): number;
  /** TCP connections currently open to this upstream. */
  openSockets(): number;
  onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  onUpgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  close(): Promise<void>;
}

/** Answers 200 with `{"path": <url>}` after reading the whole body. */
export function answerWithPath(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ path: req.url });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}

export async function startRecordingUpstream(tls?: UpstreamTls): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let open = 0;
  const upstream: RecordingUpstream = {
    url: '',
    port: 0,
    requests,
    openRequests: () => open,
    openSockets: () => sockets.size,
    onRequest: answerWithPath,
    onUpgrade: (_req, socket) => socket.destroy(),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, upgrade: false, socket: req.socket });
    open++;
    res.once('close', () => open--);
    upstream.onRequest(req, res);
  };
  const server: http.Server | https.Server =
    tls === undefined
      ? http.createServer(handler)
      : https.createServer(
          { cert: tls.certPem, key: tls.keyPem, ...(tls.clientCaPem === undefined ? {} : { ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: true }) },
          handler,
        );
  server.on(tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, upgrade: true, socket: req.socket });
    open++;
    socket.once('close', () => open--);
    socket.on('error', () => {});
    // Like kube-apiserver, close a connection whose peer has closed (node keeps it half-open).
    socket.once('end', () => socket.destroy());
    upstream.onUpgrade(req, socket, head);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(upstream, { port, url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}` });
}

/** A directly registered cluster at `server` whose proxy credential is the token `proxy-token-<id>`. */
export function directCluster(id: string, server: string, overrides: Partial<Cluster> = {}): Cluster {
  return {
    id,
    displayName: id,
    server,
    mode: 'direct',
    caPem: null,
    credentials: { kind: 'token', token: `proxy-token-${id}` },
    insecureSkipTlsVerify: false,
    ace: { enabled: false, fqdn: null, caPem: null, nodes: [] },
    createdAt: new Date(0),
    updatedAt: new Date(0),
    deletingSince: null,
    syncHoldsObjects: false,
    ...overrides,
  };
}

/** A TokenAuthenticator answering from a map; a thrown Error in the map is thrown. */
export class MapAuthenticator implements TokenAuthenticator {
  readonly calls: string[] = [];
  constructor(readonly results: Map<string, AuthResult | Error>) {}
  async authenticateToken(token: string): Promise<AuthResult> {
    this.calls.push(token);
    const result = this.results.get(token);
    if (result instanceof Error) throw result;
    return result ?? { outcome: 'unauthenticated', code: 'TOKEN_INVALID' };
  }
}

export interface ProxyHarness {
  readonly port: number;
  readonly forwarder: Forwarder;
  readonly audit: AuditRecord[];
  readonly warnings: object[];
  /** The proxy's ends of its client connections, open now. */
  clientSockets(): readonly Socket[];
  close(): Promise<void>;
}

export async function startProxy(deps: Omit<ForwarderDeps, 'audit' | 'logger'>, options?: ForwarderOptions): Promise<ProxyHarness> {
  const audit: AuditRecord[] = [];
  const warnings: object[] = [];
  // Inherit from `deps` rather than spreading it, so that getters (allowedOrigins) stay live.
  const fullDeps = Object.create(deps, {
    audit: { value: (record: AuditRecord) => audit.push(record) },
    logger: { value: { warn: (details: object) => warnings.push(details), debug: () => {} } },
  }) as ForwarderDeps;
  const forwarder = createForwarder(fullDeps, options);
  const server = http.createServer((req, res) => {
    if (isClusterPath(req.url ?? '')) forwarder.handleRequest(req, res);
    else res.writeHead(404).end();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (isClusterPath(req.url ?? '')) forwarder.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    forwarder,
    audit,
    warnings,
    clientSockets: () => [...sockets],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

export interface ClientResponse {
  readonly status: number;
  readonly rawHeaders: readonly string[];
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface SendOptions {
  readonly method?: string;
  readonly path: string;
  /** Raw headers, sent exactly as given after `Host`. */
  readonly headers?: readonly string[];
  readonly body?: Buffer | string;
}

/** One request on a fresh connection; resolves with the whole answer. */
export async function send(port: number, options: SendOptions): Promise<ClientResponse> {
  const req = http.request({
    host: '127.0.0.1',
    port,
    agent: false,
    method: options.method ?? 'GET',
    path: options.path,
    headers: ['Host', `127.0.0.1:${port}`, ...(options.headers ?? [])],
  });
  req.end(options.body);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, headers: res.headers, body: Buffer.concat(chunks) };
}

/** The Status body of a refusal: its HTTP code and kubegate code. */
export function statusOf(response: ClientResponse): { code: number; reason: string; cause: string } {
  const status = JSON.parse(response.body.toString()) as { kind: string; code: number; reason: string; details: { causes: { reason: string }[] } };
  if (status.kind !== 'Status') throw new Error(`not a Status: ${response.body.toString()}`);
  return { code: status.code, reason: status.reason, cause: status.details.causes[0]?.reason ?? '' };
}

/** Opens a raw TCP connection; resolves once connected. */
export async function connectRaw(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** Reads from `socket` until `predicate(received)` holds or the socket closes. */
export async function readUntil(socket: net.Socket, predicate: (received: Buffer) => boolean, timeoutMs = 3000): Promise<Buffer> {
  let received = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out; received ${JSON.stringify(received.toString('latin1'))}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (predicate(received)) {
        cleanup();
        resolve(received);
      }
    };
    const onClose = (): void => {
      cleanup();
      resolve(received);
    };
    function cleanup(): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    if (socket.destroyed) onClose();
  });
}
