/**
 * Provider health end to end: the real proxy (startProxyFixture) with a local provider, LDAP
 * against a real slapd, OIDC against a real OIDC provider (oidc-provider), and GitHub against
 * the strict fake (GitHub itself cannot run here). The background checks run every second;
 * the test reads what admins see — GET /v1/providers with `health`, the
 * `kubegate_provider_up` metric, `kubegate provider list` — while slapd is stopped and
 * started again, GitHub's API fails and recovers, and the OIDC issuer goes away.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { readFile } from 'node:fs/promises';
import { createLogger } from '../../src/log.js';
import { startFakeGithub, type FakeGithub } from '../fakes/github.js';
import { eventually } from '../support/eventually.js';
import { installKubegateCli, runKubegateCli } from '../support/kubegate-cli.js';
import { CLIENT_ID, CLIENT_SECRET, startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { FIXTURE_ADMIN_PASSWORD, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.js';
import { SEED, startSlapd, type TestSlapd, ldapProviderSettings } from '../support/slapd.js';
import { scrapeMetrics } from '../support/scrape-metrics.js';

const GITHUB_SECRET = 'github-client-secret-for-health-0123';

interface HealthView {
  readonly state: string;
  readonly checkedAt: string | null;
  readonly message: string | null;
}

describe('identity provider health, checked in the background', () => {
  let slapd: TestSlapd;
  let issuer: OidcIssuer;
  let github: FakeGithub;
  let fixture: ProxyFixture;

  async function healthOf(token?: string): Promise<Map<string, HealthView | undefined>> {
    const answer = await fixture.api.request('GET', '/v1/providers', token === undefined ? {} : { token });
    assert.equal(answer.status, 200, answer.text);
    return new Map((answer.json.items as { name: string; health?: HealthView }[]).map((item) => [item.name, item.health]));
  }

  async function waitForState(provider: string, state: string): Promise<HealthView> {
    let seen: HealthView | undefined;
    await eventually(
      async () => {
        seen = (await healthOf(fixture.adminToken)).get(provider);
        return seen?.state === state;
      },
      20_000,
      `${provider} to be ${state}`,
    );
    return seen!;
  }

  async function upMetric(provider: string): Promise<string | undefined> {
    const text = await scrapeMetrics(fixture.proxy.metricsUrl!);
    return new RegExp(`^kubegate_provider_up\\{provider="${provider}"\\} (\\S+)$`, 'm').exec(text)?.[1];
  }

  before(async () => {
    slapd = await startSlapd();
    issuer = await startOidcIssuer({ redirectUris: ['https://127.0.0.1/v1/login/sso/callback'] });
    github = await startFakeGithub({ clientId: 'Iv1.health', clientSecret: GITHUB_SECRET, redirectUris: ['https://127.0.0.1/v1/login/gh/callback'] });
    fixture = await startProxyFixture({
      name: 'provider-health',
      config: () => ({
        providerHealth: { interval: '1s', timeout: '5s' },
        providers: [
          { name: 'local', type: 'local' },
          {
            name: 'corp',
            type: 'ldap',
            settings: ldapProviderSettings(slapd),
          },
          { name: 'sso', type: 'oidc', settings: { issuer: issuer.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureIssuerForTests: true, timeoutSeconds: 2 } },
          {
            name: 'gh',
            type: 'github',
            settings: { clientId: 'Iv1.health', clientSecret: GITHUB_SECRET, oauthUrl: github.url, apiUrl: github.url, allowInsecureUrlsForTests: true, timeoutSeconds: 2 },
          },
        ],
      }),
      logger: (dir) => createLogger({ level: 'info', name: 'proxy', destination: pino.destination({ dest: join(dir, 'proxy.log'), sync: true }) }),
    });
  });

  after(async () => {
    await fixture?.close();
    await github?.close();
    await issuer?.close();
    await slapd?.stop();
  });

  test('every provider turns healthy after its first check, and admins see when it was checked', async () => {
    for (const name of ['local', 'corp', 'sso', 'gh']) {
      const health = await waitForState(name, 'healthy');
      assert.ok(health.checkedAt !== null && !Number.isNaN(Date.parse(health.checkedAt)), `${name} has a check time`);
      assert.equal(health.message, null);
      assert.equal(await upMetric(name), '1');
    }
    // The GitHub check is an anonymous GET of /rate_limit, with the User-Agent GitHub requires.
    const check = github.requests.find((request) => request.url === '/rate_limit');
    assert.ok(check, 'GitHub was checked');
    assert.equal(check.authorization, undefined);
    assert.equal(check.userAgent, 'kubegate');
  });

  test('anonymous callers, a non-admin and a token that does not authenticate get the list without health', async () => {
    const user = await fixture.addUser('nina', { role: null });
    for (const token of [undefined, user.token, 'kg_not-a-token:whatever']) {
      const health = await healthOf(token);
      assert.deepEqual([...health.keys()], ['local', 'corp', 'sso', 'gh'], 'the list itself is public');
      for (const [name, view] of health) assert.equal(view, undefined, `${name} health for ${token === undefined ? 'anonymous' : 'a non-admin'}`);
    }
  });

  test('slapd stopped: the LDAP provider turns unhealthy with a message that holds no password; started again: healthy', async () => {
    await slapd.pause();
    const down = await waitForState('corp', 'unhealthy');
    assert.match(down.message ?? '', /ECONNREFUSED|connect/i);
    assert.ok(!(down.message ?? '').includes(SEED.service.password), 'the service account password is never shown');
    assert.equal(await upMetric('corp'), '0');
    assert.equal((await healthOf(fixture.adminToken)).get('local')?.state, 'healthy', 'the other providers are unaffected');

    await slapd.resume();
    const back = await waitForState('corp', 'healthy');
    assert.equal(back.message, null);
    assert.equal(await upMetric('corp'), '1');
    const log = await readFile(join(fixture.dir, 'proxy.log'), 'utf8');
    assert.match(log, /identity provider is unhealthy/);
    assert.match(log, /identity provider is healthy again/);
    assert.ok(!log.includes(SEED.service.password));
  });

  test('GitHub answering 503: unhealthy, naming the answer; answering again: healthy', async () => {
    github.apiDown = true;
    const down = await waitForState('gh', 'unhealthy');
    assert.match(down.message ?? '', /503/);
    assert.ok(!(down.message ?? '').includes(GITHUB_SECRET));
    github.apiDown = false;
    await waitForState('gh', 'healthy');
  });

  test('kubegate provider list shows an admin the health of every provider', async () => {
    const bin = await installKubegateCli(join(fixture.dir, 'bin'));
    const env = {
      HOME: fixture.dir,
      KUBEGATE_SERVER: fixture.proxy.url,
      KUBEGATE_CA_DATA: Buffer.from(fixture.proxy.caPem!).toString('base64'),
      KUBEGATE_USERNAME: 'admin',
      KUBEGATE_PASSWORD: FIXTURE_ADMIN_PASSWORD,
    };
    const json = await runKubegateCli(bin, ['provider', 'list', '-o', 'json', '--provider', 'local'], { env });
    assert.equal(json.code, 0, json.stderr);
    const items = JSON.parse(json.stdout).items as { name: string; health: HealthView }[];
    assert.deepEqual(
      items.map((item) => [item.name, item.health.state]),
      [
        ['local', 'healthy'],
        ['corp', 'healthy'],
        ['sso', 'healthy'],
        ['gh', 'healthy'],
      ],
    );
    const table = await runKubegateCli(bin, ['provider', 'list', '--provider', 'local'], { env });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME\s+TYPE\s+LOGIN\s+HEALTH\s+CHECKED\s+PROBLEM/);
    assert.match(table.stdout, /^corp\s+ldap\s+password\s+healthy\s/m);
  });

  test('the OIDC issuer gone: unhealthy, because discovery fails', async () => {
    await issuer.close();
    const down = await waitForState('sso', 'unhealthy');
    assert.match(down.message ?? '', /discovery failed/);
    assert.ok(!(down.message ?? '').includes(CLIENT_SECRET));
    assert.equal(await upMetric('sso'), '0');
  });
});
