/**
 * Bare forwarders for the comparison, each in its own process, with no authentication:
 *   node-http    — node:https server piping to https.request on a keep-alive agent, the way
 *                  kubegate forwards (upstream request destroyed when the client goes away);
 *                  upgrades piped by hand.
 *   http-proxy-3 — the proxying library alone: proxy.web for requests, proxy.ws for upgrades.
 *   undici       — node:https server, the upstream exchange on an undici Pool (`dispatch`, the
 *                  answer written as it arrives, backpressure honoured); ordinary requests
 *                  only (the paired CPU comparison), upgrades refused.
 * Both serve TLS with the benchmark's certificate and verify the upstream against its CA.
 * Usage: node --import tsx bench/forwarder.ts KIND PORT TARGET_URL CA CERT KEY; prints one JSON line when ready.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

const [kind, portText, targetUrl, caFile, certFile, keyFile] = process.argv.slice(2);
if (kind === undefined || targetUrl === undefined || caFile === undefined || certFile === undefined || keyFile === undefined) {
  throw new TypeError('usage: forwarder.ts KIND PORT TARGET CA CERT KEY');
}
const target = new URL(targetUrl);
const ca = readFileSync(caFile, 'utf8');
const agent = new https.Agent({ keepAlive: true, maxFreeSockets: 64, ca, scheduling: 'lifo' });
const upgradeAgent = new https.Agent({ keepAlive: false, ca });
const server = https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), keepAliveTimeout: 300_000 });
server.headersTimeout = 60_000;
server.requestTimeout = 0;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

function forwardHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, raw[i + 1] as string);
  }
  out.push('Host', target.host);
  return out;
}

if (kind === 'node-http') {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const upstreamReq = https.request({
      host: target.hostname,
      port: target.port,
      agent,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req.rawHeaders),
    });
    upstreamReq.on('response', (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, forwardHeaders(upstreamRes.rawHeaders).slice(0, -2));
      if (req.url?.includes('watch=')) res.flushHeaders();
      upstreamRes.pipe(res);
    });
    upstreamReq.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end();
      } else res.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    const raw = forwardHeaders(req.rawHeaders);
    raw.push('Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? '');
    const upstreamReq = https.request({ host: target.hostname, port: target.port, agent: upgradeAgent, method: req.method, path: req.url, headers: raw });
    upstreamReq.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
      upstreamSocket.on('error', () => undefined);
      let text = 'HTTP/1.1 101 Switching Protocols\r\n';
      for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2) text += `${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}\r\n`;
      socket.write(`${text}\r\n`);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
      socket.once('close', () => upstreamSocket.destroy());
      upstreamSocket.once('close', () => socket.destroy());
    });
    upstreamReq.on('response', () => socket.destroy());
    upstreamReq.on('error', () => socket.destroy());
    socket.once('close', () => upstreamReq.destroy());
    upstreamReq.end();
  });
} else if (kind === 'http-proxy-3') {
  const proxy = createProxyServer({ target: targetUrl, agent, secure: true, changeOrigin: true, ca });
  const wsProxy = createProxyServer({ target: targetUrl, agent: upgradeAgent, secure: true, changeOrigin: true, ws: true, ca });
  proxy.on('error', (_error: Error, _req: unknown, res: unknown) => {
    const response = res as ServerResponse;
    if (typeof response.writeHead === 'function' && !response.headersSent) {
      response.writeHead(502);
      response.end();
    } else (res as Duplex).destroy?.();
  });
  wsProxy.on('error', (_error: Error, _req: unknown, socket: unknown) => (socket as Duplex).destroy?.());
  server.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.web(req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    wsProxy.ws(req, socket, head);
  });
} else if (kind === 'undici') {
  const pool = new Pool(target.origin, { connect: { ca }, connections: null, pipelining: 1, keepAliveTimeout: 30_000, bodyTimeout: 0 });
  const UNDICI_REFUSED = new Set([...HOP_BY_HOP, 'expect']);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const headers: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (!UNDICI_REFUSED.has(name.toLowerCase())) headers.push(name, raw[i + 1] as string);
    }
    headers.push('Host', target.host);
    let abort: ((error?: Error) => void) | undefined;
    let gone = false;
    res.once('close', () => {
      if (res.writableFinished) return;
      gone = true;
      abort?.();
    });
    const handler: Dispatcher.DispatchHandler = {
      onConnect(abortRequest) {
        abort = abortRequest;
        if (gone) abortRequest();
      },
      onHeaders(statusCode, rawHeaders, resume) {
        const out: string[] = [];
        for (let i = 0; i < rawHeaders.length; i += 2) {
          const name = (rawHeaders[i] as Buffer).toString('latin1');
          if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, (rawHeaders[i + 1] as Buffer).toString('latin1'));
        }
        res.writeHead(statusCode, out);
        if (req.url?.includes('watch=')) res.flushHeaders();
        res.on('drain', resume);
        return true;
      },
      onData(chunk) {
        return res.write(chunk);
      },
      onComplete() {
        res.end();
      },
      onError() {
        if (!res.headersSent) {
          res.writeHead(502);
          res.end();
        } else res.destroy();
      },
    };
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool.dispatch({ path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null, bodyTimeout: 0 }, handler);
  });
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => socket.destroy());
} else {
  throw new TypeError(`unknown forwarder ${kind}`);
}

server.listen({ host: '127.0.0.1', port: Number(portText ?? 0) }, () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ ready: true, port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
});
