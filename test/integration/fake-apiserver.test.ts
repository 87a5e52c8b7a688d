/**
 * Proves the fake kube-apiserver is faithful enough to stand in for a real one: real
 * kubectl binaries (the system dispatcher, which picks 1.32 from the fake's /version, and
 * Debian's 1.20) talk to it directly, and its strictness is checked with raw requests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import { createCertificateAuthority, issueClientCertificate } from '../../src/pki/certificates.js';
import { makePod, startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { attachEcho, buildKubeconfig, portForwardEcho, runKubectl, spawnKubectl, writeKubeconfig } from '../support/kubectl.js';
import { ECHO_PORT } from '../fakes/spdy-portforward.js';
import type { KubectlBinary } from '../support/kubectl.js';

const token = 'fake-token-0123456789';

interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function send(fake: FakeKubeApiServer, path: string, headers: OutgoingHttpHeaders = {}, options: { method?: string; cert?: string; key?: string; body?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      { host: '127.0.0.1', port: fake.port, path, method: options.method ?? 'GET', headers, ca: fake.caPem, agent: false, cert: options.cert, key: options.key },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** Writes raw bytes on one TLS connection and collects what comes back until `done` says so. */
function rawExchange(fake: FakeKubeApiServer, text: string, done: (received: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: fake.port, ca: fake.caPem, servername: 'localhost' }, () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw exchange timed out; received: ${received}`));
    }, 3000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (done(received)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('error', reject);
  });
}

const binaries: ReadonlyArray<{ binary: KubectlBinary; execUpgrade: string; execProtocol: string }> = [
  { binary: 'system', execUpgrade: 'websocket', execProtocol: 'v5.channel.k8s.io' },
  { binary: '1.20', execUpgrade: 'SPDY/3.1', execProtocol: 'v4.channel.k8s.io' },
];

for (const { binary, execUpgrade, execProtocol } of binaries) {
  describe(`real kubectl (${binary}) against the fake kube-apiserver`, () => {
    let fake: FakeKubeApiServer;
    let kubeconfig: Record<string, unknown>;

    before(async () => {
      fake = await startFakeKubeApiServer({ token, version: { major: '1', minor: '32', gitVersion: 'v1.32.4' } });
      kubeconfig = buildKubeconfig({ server: fake.url, caPem: fake.caPem, token });
    });
    after(() => fake.close());

    it('prints the server-side Table for get pods, because kubectl asks for as=Table and prints its columns', async () => {
      const result = await runKubectl({ binary, kubeconfig, args: ['get', 'pods'] });
      assert.equal(result.stderr, '');
      assert.equal(result.code, 0);
      assert.match(result.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nweb-0\s+1\/1\s+Running\s+0\s+5m\nweb-1\s+1\/1\s+Running\s+0\s+5m\n$/);
      const list = fake.requests.find((request) => request.path === '/api/v1/namespaces/default/pods');
      assert.match(String(list?.headers.accept), /as=Table;v=v1;g=meta\.k8s\.io/);
      assert.equal(list?.user?.username, 'kubegate-proxy');
    });

    it('delivers an emitted event to get pods -w and closes the watch when kubectl goes away', async () => {
      const kubectl = await spawnKubectl({ binary, kubeconfig, args: ['get', 'pods', '-w'] });
      try {
        await kubectl.waitForOutput('web-1');
        await fake.waitUntil(() => fake.openWatches === 1);
        fake.emitPodEvent('ADDED', makePod(`new-${binary.replace('.', '-')}`, { phase: 'Pending' }));
        await kubectl.waitForOutput(/new-\S+\s+0\/1\s+Pending/);
      } finally {
        await kubectl.kill();
      }
      await fake.waitUntil(() => fake.openWatches === 0);
      const watch = await fake.waitForRequest((request) => request.rawQuery.includes('watch=true'));
      assert.match(watch.rawQuery, /resourceVersion=\d+/, 'kubectl watches from the list resourceVersion');
    });

    it('streams logs -f until kubectl goes away', async () => {
      const kubectl = await spawnKubectl({ binary, kubeconfig, args: ['logs', '-f', 'web-0'] });
      try {
        await kubectl.waitForOutput('web-0 log line 2\n');
        await fake.waitUntil(() => fake.openLogStreams === 1);
        fake.appendLogLine('default', 'web-0', 'appended while following');
        await kubectl.waitForOutput('appended while following\n');
      } finally {
        await kubectl.kill();
      }
      await fake.waitUntil(() => fake.openLogStreams === 0);
    });

    it(`runs exec -- echo hello over ${execUpgrade}`, async () => {
      const result = await runKubectl({ binary, kubeconfig, args: ['exec', 'web-0', '--', 'echo', 'hello'] });
      assert.equal(result.stderr, '');
      assert.equal(result.stdout, 'hello\n');
      assert.equal(result.code, 0);
      const upgrade = fake.requests.find((request) => request.path.endsWith('/exec'));
      assert.deepEqual(upgrade?.upgrade, { upgradeHeader: execUpgrade, protocol: execProtocol });
      assert.equal(upgrade?.status, 101);
      await fake.waitUntil(() => fake.openExecSessions === 0);
    });

    it(`attaches -i to the container's main process over ${execUpgrade}: each typed line comes back while attached, and closing stdin detaches`, async () => {
      const result = await attachEcho({
        binary,
        kubeconfig,
        pod: 'web-0',
        lines: ['first line\n', 'second line\n'],
        whileAttached: () => fake.waitUntil(() => fake.openAttachSessions === 1),
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'first line\nsecond line\n');
      const upgrade = fake.requests.findLast((request) => request.path === '/api/v1/namespaces/default/pods/web-0/attach');
      assert.equal(upgrade?.status, 101);
      assert.deepEqual(upgrade?.upgrade, { upgradeHeader: execUpgrade, protocol: execProtocol });
      assert.equal(upgrade?.method, execUpgrade === 'websocket' ? 'GET' : 'POST');
      const query = new URLSearchParams(upgrade?.rawQuery);
      assert.deepEqual([query.get('container'), query.get('stdin'), query.get('stdout'), query.get('stderr')], ['app', 'true', 'true', 'true']);
      await fake.waitUntil(() => fake.openAttachSessions === 0);
    });

    it(`forwards a port to the pod's echo over ${binary === '1.20' ? 'SPDY' : 'SPDY tunnelled in a WebSocket'}, and reports a port nothing listens on`, async () => {
      const result = await portForwardEcho({ binary, kubeconfig, pod: 'web-0', port: ECHO_PORT, messages: ['first connection\n', 'second connection\n'] });
      assert.deepEqual(result.echoes, ['first connection\n', 'second connection\n']);
      const upgrade = fake.requests.findLast((request) => request.path.endsWith('/pods/web-0/portforward'));
      assert.equal(upgrade?.status, 101);
      assert.deepEqual(upgrade?.upgrade, binary === '1.20' ? { upgradeHeader: 'SPDY/3.1', protocol: 'portforward.k8s.io' } : { upgradeHeader: 'websocket', protocol: 'SPDY/3.1+portforward.k8s.io' });
      await fake.waitUntil(() => fake.openPortForwardSessions === 0);

      const refused = await portForwardEcho({ binary, kubeconfig, pod: 'web-0', port: ECHO_PORT + 1, messages: ['nobody listens\n'] });
      assert.deepEqual(refused.echoes, ['']);
      assert.match(refused.stderr, /connection refused/);
    });

    it('copies stdin through exec -i -- cat and reports a non-zero exit code, because both travel on their own channels', async () => {
      const cat = await runKubectl({ binary, kubeconfig, args: ['exec', '-i', 'web-0', '--', 'cat'], stdin: 'one\ntwo\n' });
      assert.equal(cat.stdout, 'one\ntwo\n');
      assert.equal(cat.code, 0);
      const failing = await runKubectl({ binary, kubeconfig, args: ['exec', 'web-0', '--', 'sh', '-c', 'exit 3'] });
      assert.equal(failing.code, 3);
      assert.match(failing.stderr, /command terminated with exit code 3/);
    });

    it('is rejected with kubectl\'s unauthorized error for a wrong token', async () => {
      const written = await writeKubeconfig({ server: fake.url, caPem: fake.caPem, token: 'wrong' });
      try {
        assert.equal((await stat(written.path)).mode & 0o777, 0o600);
        const result = await runKubectl({ binary, kubeconfig: written.path, args: ['get', 'pods'] });
        assert.equal(result.code, 1);
        assert.match(result.stderr, /error: You must be logged in to the server \((Unauthorized|the server has asked for the client to provide credentials)\)/);
      } finally {
        await written.remove();
      }
    });

    it('decodes the impersonation headers kubectl sends into the effective user, percent-encoded extra keys included', async () => {
      const impersonating = buildKubeconfig({
        server: fake.url,
        caPem: fake.caPem,
        token,
        user: { as: 'alice', 'as-groups': ['dev', 'ops'], 'as-user-extra': { 'acme.com/project': ['p1', 'p2'] } },
      });
      const before = fake.requests.length;
      const result = await runKubectl({ binary, kubeconfig: impersonating, args: ['get', 'pods'] });
      assert.equal(result.code, 0);
      const list = fake.requests.slice(before).find((request) => request.path === '/api/v1/namespaces/default/pods');
      assert.ok(list?.rawHeaders.includes('Impersonate-Extra-Acme.com%2fproject'), 'kubectl escapes the slash');
      assert.deepEqual(list?.user, {
        username: 'alice',
        groups: ['dev', 'ops', 'system:authenticated'],
        extra: { 'acme.com/project': ['p1', 'p2'] },
        impersonated: true,
        authenticatedBy: 'token',
        requester: 'kubegate-proxy',
      });
    });
  });
}

