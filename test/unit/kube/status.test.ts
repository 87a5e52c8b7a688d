import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { KubegateError } from '../../../src/errors.js';
import { statusBody, statusFromError, statusReason, writeStatus, writeStatusToSocket } from '../../../src/kube/status.js';

describe('statusFromError', () => {
  it('builds a Kubernetes Status whose cause carries the kubegate code, because kubectl prints reason and message', () => {
    assert.deepEqual(statusFromError(new KubegateError('FORBIDDEN')), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'forbidden',
      reason: 'Forbidden',
      details: { causes: [{ reason: 'FORBIDDEN' }] },
      code: 403,
    });
  });

  it('names the field in the cause when the error has one', () => {
    const status = statusFromError(new KubegateError('CONFIG_INVALID', 'bad server', { field: 'cluster.server' }));
    assert.deepEqual(status.details.causes, [{ reason: 'CONFIG_INVALID', field: 'cluster.server' }]);
    assert.equal(status.message, 'bad server');
    assert.equal(status.reason, 'InternalError');
  });

  it('never puts the cause into the body, because causes may hold upstream detail or secrets', () => {
    const body = statusBody(new KubegateError('UPSTREAM_UNREACHABLE', undefined, { cause: new Error('secret-detail') })).toString();
    assert.doesNotMatch(body, /secret-detail/);
  });

  it('maps HTTP statuses to Kubernetes reasons', () => {
    assert.equal(statusReason(401), 'Unauthorized');
    assert.equal(statusReason(404), 'NotFound');
    assert.equal(statusReason(502), 'ServiceUnavailable');
    assert.equal(statusReason(503), 'ServiceUnavailable');
    assert.equal(statusReason(504), 'Timeout');
    assert.equal(statusReason(418), 'BadRequest');
    assert.equal(statusReason(599), 'InternalError');
  });

  it('reuses the serialised body of catalog-message errors, because refusals sit on the hot path', () => {
    assert.equal(statusBody(new KubegateError('UNAUTHENTICATED')), statusBody(new KubegateError('UNAUTHENTICATED')));
    assert.notEqual(statusBody(new KubegateError('BAD_REQUEST', 'one')), statusBody(new KubegateError('BAD_REQUEST', 'one')));
    assert.equal(JSON.parse(statusBody(new KubegateError('BAD_REQUEST', 'one')).toString()).message, 'one');
  });
});

describe('writeStatus', () => {
  it('answers with the status code, JSON content type and the Status body', async () => {
    const server = createServer((_req, res) => writeStatus(res, new KubegateError('NOT_FOUND')));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false });
      req.end();
      const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      assert.equal(res.statusCode, 404);
      assert.equal(res.headers['content-type'], 'application/json');
      assert.equal(JSON.parse(Buffer.concat(chunks).toString()).reason, 'NotFound');
    } finally {
      server.close();
    }
  });

  it('cuts the connection when the response has already started, because a Status cannot follow a body', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      writeStatus(res, new KubegateError('UPSTREAM_UNREACHABLE'));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false });
      req.end();
      const failure = await new Promise<Error>((resolve) => {
        req.on('error', resolve);
        req.on('response', (res) => {
          res.on('error', resolve);
          res.resume();
        });
      });
      assert.match(failure.message, /aborted|socket hang up/);
    } finally {
      server.close();
    }
  });
});

describe('writeStatusToSocket', () => {
  it('writes a complete HTTP answer with Connection: close and ends the socket', async () => {
    const written: Buffer[] = [];
    let ended = false;
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        written.push(Buffer.from(chunk));
        callback();
      },
      final(callback) {
        ended = true;
        callback();
      },
    });
    writeStatusToSocket(socket, new KubegateError('ORIGIN_REFUSED'));
    await once(socket, 'finish');
    const text = Buffer.concat(written).toString();
    const [head, body] = text.split('\r\n\r\n') as [string, string];
    assert.match(head, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(head, /\r\nConnection: close/);
    assert.match(head, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(body)}`));
    assert.equal(JSON.parse(body).details.causes[0].reason, 'ORIGIN_REFUSED');
    assert.equal(ended, true);
    socket.destroy();
  });
});
