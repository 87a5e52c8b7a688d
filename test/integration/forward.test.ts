/**
 * The forwarding path end to end over real sockets: kubectl-shaped requests through a
 * Forwarder in a node:http server to recording upstreams (plain HTTP for most tests, TLS
 * where TLS is the point). Every attack from COMPATIBILITY.md §3 has a test here.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { authenticated, undecided, type AuthResult } from '../../src/auth/authenticator.js';
import { makeUserInfo, type UserInfo } from '../../src/auth/user.js';
import { KubegateError } from '../../src/errors.js';
import { createCertificateAuthority, issueClientCertificate, issueServingCertificate } from '../../src/pki/certificates.js';
import { createForwarder, type LongRunningTracker } from '../../src/proxy/forward.js';
import { createUpstreamPool, type UpstreamPool } from '../../src/clusters/upstreams.js';
import type { Pool } from 'undici';
import type { Cluster, ClusterCredentials } from '../../src/store/store.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import {
  connectRaw,
  directCluster as cluster,
  MapAuthenticator,
  readUntil,
  send,
  startProxy,
  startRecordingUpstream,
  statusOf,
  type ProxyHarness,
  type RecordingUpstream,
} from '../support/forward-harness.js';
import { eventually } from '../support/eventually.js';

const alice = makeUserInfo({
  name: 'u-aaaaaaaaaaaa',
  groups: ['local:devs', 'system:authenticated'],
  extra: { 'kubegate.io/login-name': ['alice'], 'kubegate.io/provider': ['local'] },
});
const bob = makeUserInfo({ name: 'u-bbbbbbbbbbbb', groups: ['system:authenticated'] });
const root = makeUserInfo({ name: 'u-rrrrrrrrrrrr', groups: ['local:admins', 'system:authenticated'] });

const ALICE = 'Bearer t-alice:s3cret-alice';
const BOB = 'Bearer t-bob:s3cret-bob';
const ROOT = 'Bearer t-root:s3cret-root';
const SCOPED_TO_B = 'Bearer t-scoped:s3cret-scoped';

const tokens = new Map<string, AuthResult | Error>([
  ['t-alice:s3cret-alice', authenticated(alice, { name: 't-alice', expiresAt: null, clusterId: null })],
  ['t-bob:s3cret-bob', authenticated(bob, { name: 't-bob', expiresAt: null, clusterId: null })],
  ['t-root:s3cret-root', authenticated(root, { name: 't-root', expiresAt: null, clusterId: null })],
  ['t-scoped:s3cret-scoped', authenticated(alice, { name: 't-scoped', expiresAt: null, clusterId: 'b' })],
  ['t-stale:s3cret-stale', authenticated(alice, { name: 't-stale', expiresAt: new Date(Date.now() - 1000), clusterId: null })],
  ['t-undecided:x', undecided(new KubegateError('STORE_UNAVAILABLE'))],
  ['t-throws:x', new Error('authenticator bug')],
]);

/** alice is a member of a, b, p, down, slow and the TLS clusters; root may use everything; bob nothing. */
function authorize(user: UserInfo, clusterId: string): 'owner' | 'member' | null {
  if (user === root) return 'owner';
  if (user === alice && clusterId !== 'c' && clusterId !== 'nope') return 'member';
  return null;
}

/** Like the server's registry: remembers open streams and ends them all at shutdown. */
class ShutdownTracker implements LongRunningTracker {
  readonly streams = new Map<http.ServerResponse | Duplex, () => void>();
  track(stream: http.ServerResponse | Duplex, end?: () => void): void {
    this.streams.set(stream, end ?? (() => stream.end()));
    stream.once('close', () => this.streams.delete(stream));
  }
  endAll(): void {
    for (const [stream, end] of [...this.streams]) {
      this.streams.delete(stream);
      end();
    }
  }
}

const IDLE_TIMEOUT_MS = 400;
const CONNECT_TIMEOUT_MS = 300;
const ALLOWED_ORIGIN = 'https://kubegate.example.com';

let upstreamA: RecordingUpstream;
let upstreamB: RecordingUpstream;
let proxy: ProxyHarness;
let pool: UpstreamPool;
let authenticator: MapAuthenticator;
const tracker = new ShutdownTracker();
const clusters = new Map<string, Cluster>();

before(async () => {
  upstreamA = await startRecordingUpstream();
  upstreamB = await startRecordingUpstream();
  pool = createUpstreamPool({ allowPlainHttp: true, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  authenticator = new MapAuthenticator(tokens);
  proxy = await startProxy(
    { authenticator, getCluster: (id) => clusters.get(id), authorize, upstreams: pool, allowedOrigins: [ALLOWED_ORIGIN], longRunning: tracker },
    { idleTimeoutMs: IDLE_TIMEOUT_MS },
  );
});

after(async () => {
  await proxy.close();
  pool.close();
  await upstreamA.close();
  await upstreamB.close();
});

beforeEach(() => {
  clusters.clear();
  clusters.set('a', cluster('a', upstreamA.url));
  clusters.set('b', cluster('b', upstreamB.url));
  clusters.set('c', cluster('c', upstreamB.url));
  for (const upstream of [upstreamA, upstreamB]) {
    upstream.requests.length = 0;
    upstream.onRequest = (req, res) => {
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ path: req.url });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
    };
    upstream.onUpgrade = (_req, socket) => socket.destroy();
  }
  proxy.audit.length = 0;
});

function nothingReachedTheClusters(): void {
  assert.equal(upstreamA.requests.length, 0, 'cluster a was contacted');
  assert.equal(upstreamB.requests.length, 0, 'cluster b was contacted');
}

