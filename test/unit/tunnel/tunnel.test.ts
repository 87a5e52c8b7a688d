import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createCertificateAuthority, issueServingCertificate } from '../../../src/pki/certificates.js';
import { isKubegateError } from '../../../src/errors.js';
import { serveTunnel, type AgentTunnel } from '../../../src/tunnel/agent-end.js';
import { openTunnelSession, type TunnelSession } from '../../../src/tunnel/proxy-end.js';
import {
  MAX_CONCURRENT_STREAMS,
  MAX_HEADER_LIST_BYTES,
  SESSION_WINDOW_BYTES,
  STREAM_WINDOW_BYTES,
  TUNNEL_UPGRADE,
  type AgentHello,
} from '../../../src/tunnel/wire.js';
import { eventually } from '../../support/eventually.js';

interface Pki {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

let pki: Pki;

before(async () => {
  const ca = await createCertificateAuthority({ commonName: 'tunnel-test-ca', validityDays: 1 });
  const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost', '127.0.0.1'], validityDays: 1 });
  pki = { caPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem };
});

function hello(overrides: Partial<AgentHello> = {}): AgentHello {
  return {
    agentId: 'agent-0',
    agentVersion: '0.1.0',
    kubernetesVersion: 'v1.32.4',
    apiServer: { host: 'localhost:6443', servername: 'localhost', caPem: pki.caPem },
    token: 'service-account-token',
    ...overrides,
  };
}

/** A proxy-like HTTPS server that turns each upgrade into a tunnel session. */
async function startProxyEnd(): Promise<{ port: number; sessions: AsyncIterableIterator<Promise<TunnelSession>>; close(): Promise<void> }> {
  const server = https.createServer({ cert: pki.certPem, key: pki.keyPem });
  const pending: Promise<TunnelSession>[] = [];
  const waiters: ((value: IteratorResult<Promise<TunnelSession>>) => void)[] = [];
  server.on('upgrade', (_req, socket: Duplex, head: Buffer) => {
    const session = openTunnelSession(socket, head, { helloTimeoutMs: 3000 });
    session.catch(() => undefined);
    const waiter = waiters.shift();
    if (waiter) waiter({ value: session, done: false });
    else pending.push(session);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sessions: AsyncIterableIterator<Promise<TunnelSession>> = {
    next() {
      const ready = pending.shift();
      if (ready) return Promise.resolve({ value: ready, done: false });
      return new Promise((resolve) => waiters.push(resolve));
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    sessions,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Dials the proxy end like an agent and returns the upgraded TLS socket. */
async function dialTunnel(port: number): Promise<tls.TLSSocket> {
  const req = https.request({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: pki.caPem,
    method: 'GET',
    path: '/v1/tunnel',
    headers: { Connection: 'Upgrade', Upgrade: TUNNEL_UPGRADE },
  });
  req.end();
  const [, socket, head] = (await once(req, 'upgrade')) as [unknown, tls.TLSSocket, Buffer];
  if (head.length > 0) socket.unshift(head);
  return socket;
}

async function connectPair(
  proxy: Awaited<ReturnType<typeof startProxyEnd>>,
  dialApiServer: () => Duplex,
  agentHello: () => AgentHello = () => hello(),
): Promise<{ agent: AgentTunnel; session: TunnelSession }> {
  const socket = await dialTunnel(proxy.port);
  const agent = serveTunnel(socket, { dialApiServer, hello: agentHello });
  const next = await proxy.sessions.next();
  const session = await next.value;
  return { agent, session };
}

/** One HTTP/2 frame: the 9-byte header (length, type, flags, stream) and its payload. */
function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;
const FRAME_GOAWAY = 0x7;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const PROTOCOL_ERROR = 0x1;

/** A GOAWAY frame with `code`, as nghttp2 sends on a protocol error. */
function goaway(code: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(code, 4);
  return frame(FRAME_GOAWAY, 0, 0, payload);
}

/**
 * An agent written by hand: on an upgraded connection it sends the HTTP/2 server preface and
 * answers the hello stream (stream 1, the proxy's first) with 200 and `line`, frame by frame.
 */
function rawHello(socket: tls.TLSSocket, line: string): void {
  socket.write(frame(FRAME_SETTINGS, 0, 0));
  socket.write(frame(FRAME_SETTINGS, FLAG_ACK, 0));
  // 0x88: `:status: 200` from HPACK's static table.
  socket.write(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, Buffer.from([0x88])));
  socket.write(frame(FRAME_DATA, 0, 1, Buffer.from(line)));
}

/** GET /version through a new stream of `session`, with TLS to the API server inside it. */
function requestThrough(session: TunnelSession): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        method: 'GET',
        path: '/version',
        headers: { host: 'localhost', connection: 'close' },
        createConnection: () => tls.connect({ socket: session.dial(), servername: 'localhost', ca: pki.caPem }),
      },
      (res) => {
        res.setEncoding('utf8');
        let text = '';
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('tunnel', () => {
  let proxy: Awaited<ReturnType<typeof startProxyEnd>>;
  let apiServer: https.Server;
  let apiPort: number;
  const apiConnections: net.Socket[] = [];

  before(async () => {
    proxy = await startProxyEnd();
    apiServer = https.createServer({ cert: pki.certPem, key: pki.keyPem }, (req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`api server answered ${req.method} ${req.url}`);
    });
    apiServer.on('connection', (socket: net.Socket) => apiConnections.push(socket));
    apiServer.listen(0, '127.0.0.1');
    await once(apiServer, 'listening');
    apiPort = (apiServer.address() as net.AddressInfo).port;
  });

  after(async () => {
    await proxy.close();
    apiServer.closeAllConnections();
    apiServer.close();
  });

  it('carries TLS from the proxy to the API server, which the agent only relays', async () => {
    const { agent, session } = await connectPair(proxy, () => net.connect(apiPort, '127.0.0.1'));
    assert.equal(session.hello.agentId, 'agent-0');
    assert.equal(session.hello.token, 'service-account-token');
    assert.equal(await requestThrough(session), 'api server answered GET /version');
    session.close('shutdown');
    await agent.closed;
  });

  it('tells each end why the tunnel ended: the GOAWAY of the end that closed it, or the connection lost without one', async () => {
    const byProxy = await connectPair(proxy, () => net.connect(apiPort, '127.0.0.1'));
    byProxy.session.close('revoked');
    assert.deepEqual([await byProxy.agent.closed, (await byProxy.session.closed).reason], ['proxy_closed', 'revoked']);

    const byAgent = await connectPair(proxy, () => net.connect(apiPort, '127.0.0.1'));
    byAgent.agent.close();
    assert.deepEqual([await byAgent.agent.closed, (await byAgent.session.closed).reason], ['stopped', 'agent_closed']);

    const socket = await dialTunnel(proxy.port);
    const cut = serveTunnel(socket, { dialApiServer: () => net.connect(apiPort, '127.0.0.1'), hello: () => hello() });
    const session = await (await proxy.sessions.next()).value;
    socket.destroy();
    assert.deepEqual([await cut.closed, (await session.closed).reason], ['connection_lost', 'connection_lost']);
  });

  it('dials only the API server the agent was given, whatever the stream request says', async () => {
    let dialled = 0;
    const { agent, session } = await connectPair(proxy, () => {
      dialled++;
      return net.connect(apiPort, '127.0.0.1');
    });
    // A raw HTTP/2 request naming another host and port on the tunnel's session still
    // reaches the one configured API server (the agent reads no address from it).
    const stream = session.dial();
    const secure = tls.connect({ socket: stream, servername: 'localhost', ca: pki.caPem });
    await once(secure, 'secureConnect');
    assert.equal(dialled, 1);
    secure.destroy();
    session.close('shutdown');
    await agent.closed;
  });

  it('answers a stream the agent does not serve with 404, dialling nothing', async () => {
    // A proxy end that speaks raw HTTP/2 on the upgraded connection and asks for a path
    // naming another host, as a confused or compromised proxy might.
    const raw = https.createServer({ cert: pki.certPem, key: pki.keyPem });
    const answered = new Promise<number>((resolve, reject) => {
      raw.on('upgrade', (_req, socket: Duplex) => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kubegate-tunnel/1\r\n\r\n', () => {
          const session = http2.connect('http://agent.invalid', { createConnection: () => socket });
          session.on('error', reject);
          const req = session.request({ ':method': 'POST', ':path': '/connect/evil.example:22' });
          req.on('response', (headers) => {
            resolve(Number(headers[':status']));
            session.destroy();
          });
          req.on('error', reject);
        });
      });
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    const faults: string[] = [];
    let dialled = 0;
    const socket = await dialTunnel((raw.address() as net.AddressInfo).port);
    const agent = serveTunnel(socket, {
      dialApiServer: () => {
        dialled++;
        return net.connect(apiPort, '127.0.0.1');
      },
      hello: () => hello(),
      onFault: (message) => faults.push(message),
    });
    assert.equal(await answered, 404);
    assert.equal(dialled, 0);
    assert.deepEqual(faults, ['the proxy asked for a stream this agent does not serve']);
    await agent.closed;
    raw.close();
  });

  it('holds a stalled stream to its window while another stream transfers at full speed', async () => {
    // An API server stand-in that, for each connection, either floods (first byte 'F')
    // until backpressure stops it or counts what it is sent.
    const floodState = { written: 0, blocked: false };
    const bulk = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', (first) => {
        if (first.toString('latin1', 0, 1) !== 'F') return;
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = (): void => {
          while (socket.write(chunk)) floodState.written += chunk.length;
          floodState.written += chunk.length;
          floodState.blocked = true;
          socket.once('drain', pump);
        };
        pump();
      });
    });
    bulk.listen(0, '127.0.0.1');
    await once(bulk, 'listening');
    const bulkPort = (bulk.address() as net.AddressInfo).port;
    const { agent, session } = await connectPair(proxy, () => net.connect(bulkPort, '127.0.0.1'));

    const stalled = session.dial();
    stalled.write('F');
    stalled.pause();
    const fast = session.dial();
    fast.write('F');
    let received = 0;
    const target = 64 * 1024 * 1024;
    await new Promise<void>((resolve) => {
      fast.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= target) resolve();
      });
    });
    assert.ok(received >= target, 'the fast stream moved 64 MiB while the other was stalled');
    // The stalled stream holds no more than its flow-control window on the proxy side.
    assert.ok(stalled.readableLength <= STREAM_WINDOW_BYTES + 64 * 1024, `stalled stream buffered ${stalled.readableLength} bytes`);
    fast.destroy();
    stalled.destroy();
    session.close('shutdown');
    await agent.closed;
    bulk.close();
  });

  it("stops reading a stalled stream's API server once the stream's buffer is full", async () => {
    // An API server stand-in that floods every connection; the agent must stop reading it
    // once the stream's high-water mark is reached, whatever the API server has to send.
    const flood = net.createServer((socket) => {
      socket.on('error', () => undefined);
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      const pump = (): void => {
        while (socket.write(chunk));
        socket.once('drain', pump);
      };
      pump();
    });
    flood.listen(0, '127.0.0.1');
    await once(flood, 'listening');
    const floodPort = (flood.address() as net.AddressInfo).port;
    let api: net.Socket | undefined;
    const { agent, session } = await connectPair(proxy, () => {
      api = net.connect(floodPort, '127.0.0.1');
      return api;
    });
    const stalled = session.dial();
    stalled.pause();
    try {
      // Read from the API server and not at the proxy: what waits in the agent. Bytes still on
      // the wire between the two ends arrive at the proxy (its stream window allows them), so
      // this settles at or below the bound — or never, if the agent kept reading.
      const heldByAgent = (): number => (api?.bytesRead ?? 0) - stalled.readableLength;
      const bound = 16 * 1024 + 2 * 64 * 1024; // the stream's high-water mark, the read in flight, the socket's own buffer
      await eventually(() => api?.isPaused() === true && stalled.readableLength > 0 && heldByAgent() <= bound, 5000, 'the agent to stop reading the flooding API server');
      assert.ok(stalled.readableLength <= STREAM_WINDOW_BYTES + 64 * 1024, `the proxy end buffered ${stalled.readableLength} bytes`);
    } finally {
      stalled.destroy();
      agent.close();
      session.close('shutdown');
      await agent.closed;
      flood.close();
    }
  });

  it('announces the HTTP/2 settings and the connection window of wire.ts, on both ends', async () => {
    const expected = { initialWindowSize: STREAM_WINDOW_BYTES, maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: MAX_HEADER_LIST_BYTES, enablePush: false };
    /** The peer's SETTINGS, listened for as the session is made (before they can arrive). */
    const announced = async (peer: { settings: Promise<unknown[]> }): Promise<Record<string, unknown>> => {
      const [settings] = (await peer.settings) as [Record<string, unknown>];
      return Object.fromEntries(Object.keys(expected).map((key) => [key, settings[key]]));
    };

    // The proxy end, as an HTTP/2 server in the agent's place sees it.
    const socket = await dialTunnel(proxy.port);
    socket.on('error', () => undefined);
    const fakeAgent = http2.createServer();
    const agentSide = new Promise<{ session: http2.ServerHttp2Session; settings: Promise<unknown[]> }>((resolve) =>
      fakeAgent.once('session', (session: http2.ServerHttp2Session) => resolve({ session, settings: once(session, 'remoteSettings') })),
    );
    Object.defineProperty(socket, 'alpnProtocol', { value: 'h2' });
    fakeAgent.emit('connection', socket);
    const next = await proxy.sessions.next();
    const seenByAgent = await agentSide;
    assert.deepEqual(await announced(seenByAgent), expected);
    await eventually(() => seenByAgent.session.state.remoteWindowSize === SESSION_WINDOW_BYTES, 5000, "the proxy end's connection window");
    seenByAgent.session.destroy();
    await assert.rejects(next.value);

    // The agent end, as an HTTP/2 client in the proxy's place sees it.
    const raw = https.createServer({ cert: pki.certPem, key: pki.keyPem });
    const proxySide = new Promise<{ session: http2.ClientHttp2Session; settings: Promise<unknown[]> }>((resolve) => {
      raw.on('upgrade', (_req, upgraded: Duplex) => {
        upgraded.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kubegate-tunnel/1\r\n\r\n', () => {
          const client = http2.connect('http://agent.invalid', { createConnection: () => upgraded });
          client.on('error', () => undefined);
          resolve({ session: client, settings: once(client, 'remoteSettings') });
        });
      });
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    const agent = serveTunnel(await dialTunnel((raw.address() as net.AddressInfo).port), { dialApiServer: () => net.connect(apiPort, '127.0.0.1'), hello: () => hello() });
    const seenByProxy = await proxySide;
    assert.deepEqual(await announced(seenByProxy), expected);
    await eventually(() => seenByProxy.session.state.remoteWindowSize === SESSION_WINDOW_BYTES, 5000, "the agent end's connection window");
    seenByProxy.session.destroy();
    await agent.closed;
    raw.close();
  });

  it('reports the API server as unreachable when the agent cannot dial it', async () => {
    const { agent, session } = await connectPair(proxy, () => net.connect(1, '127.0.0.1'));
    const stream = session.dial();
    stream.resume();
    const [error] = (await once(stream, 'error')) as [Error];
    assert.ok(isKubegateError(error, 'UPSTREAM_UNREACHABLE'));
    assert.equal(session.closing, false);
    session.close('shutdown');
    await agent.closed;
  });

  it('sends a new hello when the agent has one, and ends the session when the agent goes', async () => {
    let token = 'first-token';
    const { agent, session } = await connectPair(
      proxy,
      () => net.connect(apiPort, '127.0.0.1'),
      () => hello({ token }),
    );
    const updated = new Promise<AgentHello>((resolve) => session.onHello(resolve));
    token = 'rotated-token';
    agent.helloChanged();
    assert.equal((await updated).token, 'rotated-token');
    assert.equal(session.hello.token, 'rotated-token');
    agent.close();
    await session.closed;
    assert.equal(session.closing, true);
    assert.throws(() => session.dial(), (error: unknown) => isKubegateError(error, 'CLUSTER_DISCONNECTED'));
  });

  it('refuses a malformed hello with the field at fault', async () => {
    const socket = await dialTunnel(proxy.port);
    serveTunnel(socket, { dialApiServer: () => net.connect(apiPort, '127.0.0.1'), hello: () => ({ ...hello(), token: 'has spaces in it' }) });
    const next = await proxy.sessions.next();
    await assert.rejects(next.value, (error: unknown) => isKubegateError(error, 'TUNNEL_PROTOCOL_ERROR') && error.field === 'hello.token');
    await once(socket, 'close');
  });

  it('refuses an oversized hello', async () => {
    const socket = await dialTunnel(proxy.port);
    serveTunnel(socket, {
      dialApiServer: () => net.connect(apiPort, '127.0.0.1'),
      hello: () => ({ ...hello(), kubernetesVersion: 'x'.repeat(400 * 1024) }),
    });
    const next = await proxy.sessions.next();
    await assert.rejects(next.value, (error: unknown) => isKubegateError(error, 'TUNNEL_PROTOCOL_ERROR'));
  });

  it('ends a session whose agent sends garbage instead of HTTP/2, without harming the server', async () => {
    const socket = await dialTunnel(proxy.port);
    socket.on('error', () => undefined);
    socket.write(Buffer.from('\x00\x00\x09\x01\x04\x00\x00\x00\x01garbage!!GET / HTTP/1.1\r\n\r\n'));
    socket.write(Buffer.alloc(70_000, 0xff));
    const next = await proxy.sessions.next();
    await assert.rejects(next.value);
    // The server still takes tunnels.
    const { agent, session } = await connectPair(proxy, () => net.connect(apiPort, '127.0.0.1'));
    assert.equal(session.closing, false);
    session.close('shutdown');
    await agent.closed;
  });

  it('ends a session whose agent sends bytes that are not HTTP/2 before its hello with TUNNEL_PROTOCOL_ERROR, and other tunnels keep serving', async () => {
    const healthy = await connectPair(proxy, () => net.connect(apiPort, '127.0.0.1'));
    try {
      const socket = await dialTunnel(proxy.port);
      socket.on('error', () => undefined);
      socket.write('this is no HTTP/2 server preface\r\n\r\n');
      const next = await proxy.sessions.next();
      await assert.rejects(next.value, (error: unknown) => isKubegateError(error, 'TUNNEL_PROTOCOL_ERROR'));
      assert.equal(await requestThrough(healthy.session), 'api server answered GET /version');
    } finally {
      healthy.session.close('shutdown');
      await healthy.agent.closed;
    }
  });

  it('ends a session whose agent sends GOAWAY with PROTOCOL_ERROR with TUNNEL_PROTOCOL_ERROR, before and after its hello, and other tunnels keep serving', async () => {
    const healthy = await connectPair(proxy, () => net.connect(apiPort, '127.0.0.1'));
    const sockets: tls.TLSSocket[] = [];
    try {
      const early = await dialTunnel(proxy.port);
      sockets.push(early);
      early.on('error', () => undefined);
      early.write(frame(FRAME_SETTINGS, 0, 0));
      early.write(goaway(PROTOCOL_ERROR));
      const beforeHello = await proxy.sessions.next();
      await assert.rejects(beforeHello.value, (error: unknown) => isKubegateError(error, 'TUNNEL_PROTOCOL_ERROR'));

      const late = await dialTunnel(proxy.port);
      sockets.push(late);
      late.on('error', () => undefined);
      rawHello(late, `${JSON.stringify(hello({ agentId: 'hand-written' }))}\n`);
      const afterHello = await (await proxy.sessions.next()).value;
      assert.equal(afterHello.hello.agentId, 'hand-written');
      late.write(goaway(PROTOCOL_ERROR));
      const end = await afterHello.closed;
      assert.equal(end.reason, 'protocol_error');
      assert.ok(isKubegateError(end.error, 'TUNNEL_PROTOCOL_ERROR'), String(end.error));

      assert.equal(await requestThrough(healthy.session), 'api server answered GET /version');
    } finally {
      for (const socket of sockets) socket.destroy();
      healthy.session.close('shutdown');
      await healthy.agent.closed;
    }
  });

  it('ends the agent end of a tunnel whose proxy sends bytes that are not HTTP/2, reporting TUNNEL_PROTOCOL_ERROR', async () => {
    const raw = https.createServer({ cert: pki.certPem, key: pki.keyPem });
    raw.on('upgrade', (_req, socket: Duplex) => {
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kubegate-tunnel/1\r\n\r\nthis is no HTTP/2 client preface\r\n\r\n');
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    const faults: unknown[] = [];
    const agent = serveTunnel(await dialTunnel((raw.address() as net.AddressInfo).port), {
      dialApiServer: () => net.connect(apiPort, '127.0.0.1'),
      hello: () => hello(),
      onFault: (_message, cause) => faults.push(cause),
    });
    try {
      assert.equal(await agent.closed, 'protocol_error');
      assert.ok(
        faults.some((cause) => isKubegateError(cause, 'TUNNEL_PROTOCOL_ERROR')),
        String(faults),
      );
    } finally {
      raw.closeAllConnections();
      raw.close();
    }
  });

  it('ends a session whose agent never says hello', async () => {
    const socket = await dialTunnel(proxy.port);
    socket.on('error', () => undefined);
    // A real HTTP/2 server that answers nothing on the hello stream.
    const silent = http2.createServer();
    silent.on('stream', () => undefined);
    Object.defineProperty(socket, 'alpnProtocol', { value: 'h2' });
    silent.emit('connection', socket);
    const next = await proxy.sessions.next();
    await assert.rejects(next.value, (error: unknown) => isKubegateError(error, 'TUNNEL_PROTOCOL_ERROR'));
  });
});
