/**
 * Stale keep-alive connections to an API server, over real sockets: a request that the
 * proxy writes on a reused connection which the server (or a load balancer in front of it)
 * closes at that moment without answering. A replayable request (GET, HEAD, OPTIONS without
 * a body, watches included) is sent again once on a new connection; everything else keeps
 * today's answer. Upstreams here are recording servers that close a reused connection on
 * request, the proxy is the real Forwarder on the real upstream pool; agent-mode clusters go
 * through a real tunnel (proxy end, hub and agent end in this process).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Dispatcher } from 'undici';
import { authenticated, type AuthResult } from '../../src/auth/authenticator.js';
import { makeUserInfo } from '../../src/auth/user.js';
import { createTunnelHub, type TunnelHub } from '../../src/clusters/tunnels.js';
import { createUpstreamPool, type UpstreamCounts, type UpstreamPool } from '../../src/clusters/upstreams.js';
import { createCertificateAuthority, issueServingCertificate } from '../../src/pki/certificates.js';
import type { Cluster } from '../../src/store/store.js';
import { serveTunnel, type AgentTunnel } from '../../src/tunnel/agent-end.js';
import { openTunnelSession } from '../../src/tunnel/proxy-end.js';
import { eventually } from '../support/eventually.js';
import {
  answerWithPath,
  directCluster,
  MapAuthenticator,
  send,
  startProxy,
  startRecordingUpstream,
  statusOf,
  type ClientResponse,
  type ProxyHarness,
  type RecordingUpstream,
} from '../support/forward-harness.js';

const alice = makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: ['system:authenticated'] });
const ALICE = ['Authorization', 'Bearer t-alice:s3cret-alice'];
const tokens = new Map<string, AuthResult | Error>([['t-alice:s3cret-alice', authenticated(alice, { name: 't-alice', expiresAt: null, clusterId: null })]]);
const PODS = '/api/v1/namespaces/default/pods';

let proxy: ProxyHarness;
let pool: UpstreamPool;
let hub: TunnelHub;
const clusters = new Map<string, Cluster>();

before(async () => {
  hub = createTunnelHub();
  pool = createUpstreamPool({ allowPlainHttp: true, connectTimeoutMs: 2000, tunnels: hub });
  proxy = await startProxy({ authenticator: new MapAuthenticator(tokens), getCluster: (id) => clusters.get(id), authorize: () => 'member', upstreams: pool, allowedOrigins: [] }, { idleTimeoutMs: 5000 });
});

after(async () => {
  await proxy.close();
  pool.close();
  hub.close();
});

function get(clusterId: string, path = PODS): Promise<ClientResponse> {
  return send(proxy.port, { path: `/k8s/clusters/${clusterId}${path}`, headers: ALICE });
}

function countsOf(clusterId: string): UpstreamCounts {
  return { ...(pool.stats().get(clusterId) ?? { opened: 0, requests: 0, retries: 0 }) };
}

/** How many requests `upstream` received on `socket` so far. */
function requestsOn(upstream: RecordingUpstream, socket: net.Socket): number {
  return upstream.requests.filter((request) => request.socket === socket).length;
}

/** The requests `upstream` received since `mark` (its count of requests then). */
function since(upstream: RecordingUpstream, mark: number): RecordingUpstream['requests'] {
  return upstream.requests.slice(mark);
}

/** A watch or a cut answer, read as it streams (`send` waits for the end). */
async function open(path: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  const req = http.request({ host: '127.0.0.1', port: proxy.port, agent: false, path, headers: ['Host', `127.0.0.1:${proxy.port}`, ...ALICE] });
  req.on('error', () => {});
  req.end();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  res.on('error', () => {});
  return { req, res };
}

/**
 * Like a load balancer whose idle timeout fires as the proxy reuses a connection: a request
 * that is not the first on its connection is read, then the connection closed unanswered.
 */