describe('the fake kube-apiserver is strict', () => {
  let fake: FakeKubeApiServer;

  before(async () => {
    fake = await startFakeKubeApiServer({ token });
  });
  after(() => fake.close());

  it('answers a missing or wrong bearer token with the 401 Status kube-apiserver sends', async () => {
    const expected = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };
    for (const headers of [{}, { Authorization: 'Bearer wrong' }, { Authorization: `Basic ${token}` }]) {
      const response = await send(fake, '/api/v1/namespaces/default/pods', headers);
      assert.equal(response.status, 401);
      assert.equal(response.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(response.body), expected);
    }
    const refused = fake.requests.at(-1);
    assert.equal(refused?.user, undefined);
    assert.equal(refused?.status, 401);
  });

  it('rejects Impersonate-Group, -Uid or -Extra without Impersonate-User with the plain-text 500 kube-apiserver writes', async () => {
    for (const headers of [{ 'Impersonate-Group': 'system:masters' }, { 'Impersonate-Uid': 'u-1' }, { 'Impersonate-Extra-Scopes': 'all' }, { 'Impersonate-User': '', 'Impersonate-Group': 'g' }]) {
      const response = await send(fake, '/api/v1/namespaces/default/pods', { Authorization: `Bearer ${token}`, ...headers });
      assert.equal(response.status, 500, JSON.stringify(headers));
      assert.equal(response.headers['content-type'], 'text/plain; charset=utf-8');
      assert.match(response.body, /^Internal Server Error: "\/api\/v1\/namespaces\/default\/pods": .*without impersonating a user\n$/);
    }
  });

  it('forbids impersonation when configured without the RBAC verb, so fail-closed tests can see a 403', async () => {
    const strict = await startFakeKubeApiServer({ token, allowImpersonation: false });
    try {
      const response = await send(strict, '/api/v1/namespaces/default/pods', { Authorization: `Bearer ${token}`, 'Impersonate-User': 'alice' });
      assert.equal(response.status, 403);
      assert.deepEqual(JSON.parse(response.body).details, { name: 'alice', kind: 'users' });
      const plain = await send(strict, '/api/v1/namespaces/default/pods', { Authorization: `Bearer ${token}` });
      assert.equal(plain.status, 200);
    } finally {
      await strict.close();
    }
  });

  it('records raw headers exactly and treats each header line as one value, commas included, as Go does', async () => {
    const request = httpsRequest({ host: '127.0.0.1', port: fake.port, path: '/api/v1/pods?limit=1&x=%2F', ca: fake.caPem, agent: false });
    request.setHeader('authorization', `Bearer ${token}`);
    request.setHeader('IMPERSONATE-USER', 'bob');
    request.setHeader('impersonate-group', ['a,b', 'c']);
    request.setHeader('Impersonate-Extra-Example.org%2Fteam', 'x');
    request.setHeader('Impersonate-Extra-bad%zzkey', 'y');
    const status = await new Promise<number>((resolve, reject) => {
      request.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.end();
    });
    assert.equal(status, 200);
    const recorded = fake.requests.at(-1)!;
    assert.equal(recorded.path, '/api/v1/pods');
    assert.equal(recorded.rawQuery, 'limit=1&x=%2F');
    assert.deepEqual(recorded.rawHeaders.slice(0, 14), [
      'Host', `127.0.0.1:${fake.port}`,
      'authorization', `Bearer ${token}`,
      'IMPERSONATE-USER', 'bob',
      'impersonate-group', 'a,b',
      'impersonate-group', 'c',
      'Impersonate-Extra-Example.org%2Fteam', 'x',
      'Impersonate-Extra-bad%zzkey', 'y',
    ]);
    assert.deepEqual(recorded.user, {
      username: 'bob',
      groups: ['a,b', 'c', 'system:authenticated'],
      extra: { 'example.org/team': ['x'], 'bad%zzkey': ['y'] },
      impersonated: true,
      authenticatedBy: 'token',
      requester: 'kubegate-proxy',
    });
  });

  it('answers unknown paths with the NotFound Status kube-apiserver sends, and missing pods with a named NotFound', async () => {
    const unknown = await send(fake, '/apis/nope.example.com/v1/things', { Authorization: `Bearer ${token}` });
    assert.equal(unknown.status, 404);
    assert.deepEqual(JSON.parse(unknown.body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the server could not find the requested resource',
      reason: 'NotFound',
      details: {},
      code: 404,
    });
    const missingPod = await send(fake, '/api/v1/namespaces/default/pods/nope', { Authorization: `Bearer ${token}` });
    assert.equal(missingPod.status, 404);
    assert.deepEqual(JSON.parse(missingPod.body).details, { name: 'nope', kind: 'pods' });
  });

  it('answers 406 when Accept allows no JSON, and a plain PodList with a resourceVersion otherwise', async () => {
    const protobufOnly = await send(fake, '/api/v1/namespaces/default/pods', { Authorization: `Bearer ${token}`, Accept: 'application/vnd.kubernetes.protobuf' });
    assert.equal(protobufOnly.status, 406);
    const list = await send(fake, '/api/v1/namespaces/default/pods', { Authorization: `Bearer ${token}` });
    const body = JSON.parse(list.body) as { kind: string; apiVersion: string; metadata: { resourceVersion: string }; items: unknown[] };
    assert.equal(body.kind, 'PodList');
    assert.equal(body.apiVersion, 'v1');
    assert.match(body.metadata.resourceVersion, /^\d+$/);
    assert.equal(body.items.length, 2);
  });

  it('streams newline-delimited watch events and counts the watch until the client disconnects', async () => {
    const chunks: string[] = [];
    const request = httpsRequest({ host: '127.0.0.1', port: fake.port, path: '/api/v1/namespaces/default/pods?watch=1', ca: fake.caPem, agent: false, headers: { Authorization: `Bearer ${token}` } });
    const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      request.on('response', resolve);
      request.on('error', reject);
      request.end();
    });
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => chunks.push(chunk));
    assert.equal(response.headers['transfer-encoding'], 'chunked');
    await fake.waitUntil(() => fake.openWatches === 1);
    await fake.waitUntil(() => chunks.join('').split('\n').length > 2);
    fake.emitPodEvent('MODIFIED', fake.pods('default')[0]!);
    await fake.waitUntil(() => chunks.join('').includes('"MODIFIED"'));
    const events = chunks.join('').trim().split('\n').map((line) => JSON.parse(line) as { type: string; object: { kind: string } });
    assert.deepEqual(events.map((event) => `${event.type} ${event.object.kind}`), ['ADDED Pod', 'ADDED Pod', 'MODIFIED Pod']);
    request.destroy();
    await fake.waitUntil(() => fake.openWatches === 0);
  });

  it('keeps a connection usable after answering an upgrade with a non-101, as Go does, so smuggling through a proxy is observable', async () => {
    fake.answerUpgradesWith({ status: 403, headers: { 'Content-Type': 'application/json' }, body: '{"kind":"Status","code":403}' });
    try {
      const upgrade =
        'GET /api/v1/namespaces/default/pods/web-0/exec?command=echo&stdout=true HTTP/1.1\r\nHost: localhost\r\n' +
        `Authorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n';
      const smuggled = `GET /api/v1/namespaces/kube-system/pods HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`;
      const received = await rawExchange(fake, upgrade + smuggled, (text) => /PodList/.test(text));
      assert.match(received, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.match(received, /\r\n\r\n\{"kind":"Status","code":403\}HTTP\/1\.1 200 OK\r\n/);
      const [refused, second] = fake.requests.slice(-2);
      assert.equal(refused?.status, 403);
      assert.equal(second?.path, '/api/v1/namespaces/kube-system/pods');
      assert.equal(second?.socketId, refused?.socketId, 'the second request came on the same connection');
    } finally {
      fake.answerUpgradesWith(undefined);
    }
  });

  it('can answer an upgrade with a redirect, for proxies that must not follow it', async () => {
    fake.answerUpgradesWith({ status: 302, headers: { Location: 'https://127.0.0.1:1/elsewhere' } });
    try {
      const received = await rawExchange(
        fake,
        `POST /api/v1/namespaces/default/pods/web-0/exec?command=echo&stdout=true HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n` +
          'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n',
        (text) => text.includes('\r\n\r\n'),
      );
      assert.match(received, /^HTTP\/1\.1 302 Found\r\n/);
      assert.match(received, /\r\nLocation: https:\/\/127\.0\.0\.1:1\/elsewhere\r\n/);
      assert.deepEqual(fake.requests.at(-1)?.upgrade, { upgradeHeader: 'SPDY/3.1', protocol: undefined });
    } finally {
      fake.answerUpgradesWith(undefined);
    }
  });

  it('refuses an attach as kube-apiserver does: 404 for an unknown pod, 400 for an unknown container or no stream, 405 for another method', async () => {
    const spdyAttach = (method: string, path: string): string =>
      `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n` +
      'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n';
    const cases = [
      { method: 'POST', path: '/api/v1/namespaces/default/pods/ghost/attach?stdin=true', status: 404, message: 'pods "ghost" not found' },
      { method: 'POST', path: '/api/v1/namespaces/default/pods/web-0/attach?container=nope&stdin=true', status: 400, message: 'container nope is not valid for pod web-0' },
      { method: 'POST', path: '/api/v1/namespaces/default/pods/web-0/attach?container=app', status: 400, message: 'you must specify at least 1 of stdin, stdout, stderr' },
      { method: 'PUT', path: '/api/v1/namespaces/default/pods/web-0/attach?stdin=true', status: 405, message: 'the server does not allow this method on the requested resource' },
    ];
    for (const { method, path, status, message } of cases) {
      const received = await rawExchange(fake, spdyAttach(method, path), (text) => /"code":\d+\}$/.test(text));
      assert.match(received, new RegExp(`^HTTP/1\\.1 ${status} `), path);
      const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as { kind: string; code: number; message: string };
      assert.deepEqual([body.kind, body.code, body.message], ['Status', status, message], path);
    }
    assert.equal(fake.openAttachSessions, 0);
  });

  it('attaches over WebSocket v5: stdin comes back on stdout, and the close-stdin signal ends the session with Success', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${fake.port}/api/v1/namespaces/default/pods/web-0/attach?stdin=true&stdout=true`, ['v5.channel.k8s.io'], {
      ca: fake.caPem,
      headers: { Authorization: `Bearer ${token}` },
    });
    const messages: Buffer[] = [];
    const closed = new Promise<number>((resolve, reject) => {
      ws.on('close', resolve);
      ws.on('error', reject);
    });
    await new Promise((resolve) => ws.once('open', resolve));
    const echoed = new Promise((resolve) => ws.once('message', resolve));
    ws.on('message', (data: Buffer) => messages.push(data));
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('typed\n')]));
    await echoed;
    assert.equal(fake.openAttachSessions, 1);
    ws.send(Buffer.from([255, 0]));
    assert.equal(await closed, 1000);
    assert.deepEqual(
      messages.map((message) => [message[0], message.subarray(1).toString()]),
      [
        [1, 'typed\n'],
        [3, '{"metadata":{},"status":"Success"}'],
      ],
    );
    await fake.waitUntil(() => fake.openAttachSessions === 0);
  });

  it("relays a pod's proxy subresource to the pod's application, whose /stream holds its answer open until the client goes away", async () => {
    const auth = { Authorization: `Bearer ${token}` };
    const plain = await send(fake, '/api/v1/namespaces/default/pods/web-0:8080/proxy/healthz?x=1', auth, { method: 'POST' });
    assert.deepEqual([plain.status, plain.body], [200, 'web-0 POST /healthz\n']);
    const missing = await send(fake, '/api/v1/namespaces/default/pods/ghost/proxy/', auth);
    assert.equal(missing.status, 404);
    assert.match(missing.body, /pods \\"ghost\\" not found/);
    const held = httpsRequest({ host: '127.0.0.1', port: fake.port, path: '/api/v1/namespaces/default/pods/web-0/proxy/stream', headers: auth, ca: fake.caPem, agent: false });
    held.on('error', () => undefined);
    held.end();
    const [response] = (await once(held, 'response')) as [IncomingMessage];
    assert.equal(response.statusCode, 200);
    await once(response, 'data');
    await fake.waitUntil(() => fake.openProxyStreams === 1);
    response.destroy();
    await fake.waitUntil(() => fake.openProxyStreams === 0);
  });

  it('authenticates a WebSocket exec by the bearer-token subprotocol, as kube-apiserver does for browsers', async () => {
    const protocols = [`base64url.bearer.authorization.k8s.io.${Buffer.from(token).toString('base64url')}`, 'v5.channel.k8s.io'];
    const ws = new WebSocket(`wss://127.0.0.1:${fake.port}/api/v1/namespaces/default/pods/web-0/exec?command=echo&command=hi&stdout=true`, protocols, { ca: fake.caPem });
    const messages: Buffer[] = [];
    ws.on('message', (data: Buffer) => messages.push(data));
    const closeCode = await new Promise<number>((resolve, reject) => {
      ws.on('close', resolve);
      ws.on('error', reject);
    });
    assert.equal(closeCode, 1000);
    assert.equal(ws.protocol, 'v5.channel.k8s.io');
    assert.deepEqual(
      messages.map((message) => [message[0], message.subarray(1).toString()]),
      [
        [1, 'hi\n'],
        [3, '{"metadata":{},"status":"Success"}'],
      ],
    );
  });

  it('accepts client certificates signed by the configured CA as CN user and O groups', async () => {
    const clientCa = await createCertificateAuthority({ commonName: 'client-ca', validityDays: 1 });
    const client = await issueClientCertificate(clientCa, { commonName: 'kubegate-proxy-cert', organizations: ['proxies'] });
    const withCertificates = await startFakeKubeApiServer({ token, clientCaPem: clientCa.certPem });
    try {
      const response = await send(withCertificates, '/api/v1/namespaces/default/pods', {}, { cert: client.certPem, key: client.keyPem });
      assert.equal(response.status, 200);
      const recorded = withCertificates.requests.at(-1);
      assert.equal(recorded?.user?.username, 'kubegate-proxy-cert');
      assert.deepEqual(recorded?.user?.groups, ['proxies', 'system:authenticated']);
      assert.equal(recorded?.user?.authenticatedBy, 'client-certificate');
      const withoutCertificate = await send(withCertificates, '/api/v1/namespaces/default/pods');
      assert.equal(withoutCertificate.status, 401);
    } finally {
      await withCertificates.close();
    }
  });

  it('records request bodies and creates pods with a fresh resourceVersion', async () => {
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'created' }, spec: { containers: [{ name: 'c' }] } });
    const response = await new Promise<RawResponse>((resolve, reject) => {
      const request = httpsRequest(
        { host: '127.0.0.1', port: fake.port, path: '/api/v1/namespaces/default/pods', method: 'POST', ca: fake.caPem, agent: false, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
    assert.equal(response.status, 201);
    const recorded = fake.requests.at(-1)!;
    assert.equal(recorded.body.toString(), body);
    assert.equal(recorded.bodyLength, Buffer.byteLength(body));
    assert.ok(fake.pods('default').some((pod) => pod.metadata.name === 'created'));
  });

  it('destroys every connection on close, held watches included', async () => {
    const closing = await startFakeKubeApiServer({ token });
    const request = httpsRequest({ host: '127.0.0.1', port: closing.port, path: '/api/v1/pods?watch=true', ca: closing.caPem, agent: false, headers: { Authorization: `Bearer ${token}` } });
    const closed = new Promise<void>((resolve) => request.on('close', () => resolve()));
    request.on('error', () => undefined);
    request.on('response', (response) => response.resume());
    request.end();
    await closing.waitUntil(() => closing.openWatches === 1);
    assert.equal(closing.openSockets(), 1);
    await closing.close();
    await closed;
    assert.equal(closing.openSockets(), 0);
  });
});

