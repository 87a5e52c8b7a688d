import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KubegateError } from '../../../src/errors.js';
import { configForLog, loadProxyConfig } from '../../../src/config/proxy.js';
import type { ProxyConfig } from '../../../src/config/proxy.js';
import { MAX_CONFIG_FILE_BYTES } from '../../../src/config/source.js';
import { createLogger, REDACTED } from '../../../src/log.js';

const SECRET_KEY = Buffer.alloc(32, 7).toString('base64');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kubegate-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs `load` and returns the CONFIG_* error it must throw. */
function configError(load: () => unknown, code: 'CONFIG_INVALID' | 'CONFIG_UNREADABLE' = 'CONFIG_INVALID'): KubegateError {
  try {
    load();
  } catch (error) {
    assert.ok(error instanceof KubegateError, `expected a KubegateError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('loadProxyConfig', () => {
  it('gives every setting a working default, so that `kubegate proxy` starts with no configuration at all', () => {
    const config = loadProxyConfig({ env: {} });
    assert.equal(config.listen, '0.0.0.0:8443');
    assert.equal(config.dataDir, resolve('data'));
    assert.equal(config.externalUrl, 'https://localhost:8443');
    assert.deepEqual(config.tls, { certFile: undefined, keyFile: undefined, sans: ['localhost', '127.0.0.1'] });
    assert.deepEqual(config.store, { type: 'sqlite', path: join(resolve('data'), 'kubegate.db') });
    assert.equal(config.secretKey, undefined);
    assert.equal(config.secretKeyFile, join(resolve('data'), 'secret.key'));
    assert.deepEqual(config.bootstrap, { username: 'admin', password: undefined, resetPassword: false });
    assert.deepEqual(config.tokens, {
      loginTtlSeconds: 16 * 3600,
      kubeconfigTtlSeconds: 30 * 86_400,
      kubeconfigMaxTtlSeconds: 90 * 86_400,
      apiTtlSeconds: 30 * 86_400,
      apiMaxTtlSeconds: 90 * 86_400,
    });
    assert.deepEqual(config.authCache, { successTtlSeconds: 10, failureTtlSeconds: 5, maxEntries: 10_000 });
    assert.deepEqual(config.loginRateLimit, { maxFailures: 5, maxFailuresPerAddress: 100, windowSeconds: 300 });
    assert.deepEqual(config.trustedProxies, []);
    assert.deepEqual(config.metrics, { listen: '127.0.0.1:9464', bearerTokenFile: undefined });
    assert.deepEqual(config.upstream, { connectTimeoutSeconds: 10, requestTimeoutSeconds: 60, idleTimeoutSeconds: 60 });
    assert.equal(config.workers, 1);
    assert.deepEqual(config.audit, { enabled: true, file: undefined });
    assert.deepEqual(config.log, { level: 'info', slowRequestMs: 0 });
    assert.deepEqual(config.providers, [{ name: 'local', type: 'local', enabled: true, settings: {} }]);
    assert.equal(config.oidcBearer, undefined);
    assert.deepEqual(config.console, { enabled: true, sessionTtlSeconds: 8 * 3600 });
  });

  it('reads every section of a YAML file and resolves durations to seconds, so that no other part parses them', () => {
    const file = writeConfig(
      'full.yaml',
      `
listen: 127.0.0.1:9443
dataDir: ${dir}/state
externalUrl: https://kubegate.example.com/
tls:
  certFile: ${dir}/tls.crt
  keyFile: ${dir}/tls.key
  sans: [kubegate.example.com, 10.0.0.1]
store:
  type: postgres
  url: postgres://kubegate:pw@db.example.com:5432/kubegate
secretKey: ${SECRET_KEY}
bootstrap:
  username: root
  password: correct-horse-battery
tokens:
  loginTtl: 8h
  kubeconfigTtl: 7d
  kubeconfigMaxTtl: 10d12h
  apiTtl: 3600
  apiMaxTtl: 2h
authCache: { successTtl: 30s, failureTtl: 1s, maxEntries: 500 }
loginRateLimit: { maxFailures: 3, maxFailuresPerAddress: 30, windowSeconds: 60 }
trustedProxies: [10.0.0.0/8, 192.0.2.7, '2001:db8::/32']
upstream: { connectTimeoutSeconds: 3, requestTimeoutSeconds: 120, idleTimeoutSeconds: 45 }
workers: 4
audit: { enabled: false, file: ${dir}/audit.log }
log: { level: debug, slowRequestMs: 250 }
providers:
  - { name: local, type: local }
  - name: corp
    type: oidc
    enabled: false
    settings: { issuer: https://idp.example.com, scopes: [openid, email] }
  - { name: sso, type: oidc, settings: { issuer: https://sso.example.com } }
oidcBearer: { provider: sso }
`,
    );
    const config = loadProxyConfig({ env: {}, file });
    assert.equal(config.listen, '127.0.0.1:9443');
    assert.equal(config.dataDir, join(dir, 'state'));
    assert.equal(config.externalUrl, 'https://kubegate.example.com', 'the trailing slash is dropped');
    assert.deepEqual(config.tls, { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sans: ['kubegate.example.com', '10.0.0.1'] });
    assert.deepEqual(config.store, { type: 'postgres', url: 'postgres://kubegate:pw@db.example.com:5432/kubegate' });
    assert.equal(config.secretKey, SECRET_KEY);
    assert.equal(config.secretKeyFile, undefined);
    assert.deepEqual(config.bootstrap, { username: 'root', password: 'correct-horse-battery', resetPassword: false });
    assert.deepEqual(config.tokens, {
      loginTtlSeconds: 8 * 3600,
      kubeconfigTtlSeconds: 7 * 86_400,
      kubeconfigMaxTtlSeconds: 10 * 86_400 + 12 * 3600,
      apiTtlSeconds: 3600,
      apiMaxTtlSeconds: 7200,
    });
    assert.deepEqual(config.authCache, { successTtlSeconds: 30, failureTtlSeconds: 1, maxEntries: 500 });
    assert.deepEqual(config.loginRateLimit, { maxFailures: 3, maxFailuresPerAddress: 30, windowSeconds: 60 });
    assert.deepEqual(config.trustedProxies, ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);
    assert.deepEqual(config.upstream, { connectTimeoutSeconds: 3, requestTimeoutSeconds: 120, idleTimeoutSeconds: 45 });
    assert.equal(config.workers, 4);
    assert.deepEqual(config.audit, { enabled: false, file: join(dir, 'audit.log') });
    assert.equal(config.log.level, 'debug');
    assert.equal(config.log.slowRequestMs, 250);
    assert.deepEqual(config.providers[1], {
      name: 'corp',
      type: 'oidc',
      enabled: false,
      settings: { issuer: 'https://idp.example.com', scopes: ['openid', 'email'] },
    });
    assert.deepEqual(config.oidcBearer, { provider: 'sso' });
  });

  it('takes environment over file and flags over environment, so that a deployment can override a shipped file', () => {
    const file = writeConfig('layers.yaml', 'listen: 127.0.0.1:1001\nworkers: 2\nlog: { level: warn }\nexternalUrl: https://file.example.com\n');
    const env = { KUBEGATE_LISTEN: '127.0.0.1:1002', KUBEGATE_WORKERS: '3', KUBEGATE_EXTERNAL_URL: 'https://env.example.com' };
    const config = loadProxyConfig({ file, env, flags: { listen: '127.0.0.1:1003', logLevel: 'error' } });
    assert.equal(config.listen, '127.0.0.1:1003', 'flag beats env beats file');
    assert.equal(config.workers, 3, 'env beats file');
    assert.equal(config.log.level, 'error', 'flag beats file');
    assert.equal(config.externalUrl, 'https://env.example.com');
  });

  it('maps each documented environment variable to its setting', () => {
    const config = loadProxyConfig({
      env: {
        KUBEGATE_LISTEN: '[::]:7443',
        KUBEGATE_DATA_DIR: join(dir, 'env-data'),
        KUBEGATE_STORE_URL: 'postgresql://u:p@db/kubegate',
        KUBEGATE_SECRET_KEY: SECRET_KEY,
        KUBEGATE_BOOTSTRAP_PASSWORD: 'from-the-environment',
        KUBEGATE_EXTERNAL_URL: 'https://k.example.com:7443',
        KUBEGATE_LOG_LEVEL: 'trace',
        KUBEGATE_LOG_SLOW_REQUEST_MS: '100',
        KUBEGATE_WORKERS: '8',
        KUBEGATE_METRICS_LISTEN: 'none',
        KUBEGATE_UNRELATED: 'ignored',
      },
    });
    assert.equal(config.listen, '[::]:7443');
    assert.equal(config.dataDir, join(dir, 'env-data'));
    assert.deepEqual(config.store, { type: 'postgres', url: 'postgresql://u:p@db/kubegate' });
    assert.equal(config.secretKey, SECRET_KEY);
    assert.equal(config.bootstrap.password, 'from-the-environment');
    assert.equal(config.externalUrl, 'https://k.example.com:7443');
    assert.equal(config.log.level, 'trace');
    assert.equal(config.log.slowRequestMs, 100);
    assert.equal(config.workers, 8);
    assert.equal(config.metrics.listen, undefined, 'none: no metrics listener');
  });

  it('lets KUBEGATE_STORE_URL replace a file-configured store whole, because a postgres store has no path', () => {
    const file = writeConfig('sqlite.yaml', `store: { type: sqlite, path: ${dir}/x.db }\nsecretKey: ${SECRET_KEY}\n`);
    const config = loadProxyConfig({ file, env: { KUBEGATE_STORE_URL: 'postgres://db/kubegate' } });
    assert.deepEqual(config.store, { type: 'postgres', url: 'postgres://db/kubegate' });
    const back = loadProxyConfig({ env: { KUBEGATE_STORE_URL: `sqlite:${dir}/other.db` } });
    assert.deepEqual(back.store, { type: 'sqlite', path: join(dir, 'other.db') });
  });

  it('treats an empty environment variable as unset, because manifests often template unset values to ""', () => {
    const config = loadProxyConfig({ env: { KUBEGATE_WORKERS: '', KUBEGATE_LISTEN: '' } });
    assert.equal(config.workers, 1);
    assert.equal(config.listen, '0.0.0.0:8443');
  });

  it('derives the external URL from the first SAN and the port, leaving out :443', () => {
    assert.equal(
      loadProxyConfig({ env: { KUBEGATE_LISTEN: '0.0.0.0:443' } }).externalUrl,
      'https://localhost',
    );
    const file = writeConfig('ipv6-san.yaml', 'listen: "[::]:8443"\ntls: { sans: ["fd00::1", localhost] }\n');
    assert.equal(loadProxyConfig({ env: {}, file }).externalUrl, 'https://[fd00::1]:8443');
  });

  it('leaves the external URL undefined on port 0, because the real port is only known once the server listens', () => {
    assert.equal(loadProxyConfig({ env: { KUBEGATE_LISTEN: '127.0.0.1:0' } }).externalUrl, undefined);
  });

  it('returns a deeply frozen object, because every part of the process shares one configuration', () => {
    const file = writeConfig('frozen.yaml', 'providers:\n  - { name: corp, type: ldap, settings: { servers: [a, b] } }\n');
    const config = loadProxyConfig({ env: {}, file });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.tls.sans));
    assert.ok(Object.isFrozen(config.tokens));
    assert.ok(Object.isFrozen(config.providers[0]?.settings));
    assert.ok(Object.isFrozen((config.providers[0]?.settings as { servers: string[] }).servers));
    assert.throws(() => {
      (config as { workers: number }).workers = 2;
    }, TypeError);
  });

  it('gives the JWT issuer a 5-minute token lifetime and weekly key rotation, and refuses lifetimes that would defeat revocation', () => {
    assert.deepEqual(loadProxyConfig({ env: {} }).issuer, { tokenTtlSeconds: 300, keyRotationSeconds: 7 * 86_400 });
    const file = writeConfig('issuer.yaml', 'issuer:\n  tokenTtl: 2h\n  keyRotation: 10m\n');
    const error = configError(() => loadProxyConfig({ env: {}, file }));
    assert.match(error.message, /issuer\.tokenTtl \(.*\): must be between 1m and 1h/);
    assert.match(error.message, /issuer\.keyRotation \(.*\): must be between 1h and 365d/);
  });

  it('reads identity.forwardedExtras as a set of extra keys (undefined by default: all of kubegate\'s own), and names a bad key by its path', () => {
    assert.equal(loadProxyConfig({ env: {} }).identity.forwardedExtras, undefined);
    const good = writeConfig('extras.yaml', 'identity:\n  forwardedExtras: [kubegate.io/login-name, kubegate.io/login-name, acme.com/team]\n');
    assert.deepEqual(loadProxyConfig({ env: {}, file: good }).identity.forwardedExtras, ['kubegate.io/login-name', 'acme.com/team']);
    const bad = writeConfig('bad-extras.yaml', 'identity:\n  forwardedExtras: [kubegate.io/login-name, "Bad Key"]\n');
    const error = configError(() => loadProxyConfig({ env: {}, file: bad }));
    assert.equal(error.field, 'identity.forwardedExtras[1]');
    assert.match(error.message, /identity\.forwardedExtras\[1\].*must be a lower-case extra key/);
  });

  it('rejects postgres without secretKey, because every replica must decrypt what another one stored', () => {
    const error = configError(() => loadProxyConfig({ env: { KUBEGATE_STORE_URL: 'postgres://db/kubegate' } }));
    assert.equal(error.field, 'secretKey');
    assert.match(error.message, /^secretKey: is required with the postgres store/);
  });

  it('starts each problem with the field path, so that the operator knows what to fix', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['listen: localhost\n', 'listen', /^listen \(.*:1\): must be HOST:PORT/],
      ['listen: "1.2.3.4:70000"\n', 'listen', /^listen .*must be HOST:PORT/],
      ['externalUrl: http://plain.example.com\n', 'externalUrl', /^externalUrl .*must be an https:\/\/ URL/],
      ['tls: { sans: [] }\n', 'tls.sans', /^tls\.sans .*must have at least 1 entries/],
      ['tls: { sans: ["bad name"] }\n', 'tls.sans[0]', /^tls\.sans\[0\] .*must be a DNS name or an IP address/],
      [`tls: { certFile: ${dir}/c.pem }\n`, 'tls.keyFile', /^tls\.keyFile .*is required when the other/],
      ['store: { type: postgres, url: "mysql://db/x" }\nsecretKey: ' + SECRET_KEY + '\n', 'store.url', /^store\.url .*must be a postgres:\/\/ or postgresql:\/\/ URL/],
      ['store: { type: mysql }\n', 'store.type', /^store\.type .*must be one of sqlite, postgres/],
      ['secretKey: c2hvcnQ=\n', 'secretKey', /^secretKey .*must be 32 random bytes in base64/],
      ['bootstrap: { password: short }\n', 'bootstrap.password', /^bootstrap\.password .*must be at least 8 characters long/],
      ['bootstrap: { username: "has space" }\n', 'bootstrap.username', /^bootstrap\.username /],
      ['tokens: { loginTtl: 3 weeks }\n', 'tokens.loginTtl', /^tokens\.loginTtl .*must be a positive duration/],
      ['tokens: { apiTtl: 0 }\n', 'tokens.apiTtl', /^tokens\.apiTtl .*must be a positive duration/],
      ['tokens: { kubeconfigTtl: 91d }\n', 'tokens.kubeconfigTtl', /^tokens\.kubeconfigTtl .*: must not be longer than tokens\.kubeconfigMaxTtl/],
      ['tokens: { apiTtl: 2d, apiMaxTtl: 1d }\n', 'tokens.apiTtl', /^tokens\.apiTtl .*: must not be longer than tokens\.apiMaxTtl/],
      ['authCache: { maxEntries: 0 }\n', 'authCache.maxEntries', /^authCache\.maxEntries .*must be a whole number from 1/],
      ['loginRateLimit: { windowSeconds: 1.5 }\n', 'loginRateLimit.windowSeconds', /^loginRateLimit\.windowSeconds .*whole number/],
      ['loginRateLimit: { maxFailuresPerAddress: 0 }\n', 'loginRateLimit.maxFailuresPerAddress', /^loginRateLimit\.maxFailuresPerAddress .*whole number from 1/],
      ['trustedProxies: [10.0.0.0/8, 10.0.0.0/33]\n', 'trustedProxies[1]', /^trustedProxies\[1\] .*must be an IP address or CIDR/],
      ['trustedProxies: 10.0.0.0/8\n', 'trustedProxies', /^trustedProxies .*must be a list/],
      ['upstream: { connectTimeoutSeconds: "ten" }\n', 'upstream.connectTimeoutSeconds', /^upstream\.connectTimeoutSeconds .*whole number/],
      ['upstream: { idleTimeoutSeconds: 0 }\n', 'upstream.idleTimeoutSeconds', /^upstream\.idleTimeoutSeconds .*must be a whole number from 1 to 3600/],
      ['workers: 0\n', 'workers', /^workers .*must be a whole number from 1 to 64/],
      ['metrics: { listen: "9464" }\n', 'metrics.listen', /^metrics\.listen .*must be HOST:PORT, e\.g\. 127\.0\.0\.1:9464, or none/],
      ['audit: { enabled: "yes please" }\n', 'audit.enabled', /^audit\.enabled .*must be a boolean/],
      ['log: { level: loud }\n', 'log.level', /^log\.level .*must be one of fatal, error, warn, info, debug, trace, silent/],
      ['log: { slowRequestMs: -1 }\n', 'log.slowRequestMs', /^log\.slowRequestMs .*must be a whole number from 0/],
      ['log: { slowRequestMs: 0.5 }\n', 'log.slowRequestMs', /^log\.slowRequestMs .*whole number/],
      ['providers: [{ name: Corp, type: ldap }]\n', 'providers[0].name', /^providers\[0\]\.name .*lower-case/],
      ['providers: [{ name: corp }]\n', 'providers[0].type', /^providers\[0\]\.type .*is required/],
      ['providers: [{ name: a, type: local }, { name: a, type: ldap }]\n', 'providers[1].name', /^providers\[1\]\.name .*: is used by another provider/],
      ['providers: { name: a }\n', 'providers', /^providers .*must be a list/],
      ['oidcBearer: { provider: local }\n', 'oidcBearer.provider', /^oidcBearer\.provider .*: must name an enabled provider of type oidc/],
      ['tls: 5\n', 'tls', /^tls .*must be a mapping/],
      ['console: { sessionTtl: 100d }\n', 'console.sessionTtl', /^console\.sessionTtl .*: must not be longer than tokens\.loginTtl or tokens\.apiMaxTtl/],
      ['console: { enabled: 1 }\n', 'console.enabled', /^console\.enabled .*must be a boolean/],
    ];
    for (const [yaml, field, pattern] of cases) {
      const file = writeConfig('case.yaml', yaml);
      const error = configError(() => loadProxyConfig({ env: {}, file }));
      assert.equal(error.field, field, `${yaml} → ${error.message}`);
      assert.match(error.message, pattern, yaml);
    }
  });

  it('names the unknown key and its line, because a misspelt setting would otherwise be silently ignored', () => {
    const file = writeConfig('typo.yaml', 'listen: 0.0.0.0:8443\ntls:\n  sans: [localhost]\n  certfile: /x\n');
    const error = configError(() => loadProxyConfig({ env: {}, file }));
    assert.equal(error.field, 'tls.certfile');
    assert.equal(error.message, `tls.certfile (${file}:4): unknown setting (check the spelling)`);
  });

  it('reports every problem in one error, so that a broken file is fixed in one round', () => {
    const file = writeConfig('many.yaml', 'listen: nope\nworkrs: 2\nlog: { level: loud }\n');
    const error = configError(() => loadProxyConfig({ env: { KUBEGATE_STORE_URL: 'postgres://db/x' }, file }));
    const lines = error.message.split('; ');
    assert.equal(lines.length, 4, error.message);
    assert.match(lines[0] ?? '', /^listen /);
    assert.match(error.message, /log\.level \(.*:3\): must be one of/);
    assert.match(error.message, /workrs \(.*:2\): unknown setting/);
    assert.match(error.message, /secretKey: is required with the postgres store/);
  });

  it('names the environment variable or flag that set a bad value, because that is where the operator must look', () => {
    const fromEnv = configError(() => loadProxyConfig({ env: { KUBEGATE_WORKERS: 'many' } }));
    assert.equal(fromEnv.message, 'env KUBEGATE_WORKERS: must be a whole number from 1 to 64');
    assert.equal(fromEnv.field, 'workers');
    const badStore = configError(() => loadProxyConfig({ env: { KUBEGATE_STORE_URL: 'mysql://db', KUBEGATE_SECRET_KEY: SECRET_KEY } }));
    assert.equal(badStore.message, 'env KUBEGATE_STORE_URL: must be a postgres:// or postgresql:// URL');
    assert.equal(badStore.field, 'store.url');
    const fromFlag = configError(() => loadProxyConfig({ env: {}, flags: { listen: 'everywhere', workers: '65' } }));
    assert.equal(fromFlag.message, 'flag --listen: must be HOST:PORT, e.g. 0.0.0.0:8443 or [::]:8443; flag --workers: must be a whole number from 1 to 64');
  });

  it('never repeats a rejected value, because a misplaced secret must not reach a log line', () => {
    const secret = 'Sup3r-Secret-Value-0123456789';
    const file = writeConfig('leak.yaml', `listen: ${secret}\nbootstrap: { username: "${secret} " }\nsecretKey: ${secret}\n`);
    const error = configError(() =>
      loadProxyConfig({ env: { KUBEGATE_WORKERS: secret, KUBEGATE_LOG_LEVEL: secret, KUBEGATE_STORE_URL: secret }, file }),
    );
    assert.ok(!error.message.includes(secret), error.message);
  });

  it('refuses an unknown flag with a TypeError, because that is a bug in the calling command', () => {
    assert.throws(() => loadProxyConfig({ env: {}, flags: { port: 1 } as never }), TypeError);
  });

  it('reports malformed YAML as CONFIG_UNREADABLE with the file and line', () => {
    const file = writeConfig('broken.yaml', 'listen: 0.0.0.0:8443\nlisten: 0.0.0.0:9443\n');
    const duplicate = configError(() => loadProxyConfig({ env: {}, file }), 'CONFIG_UNREADABLE');
    assert.match(duplicate.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: `));
    const unclosed = writeConfig('unclosed.yaml', 'tls:\n  sans: [localhost,\n');
    assert.match(configError(() => loadProxyConfig({ env: {}, file: unclosed }), 'CONFIG_UNREADABLE').message, /unclosed\.yaml:\d+:\d+: /);
  });

  it('does not quote file content in a YAML error, because the broken line may hold a password', () => {
    const file = writeConfig('quote.yaml', 'bootstrap:\n  password: "hunter2-unterminated\n');
    const error = configError(() => loadProxyConfig({ env: {}, file }), 'CONFIG_UNREADABLE');
    assert.ok(!error.message.includes('hunter2'), error.message);
  });

  it('refuses a file over 1 MiB, because a configuration is a few kilobytes and a huge file is a mistake', () => {
    const file = writeConfig('huge.yaml', `# ${'x'.repeat(MAX_CONFIG_FILE_BYTES)}\n`);
    const error = configError(() => loadProxyConfig({ env: {}, file }), 'CONFIG_UNREADABLE');
    assert.match(error.message, /is larger than 1048576 bytes/);
  });

  it('reports a missing file and a directory as CONFIG_UNREADABLE naming the path', () => {
    assert.match(configError(() => loadProxyConfig({ env: {}, file: join(dir, 'absent.yaml') }), 'CONFIG_UNREADABLE').message, /absent\.yaml: cannot be opened \(ENOENT\)/);
    assert.match(configError(() => loadProxyConfig({ env: {}, file: dir }), 'CONFIG_UNREADABLE').message, /is not a regular file/);
  });

  it('accepts an empty file and refuses a file that is a list, because settings are a mapping', () => {
    assert.equal(loadProxyConfig({ env: {}, file: writeConfig('empty.yaml', '# nothing yet\n') }).listen, '0.0.0.0:8443');
    const error = configError(() => loadProxyConfig({ env: {}, file: writeConfig('list.yaml', '- listen\n') }));
    assert.match(error.message, /must be a mapping of settings/);
  });

  it('treats __proto__ in a file as an unknown key, because YAML must not reach object prototypes', () => {
    const file = writeConfig('proto.yaml', '__proto__:\n  workers: 9\n');
    const error = configError(() => loadProxyConfig({ env: {}, file }));
    assert.match(error.message, /^__proto__ .*unknown setting/);
    assert.equal(({} as { workers?: number }).workers, undefined);
  });

  it('reports an alias bomb as CONFIG_UNREADABLE instead of expanding it', () => {
    let yaml = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let level = 1; level < 12; level++) {
      yaml += `a${level}: &a${level} [${Array.from({ length: 10 }, () => `*a${level - 1}`).join(', ')}]\n`;
    }
    const error = configError(() => loadProxyConfig({ env: {}, file: writeConfig('bomb.yaml', yaml) }), 'CONFIG_UNREADABLE');
    assert.match(error.message, /too many YAML aliases/);
  });
});

