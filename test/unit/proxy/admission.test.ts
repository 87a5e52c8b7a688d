/**
 * Admission as a table: every refusal, the Status the client gets (HTTP code, reason, cause)
 * and what the audit record learns — without a socket. The same requests go over real
 * sockets in test/integration/forward.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { authenticated, undecided, unauthenticated, type AuthResult, type TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { makeUserInfo, type UserInfo } from '../../../src/auth/user.js';
import { createUpstreamPool } from '../../../src/clusters/upstreams.js';
import { KubegateError, type ErrorCode } from '../../../src/errors.js';
import { statusFromError } from '../../../src/kube/status.js';
import { admit, type AdmissionDeps, type RequestHead } from '../../../src/proxy/admission.js';
import type { Cluster } from '../../../src/store/store.js';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const alice = makeUserInfo({ name: 'u-aaaaaaaaaaaa', groups: ['local:devs', 'system:authenticated'], extra: { 'kubegate.io/login-name': ['alice'] } });
const bob = makeUserInfo({ name: 'u-bbbbbbbbbbbb', groups: ['system:authenticated'] });

const answers = new Map<string, AuthResult | Error>([
  ['t-alice:s', authenticated(alice, { name: 't-alice', expiresAt: null, clusterId: null })],
  ['t-bob:s', authenticated(bob, { name: 't-bob', expiresAt: null, clusterId: null })],
  ['t-expired:s', authenticated(alice, { name: 't-expired', expiresAt: new Date(NOW), clusterId: null })],
  ['t-scoped:s', authenticated(alice, { name: 't-scoped', expiresAt: null, clusterId: 'other' })],
  ['t-undecided:s', undecided(new KubegateError('STORE_UNAVAILABLE'))],
  ['t-throws:s', new Error('authenticator bug')],
]);
const authenticator: TokenAuthenticator = {
  async authenticateToken(token) {
    const answer = answers.get(token) ?? unauthenticated('TOKEN_INVALID');
    if (answer instanceof Error) throw answer;
    return answer;
  },
};

function cluster(id: string, server: string): Cluster {
  return {
    id,
    displayName: id,
    server,
    mode: 'direct',
    caPem: null,
    credentials: { kind: 'token', token: `proxy-token-${id}` },
    insecureSkipTlsVerify: false,
    ace: { enabled: false, fqdn: null, caPem: null, nodes: [] },
    createdAt: new Date(0),
    updatedAt: new Date(0),
    deletingSince: null,
    syncHoldsObjects: false,
  };
}

const clusters = new Map([
  ['dev', cluster('dev', 'http://10.0.0.1:6443/base')],
  // Plain http without allowPlainHttp: an upstream that cannot be built.
  ['cleartext', cluster('cleartext', 'http://10.0.0.2:6443')],
]);
const upstreams = createUpstreamPool({ allowPlainHttp: false });
const devUpstreams = createUpstreamPool({ allowPlainHttp: true });
after(() => {
  upstreams.close();
  devUpstreams.close();
});

const deps: AdmissionDeps = {
  authenticator,
  getCluster: (id) => clusters.get(id),
  // alice may use every cluster, `ghost` included (which does not exist); bob none.
  authorize: (user: UserInfo) => (user === alice ? 'member' : null),
  upstreams: { get: (c) => (c.id === 'dev' ? devUpstreams : upstreams).get(c) },
  allowedOrigins: ['https://kubegate.example.com'],
};

function head(url: string, headers: readonly string[] = [], upgrade = false): RequestHead {
  return { method: upgrade ? 'POST' : 'GET', url, rawHeaders: headers, upgrade };
}

const ALICE = ['Authorization', 'Bearer t-alice:s'];
const UPGRADE = ['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1'];

interface Refusal {
  readonly name: string;
  readonly head: RequestHead;
  readonly status: number;
  readonly reason: string;
  /** The cause in the Status body: what the client is told. */
  readonly cause: ErrorCode;
  /** What the audit record says; the cause unless authentication knows better. */
  readonly auditCode?: ErrorCode;
  /** The authenticated caller the audit record names, if any. */
  readonly user?: string;
}