/** One JSON request to the fake, with the configured token. */
async function call(fake: FakeKubeApiServer, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: Record<string, any> }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers = { Authorization: `Bearer ${token}`, ...(text === undefined ? {} : { 'Content-Type': contentType }) };
  const response = await send(fake, path, headers, { method, ...(text === undefined ? {} : { body: text }) });
  return { status: response.status, json: JSON.parse(response.body) as Record<string, any> };
}

const agentDeployment = (labels: Record<string, string> = { app: 'agent' }): Record<string, unknown> => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'agent' },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'agent' } },
    template: {
      metadata: { labels },
      spec: {
        containers: [
          { name: 'agent', image: 'registry.example/agent:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
          { name: 'sidecar', image: 'registry.example/sidecar:1' },
        ],
      },
    },
  },
});

describe('the fake kube-apiserver stores what kubectl apply sends, as strictly as kube-apiserver', () => {
  let fake: FakeKubeApiServer;
  before(async () => {
    fake = await startFakeKubeApiServer({ token });
  });
  after(() => fake.close());

  it('serves discovery for every kind it stores, so kubectl can map them', async () => {
    const groups = await call(fake, 'GET', '/apis');
    assert.deepEqual(
      groups.json['groups'].map((group: { name: string; preferredVersion: { groupVersion: string } }) => group.preferredVersion.groupVersion).sort(),
      ['apps/v1', 'cluster.cattle.io/v3', 'rbac.authorization.k8s.io/v1'],
    );
    const rbac = await call(fake, 'GET', '/apis/rbac.authorization.k8s.io/v1');
    assert.deepEqual(rbac.json['resources'].map((resource: { name: string }) => resource.name).sort(), ['clusterrolebindings', 'clusterroles', 'rolebindings', 'roles']);
    const core = await call(fake, 'GET', '/api/v1');
    for (const name of ['namespaces', 'serviceaccounts', 'configmaps', 'secrets', 'pods']) assert.ok(core.json['resources'].some((resource: { name: string }) => resource.name === name), name);
    assert.equal((await call(fake, 'GET', '/apis/apps')).json['preferredVersion'].version, 'v1');
    assert.equal((await call(fake, 'GET', '/apis/apps/v2')).status, 404);
  });

  it('creates a namespace, then objects in it; a create into a missing namespace is 404 and deleting the namespace removes its objects', async () => {
    const missing = await call(fake, 'POST', '/api/v1/namespaces/later/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.json['message'], 'namespaces "later" not found');
    const namespace = await call(fake, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'later' } });
    assert.equal(namespace.status, 201);
    assert.equal(namespace.json['status'].phase, 'Active');
    assert.equal((await call(fake, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'later' } })).status, 409);
    assert.equal((await call(fake, 'POST', '/api/v1/namespaces/later/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })).status, 201);
    assert.equal((await call(fake, 'DELETE', '/api/v1/namespaces/later')).status, 200);
    assert.equal((await call(fake, 'GET', '/api/v1/namespaces/later/configmaps/c')).status, 404);
    assert.equal(fake.objects('configmaps', 'later').length, 0);
  });

  it('refuses a body of another kind or version than the URL, and a name the kind does not allow', async () => {
    const wrongKind = await call(fake, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } });
    assert.equal(wrongKind.status, 400);
    assert.match(wrongKind.json['message'], /Secret in version "v1" cannot be handled as a ConfigMap/);
    const wrongVersion = await call(fake, 'POST', '/apis/apps/v1/namespaces/default/deployments', { ...agentDeployment(), apiVersion: 'apps/v1beta1' });
    assert.equal(wrongVersion.status, 400);
    const badName = await call(fake, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'Not_A_Label' } });
    assert.equal(badName.status, 422);
    assert.match(badName.json['message'], /^Namespace "Not_A_Label" is invalid: metadata\.name: Invalid value/);
    const rbacName = await call(fake, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'system:colons-are-fine' }, rules: [] });
    assert.equal(rbacName.status, 201, 'RBAC names are path segments, not DNS names');
  });

  it('validates RBAC as kube-apiserver does: rules need verbs and groups, subjects need their API group, roleRef never changes', async () => {
    const noVerbs = await call(fake, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'r' },
      rules: [{ resources: ['secrets'], verbs: [] }],
    });
    assert.equal(noVerbs.status, 422);
    assert.match(noVerbs.json['message'], /rules\[0\]\.verbs: Required value/);
    assert.match(noVerbs.json['message'], /rules\[0\]\.apiGroups: Required value/);
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'b' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'User', name: 'kubegate:sync' }],
    };
    const noGroup = await call(fake, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', binding);
    assert.equal(noGroup.status, 422);
    assert.match(noGroup.json['message'], /subjects\[0\]\.apiGroup: Unsupported value/);
    const serviceAccountWithoutNamespace = await call(fake, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { ...binding, subjects: [{ kind: 'ServiceAccount', name: 'sa' }] });
    assert.match(serviceAccountWithoutNamespace.json['message'], /subjects\[0\]\.namespace: Required value/);
    const created = await call(fake, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { ...binding, subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'kubegate:sync' }] });
    assert.equal(created.status, 201);
    const changed = await call(fake, 'PATCH', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/b', { roleRef: { name: 'cluster-admin' } }, 'application/strategic-merge-patch+json');
    assert.equal(changed.status, 422);
    assert.match(changed.json['message'], /roleRef: Invalid value: .*cannot change roleRef/);
  });

  it('refuses a Deployment whose selector does not select its template, or whose selector changes', async () => {
    const mismatch = await call(fake, 'POST', '/apis/apps/v1/namespaces/default/deployments', agentDeployment({ app: 'other' }));
    assert.equal(mismatch.status, 422);
    assert.match(mismatch.json['message'], /^Deployment\.apps "agent" is invalid: spec\.template\.metadata\.labels/);
    assert.equal((await call(fake, 'POST', '/apis/apps/v1/namespaces/default/deployments', agentDeployment())).status, 201);
    const moved = await call(fake, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/agent', { spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'x' } } } } }, 'application/merge-patch+json');
    assert.equal(moved.status, 422);
    assert.match(moved.json['message'], /spec\.selector: Invalid value: .*field is immutable/);
  });

  it('applies strategic merge patches with the merge keys of the kind, and refuses what kube-apiserver refuses', async () => {
    await call(fake, 'POST', '/apis/apps/v1/namespaces/default/deployments', { ...agentDeployment(), metadata: { name: 'merged' } });
    const path = '/apis/apps/v1/namespaces/default/deployments/merged';
    const smp = 'application/strategic-merge-patch+json';
    const patched = await call(
      fake,
      'PATCH',
      path,
      {
        spec: {
          replicas: 3,
          template: {
            spec: {
              containers: [{ name: 'agent', '$setElementOrder/env': [{ name: 'C' }, { name: 'B' }], env: [{ name: 'B', value: 'two' }, { $patch: 'delete', name: 'A' }, { name: 'C', value: '3' }] }],
            },
          },
        },
      },
      smp,
    );
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    const containers = patched.json['spec'].template.spec.containers;
    assert.deepEqual(containers.map((container: { name: string }) => container.name), ['agent', 'sidecar'], 'containers merge by name; the sidecar stays');
    assert.equal(containers[0].image, 'registry.example/agent:1');
    assert.deepEqual(containers[0].env, [{ name: 'C', value: '3' }, { name: 'B', value: 'two' }], 'env merges by name, in the order $setElementOrder gives');
    assert.equal(patched.json['spec'].replicas, 3);
    // A merge patch replaces lists whole; the same body as a JSON merge patch loses the sidecar.
    const replaced = await call(fake, 'PATCH', path, { spec: { template: { spec: { containers: [{ name: 'agent', image: 'registry.example/agent:2' }] } } } }, 'application/merge-patch+json');
    assert.deepEqual(replaced.json['spec'].template.spec.containers, [{ name: 'agent', image: 'registry.example/agent:2' }]);

    const unknownDirective = await call(fake, 'PATCH', path, { spec: { $shuffle: true } }, smp);
    assert.equal(unknownDirective.status, 400);
    const noMergeKey = await call(fake, 'PATCH', path, { spec: { template: { spec: { containers: [{ image: 'x' }] } } } }, smp);
    assert.equal(noMergeKey.status, 422);
    assert.match(noMergeKey.json['message'], /does not contain declared merge key: name/);
    const renamed = await call(fake, 'PATCH', path, { metadata: { name: 'other' } }, smp);
    assert.equal(renamed.status, 400);
    const crd = await call(fake, 'PATCH', '/apis/cluster.cattle.io/v3/namespaces/default/clusterauthtokens/x', {}, smp);
    assert.equal(crd.status, 415, 'custom resources take no strategic merge patch');
  });

  it('folds a Secret\'s stringData into data, drops unknown fields, and refuses them with fieldValidation=Strict', async () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { token: 'r-abc:def' }, data: { other: Buffer.from('x').toString('base64') }, bogus: 1 };
    const strict = await call(fake, 'POST', '/api/v1/namespaces/default/secrets?fieldValidation=Strict', secret);
    assert.equal(strict.status, 400);
    assert.match(strict.json['message'], /strict decoding error: unknown field "bogus"/);
    const created = await call(fake, 'POST', '/api/v1/namespaces/default/secrets', secret);
    assert.equal(created.status, 201);
    assert.deepEqual(created.json['data'], { other: 'eA==', token: Buffer.from('r-abc:def').toString('base64') });
    assert.equal(created.json['stringData'], undefined);
    assert.equal(created.json['bogus'], undefined);
    assert.equal(created.json['type'], 'Opaque');
    const badBase64 = await call(fake, 'POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 't' }, data: { a: 'not base64!' } });
    assert.equal(badBase64.status, 400);
    const dryRun = await call(fake, 'POST', '/api/v1/namespaces/default/secrets?dryRun=All', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dry' } });
    assert.equal(dryRun.status, 201);
    assert.equal((await call(fake, 'GET', '/api/v1/namespaces/default/secrets/dry')).status, 404, 'a dry run stores nothing');
  });
});