describe('forwarding ordinary requests', () => {
  it('sends exactly the client headers that are safe, then Host, the proxy credentials and the user identity', async () => {
    const response = await send(proxy.port, {
      path: '/k8s/clusters/a/api/v1/namespaces/default/pods?labelSelector=app%3Dweb&limit=500',
      headers: [
        'Accept', 'application/json',
        'User-Agent', 'kubectl/v1.30.0',
        'Authorization', ALICE,
        'Cookie', 'session=s3cret-cookie',
        'X-Request-Id', 'r1',
      ],
    });
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.body.toString()), { path: '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb&limit=500' });
    assert.equal(upstreamA.requests.length, 1);
    // The forwarding client (undici) writes Host and Connection right after the request line.
    assert.deepEqual(upstreamA.requests[0]?.rawHeaders, [
      'host', `127.0.0.1:${upstreamA.port}`,
      'connection', 'keep-alive',
      'Accept', 'application/json',
      'User-Agent', 'kubectl/v1.30.0',
      'X-Request-Id', 'r1',
      'Authorization', 'Bearer proxy-token-a',
      'Impersonate-User', 'u-aaaaaaaaaaaa',
      'Impersonate-Uid', 'u-aaaaaaaaaaaa',
      'Impersonate-Group', 'local:devs',
      'Impersonate-Group', 'system:authenticated',
      'Impersonate-Extra-kubegate.io%2flogin-name', 'alice',
      'Impersonate-Extra-kubegate.io%2fprovider', 'local',
    ]);
  });

  it('keeps the query byte for byte and prepends the path of a server URL that has one', async () => {
    clusters.set('p', cluster('p', `${upstreamA.url}/k8s/clusters/c-xyz/`));
    const query = '?fieldSelector=metadata.name%3Dweb%2C&x=%zz&&y=';
    const response = await send(proxy.port, { path: `/k8s/clusters/p/api/v1/pods${query}`, headers: ['Authorization', ALICE] });
    assert.equal(response.status, 200);
    assert.equal(upstreamA.requests[0]?.url, `/k8s/clusters/c-xyz/api/v1/pods${query}`);
  });

  it('drops hop-by-hop headers, Connection-named headers and Set-Cookie from the answer', async () => {
    upstreamA.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, ['Content-Type', 'text/plain', 'Connection', 'X-Hop', 'X-Hop', '1', 'Set-Cookie', 'planted=1', 'Audit-Id', '42', 'Content-Length', '2']);
      res.end('ok');
    };
    const response = await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Authorization', ALICE] });
    assert.equal(response.status, 200);
    assert.equal(response.headers['audit-id'], '42');
    assert.equal(response.headers['x-hop'], undefined);
    assert.equal(response.headers['set-cookie'], undefined);
    assert.equal(response.body.toString(), 'ok');
  });

  it('strips headers named in Connection and client identity headers without refusing the request', async () => {
    const response = await send(proxy.port, {
      path: '/k8s/clusters/a/api',
      headers: [
        'Authorization', ALICE,
        'Connection', 'keep-alive, X-Custom',
        'X-Custom', 'hop',
        'X-Other', 'kept',
        'Proxy-Authorization', 'Basic cHJveHk6czNjcmV0',
        'X-Remote-User', 'system:admin',
        'X-Remote-Group', 'system:masters',
      ],
    });
    assert.equal(response.status, 200);
    const names = (upstreamA.requests[0]?.rawHeaders ?? []).filter((_, index) => index % 2 === 0).map((name) => name.toLowerCase());
    assert.ok(names.includes('x-other'));
    for (const name of ['x-custom', 'proxy-authorization', 'x-remote-user', 'x-remote-group', 'cookie']) assert.ok(!names.includes(name), name);
    assert.deepEqual(names.filter((name) => name === 'authorization'), ['authorization']);
  });

  it('re-frames a chunked DELETE body so the cluster receives it whole', async () => {
    upstreamA.onRequest = (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.end(Buffer.concat(chunks)));
    };
    const req = http.request({
      host: '127.0.0.1',
      port: proxy.port,
      agent: false,
      method: 'DELETE',
      path: '/k8s/clusters/a/api/v1/namespaces/d/pods/p',
      headers: ['Host', 'proxy', 'Authorization', ALICE, 'Content-Type', 'application/json', 'Transfer-Encoding', 'chunked'],
    });
    req.write('{"kind":"DeleteOptions",');
    req.end('"gracePeriodSeconds":0}');
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), '{"kind":"DeleteOptions","gracePeriodSeconds":0}');
  });

  it('streams a 10 MB request body: the cluster sees the first megabyte before the client sends the rest', async () => {
    const first = Buffer.alloc(1 << 20, 1);
    const rest = Buffer.alloc(9 << 20, 2);
    let firstMegabyteArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (firstMegabyteArrived = resolve));
    upstreamA.onRequest = (req, res) => {
      const hash = createHash('sha256');
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
        if (received >= first.length) firstMegabyteArrived();
      });
      req.on('end', () => res.end(JSON.stringify({ received, sha256: hash.digest('hex') })));
    };
    const req = http.request({
      host: '127.0.0.1',
      port: proxy.port,
      agent: false,
      method: 'POST',
      path: '/k8s/clusters/a/api/v1/namespaces/d/configmaps',
      headers: ['Host', 'proxy', 'Authorization', ALICE, 'Content-Length', String(first.length + rest.length)],
    });
    req.write(first);
    await arrived;
    req.end(rest);
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const expected = createHash('sha256').update(first).update(rest).digest('hex');
    assert.deepEqual(JSON.parse(Buffer.concat(chunks).toString()), { received: first.length + rest.length, sha256: expected });
  });

  it('streams a 10 MB answer: the client gets the first bytes before the cluster has finished', async () => {
    const first = Buffer.alloc(1 << 20, 3);
    const rest = Buffer.alloc(9 << 20, 4);
    let clientGotFirstBytes!: () => void;
    const clientProgress = new Promise<void>((resolve) => (clientGotFirstBytes = resolve));
    upstreamA.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': first.length + rest.length });
      res.write(first);
      void clientProgress.then(() => res.end(rest));
    };
    const req = http.request({ host: '127.0.0.1', port: proxy.port, agent: false, path: '/k8s/clusters/a/api/big', headers: ['Host', 'proxy', 'Authorization', ALICE] });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    const hash = createHash('sha256');
    let received = 0;
    for await (const chunk of res) {
      hash.update(chunk as Buffer);
      received += (chunk as Buffer).length;
      clientGotFirstBytes();
    }
    assert.equal(received, first.length + rest.length);
    assert.equal(hash.digest('hex'), createHash('sha256').update(first).update(rest).digest('hex'));
  });

  it('pauses the cluster while the client does not read: the proxy holds a bounded part of the answer, and all of it arrives once the client reads', async () => {
    const CHUNK = 64 * 1024;
    // Far more than the kernel buffers of both connections can absorb while the client does not read.
    const TOTAL = 64 * 1024 * 1024;
    const upstream = { sent: 0, waiting: false, finished: false, hash: createHash('sha256') };
    upstreamA.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': TOTAL });
      const next = (): void => {
        upstream.waiting = false;
        while (upstream.sent < TOTAL) {
          const chunk = Buffer.alloc(CHUNK, upstream.sent / CHUNK);
          upstream.hash.update(chunk);
          upstream.sent += CHUNK;
          if (!res.write(chunk)) {
            upstream.waiting = true;
            res.once('drain', next);
            return;
          }
        }
        res.end(() => (upstream.finished = true));
      };
      next();
    };
    const client = await connectRaw(proxy.port);
    client.write(`GET /k8s/clusters/a/api/v1/pods HTTP/1.1\r\nHost: proxy\r\nAuthorization: ${ALICE}\r\n\r\n`);
    const head = await readUntil(client, (received) => received.includes('\r\n\r\n'));
    client.pause();
    // Stalled: the cluster waits for its connection to drain and sends nothing more between two looks.
    let sentBefore = -1;
    let stillFor = 0;
    await eventually(
      () => {
        stillFor = upstream.waiting && upstream.sent === sentBefore ? stillFor + 1 : 0;
        sentBefore = upstream.sent;
        return upstream.finished || stillFor >= 3;
      },
      20_000,
      'the cluster to stall or finish',
    );
    assert.equal(upstream.finished, false, 'the whole answer was taken from the cluster while the client read nothing');
    assert.ok(upstream.sent < TOTAL);
    const buffered = Math.max(...proxy.clientSockets().map((socket) => socket.writableLength));
    assert.ok(buffered <= 512 * 1024, `the proxy buffered ${buffered} bytes for a client that does not read`);

    const hash = createHash('sha256');
    const bodyStart = head.indexOf('\r\n\r\n') + 4;
    let received = head.length - bodyStart;
    hash.update(head.subarray(bodyStart));
    client.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
    });
    client.resume();
    await eventually(() => received >= TOTAL, 30_000, 'the whole answer at the client');
    client.destroy();
    assert.equal(received, TOTAL);
    assert.equal(hash.digest('hex'), upstream.hash.digest('hex'));
  });
});

