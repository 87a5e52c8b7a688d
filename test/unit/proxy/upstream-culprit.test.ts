import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubegateError } from '../../../src/errors.js';
import { credentialRefusal, namingCluster, upstreamFailure } from '../../../src/proxy/upstream-culprit.js';

describe('upstream culprits', () => {
  it("turns only a 401 into CLUSTER_CREDENTIAL_REFUSED, because the user was authenticated by kubegate and the cluster saw the proxy's credential", () => {
    const reported: string[] = [];
    for (const status of [200, 403, 404, 500, 502]) assert.equal(credentialRefusal('dev', 'direct', status, (id) => reported.push(id)), undefined, String(status));
    assert.equal(reported.length, 0);
    const direct = credentialRefusal('dev', 'direct', 401, (id) => reported.push(id));
    assert.equal(direct?.code, 'CLUSTER_CREDENTIAL_REFUSED');
    assert.equal(direct?.status, 502);
    assert.equal(direct?.message, `the API server of cluster "dev" refused the proxy's credential for it: an administrator must register a valid one (PATCH /v1/clusters/dev)`);
    const agent = credentialRefusal('edge', 'agent', 401, (id) => reported.push(id));
    assert.match(agent?.message ?? '', /refused the service account token of the cluster's kubegate agent: check the kubegate agent in that cluster/);
    assert.deepEqual(reported, ['dev', 'edge']);
  });

  it('names the cluster and the system error code of a failure to reach it, and tells a TLS failure apart', () => {
    const refused = upstreamFailure('down', Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), { code: 'ECONNREFUSED' }));
    assert.equal(refused.code, 'UPSTREAM_UNREACHABLE');
    assert.equal(refused.message, 'cluster "down": its API server could not be reached (ECONNREFUSED)');
    const tls = upstreamFailure('down', Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }));
    assert.equal(tls.message, `cluster "down": its API server's TLS certificate could not be verified (SELF_SIGNED_CERT_IN_CHAIN)`);
    assert.equal(upstreamFailure('down', new Error('no code')).message, 'cluster "down": its API server could not be reached');
    assert.equal(upstreamFailure('down', new KubegateError('UPSTREAM_TIMEOUT')).message, `cluster "down": the cluster's API server did not answer in time`);
  });

  it('leaves errors alone that are not about reaching the cluster or already carry their own message', () => {
    const own = new KubegateError('UPSTREAM_UNREACHABLE', "the cluster's API server sent an answer the proxy cannot relay");
    assert.equal(namingCluster(own, 'dev'), own);
    const forbidden = new KubegateError('FORBIDDEN');
    assert.equal(namingCluster(forbidden, 'dev'), forbidden);
    const disconnected = namingCluster(new KubegateError('CLUSTER_DISCONNECTED'), 'edge');
    assert.equal(disconnected.status, 503);
    assert.match(disconnected.message, /^cluster "edge": the cluster's agent is not connected/);
    assert.equal(namingCluster(new KubegateError('CLUSTER_DISCONNECTED'), '').message.startsWith('cluster'), false);
  });
});
