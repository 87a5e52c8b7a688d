import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { ProviderConfig } from '../../src/config/proxy.js';
import { isKubegateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { Logger } from '../../src/log.js';
import { createCertificateAuthority } from '../../src/pki/certificates.js';
import { createGroupRefresher, revokeDisabledProviders } from '../../src/providers/group-refresh.js';
import { createProviders } from '../../src/providers/index.js';
import { createLdapProvider } from '../../src/providers/ldap/provider.js';
import type { ProviderLoginResult } from '../../src/providers/provider.js';
import { createSecretBox } from '../../src/store/secret-box.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { eventually } from '../support/eventually.js';
import { SEED, addGroupOfNames, replaceAttribute, startSlapd, ldapProviderSettings } from '../support/slapd.js';
import type { TestSlapd } from '../support/slapd.js';

const { users, groups } = SEED;
const PROVIDER = 'corp-ldap';
const group = (dn: string): string => `${PROVIDER}:${dn}`;

/** Log lines kept for assertions (and to prove no password is ever logged). */
function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', name: 'test', destination }), lines };
}

function config(settings: Record<string, unknown>, fields: Partial<ProviderConfig> = {}): ProviderConfig {
  return { name: PROVIDER, type: 'ldap', enabled: true, settings, ...fields };
}

/** A TCP port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A TCP server that counts connections: proxies them to `target`, hangs up at once (`reset`),
 * or accepts and stays silent (no argument).
 */