function closeReusedConnections(upstream: RecordingUpstream): void {
  upstream.onRequest = (req, res) => {
    if (requestsOn(upstream, req.socket) > 1) req.socket.destroy();
    else answerWithPath(req, res);
  };
}

describe('a request on a stale keep-alive connection of a direct cluster', () => {
  let upstream: RecordingUpstream;
  /** upstream.requests.length before the request under test. */
  let mark = 0;

  before(async () => {
    upstream = await startRecordingUpstream();
    clusters.set('a', directCluster('a', upstream.url));
  });
  after(async () => {
    await upstream.close();
  });
  beforeEach(async () => {
    upstream.onRequest = answerWithPath;
    // One answered request leaves one idle keep-alive connection in the pool: the next one reuses it.
    assert.equal((await get('a')).status, 200);
    mark = upstream.requests.length;
    proxy.audit.length = 0;
  });

  it('is a GET sent again once on a new connection: the client gets the answer, the retry is counted', async () => {
    const before = countsOf('a');
    closeReusedConnections(upstream);
    const answer = await get('a');
    assert.equal(answer.status, 200, answer.body.toString());
    assert.deepEqual(JSON.parse(answer.body.toString()), { path: PODS });
    const [stale, replay, ...more] = since(upstream, mark);
    assert.equal(more.length, 0, 'nothing after the replay');
    assert.ok(stale !== undefined && replay !== undefined, 'the stale attempt and its replay');
    assert.equal(requestsOn(upstream, stale.socket), 2, 'the stale attempt went on the connection of the earlier request');
    assert.equal(requestsOn(upstream, replay.socket), 1, 'the replay went on a connection of its own');
    const after = countsOf('a');
    assert.deepEqual({ requests: after.requests - before.requests, opened: after.opened - before.opened, retries: after.retries - before.retries }, { requests: 2, opened: 1, retries: 1 });
    assert.equal(proxy.audit.at(-1)?.status, 200);
    assert.equal(proxy.audit.at(-1)?.code, null);
  });

  it('is a watch sent again once on a new connection, whose events then stream', async () => {
    upstream.onRequest = (req, res) => {
      if (requestsOn(upstream, req.socket) > 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{"kind":"Pod"}}\n');
    };
    const before = countsOf('a');
    const { req, res } = await open(`/k8s/clusters/a${PODS}?watch=1`);
    assert.equal(res.statusCode, 200);
    const [event] = (await once(res, 'data')) as [Buffer];
    assert.match(event.toString(), /"ADDED"/);
    assert.equal(countsOf('a').retries, before.retries + 1);
    assert.equal(since(upstream, mark).length, 2);
    req.destroy();
    await eventually(() => upstream.openRequests() === 0, 5000, 'the watch to end upstream');
  });

  it('is a POST with a body not sent again: the client gets the 502 Status, the cluster saw it once', async () => {
    const before = countsOf('a');
    closeReusedConnections(upstream);
    const answer = await send(proxy.port, { method: 'POST', path: `/k8s/clusters/a${PODS}`, headers: [...ALICE, 'Content-Type', 'application/json'], body: '{"kind":"Pod"}' });
    assert.equal(answer.status, 502);
    assert.deepEqual(statusOf(answer), { code: 502, reason: 'ServiceUnavailable', cause: 'UPSTREAM_UNREACHABLE' });
    assert.ok(since(upstream, mark).length <= 1, 'the POST reached the cluster at most once');
    assert.equal(countsOf('a').retries, before.retries);
    assert.equal(proxy.audit.at(-1)?.code, 'UPSTREAM_UNREACHABLE');
  });

  it('is not sent again when it carries a body, by Content-Length or chunked, whatever its method, nor when its method is not GET, HEAD or OPTIONS', async () => {
    const cases: Array<[string, string, string[], string | undefined]> = [
      ['a GET with a Content-Length body', 'GET', ['Content-Type', 'application/json', 'Content-Length', '2'], '{}'],
      ['a GET with a chunked body', 'GET', ['Content-Type', 'application/json', 'Transfer-Encoding', 'chunked'], '{}'],
      ['a GET with an empty chunked body', 'GET', ['Transfer-Encoding', 'chunked'], ''],
      ['an OPTIONS with a chunked body', 'OPTIONS', ['Content-Type', 'application/json', 'Transfer-Encoding', 'chunked'], '{}'],
      ['a HEAD with a Content-Length body', 'HEAD', ['Content-Type', 'application/json', 'Content-Length', '2'], '{}'],
      ['a DELETE without a body', 'DELETE', [], undefined],
      ['a POST without a body', 'POST', ['Content-Length', '0'], undefined],
      ['a PATCH with a body', 'PATCH', ['Content-Type', 'application/merge-patch+json'], '{}'],
    ];
    for (const [name, method, headers, body] of cases) {
      upstream.onRequest = answerWithPath;
      assert.equal((await get('a')).status, 200, `${name}: the request leaving a connection to reuse`);
      const from = upstream.requests.length;
      const before = countsOf('a');
      closeReusedConnections(upstream);
      const answer = await send(proxy.port, { method, path: `/k8s/clusters/a${PODS}/p`, headers: [...ALICE, ...headers], ...(body === undefined ? {} : { body }) });
      assert.equal(answer.status, 502, `${name}: ${answer.body.toString()}`);
      if (method !== 'HEAD') assert.equal(statusOf(answer).cause, 'UPSTREAM_UNREACHABLE', name);
      assert.equal(since(upstream, from).length, 1, `${name}: the cluster saw it once`);
      assert.equal(countsOf('a').retries, before.retries, `${name}: no retry counted`);
    }
  });

  /**
   * Sends `path` on the reused connection, whose server holds it unanswered; `abort` ends it
   * on the proxy's side, which closes the upstream connection without an answer, as a stale
   * connection's failure looks too. Then checks that nothing was sent again before the next
   * request.
   */
  async function assertNotReplayedAfter(path: string, abort: (client: http.ClientRequest) => void, what: string): Promise<void> {
    const before = countsOf('a');
    let held: net.Socket | undefined;
    upstream.onRequest = (req) => {
      held = req.socket;
    };
    const client = http.request({ host: '127.0.0.1', port: proxy.port, agent: false, path, headers: ['Host', `127.0.0.1:${proxy.port}`, ...ALICE] });
    client.on('error', () => {});
    client.end();
    await eventually(() => held !== undefined, 5000, 'the request on the reused connection');
    const upstreamClosed = once(held!, 'close');
    abort(client);
    await upstreamClosed;
    upstream.onRequest = answerWithPath;
    assert.equal((await get('a')).status, 200);
    assert.deepEqual(
      since(upstream, mark).map((request) => request.socket === held),
      [true, false],
      `${what}, then the next request: no replay between them`,
    );
    assert.equal(countsOf('a').retries, before.retries);
    client.destroy();
  }

  it('is not sent again when its client went away before the stale connection failed', async () => {
    await assertNotReplayedAfter(`/k8s/clusters/a${PODS}`, (client) => client.destroy(), 'the abandoned request');
  });

  it('is a watch not sent again once its token was revoked: the replay would carry an identity admitted before the revocation', async () => {
    // Revocation ends the token's open streams, aborting the watch's upstream request.
    await assertNotReplayedAfter(`/k8s/clusters/a${PODS}?watch=1`, () => assert.equal(proxy.forwarder.closeStreams((stream) => stream.tokenName === 't-alice'), 1), 'the revoked watch');
  });

  it('is sent again only once: when the new connection fails too, the client gets the 502 Status', async () => {
    const before = countsOf('a');
    upstream.onRequest = (req) => req.socket.destroy();
    const answer = await get('a');
    assert.equal(answer.status, 502);
    assert.equal(statusOf(answer).cause, 'UPSTREAM_UNREACHABLE');
    assert.equal(since(upstream, mark).length, 2, 'the stale attempt and one replay');
    assert.equal(countsOf('a').retries, before.retries + 1);
  });

  it('is not sent again once the answer has started: the client sees the answer cut', async () => {
    const before = countsOf('a');
    upstream.onRequest = (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"kind":"PodList",', () => req.socket.destroy());
    };
    const { res } = await open(`/k8s/clusters/a${PODS}`);
    assert.equal(res.statusCode, 200);
    res.resume();
    // events.once would reject on the 'aborted' error the cut brings.
    await new Promise((resolve) => res.once('close', resolve));
    assert.equal(res.complete, false, 'the client saw the answer cut');
    assert.equal(since(upstream, mark).length, 1);
    assert.equal(countsOf('a').retries, before.retries);
  });

  it('is not sent again when the cluster answered with an error: a 500 is relayed as is', async () => {
    const before = countsOf('a');
    upstream.onRequest = (_req, res) => {
      res.writeHead(500, { 'Content-Type': 'text/plain', 'Content-Length': '4' });
      res.end('oops');
    };
    const answer = await get('a');
    assert.equal(answer.status, 500);
    assert.equal(since(upstream, mark).length, 1);
    assert.equal(countsOf('a').retries, before.retries);
  });
});