describe('refusing attacks and bad requests before the cluster', () => {
  it('refuses client Impersonate-* headers in every spelling with 403 when no cluster is asked about them, and nothing reaches the cluster (CVE-2021-36776)', async () => {
    const variants: string[][] = [
      ['impersonate-user', 'system:admin'],
      ['IMPERSONATE-USER', 'system:admin', 'IMPERSONATE-GROUP', 'system:masters'],
      ['Impersonate-User', 'a', 'Impersonate-User', 'b'],
      ['Impersonate-User', 'a', 'iMPERSONATE-extra-scopes', 'all', 'Impersonate-Uid', '0'],
    ];
    for (const headers of variants) {
      const response = await send(proxy.port, { path: '/k8s/clusters/a/api/v1/secrets', headers: ['Authorization', ALICE, ...headers] });
      assert.equal(response.status, 403, headers.join(' '));
      assert.deepEqual(statusOf(response), { code: 403, reason: 'Forbidden', cause: 'IMPERSONATION_REFUSED' });
    }
    // Groups, a uid or extras without a user are malformed whoever would decide (400).
    for (const headers of [['IMPERSONATE-GROUP', 'system:masters'], ['Impersonate-Extra-x', 'y'], ['Impersonate-Uid', '0']]) {
      const response = await send(proxy.port, { path: '/k8s/clusters/a/api/v1/secrets', headers: ['Authorization', ALICE, ...headers] });
      assert.deepEqual(statusOf(response), { code: 400, reason: 'BadRequest', cause: 'IMPERSONATION_INVALID' }, headers[0]);
    }
    nothingReachedTheClusters();
    assert.ok(proxy.audit.some((record) => record.code === 'IMPERSONATION_REFUSED' && record.user === 'u-aaaaaaaaaaaa'), 'the audit names who tried');
  });

  it('answers an unauthenticated impersonation attempt with 401, since authentication comes first', async () => {
    const response = await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Impersonate-User', 'system:admin'] });
    assert.equal(response.status, 401);
    nothingReachedTheClusters();
  });

  it('refuses a Connection header naming a protected header with 400 (CVE-2021-31999)', async () => {
    for (const value of ['Impersonate-User', 'authorization', 'cookie', 'keep-alive, Impersonate-Group']) {
      const response = await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Authorization', ALICE, 'Connection', value] });
      assert.equal(response.status, 400, value);
      assert.equal(statusOf(response).cause, 'CONNECTION_HEADER_REFUSED');
    }
    nothingReachedTheClusters();
  });

  it('refuses paths that could escape the cluster, and cluster b is never contacted', async () => {
    const attempts: [string, number][] = [
      ['/k8s/clusters/a/../b/api/v1/secrets', 400],
      ['/k8s/clusters/a/%2e%2e/b/api/v1/secrets', 400],
      ['/k8s/clusters/a/%2E%2E/b/api/v1/secrets', 400],
      ['/k8s/clusters/a/api/%2e%2e/%2e%2e/b', 400],
      ['/k8s/clusters/a%2F..%2Fb/api/v1/secrets', 400],
      ['/k8s/clusters/a/api%2F..%2F..%2Fb', 400],
      ['/k8s/clusters/a/api/..%5c..%5cb', 400],
      ['/k8s/clusters/a/api\\..\\..\\b', 400],
      ['/k8s/clusters//b/api/v1/secrets', 400],
      ['/k8s/clusters/a//api/v1/secrets', 400],
      ['/k8s/clusters/../clusters/b/api', 400],
      ['/k8s/clusters/B/api', 404],
    ];
    for (const [path, status] of attempts) {
      const response = await send(proxy.port, { path, headers: ['Authorization', ALICE] });
      assert.equal(response.status, status, path);
      assert.equal(statusOf(response).code, status, path);
    }
    nothingReachedTheClusters();
  });

  it('refuses every encoded spelling of a dot segment or separator behind a server path prefix, so a server that decodes twice never leaves it (issue #16)', async () => {
    clusters.set('p', cluster('p', `${upstreamA.url}/tenant-a`));
    const spellings = [
      '..', '.', '%2e%2e', '%2E%2E', '%2e%2E', '.%2e', '%252e%252e', '%252E%252e', '%25%32%65%25%32%65', '%25%32%45%25%32%65',
      '%2525%32%65%2525%32%65', '%25252e%25252e', '..;', '..%2f', '..%2F', '%2f', '%2F', '%5c', '%5C', '%255c', '%255C', '%252f',
      '%25%32%66', '%25%35%63', '%c0%ae%c0%ae', 'x%00',
    ];
    for (const spelling of spellings) {
      for (const path of [`/k8s/clusters/p/${spelling}/tenant-b/api/v1/secrets`, `/k8s/clusters/p/api/v1/namespaces/${spelling}/secrets`]) {
        const response = await send(proxy.port, { path, headers: ['Authorization', ALICE] });
        assert.equal(response.status, 400, path);
        assert.deepEqual(statusOf(response), { code: 400, reason: 'BadRequest', cause: 'BAD_REQUEST' }, path);
      }
    }
    nothingReachedTheClusters();
    // Legitimate encodings still pass, byte for byte.
    const legitimate = '/api/v1/namespaces/d/services/https%3Aweb%3A8443/proxy/user%40example.com/a%20b';
    const response = await send(proxy.port, { path: `/k8s/clusters/p${legitimate}`, headers: ['Authorization', ALICE] });
    assert.equal(response.status, 200);
    assert.equal(upstreamA.requests[0]?.url, `/tenant-a${legitimate}`);
  });

  it('refuses a cluster-scoped token on another cluster with 401 and accepts it on its own', async () => {
    const elsewhere = await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Authorization', SCOPED_TO_B] });
    assert.equal(elsewhere.status, 401);
    assert.equal(statusOf(elsewhere).cause, 'TOKEN_WRONG_CLUSTER');
    assert.equal(upstreamA.requests.length, 0);
    const home = await send(proxy.port, { path: '/k8s/clusters/b/api', headers: ['Authorization', SCOPED_TO_B] });
    assert.equal(home.status, 200);
  });

  it('answers 403 to a non-member whether or not the cluster exists, and 404 only to callers allowed in', async () => {
    const existing = await send(proxy.port, { path: '/k8s/clusters/c/api', headers: ['Authorization', ALICE] });
    const missing = await send(proxy.port, { path: '/k8s/clusters/nope/api', headers: ['Authorization', ALICE] });
    assert.equal(existing.status, 403);
    assert.deepEqual(existing.body, missing.body, 'existence does not leak to non-members');
    const bobOnA = await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Authorization', BOB] });
    assert.equal(bobOnA.status, 403);
    assert.equal(statusOf(bobOnA).cause, 'FORBIDDEN');
    const unknown = await send(proxy.port, { path: '/k8s/clusters/nope/api', headers: ['Authorization', ROOT] });
    assert.equal(unknown.status, 404);
    assert.equal(statusOf(unknown).cause, 'NOT_FOUND');
    nothingReachedTheClusters();
  });

  it('needs a bearer token, accepts the scheme in any case, and answers 401 to anything else', async () => {
    for (const headers of [[], ['Authorization', 'Basic YWxpY2U6cHc='], ['Authorization', 'Bearer '], ['Authorization', 'Bearer t-nobody:x'], ['Authorization', 'Bearer t-stale:s3cret-stale']]) {
      const response = await send(proxy.port, { path: '/k8s/clusters/a/api', headers });
      assert.equal(response.status, 401, JSON.stringify(headers));
      assert.equal(statusOf(response).reason, 'Unauthorized');
    }
    nothingReachedTheClusters();
    const lower = await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Authorization', 'bearer t-alice:s3cret-alice'] });
    assert.equal(lower.status, 200);
  });

  it('records why a token was refused in the audit while the client sees a generic 401', async () => {
    await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Authorization', 'Bearer t-nobody:x'] });
    const record = proxy.audit.find((candidate) => candidate.code === 'TOKEN_INVALID');
    assert.equal(record?.status, 401);
    assert.equal(record?.user, null);
  });

  it('answers 503 when authentication cannot be decided, because an outage is not a wrong token', async () => {
    for (const token of ['t-undecided:x', 't-throws:x']) {
      const response = await send(proxy.port, { path: '/k8s/clusters/a/api/v1/pods', headers: ['Authorization', `Bearer ${token}`] });
      assert.equal(response.status, 503, token);
      assert.equal(statusOf(response).cause, 'AUTH_UNDECIDED');
    }
    nothingReachedTheClusters();
  });

  it('refuses two Authorization headers with 400', async () => {
    const response = await send(proxy.port, { path: '/k8s/clusters/a/api', headers: ['Authorization', ALICE, 'Authorization', ROOT] });
    assert.equal(response.status, 400);
    nothingReachedTheClusters();
  });
});

