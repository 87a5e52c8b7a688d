/**
 * The CLI's client of the REST API names itself: the proxy's audit trail records the user
 * agent of every administrative action and login, and a CLI call showed `userAgent: null`.
 * It takes the proxy's address, never a cluster's URL from a kubeconfig.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createProxyClient } from '../../../src/cli/proxy-client.js';
import { KubegateError } from '../../../src/errors.js';
import { createCertificateAuthority, issueServingCertificate } from '../../../src/pki/certificates.js';
import { KUBEGATE_VERSION } from '../../../src/version.js';

test('every request of the CLI carries User-Agent kubegate/<version>', async () => {
  const ca = await createCertificateAuthority({ commonName: 'proxy-client-test-ca', validityDays: 1 });
  const serving = await issueServingCertificate(ca, { commonName: 'proxy', sans: ['127.0.0.1'], validityDays: 1 });
  const seen: (string | undefined)[] = [];
  const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    seen.push(req.headers['user-agent']);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"username":"admin"}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const client = createProxyClient(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca.certPem);
    await client.call('GET', '/v1/me', { token: 't-x:y' });
    await client.call('POST', '/v1/login', { body: { provider: 'local' } });
    assert.deepEqual(seen, [`kubegate/${KUBEGATE_VERSION}`, `kubegate/${KUBEGATE_VERSION}`]);
  } finally {
    server.close();
  }
});

test("a kubeconfig's cluster URL given as the proxy's address is refused, naming the address to use", () => {
  for (const [server, use] of [
    ['https://localhost:8443/k8s/clusters/dev', 'https://localhost:8443'],
    ['https://kubegate.example.com/kubegate/k8s/clusters/dev/', 'https://kubegate.example.com/kubegate'],
  ] as const) {
    assert.throws(
      () => createProxyClient(server, undefined),
      (error: unknown) =>
        error instanceof KubegateError && error.code === 'BAD_REQUEST' && error.message === `--server is the proxy's address, not a cluster's URL: use ${use}`,
      server,
    );
  }
  assert.equal(createProxyClient('https://kubegate.example.com/kubegate/', undefined).server, 'https://kubegate.example.com/kubegate', 'a path prefix of the proxy is kept');
});