async function countingServer(target?: { host: string; port: number } | 'reset'): Promise<{ port: number; accepted: () => number; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (target === 'reset') socket.destroy();
    else if (target !== undefined) {
      const upstream = connect(target.port, target.host);
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    open: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function assertUnavailable(result: { readonly outcome: string }): void {
  assert.equal(result.outcome, 'error');
  assert.ok('error' in result && isKubegateError(result.error, 'PROVIDER_UNAVAILABLE'), String('error' in result ? result.error : ''));
}

function identityGroups(result: ProviderLoginResult): readonly string[] {
  assert.equal(result.outcome, 'authenticated', JSON.stringify(result));
  return result.outcome === 'authenticated' ? result.identity.groups : [];
}

describe('LDAP provider against a real slapd', () => {
  let slapd: TestSlapd;
  let log: { logger: Logger; lines: string[] };

  before(async () => {
    slapd = await startSlapd({ tls: true });
  });
  after(async () => {
    await slapd.stop();
  });
  beforeEach(() => {
    log = captureLogger();
  });

  const provider = (settings: Record<string, unknown> = {}, fields: Partial<ProviderConfig> = {}) =>
    createLdapProvider(config({ ...ldapProviderSettings(slapd), ...settings }, fields), { logger: log.logger });

  it('authenticates a user with the right password and reports the DN, names, e-mail address and groups from the directory', async () => {
    const result = await provider().authenticatePassword('alice', users.alice.password);
    assert.deepEqual(result, {
      outcome: 'authenticated',
      identity: { providerUserId: users.alice.dn, loginName: 'alice', displayName: 'Alice Liddell', groups: [group(groups.ops)], email: 'alice@example.org' },
    });
  });

  it('reads the e-mail address from userEmailAttribute (the first value that is an address), and none when it is switched off', async () => {
    const emailOf = async (settings: Record<string, unknown>): Promise<string | undefined> => {
      const result = await provider(settings).authenticatePassword('bob', users.bob.password);
      return result.outcome === 'authenticated' ? result.identity.email : 'not authenticated';
    };
    await slapd.asAdmin((client) => replaceAttribute(client, users.bob.dn, 'mail', ['not an address', 'Bob.Builder@Example.ORG']));
    try {
      assert.equal(await emailOf({}), 'Bob.Builder@example.org');
      assert.equal(await emailOf({ userEmailAttribute: '' }), undefined);
      assert.equal(await emailOf({ userEmailAttribute: 'cn' }), undefined, 'a value that is no address is none');
    } finally {
      await slapd.asAdmin((client) => replaceAttribute(client, users.bob.dn, 'mail', ['bob@example.org']));
    }
  });

  it('matches the login name as the directory does (case-insensitively) but reports the entry’s own spelling', async () => {
    const result = await provider().authenticatePassword('ALICE', users.alice.password);
    assert.equal(result.outcome === 'authenticated' && result.identity.loginName, 'alice');
  });

  it('reads groups from memberOf even when the group search finds none, and finds none when memberOf is switched off too', async () => {
    const memberOfOnly = provider({ groupSearchBase: SEED.servicesDn });
    assert.deepEqual(identityGroups(await memberOfOnly.authenticatePassword('alice', users.alice.password)), [group(groups.ops)]);
    const neither = provider({ groupSearchBase: SEED.servicesDn, userMemberAttribute: '' });
    assert.deepEqual(identityGroups(await neither.authenticatePassword('alice', users.alice.password)), []);
  });

  it('finds posixGroup groups through memberUid holding the uid', async () => {
    const posix = provider({ groupObjectClass: 'posixGroup', groupMemberMappingAttribute: 'memberUid', groupMemberUserAttribute: 'uid', userMemberAttribute: '' });
    assert.deepEqual(identityGroups(await posix.authenticatePassword('alice', users.alice.password)), [group(groups.devs)]);
  });

  it('walks nested groups to the end of a chain that is also a cycle, reporting each group once', async () => {
    const direct = await provider().authenticatePassword('dave', users.dave.password);
    assert.deepEqual(identityGroups(direct), [group(groups.chainA)]);
    const nested = await provider({ nestedGroupMembership: true }).authenticatePassword('dave', users.dave.password);
    assert.deepEqual([...identityGroups(nested)].sort(), [group(groups.chainA), group(groups.chainB), group(groups.chainC)].sort());
  });

  it('answers unauthenticated for a wrong password, an unknown user, and a login name two entries share', async () => {
    const ldap = provider();
    assert.deepEqual(await ldap.authenticatePassword('alice', 'wrong-password'), { outcome: 'unauthenticated' });
    assert.deepEqual(await ldap.authenticatePassword('nobody', users.alice.password), { outcome: 'unauthenticated' });
    assert.deepEqual(await ldap.authenticatePassword('twin', users.twin1.password), { outcome: 'unauthenticated' });
    assert.ok(log.lines.some((line) => line.includes('matches several LDAP entries')), 'the ambiguous login name is logged for the admin');
  });

  it('refuses empty and unusable credentials without opening any connection, because an empty password would be an anonymous bind', async () => {
    const listener = await countingServer('reset');
    try {
      const ldap = createLdapProvider(config({ ...ldapProviderSettings(slapd), servers: [`127.0.0.1:${listener.port}`] }));
      const attempts: [string, string][] = [
        ['alice', ''],
        ['', users.alice.password],
        ['   ', users.alice.password],
        ['alice\u0000', users.alice.password],
        ['a'.repeat(257), users.alice.password],
        ['alice', 'p'.repeat(1025)],
      ];
      for (const [username, password] of attempts) {
        assert.deepEqual(await ldap.authenticatePassword(username, password), { outcome: 'unauthenticated' }, JSON.stringify(username));
      }
      assert.equal(listener.accepted(), 0);
      // The same provider does reach the listener for a usable attempt: the count above is meaningful.
      assert.equal((await ldap.authenticatePassword('alice', 'x')).outcome, 'error');
      assert.equal(listener.accepted(), 1);
    } finally {
      await listener.close();
    }
  });

  it('treats filter syntax in a login name as plain characters, so injection attempts match nobody', async () => {
    const ldap = provider();
    for (const username of ['al*', '*', 'alice)(uid=alice', 'alice)(|(uid=*)', '*)(uid=*))(|(uid=*', 'alice\\', '\\2a', 'ali\\2ace']) {
      assert.deepEqual(await ldap.authenticatePassword(username, users.alice.password), { outcome: 'unauthenticated' }, username);
    }
    // …and a real uid made of those characters matches exactly its owner.
    const special = await ldap.authenticatePassword(users.special.uid, users.special.password);
    assert.equal(special.outcome === 'authenticated' && special.identity.providerUserId, users.special.dn);
  });

  it('reports a disabled account (userAccountControl bit 2) only after the right password', async () => {
    const ldap = provider({ userEnabledAttribute: 'userAccountControl', userDisabledBitMask: 2 });
    assert.deepEqual(await ldap.authenticatePassword('carol', users.carol.password), { outcome: 'disabled' });
    assert.deepEqual(await ldap.authenticatePassword('carol', 'wrong-password'), { outcome: 'unauthenticated' });
    assert.equal((await ldap.authenticatePassword('bob', users.bob.password)).outcome, 'authenticated');
  });

  it('applies the Active Directory defaults (userAccountControl, bit 2) to a provider of type activedirectory', async () => {
    const ad = provider(
      { userLoginAttribute: 'uid', userObjectClass: 'inetOrgPerson', userNameAttribute: 'cn', groupObjectClass: 'groupOfNames' },
      { type: 'activedirectory' },
    );
    assert.equal(ad.type, 'activedirectory');
    assert.deepEqual(await ad.authenticatePassword('carol', users.carol.password), { outcome: 'disabled' });
    assert.deepEqual(identityGroups(await ad.authenticatePassword('alice', users.alice.password)), [group(groups.ops)]);
  });

  it('ANDs userSearchFilter into the user search', async () => {
    const onlyAlice = provider({ userSearchFilter: '(mail=alice@example.org)' });
    assert.equal((await onlyAlice.authenticatePassword('alice', users.alice.password)).outcome, 'authenticated');
    assert.deepEqual(await onlyAlice.authenticatePassword('bob', users.bob.password), { outcome: 'unauthenticated' });
  });

  it('connects with StartTLS and with LDAPS, verifying the server with the configured CA', async () => {
    const port = new URL(slapd.url).port;
    const startTls = provider({ tls: 'starttls', caCertificate: slapd.caPem, servers: [`127.0.0.1:${port}`] });
    assert.equal((await startTls.authenticatePassword('alice', users.alice.password)).outcome, 'authenticated');
    const byName = provider({ tls: 'starttls', caCertificate: slapd.caPem, servers: [`localhost:${port}`] });
    assert.equal((await byName.authenticatePassword('alice', users.alice.password)).outcome, 'authenticated');
    const ldaps = provider({ tls: 'ldaps', caCertificate: slapd.caPem, servers: [slapd.ldapsUrl] });
    assert.equal((await ldaps.authenticatePassword('alice', users.alice.password)).outcome, 'authenticated');
  });

  it('answers PROVIDER_UNAVAILABLE, not unauthenticated, when the server certificate does not verify', async () => {
    const otherCa = await createCertificateAuthority({ commonName: 'some other CA', validityDays: 1 });
    const port = new URL(slapd.url).port;
    for (const settings of [
      { tls: 'starttls', caCertificate: otherCa.certPem, servers: [`127.0.0.1:${port}`] },
      { tls: 'ldaps', caCertificate: otherCa.certPem, servers: [slapd.ldapsUrl] },
      { tls: 'ldaps', servers: [slapd.ldapsUrl] },
    ]) {
      assertUnavailable(await provider(settings).authenticatePassword('alice', 'wrong-password'));
    }
  });

  it('fails over to the next server when the first refuses connections or never answers', async () => {
    const silent = await countingServer();
    try {
      const ldap = provider({ servers: [`127.0.0.1:${await deadPort()}`, `127.0.0.1:${silent.port}`, slapd.url], connectionTimeoutSeconds: 1 });
      const started = performance.now();
      assert.equal((await ldap.authenticatePassword('alice', users.alice.password)).outcome, 'authenticated');
      assert.ok(performance.now() - started < 3000, 'the silent server costs one connection timeout, not more');
      assert.equal(silent.accepted(), 1);
      assert.ok(log.lines.filter((line) => line.includes('trying the next one')).length === 2);
    } finally {
      await silent.close();
    }
  });

  it('answers PROVIDER_UNAVAILABLE when every server is down, whatever the password', async () => {
    const ldap = provider({ servers: [`127.0.0.1:${await deadPort()}`, `127.0.0.1:${await deadPort()}`] });
    assertUnavailable(await ldap.authenticatePassword('alice', users.alice.password));
    assertUnavailable(await ldap.authenticatePassword('alice', 'wrong-password'));
  });

  it('answers PROVIDER_UNAVAILABLE when the directory refuses the service account', async () => {
    assertUnavailable(await provider({ serviceAccountPassword: 'not-the-password' }).authenticatePassword('alice', users.alice.password));
  });

  it('closes every connection it opens, whatever the outcome', async () => {
    const proxy = await countingServer({ host: '127.0.0.1', port: Number(new URL(slapd.url).port) });
    try {
      const ldap = provider({ servers: [`127.0.0.1:${proxy.port}`], nestedGroupMembership: true });
      await ldap.authenticatePassword('dave', users.dave.password);
      await ldap.authenticatePassword('alice', 'wrong-password');
      await ldap.authenticatePassword('nobody', 'whatever');
      await ldap.refreshIdentity(users.alice.dn);
      await provider({ servers: [`127.0.0.1:${proxy.port}`], serviceAccountPassword: 'wrong' }).authenticatePassword('alice', 'x');
      assert.equal(proxy.accepted(), 5);
      for (let i = 0; i < 50 && proxy.open() > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(proxy.open(), 0);
    } finally {
      await proxy.close();
    }
  });

  it('never writes a password to the log', async () => {
    await provider().authenticatePassword('twin', users.twin1.password);
    await provider({ servers: [`127.0.0.1:${await deadPort()}`] }).authenticatePassword('alice', users.alice.password);
    assert.ok(log.lines.length > 0);
    for (const line of log.lines) {
      for (const secret of [users.twin1.password, users.alice.password, SEED.service.password]) assert.ok(!line.includes(secret), line);
    }
  });

  it('looks a user up again by DN: current groups, enabled state, or gone', async () => {
    const ldap = provider({ userEnabledAttribute: 'userAccountControl', userDisabledBitMask: 2 });
    assert.deepEqual(await ldap.refreshIdentity(users.alice.dn.toUpperCase()), {
      outcome: 'found',
      enabled: true,
      identity: { providerUserId: users.alice.dn, loginName: 'alice', displayName: 'Alice Liddell', groups: [group(groups.ops)], email: 'alice@example.org' },
    });
    const carol = await ldap.refreshIdentity(users.carol.dn);
    assert.equal(carol.outcome === 'found' && carol.enabled, false);
    assert.deepEqual(await ldap.refreshIdentity(`uid=nobody,${SEED.peopleDn}`), { outcome: 'gone' });
    assert.deepEqual(await ldap.refreshIdentity(SEED.service.dn), { outcome: 'gone' }, 'outside userSearchBase');
    assert.deepEqual(await ldap.refreshIdentity(groups.ops), { outcome: 'gone' }, 'under the base but not a user entry');
    assertUnavailable(await provider({ servers: [`127.0.0.1:${await deadPort()}`] }).refreshIdentity(users.alice.dn));
  });

  it('is built by createProviders for types ldap and activedirectory, with setting errors addressed from the top', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegate-ldap-registry-'));
    const store = await openSqliteStore({ path: join(dir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
    t.after(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    const registry = await createProviders([config(ldapProviderSettings(slapd)), config(ldapProviderSettings(slapd), { name: 'corp-ad', type: 'activedirectory' })], { store });
    assert.deepEqual(registry.list().map((entry) => [entry.name, entry.type]), [[PROVIDER, 'ldap'], ['corp-ad', 'activedirectory'], ['local', 'local']]);
    await assert.rejects(
      createProviders([config({ ...ldapProviderSettings(slapd), port: 70000 })], { store }),
      (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && error.field === 'providers[0].settings.port' && error.message.startsWith('providers[0].settings.port'),
    );
  });
});

describe('group refresh against a real slapd', () => {
  let slapd: TestSlapd;
  let dir: string;
  let store: Store;
  const logger = createLogger({ level: 'silent', name: 'test' });
  const longAgo = new Date(Date.now() - 2 * 3600_000);

  let sequence = 0;
  before(async () => {
    slapd = await startSlapd();
    dir = await mkdtemp(join(tmpdir(), 'kubegate-ldap-refresh-'));
  });
  after(async () => {
    await slapd.stop();
    await rm(dir, { recursive: true, force: true });
  });
  // A fresh store per test: each links the seeded DNs anew.
  beforeEach(async () => {
    store = await openSqliteStore({ path: join(dir, `kubegate-${randomBytes(4).toString('hex')}.db`), secretBox: createSecretBox(randomBytes(32)) });
  });
  afterEach(async () => {
    await store.close();
  });

  /** A kubegate user linked to `dn`, with stale cached groups and a token from the LDAP provider and one from local. */
  async function linkedUser(dn: string, cachedGroups: string[] = []): Promise<{ userId: string; ldapToken: string; localToken: string }> {
    sequence += 1;
    const userId = `u-${String(sequence).padStart(12, 'a')}`;
    await store.createUser({ id: userId, username: `user${sequence}` });
    await store.linkIdentity({ provider: PROVIDER, providerUserId: dn, userId, loginName: `user${sequence}` });
    await store.putUserGroups({ userId, provider: PROVIDER, groups: cachedGroups, refreshedAt: longAgo });
    const token = async (provider: string): Promise<string> =>
      (await store.createToken({ name: `t-${provider}-${sequence}`, tokenHash: '$3:1:x', userId, kind: 'login', provider })).name;
    return { userId, ldapToken: await token(PROVIDER), localToken: await token('local') };
  }

  function registryWith(settings: Record<string, unknown> = {}) {
    return createProviders([config({ ...ldapProviderSettings(slapd), userEnabledAttribute: 'userAccountControl', userDisabledBitMask: 2, ...settings })], { store, logger });
  }

  async function tokenNames(userId: string): Promise<string[]> {
    return (await store.listTokens({ userId })).map((token) => token.name).sort();
  }

  it('stores the groups a user has now, tells who changed, and leaves fresh entries alone', async () => {
    const alice = await linkedUser(users.alice.dn);
    const changed: string[] = [];
    const refresher = createGroupRefresher({ store, providers: await registryWith(), logger, onUserChanged: (id) => changed.push(id) });
    await refresher.refreshOnce();
    assert.deepEqual((await store.getUserGroups(alice.userId, PROVIDER))?.groups, [group(groups.ops)]);
    assert.ok(changed.includes(alice.userId));

    await slapd.asAdmin((client) => addGroupOfNames(client, `cn=sre,${SEED.groupsDn}`, [users.alice.dn]));
    const fresh = await refresher.refreshOnce();
    assert.equal((await store.getUserGroups(alice.userId, PROVIDER))?.groups.length, 1, 'refreshed less than maxAge ago: not asked again');
    assert.equal(fresh.checked, 0);

    const eager = createGroupRefresher({ store, providers: await registryWith(), logger, maxAgeSeconds: 0 });
    await eager.refreshOnce();
    assert.deepEqual([...((await store.getUserGroups(alice.userId, PROVIDER))?.groups ?? [])].sort(), [group(groups.ops), group(`cn=sre,${SEED.groupsDn}`)].sort());
    assert.deepEqual(await tokenNames(alice.userId), [alice.ldapToken, alice.localToken].sort());
  });

  it("records the directory's address at each refresh as a login would: a changed mail, none, one another user holds (named by user IDs only), never a later-linked provider's", async (t) => {
    const lines: Array<Record<string, unknown>> = [];
    const capturing = createLogger({ level: 'info', name: 'test', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    t.after(() => slapd.asAdmin((client) => replaceAttribute(client, users.alice.dn, 'mail', ['alice@example.org'])));
    const alice = await linkedUser(users.alice.dn);
    const changed: string[] = [];
    const refresher = createGroupRefresher({ store, providers: await registryWith(), logger: capturing, maxAgeSeconds: 0, onUserChanged: (id) => changed.push(id) });
    const emailOf = async (userId: string): Promise<string | null | undefined> => (await store.getUser(userId))?.email;

    assert.equal((await refresher.refreshOnce()).addressesChanged, 1);
    assert.equal(await emailOf(alice.userId), 'alice@example.org');
    await slapd.asAdmin((client) => replaceAttribute(client, users.alice.dn, 'mail', ['Alice.Liddell@Example.ORG']));
    changed.length = 0;
    assert.equal((await refresher.refreshOnce()).addressesChanged, 1);
    assert.equal(await emailOf(alice.userId), 'Alice.Liddell@example.org', 'no login needed');
    assert.deepEqual(changed, [alice.userId], 'the address alone changed: the user is announced');
    const unchanged = await refresher.refreshOnce();
    assert.equal(unchanged.addressesChanged, 0);
    await slapd.asAdmin((client) => replaceAttribute(client, users.alice.dn, 'mail', []));
    await refresher.refreshOnce();
    assert.equal(await emailOf(alice.userId), null, 'the directory vouches for none any more');

    // Another user holds the address the directory now gives alice.
    await store.createUser({ id: 'u-holder000001', username: 'holder', email: 'shared@example.org' });
    await slapd.asAdmin((client) => replaceAttribute(client, users.alice.dn, 'mail', ['shared@example.org']));
    assert.equal(lines.filter((line) => line['level'] === 40).length, 0);
    await refresher.refreshOnce();
    assert.equal(await emailOf(alice.userId), null);
    assert.equal(await emailOf('u-holder000001'), 'shared@example.org');
    const warning = lines.find((line) => line['level'] === 40 && line['holder'] === 'u-holder000001');
    assert.equal(warning?.['user'], alice.userId);
    assert.doesNotMatch(JSON.stringify(lines), /shared@/);

    // A user whose first link is another provider keeps that provider's address.
    await slapd.asAdmin((client) => replaceAttribute(client, users.alice.dn, 'mail', ['alice@example.org']));
    sequence += 1;
    const both = `u-${String(sequence).padStart(12, 'b')}`;
    await store.createUser({ id: both, username: `both${sequence}`, email: 'bob@corp-github.example' });
    const first = await store.linkIdentity({ provider: 'github', providerUserId: '4242', userId: both, loginName: 'bob' });
    await eventually(() => Date.now() > first.createdAt.getTime(), 1000, 'a later link time');
    await store.linkIdentity({ provider: PROVIDER, providerUserId: users.bob.dn, userId: both, loginName: 'bob' });
    await store.putUserGroups({ userId: both, provider: PROVIDER, groups: [], refreshedAt: longAgo });
    await refresher.refreshOnce();
    assert.equal(await emailOf(both), 'bob@corp-github.example', "the LDAP refresh leaves the first-linked provider's address alone");
  });

  it("revokes the provider's tokens of a user deleted from the directory or disabled there, and keeps their other tokens", async () => {
    const gone = await linkedUser(`uid=gone,${SEED.peopleDn}`);
    await slapd.asAdmin((client) =>
      client.add(`uid=gone,${SEED.peopleDn}`, { objectClass: 'inetOrgPerson', uid: 'gone', cn: 'gone', sn: 'gone', userPassword: 'x' }),
    );
    const bob = await linkedUser(users.bob.dn);
    const refresher = createGroupRefresher({ store, providers: await registryWith(), logger, maxAgeSeconds: 0 });
    await refresher.refreshOnce();
    assert.equal((await tokenNames(gone.userId)).length, 2);

    await slapd.asAdmin((client) => client.del(`uid=gone,${SEED.peopleDn}`));
    await slapd.asAdmin((client) => replaceAttribute(client, users.bob.dn, 'userAccountControl', ['514']));
    const summary = await refresher.refreshOnce();
    assert.ok(summary.revoked >= 2);
    assert.deepEqual(await tokenNames(gone.userId), [gone.localToken]);
    assert.deepEqual(await tokenNames(bob.userId), [bob.localToken]);
    assert.deepEqual((await store.getUserGroups(gone.userId, PROVIDER))?.groups, []);
    await slapd.asAdmin((client) => replaceAttribute(client, users.bob.dn, 'userAccountControl', ['512']));
  });

  it('revokes tokens of users the access mode no longer allows: required needs a principal, restricted also accepts cluster members', async () => {
    const alice = await linkedUser(users.alice.dn);
    const dave = await linkedUser(users.dave.dn);
    const bob = await linkedUser(users.bob.dn);
    await store.createCluster({ id: 'prod', server: 'https://prod.example:6443', credentials: { kind: 'token', token: 'x' } });
    await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: bob.userId, role: 'viewer' });
    const restricted = await registryWith({ accessMode: 'restricted', allowedPrincipals: [`group:${PROVIDER}:CN=ops, ou=groups,dc=example,dc=org`] });
    await createGroupRefresher({ store, providers: restricted, logger, maxAgeSeconds: 0 }).refreshOnce();
    assert.equal((await tokenNames(alice.userId)).length, 2, 'alice: in an allowed group');
    assert.equal((await tokenNames(bob.userId)).length, 2, 'bob: member of a cluster');
    assert.deepEqual(await tokenNames(dave.userId), [dave.localToken], 'dave: neither');

    const required = await registryWith({ accessMode: 'required', allowedPrincipals: [`openldap_user://${users.alice.dn}`] });
    await createGroupRefresher({ store, providers: required, logger, maxAgeSeconds: 0 }).refreshOnce();
    assert.equal((await tokenNames(alice.userId)).length, 2);
    assert.deepEqual(await tokenNames(bob.userId), [bob.localToken]);
  });

  it('keeps the groups and tokens when the directory cannot be reached, and asks again next round', async () => {
    const alice = await linkedUser(users.alice.dn, [group('cn=old,dc=example,dc=org')]);
    const down = await registryWith({ servers: [`127.0.0.1:${await deadPort()}`] });
    const summary = await createGroupRefresher({ store, providers: down, logger }).refreshOnce();
    assert.equal(summary.failed, 1, 'one attempt: the other identities wait for the next round');
    const cached = await store.getUserGroups(alice.userId, PROVIDER);
    assert.deepEqual(cached?.groups, [group('cn=old,dc=example,dc=org')]);
    assert.equal(cached?.refreshedAt.getTime(), longAgo.getTime());
    assert.equal((await tokenNames(alice.userId)).length, 2);
  });

  it('revokes at start every token of a provider that is disabled or no longer configured', async () => {
    const alice = await linkedUser(users.alice.dn);
    await store.createToken({ name: `t-gone-provider-${sequence}`, tokenHash: '$3:1:x', userId: alice.userId, kind: 'api', provider: 'old-github' });
    const changed: string[] = [];
    const disabled = await createProviders([config(ldapProviderSettings(slapd), { enabled: false })], { store, logger });
    const deleted = await revokeDisabledProviders({ store, providers: disabled, logger, onUserChanged: (id) => changed.push(id) });
    assert.ok(deleted.includes(alice.ldapToken) && deleted.includes(`t-gone-provider-${sequence}`));
    assert.deepEqual(await tokenNames(alice.userId), [alice.localToken]);
    assert.ok(changed.includes(alice.userId));
  });

  it('runs rounds on its own once started, and stop() waits for the running one', async () => {
    const alice = await linkedUser(users.alice.dn);
    const changed: string[] = [];
    const refresher = createGroupRefresher({ store, providers: await registryWith(), logger, intervalSeconds: 3600, onUserChanged: (id) => changed.push(id) });
    refresher.start();
    for (let i = 0; i < 100 && !changed.includes(alice.userId); i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    await refresher.stop();
    assert.ok(changed.includes(alice.userId), 'the first round runs at start');
  });
});
