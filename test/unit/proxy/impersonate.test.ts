import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { isKubegateError } from '../../../src/errors.js';
import { makeUserInfo, type UserInfo } from '../../../src/auth/user.js';
import {
  describeAttribute,
  encodeExtraKey,
  impersonationAttributes,
  impersonationHeaders,
  MAX_IMPERSONATION_ATTRIBUTES,
  requestedIdentity,
} from '../../../src/proxy/impersonate.js';

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

describe('requestedIdentity (a client\'s own Impersonate-* lines, read as kube-apiserver reads them)', () => {
  it('is undefined without lines, or with only an empty Impersonate-User', () => {
    assert.equal(requestedIdentity([]), undefined);
    assert.equal(requestedIdentity(['Impersonate-User', '']), undefined);
  });

  it('reads names in any case, the first user and uid, every group line whole, and merges extra values by decoded key', () => {
    const identity = requestedIdentity([
      'IMPERSONATE-USER', 'bob',
      'impersonate-user', 'mallory',
      'Impersonate-Group', 'a,b',
      'iMpErSoNaTe-GrOuP', 'c',
      'Impersonate-Uid', '42',
      'impersonate-uid', '43',
      'Impersonate-Extra-Acme.com%2FProject', 'x',
      'impersonate-extra-acme.com%2fproject', 'y',
      'Impersonate-Extra-bad%zzkey', 'z',
      'Impersonate-Extra-Scopes', 'view',
    ]);
    assert.deepEqual(identity, { name: 'bob', uid: '42', groups: ['a,b', 'c'], extra: { 'acme.com/project': ['x', 'y'], 'bad%zzkey': ['z'], scopes: ['view'] } });
    assert.ok(Object.isFrozen(identity) && Object.isFrozen(identity?.groups) && Object.isFrozen(identity?.extra['scopes']));
  });

  it('decodes UTF-8 values node read as latin1, and forwards them byte for byte', () => {
    const wire = Buffer.from('José', 'utf8').toString('latin1');
    const identity = requestedIdentity(['Impersonate-User', wire])!;
    assert.equal(identity.name, 'José');
    assert.deepEqual(impersonationHeaders(identity), ['Impersonate-User', wire]);
  });

  it('forwards extra keys encoded so the API server decodes the same key', () => {
    const identity = requestedIdentity(['Impersonate-User', 'bob', 'Impersonate-Extra-acme.com%2Fproject', 'x', 'Impersonate-Extra-bad%zz', 'y'])!;
    assert.deepEqual(impersonationHeaders(identity), ['Impersonate-User', 'bob', 'Impersonate-Extra-acme.com%2fproject', 'x', 'Impersonate-Extra-bad%25zz', 'y']);
  });

  it('refuses groups, a uid or extras without a user, an empty group or key, control characters and too many attributes (IMPERSONATION_INVALID)', () => {
    const refused = [
      ['Impersonate-Group', 'system:masters'],
      ['Impersonate-Uid', '1'],
      ['Impersonate-Extra-scopes', 'all'],
      ['Impersonate-User', '', 'Impersonate-Group', 'g'],
      ['Impersonate-User', 'bob', 'Impersonate-Group', ''],
      ['Impersonate-User', 'bob', 'Impersonate-Extra-', 'x'],
      ['Impersonate-User', 'bob\u0000', 'Impersonate-Group', 'g'],
      ['Impersonate-User', 'bob', ...Array.from({ length: MAX_IMPERSONATION_ATTRIBUTES }, (_, i) => ['Impersonate-Group', `g${i}`]).flat()],
    ];
    for (const lines of refused) {
      assert.throws(() => requestedIdentity(lines), (err) => isKubegateError(err, 'IMPERSONATION_INVALID'), lines.slice(0, 4).join(' '));
    }
    const most = ['Impersonate-User', 'bob', ...Array.from({ length: MAX_IMPERSONATION_ATTRIBUTES - 1 }, (_, i) => ['Impersonate-Group', `g${i}`]).flat()];
    assert.equal(requestedIdentity(most)?.groups.length, MAX_IMPERSONATION_ATTRIBUTES - 1);
  });
});

describe('impersonationAttributes', () => {
  it('lists the user, each group, each extra value and the uid, with the resources kube-apiserver authorizes', () => {
    const identity = requestedIdentity(['Impersonate-User', 'bob', 'Impersonate-Group', 'ops', 'Impersonate-Extra-scopes', 'a', 'Impersonate-Extra-scopes', 'b', 'Impersonate-Uid', '42'])!;
    assert.deepEqual(impersonationAttributes(identity).map(describeAttribute), ['users "bob"', 'groups "ops"', 'userextras/scopes "a"', 'userextras/scopes "b"', 'uids "42"']);
    assert.deepEqual(impersonationAttributes(identity)[2], { group: 'authentication.k8s.io', resource: 'userextras', subresource: 'scopes', namespace: '', name: 'a' });
  });

  it('asks about system:serviceaccount:<ns>:<name> as the ServiceAccount, and any other spelling as a user', () => {
    const attribute = (user: string) => impersonationAttributes(requestedIdentity(['Impersonate-User', user])!)[0];
    assert.deepEqual(attribute('system:serviceaccount:ci:deployer'), { group: '', resource: 'serviceaccounts', subresource: '', namespace: 'ci', name: 'deployer' });
    assert.equal(describeAttribute(attribute('system:serviceaccount:ci:deployer')!), 'serviceaccounts "ci/deployer"');
    assert.equal(attribute('system:serviceaccount:kube-system:my.sa')?.resource, 'serviceaccounts');
    for (const user of ['system:serviceaccount:ci', 'system:serviceaccount:ci:a:b', 'system:serviceaccount::x', 'system:serviceaccount:CI:x', 'system:serviceaccounts:ci:x', 'system:serviceaccount:ci:Bad_Name']) {
      assert.deepEqual(attribute(user), { group: '', resource: 'users', subresource: '', namespace: '', name: user }, user);
    }
  });
});
