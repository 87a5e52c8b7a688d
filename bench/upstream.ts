/**
 * The benchmark's upstream: a fast HTTPS server that speaks just enough of the Kubernetes
 * API for the scenarios, run in its own process so that its CPU is not the proxy's.
 *
 * - `GET …/pods` — a small pod list (about 2 KB), prebuilt once.
 * - `GET …/pods?size=BYTES` — a pod list of about BYTES, built once per size and cached.
 * - `GET …?watch=1` — a watch: headers and an ADDED event at once, then one JSON event per line whenever
 *   `POST /bench/emit` fans an event out (`?client=LABEL`: only to the watches whose request
 *   carried `X-Bench-Client: LABEL`, so that several targets can be measured at once); each
 *   event carries the monotonic clock reading
 *   (`process.hrtime`, shared by every process on the machine) of its emission, so a client
 *   can compute delivery latency.
 * - upgrades: WebSocket (`v5.channel.k8s.io`, through ws) and SPDY/3.1 (the handshake only;
 *   after the 101 the bytes are echoed raw). Both send one byte at once after the 101 — the
 *   first byte of an exec session — and then echo what they receive.
 * - `GET /bench/stats[?client=LABEL]` — open watches (of that client label) and upgrades, watch requests seen.
 * - `GET /bench/round` — this process's longest event-loop delay since the previous call (which
 *   resets it), the TLS connections it accepted so far and those open now (bench/round-waits.ts).
 * A `/k8s/clusters/<id>` prefix is ignored, so proxies can forward paths unchanged.
 * Usage: node --import tsx bench/upstream.ts CERT_FILE KEY_FILE PORT; prints one JSON line when ready.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';

const [certFile, keyFile, portText] = process.argv.slice(2);
if (certFile === undefined || keyFile === undefined) throw new TypeError('usage: upstream.ts CERT KEY PORT');

const watches = new Set<ServerResponse>();
/** Open watches by their `X-Bench-Client` label ('' when none). */
const watchesByClient = new Map<string, Set<ServerResponse>>();
const upgraded = new Set<Duplex>();
let watchRequests = 0;
let connectionsAccepted = 0;
let connectionsOpen = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const lists = new Map<number, Buffer>();
const MAX_LIST_BYTES = 512 * 1024 * 1024;

function pod(index: number): object {
  return {
    metadata: {
      name: `pod-${index}`,
      namespace: 'default',
      uid: `00000000-0000-0000-0000-${String(index).padStart(12, '0')}`,
      resourceVersion: String(1000 + index),
      labels: { app: 'bench', tier: 'web' },
    },
    spec: { nodeName: 'node-1', containers: [{ name: 'web', image: 'registry.example/web:1.0' }] },
    status: { phase: 'Running', podIP: `10.0.${(index >> 8) & 255}.${index & 255}` },
  };
}

function podList(targetBytes: number): Buffer {
  const one = JSON.stringify(pod(0)).length + 1;
  const count = Math.max(1, Math.round(targetBytes / one));
  const items: object[] = [];
  for (let i = 0; i < count; i++) items.push(pod(i));
  return Buffer.from(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '5000' }, items }));
}

const smallList = podList(2000);
const initialEvent = Buffer.from(`${JSON.stringify({ type: 'ADDED', object: { kind: 'Pod', apiVersion: 'v1', ...pod(0) } })}\n`);

function stripPrefix(url: string): string {
  if (!url.startsWith('/k8s/clusters/')) return url;
  const next = url.indexOf('/', '/k8s/clusters/'.length);
  return next < 0 ? '/' : url.slice(next);
}

function sendJson(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function emit(client: string | null): number {
  const sentNs = process.hrtime.bigint().toString();
  const event = Buffer.from(
    `${JSON.stringify({ type: 'MODIFIED', object: { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'pod-0', namespace: 'default', annotations: { 'bench/sent-ns': sentNs } } } })}\n`,
  );
  const to = client === null ? watches : (watchesByClient.get(client) ?? new Set<ServerResponse>());
  for (const res of to) res.write(event);
  return to.size;
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = stripPrefix(req.url ?? '/');
  if (url.startsWith('/bench/')) {
    const client = new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('client');
    if (url.startsWith('/bench/stats')) {
      const openWatches = client === null ? watches.size : (watchesByClient.get(client)?.size ?? 0);
      sendJson(res, 200, Buffer.from(JSON.stringify({ openWatches, openUpgrades: upgraded.size, watchRequests })));
    } else if (url.startsWith('/bench/round')) {
      const loopDelayMaxMs = loopDelay.max / 1e6;
      loopDelay.reset();
      sendJson(res, 200, Buffer.from(JSON.stringify({ loopDelayMaxMs, connectionsAccepted, connectionsOpen })));
    } else if (url.startsWith('/bench/emit') && req.method === 'POST') {
      sendJson(res, 200, Buffer.from(JSON.stringify({ delivered: emit(client) })));
    } else sendJson(res, 404, Buffer.from('{}'));
    return;
  }
  const queryAt = url.indexOf('?');
  const query = new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1));
  const watch = query.get('watch');
  if (watch === '1' || watch === 'true') {
    watchRequests++;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // Like kube-apiserver, the watch starts with the current state (one ADDED event here);
    // a proxy that holds headers back until the first body byte (http-proxy-3) needs it.
    res.write(initialEvent);
    const client = String(req.headers['x-bench-client'] ?? '');
    let labelled = watchesByClient.get(client);
    if (labelled === undefined) watchesByClient.set(client, (labelled = new Set()));
    const group = labelled;
    watches.add(res);
    group.add(res);
    res.once('close', () => {
      watches.delete(res);
      group.delete(res);
    });
    return;
  }
  const size = Number(query.get('size') ?? '0');
  if (size > 0 && Number.isSafeInteger(size) && size <= MAX_LIST_BYTES) {
    let body = lists.get(size);
    if (body === undefined) {
      body = podList(size);
      lists.set(size, body);
    }
    sendJson(res, 200, body);
    return;
  }
  sendJson(res, 200, smallList);
}

const websockets = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), keepAliveTimeout: 300_000 }, handle);
server.headersTimeout = 60_000;
server.on('secureConnection', (socket: Duplex) => {
  connectionsAccepted++;
  connectionsOpen++;
  socket.once('close', () => connectionsOpen--);
});
server.requestTimeout = 0;

server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
  socket.on('error', () => undefined);
  upgraded.add(socket);
  socket.once('close', () => upgraded.delete(socket));
  const protocol = (req.headers.upgrade ?? '').toLowerCase();
  if (protocol === 'websocket') {
    websockets.handleUpgrade(req, socket, head, (ws) => {
      ws.send(Buffer.from([1]));
      ws.on('message', (data: Buffer) => ws.send(data));
      ws.on('error', () => undefined);
    });
    return;
  }
  if (protocol.startsWith('spdy/')) {
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
    );
    socket.write(Buffer.from([1]));
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
    return;
  }
  socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});

server.listen({ host: '127.0.0.1', port: Number(portText ?? 0) }, () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
});
process.on('SIGTERM', () => {
  for (const res of watches) res.destroy();
  for (const socket of upgraded) socket.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
});