describe('a request on a new connection that fails', () => {
  it('is not sent again: connection failures keep their Status', async () => {
    const upstream = await startRecordingUpstream();
    try {
      upstream.onRequest = (req) => req.socket.destroy();
      clusters.set('fresh', directCluster('fresh', upstream.url));
      const answer = await get('fresh');
      assert.equal(answer.status, 502);
      assert.equal(statusOf(answer).cause, 'UPSTREAM_UNREACHABLE');
      assert.equal(upstream.requests.length, 1, 'sent once');
      assert.deepEqual(countsOf('fresh'), { opened: 1, requests: 1, retries: 0 });
    } finally {
      await upstream.close();
    }
  });

  it('is not sent again when nothing accepts the connection', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as net.AddressInfo;
    closed.close();
    await once(closed, 'close');
    clusters.set('refused', directCluster('refused', `http://127.0.0.1:${port}`));
    const answer = await get('refused');
    assert.equal(answer.status, 502);
    assert.match(answer.body.toString(), /ECONNREFUSED/);
    assert.deepEqual(countsOf('refused'), { opened: 0, requests: 0, retries: 0 });
  });
});

/**
 * An agent-mode cluster through a real tunnel: the proxy end and the agent end of this
 * process joined by a TCP connection, the agent dialling a TLS recording upstream.
 */
