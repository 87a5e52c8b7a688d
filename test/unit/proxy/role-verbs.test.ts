/**
 * What a viewer may do through the proxy, as a table of the pure check (role-verbs.ts), and
 * the same refusal through admission: the Status the client gets names the role.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { authenticated, type TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { makeUserInfo } from '../../../src/auth/user.js';
import { createUpstreamPool } from '../../../src/clusters/upstreams.js';
import { statusFromError } from '../../../src/kube/status.js';
import { admit, type RequestHead } from '../../../src/proxy/admission.js';
import { roleRefusal } from '../../../src/proxy/role-verbs.js';
import type { ClusterRole } from '../../../src/store/store.js';
import { directCluster } from '../../support/forward-harness.js';

interface Row {
  readonly method: string;
  readonly path: string;
  readonly upgrade?: boolean;
  /** Whether a viewer may. */
  readonly viewer: boolean;
}

const rows: readonly Row[] = [
  { method: 'GET', path: '/api/v1/namespaces/default/pods', viewer: true },
  { method: 'GET', path: '/api/v1/pods', viewer: true },
  { method: 'GET', path: '/api/v1/namespaces/default/pods/web-0/log', viewer: true },
  { method: 'HEAD', path: '/api', viewer: true },
  { method: 'OPTIONS', path: '/apis', viewer: true },
  { method: 'GET', path: '/openapi/v2', viewer: true },
  { method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', viewer: true },
  { method: 'POST', path: '/apis/authorization.k8s.io/v1beta1/selfsubjectaccessreviews', viewer: true },
  { method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', viewer: true },
  { method: 'POST', path: '/apis/authentication.k8s.io/v1/selfsubjectreviews', viewer: true },
  { method: 'POST', path: '/apis/authentication.k8s.io/v1beta1/selfsubjectreviews', viewer: true },
  // Writes.
  { method: 'POST', path: '/api/v1/namespaces/default/pods', viewer: false },
  { method: 'PUT', path: '/api/v1/namespaces/default/pods/web-0', viewer: false },
  { method: 'PATCH', path: '/api/v1/namespaces/default/pods/web-0', viewer: false },
  { method: 'DELETE', path: '/api/v1/namespaces/default/pods/web-0', viewer: false },
  { method: 'DELETE', path: '/api/v1/namespaces/default/pods', viewer: false },
  { method: 'POST', path: '/api/v1/namespaces/default/pods/web-0/eviction', viewer: false },
  { method: 'CONNECT', path: '/api/v1/namespaces/default/pods/web-0/exec', viewer: false },
  // Reviews that are not about the caller, or not exactly the self-review path.
  { method: 'POST', path: '/apis/authorization.k8s.io/v1/subjectaccessreviews', viewer: false },
  { method: 'POST', path: '/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews', viewer: false },
  { method: 'POST', path: '/apis/authentication.k8s.io/v1/tokenreviews', viewer: false },
  { method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/', viewer: false },
  { method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectaccess%72eviews', viewer: false },
  { method: 'POST', path: '/apis/authorization.k8s.io/v1/namespaces/default/selfsubjectaccessreviews', viewer: false },
  { method: 'POST', path: '/apis/authorization.k8s.io/vX/selfsubjectaccessreviews', viewer: false },
  { method: 'POST', path: '/apis/evil.example/v1/selfsubjectaccessreviews', viewer: false },
  { method: 'PUT', path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', viewer: false },
  // Upgrades, whatever the method.
  { method: 'POST', path: '/api/v1/namespaces/default/pods/web-0/exec', upgrade: true, viewer: false },
  { method: 'GET', path: '/api/v1/namespaces/default/pods/web-0/exec', upgrade: true, viewer: false },
  { method: 'GET', path: '/api/v1/namespaces/default/pods/web-0/attach', upgrade: true, viewer: false },
  { method: 'GET', path: '/api/v1/namespaces/default/pods/web-0/portforward', upgrade: true, viewer: false },
  // Proxy subresources reach an application or the kubelet, not an object.
  { method: 'GET', path: '/api/v1/namespaces/default/pods/web-0/proxy/admin/reset', viewer: false },
  { method: 'GET', path: '/api/v1/namespaces/default/pods/web-0:8080/proxy', viewer: false },
  { method: 'GET', path: '/api/v1/namespaces/default/services/web/proxy/', viewer: false },
  { method: 'GET', path: '/api/v1/nodes/node-1/proxy/runningpods', viewer: false },
  { method: 'GET', path: '/api/v1/proxy/namespaces/default/pods/web-0', viewer: false },
  // Not a proxy subresource: a pod named `proxy`, and a namespace named `proxy`.
  { method: 'GET', path: '/api/v1/namespaces/default/pods/proxy', viewer: true },
  { method: 'GET', path: '/api/v1/namespaces/proxy/pods', viewer: true },
];

describe('a viewer reads and does nothing else', () => {
  for (const row of rows) {
    it(`${row.method} ${row.path}${row.upgrade === true ? ' (upgrade)' : ''}: ${row.viewer ? 'allowed' : 'refused'}`, () => {
      const refusal = roleRefusal('viewer', { method: row.method, path: row.path, upgrade: row.upgrade ?? false });
      if (row.viewer) {
        assert.equal(refusal, undefined);
      } else {
        assert.equal(refusal?.code, 'ROLE_READ_ONLY');
        assert.equal(refusal?.status, 403);
        assert.match(refusal?.message ?? '', /viewer/);
      }
    });
  }

  it('owners and members are left to the cluster’s RBAC, for every request of the table', () => {
    for (const role of ['owner', 'member'] as ClusterRole[]) {
      for (const row of rows) assert.equal(roleRefusal(role, { method: row.method, path: row.path, upgrade: row.upgrade ?? false }), undefined, `${role} ${row.method} ${row.path}`);
    }
  });
});

describe('admission applies the role', () => {
  const viewer = makeUserInfo({ name: 'u-vvvvvvvvvvvv', groups: ['system:authenticated'] });
  const authenticator: TokenAuthenticator = { authenticateToken: async () => authenticated(viewer, { name: 't-viewer', expiresAt: null, clusterId: null }) };
  const dev = directCluster('dev', 'http://10.0.0.1:6443');
  const pool = createUpstreamPool({ allowPlainHttp: true });
  after(() => pool.close());
  const deps = { authenticator, getCluster: () => dev, authorize: () => 'viewer' as const, upstreams: pool, allowedOrigins: [] };
  const head = (method: string, url: string, upgrade = false): RequestHead => ({
    method,
    url,
    rawHeaders: ['Authorization', 'Bearer t-viewer:s', ...(upgrade ? ['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1'] : [])],
    upgrade,
  });

  it('a viewer’s DELETE is a 403 Status naming the role, with the viewer in the audit facts', async () => {
    const admission = await admit(head('DELETE', '/k8s/clusters/dev/api/v1/namespaces/default/pods/web-0'), deps);
    assert.equal(admission.admitted, false);
    if (admission.admitted) return;
    const status = statusFromError(admission.error);
    assert.equal(status.code, 403);
    assert.equal(status.reason, 'Forbidden');
    assert.equal(status.details.causes[0]?.reason, 'ROLE_READ_ONLY');
    assert.match(status.message, /role on this cluster is viewer.*DELETE is refused/);
    assert.equal(admission.role, 'viewer');
    assert.equal(admission.user?.name, viewer.name);
  });

  it('a viewer’s list and `auth can-i` review are admitted', async () => {
    for (const [method, url] of [
      ['GET', '/k8s/clusters/dev/api/v1/namespaces/default/pods?watch=1'],
      ['POST', '/k8s/clusters/dev/apis/authorization.k8s.io/v1/selfsubjectaccessreviews'],
    ] as const) {
      const admission = await admit(head(method, url), deps);
      assert.equal(admission.admitted, true, `${method} ${url}`);
    }
  });

  it('a viewer’s exec upgrade is refused', async () => {
    const admission = await admit(head('POST', '/k8s/clusters/dev/api/v1/namespaces/default/pods/web-0/exec?command=sh', true), deps);
    assert.equal(admission.admitted, false);
    if (!admission.admitted) assert.equal(admission.code, 'ROLE_READ_ONLY');
  });
});