describe('configForLog', () => {
  it('hides the secret key, the bootstrap password, the database password and provider settings', () => {
    const config: ProxyConfig = loadProxyConfig({
      env: {
        KUBEGATE_STORE_URL: 'postgres://kubegate:db-pass-123@db/kubegate?sslpassword=ssl-pass-456',
        KUBEGATE_SECRET_KEY: SECRET_KEY,
        KUBEGATE_BOOTSTRAP_PASSWORD: 'bootstrap-pass-789',
      },
      file: writeConfig('log.yaml', 'providers: [{ name: gh, type: github, settings: { clientSecret: gh-secret-000 } }]\n'),
    });
    const text = JSON.stringify(configForLog(config));
    for (const secret of ['db-pass-123', 'ssl-pass-456', SECRET_KEY, 'bootstrap-pass-789', 'gh-secret-000']) {
      assert.ok(!text.includes(secret), `${secret} leaked into ${text}`);
    }
    assert.match(text, /"listen":"0\.0\.0\.0:8443"/);
    assert.match(text, /postgres:\/\/kubegate:REDACTED@db\/kubegate/);
  });

  it('reaches the start log line with bootstrap.resetPassword readable and the password not, because the flag is what an operator checks', () => {
    const config = loadProxyConfig({ env: { KUBEGATE_SECRET_KEY: SECRET_KEY, KUBEGATE_BOOTSTRAP_PASSWORD: 'bootstrap-pass-reset-1', KUBEGATE_BOOTSTRAP_RESET_PASSWORD: 'true' } });
    const chunks: string[] = [];
    createLogger({ level: 'info', name: 'proxy', destination: { write: (chunk: string) => void chunks.push(chunk) } }).info({ config: configForLog(config) }, 'starting kubegate proxy');
    const line = chunks.join('');
    assert.ok(!line.includes('bootstrap-pass-reset-1'), line);
    const logged = (JSON.parse(line) as { config: { bootstrap: Record<string, unknown> } }).config.bootstrap;
    assert.deepEqual(logged, { username: 'admin', password: REDACTED, resetPassword: true });
  });
});