describe('upstream failures', () => {
  it('answers 502 when the cluster refuses connections', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    closed.close();
    clusters.set('down', cluster('down', `http://127.0.0.1:${port}`));
    const response = await send(proxy.port, { path: '/k8s/clusters/down/api/v1/pods', headers: ['Authorization', ALICE] });
    assert.equal(response.status, 502);
    assert.deepEqual(statusOf(response), { code: 502, reason: 'ServiceUnavailable', cause: 'UPSTREAM_UNREACHABLE' });
    assert.equal(JSON.parse(response.body.toString('utf8')).message, 'cluster "down": its API server could not be reached (ECONNREFUSED)');
    // kubectl's discovery reads print only a text body (kube/status.ts): the same message as text/plain 502.
    const discovery = await send(proxy.port, { path: '/k8s/clusters/down/api', headers: ['Authorization', ALICE] });
    assert.equal(discovery.status, 502);
    assert.equal(discovery.body.toString('utf8'), 'cluster "down": its API server could not be reached (ECONNREFUSED) (UPSTREAM_UNREACHABLE)\n');
  });

  it('answers 504 within the connect timeout when the cluster accepts TCP but never completes TLS', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => {}));
    const held: net.Socket[] = [];
    silent.on('connection', (socket) => held.push(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      clusters.set('slow', cluster('slow', `https://127.0.0.1:${(silent.address() as AddressInfo).port}`));
      const response = await send(proxy.port, { path: '/k8s/clusters/slow/api/v1/pods', headers: ['Authorization', ALICE] });
      assert.equal(response.status, 504);
      assert.equal(statusOf(response).cause, 'UPSTREAM_TIMEOUT');
      // The connect timeout (shorter than the idle one) ended it, not the idle timeout.
      assert.ok(
        proxy.warnings.some((warning) => (warning as { cluster?: string; cause?: string }).cluster === 'slow' && (warning as { cause?: string }).cause === 'connect timeout'),
        JSON.stringify(proxy.warnings),
      );
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  it('answers 504 when the cluster stays silent on an ordinary request, but never times out a watch', async () => {
    upstreamA.onRequest = (req, res) => {
      req.resume();
      if (!(req.url ?? '').includes('watch=true')) return;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      setTimeout(() => res.end('{"type":"ADDED"}\n'), IDLE_TIMEOUT_MS * 2);
    };
    const silent = await send(proxy.port, { path: '/k8s/clusters/a/api/v1/pods', headers: ['Authorization', ALICE] });
    assert.equal(silent.status, 504);
    assert.equal(statusOf(silent).cause, 'UPSTREAM_TIMEOUT');
    const watch = await send(proxy.port, { path: '/k8s/clusters/a/api/v1/pods?watch=true', headers: ['Authorization', ALICE] });
    assert.equal(watch.status, 200);
    assert.equal(watch.body.toString(), '{"type":"ADDED"}\n');
  });

  it('does not time out an answer that has started, because a pause then is backpressure or a slow list', async () => {
    upstreamA.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"items":[');
      setTimeout(() => res.end(']}'), IDLE_TIMEOUT_MS * 2);
    };
    const response = await send(proxy.port, { path: '/k8s/clusters/a/api/v1/pods', headers: ['Authorization', ALICE] });
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), '{"items":[]}');
  });

  it('cuts the client connection when the cluster dies in the middle of an answer, so a truncated body never looks complete', async () => {
    upstreamA.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Length': 100 });
      res.write('0123456789');
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const req = http.request({ host: '127.0.0.1', port: proxy.port, agent: false, path: '/k8s/clusters/a/api', headers: ['Host', 'proxy', 'Authorization', ALICE] });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.resume();
    const [failure] = (await once(res, 'error')) as [Error];
    assert.match(failure.message, /aborted/);
    assert.equal(res.complete, false);
  });
});