for (const binary of ['system', '1.20'] as const) {
  describe(`kubectl ${binary} apply against the fake kube-apiserver`, () => {
    let fake: FakeKubeApiServer;
    let kubeconfig: Record<string, unknown>;
    const manifest = (replicas: number, field = 'replicas'): string =>
      [
        'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: applied',
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: applied\ndata:\n  a: "1"',
        `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: agent\n  namespace: applied\nspec:\n  ${field}: ${replicas}\n  selector:\n    matchLabels: {app: agent}\n  template:\n    metadata:\n      labels: {app: agent}\n    spec:\n      containers:\n      - name: agent\n        image: registry.example/agent:1`,
      ].join('\n---\n');

    before(async () => {
      fake = await startFakeKubeApiServer({ token });
      kubeconfig = buildKubeconfig({ server: fake.url, caPem: fake.caPem, token });
    });
    after(() => fake.close());

    it('creates a namespace and objects in it, then patches what changed on a second apply', async () => {
      const created = await runKubectl({ binary, kubeconfig, args: ['apply', '-f', '-'], stdin: manifest(2) });
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /namespace\/applied created\nconfigmap\/settings created\ndeployment\.apps\/agent created/);
      const patched = await runKubectl({ binary, kubeconfig, args: ['apply', '-f', '-'], stdin: manifest(3) });
      assert.equal(patched.code, 0, patched.stderr);
      assert.match(patched.stdout, /configmap\/settings unchanged\ndeployment\.apps\/agent configured/);
      const patch = fake.requests.find((request) => request.method === 'PATCH');
      assert.equal(patch?.headers['content-type'], 'application/strategic-merge-patch+json');
      assert.equal((fake.objects('deployments', 'applied')[0]!['spec'] as { replicas: number }).replicas, 3);
    });

    it('fails on the client for a field the schema does not know, because kubectl validates against /openapi/v2', async () => {
      const before = fake.requests.length;
      const result = await runKubectl({ binary, kubeconfig, args: ['apply', '-f', '-'], stdin: manifest(4, 'replica') });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /unknown field "replica"/);
      assert.equal(fake.requests.slice(before).some((request) => request.method === 'PATCH' && request.path.includes('deployments')), false);
    });
  });
}