describe('an agent-mode cluster', () => {
  let upstream: RecordingUpstream;
  let caPem: string;
  const tunnels: { agent: AgentTunnel; socket: net.Socket }[] = [];
  let listener: net.Server;

  before(async () => {
    const ca = await createCertificateAuthority({ commonName: 'stale-test-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost'], validityDays: 1 });
    caPem = ca.certPem;
    upstream = await startRecordingUpstream({ certPem: serving.certPem, keyPem: serving.keyPem });
    listener = net.createServer((socket) => {
      void openTunnelSession(socket, Buffer.alloc(0), { helloTimeoutMs: 3000 }).then((session) => hub.attach('edge', session, 'agent-secret'));
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    clusters.set('edge', { ...directCluster('edge', ''), mode: 'agent', credentials: null });
  });

  after(async () => {
    for (const tunnel of tunnels) tunnel.socket.destroy();
    listener.close();
    await upstream.close();
  });

  /** Connects an agent: it reads the proxy's 101 answer, then serves the tunnel. */
  async function connectAgent(agentId: string): Promise<{ agent: AgentTunnel; socket: net.Socket }> {
    const socket = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.pause();
        if (end + 4 < head.length) socket.unshift(head.subarray(end + 4));
        resolve();
      };
      socket.on('data', onData);
    });
    const agent = serveTunnel(socket as unknown as TLSSocket, {
      dialApiServer: () => net.connect(upstream.port, '127.0.0.1'),
      hello: () => ({ agentId, agentVersion: '0', kubernetesVersion: 'v1.32.0', apiServer: { host: 'localhost', servername: 'localhost', caPem }, token: 'agent-sa-token' }),
    });
    const tunnel = { agent, socket };
    tunnels.push(tunnel);
    await eventually(() => hub.agents('edge').some((connection) => connection.agentId === agentId), 5000, 'the tunnel to attach');
    return tunnel;
  }

  it('sends a GET on a stale connection again through the tunnel, like a direct cluster', async () => {
    await connectAgent('agent-0');
    upstream.onRequest = answerWithPath;
    assert.equal((await get('edge')).status, 200);
    const mark = upstream.requests.length;
    const before = countsOf('edge');
    closeReusedConnections(upstream);
    const answer = await get('edge');
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(since(upstream, mark).length, 2);
    assert.equal(countsOf('edge').retries, before.retries + 1);
    assert.equal(proxy.audit.at(-1)?.via, 'agent');
  });

  it('does not take a dropped tunnel for a stale connection: the request is not sent again and the client gets CLUSTER_DISCONNECTED', async () => {
    upstream.onRequest = answerWithPath;
    assert.equal((await get('edge')).status, 200);
    const mark = upstream.requests.length;
    const before = countsOf('edge');
    // The request reaches the API server, which is slow to answer; then the agent's connection drops.
    upstream.onRequest = () => {};
    const answer = get('edge');
    await eventually(() => since(upstream, mark).length === 1, 5000, 'the request to reach the API server');
    for (const tunnel of tunnels.splice(0)) tunnel.socket.destroy();
    const status = await answer;
    assert.equal(status.status, 503, status.body.toString());
    assert.equal(statusOf(status).cause, 'CLUSTER_DISCONNECTED');
    assert.equal(since(upstream, mark).length, 1);
    assert.equal(countsOf('edge').retries, before.retries);
  });
});