describe('TLS to the cluster', () => {
  let ca: Awaited<ReturnType<typeof createCertificateAuthority>>;
  let otherCa: Awaited<ReturnType<typeof createCertificateAuthority>>;
  let tlsUpstream: RecordingUpstream;
  let mtlsUpstream: RecordingUpstream;
  let proxyClientCertificate: ClusterCredentials;

  before(async () => {
    ca = await createCertificateAuthority({ commonName: 'cluster-ca', validityDays: 1 });
    otherCa = await createCertificateAuthority({ commonName: 'other-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'kube-apiserver', sans: ['127.0.0.1', 'localhost'], validityDays: 1 });
    const client = await issueClientCertificate(ca, { commonName: 'kubegate-proxy', organizations: ['kubegate'] });
    proxyClientCertificate = { kind: 'clientCertificate', certPem: client.certPem, keyPem: client.keyPem };
    tlsUpstream = await startRecordingUpstream(serving);
    mtlsUpstream = await startRecordingUpstream({ ...serving, clientCaPem: ca.certPem });
  });

  after(async () => {
    await tlsUpstream.close();
    await mtlsUpstream.close();
  });

  it('verifies the cluster certificate against the cluster CA and forwards over TLS', async () => {
    clusters.set('tls', cluster('tls', tlsUpstream.url, { caPem: ca.certPem }));
    const response = await send(proxy.port, { path: '/k8s/clusters/tls/version', headers: ['Authorization', ALICE] });
    assert.equal(response.status, 200);
    const raw = tlsUpstream.requests.at(-1)?.rawHeaders ?? [];
    assert.equal(raw[raw.indexOf('Authorization') + 1], 'Bearer proxy-token-tls');
  });

  it('refuses a cluster whose certificate is not signed by its CA (or by a system root) with 502 unless verification is off', async () => {
    const before = tlsUpstream.requests.length;
    clusters.set('tls-wrong-ca', cluster('tls-wrong-ca', tlsUpstream.url, { caPem: otherCa.certPem }));
    clusters.set('tls-system-roots', cluster('tls-system-roots', tlsUpstream.url));
    for (const id of ['tls-wrong-ca', 'tls-system-roots']) {
      const response = await send(proxy.port, { path: `/k8s/clusters/${id}/api/v1/pods`, headers: ['Authorization', ALICE] });
      assert.equal(response.status, 502, id);
      assert.equal(statusOf(response).cause, 'UPSTREAM_UNREACHABLE');
      assert.match(JSON.parse(response.body.toString('utf8')).message, new RegExp(`^cluster "${id}": its API server's TLS certificate could not be verified \\(`));
    }
    assert.equal(tlsUpstream.requests.length, before, 'no request was sent over an unverified connection');
    clusters.set('tls-insecure', cluster('tls-insecure', tlsUpstream.url, { insecureSkipTlsVerify: true }));
    const insecure = await send(proxy.port, { path: '/k8s/clusters/tls-insecure/version', headers: ['Authorization', ALICE] });
    assert.equal(insecure.status, 200);
  });

  it('presents the client certificate of the proxy identity and sends no Authorization header then', async () => {
    clusters.set('mtls', cluster('mtls', mtlsUpstream.url, { caPem: ca.certPem, credentials: proxyClientCertificate }));
    let peer = '';
    mtlsUpstream.onRequest = (req, res) => {
      peer = String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
      req.resume();
      res.end('ok');
    };
    const response = await send(proxy.port, { path: '/k8s/clusters/mtls/api', headers: ['Authorization', ALICE] });
    assert.equal(response.status, 200);
    assert.equal(peer, 'kubegate-proxy');
    const names = (mtlsUpstream.requests.at(-1)?.rawHeaders ?? []).map((value) => value.toLowerCase());
    assert.ok(!names.includes('authorization'));
    assert.ok(names.includes('impersonate-user'));
  });
});

describe('long-running streams', () => {
  function holdWatch(upstream: RecordingUpstream): void {
    upstream.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{}}\n');
    };
  }

  async function openWatch(authorization = ALICE): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    const req = http.request({
      host: '127.0.0.1',
      port: proxy.port,
      agent: false,
      path: '/k8s/clusters/a/api/v1/namespaces/default/pods?watch=true&resourceVersion=1',
      headers: ['Host', 'proxy', 'Authorization', authorization],
    });
    req.on('error', () => {});
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.on('error', () => {});
    await once(res, 'data');
    return { req, res };
  }

  it('flushes the headers of a watch at once, before any event, because kubectl waits for them', async () => {
    upstreamA.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
    };
    const req = http.request({ host: '127.0.0.1', port: proxy.port, agent: false, path: '/k8s/clusters/a/api/v1/pods?watch=1', headers: ['Host', 'proxy', 'Authorization', ALICE] });
    req.on('error', () => {});
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    assert.equal(res.statusCode, 200);
    req.destroy();
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream watch to close');
  });

  it('closes the upstream request within a second when the client drops a watch', async () => {
    holdWatch(upstreamA);
    const { req } = await openWatch();
    assert.equal(upstreamA.openRequests(), 1);
    assert.equal(proxy.forwarder.openStreamCount(), 1);
    req.destroy();
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream watch to close');
    await eventually(() => proxy.forwarder.openStreamCount() === 0, 1000, 'the stream to be forgotten');
    assert.ok(proxy.audit.some((record) => record.longRunning && record.status === 200));
  });

  it('ends the open streams of a revoked token on request', async () => {
    holdWatch(upstreamA);
    const { res } = await openWatch();
    const closed = new Promise((resolve) => res.once('close', resolve));
    assert.equal(proxy.forwarder.closeStreams((stream) => stream.tokenName === 'other'), 0);
    assert.equal(proxy.forwarder.closeStreams((stream) => stream.tokenName === 't-alice' && stream.clusterId === 'a'), 1);
    await closed;
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream watch to close');
  });

  it('ends a watch cleanly at shutdown, so kubectl simply watches again instead of reporting an error', async () => {
    holdWatch(upstreamA);
    const { res } = await openWatch();
    const body: Buffer[] = [];
    res.on('data', (chunk: Buffer) => body.push(chunk));
    tracker.endAll();
    await once(res, 'end');
    assert.equal(res.complete, true);
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream watch to close');
  });

  it('answers 503 at shutdown to a watch the cluster has not answered yet', async () => {
    upstreamA.onRequest = (req) => req.resume();
    const pending = send(proxy.port, { path: '/k8s/clusters/a/api/v1/pods?watch=true', headers: ['Authorization', ALICE] });
    await eventually(() => tracker.streams.size === 1 && upstreamA.requests.length === 1, 1000, 'the watch to be forwarded');
    tracker.endAll();
    const response = await pending;
    assert.equal(response.status, 503);
    assert.equal(statusOf(response).cause, 'SHUTTING_DOWN');
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream watch to close');
  });

  it('ends a stream when its token expires, because a watch must not outlive its credential', async () => {
    tokens.set('t-short:s3cret', authenticated(alice, { name: 't-short', expiresAt: new Date(Date.now() + 300), clusterId: null }));
    holdWatch(upstreamA);
    const { res } = await openWatch('Bearer t-short:s3cret');
    await new Promise((resolve) => res.once('close', resolve));
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream watch to close');
  });
});

