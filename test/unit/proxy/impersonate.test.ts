import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { isKubegateError } from '../../../src/errors.js';
import { makeUserInfo, type UserInfo } from '../../../src/auth/user.js';
import { encodeExtraKey, impersonationHeaders } from '../../../src/proxy/impersonate.js';

function rawUser(fields: Partial<UserInfo>): UserInfo {
  return Object.freeze({ name: 'u-aaaaaaaaaaaa', uid: 'u-aaaaaaaaaaaa', groups: [], extra: {}, ...fields });
}

describe('impersonationHeaders', () => {
  it('lists User, Uid, each Group and each Extra value in order', () => {
    const user = makeUserInfo({
      name: 'u-aaaaaaaaaaaa',
      groups: ['local:devs', 'system:authenticated'],
      extra: { 'kubegate.io/login-name': ['alice'], 'kubegate.io/provider': ['local'], scopes: ['a', 'b'] },
    });
    assert.deepEqual(impersonationHeaders(user), [
      'Impersonate-User', 'u-aaaaaaaaaaaa',
      'Impersonate-Uid', 'u-aaaaaaaaaaaa',
      'Impersonate-Group', 'local:devs',
      'Impersonate-Group', 'system:authenticated',
      'Impersonate-Extra-kubegate.io%2flogin-name', 'alice',
      'Impersonate-Extra-kubegate.io%2fprovider', 'local',
      'Impersonate-Extra-scopes', 'a',
      'Impersonate-Extra-scopes', 'b',
    ]);
  });

  it('omits Impersonate-Uid when the uid is empty, because older API servers reject it', () => {
    assert.deepEqual(impersonationHeaders(rawUser({ uid: '' })), ['Impersonate-User', 'u-aaaaaaaaaaaa']);
  });

  it('computes the list once per UserInfo object, because the hot path sees the same cached user again and again', () => {
    const user = makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: ['g'] });
    const first = impersonationHeaders(user);
    assert.equal(impersonationHeaders(user), first);
    assert.ok(Object.isFrozen(first));
  });

  it('refuses CR, LF, NUL and other control characters in any value, because they would split or forge headers', () => {
    for (const user of [
      rawUser({ name: 'u-a\r\nImpersonate-Group: system:masters' }),
      rawUser({ groups: ['ops\nx'] }),
      rawUser({ uid: 'a\u0000b' }),
      rawUser({ extra: { key: ['v\tx'] } }),
      rawUser({ groups: ['del\u007f'] }),
    ]) {
      assert.throws(() => impersonationHeaders(user), (err) => isKubegateError(err, 'IDENTITY_NAME_INVALID'));
    }
  });

  it('refuses leading or trailing spaces, because HTTP strips them and the API server would see another name', () => {
    assert.throws(() => impersonationHeaders(rawUser({ groups: ['ops '] })), (err) => isKubegateError(err, 'IDENTITY_NAME_INVALID'));
    assert.throws(() => impersonationHeaders(rawUser({ groups: [' ops'] })), (err) => isKubegateError(err, 'IDENTITY_NAME_INVALID'));
    assert.throws(() => impersonationHeaders(rawUser({ groups: [''] })), (err) => isKubegateError(err, 'IDENTITY_NAME_INVALID'));
  });

  it('sends non-ASCII values as their UTF-8 bytes, as Go clients do and the API server expects', async () => {
    const user = rawUser({ groups: ['ldap:cn=José,dc=例え'] });
    const headers = impersonationHeaders(user);
    const server = createServer((req, res) => {
      const raw = req.rawHeaders;
      const index = raw.findIndex((name) => name === 'Impersonate-Group');
      res.end(Buffer.from(raw[index + 1] as string, 'latin1'));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false, headers: ['Host', 'localhost', ...headers] });
      req.end();
      const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString('utf8'), 'ldap:cn=José,dc=例え');
    } finally {
      server.close();
    }
  });
});

describe('encodeExtraKey', () => {
  it('percent-encodes bytes that are not header token characters, as Kubernetes documents', () => {
    assert.equal(encodeExtraKey('kubegate.io/login-name'), 'kubegate.io%2flogin-name');
    assert.equal(encodeExtraKey('acme.com/project'), 'acme.com%2fproject');
    assert.equal(encodeExtraKey('a b:c'), 'a%20b%3ac');
  });

  it('encodes "%" itself, because the API server percent-decodes the key', () => {
    assert.equal(encodeExtraKey('100%'), '100%25');
  });

  it('lower-cases keys and encodes non-ASCII as UTF-8 bytes', () => {
    assert.equal(encodeExtraKey('Acme.COM/Team'), 'acme.com%2fteam');
    assert.equal(encodeExtraKey('é'), '%c3%a9');
  });

  it('keeps every RFC 7230 token character except "%"', () => {
    assert.equal(encodeExtraKey("!#$&'*+-.^_`|~09az"), "!#$&'*+-.^_`|~09az");
  });

  it('round-trips through lower-casing and percent-decoding, which is what the API server does', () => {
    for (const key of ['kubegate.io/login-name', 'a%b', 'x y/z', 'ключ']) {
      assert.equal(decodeURIComponent(encodeExtraKey(key).toLowerCase()), key.toLowerCase());
    }
  });

  it('refuses an empty key', () => {
    assert.throws(() => encodeExtraKey(''), (err) => isKubegateError(err, 'IDENTITY_NAME_INVALID'));
  });
});
