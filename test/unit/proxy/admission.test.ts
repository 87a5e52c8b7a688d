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
import type { ImpersonationDecision, ImpersonationReview } from '../../../src/proxy/impersonation-review.js';
import { directCluster as cluster } from '../../support/forward-harness.js';

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
  { name: 'a client Impersonate-User header when no cluster is asked about it', head: head('/k8s/clusters/dev/api', [...ALICE, 'impersonate-user', 'admin']), status: 403, reason: 'Forbidden', cause: 'IMPERSONATION_REFUSED', user: alice.name },
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

describe('admission of a token the authenticator has cached (cachedAnswer)', () => {
  /** Answers every token but `t-throws:s` from its "cache"; a lookup would fail the test. */
  const cachedDeps: AdmissionDeps = {
    ...deps,
    authenticator: {
      authenticateToken: async (token) => {
        if (token !== 't-throws:s') assert.fail(`looked up ${token} although its answer was cached`);
        throw new Error('authenticator bug');
      },
      cachedAnswer: (token) => {
        const answer = answers.get(token) ?? unauthenticated('TOKEN_INVALID');
        return answer instanceof Error ? undefined : answer;
      },
    },
  };

  for (const row of refusals) {
    it(`refuses ${row.name} the same way: ${row.status} ${row.cause}`, async () => {
      const answered = admit(row.head, cachedDeps, () => NOW);
      const throwsOnLookup = row.head.rawHeaders.includes('Bearer t-throws:s');
      assert.equal(answered instanceof Promise, throwsOnLookup, throwsOnLookup ? 'a token not cached is looked up' : 'decided without a promise');
      const admission = await answered;
      assert.equal(admission.admitted, false);
      if (admission.admitted) return;
      assert.equal(admission.error.code, row.cause);
      assert.equal(admission.code, row.auditCode ?? row.cause);
      assert.equal(admission.user?.name, row.user);
    });
  }

  it('admits a member synchronously, with the same headers as after a lookup', async () => {
    const request = head('/k8s/clusters/dev/api/v1/pods', [...ALICE, 'Accept', 'application/json']);
    const admission = admit(request, cachedDeps, () => NOW);
    assert.ok(!(admission instanceof Promise) && admission.admitted);
    const looked = await admit(request, deps, () => NOW);
    assert.ok(looked.admitted);
    assert.deepEqual(admission.headers, looked.headers);
    assert.equal(admission.user, alice);
  });
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

describe('admission forwards only the allowed extras of the caller (identity.forwardedExtras)', () => {
  const extraLines = (headers: readonly string[]): string[] => headers.filter((_, i) => i % 2 === 0 && headers[i]!.startsWith('Impersonate-Extra-'));

  it('leaves out an extra the allow-list does not name, keeps one it names, and changes nothing else', async () => {
    const none = await admit(head('/k8s/clusters/dev/api', ALICE), { ...deps, forwardedExtras: new Set(['kubegate.io/provider']) }, () => NOW);
    assert.ok(none.admitted);
    assert.deepEqual(extraLines(none.headers), []);
    assert.equal(none.headers[none.headers.indexOf('Impersonate-User') + 1], alice.name);
    const kept = await admit(head('/k8s/clusters/dev/api', ALICE), { ...deps, forwardedExtras: new Set(['kubegate.io/login-name']) }, () => NOW);
    assert.ok(kept.admitted);
    assert.deepEqual(extraLines(kept.headers), ['Impersonate-Extra-kubegate.io%2flogin-name']);
  });
});

describe('admission and the cluster\'s version: Impersonate-Uid only for API servers from 1.22 on', () => {
  const versioned = (version: string | undefined): AdmissionDeps => ({ ...deps, clusterVersion: (id) => (id === 'dev' ? version : undefined) });
  const uidLines = (headers: readonly string[]): string[] => headers.filter((_, i) => i % 2 === 0 && headers[i] === 'Impersonate-Uid');

  for (const [version, expected] of [['v1.21.14', 0], ['v1.22.0', 1], ['v1.32.4+k3s1', 1], [undefined, 1], ['not-a-version', 1]] as const) {
    it(`${version ?? 'an unprobed cluster'}: ${expected === 0 ? 'no' : 'an'} Impersonate-Uid line`, async () => {
      const admission = await admit(head('/k8s/clusters/dev/api', ALICE), versioned(version), () => NOW);
      assert.ok(admission.admitted);
      assert.equal(uidLines(admission.headers).length, expected);
      assert.equal(admission.headers[admission.headers.indexOf('Impersonate-User') + 1], alice.name, 'the rest of the identity is unchanged');
    });
  }

  it('refuses kubectl --as-uid to a cluster older than 1.22 (400 IMPERSONATION_INVALID naming the version) before asking it anything', async () => {
    let asked = 0;
    const review: ImpersonationReview = {
      async review() {
        asked++;
        return { allowed: true };
      },
    };
    const admission = await admit(head('/k8s/clusters/dev/api', [...ALICE, 'Impersonate-User', 'bob', 'Impersonate-Uid', '1234']), { ...versioned('v1.21.3'), impersonation: review }, () => NOW);
    assert.equal(admission.admitted, false);
    if (admission.admitted) return;
    assert.deepEqual([admission.error.status, admission.code], [400, 'IMPERSONATION_INVALID']);
    assert.match(admission.error.message, /v1\.21\.3.*Impersonate-Uid/);
    assert.equal(asked, 0);
  });
});

describe('admission of a client asking to act as someone else (kubectl --as)', () => {
  const asked: { cluster: string; user: string; requested: string }[] = [];
  const answers = new Map<string, ImpersonationDecision | Error>([
    ['bob', { allowed: true }],
    ['mallory', { allowed: false, denied: ['users "mallory"', 'groups "system:masters"'] }],
    ['unknown', new KubegateError('IMPERSONATION_UNVERIFIED', 'the cluster answered the SubjectAccessReview with HTTP 503')],
    ['buggy', new Error('reviewer bug')],
  ]);
  const review: ImpersonationReview = {
    async review(upstream, user, requested) {
      asked.push({ cluster: upstream.clusterId, user: user.name, requested: requested.name });
      const answer = answers.get(requested.name);
      if (answer instanceof Error) throw answer;
      return answer ?? { allowed: false, denied: [`users "${requested.name}"`] };
    },
  };
  const reviewing: AdmissionDeps = { ...deps, impersonation: review };
  const as = (user: string, extra: readonly string[] = [], url = '/k8s/clusters/dev/api'): RequestHead => head(url, [...ALICE, 'Impersonate-User', user, ...extra]);

  it('forwards as the requested identity alone, after asking the target cluster as the caller', async () => {
    asked.length = 0;
    const admission = await admit(as('bob', ['Accept', 'application/json', 'impersonate-group', 'ops']), reviewing, () => NOW);
    assert.ok(admission.admitted);
    assert.deepEqual(asked, [{ cluster: 'dev', user: alice.name, requested: 'bob' }]);
    assert.deepEqual(admission.impersonated, { name: 'bob', uid: '', groups: ['ops'], extra: {} });
    assert.deepEqual(admission.headers, [
      'Accept', 'application/json',
      'Host', '10.0.0.1:6443',
      'Authorization', 'Bearer proxy-token-dev',
      'Impersonate-User', 'bob',
      'Impersonate-Group', 'ops',
    ]);
  });

  const refusals: { name: string; head: RequestHead; status: number; cause: ErrorCode; message?: RegExp; impersonated: string | undefined }[] = [
    { name: 'a denial names every denied attribute', head: as('mallory'), status: 403, cause: 'IMPERSONATION_DENIED', message: /impersonate users "mallory", groups "system:masters"$/, impersonated: 'mallory' },
    { name: 'a cluster that cannot answer', head: as('unknown'), status: 503, cause: 'IMPERSONATION_UNVERIFIED', message: /HTTP 503/, impersonated: 'unknown' },
    { name: 'a reviewer that fails unexpectedly', head: as('buggy'), status: 503, cause: 'IMPERSONATION_UNVERIFIED', impersonated: 'buggy' },
    { name: 'a group without a user', head: head('/k8s/clusters/dev/api', [...ALICE, 'Impersonate-Group', 'system:masters']), status: 400, cause: 'IMPERSONATION_INVALID', impersonated: undefined },
  ];
  for (const row of refusals) {
    it(`refuses ${row.name}: ${row.status} ${row.cause}, and records whom the caller asked for`, async () => {
      const admission = await admit(row.head, reviewing, () => NOW);
      assert.equal(admission.admitted, false);
      if (admission.admitted) return;
      assert.deepEqual([admission.error.status, admission.code, admission.user?.name, admission.impersonated?.name], [row.status, row.cause, alice.name, row.impersonated]);
      if (row.message !== undefined) assert.match(admission.error.message, row.message);
    });
  }

  it('asks no cluster for a caller who is not a member, nor for a cluster that does not exist', async () => {
    asked.length = 0;
    const bobAsks = await admit(head('/k8s/clusters/dev/api', ['Authorization', 'Bearer t-bob:s', 'Impersonate-User', 'bob']), reviewing, () => NOW);
    assert.deepEqual([bobAsks.admitted, !bobAsks.admitted && bobAsks.code], [false, 'FORBIDDEN']);
    const ghost = await admit(as('bob', [], '/k8s/clusters/ghost/api'), reviewing, () => NOW);
    assert.deepEqual([ghost.admitted, !ghost.admitted && ghost.code], [false, 'NOT_FOUND']);
    assert.deepEqual(asked, []);
  });
});