describe('upgrades (exec, attach, port-forward)', () => {
  const EXEC_PATH = '/k8s/clusters/a/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true&tty=true';

  function spdyRequest(extraHeaders = '', authorization = ALICE): string {
    return (
      `POST ${EXEC_PATH} HTTP/1.1\r\nHost: proxy\r\nAuthorization: ${authorization}\r\n` +
      `Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n${extraHeaders}\r\n`
    );
  }

  function endOfHead(received: Buffer): number {
    return received.indexOf('\r\n\r\n');
  }

  it('passes a WebSocket exec through both ways, with the identity set and the client credential removed', async () => {
    const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false) });
    let upstreamSocket: WebSocket | undefined;
    upstreamA.onUpgrade = (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        upstreamSocket = ws;
        ws.on('message', (data) => ws.send(Buffer.concat([Buffer.from('echo:'), data as Buffer])));
      });
    };
    const client = new WebSocket(`ws://127.0.0.1:${proxy.port}${EXEC_PATH}`, ['v5.channel.k8s.io', 'base64url.bearer.authorization.k8s.io.dC1ib2I6czNjcmV0LWJvYg'], {
      headers: { Authorization: ALICE },
    });
    await once(client, 'open');
    assert.equal(client.protocol, 'v5.channel.k8s.io');
    client.send('hello');
    const [message] = (await once(client, 'message')) as [Buffer];
    assert.equal(message.toString(), 'echo:hello');

    const raw = upstreamA.requests.at(-1)?.rawHeaders ?? [];
    const header = (name: string): string[] => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === name);
    assert.deepEqual(header('sec-websocket-protocol'), ['v5.channel.k8s.io']);
    assert.deepEqual(header('authorization'), ['Bearer proxy-token-a']);
    assert.deepEqual(header('impersonate-user'), ['u-aaaaaaaaaaaa']);
    assert.deepEqual(header('connection'), ['Upgrade']);
    assert.deepEqual(header('upgrade'), ['websocket']);

    client.terminate();
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream socket to close after the client left');
    assert.ok(upstreamSocket !== undefined);
    wss.close();
    await eventually(() => proxy.audit.some((record) => record.upgrade), 1000, 'the audit record of the session');
    const record = proxy.audit.find((candidate) => candidate.upgrade);
    assert.equal(record?.status, 101);
    assert.equal(record?.path, '/api/v1/namespaces/default/pods/web/exec');
  });

  it('passes a SPDY/3.1 exec through, delivering the bytes that came with each side\'s headers', async () => {
    let upstreamSide: Duplex | undefined;
    upstreamA.onUpgrade = (_req, socket, head) => {
      upstreamSide = socket;
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\nUPSTREAM-HEAD|');
      if (head.length > 0) socket.write(Buffer.concat([Buffer.from('got:'), head, Buffer.from('|')]));
      socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from('got:'), chunk, Buffer.from('|')])));
    };
    const socket = await connectRaw(proxy.port);
    socket.write(spdyRequest() + 'CLIENT-HEAD');
    const received = await readUntil(socket, (data) => data.includes('got:CLIENT-HEAD|'));
    const text = received.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(text, /\r\nX-Stream-Protocol-Version: v4\.channel\.k8s\.io\r\n/);
    assert.equal(text.slice(endOfHead(received) + 4), 'UPSTREAM-HEAD|got:CLIENT-HEAD|');
    socket.write('ping');
    const echoed = await readUntil(socket, (data) => data.includes('got:ping|'));
    assert.ok(echoed.includes('got:ping|'));

    upstreamSide?.destroy();
    await eventually(() => socket.destroyed || socket.readableEnded, 1000, 'the client socket to close after the upstream left');
    socket.destroy();
  });

  it('ends upgraded connections at shutdown, and the cluster side with them', async () => {
    let upstreamSide: Duplex | undefined;
    upstreamA.onUpgrade = (_req, socket) => {
      upstreamSide = socket;
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
      socket.on('data', () => {});
    };
    const socket = await connectRaw(proxy.port);
    socket.write(spdyRequest());
    await readUntil(socket, (data) => endOfHead(data) >= 0);
    const ended = once(socket, 'end');
    tracker.endAll();
    await ended;
    socket.end();
    await eventually(() => upstreamSide?.destroyed === true, 1000, 'the upstream socket to close');
  });

  it('closes the upstream socket at once when the client connection is reset, since no FIN will come to pass on', async () => {
    let upstreamSide: Duplex | undefined;
    upstreamA.onUpgrade = (_req, socket) => {
      upstreamSide = socket;
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
      socket.on('data', () => {});
    };
    const socket = await connectRaw(proxy.port);
    socket.write(spdyRequest());
    await readUntil(socket, (data) => endOfHead(data) >= 0);
    socket.write('stream data');
    socket.resetAndDestroy();
    await eventually(() => upstreamSide?.destroyed === true, 1000, 'the upstream socket to close');
  });

  it('relays a non-101 answer with Connection: close and destroys the upstream socket, so it can never be reused (CVE-2018-1002105)', async () => {
    const status = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'pods "web" is forbidden', reason: 'Forbidden', code: 403 });
    upstreamA.onUpgrade = (_req, socket) => {
      // Like Go's server, keep the connection open and usable after the refusal.
      socket.write(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(status)}\r\n\r\n${status}`);
      socket.on('data', () => {});
    };
    const socket = await connectRaw(proxy.port);
    socket.write(spdyRequest());
    const head = await readUntil(socket, (data) => data.includes(status));
    assert.match(head.toString(), /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(head.toString(), /\r\nConnection: close\r\n/);
    const upstreamSocket = upstreamA.requests.at(-1)?.socket;
    await eventually(() => upstreamSocket?.destroyed === true, 1000, 'the upstream socket to be closed');
    socket.write('GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: x\r\n\r\n');
    await readUntil(socket, () => false, 3000).catch(() => Buffer.alloc(0));
    assert.equal(upstreamA.requests.length, 1, 'nothing the client sent after the refusal reached the cluster');
    socket.destroy();
  });

  it('never follows a redirect answering an upgrade, and answers 502 instead (CVE-2020-8559)', async () => {
    upstreamA.onUpgrade = (_req, socket) => {
      socket.write(`HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${upstreamB.port}/api/v1/namespaces/kube-system/secrets\r\nContent-Length: 0\r\n\r\n`);
      socket.on('data', () => {});
    };
    const socket = await connectRaw(proxy.port);
    socket.write(spdyRequest());
    const answer = await readUntil(socket, (data) => endOfHead(data) >= 0 && data.toString().endsWith('}'));
    const text = answer.toString();
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.doesNotMatch(text, /Location/i);
    assert.equal(JSON.parse(text.slice(endOfHead(answer) + 4)).details.causes[0].reason, 'UPSTREAM_REDIRECT_REFUSED');
    const upstreamSocket = upstreamA.requests.at(-1)?.socket;
    await eventually(() => upstreamSocket?.destroyed === true, 1000, 'the upstream socket to be closed');
    assert.equal(upstreamB.requests.length, 0);
    socket.destroy();
  });

  it('refuses a browser upgrade from a foreign origin with 403 (CVE-2019-13209) and accepts its own origin', async () => {
    for (const origin of ['https://evil.example', 'null', 'https://kubegate.example.com.evil.example']) {
      const socket = await connectRaw(proxy.port);
      socket.write(spdyRequest(`Origin: ${origin}\r\n`));
      const answer = (await readUntil(socket, (data) => data.toString().endsWith('}'))).toString();
      assert.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/, origin);
      assert.match(answer, /ORIGIN_REFUSED/);
      socket.destroy();
    }
    assert.equal(upstreamA.requests.length, 0);
    upstreamA.onUpgrade = (_req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
    const socket = await connectRaw(proxy.port);
    socket.write(spdyRequest(`Origin: ${ALLOWED_ORIGIN}\r\n`));
    const answer = await readUntil(socket, (data) => endOfHead(data) >= 0);
    assert.match(answer.toString(), /^HTTP\/1\.1 101 /);
    socket.destroy();
    await eventually(() => upstreamA.openRequests() === 0, 1000, 'the upstream socket to close');
  });

  it('refuses unauthenticated, impersonating and non-exec-protocol upgrades before the cluster', async () => {
    const cases: [string, RegExp][] = [
      [spdyRequest('', 'Bearer t-nobody:x'), /^HTTP\/1\.1 401 /],
      [spdyRequest('Impersonate-User: system:admin\r\n'), /^HTTP\/1\.1 403 /],
      [spdyRequest('Connection: Impersonate-Group\r\n'), /^HTTP\/1\.1 400 /],
      [`GET ${EXEC_PATH} HTTP/1.1\r\nHost: proxy\r\nAuthorization: ${ALICE}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`, /^HTTP\/1\.1 400 /],
      [spdyRequest('', ALICE).replace('/k8s/clusters/a/', '/k8s/clusters/a/../b/'), /^HTTP\/1\.1 400 /],
    ];
    for (const [request, expected] of cases) {
      const socket = await connectRaw(proxy.port);
      socket.write(request);
      const answer = (await readUntil(socket, (data) => data.toString().endsWith('}'))).toString();
      assert.match(answer, expected, request.split('\r\n')[0]);
      socket.destroy();
    }
    nothingReachedTheClusters();
  });

  it('answers an upgrade with 502 when the cluster cannot be reached', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    closed.close();
    clusters.set('down', cluster('down', `http://127.0.0.1:${port}`));
    const socket = await connectRaw(proxy.port);
    socket.write(spdyRequest().replace('/k8s/clusters/a/', '/k8s/clusters/down/'));
    const answer = (await readUntil(socket, (data) => data.toString().endsWith('}'))).toString();
    assert.match(answer, /^HTTP\/1\.1 502 /);
    assert.match(answer, /UPSTREAM_UNREACHABLE/);
    socket.destroy();
  });
});

