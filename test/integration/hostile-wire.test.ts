/**
 * Hostile bytes on the wire against the real `kubegate proxy` (proxy-fixture: its own
 * server, TLS, admission and forwarding) in front of the strict fake API server, which
 * records every request exactly as it arrived. Each case is sent by a raw TLS client, and the
 * test checks the precise refusal, that nothing of the request — nor anything smuggled in its
 * body — reached the cluster, and that the proxy serves the next good request.
 *
 * What proxy-e2e's "hostile bytes" test and forward.test.ts already prove (dot segments,
 * encoded separators, two Authorization headers, Connection naming a protected header,
 * client Impersonate-*, non-101 upgrade answers) is not repeated here.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startWebhook, type RunningWebhook } from '../../src/cmd/webhook.js';
import { loadWebhookConfig } from '../../src/config/webhook.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { eventually } from '../support/eventually.js';
import { writeKubeconfig, type WrittenKubeconfig } from '../support/kubectl.js';
import { startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.js';

const PODS = '/api/v1/namespaces/default/pods';
/** What a smuggled second request asks for; the fake must never see this path. */
const SMUGGLED = '/api/v1/namespaces/kube-system/secrets';

interface RawAnswer {
  /** Everything the proxy sent, as latin1. */
  readonly text: string;
  readonly status: number;
  /** The parsed body when it is JSON. */
  readonly json: any;
  /** The proxy closed the connection (it was not left waiting for more). */
  readonly closed: boolean;
}

