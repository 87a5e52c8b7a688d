/**
 * The admin CLI as an operator runs it: the real `kubegate` process (test/support/kubegate-cli.ts)
 * against a real proxy over TLS (startProxy), the fake API server as the cluster, and real
 * kubectl on the kubeconfig the CLI prints. Each person has their own HOME and token cache.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { parse, stringify } from 'yaml';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { installKubegateCli, runKubegateCli } from '../support/kubegate-cli.js';
import type { CliResult } from '../support/kubegate-cli.js';
import { buildKubeconfig, runKubectl } from '../support/kubectl.js';

const ADMIN_PASSWORD = 'bootstrap-Pa55word-cli';
const ALICE_PASSWORD = 'alice-Cli-pass-424242';
const CLUSTER_TOKEN = 'proxy-sa-token-cli-0123456789abcdef';

describe('kubegate admin CLI against a real proxy', () => {
  let dir: string;
  let fake: FakeKubeApiServer;
  let proxy: RunningProxy;
  let bin: string;
  let caFile: string;

  /** The environment of one person: their own HOME and cache, their password for logins. */
  function person(name: string, password: string): Record<string, string> {
    return { HOME: join(dir, `home-${name}`), XDG_CACHE_HOME: join(dir, `cache-${name}`), KUBEGATE_USERNAME: name, KUBEGATE_PASSWORD: password };
  }
  const admin = (): Record<string, string> => person('admin', ADMIN_PASSWORD);
  const alice = (): Record<string, string> => person('alice', ALICE_PASSWORD);

  async function kubegate(env: Record<string, string>, args: readonly string[], stdin?: string): Promise<CliResult> {
    return runKubegateCli(bin, args, { env, ...(stdin === undefined ? {} : { stdin }) });
  }

  async function ok(env: Record<string, string>, args: readonly string[], stdin?: string): Promise<CliResult> {
    const result = await kubegate(env, args, stdin);
    assert.equal(result.code, 0, `kubegate ${args.join(' ')}: ${result.stderr}`);
    return result;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-cli-'));
    fake = await startFakeKubeApiServer({ token: CLUSTER_TOKEN });
    const configFile = join(dir, 'kubegate.yaml');
    await writeFile(configFile, ['listen: 127.0.0.1:0', `dataDir: ${join(dir, 'data')}`, 'tls:', '  sans: ["127.0.0.1"]', 'audit:', '  enabled: false', 'metrics:', '  listen: none'].join('\n'));
    const config = loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } });
    proxy = await startProxy(config, { logger: createLogger({ level: 'warn', name: 'proxy', destination: pino.destination({ dest: join(dir, 'proxy.log'), sync: true }) }) });
    caFile = join(dir, 'kubegate-ca.pem');
    await writeFile(caFile, proxy.caPem!);
    bin = await installKubegateCli(join(dir, 'bin'));
  });

  after(async () => {
    await proxy?.stop();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('login to a proxy whose CA is not given says the certificate is not trusted and how to pass the CA, not that the proxy could not be reached', async () => {
    const untrusted = await kubegate(admin(), ['login', proxy.url]);
    assert.equal(untrusted.code, 8, untrusted.stderr);
    assert.match(untrusted.stderr, /^kubegate: PROXY_CERTIFICATE_UNTRUSTED: the TLS certificate of the proxy at https:\/\/127\.0\.0\.1:\d+ is not signed by a CA this machine trusts \([A-Z_]+\): pass the proxy's CA with --certificate-authority <file>/);
    assert.match(untrusted.stderr, /\/v1\/cacerts/);
    assert.doesNotMatch(untrusted.stderr, /could not be reached/);
    // A CA given, but not the proxy's: said so too.
    const otherCa = join(dir, 'other-ca.pem');
    await writeFile(otherCa, fake.caPem);
    const wrong = await kubegate(admin(), ['login', proxy.url, '--certificate-authority', otherCa]);
    assert.equal(wrong.code, 8, wrong.stderr);
    assert.match(wrong.stderr, /PROXY_CERTIFICATE_UNTRUSTED: .* is not signed by the CA given \([A-Z_]+\): pass the proxy's CA with --certificate-authority/);
  });

  test('login remembers the proxy and its CA, so whoami needs no flags', async () => {
    const login = await ok(admin(), ['login', proxy.url, '--certificate-authority', caFile]);
    assert.match(login.stderr, /^Logged in to https:\/\/127\.0\.0\.1:\d+ until /);
    const whoami = await ok(admin(), ['whoami', '-o', 'json']);
    assert.equal(JSON.parse(whoami.stdout).username, 'admin');
    assert.equal(JSON.parse(whoami.stdout).globalRole, 'admin');
    const table = await ok(admin(), ['whoami']);
    assert.match(table.stdout, /^USERNAME\s+ID\s+ROLE\s+PROVIDER\s+GROUPS\nadmin\s+u-[a-z2-7]{12}\s+admin\s+local\s+system:authenticated\n$/);
  });

  test('cluster add reads a kubeconfig context, so nobody base64-encodes a CA by hand', async () => {
    const kubeconfig = join(dir, 'dev-admin.kubeconfig');
    await writeFile(kubeconfig, stringify(buildKubeconfig({ server: fake.url, caPem: fake.caPem, token: CLUSTER_TOKEN })), { mode: 0o600 });
    const added = await ok(admin(), ['cluster', 'add', 'dev', '--kubeconfig', kubeconfig, '--display-name', 'Development', '-o', 'yaml']);
    const created = parse(added.stdout);
    assert.equal(created.id, 'dev');
    assert.equal(created.server, fake.url);
    assert.equal(created.credentialCheck.ok, true, 'the SelfSubjectAccessReviews allowed every impersonation the proxy needs');
    assert.doesNotMatch(added.stderr, /Warning/);
    assert.ok(!added.stdout.includes(CLUSTER_TOKEN), 'the credentials are never printed');
    const listed = await ok(admin(), ['cluster', 'list']);
    assert.match(listed.stdout, /^ID\s+SERVER\s+ROLE\s+STATE\s+VERSION\n/);
    assert.match(listed.stdout, new RegExp(`^dev\\s+${fake.url.replace(/\./g, '\\.')}\\s+owner\\s`, 'm'));
    const got = JSON.parse((await ok(admin(), ['cluster', 'get', 'dev', '-o', 'json'])).stdout);
    assert.equal(got.displayName, 'Development');
  });

  test('cluster add registers a cluster whose token is refused, and warns that its credential check failed', async () => {
    const kubeconfig = join(dir, 'stale.kubeconfig');
    await writeFile(kubeconfig, stringify(buildKubeconfig({ server: fake.url, caPem: fake.caPem, token: 'a-rotated-away-token' })), { mode: 0o600 });
    const added = await ok(admin(), ['cluster', 'add', 'stale', '--kubeconfig', kubeconfig]);
    assert.match(added.stdout, /^stale\s/m, 'registered all the same');
    assert.equal(added.stderr, "Warning: cluster stale is registered, but its credential check failed: the API server refused the proxy's credential (HTTP 401)\n");
    await ok(admin(), ['cluster', 'rm', 'stale']);
  });

  test('cluster rm of a cluster that cannot be reached says it is still being removed, list shows deleting, and rm --force forgets it', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((done) => closed.close(() => done()));
    const kubeconfig = join(dir, 'gone.kubeconfig');
    await writeFile(kubeconfig, stringify(buildKubeconfig({ server: `https://127.0.0.1:${port}`, caPem: fake.caPem, token: 'token-of-a-cluster-that-is-gone' })), { mode: 0o600 });
    await ok(admin(), ['cluster', 'add', 'gone', '--kubeconfig', kubeconfig]);

    const removing = await ok(admin(), ['cluster', 'rm', 'gone']);
    // The sync's error names the request and why it got no answer, never just 'no answer'.
    assert.match(removing.stderr, /^Cluster gone is being removed: .*\(not yet: KUBE_API_FAILED: GET \/api\/\S+ failed: no answer \(ECONNREFUSED\)\).*`kubegate cluster rm gone --force` forgets it at once\.\n$/s);
    assert.match((await ok(admin(), ['cluster', 'list'])).stdout, /^gone\s+\S+\s+\S+\s+deleting\s/m);

    const forgotten = await ok(admin(), ['cluster', 'rm', 'gone', '--force']);
    assert.equal(forgotten.stderr, 'Cluster gone removed.\n');
    assert.equal((await kubegate(admin(), ['cluster', 'get', 'gone'])).code, 5);
  });

  test('cluster add refuses a kubeconfig whose user needs an exec plugin, with exit code 2 and the field', async () => {
    const kubeconfig = join(dir, 'exec.kubeconfig');
    const config = buildKubeconfig({ server: fake.url, caPem: fake.caPem, user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } } });
    await writeFile(kubeconfig, stringify(config));
    const refused = await kubegate(admin(), ['cluster', 'add', 'eks', '--kubeconfig', kubeconfig]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^kubegate: BAD_REQUEST: --kubeconfig: its user logs in through an exec plugin/);
    const missing = await kubegate(admin(), ['cluster', 'add', 'eks', '--kubeconfig', join(dir, 'no-such-file')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--kubeconfig: the file cannot be read as a kubeconfig/);
    const neither = await kubegate(admin(), ['cluster', 'add', 'eks']);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /give exactly one of --kubeconfig \(a directly reachable cluster\) and --agent/);
    const usage = await kubegate(admin(), ['cluster', 'add']);
    assert.equal(usage.code, 2, 'a usage error');
    assert.match(usage.stderr, /missing required argument 'id'/);
  });

  test('cluster add --agent registers an agent-mode cluster and prints the command that installs its agent', async () => {
    const added = await ok(admin(), ['cluster', 'add', 'edge', '--agent']);
    assert.match(added.stdout, /^curl -fsS --cacert <\(echo [A-Za-z0-9+/=]+ \| base64 -d\) https:\/\/127\.0\.0\.1:\d+\/v1\/import\/r-[a-z2-7]+:[a-z2-7]+\.yaml \| kubectl apply -f -\n$/);
    assert.match(added.stderr, /^Cluster edge registered\. Install its agent with/);
    const listed = JSON.parse((await ok(admin(), ['cluster', 'get', 'edge', '-o', 'json'])).stdout);
    assert.equal(listed.mode, 'agent');
  });

  test('user add takes the password from stdin, and member add names the user by username', async () => {
    const added = await ok(admin(), ['user', 'add', 'alice', '--password-stdin', '-o', 'json'], `${ALICE_PASSWORD}\n`);
    const aliceId = JSON.parse(added.stdout).id as string;
    assert.match(aliceId, /^u-[a-z2-7]{12}$/);
    const users = JSON.parse((await ok(admin(), ['user', 'list', '-o', 'json'])).stdout);
    assert.ok(users.items.some((user: { username: string }) => user.username === 'alice'));
    await ok(admin(), ['member', 'add', 'dev', '--user', 'alice', '--role', 'member']);
    const members = JSON.parse((await ok(admin(), ['member', 'list', 'dev', '-o', 'json'])).stdout);
    assert.ok(members.items.some((m: { kind: string; name: string; role: string }) => m.kind === 'User' && m.name === aliceId && m.role === 'member'));
    await ok(admin(), ['member', 'add', 'dev', '--group', 'local:ops/team-a', '--role', 'viewer']);
    await ok(admin(), ['member', 'rm', 'dev', '--group', 'local:ops/team-a']);
    const after = JSON.parse((await ok(admin(), ['member', 'list', 'dev', '-o', 'json'])).stdout);
    assert.equal(after.items.some((m: { kind: string }) => m.kind === 'Group'), false, 'a group name with a slash is removed');
  });

  test('the member prints a kubeconfig that real kubectl uses against the cluster', async () => {
    await ok(alice(), ['login', proxy.url, '--certificate-authority', caFile]);
    const printed = await ok(alice(), ['kubeconfig', 'dev']);
    const path = join(dir, 'alice.kubeconfig');
    await writeFile(path, printed.stdout, { mode: 0o600 });
    const pods = await runKubectl({ binary: 'system', kubeconfig: path, args: ['get', 'pods'] });
    assert.equal(pods.code, 0, pods.stderr);
    assert.match(pods.stdout, /web-0\s+1\/1\s+Running/);
    const exec = parse((await ok(alice(), ['kubeconfig', 'dev', '--exec'])).stdout);
    assert.equal(exec.users[0].user.exec.command, 'kubegate');
  });

  test('the exec kubeconfig runs on the login `kubegate login <url>` cached, with no password at hand, although the login named no provider', async () => {
    const home = join(dir, 'home-carol');
    const carol = { HOME: home, XDG_CACHE_HOME: join(dir, 'cache-carol') };
    await ok(admin(), ['user', 'add', 'carol', '--password-stdin'], `${ALICE_PASSWORD}\n`);
    await ok(admin(), ['member', 'add', 'dev', '--user', 'carol']);
    await ok({ ...carol, KUBEGATE_USERNAME: 'carol', KUBEGATE_PASSWORD: ALICE_PASSWORD }, ['login', proxy.url, '--certificate-authority', caFile]);
    const path = join(dir, 'carol-exec.kubeconfig');
    await writeFile(path, (await ok(carol, ['kubeconfig', 'dev', '--exec'])).stdout, { mode: 0o600 });
    const pods = await runKubectl({ binary: 'system', kubeconfig: path, args: ['get', 'pods'], env: { ...carol, PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` } });
    assert.equal(pods.code, 0, pods.stderr);
    assert.match(pods.stdout, /web-0\s+1\/1\s+Running/);
  });

  test('password changes the caller\'s own password: the current one from KUBEGATE_PASSWORD, the new one from stdin; a wrong current one is refused', async () => {
    const dave = { HOME: join(dir, 'home-dave'), XDG_CACHE_HOME: join(dir, 'cache-dave') };
    const first = 'dave-First-pass-4242';
    const second = 'dave-Second-pass-4242';
    await ok(admin(), ['user', 'add', 'dave', '--password-stdin'], `${first}\n`);
    await ok({ ...dave, KUBEGATE_USERNAME: 'dave', KUBEGATE_PASSWORD: first }, ['login', proxy.url, '--certificate-authority', caFile]);
    const wrong = await kubegate({ ...dave, KUBEGATE_PASSWORD: 'not-the-password' }, ['password', '--password-stdin'], `${second}\n`);
    assert.equal(wrong.code, 4);
    assert.match(wrong.stderr, /^kubegate: FORBIDDEN: currentPassword is wrong/);
    const missing = await kubegate(dave, ['password', '--password-stdin'], `${second}\n`);
    assert.equal(missing.code, 2, 'no current password and no terminal: bad input');
    assert.match(missing.stderr, /no password: use KUBEGATE_PASSWORD/);
    const changed = await ok({ ...dave, KUBEGATE_PASSWORD: first }, ['password', '--password-stdin'], `${second}\n`);
    assert.match(changed.stderr, /^Password changed\.\n$/);
    const old = await kubegate({ ...dave, KUBEGATE_USERNAME: 'dave', KUBEGATE_PASSWORD: first }, ['login', proxy.url]);
    assert.equal(old.code, 3, 'the old password no longer logs in');
    await ok({ ...dave, KUBEGATE_USERNAME: 'dave', KUBEGATE_PASSWORD: second }, ['login', proxy.url]);
  });

  test('token create prints the secret once; list shows it without the secret; revoke ends it', async () => {
    const created = JSON.parse((await ok(alice(), ['token', 'create', '--cluster', 'dev', '--ttl', '2h', '--description', 'ci', '-o', 'json'])).stdout);
    assert.match(created.token, /^t-[a-z2-7]{12}:[a-z2-7]{54}$/);
    assert.equal(created.cluster, 'dev');
    const listed = await ok(alice(), ['token', 'list']);
    assert.match(listed.stdout, new RegExp(`^${created.name}\\s+api\\s+dev\\s`, 'm'));
    assert.ok(!listed.stdout.includes(created.token.split(':')[1]));
    const kubeconfig = { server: `${proxy.publicUrl}/k8s/clusters/dev`, caPem: proxy.caPem!, token: created.token };
    assert.equal((await runKubectl({ binary: 'system', kubeconfig, args: ['get', 'pods'] })).code, 0);
    const revoked = await ok(alice(), ['token', 'revoke', created.name]);
    assert.match(revoked.stderr, /revoked/);
    const denied = await runKubectl({ binary: 'system', kubeconfig, args: ['get', 'pods'] });
    assert.notEqual(denied.code, 0);
  });

  test('errors carry the catalog code and an exit code by kind: not found 5, forbidden 4, conflict 6', async () => {
    const notFound = await kubegate(admin(), ['cluster', 'get', 'nope']);
    assert.equal(notFound.code, 5);
    assert.equal(notFound.stderr, 'kubegate: NOT_FOUND: no such cluster\n');
    const forbidden = await kubegate(alice(), ['user', 'list']);
    assert.equal(forbidden.code, 4);
    assert.match(forbidden.stderr, /^kubegate: FORBIDDEN: /);
    const conflict = await kubegate(admin(), ['user', 'add', 'alice'], undefined);
    assert.equal(conflict.code, 2, 'no password given: bad input before anything is sent');
    const again = await kubegate({ ...admin(), KUBEGATE_NEW_PASSWORD: ALICE_PASSWORD }, ['user', 'add', 'alice']);
    assert.equal(again.code, 6);
    assert.match(again.stderr, /^kubegate: CONFLICT: a user with this username exists/);
  });

  test('user add --email and user update --email / --no-email record the address an admin vouches for; a held or bad one is refused', async () => {
    await ok(admin(), ['user', 'add', 'erin', '--email', 'Erin@Example.org', '--password-stdin'], `${ALICE_PASSWORD}\n`);
    const emailOf = async (username: string): Promise<unknown> =>
      (JSON.parse((await ok(admin(), ['user', 'list', '-o', 'json'])).stdout).items as { username: string; email: unknown }[]).find((user) => user.username === username)?.email;
    assert.equal(await emailOf('erin'), 'Erin@example.org');
    const updated = JSON.parse((await ok(admin(), ['user', 'update', 'erin', '--email', 'erin.k@example.org', '-o', 'json'])).stdout);
    assert.equal(updated.email, 'erin.k@example.org');
    const held = await kubegate(admin(), ['user', 'update', 'alice', '--email', 'ERIN.K@example.org']);
    assert.equal(held.code, 6);
    assert.match(held.stderr, /^kubegate: CONFLICT: another user has this e-mail address/);
    const bad = await kubegate(admin(), ['user', 'update', 'alice', '--email', 'alice@']);
    assert.equal(bad.code, 2);
    const nothing = await kubegate(admin(), ['user', 'update', 'alice']);
    assert.equal(nothing.code, 2);
    await ok(admin(), ['user', 'update', 'erin', '--no-email']);
    assert.equal(await emailOf('erin'), null);
  });

  test('disabling a user ends their CLI session: the next call logs in again and is refused', async () => {
    await ok(admin(), ['user', 'disable', 'alice']);
    const refused = await kubegate(alice(), ['whoami']);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /^kubegate: USER_DISABLED: /);
    await ok(admin(), ['user', 'enable', 'alice']);
    assert.equal(JSON.parse((await ok(alice(), ['whoami', '-o', 'json'])).stdout).username, 'alice');
  });

  test('--help works on every command, and the bash completion script knows the commands and flags', async () => {
    for (const args of [['--help'], ['cluster', '--help'], ['member', 'add', '--help'], ['token', '--help']]) {
      const help = await ok({}, args);
      assert.match(help.stdout, /^Usage: kubegate/);
    }
    const script = (await ok({}, ['completion', 'bash'])).stdout;
    assert.match(script, /complete -o default -F _kubegate_complete kubegate/);
    const complete = async (line: string): Promise<string[]> => {
      const words = line.split(' ');
      const shell = spawn('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _kubegate_complete; printf '%s\\n' "\${COMPREPLY[@]}"`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      shell.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      await once(shell, 'close');
      return out.trim().split('\n');
    };
    assert.deepEqual((await complete('kubegate clu')).sort(), ['cluster']);
    assert.deepEqual((await complete('kubegate cluster ')).sort(), ['--help', 'add', 'delete', 'get', 'list', 'ls', 'rm'].sort());
    assert.ok((await complete('kubegate member add dev --r')).includes('--role'));
  });
});