describe('audit', () => {
  afterEach(() => {
    const everything = JSON.stringify({ audit: proxy.audit, warnings: proxy.warnings });
    for (const secret of ['s3cret', 'proxy-token', 'session=']) assert.ok(!everything.includes(secret), `${secret} leaked into audit or logs`);
  });

  it('records who did what on which cluster, without the query, headers or token secrets (CVE-2023-22649)', async () => {
    await send(proxy.port, {
      method: 'GET',
      path: '/k8s/clusters/a/api/v1/namespaces/default/pods/web/log?container=app&secret=s3cret-in-query',
      headers: ['Authorization', ALICE, 'Cookie', 'session=s3cret-cookie'],
    });
    const record = proxy.audit.find((candidate) => candidate.path === '/api/v1/namespaces/default/pods/web/log');
    assert.ok(record !== undefined);
    assert.equal(record.user, 'u-aaaaaaaaaaaa');
    assert.deepEqual(record.groups, ['local:devs', 'system:authenticated']);
    assert.equal(record.tokenName, 't-alice');
    assert.equal(record.cluster, 'a');
    assert.equal(record.role, 'member');
    assert.equal(record.method, 'GET');
    assert.equal(record.path, '/api/v1/namespaces/default/pods/web/log');
    assert.equal(record.status, 200);
    assert.equal(record.code, null);
    assert.equal(record.upgrade, false);
    assert.ok(record.durationMs >= 0);
    assert.ok(record.bytesOut > 0);
  });

  it('records refusals with their code and no user when authentication failed', async () => {
    await send(proxy.port, { path: '/k8s/clusters/a/../b/api?token=s3cret', headers: ['Authorization', 'Bearer t-nobody:s3cret'] });
    const record = proxy.audit.find((candidate) => candidate.path === '/k8s/clusters/a/../b/api');
    assert.equal(record?.user, null);
    assert.equal(record?.code, 'BAD_REQUEST');
    assert.equal(record?.status, 400);
    assert.equal(record?.path, '/k8s/clusters/a/../b/api');
  });
});

describe('the slow-request log (log.slowRequestMs)', () => {
  const HELD_MS = 40;
  /** Cluster a holds its answer head for HELD_MS: the request is slow, and slow at the cluster. */
  function holdAnswers(): void {
    upstreamA.onRequest = (req, res) => {
      req.resume();
      setTimeout(() => {
        const body = JSON.stringify({ path: req.url });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      }, HELD_MS);
    };
  }
  const slowLines = (warnings: readonly object[]): Record<string, unknown>[] => warnings.filter((w) => 'upstreamHeadMs' in w) as Record<string, unknown>[];

  it('logs a request at least that long with where its time went, adding up to its duration, and never its path or token', async () => {
    holdAnswers();
    const slow = await startProxy({ authenticator, getCluster: (id) => clusters.get(id), authorize, upstreams: pool, allowedOrigins: [] }, { slowRequestMs: HELD_MS / 2 });
    const quiet = await startProxy({ authenticator, getCluster: (id) => clusters.get(id), authorize, upstreams: pool, allowedOrigins: [] }, { slowRequestMs: 60_000 });
    try {
      assert.equal((await send(slow.port, { path: '/k8s/clusters/a/api/v1/namespaces/secret-ns/pods', headers: ['Authorization', ALICE] })).status, 200);
      const [line, ...others] = slowLines(slow.warnings);
      assert.equal(others.length, 0);
      assert.ok(line !== undefined, 'the slow request was logged');
      assert.equal(line['cluster'], 'a');
      assert.equal(line['method'], 'GET');
      assert.equal(line['status'], 200);
      assert.ok((line['upstreamHeadMs'] as number) >= HELD_MS - 5, `the cluster's wait is where it happened: ${JSON.stringify(line)}`);
      const stretches = ['admitMs', 'connectionMs', 'upstreamHeadMs', 'upstreamBodyMs', 'clientWriteMs'].map((key) => line[key] as number);
      for (const stretch of stretches) assert.ok(typeof stretch === 'number' && stretch >= 0, JSON.stringify(line));
      assert.ok(Math.abs(stretches.reduce((a, b) => a + b, 0) - (line['durationMs'] as number)) < 0.01, JSON.stringify(line));
      const text = JSON.stringify(line);
      assert.ok(!text.includes('s3cret') && !text.includes('secret-ns'), text);

      // The same request under a higher threshold, and on the proxy without one, is not logged.
      assert.equal((await send(quiet.port, { path: '/k8s/clusters/a/api/v1/pods', headers: ['Authorization', ALICE] })).status, 200);
      assert.deepEqual(slowLines(quiet.warnings), []);
      proxy.warnings.length = 0;
      assert.equal((await send(proxy.port, { path: '/k8s/clusters/a/api/v1/pods', headers: ['Authorization', ALICE] })).status, 200);
      assert.deepEqual(slowLines(proxy.warnings), []);
    } finally {
      await slow.close();
      await quiet.close();
    }
  });

  it('ends the timings where a client that left stopped waiting', async () => {
    upstreamA.onRequest = (req) => req.resume();
    const slow = await startProxy({ authenticator, getCluster: (id) => clusters.get(id), authorize, upstreams: pool, allowedOrigins: [] }, { slowRequestMs: 1 });
    try {
      const socket = await connectRaw(slow.port);
      socket.write(`GET /k8s/clusters/a/api/v1/pods HTTP/1.1\r\nHost: x\r\nAuthorization: ${ALICE}\r\n\r\n`);
      await eventually(() => upstreamA.requests.length === 1, 5000, "the request at the cluster");
      socket.destroy();
      await eventually(() => slowLines(slow.warnings).length === 1, 5000, "the slow-request line");
      const [line] = slowLines(slow.warnings);
      assert.equal(line?.['status'], 499);
      assert.equal(typeof line?.['upstreamHeadMs'], 'number', JSON.stringify(line));
      assert.equal(line?.['upstreamBodyMs'], null);
      assert.equal(line?.['clientWriteMs'], null);
    } finally {
      await slow.close();
    }
  });

  it('never logs a long-running request, however long it ran', async () => {
    upstreamA.onRequest = (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      setTimeout(() => res.end('{"type":"ADDED"}\n'), HELD_MS);
    };
    const slow = await startProxy({ authenticator, getCluster: (id) => clusters.get(id), authorize, upstreams: pool, allowedOrigins: [] }, { slowRequestMs: 1 });
    try {
      const watch = await send(slow.port, { path: '/k8s/clusters/a/api/v1/pods?watch=true', headers: ['Authorization', ALICE] });
      assert.equal(watch.status, 200);
      await eventually(() => slow.audit.length === 1, 5000, "the watch's audit record");
      assert.ok((slow.audit[0]?.durationMs ?? 0) >= 1 && slow.audit[0]?.longRunning === true, JSON.stringify(slow.audit[0]));
      assert.deepEqual(slowLines(slow.warnings), []);
    } finally {
      await slow.close();
    }
  });

  it('refuses a threshold that is not a positive number', () => {
    assert.throws(() => createForwarder({ authenticator, getCluster: () => undefined, authorize, upstreams: pool, allowedOrigins: [], audit: () => {}, logger: { warn: () => {}, debug: () => {} } }, { slowRequestMs: 0 }), /slowRequestMs must be a positive number/);
  });
});