describe('hostile input on the proxy wire', () => {
  let fixture: ProxyFixture;
  let port: number;
  let token: string;

  before(async () => {
    // Long enough for any whole body the fixture's own REST calls send at once.
    fixture = await startProxyFixture({ name: 'hostile-wire', bodyTimeoutMs: 1000 });
    port = Number(new URL(fixture.proxy.url).port);
    token = fixture.adminToken;
  });
  after(() => fixture?.close());

  /**
   * Sends `payload` on a fresh TLS connection and reads until the proxy closes it, or until
   * one whole answer arrived on a connection it keeps open (then this side closes).
   */
  function sendRaw(payload: string | Buffer): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: fixture.proxy.caPem!, servername: 'localhost' }, () => socket.write(payload));
      let text = '';
      let done = false;
      const finish = (closed: boolean): void => {
        if (done) return;
        done = true;
        socket.destroy();
        const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
        const body = text.slice(text.indexOf('\r\n\r\n') + 4);
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        resolve({ text, status, json, closed });
      };
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
        const head = text.indexOf('\r\n\r\n');
        const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, head))?.[1];
        if (head !== -1 && length !== undefined && text.length >= head + 4 + Number(length)) finish(false);
      });
      socket.on('close', () => finish(true));
      socket.on('error', (error) => (text === '' && !done ? reject(error) : finish(true)));
    });
  }

  /** Requests for `path` the fake API server received since `from`. */
  function arrived(from: number, path: string): number {
    return fixture.fake.requests.slice(from).filter((request) => request.path === path).length;
  }

  async function proxyStillServes(): Promise<void> {
    const answer = await sendRaw(`GET /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    assert.equal(answer.status, 200, answer.text.slice(0, 300));
    assert.equal(answer.json.kind, 'PodList');
  }

  test('request smuggling shapes are refused by the parser before admission: 400 (413 for a chunk extension flood), the connection closed, nothing reaches the cluster', async () => {
    const auth = () => `Authorization: Bearer ${token}\r\n`;
    const post = (headers: string, body: string): string =>
      `POST /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\n${auth()}Content-Type: application/json\r\n${headers}\r\n${body}`;
    const smuggled = `GET /k8s/clusters/dev${SMUGGLED} HTTP/1.1\r\nHost: localhost\r\n${auth()}\r\n`;
    const cases: Array<[string, string, number]> = [
      ['Content-Length with Transfer-Encoding', post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${smuggled}`), 400],
      ['two Content-Length values', post('Content-Length: 2\r\nContent-Length: 60\r\n', `{}${smuggled}`), 400],
      ['a Content-Length list', post('Content-Length: 2, 2\r\n', `{}${smuggled}`), 400],
      ['Transfer-Encoding: chunked, identity', post('Transfer-Encoding: chunked, identity\r\n', `2\r\n{}\r\n0\r\n\r\n${smuggled}`), 400],
      ['two Transfer-Encoding headers', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', `2\r\n{}\r\n0\r\n\r\n${smuggled}`), 400],
      ['a space before the colon of Transfer-Encoding', post('Transfer-Encoding : chunked\r\n', `2\r\n{}\r\n0\r\n\r\n${smuggled}`), 400],
      ['an obs-fold continuation of Transfer-Encoding', post('Transfer-Encoding: identity\r\n chunked\r\n', `2\r\n{}\r\n0\r\n\r\n${smuggled}`), 400],
      ['an obs-fold continuation of any header', post('X-Note: a\r\n b\r\nContent-Length: 2\r\n', '{}'), 400],
      ['bare LF line endings', `POST /k8s/clusters/dev${PODS} HTTP/1.1\nHost: localhost\nAuthorization: Bearer ${token}\nContent-Length: 2\n\n{}`, 400],
      ['a bare CR in the request line', `GET /k8s/clusters/dev${PODS} HTTP/1.1\rHost: localhost\r\n${auth()}\r\n`, 400],
      ['an invalid chunk size', post('Transfer-Encoding: chunked\r\n', `zz\r\n{}\r\n0\r\n\r\n${smuggled}`), 400],
      ['an overflowing chunk size', post('Transfer-Encoding: chunked\r\n', `fffffffffffffffffff\r\n{}\r\n0\r\n\r\n${smuggled}`), 400],
      ['a chunk extension flood', post('Transfer-Encoding: chunked\r\n', `2;x=${'a'.repeat(100_000)}\r\n{}\r\n0\r\n\r\n`), 413],
      ['a NUL in the target', `GET /k8s/clusters/dev/api\0/v1 HTTP/1.1\r\nHost: localhost\r\n${auth()}\r\n`, 400],
      ['a control byte in a header value', `GET /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\n${auth()}X-Note: a\u0001b\r\n\r\n`, 400],
      ['a DEL after the token', `GET /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\u007f\r\n\r\n`, 400],
      ['raw UTF-8 in the cluster ID', `GET /k8s/clusters/d\u00c3\u00a9v${PODS} HTTP/1.1\r\nHost: localhost\r\n${auth()}\r\n`, 400],
      ['an overlong path', `GET /k8s/clusters/dev/api/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n${auth()}\r\n`, 431],
      ['10,000 headers', `GET /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\n${auth()}${'X-A: b\r\n'.repeat(10_000)}\r\n`, 431],
      ['an HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
    ];
    for (const [name, payload, status] of cases) {
      const from = fixture.fake.requests.length;
      const answer = await sendRaw(payload);
      assert.equal(answer.status, status, `${name}: ${answer.text.slice(0, 200)}`);
      assert.ok(answer.closed, `${name}: the connection is closed after a framing error`);
      assert.equal(arrived(from, PODS) + arrived(from, SMUGGLED) + arrived(from, '/api'), 0, `${name}: nothing reached the cluster`);
    }
    await proxyStillServes();
  });

  test('other transfer codings are refused with a Status after parsing, and the request never reaches the cluster', async () => {
    for (const coding of ['identity, chunked', 'gzip, chunked', 'xchunked']) {
      const from = fixture.fake.requests.length;
      const answer = await sendRaw(
        `POST /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
          `Transfer-Encoding: ${coding}\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      );
      assert.equal(answer.status, 400, coding);
      assert.equal(answer.json.kind, 'Status');
      assert.equal(answer.json.details.causes[0].reason, 'BAD_REQUEST');
      assert.match(answer.json.message, /only the chunked transfer coding/);
      assert.equal(arrived(from, PODS), 0, coding);
    }
    await proxyStillServes();
  });

  test('more header lines than an API server keeps are refused with a Status, so the identity the proxy appends is never cut off upstream', async () => {
    const statusBefore = await fixture.api.request('GET', '/v1/clusters/dev', { token });
    assert.equal(statusBefore.json.status?.credential, 'accepted', statusBefore.text);
    // node (like many servers) keeps the first 2000 header lines of a request and drops the
    // rest: the client's lines past that must not vanish unseen, and the proxy's own
    // credential and Impersonate-* lines, which follow the client's, must not be the ones cut.
    const junk = 'a:\r\n'.repeat(2100);
    const cases: Array<[string, string]> = [
      ['Authorization after 2100 lines', `${junk}Authorization: Bearer ${token}\r\n`],
      ['Impersonate-User after 2100 lines', `Authorization: Bearer ${token}\r\n${junk}Impersonate-User: system:admin\r\n`],
      ['257 lines', `Authorization: Bearer ${token}\r\n${'X-A: b\r\n'.repeat(255)}`],
    ];
    for (const [name, headers] of cases) {
      const from = fixture.fake.requests.length;
      const answer = await sendRaw(`GET /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`);
      assert.equal(answer.status, 400, `${name}: ${answer.text.slice(0, 300)}`);
      assert.equal(answer.json.kind, 'Status', name);
      assert.equal(answer.json.details.causes[0].reason, 'BAD_REQUEST', name);
      assert.match(answer.json.message, /more than 256 request header lines/, name);
      assert.equal(arrived(from, PODS) + arrived(from, '/apis/authorization.k8s.io/v1/subjectaccessreviews'), 0, `${name}: nothing reached the cluster`);
    }
    // A client cannot make the cluster look as if it refused the proxy's credential.
    const statusAfter = await fixture.api.request('GET', '/v1/clusters/dev', { token });
    assert.equal(statusAfter.json.status?.credential, 'accepted', statusAfter.text);
    // 256 lines, with the proxy's own appended, still go through whole.
    const from = fixture.fake.requests.length;
    const many = await sendRaw(`GET /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n${'X-A: b\r\n'.repeat(254)}\r\n`);
    assert.equal(many.status, 200, many.text.slice(0, 300));
    const served = fixture.fake.requests.slice(from).find((request) => request.path === PODS);
    assert.equal(served?.rawHeaders.filter((_, i) => i % 2 === 0 && _ === 'X-A').length, 254);
    assert.equal(served?.user?.username, (await fixture.api.request('GET', '/v1/me', { token })).json.id);
  });

  test('targets that are not origin-form never reach a cluster: absolute-form is routed by its path alone, CONNECT is closed, OPTIONS * is a 404', async () => {
    const from = fixture.fake.requests.length;
    const absolute = await sendRaw(`GET https://evil.example/k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    assert.equal(absolute.status, 404);
    assert.equal(absolute.json.error.code, 'NOT_FOUND');
    const connectAnswer = await sendRaw(`CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    assert.equal(connectAnswer.text, '');
    assert.ok(connectAnswer.closed);
    const star = await sendRaw('OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.equal(star.status, 404);
    assert.equal(arrived(from, PODS), 0);
    await proxyStillServes();
  });

  test('a cluster ID differing by case or by Unicode spelling names no cluster: 404 or 400, never cluster dev', async () => {
    const from = fixture.fake.requests.length;
    for (const [id, status] of [['DEV', 404], ['Dev', 404], ['d%C3%A9v', 400], ['%EF%BD%84%EF%BD%85%EF%BD%96', 400], ['de%76', 400]] as const) {
      const answer = await sendRaw(`GET /k8s/clusters/${id}${PODS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      assert.equal(answer.status, status, `${id}: ${answer.text.slice(0, 200)}`);
      assert.equal(answer.json.kind, 'Status', id);
    }
    assert.equal(arrived(from, PODS), 0);
  });

  test('malformed credentials get 401 Status UNAUTHENTICATED, never a crash or a forward', async () => {
    const from = fixture.fake.requests.length;
    const credentials = [
      'Authorization: Bearer',
      'Authorization: Bearer ',
      `Authorization: Bearer ${token.replace(':', ': ')}`,
      'Authorization: Bearer t-\u00c3\u00bc:\u00c3\u009f',
      'Authorization: Basic !!!***',
      `Authorization: Basic ${Buffer.from('admin:bootstrap-Pa55word-e2e').toString('base64')}`,
      `Authorization: Bearer ${'x'.repeat(15_000)}`,
    ];
    for (const header of credentials) {
      const answer = await sendRaw(`GET /k8s/clusters/dev${PODS} HTTP/1.1\r\nHost: localhost\r\n${header}\r\n\r\n`);
      assert.equal(answer.status, 401, header.slice(0, 60));
      assert.equal(answer.json.details.causes[0].reason, 'UNAUTHENTICATED', header.slice(0, 60));
    }
    assert.equal(arrived(from, PODS), 0);
    await proxyStillServes();
  });

  test('a REST API or console body that never arrives in full gets 408 REQUEST_TIMEOUT and a closed connection, while a body on a cluster path streams on', async () => {
    // The cluster path's request starts first and is finished only after both 408s arrived:
    // had the limit applied to it, it would have been cut before them.
    const streamed = tls.connect({ host: '127.0.0.1', port, ca: fixture.proxy.caPem!, servername: 'localhost' });
    await new Promise((resolve) => streamed.once('secureConnect', resolve));
    const configMap = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'trickled' }, data: { a: 'b' } });
    streamed.write(
      `POST /k8s/clusters/dev/api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${configMap.length}\r\nConnection: close\r\n\r\n${configMap.slice(0, 10)}`,
    );
    for (const [path, contentType] of [['/v1/login', 'application/json'], ['/console/login', 'application/x-www-form-urlencoded']]) {
      const answer = await sendRaw(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${contentType}\r\nContent-Length: 100\r\n\r\n{"provider"`);
      assert.equal(answer.status, 408, `${path}: ${answer.text.slice(0, 300)}`);
      assert.equal(answer.json.error.code, 'REQUEST_TIMEOUT', path);
      assert.match(answer.text, /\r\nConnection: close\r\n/i, path);
    }
    let received = '';
    streamed.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    const closed = new Promise((resolve) => streamed.once('close', resolve));
    streamed.write(configMap.slice(10));
    await closed;
    assert.match(received, /^HTTP\/1\.1 201 /);
    assert.equal(fixture.fake.requests.filter((request) => request.path === '/api/v1/namespaces/default/configmaps' && request.method === 'POST' && request.body.toString() === configMap).length, 1);
  });

  test('a body that never arrives in full after the proxy already answered (health, a refusal before the body is read) has its connection cut too', { timeout: 30_000 }, async () => {
    // A body of a type the API does not read is refused before it is read (415).
    for (const [method, path, contentType, status] of [['GET', '/healthz', 'application/json', 200], ['POST', '/v1/tokens', 'text/plain', 415], ['GET', '/v1/no-such-route', 'application/json', 404]] as const) {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: fixture.proxy.caPem!, servername: 'localhost' });
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${contentType}\r\nContent-Length: 100\r\n\r\n{"name"`);
      let received = '';
      socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
      await new Promise((resolve) => socket.once('close', resolve));
      assert.match(received, new RegExp(`^HTTP/1\\.1 ${status} `), `${method} ${path}: ${received.slice(0, 200)}`);
    }
    await proxyStillServes();
  });

  /** The proxy's gauge of open watches, scraped. */
  async function openWatches(): Promise<number> {
    const text = await (await fetch(`${fixture.proxy.metricsUrl}/metrics`)).text();
    return Number(/^kubegate_proxy_active_streams\{kind="watch"\} (\d+)$/m.exec(text)?.[1]);
  }

  test('pipelined watches end upstream when their client goes away, not only the first one', async () => {
    const watches = 5;
    const socket = tls.connect({ host: '127.0.0.1', port, ca: fixture.proxy.caPem!, servername: 'localhost' });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.on('error', () => {});
    socket.write(`GET /k8s/clusters/dev${PODS}?watch=1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`.repeat(watches));
    await eventually(async () => (await openWatches()) === watches, 5000, 'every pipelined watch open');
    socket.destroy();
    await eventually(async () => (await openWatches()) === 0, 5000, 'every watch closed');
    await fixture.fake.waitUntil(() => fixture.fake.openWatches === 0, 5000);
  });

  test('more than 16 requests of one connection in flight: the 17th is refused 429 and nothing after it reaches the cluster', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: fixture.proxy.caPem!, servername: 'localhost' });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.on('error', () => {});
    const from = fixture.fake.requests.length;
    // The first answer is a watch, which ends only after its 2 s: until then every request
    // behind it stays in flight (all 101 are parsed from the one write long before).
    const watch = `GET /k8s/clusters/dev${PODS}?watch=1&timeoutSeconds=2 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    const list = `GET /k8s/clusters/dev${SMUGGLED} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    socket.write(watch + list.repeat(100));
    await eventually(() => arrived(from, SMUGGLED) === 15, 5000, 'the 15 lists behind the watch');
    // The watch's end lets the queued answers out: 15 lists, then the refusal, then the close.
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    await new Promise((resolve) => socket.once('close', resolve));
    const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
    assert.deepEqual(statuses, [200, ...Array(15).fill(200), 429]);
    assert.match(received, /"code":"TOO_MANY_PIPELINED_REQUESTS"/);
    assert.equal(arrived(from, SMUGGLED), 15, 'nothing past the bound reached the cluster');
  });

  test('an agent that speaks HTTP/2 with an oversized frame after the 101 loses only its own tunnel', async () => {
    const created = await fixture.api.request('POST', '/v1/clusters', { token, body: { id: 'edge', mode: 'agent' } });
    assert.equal(created.status, 201, created.text);
    const registration = new URL(created.json.import.url).pathname.replace(/^\/v1\/import\//, '').replace(/\.yaml$/, '');
    const exchanged = await fixture.api.request('POST', '/v1/agent/register', { headers: { authorization: `Bearer ${registration}` }, body: { clusterId: 'edge', agentId: 'hostile' } });
    assert.equal(exchanged.status, 201, exchanged.text);
    const socket = tls.connect({ host: '127.0.0.1', port, ca: fixture.proxy.caPem!, servername: 'localhost' });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(`GET /v1/tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: kubegate-tunnel/1\r\nKubegate-Cluster: edge\r\nAuthorization: Bearer ${exchanged.json.credential}\r\n\r\n`);
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await eventually(() => received.includes('\r\n\r\n'), 5000, 'the answer to the tunnel request');
    assert.match(received, /^HTTP\/1\.1 101 /);
    // A SETTINGS frame header announcing 16 MiB - 1, far above the 16 KiB frame size every peer must accept.
    socket.write(Buffer.from([0xff, 0xff, 0xff, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]));
    socket.write(Buffer.alloc(64 * 1024, 0x41));
    await closed;
    const cluster = await fixture.api.request('GET', '/v1/clusters/edge', { token });
    assert.equal(cluster.json.agent.state, 'disconnected');
    await proxyStillServes();
  });
});

describe('hostile TokenReviews on the webhook wire', () => {
  let fake: FakeKubeApiServer;
  let webhook: RunningWebhook;
  let kubeconfig: WrittenKubeconfig;

  before(async () => {
    fake = await startFakeKubeApiServer({ token: 'webhook-hostile-token-0123' });
    kubeconfig = await writeKubeconfig({ server: fake.url, caPem: fake.caPem, token: 'webhook-hostile-token-0123' });
    webhook = await startWebhook(loadWebhookConfig({ env: {}, flags: { listen: '127.0.0.1:0', kubeconfig: kubeconfig.path } }), {
      logger: createLogger({ level: 'silent', name: 'webhook' }),
      bodyTimeoutMs: 1000,
    });
    await webhook.source.synced();
  });
  after(async () => {
    await webhook?.stop();
    await fake?.close();
    await kubeconfig?.remove();
  });

  /** One raw request on a fresh connection; the status and the parsed JSON body. */
  function sendRaw(payload: string, { halfClose = true } = {}): Promise<{ status: number; json: any }> {
    // json: the parsed body when it is a JSON object, else the text
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(new URL(webhook.url).port), '127.0.0.1', () => (halfClose ? socket.end(payload) : socket.write(payload)));
      let text = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        const body = text.slice(text.indexOf('\r\n\r\n') + 4);
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), json: body.startsWith('{') ? JSON.parse(body) : body });
      });
    });
  }
  const post = (body: string): string =>
    `POST /v1/authenticate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  const review = (spec: unknown): string => JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec });

  test('a body over 64 KiB sent chunked, without Content-Length, is 413 too, because the limit counts bytes read, not the header', async () => {
    const chunk = `${(16_384).toString(16)}\r\n${' '.repeat(16_384)}\r\n`;
    const answer = await sendRaw(
      `POST /v1/authenticate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk.repeat(5)}0\r\n\r\n`,
    );
    assert.equal(answer.status, 413);
    assert.equal(answer.json.details.causes[0].reason, 'PAYLOAD_TOO_LARGE');
  });

  test('a TokenReview body that never arrives in full gets 408 REQUEST_TIMEOUT and a closed connection', async () => {
    const body = review({ token: 'a:b' });
    const answer = await sendRaw(`POST /v1/authenticate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 10}\r\n\r\n${body}`, { halfClose: false });
    assert.equal(answer.status, 408);
    assert.equal(answer.json.error.code, 'REQUEST_TIMEOUT');
  });

  test('odd JSON is a 400 naming the field, or a plain refusal of the token, never a crash', async () => {
    const refused: Array<[string, string]> = [
      ['['.repeat(30_000) + ']'.repeat(30_000), 'body'],
      [review({ token: 123 }), 'spec.token'],
      [review({ token: ['a:b'] }), 'spec.token'],
      [review(null), 'spec'],
      [JSON.stringify({ kind: 'TokenReview', spec: { token: 'a:b' } }), 'apiVersion'],
      [review({ token: 'a:b', audiences: Array.from({ length: 5000 }, (_, i) => `aud-${i}`) }), 'spec.audiences'],
    ];
    for (const [body, field] of refused) {
      const answer = await sendRaw(post(body));
      assert.equal(answer.status, 400, body.slice(0, 80));
      assert.equal(answer.json.details.causes[0].field, field, body.slice(0, 80));
    }
    // Malformed tokens (not name:secret with a valid name) are a plain, cacheable "no".
    for (const token of ['tök:sëcret', 'a\u0000b:c', '\u202e:x', `a:${'b'.repeat(60_000)}`]) {
      const answer = await sendRaw(post(review({ token })));
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json.status, { authenticated: false }, token.slice(0, 20));
    }
    // With duplicate keys the last one counts, as in JSON.parse and Go's encoding/json alike.
    const duplicate = await sendRaw(post('{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"a:b"},"spec":{"token":"tök:x"}}'));
    assert.deepEqual(duplicate.json.status, { authenticated: false });
    assert.equal((await sendRaw('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')).status, 200);
  });
});