describe('the fake kube-apiserver answers SubjectAccessReviews as strictly as kube-apiserver', () => {
  let fake: FakeKubeApiServer;
  before(async () => {
    fake = await startFakeKubeApiServer({ token });
  });
  after(() => fake.close());

  const path = '/apis/authorization.k8s.io/v1/subjectaccessreviews';
  const review = (spec: Record<string, unknown>, fields: Record<string, unknown> = {}): string =>
    JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec, ...fields });
  const impersonateBob = { verb: 'impersonate', group: '', resource: 'users', name: 'bob' };
  const post = (body: string, headers: OutgoingHttpHeaders = {}): Promise<RawResponse> =>
    send(fake, path, { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers }, { method: 'POST', body });

  it('decides a valid review by the policy the test sets, records it, and answers 201 with its status', async () => {
    fake.useAccessPolicy((seen) => seen.user === 'alice' && seen.resourceAttributes?.name === 'bob');
    const before = fake.subjectAccessReviews.length;
    const allowed = await post(review({ user: 'alice', groups: ['devs'], resourceAttributes: impersonateBob }, { metadata: {} }));
    assert.equal(allowed.status, 201, allowed.body);
    assert.equal(JSON.parse(allowed.body).status.allowed, true);
    const denied = await post(review({ user: 'carol', resourceAttributes: impersonateBob }));
    assert.equal(JSON.parse(denied.body).status.allowed, false);
    assert.deepEqual(
      fake.subjectAccessReviews.slice(before).map((seen) => [seen.requester, seen.user, seen.groups, seen.resourceAttributes?.name]),
      [
        ['kubegate-proxy', 'alice', ['devs'], 'bob'],
        ['kubegate-proxy', 'carol', [], 'bob'],
      ],
    );
  });

  it('refuses what the real validation refuses: wrong kind (400), a name, no subject, both or neither attribute kinds (422)', async () => {
    const before = fake.subjectAccessReviews.length;
    const rows: [string, number, RegExp][] = [
      ['{not json', 400, /unknown format/],
      [JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: impersonateBob } }), 400, /unrecognized/],
      [JSON.stringify({ apiVersion: 'authorization.k8s.io/v1beta1', kind: 'SubjectAccessReview', spec: { user: 'a', resourceAttributes: impersonateBob } }), 400, /unrecognized/],
      [review({ user: 'a', resourceAttributes: impersonateBob }, { metadata: { name: 'x' } }), 422, /metadata: .*must be empty/],
      [review({ resourceAttributes: impersonateBob }), 422, /spec\.user: .*at least one of user or group/],
      [review({ user: 'a', resourceAttributes: impersonateBob, nonResourceAttributes: { path: '/healthz', verb: 'get' } }), 422, /cannot be specified in combination/],
      [review({ user: 'a' }), 422, /exactly one of nonResourceAttributes or resourceAttributes/],
    ];
    for (const [body, status, message] of rows) {
      const response = await post(body);
      assert.equal(response.status, status, body);
      assert.match(JSON.parse(response.body).message, message, body);
    }
    assert.equal((await send(fake, path, { Authorization: `Bearer ${token}` })).status, 405);
    assert.equal(fake.subjectAccessReviews.length, before, 'nothing invalid is recorded');
  });

  it('lets only the un-impersonated token identity create reviews, and nobody when told so (403)', async () => {
    const impersonated = await post(review({ user: 'a', resourceAttributes: impersonateBob }), { 'Impersonate-User': 'alice' });
    assert.equal(impersonated.status, 403);
    assert.match(JSON.parse(impersonated.body).message, /User "alice" cannot create resource "subjectaccessreviews"/);
    const strict = await startFakeKubeApiServer({ token, allowAccessReviews: false });
    try {
      const refused = await send(strict, path, { Authorization: `Bearer ${token}` }, { method: 'POST', body: review({ user: 'a', resourceAttributes: impersonateBob }) });
      assert.equal(refused.status, 403);
      assert.equal(strict.subjectAccessReviews.length, 0);
    } finally {
      await strict.close();
    }
  });
});