describe('a revocation while a request is in admission (issue #16.5)', () => {
  /** An authenticator whose lookups wait until the test answers them, one at a time. */
  class ParkedAuthenticator {
    readonly #waiting: ((result: AuthResult) => void)[] = [];
    readonly #arrivals = new EventEmitter();
    authenticateToken(): Promise<AuthResult> {
      return new Promise<AuthResult>((resolve) => {
        this.#waiting.push(resolve);
        this.#arrivals.emit('parked');
      });
    }
    /** Resolves once a lookup is parked. */
    async parked(): Promise<void> {
      if (this.#waiting.length === 0) await once(this.#arrivals, 'parked');
    }
    answer(result: AuthResult): void {
      this.#waiting.shift()?.(result);
    }
  }

  it('refuses a watch whose token was looked up just before closeStreams ran, so it cannot outlive the revocation', async () => {
    const parked = new ParkedAuthenticator();
    const late = await startProxy({ authenticator: parked, getCluster: (id) => clusters.get(id), authorize, upstreams: pool, allowedOrigins: [] });
    const aliceResult = authenticated(alice, { name: 't-alice', expiresAt: null, clusterId: null });
    try {
      const revoked = send(late.port, { path: '/k8s/clusters/a/api/v1/pods?watch=true', headers: ['Authorization', ALICE] });
      await parked.parked();
      // The revocation lands while the token's (successful) lookup is still on its way.
      assert.equal(late.forwarder.closeStreams((stream) => stream.tokenName === 't-alice'), 0, 'nothing is open yet');
      parked.answer(aliceResult);
      const response = await revoked;
      assert.deepEqual(statusOf(response), { code: 401, reason: 'Unauthorized', cause: 'UNAUTHENTICATED' });
      assert.equal(late.audit.at(-1)?.code, 'TOKEN_INVALID');
      nothingReachedTheClusters();

      // A closeStreams that selects someone else leaves the request alone.
      const unrelated = send(late.port, { path: '/k8s/clusters/a/api/v1/pods', headers: ['Authorization', ALICE] });
      await parked.parked();
      late.forwarder.closeStreams((stream) => stream.tokenName === 't-bob', 'FORBIDDEN');
      parked.answer(aliceResult);
      assert.equal((await unrelated).status, 200);
      assert.equal(upstreamA.requests.length, 1);
    } finally {
      await late.close();
    }
  });
});

describe('allowed origins known only after start', () => {
  it('reads allowedOrigins when an upgrade carries an Origin, so a public URL set after listen applies', async () => {
    let publicUrl = '';
    const deps = {
      authenticator,
      getCluster: (id: string) => clusters.get(id),
      authorize,
      upstreams: pool,
      get allowedOrigins() {
        return publicUrl === '' ? [] : [publicUrl, 'not an origin', 'https://with.path/x'];
      },
    };
    const late = await startProxy(deps);
    try {
      upstreamA.onUpgrade = (_req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      const attempt = async (origin: string): Promise<string> => {
        const socket = await connectRaw(late.port);
        socket.write(
          `GET /k8s/clusters/a/api/v1/namespaces/d/pods/p/exec HTTP/1.1\r\nHost: proxy\r\nAuthorization: ${ALICE}\r\n` +
            `Origin: ${origin}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
        const answer = await readUntil(socket, (data) => data.includes('\r\n\r\n'));
        socket.destroy();
        return answer.toString().split('\r\n')[0] ?? '';
      };
      assert.match(await attempt('https://kubegate.example.net'), / 403 /);
      publicUrl = 'https://Kubegate.Example.net:443/';
      assert.match(await attempt('https://kubegate.example.net'), / 101 /);
      assert.match(await attempt('https://with.path'), / 403 /);
    } finally {
      await late.close();
    }
  });
});

describe('against the fake kube-apiserver', () => {
  let apiserver: FakeKubeApiServer;

  before(async () => {
    apiserver = await startFakeKubeApiServer({ token: 'proxy-token-kube' });
  });

  after(async () => {
    await apiserver.close();
  });

  it('reaches RBAC as the kubegate user, with groups and decoded extra keys, on behalf of the proxy identity', async () => {
    clusters.set('kube', cluster('kube', apiserver.url, { caPem: apiserver.caPem }));
    const response = await send(proxy.port, { path: '/k8s/clusters/kube/api/v1/namespaces/default/pods', headers: ['Authorization', ALICE, 'Accept', 'application/json'] });
    assert.equal(response.status, 200);
    const user = apiserver.requests.at(-1)?.user;
    assert.equal(user?.impersonated, true);
    assert.equal(user?.requester, 'kubegate-proxy');
    assert.equal(user?.username, 'u-aaaaaaaaaaaa');
    assert.ok(user?.groups.includes('local:devs'));
    assert.deepEqual(user?.extra['kubegate.io/login-name'], ['alice']);
    assert.deepEqual(user?.extra['kubegate.io/provider'], ['local']);
  });

  /** Alice's watch of pods in `kube`, on a connection of its own, once its answer's head arrived. */
  async function watchPods(): Promise<http.ClientRequest> {
    const req = http.request({
      host: '127.0.0.1',
      port: proxy.port,
      agent: false,
      path: '/k8s/clusters/kube/api/v1/namespaces/default/pods?watch=true',
      headers: ['Host', 'proxy', 'Authorization', ALICE, 'Accept', 'application/json'],
    });
    req.on('error', () => {});
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.on('error', () => {});
    assert.equal(res.statusCode, 200);
    return req;
  }

  it('tears a dropped watch down on the API server within a second', async () => {
    clusters.set('kube', cluster('kube', apiserver.url, { caPem: apiserver.caPem }));
    const req = await watchPods();
    await eventually(() => apiserver.openWatches === 1, 1000, 'the watch to open on the API server');
    req.destroy();
    await eventually(() => apiserver.openWatches === 0, 1000, 'the watch to close on the API server');
  });

  it('a burst of 200 dropped watches: every one torn down on the API server, and the pool still serves', async () => {
    clusters.set('kube', cluster('kube', apiserver.url, { caPem: apiserver.caPem }));
    const upstream = pool.get(clusters.get('kube') as Cluster).dispatcher as Pool;
    const watches = await Promise.all(Array.from({ length: 200 }, watchPods));
    await eventually(() => apiserver.openWatches === 200, 10_000, 'the 200 watches to open on the API server');
    for (const req of watches) req.destroy();
    await eventually(() => apiserver.openWatches === 0, 10_000, 'every watch to close on the API server');
    // undici dials a connection for each aborted request as its connection closes (nodejs/undici#5845), then drops the request.
    await eventually(() => upstream.stats.pending === 0 && upstream.stats.running === 0, 10_000, 'the pool to settle');
    const after = await send(proxy.port, { path: '/k8s/clusters/kube/api/v1/namespaces/default/pods', headers: ['Authorization', ALICE, 'Accept', 'application/json'] });
    assert.equal(after.status, 200, 'the pool still serves');
  });
});
