/**
 * LDAP through the whole proxy, as an operator sets it up: real slapd as the `corp`
 * provider, a cluster whose membership is granted to an LDAP group, real kubectl with a
 * downloaded kubeconfig — and access that follows the directory: a user removed from the
 * group loses the cluster, a user deleted from the directory loses every token, by
 * themselves (background group refresh), with no admin action in kubegate.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { parse } from 'yaml';
import { createLogger } from '../../src/log.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { ApiClient } from '../support/api-client.js';
import { eventually } from '../support/eventually.js';
import { installKubegateCli } from '../support/kubegate-cli.js';
import { runKubectl } from '../support/kubectl.js';
import { startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';
import { replaceAttribute, SEED, startSlapd, ldapProviderSettings } from '../support/slapd.js';
import type { TestSlapd } from '../support/slapd.js';

const OPS_GROUP = `corp:${SEED.groups.ops}`;

describe('an LDAP user reaches a cluster through the proxy, and access follows the directory', () => {
  let fixture: ProxyFixture;
  let dir: string;
  let slapd: TestSlapd;
  let fake: FakeKubeApiServer;
  let api: ApiClient;
  let adminToken: string;
  let aliceToken: string;
  let kubeconfigPath: string;

  before(async () => {
    slapd = await startSlapd();
    fixture = await startProxyFixture({
      name: 'ldap-e2e',
      clusterId: 'prod',
      config: () => ({
        groupRefresh: { maxAge: '1s', interval: '1s' },
        providers: [
          { name: 'local', type: 'local' },
          {
            name: 'corp',
            type: 'ldap',
            settings: ldapProviderSettings(slapd),
          },
        ],
      }),
      logger: (fixtureDir) => createLogger({ level: 'warn', name: 'proxy', destination: pino.destination({ dest: join(fixtureDir, 'proxy.log'), sync: true }) }),
    });
    ({ dir, fake, api, adminToken } = fixture);
    const member = await api.request('POST', '/v1/clusters/prod/members', {
      token: adminToken,
      // Written as an admin might copy it from a directory browser: upper case, spaces.
      body: { kind: 'Group', name: 'corp:CN=ops, OU=groups, DC=example, DC=org', role: 'member' },
    });
    assert.equal(member.status, 201, member.text);
    assert.equal(member.json.name, OPS_GROUP, 'the group is stored as logins spell it, so it matches');
  });

  after(async () => {
    await fixture?.close();
    await slapd?.stop();
  });

  test('an LDAP login answers a token and the provider-prefixed DN groups of the user', async () => {
    const login = await api.request('POST', '/v1/login', { body: { provider: 'corp', username: 'alice', password: SEED.users.alice.password } });
    assert.equal(login.status, 201, login.text);
    aliceToken = login.json.token;
    assert.ok(login.json.user.groups.includes(OPS_GROUP), `groups: ${JSON.stringify(login.json.user.groups)}`);
    assert.ok(login.json.user.groups.every((group: string) => group.startsWith('corp:') || group === 'system:authenticated'));
  });

  test('the same directory user is found again on the next login, so the user ID is stable', async () => {
    const again = await api.request('POST', '/v1/login', { body: { provider: 'corp', username: 'alice', password: SEED.users.alice.password } });
    const first = await api.request('GET', '/v1/me', { token: aliceToken });
    const second = await api.request('GET', '/v1/me', { token: again.json.token });
    assert.equal(first.json.id, second.json.id);
  });

  test('wrong passwords, LDAP filter injection and empty passwords are plain login failures', async () => {
    for (const [username, password] of [
      ['alice', 'not-her-password'],
      ['*', SEED.users.alice.password],
      ['alice)(uid=*', SEED.users.alice.password],
      ['*)(|(uid=*', 'x'],
    ] as const) {
      const answer = await api.request('POST', '/v1/login', { body: { provider: 'corp', username, password } });
      assert.equal(answer.status, 401, `${username}: ${answer.text}`);
      assert.equal(answer.json.error.code, 'LOGIN_FAILED');
    }
    const empty = await api.request('POST', '/v1/login', { body: { provider: 'corp', username: 'alice', password: '' } });
    assert.ok(empty.status === 400 || empty.status === 401, empty.text);
  });

  test('kubectl reaches the cluster as the LDAP user, and the cluster sees the LDAP groups', async () => {
    const kubeconfig = await api.request('GET', '/v1/clusters/prod/kubeconfig', { token: aliceToken });
    assert.equal(kubeconfig.status, 200, kubeconfig.text);
    kubeconfigPath = join(dir, 'alice.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig.text, { mode: 0o600 });
    assert.equal(parse(kubeconfig.text)['current-context'], 'prod');
    const before = fake.requests.length;
    const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods'] });
    assert.equal(result.code, 0, result.stderr);
    const list = fake.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    assert.ok(list?.user?.groups.includes(OPS_GROUP), `groups upstream: ${JSON.stringify(list?.user?.groups)}`);
    assert.ok(list?.user?.groups.includes('system:authenticated'));
    assert.deepEqual(list?.user?.extra['kubegate.io/provider'], ['corp']);
  });

  test('kubectl logs in through the LDAP provider by itself with the exec plugin kubeconfig', async () => {
    const kubeconfig = await api.request('GET', '/v1/clusters/prod/kubeconfig?auth=exec', { token: aliceToken });
    assert.equal(kubeconfig.status, 200, kubeconfig.text);
    assert.deepEqual(parse(kubeconfig.text).users[0].user.exec.args.slice(-2), ['--provider', 'corp']);
    const execKubeconfig = join(dir, 'alice-exec.kubeconfig');
    await writeFile(execKubeconfig, kubeconfig.text, { mode: 0o600 });
    const bin = await installKubegateCli(join(dir, 'bin'));
    const before = fake.requests.length;
    const result = await runKubectl({
      binary: 'system',
      kubeconfig: execKubeconfig,
      args: ['get', 'pods'],
      env: {
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        XDG_CACHE_HOME: join(dir, 'cache'),
        KUBEGATE_USERNAME: 'alice',
        KUBEGATE_PASSWORD: SEED.users.alice.password,
      },
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 0, result.stderr);
    const list = fake.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    assert.ok(list?.user?.groups.includes(OPS_GROUP));
  });

  test('removed from the LDAP group, the user loses the cluster by itself once the groups are refreshed', async () => {
    // groupOfNames must keep a member: the group now holds bob only.
    await slapd.asAdmin((client) => replaceAttribute(client, SEED.groups.ops, 'member', [SEED.users.bob.dn]));
    await eventually(
      async () => {
        const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods'] });
        return result.code !== 0 && /forbidden/i.test(result.stderr);
      },
      15_000,
      'kubectl to be forbidden after the group change',
    );
  });

  test('a group membership can be removed by any spelling of its DN', async () => {
    const added = await api.request('POST', '/v1/clusters/prod/members', { token: adminToken, body: { kind: 'Group', name: `corp:${SEED.groups.devs}`, role: 'viewer' } });
    assert.equal(added.status, 201, added.text);
    const spelled = encodeURIComponent('corp:CN=devs, OU=groups, DC=example, DC=org');
    const removed = await api.request('DELETE', `/v1/clusters/prod/members/Group/${spelled}`, { token: adminToken });
    assert.equal(removed.status, 204, removed.text);
  });

  test('deleted from the directory, the user loses every token by itself', async () => {
    await slapd.asAdmin((client) => client.del(SEED.users.alice.dn));
    await eventually(async () => (await api.request('GET', '/v1/me', { token: aliceToken })).status === 401, 15_000, 'the session token to be revoked');
    const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfigPath, args: ['get', 'pods'] });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Unauthorized|must be logged in/);
  });

  test('with the directory down, a login is 503 PROVIDER_UNAVAILABLE, never a wrong password', async () => {
    await slapd.stop();
    const answer = await api.request('POST', '/v1/login', { body: { provider: 'corp', username: 'bob', password: SEED.users.bob.password } });
    assert.equal(answer.status, 503, answer.text);
    assert.equal(answer.json.error.code, 'PROVIDER_UNAVAILABLE');
  });
});
