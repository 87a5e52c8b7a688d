/**
 * What a `kubegate proxy` process loads (BENCHMARKS.md, "kubegate's memory"): a library a
 * configuration does not use is not imported, because every loaded package stays in memory
 * for the life of the process. A proxy on SQLite with local users only and its own
 * certificate files loads neither the PostgreSQL client, nor the LDAP, OIDC or JOSE
 * libraries, nor the certificate toolkit, nor the Kubernetes client, nor the agent's or the
 * webhook's code. These tests fail as soon as someone imports one of them eagerly again.
 * The process is the real command (src/cmd/main.ts), with a resolve hook that records every
 * module it loads (test/support/record-module-loads.ts).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { createCertificateAuthority, issueServingCertificate } from '../../src/pki/certificates.js';
import { spawnProxy } from '../support/proxy-process.js';

const RECORDER = new URL('../support/record-module-loads.ts', import.meta.url).pathname;

interface Loaded {
  /** npm packages (`pg`, `@peculiar/x509`). */
  readonly packages: ReadonlySet<string>;
  /** kubegate's own modules, relative to src/ (`agent/agent.ts`). */
  readonly sources: ReadonlySet<string>;
}

/** Starts the proxy with `config` (its files in `dir`), waits until it serves, stops it; answers what it had loaded by then. */
async function loadedBy(dir: string, config: Record<string, unknown>): Promise<Loaded> {
  await mkdir(dir);
  const configFile = join(dir, 'kubegate.yaml');
  const loadsFile = join(dir, 'module-loads.txt');
  await writeFile(configFile, stringify(config));
  await writeFile(loadsFile, '');
  const proxy = await spawnProxy({
    dataDir: join(dir, 'data'),
    configFile,
    nodeArgs: ['--import', RECORDER],
    env: { KUBEGATE_BOOTSTRAP_PASSWORD: 'bootstrap-Password-1', KUBEGATE_TEST_MODULE_LOADS: loadsFile },
  });
  await proxy.kill();
  const packages = new Set<string>();
  const sources = new Set<string>();
  for (const url of (await readFile(loadsFile, 'utf8')).split('\n')) {
    const npmPackage = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
    if (npmPackage !== undefined) packages.add(npmPackage);
    const source = /\/src\/(.+\.ts)$/.exec(url)?.[1];
    if (source !== undefined && !url.includes('/node_modules/')) sources.add(source);
  }
  return { packages, sources };
}

describe('kubegate proxy loads only what its configuration uses', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-module-loading-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('on SQLite with local users and certificate files: no pg, ldapts, openid-client, jose, @peculiar/x509, Kubernetes client, agent or webhook code', async () => {
    const ca = await createCertificateAuthority({ commonName: 'module-loading CA', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'proxy', sans: ['127.0.0.1'], validityDays: 1 });
    await writeFile(join(dir, 'tls.crt'), serving.certPem);
    await writeFile(join(dir, 'tls.key'), serving.keyPem, { mode: 0o600 });
    const { packages, sources } = await loadedBy(join(dir, 'local-only'), {
      tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sans: ['127.0.0.1'] },
      providers: [{ name: 'local', type: 'local' }],
    });
    // The recorder sees what the proxy does load (so the absences below mean something).
    for (const used of ['better-sqlite3', 'express', 'prom-client', 'pino', 'zod']) assert.ok(packages.has(used), `${used} is loaded: ${[...packages].join(', ')}`);
    assert.ok(sources.has('cmd/proxy.ts') && sources.has('proxy/forward.ts'), "the proxy's own modules are recorded");
    for (const unused of ['pg', 'ldapts', 'openid-client', 'oauth4webapi', 'jose', '@peculiar/x509', '@kubernetes/client-node']) {
      assert.ok(!packages.has(unused), `${unused} is not loaded by a proxy that does not use it`);
    }
    const otherProcesses = [...sources].filter((source) => /^(agent|webhook)\/|^cmd\/(agent|webhook|login|token)\.ts$/.test(source));
    assert.deepEqual(otherProcesses, [], "the agent's, the webhook's and the CLI's login code are not loaded by a proxy");
    assert.ok(!sources.has('store/postgres.ts') && !sources.has('providers/ldap/provider.ts') && !sources.has('providers/oidc/oidc.ts'));
  });

  it("loads a provider kind's library when one is configured, and still not pg", async () => {
    const { packages, sources } = await loadedBy(join(dir, 'providers'), {
      providerHealth: { interval: '1h' },
      providers: [
        { name: 'local', type: 'local' },
        { name: 'corp', type: 'ldap', settings: { servers: ['127.0.0.1:1'], tls: 'none', serviceAccountDn: 'cn=svc,dc=example,dc=org', serviceAccountPassword: 'svc-Password-1', userSearchBase: 'ou=people,dc=example,dc=org' } },
        { name: 'sso', type: 'oidc', settings: { issuer: 'http://127.0.0.1:1', clientId: 'kubegate', clientSecret: 'oidc-Secret-1', allowInsecureIssuerForTests: true } },
      ],
    });
    assert.ok(packages.has('ldapts') && sources.has('providers/ldap/provider.ts'), 'an LDAP provider loads ldapts');
    assert.ok(packages.has('openid-client') && sources.has('providers/oidc/oidc.ts'), 'an OIDC provider loads openid-client');
    // No certificate files: the proxy makes its own CA and serving certificate.
    assert.ok(packages.has('@peculiar/x509'));
    assert.ok(!packages.has('pg') && !sources.has('store/postgres.ts'));
  });
});