describe('the fake kube-apiserver answers SelfSubjectAccessReviews as strictly as kube-apiserver', () => {
  let fake: FakeKubeApiServer;
  const path = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
  const review = (attributes: Record<string, unknown>) => ({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: attributes });
  const post = (body: string, headers: OutgoingHttpHeaders = {}) =>
    send(fake, path, { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, { method: 'POST', body });

  before(async () => {
    fake = await startFakeKubeApiServer({ token });
  });
  after(() => fake.close());

  it("allows the token identity to impersonate what the proxy needs, and nothing else", async () => {
    const allowed = await post(JSON.stringify(review({ resourceAttributes: { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: 'kubegate.io/login-name' } })));
    assert.equal(allowed.status, 201, allowed.body);
    assert.equal(JSON.parse(allowed.body).status.allowed, true);
    const other = await post(JSON.stringify(review({ resourceAttributes: { verb: 'get', group: '', resource: 'pods', namespace: 'default' } })));
    assert.equal(JSON.parse(other.body).status.allowed, false);
    const reviews = await post(JSON.stringify(review({ resourceAttributes: { verb: 'create', group: 'authorization.k8s.io', resource: 'subjectaccessreviews' } })));
    assert.equal(JSON.parse(reviews.body).status.allowed, true, 'the proxy identity may ask the cluster about kubectl --as');
    fake.allowImpersonation = false;
    try {
      const denied = await post(JSON.stringify(review({ resourceAttributes: { verb: 'impersonate', group: '', resource: 'users' } })));
      assert.equal(JSON.parse(denied.body).status.allowed, false);
    } finally {
      fake.allowImpersonation = true;
    }
  });

  it('refuses what kube-apiserver refuses: no credentials, not JSON, another kind, neither or both attribute sets, non-string fields, GET', async () => {
    assert.equal((await send(fake, path, { 'content-type': 'application/json' }, { method: 'POST', body: '{}' })).status, 401);
    assert.equal((await post(JSON.stringify(review({ resourceAttributes: { verb: 'get' } })), { 'content-type': 'text/plain' })).status, 415);
    assert.equal((await post('{not json')).status, 400);
    const wrongKind = await post(JSON.stringify({ apiVersion: 'authorization.k8s.io/v1beta2', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'get' } } }));
    assert.equal(wrongKind.status, 400);
    assert.match(JSON.parse(wrongKind.body).message, /does not match the expected API version/);
    for (const spec of [{}, { resourceAttributes: { verb: 'get' }, nonResourceAttributes: { path: '/healthz', verb: 'get' } }]) {
      const invalid = await post(JSON.stringify(review(spec)));
      assert.equal(invalid.status, 422, invalid.body);
      assert.equal(JSON.parse(invalid.body).reason, 'Invalid');
      assert.match(JSON.parse(invalid.body).message, /exactly one of nonResourceAttributes or resourceAttributes must be specified/);
    }
    assert.equal((await post(JSON.stringify(review({ resourceAttributes: { verb: 7 } })))).status, 400);
    assert.equal((await send(fake, path, { authorization: `Bearer ${token}` })).status, 405);
  });
});