describe('a request given to an idle connection that the server closes in the same turn', () => {
  // undici checks an idle connection one event-loop turn before writing on it; a close that
  // arrives in that turn leaves the request pending, to be sent on a new connection. The
  // server here answers over raw sockets and closes connection A at the very moment a
  // trigger connection makes the test give the pool its next request, so that both events
  // reach the proxy's loop together: the request's dispatch first, A's close right after.
  it('is sent on a new connection: the close of a connection is not taken for an aborted request', async () => {
    const served: net.Socket[] = [];
    const server = net.createServer((socket) => {
      served.push(socket);
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        while (buffered.includes('\r\n\r\n')) {
          buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\nok');
        }
      });
      socket.on('error', () => undefined);
    });
    const triggers = net.createServer();
    server.listen(0, '127.0.0.1');
    triggers.listen(0, '127.0.0.1');
    await Promise.all([once(server, 'listening'), once(triggers, 'listening')]);
    const ownPool = createUpstreamPool({ allowPlainHttp: true, connectTimeoutMs: 2000 });
    const trigger = net.connect((triggers.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      const [triggerServerSide] = (await once(triggers, 'connection')) as [net.Socket];
      const upstream = ownPool.get(directCluster('same-turn', `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`));
      const first = await upstream.dispatcher.request({ path: '/first', method: 'GET' });
      assert.equal(await first.body.text(), 'ok');
      assert.equal(served.length, 1, 'connection A answered the first request and is idle in the pool');

      const second = new Promise<Dispatcher.ResponseData>((resolve, reject) => {
        trigger.once('data', () => {
          upstream.dispatcher.request({ path: '/second', method: 'GET' }).then(resolve, reject);
        });
      });
      triggerServerSide.write('x');
      served[0]?.destroy();
      const answer = await second;
      assert.equal(answer.statusCode, 200);
      assert.equal(await answer.body.text(), 'ok');
      assert.equal(served.length, 2, 'the second request went out on a new connection');
    } finally {
      trigger.destroy();
      ownPool.close();
      server.close();
      triggers.close();
      for (const socket of served) socket.destroy();
    }
  });
});