const refusals: readonly Refusal[] = [
  { name: 'a path that climbs out of its cluster', head: head('/k8s/clusters/dev/../ghost/api', ALICE), status: 400, reason: 'BadRequest', cause: 'BAD_REQUEST' },
  { name: 'an encoded slash in the path', head: head('/k8s/clusters/dev/api%2fv1', ALICE), status: 400, reason: 'BadRequest', cause: 'BAD_REQUEST' },
  { name: 'a cluster ID that cannot be one', head: head('/k8s/clusters/Dev/api', ALICE), status: 404, reason: 'NotFound', cause: 'NOT_FOUND' },
  { name: 'a Connection header naming Authorization', head: head('/k8s/clusters/dev/api', [...ALICE, 'Connection', 'Authorization']), status: 400, reason: 'BadRequest', cause: 'CONNECTION_HEADER_REFUSED' },
  { name: 'an upgrade from a foreign Origin', head: head('/k8s/clusters/dev/api/v1/namespaces/x/pods/p/exec', [...ALICE, ...UPGRADE, 'Origin', 'https://evil.example'], true), status: 403, reason: 'Forbidden', cause: 'ORIGIN_REFUSED' },
  { name: 'no Authorization header', head: head('/k8s/clusters/dev/api'), status: 401, reason: 'Unauthorized', cause: 'UNAUTHENTICATED' },
  { name: 'a Basic Authorization header', head: head('/k8s/clusters/dev/api', ['Authorization', 'Basic YWxpY2U6cHc=']), status: 401, reason: 'Unauthorized', cause: 'UNAUTHENTICATED' },
  { name: 'an empty bearer token', head: head('/k8s/clusters/dev/api', ['Authorization', 'Bearer   ']), status: 401, reason: 'Unauthorized', cause: 'UNAUTHENTICATED' },
  { name: 'an unknown token', head: head('/k8s/clusters/dev/api', ['Authorization', 'Bearer t-nobody:s']), status: 401, reason: 'Unauthorized', cause: 'UNAUTHENTICATED', auditCode: 'TOKEN_INVALID' },
  { name: 'a token that expired after it was cached', head: head('/k8s/clusters/dev/api', ['Authorization', 'Bearer t-expired:s']), status: 401, reason: 'Unauthorized', cause: 'UNAUTHENTICATED', auditCode: 'TOKEN_EXPIRED', user: alice.name },
  { name: 'an authenticator that could not decide', head: head('/k8s/clusters/dev/api', ['Authorization', 'Bearer t-undecided:s']), status: 503, reason: 'ServiceUnavailable', cause: 'AUTH_UNDECIDED' },
  { name: 'an authenticator that throws', head: head('/k8s/clusters/dev/api', ['Authorization', 'Bearer t-throws:s']), status: 503, reason: 'ServiceUnavailable', cause: 'AUTH_UNDECIDED' },
  { name: 'a token scoped to another cluster', head: head('/k8s/clusters/dev/api', ['Authorization', 'Bearer t-scoped:s']), status: 401, reason: 'Unauthorized', cause: 'TOKEN_WRONG_CLUSTER', user: alice.name },
  { name: 'a client Impersonate-User header', head: head('/k8s/clusters/dev/api', [...ALICE, 'impersonate-user', 'admin']), status: 403, reason: 'Forbidden', cause: 'IMPERSONATION_REFUSED', user: alice.name },
  { name: 'a caller who is not a member', head: head('/k8s/clusters/dev/api', ['Authorization', 'Bearer t-bob:s']), status: 403, reason: 'Forbidden', cause: 'FORBIDDEN', user: bob.name },
  { name: 'a non-member asking for a cluster that does not exist (the same 403: IDs do not leak)', head: head('/k8s/clusters/ghost/api', ['Authorization', 'Bearer t-bob:s']), status: 403, reason: 'Forbidden', cause: 'FORBIDDEN', user: bob.name },
  { name: 'a member asking for a cluster that does not exist', head: head('/k8s/clusters/ghost/api', ALICE), status: 404, reason: 'NotFound', cause: 'NOT_FOUND', user: alice.name },
  { name: 'a cluster whose upstream cannot be built', head: head('/k8s/clusters/cleartext/api', ALICE), status: 500, reason: 'InternalError', cause: 'CONFIG_INVALID', user: alice.name },
];

describe('admission refuses, and says why', () => {
  for (const row of refusals) {
    it(`${row.name}: ${row.status} ${row.cause}`, async () => {
      const admission = await admit(row.head, deps, () => NOW);
      assert.equal(admission.admitted, false);
      if (admission.admitted) return;
      const status = statusFromError(admission.error);
      assert.deepEqual(
        { code: status.code, reason: status.reason, cause: status.details.causes[0]?.reason },
        { code: row.status, reason: row.reason, cause: row.cause },
      );
      assert.equal(admission.code, row.auditCode ?? row.cause);
      assert.equal(admission.user?.name, row.user);
    });
  }
});

describe('admission admits', () => {
  it('a member to an existing cluster, with the client headers stripped and the identity added last', async () => {
    const admission = await admit(
      head('/k8s/clusters/dev/api/v1/pods?watch=1', [...ALICE, 'Accept', 'application/json', 'Cookie', 'a=b', 'X-Remote-User', 'root']),
      deps,
      () => NOW,
    );
    assert.ok(admission.admitted);
    assert.equal(admission.target.clusterId, 'dev');
    assert.equal(admission.target.path, '/api/v1/pods');
    assert.equal(admission.target.query, '?watch=1');
    assert.equal(admission.longRunning, true);
    assert.equal(admission.role, 'member');
    assert.equal(admission.upstream.pathPrefix, '/base');
    assert.deepEqual(admission.headers, [
      'Accept', 'application/json',
      'Host', '10.0.0.1:6443',
      'Authorization', 'Bearer proxy-token-dev',
      'Impersonate-User', alice.name,
      'Impersonate-Uid', alice.uid,
      'Impersonate-Group', 'local:devs',
      'Impersonate-Group', 'system:authenticated',
      'Impersonate-Extra-kubegate.io%2flogin-name', 'alice',
    ]);
  });

  it('an upgrade from an allowed Origin, however its host is spelled', async () => {
    const admission = await admit(
      head('/k8s/clusters/dev/api/v1/namespaces/x/pods/p/exec?command=sh', [...ALICE, ...UPGRADE, 'Origin', 'https://KubeGate.example.com'], true),
      deps,
      () => NOW,
    );
    assert.ok(admission.admitted);
    assert.equal(admission.longRunning, true);
  });
});
