import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAgentConfig } from '../../../src/config/agent.js';
import { isKubegateError } from '../../../src/errors.js';

const POD_ENV = {
  KUBERNETES_SERVICE_HOST: '10.96.0.1',
  KUBERNETES_SERVICE_PORT: '443',
  POD_NAME: 'kubegate-agent-7d9f-abcde',
  POD_NAMESPACE: 'kubegate-system',
  KUBEGATE_PROXY_URL: 'https://kubegate.example.com/',
  KUBEGATE_CLUSTER_ID: 'edge',
};

describe('agent configuration', () => {
  it('in a pod, takes the API server, namespace and agent ID from the environment the import manifest sets', () => {
    const config = loadAgentConfig({ env: POD_ENV });
    assert.equal(config.proxyUrl, 'https://kubegate.example.com');
    assert.equal(config.clusterId, 'edge');
    assert.equal(config.agentId, 'kubegate-agent-7d9f-abcde');
    assert.equal(config.apiServer.url, 'https://10.96.0.1');
    assert.equal(config.apiServer.serverName, 'kubernetes.default.svc');
    assert.equal(config.apiServer.tokenFile, '/var/run/secrets/kubernetes.io/serviceaccount/token');
    assert.deepEqual(config.credential, { kind: 'secret', namespace: 'kubegate-system', name: 'kubegate-agent' });
    assert.equal(config.healthListen, '0.0.0.0:8081');
    assert.deepEqual(config.metrics, { listen: '127.0.0.1:9464', bearerTokenFile: undefined }, 'metrics stay on loopback by default');
  });

  it('takes the metrics listener and scrape token file from the environment and flags, and none turns the listener off', () => {
    const fromEnv = loadAgentConfig({ env: { ...POD_ENV, KUBEGATE_METRICS_LISTEN: '10.0.0.5:9464', KUBEGATE_METRICS_BEARER_TOKEN_FILE: '/etc/kubegate/scrape/token' } });
    assert.deepEqual(fromEnv.metrics, { listen: '10.0.0.5:9464', bearerTokenFile: '/etc/kubegate/scrape/token' });
    const off = loadAgentConfig({ env: POD_ENV, flags: { metricsListen: 'none', metricsBearerTokenFile: '/run/scrape-token' } });
    assert.deepEqual(off.metrics, { listen: undefined, bearerTokenFile: '/run/scrape-token' });
  });

  it('refuses a metrics listener on the probes address, because that would serve metrics anonymously beside the probes', () => {
    assert.throws(
      () => loadAgentConfig({ env: { ...POD_ENV, KUBEGATE_METRICS_LISTEN: '0.0.0.0:8081' } }),
      (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && error.field === 'metrics.listen' && /healthListen/.test(error.message),
    );
    assert.throws(
      () => loadAgentConfig({ env: { ...POD_ENV, KUBEGATE_METRICS_LISTEN: 'localhost' } }),
      (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && /KUBEGATE_METRICS_LISTEN/.test(error.message),
    );
  });

  it('lets flags win over the pod environment, and keeps credentials in a directory when asked', () => {
    const config = loadAgentConfig({
      env: POD_ENV,
      flags: { apiServer: 'https://127.0.0.1:6443', apiServerName: 'localhost', credentialDir: 'creds', agentId: 'laptop' },
    });
    assert.equal(config.apiServer.url, 'https://127.0.0.1:6443');
    assert.equal(config.apiServer.serverName, 'localhost');
    assert.equal(config.agentId, 'laptop');
    assert.equal(config.credential.kind, 'directory');
  });

  it('outside a cluster, requires the API server, naming the field', () => {
    assert.throws(
      () => loadAgentConfig({ env: { KUBEGATE_PROXY_URL: 'https://p.example', KUBEGATE_CLUSTER_ID: 'edge' } }),
      (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && /apiServer\.url/.test(error.message),
    );
  });

  it('refuses a proxy URL that is not https, or that carries credentials, without echoing it', () => {
    for (const url of ['http://p.example', 'https://user:secret-password@p.example', 'not a url']) {
      assert.throws(
        () => loadAgentConfig({ env: { ...POD_ENV, KUBEGATE_PROXY_URL: url } }),
        (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && /KUBEGATE_PROXY_URL/.test(error.message) && !error.message.includes('secret-password'),
        url,
      );
    }
  });

  it('refuses a cluster ID that is not a DNS label and a missing one', () => {
    assert.throws(() => loadAgentConfig({ env: { ...POD_ENV, KUBEGATE_CLUSTER_ID: 'Edge_1' } }), (error: unknown) => isKubegateError(error, 'CONFIG_INVALID'));
    const { KUBEGATE_CLUSTER_ID: _unused, ...withoutCluster } = POD_ENV;
    assert.throws(() => loadAgentConfig({ env: withoutCluster }), (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && /clusterId/.test(error.message));
  });
});
