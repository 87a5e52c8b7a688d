import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubegateError } from '../../../src/errors.js';
import { loadWebhookConfig } from '../../../src/config/webhook.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kubegate-webhook-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function invalid(load: () => unknown): KubegateError {
  try {
    load();
  } catch (error) {
    assert.ok(error instanceof KubegateError && error.code === 'CONFIG_INVALID', String(error));
    return error;
  }
  assert.fail('expected CONFIG_INVALID');
}

describe('loadWebhookConfig', () => {
  it("defaults to kube-api-auth's address, namespace and in-cluster credentials, so that it is a drop-in replacement", () => {
    const config = loadWebhookConfig({ env: {} });
    assert.deepEqual(config, {
      listen: '127.0.0.1:6440',
      kubeconfig: undefined,
      namespace: 'cattle-system',
      tls: { certFile: undefined, keyFile: undefined },
      cache: { successTtlSeconds: 10, failureTtlSeconds: 2, maxEntries: 10_000 },
      audiences: [],
      metrics: { listen: undefined, bearerTokenFile: undefined },
      stamps: { perSecond: 20, maxQueued: 10_000 },
      log: { level: 'info' },
    });
    assert.ok(Object.isFrozen(config.cache));
  });

  it('reads audiences from the file or from KUBEGATE_WEBHOOK_AUDIENCES (comma-separated), and refuses one with a space', () => {
    const file = writeConfig('aud.yaml', 'audiences: [https://kubernetes.default.svc, rke2]\n');
    assert.deepEqual(loadWebhookConfig({ env: {}, file }).audiences, ['https://kubernetes.default.svc', 'rke2']);
    assert.deepEqual(loadWebhookConfig({ env: { KUBEGATE_WEBHOOK_AUDIENCES: ' a, b ,a,' }, file }).audiences, ['a', 'b']);
    const bad = writeConfig('bad-aud.yaml', 'audiences: ["two words"]\n');
    const error = invalid(() => loadWebhookConfig({ env: {}, file: bad }));
    assert.match(error.message, /audiences\[0\] .*must not contain spaces or commas/);
  });

  it('reads the metrics listener and token file, and refuses a listen address that is not HOST:PORT or none', () => {
    const file = writeConfig('metrics.yaml', 'metrics: { listen: 127.0.0.1:9465, bearerTokenFile: /run/secrets/metrics-token }\n');
    assert.deepEqual(loadWebhookConfig({ env: {}, file }).metrics, { listen: '127.0.0.1:9465', bearerTokenFile: '/run/secrets/metrics-token' });
    const bad = writeConfig('bad-metrics.yaml', 'metrics: { listen: everywhere }\n');
    assert.throws(() => loadWebhookConfig({ env: {}, file: bad }), /metrics\.listen .*must be HOST:PORT, e\.g\. 127\.0\.0\.1:9464, or none/);
  });

  it('layers file < environment < flags', () => {
    const file = writeConfig(
      'webhook.yaml',
      `listen: 0.0.0.0:7000\nnamespace: from-file\nkubeconfig: ${dir}/file.kubeconfig\ncache: { successTtl: 1m, failureTtl: 1s, maxEntries: 10 }\ntls: { certFile: ${dir}/c, keyFile: ${dir}/k }\n`,
    );
    const config = loadWebhookConfig({
      file,
      env: { KUBEGATE_WEBHOOK_LISTEN: '0.0.0.0:7001', KUBEGATE_NAMESPACE: 'from-env', KUBEGATE_KUBECONFIG: `${dir}/env.kubeconfig`, KUBEGATE_LOG_LEVEL: 'warn' },
      flags: { namespace: 'from-flag' },
    });
    assert.equal(config.listen, '0.0.0.0:7001');
    assert.equal(config.namespace, 'from-flag');
    assert.equal(config.kubeconfig, join(dir, 'env.kubeconfig'));
    assert.equal(config.log.level, 'warn');
    assert.deepEqual(config.cache, { successTtlSeconds: 60, failureTtlSeconds: 1, maxEntries: 10 });
    assert.deepEqual(config.tls, { certFile: join(dir, 'c'), keyFile: join(dir, 'k') });
  });

  it('reads an empty --kubeconfig as in-cluster, as kube-api-auth does', () => {
    const file = writeConfig('kc.yaml', `kubeconfig: ${dir}/file.kubeconfig\n`);
    assert.equal(loadWebhookConfig({ env: {}, flags: { kubeconfig: '' } }).kubeconfig, undefined);
    assert.equal(loadWebhookConfig({ env: { KUBEGATE_KUBECONFIG: '' }, file }).kubeconfig, join(dir, 'file.kubeconfig'));
  });

  it('rejects a namespace that is not a DNS label and an unknown key, naming each', () => {
    const file = writeConfig('bad.yaml', 'namespace: Cattle_System\nlistn: 0.0.0.0:1\ntls: { keyFile: /k }\n');
    const error = invalid(() => loadWebhookConfig({ env: { KUBEGATE_WEBHOOK_LISTEN: 'loopback' }, file }));
    assert.equal(error.field, 'listen');
    assert.match(error.message, /^env KUBEGATE_WEBHOOK_LISTEN: must be HOST:PORT/);
    assert.match(error.message, /namespace \(.*:1\): must be a Kubernetes namespace name/);
    assert.match(error.message, /tls\.certFile \(.*:3\): is required when the other of certFile\/keyFile is set/);
    assert.match(error.message, /listn \(.*:2\): unknown setting/);
  });

  it('reads the lastUsedAt stamp budget (0: never stamp), and refuses a negative rate, an empty queue and an unknown key, naming each', () => {
    const file = writeConfig('stamps.yaml', 'stamps: { perSecond: 0, maxQueued: 50 }\n');
    assert.deepEqual(loadWebhookConfig({ env: {}, file }).stamps, { perSecond: 0, maxQueued: 50 });
    const bad = writeConfig('bad-stamps.yaml', 'stamps:\n  perSecond: -1\n  maxQueued: 0\n  burst: 5\n');
    const error = invalid(() => loadWebhookConfig({ env: {}, file: bad }));
    assert.match(error.message, /stamps\.perSecond \(.*:2\): must be a whole number from 0 to 10000/);
    assert.match(error.message, /stamps\.maxQueued \(.*:3\): must be a whole number from 1 to 1000000/);
    assert.match(error.message, /stamps\.burst \(.*:4\): unknown setting/);
    const fraction = writeConfig('fraction-stamps.yaml', 'stamps: { perSecond: 2.5 }\n');
    assert.equal(invalid(() => loadWebhookConfig({ env: {}, file: fraction })).field, 'stamps.perSecond');
  });

  it('ignores proxy-only variables, so that one environment can serve both processes', () => {
    assert.equal(loadWebhookConfig({ env: { KUBEGATE_LISTEN: 'not an address', KUBEGATE_WORKERS: 'x' } }).listen, '127.0.0.1:6440');
  });
});
