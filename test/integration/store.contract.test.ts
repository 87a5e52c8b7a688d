/**
 * The Store contract (src/store/store.ts), run against both real implementations: SQLite
 * in a temporary file and a throwaway PostgreSQL server (test/support/postgres.ts). Every
 * test gets a fresh, empty database. PostgreSQL-only behaviour (replicas hearing each other,
 * concurrent migrations, a server that goes away) follows the shared suite.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { isKubegateError, type ErrorCode } from '../../src/errors.js';
import { postgresMigrations, sqliteMigrations } from '../../src/store/migrations.js';
import { openStore } from '../../src/store/open.js';
import { CHANGE_LISTENER_APPLICATION_NAME } from '../../src/store/postgres-changes.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { createSecretBox, type SecretBox } from '../../src/store/secret-box.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { NewAgentSecret, NewCluster, NewSigningKey, NewToken, NewUser, Store, StoreChange, TokenFilter, TunnelRecord, UserPatch } from '../../src/store/store.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { eventually } from '../support/eventually.js';

// --- harnesses -------------------------------------------------------------------------------

interface OpenOptions {
  readonly secretBox?: SecretBox;
  readonly onError?: (error: unknown) => void;
}

interface TestDatabase {
  readonly dialect: 'sqlite' | 'postgres';
  /** The key stores of this database seal with by default. */
  readonly key: Buffer;
  /** Opens one more store instance on this database (a "replica" for PostgreSQL). */
  open(options?: OpenOptions): Promise<Store>;
  /** Runs SQL with the raw driver, bypassing the store; returns the rows of the last statement. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  dispose(): Promise<void>;
}

interface StoreHarness {
  /** A new, empty database. */
  createDatabase(): Promise<TestDatabase>;
  dispose(): Promise<void>;
}

function sqliteHarness(): StoreHarness {
  const dir = mkdtempSync(join(tmpdir(), 'kubegate-sqlite-'));
  let databases = 0;
  return {
    async createDatabase(): Promise<TestDatabase> {
      databases += 1;
      const path = join(dir, `store-${databases}.db`);
      const key = randomBytes(32);
      return {
        dialect: 'sqlite',
        key,
        open: (options = {}) => openSqliteStore({ path, ...options, secretBox: options.secretBox ?? createSecretBox(key) }),
        async query(sql: string): Promise<Record<string, unknown>[]> {
          const db = new Database(path);
          try {
            const statement = db.prepare(sql);
            if (statement.reader) return statement.all() as Record<string, unknown>[];
            statement.run();
            return [];
          } finally {
            db.close();
          }
        },
        async dispose(): Promise<void> {
          for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
        },
      };
    },
    async dispose(): Promise<void> {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresHarness(server: () => TestPostgres): StoreHarness {
  return {
    async createDatabase(): Promise<TestDatabase> {
      const url = await server().createDatabase();
      const key = randomBytes(32);
      return {
        dialect: 'postgres',
        key,
        open: (options = {}) =>
          openPostgresStore({ connectionString: url, ...options, secretBox: options.secretBox ?? createSecretBox(key) }),
        query: (sql) => rawPostgresQuery(url, sql),
        async dispose(): Promise<void> {},
      };
    },
    async dispose(): Promise<void> {},
  };
}

async function rawPostgresQuery(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[];
    return Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows;
  } finally {
    await client.end();
  }
}

// --- helpers -------------------------------------------------------------------------------

const TOKEN_HASH = '$3:1:c2FsdHNhbHQ=:aGFzaGhhc2hoYXNoaGFzaA==';
const CLUSTER_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.cluster-service-account-PLAINTEXT';
const CLIENT_KEY_PEM = '-----BEGIN EC PRIVATE KEY-----\nPLAINTEXT-KEY-MATERIAL\n-----END EC PRIVATE KEY-----\n';
const PROVIDER_SECRET = 'ldap-bind-password-PLAINTEXT';

function newUser(name: string, extra: Partial<NewUser> = {}): NewUser {
  return { id: `u-${name}`, username: name, ...extra };
}

function newToken(name: string, userId: string, extra: Partial<NewToken> = {}): NewToken {
  return { name, tokenHash: TOKEN_HASH, userId, kind: 'api', provider: 'local', ...extra };
}

function newCluster(id: string, extra: Partial<NewCluster> = {}): NewCluster {
  return { id, server: `https://${id}.example.org:6443`, credentials: { kind: 'token', token: CLUSTER_TOKEN }, ...extra };
}

async function rejectsWithCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isKubegateError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  });
}

function sortedChanges(changes: readonly StoreChange[]): string[] {
  return changes.map((change) => `${change.kind}:${change.key}`).sort();
}

// --- the contract --------------------------------------------------------------------------

export function describeStoreContract(name: string, openHarness: () => StoreHarness): void {
  describe(`${name} store contract`, () => {
    let harness: StoreHarness;
    let db: TestDatabase;
    let store: Store;
    let opened: Store[] = [];

    const open = async (options?: OpenOptions): Promise<Store> => {
      const instance = await db.open(options);
      opened.push(instance);
      return instance;
    };

    before(() => {
      harness = openHarness();
    });
    after(async () => {
      await harness.dispose();
    });
    beforeEach(async () => {
      db = await harness.createDatabase();
      store = await open();
    });
    afterEach(async () => {
      for (const instance of opened) await instance.close();
      opened = [];
      await db.dispose();
    });

    describe('users', () => {
      it('creates a user with defaults and finds it by ID and by username, because logins look users up both ways', async () => {
        const created = await store.createUser(newUser('alice', { passwordHash: '$scrypt$abc' }));
        assert.equal(created.id, 'u-alice');
        assert.equal(created.username, 'alice');
        assert.equal(created.displayName, 'alice');
        assert.equal(created.globalRole, 'user');
        assert.equal(created.enabled, true);
        assert.equal(created.passwordHash, '$scrypt$abc');
        assert.ok(created.createdAt instanceof Date && Math.abs(created.createdAt.getTime() - Date.now()) < 60_000);
        assert.deepEqual(created.updatedAt, created.createdAt);
        assert.deepEqual(await store.getUser('u-alice'), created);
        assert.deepEqual(await store.getUserByUsername('alice'), created);
      });

      it('answers undefined and false for a missing user, because a missing object is not an error', async () => {
        assert.equal(await store.getUser('u-nobody'), undefined);
        assert.equal(await store.getUserByUsername('nobody'), undefined);
        assert.equal(await store.updateUser('u-nobody', { displayName: 'x' }), undefined);
        assert.equal(await store.deleteUser('u-nobody'), false);
        assert.equal(await store.countUsers(), 0);
      });

      it('refuses a second user with the same ID or username with STORE_CONSTRAINT and keeps the first, because both identify a person', async () => {
        const first = await store.createUser(newUser('alice', { displayName: 'Alice' }));
        await rejectsWithCode(store.createUser({ id: 'u-alice', username: 'other' }), 'STORE_CONSTRAINT');
        await rejectsWithCode(store.createUser({ id: 'u-other', username: 'alice' }), 'STORE_CONSTRAINT');
        assert.deepEqual(await store.listUsers(), [first]);
      });

      it('treats usernames as exact strings, because "Alice" and "alice" may be different people', async () => {
        await store.createUser(newUser('alice'));
        await store.createUser({ id: 'u-alice2', username: 'Alice' });
        assert.equal((await store.getUserByUsername('Alice'))?.id, 'u-alice2');
        assert.equal(await store.getUserByUsername('ALICE'), undefined);
      });

      it('updates only the fields a patch names and moves updatedAt, because other fields must survive a partial edit', async () => {
        const created = await store.createUser(newUser('alice', { displayName: 'Alice', passwordHash: '$scrypt$old', globalRole: 'admin' }));
        await new Promise((resolve) => setTimeout(resolve, 5));
        // `displayName: undefined`, as a JavaScript caller may send it, is no edit.
        const updated = await store.updateUser('u-alice', { enabled: false, displayName: undefined } as unknown as UserPatch);
        assert.ok(updated);
        assert.equal(updated.enabled, false);
        assert.equal(updated.displayName, 'Alice');
        assert.equal(updated.globalRole, 'admin');
        assert.equal(updated.passwordHash, '$scrypt$old');
        assert.deepEqual(updated.createdAt, created.createdAt);
        assert.ok(updated.updatedAt.getTime() > created.updatedAt.getTime());
        const cleared = await store.updateUser('u-alice', { passwordHash: null, globalRole: 'user' });
        assert.equal(cleared?.passwordHash, null);
        assert.equal(cleared?.globalRole, 'user');
        assert.deepEqual(await store.getUser('u-alice'), cleared);
      });

      it('lists users ordered by username and counts them', async () => {
        await store.createUser(newUser('carol'));
        await store.createUser(newUser('alice'));
        await store.createUser(newUser('bob'));
        assert.deepEqual(
          (await store.listUsers()).map((user) => user.username),
          ['alice', 'bob', 'carol'],
        );
        assert.equal(await store.countUsers(), 3);
      });

      it('rejects an unknown global role with a TypeError and writes nothing, because that is a bug in the caller', async () => {
        await assert.rejects(store.createUser(newUser('alice', { globalRole: 'root' as 'admin' })), TypeError);
        await store.createUser(newUser('bob'));
        await assert.rejects(store.updateUser('u-bob', { enabled: 'yes' as unknown as boolean }), TypeError);
        assert.equal(await store.countUsers(), 1);
        assert.equal((await store.getUser('u-bob'))?.enabled, true);
      });

      it('records a verified e-mail address per user, found ignoring case, because it may become the Kubernetes user name', async () => {
        const created = await store.createUser(newUser('alice'));
        assert.equal(created.email, null);
        const set = await store.updateUser('u-alice', { email: 'Alice.Smith@Example.ORG' });
        // The domain is lower-cased; the local part is kept as given.
        assert.equal(set?.email, 'Alice.Smith@example.org');
        assert.equal((await store.getUserByEmail('alice.smith@EXAMPLE.org'))?.id, 'u-alice');
        assert.equal(await store.getUserByEmail('bob@example.org'), undefined);
        // A patch that does not name the address keeps it; null clears it.
        assert.equal((await store.updateUser('u-alice', { displayName: 'Alice' }))?.email, 'Alice.Smith@example.org');
        assert.equal((await store.updateUser('u-alice', { email: null }))?.email, null);
        assert.equal(await store.getUserByEmail('alice.smith@example.org'), undefined);
        const bob = await store.createUser(newUser('bob', { email: 'bob@example.org' }));
        assert.equal(bob.email, 'bob@example.org');
        assert.deepEqual(await store.getUser('u-bob'), bob);
      });

      it('refuses an address another user holds, in any case, with STORE_CONSTRAINT and keeps both users as they were', async () => {
        await store.createUser(newUser('alice', { email: 'alice@example.org' }));
        await store.createUser(newUser('bob'));
        await rejectsWithCode(store.updateUser('u-bob', { email: 'ALICE@example.org' }), 'STORE_CONSTRAINT');
        await rejectsWithCode(store.createUser(newUser('carol', { email: 'Alice@Example.org' })), 'STORE_CONSTRAINT');
        assert.equal((await store.getUser('u-bob'))?.email, null);
        assert.equal(await store.getUser('u-carol'), undefined);
        assert.equal((await store.getUserByEmail('alice@example.org'))?.id, 'u-alice');
        // Many users may have none.
        await store.createUser(newUser('dave'));
        assert.equal(await store.countUsers(), 3);
      });

      it('refuses what is not an address kubegate accepts with BAD_REQUEST naming email, and writes nothing', async () => {
        await store.createUser(newUser('alice'));
        for (const email of ['alice', 'a@b@example.org', 'system:x@example.org', 'al ice@example.org', 'alice@localhost', 'alicé@example.org', `${'a'.repeat(65)}@example.org`]) {
          await rejectsWithCode(store.updateUser('u-alice', { email }), 'BAD_REQUEST');
        }
        assert.equal((await store.getUser('u-alice'))?.email, null);
      });
    });

    describe('identities', () => {
      it('links a provider identity to a user and finds it by provider and provider user ID', async () => {
        await store.createUser(newUser('alice'));
        const linked = await store.linkIdentity({ provider: 'corp-ldap', providerUserId: 'uid=alice,dc=example', userId: 'u-alice', loginName: 'alice' });
        assert.equal(linked.userId, 'u-alice');
        assert.ok(linked.createdAt instanceof Date);
        assert.deepEqual(await store.findIdentity('corp-ldap', 'uid=alice,dc=example'), linked);
        assert.equal(await store.findIdentity('github', 'uid=alice,dc=example'), undefined);
        await store.linkIdentity({ provider: 'github', providerUserId: '1234', userId: 'u-alice', loginName: 'alice-gh' });
        assert.deepEqual(
          (await store.listIdentities('u-alice')).map((identity) => `${identity.provider}/${identity.providerUserId}`),
          ['corp-ldap/uid=alice,dc=example', 'github/1234'],
        );
        assert.deepEqual(await store.listIdentities('u-nobody'), []);
      });

      it('refreshes the login name when the same user links again, because provider login names change', async () => {
        await store.createUser(newUser('alice'));
        const first = await store.linkIdentity({ provider: 'github', providerUserId: '1234', userId: 'u-alice', loginName: 'alice-old' });
        const again = await store.linkIdentity({ provider: 'github', providerUserId: '1234', userId: 'u-alice', loginName: 'alice-new' });
        assert.equal(again.loginName, 'alice-new');
        assert.deepEqual(again.createdAt, first.createdAt);
        assert.equal((await store.listIdentities('u-alice')).length, 1);
      });

      it('refuses to move an identity to another user with STORE_CONSTRAINT, because that would hand over an account', async () => {
        await store.createUser(newUser('alice'));
        await store.createUser(newUser('mallory'));
        await store.linkIdentity({ provider: 'github', providerUserId: '1234', userId: 'u-alice', loginName: 'alice' });
        await rejectsWithCode(store.linkIdentity({ provider: 'github', providerUserId: '1234', userId: 'u-mallory', loginName: 'alice' }), 'STORE_CONSTRAINT');
        assert.equal((await store.findIdentity('github', '1234'))?.userId, 'u-alice');
      });

      it('refuses an identity for a user that does not exist with STORE_CONSTRAINT, because it would point nowhere', async () => {
        await rejectsWithCode(store.linkIdentity({ provider: 'github', providerUserId: '1', userId: 'u-nobody', loginName: 'x' }), 'STORE_CONSTRAINT');
        assert.equal(await store.findIdentity('github', '1'), undefined);
      });
    });

    describe('tokens', () => {
      beforeEach(async () => {
        await store.createUser(newUser('alice'));
        await store.createUser(newUser('bob'));
        await store.createCluster(newCluster('prod'));
        await store.createCluster(newCluster('dev'));
      });

      it('creates a token with defaults and reads it back by name', async () => {
        const created = await store.createToken(newToken('t-one', 'u-alice'));
        assert.deepEqual(
          { ...created, createdAt: undefined },
          {
            name: 't-one',
            tokenHash: TOKEN_HASH,
            userId: 'u-alice',
            kind: 'api',
            provider: 'local',
            clusterId: null,
            description: '',
            expiresAt: null,
            lastUsedAt: null,
            createdAt: undefined,
          },
        );
        assert.deepEqual(await store.getToken('t-one'), created);
        assert.equal(await store.getToken('t-missing'), undefined);
        const expiresAt = new Date(Date.now() + 3_600_000);
        const scoped = await store.createToken(newToken('t-two', 'u-bob', { kind: 'kubeconfig', clusterId: 'prod', description: 'CI', expiresAt }));
        assert.equal(scoped.clusterId, 'prod');
        assert.equal(scoped.kind, 'kubeconfig');
        assert.equal(scoped.description, 'CI');
        assert.deepEqual(scoped.expiresAt, expiresAt);
        assert.deepEqual(await store.getToken('t-two'), scoped);
      });

      it('refuses a duplicate token name, an unknown user and an unknown cluster with STORE_CONSTRAINT', async () => {
        await store.createToken(newToken('t-one', 'u-alice'));
        await rejectsWithCode(store.createToken(newToken('t-one', 'u-bob')), 'STORE_CONSTRAINT');
        await rejectsWithCode(store.createToken(newToken('t-two', 'u-nobody')), 'STORE_CONSTRAINT');
        await rejectsWithCode(store.createToken(newToken('t-three', 'u-alice', { clusterId: 'nowhere' })), 'STORE_CONSTRAINT');
        assert.deepEqual((await store.listTokens()).map((token) => token.name), ['t-one']);
        assert.equal((await store.getToken('t-one'))?.userId, 'u-alice');
      });

      it('lists tokens matching every field of a filter, because token pages filter by user, cluster and provider', async () => {
        await store.createToken(newToken('t-a1', 'u-alice'));
        await store.createToken(newToken('t-a2', 'u-alice', { clusterId: 'prod' }));
        await store.createToken(newToken('t-a3', 'u-alice', { clusterId: 'prod', provider: 'corp-ldap' }));
        await store.createToken(newToken('t-b1', 'u-bob', { clusterId: 'dev', provider: 'corp-ldap' }));
        const names = async (filter?: Parameters<Store['listTokens']>[0]): Promise<string[]> =>
          (await store.listTokens(filter)).map((token) => token.name).sort();
        assert.deepEqual(await names(), ['t-a1', 't-a2', 't-a3', 't-b1']);
        assert.deepEqual(await names({}), ['t-a1', 't-a2', 't-a3', 't-b1']);
        assert.deepEqual(await names({ userId: 'u-alice' }), ['t-a1', 't-a2', 't-a3']);
        assert.deepEqual(await names({ clusterId: 'prod' }), ['t-a2', 't-a3']);
        assert.deepEqual(await names({ provider: 'corp-ldap' }), ['t-a3', 't-b1']);
        assert.deepEqual(await names({ userId: 'u-alice', clusterId: 'prod', provider: 'corp-ldap' }), ['t-a3']);
        assert.deepEqual(await names({ userId: 'u-bob', clusterId: 'prod' }), []);
      });

      it('deletes one token and reports whether it existed', async () => {
        await store.createToken(newToken('t-one', 'u-alice'));
        assert.equal(await store.deleteToken('t-one'), true);
        assert.equal(await store.deleteToken('t-one'), false);
        assert.equal(await store.getToken('t-one'), undefined);
      });

      it('deletes the tokens matching a filter and returns their names, leaving the others', async () => {
        await store.createToken(newToken('t-a1', 'u-alice'));
        await store.createToken(newToken('t-a2', 'u-alice', { clusterId: 'prod' }));
        await store.createToken(newToken('t-b1', 'u-bob', { clusterId: 'prod' }));
        assert.deepEqual(await store.deleteTokens({ userId: 'u-alice', clusterId: 'prod' }), ['t-a2']);
        assert.deepEqual((await store.deleteTokens({ userId: 'u-alice' })).sort(), ['t-a1']);
        assert.deepEqual(await store.deleteTokens({ userId: 'u-alice' }), []);
        assert.deepEqual((await store.listTokens()).map((token) => token.name), ['t-b1']);
      });

      it('refuses deleteTokens with an empty filter and deletes nothing, because an undefined ID must not revoke every token', async () => {
        await store.createToken(newToken('t-a1', 'u-alice'));
        await assert.rejects(store.deleteTokens({}), TypeError);
        await assert.rejects(store.deleteTokens({ userId: undefined } as unknown as TokenFilter), TypeError);
        assert.equal((await store.listTokens()).length, 1);
      });

      it('deletes tokens that expire at or before now and keeps later and never-expiring ones', async () => {
        const now = new Date('2030-01-01T00:00:00.000Z');
        await store.createToken(newToken('t-past', 'u-alice', { expiresAt: new Date(now.getTime() - 60_000) }));
        await store.createToken(newToken('t-now', 'u-alice', { expiresAt: now }));
        await store.createToken(newToken('t-later', 'u-alice', { expiresAt: new Date(now.getTime() + 1) }));
        await store.createToken(newToken('t-never', 'u-alice'));
        assert.deepEqual(await store.deleteExpiredTokens(now), ['t-now', 't-past']);
        assert.deepEqual(await store.deleteExpiredTokens(now), []);
        assert.deepEqual((await store.listTokens()).map((token) => token.name).sort(), ['t-later', 't-never']);
      });

      it('records token use without ever moving lastUsedAt backwards, and ignores unknown tokens, because touches race between replicas', async () => {
        await store.createToken(newToken('t-one', 'u-alice'));
        const later = new Date('2030-01-01T00:00:10.000Z');
        await store.touchToken('t-one', later);
        assert.deepEqual((await store.getToken('t-one'))?.lastUsedAt, later);
        await store.touchToken('t-one', new Date('2030-01-01T00:00:05.000Z'));
        assert.deepEqual((await store.getToken('t-one'))?.lastUsedAt, later);
        await store.touchToken('t-missing', later);
        assert.equal(await store.getToken('t-missing'), undefined);
      });
    });

    describe('clusters', () => {
      it('creates a cluster with defaults and returns its decrypted credentials', async () => {
        const created = await store.createCluster(newCluster('prod'));
        assert.equal(created.displayName, 'prod');
        assert.equal(created.caPem, null);
        assert.equal(created.insecureSkipTlsVerify, false);
        assert.deepEqual(created.credentials, { kind: 'token', token: CLUSTER_TOKEN });
        assert.deepEqual(created.ace, { enabled: false, fqdn: null, caPem: null, nodes: [] });
        assert.deepEqual(await store.getCluster('prod'), created);
        assert.equal(await store.getCluster('nowhere'), undefined);
      });

      it('round-trips client-certificate credentials and authorized-endpoint settings exactly', async () => {
        const cluster: NewCluster = {
          id: 'edge',
          displayName: 'Edge cluster',
          server: 'https://10.0.0.1:6443/k8s',
          mode: 'direct',
          caPem: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
          credentials: { kind: 'clientCertificate', certPem: '-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n', keyPem: CLIENT_KEY_PEM },
          insecureSkipTlsVerify: true,
          ace: { enabled: true, fqdn: 'edge.example.org', caPem: null, nodes: [{ name: 'cp-1', address: '10.0.0.2' }, { name: 'cp-2', address: 'cp-2.local' }] },
        };
        const created = await store.createCluster(cluster);
        const { createdAt, updatedAt, deletingSince, syncHoldsObjects, ...rest } = created;
        assert.deepEqual(rest, cluster);
        assert.equal(deletingSince, null);
        assert.equal(syncHoldsObjects, false);
        assert.deepEqual(createdAt, updatedAt);
        assert.deepEqual(await store.listClusters(), [created]);
      });

      it('refuses a second cluster with the same ID with STORE_CONSTRAINT and keeps the first unchanged', async () => {
        const first = await store.createCluster(newCluster('prod', { displayName: 'Production' }));
        await rejectsWithCode(store.createCluster(newCluster('prod', { displayName: 'Impostor', credentials: { kind: 'token', token: 'other' } })), 'STORE_CONSTRAINT');
        assert.deepEqual(await store.getCluster('prod'), first);
      });

      it('refuses malformed credentials with a TypeError and writes nothing, because a half-made cluster must not exist', async () => {
        await assert.rejects(store.createCluster(newCluster('prod', { credentials: { kind: 'password' } as never })), TypeError);
        await assert.rejects(store.createCluster(newCluster('prod', { credentials: { kind: 'clientCertificate', certPem: 'C' } as never })), TypeError);
        assert.equal(await store.getCluster('prod'), undefined);
        assert.deepEqual(await store.listClusters(), []);
      });

      it('updates the fields a patch names, replaces credentials whole and keeps the rest', async () => {
        const created = await store.createCluster(newCluster('prod', { caPem: 'CA' }));
        await new Promise((resolve) => setTimeout(resolve, 5));
        const updated = await store.updateCluster('prod', {
          displayName: 'Production',
          caPem: null,
          credentials: { kind: 'clientCertificate', certPem: 'CERT', keyPem: CLIENT_KEY_PEM },
        });
        assert.ok(updated);
        assert.equal(updated.displayName, 'Production');
        assert.equal(updated.caPem, null);
        assert.equal(updated.server, created.server);
        assert.deepEqual(updated.credentials, { kind: 'clientCertificate', certPem: 'CERT', keyPem: CLIENT_KEY_PEM });
        assert.deepEqual(updated.createdAt, created.createdAt);
        assert.ok(updated.updatedAt.getTime() > created.updatedAt.getTime());
        assert.deepEqual(await store.getCluster('prod'), updated);
        assert.equal(await store.updateCluster('nowhere', { displayName: 'x' }), undefined);
        await assert.rejects(store.updateCluster('prod', { credentials: { kind: 'token' } as never }), TypeError);
        assert.deepEqual(await store.getCluster('prod'), updated);
      });

      it('lists clusters ordered by ID and deletes one, reporting whether it existed', async () => {
        await store.createCluster(newCluster('prod'));
        await store.createCluster(newCluster('dev'));
        assert.deepEqual((await store.listClusters()).map((cluster) => cluster.id), ['dev', 'prod']);
        assert.equal(await store.deleteCluster('dev'), true);
        assert.equal(await store.deleteCluster('dev'), false);
        assert.deepEqual((await store.listClusters()).map((cluster) => cluster.id), ['prod']);
      });
    });

    describe('cluster deletion and installation settings', () => {
      it('marks a cluster as deleting once, keeps the first time, announces it, and says undefined for an unknown cluster', async () => {
        await store.createCluster(newCluster('prod'));
        const changes: StoreChange[] = [];
        store.subscribe((change) => changes.push(change));
        const first = new Date('2030-01-02T03:04:05.000Z');
        const marked = await store.markClusterDeleting('prod', first);
        assert.deepEqual(marked?.deletingSince, first);
        const again = await store.markClusterDeleting('prod', new Date('2031-01-01T00:00:00.000Z'));
        assert.deepEqual(again?.deletingSince, first, 'the first deletion time is kept');
        assert.deepEqual((await store.getCluster('prod'))?.deletingSince, first);
        assert.deepEqual(changes.filter((change) => change.kind === 'cluster').map((change) => change.key), ['prod', 'prod']);
        assert.equal(await store.markClusterDeleting('nowhere', first), undefined);
      });

      it('records whether the sync holds objects in a cluster, without announcing it (only the sync reads it)', async () => {
        await store.createCluster(newCluster('prod'));
        const changes: StoreChange[] = [];
        store.subscribe((change) => changes.push(change));
        assert.equal(await store.setClusterSyncHoldsObjects('prod', true), true);
        assert.equal((await store.getCluster('prod'))?.syncHoldsObjects, true);
        assert.equal(await store.setClusterSyncHoldsObjects('prod', false), true);
        assert.equal((await store.getCluster('prod'))?.syncHoldsObjects, false);
        assert.equal(await store.setClusterSyncHoldsObjects('nowhere', true), false);
        await assert.rejects(store.setClusterSyncHoldsObjects('prod', 'yes' as never), TypeError);
        assert.deepEqual(changes, []);
      });

      it('stores a setting once: later and concurrent ensureSetting calls answer the first value, across connections', async () => {
        const other = await open();
        const answers = await Promise.all([store.ensureSetting('installation.id', 'a'), other.ensureSetting('installation.id', 'b'), store.ensureSetting('installation.id', 'c')]);
        assert.equal(new Set(answers).size, 1, 'everyone got the same value');
        assert.ok(['a', 'b'].includes(answers[0]!));
        assert.equal(await other.ensureSetting('installation.id', 'd'), answers[0]);
        assert.equal(await store.ensureSetting('something.else', 'x'), 'x');
      });

      it('keeps the newest sync epochs, newest first, and drops older ones', async () => {
        assert.deepEqual(await store.listSyncEpochs(), []);
        const base = Date.parse('2030-01-01T00:00:00.000Z');
        for (let i = 1; i <= 4; i++) await store.addSyncEpoch(`e${i}`, new Date(base + i * 1000), 3);
        assert.deepEqual(await store.listSyncEpochs(), ['e4', 'e3', 'e2']);
        assert.deepEqual(await store.addSyncEpoch('e5', new Date(base + 5000), 2), ['e5', 'e4']);
        assert.deepEqual(await store.listSyncEpochs(), ['e5', 'e4']);
        await assert.rejects(store.addSyncEpoch('e6', new Date(base + 6000), 0), TypeError);
      });
    });

    describe('login failure counters', () => {
      const T0 = new Date('2030-01-01T00:00:00.000Z');
      const later = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);

      it('takes places up to the limit, then refuses until the window closes; only the first refusal says so', async () => {
        for (let i = 0; i < 3; i++) assert.deepEqual(await store.takeLoginFailure('username', 'k', 3, 60, later(i)), { taken: true, windowStart: T0.getTime() });
        assert.deepEqual(await store.takeLoginFailure('username', 'k', 3, 60, later(10)), { taken: false, retryAfterSeconds: 50, firstRefusal: true });
        assert.deepEqual(await store.takeLoginFailure('username', 'k', 3, 60, later(59.5)), { taken: false, retryAfterSeconds: 1, firstRefusal: false });
        // Other keys and other counters are apart.
        assert.equal((await store.takeLoginFailure('address', 'k', 3, 60, later(10))).taken, true);
        assert.equal((await store.takeLoginFailure('username', 'other', 3, 60, later(10))).taken, true);
        // The window closes 60 s after it opened: a new one opens with the next take.
        assert.deepEqual(await store.takeLoginFailure('username', 'k', 3, 60, later(60)), { taken: true, windowStart: later(60).getTime() });
      });

      it('gives a place back only to the window it was taken in', async () => {
        const first = await store.takeLoginFailure('username', 'k', 1, 60, T0);
        assert.ok(first.taken);
        assert.equal((await store.takeLoginFailure('username', 'k', 1, 60, later(1))).taken, false);
        await store.giveBackLoginFailure('username', 'k', first.windowStart);
        const again = await store.takeLoginFailure('username', 'k', 1, 60, later(2));
        assert.ok(again.taken);
        // A place of a closed window given back after a new window opened changes nothing.
        const fresh = await store.takeLoginFailure('username', 'k', 1, 60, later(61));
        assert.ok(fresh.taken);
        await store.giveBackLoginFailure('username', 'k', first.windowStart);
        assert.equal((await store.takeLoginFailure('username', 'k', 1, 60, later(62))).taken, false);
      });

      it('forgets a window (an admin reset, or a success), with windowStart only while it is the current one', async () => {
        const taken = await store.takeLoginFailure('username', 'k', 1, 60, T0);
        assert.ok(taken.taken);
        await store.forgetLoginFailures('username', 'k', taken.windowStart + 1);
        assert.equal((await store.takeLoginFailure('username', 'k', 1, 60, later(1))).taken, false, 'another window start forgets nothing');
        await store.forgetLoginFailures('username', 'k', taken.windowStart);
        assert.equal((await store.takeLoginFailure('username', 'k', 1, 60, later(2))).taken, true);
        await store.forgetLoginFailures('username', 'k');
        assert.equal((await store.takeLoginFailure('username', 'k', 1, 60, later(3))).taken, true);
      });

      it('never hands out more than the limit to concurrent takes on several connections, because the limit is checked before the password', async () => {
        const others = [await open(), await open()];
        const stores = [store, ...others];
        const takes = await Promise.all(Array.from({ length: 30 }, (_, i) => stores[i % stores.length]!.takeLoginFailure('username', 'burst', 5, 60, later(1))));
        assert.equal(takes.filter((take) => take.taken).length, 5);
        assert.equal(takes.filter((take) => !take.taken && take.firstRefusal).length, 1, 'the limit trips once');
      });

      it('deletes closed windows of other keys, so the table holds only open ones', async () => {
        await store.takeLoginFailure('username', 'gone', 3, 60, T0);
        await store.takeLoginFailure('address', 'kept', 3, 60, T0);
        await store.takeLoginFailure('username', 'new', 3, 60, later(61));
        await eventually(async () => (await db.query("SELECT key FROM login_failures WHERE key = 'gone'")).length === 0, 5000, 'the closed window pruned');
        assert.deepEqual((await db.query('SELECT counter, key FROM login_failures ORDER BY key')).map((row) => `${String(row.counter)}/${String(row.key)}`), ['address/kept', 'username/new']);
      });

      it('refuses bad arguments before any SQL', async () => {
        await assert.rejects(store.takeLoginFailure('username', 'k', 0, 60, T0), TypeError);
        await assert.rejects(store.takeLoginFailure('username', 'k', 1, 0, T0), TypeError);
        await assert.rejects(store.giveBackLoginFailure('username', 'k', -1), TypeError);
        await assert.rejects(store.forgetLoginFailures('username', 'k', 1.5), TypeError);
      });
    });

    describe('memberships', () => {
      beforeEach(async () => {
        await store.createCluster(newCluster('prod'));
        await store.createCluster(newCluster('dev'));
      });

      it('creates a membership and replaces its role on a second put, because a subject has one role per cluster', async () => {
        const first = await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-alice', role: 'viewer' });
        assert.equal(first.role, 'viewer');
        const second = await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-alice', role: 'owner' });
        assert.equal(second.role, 'owner');
        assert.deepEqual(await store.listMemberships('prod'), [second]);
      });

      it('refuses a membership in an unknown cluster with STORE_CONSTRAINT', async () => {
        await rejectsWithCode(store.putMembership({ clusterId: 'nowhere', subjectKind: 'User', subjectName: 'u-alice', role: 'member' }), 'STORE_CONSTRAINT');
        assert.deepEqual(await store.listMemberships('nowhere'), []);
      });

      it('keeps User and Group subjects apart, because a group may be named like a user ID', async () => {
        await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-alice', role: 'owner' });
        await store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'u-alice', role: 'viewer' });
        await store.putMembership({ clusterId: 'dev', subjectKind: 'Group', subjectName: 'ldap:cn=ops', role: 'member' });
        await store.putMembership({ clusterId: 'dev', subjectKind: 'User', subjectName: 'u-bob', role: 'member' });
        const of = async (users: string[], groups: string[]): Promise<string[]> =>
          (await store.listMembershipsOf({ users, groups })).map((m) => `${m.clusterId}/${m.subjectKind}/${m.subjectName}/${m.role}`);
        assert.deepEqual(await of(['u-alice'], []), ['prod/User/u-alice/owner']);
        assert.deepEqual(await of([], ['u-alice']), ['prod/Group/u-alice/viewer']);
        assert.deepEqual(await of(['u-alice'], ['ldap:cn=ops', 'ldap:cn=nobody']), ['dev/Group/ldap:cn=ops/member', 'prod/User/u-alice/owner']);
        assert.deepEqual(await of([], []), []);
        assert.deepEqual(
          (await store.listMemberships('prod')).map((m) => `${m.subjectKind}/${m.subjectName}`),
          ['Group/u-alice', 'User/u-alice'],
        );
      });

      it('deletes one membership and reports whether it existed', async () => {
        await store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'github:acme/sre', role: 'member' });
        assert.equal(await store.deleteMembership('prod', 'User', 'github:acme/sre'), false);
        assert.equal(await store.deleteMembership('prod', 'Group', 'github:acme/sre'), true);
        assert.equal(await store.deleteMembership('prod', 'Group', 'github:acme/sre'), false);
        assert.deepEqual(await store.listMemberships('prod'), []);
      });
    });

    describe('identity provider configurations', () => {
      it('stores, replaces, lists and deletes provider configurations with their settings', async () => {
        const settings = { url: 'ldaps://ldap.example.org', bindPassword: PROVIDER_SECRET, nested: { list: [1, 'two', null, true] } };
        const created = await store.putProviderConfig({ name: 'corp-ldap', type: 'ldap', enabled: true, settings });
        assert.deepEqual(created.settings, settings);
        assert.equal(created.enabled, true);
        assert.deepEqual(await store.getProviderConfig('corp-ldap'), created);
        const replaced = await store.putProviderConfig({ name: 'corp-ldap', type: 'activedirectory', enabled: false, settings: { domain: 'corp' } });
        assert.equal(replaced.type, 'activedirectory');
        assert.deepEqual(replaced.settings, { domain: 'corp' });
        await store.putProviderConfig({ name: 'github', type: 'github', enabled: true, settings: {} });
        assert.deepEqual((await store.listProviderConfigs()).map((config) => config.name), ['corp-ldap', 'github']);
        assert.equal(await store.deleteProviderConfig('corp-ldap'), true);
        assert.equal(await store.deleteProviderConfig('corp-ldap'), false);
        assert.equal(await store.getProviderConfig('corp-ldap'), undefined);
      });
    });

    describe('group cache', () => {
      it('stores and replaces the groups of a user per provider', async () => {
        await store.createUser(newUser('alice'));
        const refreshedAt = new Date('2030-01-01T12:00:00.123Z');
        await store.putUserGroups({ userId: 'u-alice', provider: 'corp-ldap', groups: ['ldap:cn=ops', 'ldap:cn=dev'], refreshedAt });
        assert.deepEqual(await store.getUserGroups('u-alice', 'corp-ldap'), { userId: 'u-alice', provider: 'corp-ldap', groups: ['ldap:cn=ops', 'ldap:cn=dev'], refreshedAt });
        assert.equal(await store.getUserGroups('u-alice', 'github'), undefined);
        await store.putUserGroups({ userId: 'u-alice', provider: 'corp-ldap', groups: [], refreshedAt });
        assert.deepEqual((await store.getUserGroups('u-alice', 'corp-ldap'))?.groups, []);
      });

      it('refuses groups for a user that does not exist with STORE_CONSTRAINT', async () => {
        await rejectsWithCode(store.putUserGroups({ userId: 'u-nobody', provider: 'github', groups: ['github:x'], refreshedAt: new Date() }), 'STORE_CONSTRAINT');
      });
    });

    describe('cascades', () => {
      beforeEach(async () => {
        await store.createUser(newUser('alice'));
        await store.createUser(newUser('bob'));
        await store.createCluster(newCluster('prod'));
        await store.createCluster(newCluster('dev'));
      });

      it('deleting a user removes its identities, tokens, group cache and User memberships, and nothing of anyone else', async () => {
        await store.linkIdentity({ provider: 'github', providerUserId: '1', userId: 'u-alice', loginName: 'alice' });
        await store.linkIdentity({ provider: 'github', providerUserId: '2', userId: 'u-bob', loginName: 'bob' });
        await store.createToken(newToken('t-a1', 'u-alice'));
        await store.createToken(newToken('t-a2', 'u-alice', { clusterId: 'prod' }));
        await store.createToken(newToken('t-b1', 'u-bob'));
        await store.putUserGroups({ userId: 'u-alice', provider: 'github', groups: ['github:acme'], refreshedAt: new Date() });
        await store.putUserGroups({ userId: 'u-bob', provider: 'github', groups: ['github:acme'], refreshedAt: new Date() });
        await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-alice', role: 'owner' });
        await store.putMembership({ clusterId: 'dev', subjectKind: 'User', subjectName: 'u-alice', role: 'viewer' });
        await store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'u-alice', role: 'viewer' });
        await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-bob', role: 'member' });

        assert.equal(await store.deleteUser('u-alice'), true);

        assert.equal(await store.getUser('u-alice'), undefined);
        assert.equal(await store.findIdentity('github', '1'), undefined);
        assert.deepEqual(await store.listIdentities('u-alice'), []);
        assert.deepEqual((await store.listTokens()).map((token) => token.name), ['t-b1']);
        assert.equal(await store.getUserGroups('u-alice', 'github'), undefined);
        assert.deepEqual(
          (await store.listMembershipsOf({ users: ['u-alice', 'u-bob'], groups: ['u-alice'] })).map((m) => `${m.clusterId}/${m.subjectKind}/${m.subjectName}`),
          ['prod/Group/u-alice', 'prod/User/u-bob'],
        );
        assert.ok(await store.findIdentity('github', '2'));
        assert.ok(await store.getUserGroups('u-bob', 'github'));
        assert.equal(await store.countUsers(), 1);
      });

      it('deleting a cluster removes its memberships and the tokens scoped to it, and keeps global and other tokens', async () => {
        await store.createToken(newToken('t-global', 'u-alice'));
        await store.createToken(newToken('t-prod', 'u-alice', { clusterId: 'prod' }));
        await store.createToken(newToken('t-dev', 'u-bob', { clusterId: 'dev' }));
        await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-alice', role: 'owner' });
        await store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'github:acme', role: 'viewer' });
        await store.putMembership({ clusterId: 'dev', subjectKind: 'User', subjectName: 'u-alice', role: 'viewer' });

        assert.equal(await store.deleteCluster('prod'), true);

        assert.deepEqual((await store.listTokens()).map((token) => token.name).sort(), ['t-dev', 't-global']);
        assert.deepEqual(await store.listMemberships('prod'), []);
        assert.deepEqual(
          (await store.listMembershipsOf({ users: ['u-alice'], groups: ['github:acme'] })).map((m) => m.clusterId),
          ['dev'],
        );
        assert.ok(await store.getUser('u-alice'));
      });
    });

    describe('isolation of returned objects', () => {
      it('returns fresh copies, so mutating one changes nothing stored', async () => {
        const user = (await store.createUser(newUser('alice'))) as { displayName: string; createdAt: Date };
        user.displayName = 'mutated';
        user.createdAt.setTime(0);
        const cluster = await store.createCluster(
          newCluster('prod', { ace: { enabled: true, fqdn: 'a.example', caPem: null, nodes: [{ name: 'n1', address: '10.0.0.1' }] } }),
        );
        (cluster.ace.nodes as unknown as { name: string }[])[0]!.name = 'mutated';
        (cluster.ace.nodes as unknown[]).push({ name: 'n2', address: 'x' });
        (cluster.credentials as { token: string }).token = 'mutated';
        const config = await store.putProviderConfig({ name: 'oidc', type: 'oidc', enabled: true, settings: { scopes: ['openid'] } });
        (config.settings.scopes as string[]).push('mutated');
        await store.putUserGroups({ userId: 'u-alice', provider: 'oidc', groups: ['oidc:a'], refreshedAt: new Date() });
        const groups = await store.getUserGroups('u-alice', 'oidc');
        (groups!.groups as string[]).push('oidc:mutated');

        const storedUser = await store.getUser('u-alice');
        assert.equal(storedUser?.displayName, 'alice');
        assert.notEqual(storedUser?.createdAt.getTime(), 0);
        const storedCluster = await store.getCluster('prod');
        assert.deepEqual(storedCluster?.ace.nodes, [{ name: 'n1', address: '10.0.0.1' }]);
        assert.deepEqual(storedCluster?.credentials, { kind: 'token', token: CLUSTER_TOKEN });
        assert.deepEqual((await store.getProviderConfig('oidc'))?.settings, { scopes: ['openid'] });
        assert.deepEqual((await store.getUserGroups('u-alice', 'oidc'))?.groups, ['oidc:a']);
        assert.notEqual(await store.getUser('u-alice'), await store.getUser('u-alice'));
      });

      it('keeps no reference to the objects a caller passed in', async () => {
        const groups = ['oidc:a'];
        const settings = { scopes: ['openid'] };
        await store.createUser(newUser('alice'));
        await store.putUserGroups({ userId: 'u-alice', provider: 'oidc', groups, refreshedAt: new Date() });
        await store.putProviderConfig({ name: 'oidc', type: 'oidc', enabled: true, settings });
        groups.push('oidc:late');
        settings.scopes.push('late');
        assert.deepEqual((await store.getUserGroups('u-alice', 'oidc'))?.groups, ['oidc:a']);
        assert.deepEqual((await store.getProviderConfig('oidc'))?.settings, { scopes: ['openid'] });
      });
    });

    describe('secrets at rest', () => {
      it('keeps cluster credentials and provider settings only as sealed envelopes, and tokens only as hashes', async () => {
        await store.createUser(newUser('alice'));
        await store.createCluster(newCluster('prod'));
        await store.createCluster(newCluster('edge', { credentials: { kind: 'clientCertificate', certPem: 'CERT', keyPem: CLIENT_KEY_PEM } }));
        await store.putProviderConfig({ name: 'corp-ldap', type: 'ldap', enabled: true, settings: { bindPassword: PROVIDER_SECRET } });
        await store.createToken(newToken('t-one', 'u-alice'));

        const everything = JSON.stringify([
          await db.query('SELECT * FROM clusters'),
          await db.query('SELECT * FROM provider_configs'),
          await db.query('SELECT * FROM tokens'),
        ]);
        for (const secret of [CLUSTER_TOKEN, 'PLAINTEXT-KEY-MATERIAL', PROVIDER_SECRET]) {
          assert.ok(!everything.includes(secret), 'a plaintext secret reached the database');
        }
        for (const row of await db.query('SELECT credentials_sealed FROM clusters')) {
          assert.match(String(row.credentials_sealed), /^v1:[A-Za-z0-9_-]{8}:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
        }
        const [settingsRow] = await db.query('SELECT settings_sealed FROM provider_configs');
        assert.match(String(settingsRow?.settings_sealed), /^v1:/);
        const [tokenRow] = await db.query('SELECT * FROM tokens');
        assert.deepEqual(Object.keys(tokenRow!).sort(), [
          'cluster_id',
          'created_at',
          'description',
          'expires_at',
          'kind',
          'last_used_at',
          'name',
          'provider',
          'token_hash',
          'user_id',
        ]);
        assert.equal(tokenRow!.token_hash, TOKEN_HASH);
      });

      it('refuses to read secrets sealed under another key with SECRET_DECRYPT_FAILED, and reads them with the old key kept for rotation', async () => {
        await store.createCluster(newCluster('prod'));
        await store.putProviderConfig({ name: 'corp-ldap', type: 'ldap', enabled: true, settings: { bindPassword: PROVIDER_SECRET } });
        const newKey = randomBytes(32);
        const wrongKey = await open({ secretBox: createSecretBox(newKey) });
        await rejectsWithCode(wrongKey.getCluster('prod'), 'SECRET_DECRYPT_FAILED');
        await rejectsWithCode(wrongKey.listClusters(), 'SECRET_DECRYPT_FAILED');
        await rejectsWithCode(wrongKey.getProviderConfig('corp-ldap'), 'SECRET_DECRYPT_FAILED');
        const rotated = await open({ secretBox: createSecretBox(newKey, { previousKeys: [db.key] }) });
        assert.deepEqual((await rotated.getCluster('prod'))?.credentials, { kind: 'token', token: CLUSTER_TOKEN });
        assert.deepEqual((await rotated.getProviderConfig('corp-ldap'))?.settings, { bindPassword: PROVIDER_SECRET });
      });

      it('detects a sealed value that was tampered with in the database', async () => {
        await store.createCluster(newCluster('prod'));
        const [row] = await db.query('SELECT credentials_sealed FROM clusters');
        const sealed = String(row!.credentials_sealed);
        const flipped = `${sealed.slice(0, -6)}${sealed.slice(-6, -5) === 'A' ? 'B' : 'A'}${sealed.slice(-5)}`;
        await db.query(`UPDATE clusters SET credentials_sealed = '${flipped}'`);
        await rejectsWithCode(store.getCluster('prod'), 'SECRET_DECRYPT_FAILED');
      });
    });

    describe('atomicity', () => {
      it('leaves everything in place when deleting a user fails midway, because a half-deleted user keeps neither its rights nor its audit trail straight', async () => {
        await store.createUser(newUser('alice'));
        await store.createCluster(newCluster('prod'));
        await store.linkIdentity({ provider: 'github', providerUserId: '1', userId: 'u-alice', loginName: 'alice' });
        await store.createToken(newToken('t-a1', 'u-alice'));
        await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-alice', role: 'owner' });
        // The last step (deleting the user row) fails after tokens, memberships and identities were deleted.
        await db.query(
          db.dialect === 'sqlite'
            ? `CREATE TRIGGER refuse_user_delete BEFORE DELETE ON users BEGIN SELECT RAISE(ABORT, 'refused by test'); END`
            : `CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
               CREATE TRIGGER refuse_user_delete BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION refuse_delete();`,
        );
        const heard: StoreChange[] = [];
        store.subscribe((change) => heard.push(change));

        await assert.rejects(store.deleteUser('u-alice'));

        assert.ok(await store.getUser('u-alice'));
        assert.deepEqual((await store.listTokens()).map((token) => token.name), ['t-a1']);
        assert.equal((await store.listMemberships('prod')).length, 1);
        assert.equal((await store.listIdentities('u-alice')).length, 1);
        assert.deepEqual(heard, []);
      });

      it('leaves everything in place when deleting a cluster fails midway', async () => {
        await store.createUser(newUser('alice'));
        await store.createCluster(newCluster('prod'));
        await store.createToken(newToken('t-prod', 'u-alice', { clusterId: 'prod' }));
        await store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'github:acme', role: 'owner' });
        await db.query(
          db.dialect === 'sqlite'
            ? `CREATE TRIGGER refuse_cluster_delete BEFORE DELETE ON clusters BEGIN SELECT RAISE(ABORT, 'refused by test'); END`
            : `CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
               CREATE TRIGGER refuse_cluster_delete BEFORE DELETE ON clusters FOR EACH ROW EXECUTE FUNCTION refuse_delete();`,
        );
        await assert.rejects(store.deleteCluster('prod'));
        assert.ok(await store.getCluster('prod'));
        assert.ok(await store.getToken('t-prod'));
        assert.equal((await store.listMemberships('prod')).length, 1);
      });
    });

    describe('change announcements', () => {
      it('announces every committed change exactly once, before the write resolves, with the key subscribers invalidate by', async () => {
        const heard: StoreChange[] = [];
        store.subscribe((change) => heard.push(change));
        const expect = async (write: () => Promise<unknown>, expected: string[]): Promise<void> => {
          heard.length = 0;
          await write();
          assert.deepEqual(sortedChanges(heard), [...expected].sort());
        };
        await expect(() => store.createUser(newUser('alice')), ['user:u-alice']);
        await expect(() => store.updateUser('u-alice', { enabled: false }), ['user:u-alice']);
        await expect(() => store.linkIdentity({ provider: 'github', providerUserId: '1', userId: 'u-alice', loginName: 'a' }), ['identity:u-alice']);
        await expect(() => store.putUserGroups({ userId: 'u-alice', provider: 'github', groups: [], refreshedAt: new Date() }), ['groups:u-alice']);
        await expect(() => store.createCluster(newCluster('prod')), ['cluster:prod']);
        await expect(() => store.updateCluster('prod', { displayName: 'P' }), ['cluster:prod']);
        await expect(() => store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-alice', role: 'owner' }), ['membership:prod']);
        await expect(() => store.deleteMembership('prod', 'User', 'u-alice'), ['membership:prod']);
        await expect(() => store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'g', role: 'owner' }), ['membership:prod']);
        await expect(() => store.putProviderConfig({ name: 'github', type: 'github', enabled: true, settings: {} }), ['provider:github']);
        await expect(() => store.deleteProviderConfig('github'), ['provider:github']);
        await expect(() => store.createToken(newToken('t-1', 'u-alice')), ['token:t-1']);
        await expect(() => store.touchToken('t-1', new Date()), []);
        await expect(() => store.deleteToken('t-1'), ['token:t-1']);
        await store.createToken(newToken('t-2', 'u-alice'));
        await store.createToken(newToken('t-3', 'u-alice', { expiresAt: new Date(0) }));
        await store.createToken(newToken('t-4', 'u-alice', { clusterId: 'prod' }));
        await store.createToken(newToken('t-5', 'u-alice'));
        await expect(() => store.deleteExpiredTokens(new Date()), ['token:t-3']);
        await expect(() => store.deleteTokens({ userId: 'u-alice', provider: 'nowhere' }), []);
        await expect(() => store.deleteCluster('prod'), ['cluster:prod', 'membership:prod', 'token:t-4']);
        await store.createCluster(newCluster('dev'));
        await store.putMembership({ clusterId: 'dev', subjectKind: 'User', subjectName: 'u-alice', role: 'owner' });
        await expect(() => store.deleteUser('u-alice'), ['user:u-alice', 'identity:u-alice', 'groups:u-alice', 'token:t-2', 'token:t-5', 'membership:dev']);
      });

      it('announces nothing for reads, for writes that change nothing, and for writes that fail', async () => {
        await store.createUser(newUser('alice'));
        const heard: StoreChange[] = [];
        store.subscribe((change) => heard.push(change));
        await store.getUser('u-alice');
        await store.listTokens();
        await store.deleteToken('t-missing');
        await store.deleteUser('u-missing');
        await store.updateUser('u-missing', { enabled: false });
        await store.deleteCluster('missing');
        await store.deleteMembership('missing', 'User', 'u-alice');
        await store.deleteProviderConfig('missing');
        assert.deepEqual(await store.deleteExpiredTokens(new Date()), []);
        await assert.rejects(store.createUser(newUser('alice')));
        await assert.rejects(store.createToken(newToken('t-1', 'u-missing')));
        assert.deepEqual(heard, []);
      });

      it('stops announcing to a listener that unsubscribed, and a listener that throws neither fails the write nor silences the others', async () => {
        const errors: unknown[] = [];
        const own = await open({ onError: (error) => errors.push(error) });
        const first: StoreChange[] = [];
        const second: StoreChange[] = [];
        const unsubscribe = own.subscribe((change) => first.push(change));
        own.subscribe(() => {
          throw new Error('listener failure');
        });
        own.subscribe((change) => second.push(change));
        await own.createUser(newUser('alice'));
        unsubscribe();
        unsubscribe();
        await own.createUser(newUser('bob'));
        assert.deepEqual(sortedChanges(first), ['user:u-alice']);
        assert.deepEqual(sortedChanges(second), ['user:u-alice', 'user:u-bob']);
        assert.equal(errors.length, 2);
        assert.equal((errors[0] as Error).message, 'listener failure');
        assert.equal(await own.countUsers(), 2);
      });
    });

    describe('migrations and lifecycle', () => {
      it('opens an existing database again without re-applying migrations or losing data', async () => {
        await store.createUser(newUser('alice'));
        await store.close();
        const again = await open();
        const third = await open();
        assert.equal((await again.getUser('u-alice'))?.username, 'alice');
        assert.equal(await third.countUsers(), 1);
        const versions = (await db.query('SELECT version FROM schema_migrations ORDER BY version')).map((row) => Number(row.version));
        const expected = (db.dialect === 'sqlite' ? sqliteMigrations : postgresMigrations).map((migration) => migration.version);
        assert.deepEqual(versions, expected);
      });

      it('answers ping while open, and STORE_UNAVAILABLE for ping and every call after close', async () => {
        await store.ping();
        assert.ok(store.kind === db.dialect);
        await store.close();
        await store.close();
        await rejectsWithCode(store.ping(), 'STORE_UNAVAILABLE');
        await rejectsWithCode(store.getUser('u-alice'), 'STORE_UNAVAILABLE');
        await rejectsWithCode(store.createUser(newUser('alice')), 'STORE_UNAVAILABLE');
      });
    });

    describe('agent-mode clusters', () => {
      it('stores an agent cluster without credentials and with no server yet, because its agent connects out and reports the server', async () => {
        const created = await store.createCluster({ id: 'edge', server: '', mode: 'agent' });
        assert.equal(created.mode, 'agent');
        assert.equal(created.credentials, null);
        assert.equal(created.server, '');
        assert.deepEqual(await store.getCluster('edge'), created);
        const direct = await store.createCluster(newCluster('prod'));
        assert.equal(direct.mode, 'direct');
        assert.deepEqual(await store.listClusters(), [created, direct]);
        const [row] = await db.query(`SELECT credentials_sealed FROM clusters WHERE id = 'edge'`);
        assert.equal(row!.credentials_sealed, null);
      });

      it('refuses a direct cluster without credentials and an agent cluster with some with BAD_REQUEST, and an unknown mode with a TypeError, writing nothing', async () => {
        await rejectsWithCode(store.createCluster({ id: 'prod', server: 'https://prod.example.org' }), 'BAD_REQUEST');
        await rejectsWithCode(store.createCluster({ id: 'prod', server: 'https://prod.example.org', credentials: null }), 'BAD_REQUEST');
        await rejectsWithCode(store.createCluster(newCluster('edge', { mode: 'agent' })), 'BAD_REQUEST');
        await rejectsWithCode(store.createCluster({ id: 'prod', server: '', credentials: { kind: 'token', token: 't' } }), 'BAD_REQUEST');
        await assert.rejects(store.createCluster({ id: 'edge', server: '', mode: 'tunnel' as 'agent' }), TypeError);
        assert.deepEqual(await store.listClusters(), []);
      });

      it('switches a cluster between direct and agent mode only together with its credentials', async () => {
        await store.createCluster(newCluster('prod'));
        await rejectsWithCode(store.updateCluster('prod', { mode: 'agent' }), 'BAD_REQUEST');
        const agent = await store.updateCluster('prod', { mode: 'agent', credentials: null });
        assert.equal(agent?.mode, 'agent');
        assert.equal(agent?.credentials, null);
        await rejectsWithCode(store.updateCluster('prod', { mode: 'direct' }), 'BAD_REQUEST');
        const direct = await store.updateCluster('prod', { mode: 'direct', credentials: { kind: 'token', token: CLUSTER_TOKEN } });
        assert.deepEqual(direct?.credentials, { kind: 'token', token: CLUSTER_TOKEN });
        assert.deepEqual(await store.getCluster('prod'), direct);
      });
    });

    describe('issuer signing keys', () => {
      const PRIVATE_D = 'private-part-of-the-key-0123456789';
      const signingKey = (kid: string, generation: number, extra: Partial<NewSigningKey> = {}): NewSigningKey => ({
        kid,
        generation,
        algorithm: 'ES256',
        publicJwk: JSON.stringify({ kty: 'EC', crv: 'P-256', x: `x-${kid}`, y: `y-${kid}` }),
        privateJwk: JSON.stringify({ kty: 'EC', crv: 'P-256', x: `x-${kid}`, y: `y-${kid}`, d: PRIVATE_D }),
        createdAt: new Date('2030-01-01T00:00:00.000Z'),
        ...extra,
      });

      it('creates keys, lists them oldest generation first with the private JWK opened, and deletes them', async () => {
        const second = await store.createSigningKey(signingKey('k-2', 2, { createdAt: new Date('2030-01-02T00:00:00.000Z') }));
        const first = await store.createSigningKey(signingKey('k-1', 1));
        assert.deepEqual(first, { ...signingKey('k-1', 1) });
        assert.equal(JSON.parse(second!.privateJwk).d, PRIVATE_D);
        assert.deepEqual(JSON.parse(second!.publicJwk), { kty: 'EC', crv: 'P-256', x: 'x-k-2', y: 'y-k-2' });
        assert.deepEqual(await store.listSigningKeys(), [first, second]);
        assert.equal(await store.deleteSigningKey('k-1'), true);
        assert.equal(await store.deleteSigningKey('k-1'), false);
        assert.deepEqual((await store.listSigningKeys()).map((key) => key.kid), ['k-2']);
      });

      it('keeps the private JWK sealed at rest, because it signs identities every cluster trusts', async () => {
        await store.createSigningKey(signingKey('k-1', 1));
        const rows = await db.query('SELECT private_jwk_sealed FROM signing_keys');
        assert.equal(rows.length, 1);
        assert.ok(!String(rows[0]!.private_jwk_sealed).includes(PRIVATE_D));
        assert.match(String(rows[0]!.private_jwk_sealed), /^v1:/);
      });

      it('creates one key per generation when replicas rotate at the same moment, and tells the losers', async () => {
        await store.createSigningKey(signingKey('k-1', 1));
        const outcomes = await Promise.all(['k-a', 'k-b', 'k-c', 'k-d'].map((kid) => store.createSigningKey(signingKey(kid, 2))));
        const winners = outcomes.filter((outcome) => outcome !== undefined);
        assert.equal(winners.length, 1);
        assert.deepEqual((await store.listSigningKeys()).map((key) => key.kid), ['k-1', winners[0]!.kid]);
      });

      it('announces no change, refuses a duplicate kid with STORE_CONSTRAINT and caller bugs with a TypeError', async () => {
        const heard: StoreChange[] = [];
        store.subscribe((change) => heard.push(change));
        await store.createSigningKey(signingKey('k-1', 1));
        await rejectsWithCode(store.createSigningKey(signingKey('k-1', 2)), 'STORE_CONSTRAINT');
        await assert.rejects(store.createSigningKey(signingKey('k-3', 0)), TypeError);
        await assert.rejects(store.createSigningKey(signingKey('k-4', 4, { privateJwk: 'not json' })), TypeError);
        await rejectsWithCode(store.createSigningKey(signingKey('', 5)), 'BAD_REQUEST');
        await store.deleteSigningKey('k-1');
        assert.deepEqual(heard, []);
        assert.deepEqual(await store.listSigningKeys(), []);
      });
    });

    describe('agent secrets', () => {
      const registration = (name: string, extra: Partial<NewAgentSecret> = {}): NewAgentSecret => ({
        name,
        kind: 'registration',
        clusterId: 'edge',
        secretHash: TOKEN_HASH,
        ...extra,
      });
      const credential = (name: string, extra: Partial<NewAgentSecret> = {}): NewAgentSecret => ({ ...registration(name), kind: 'agent', ...extra });

      beforeEach(async () => {
        await store.createCluster({ id: 'edge', server: '', mode: 'agent' });
        await store.createCluster(newCluster('prod'));
      });

      it('creates agent secrets with defaults, reads them by name and lists them by cluster and kind', async () => {
        const created = await store.createAgentSecret(registration('r-1'));
        assert.deepEqual(
          { ...created, createdAt: undefined },
          { name: 'r-1', kind: 'registration', clusterId: 'edge', secretHash: TOKEN_HASH, description: '', createdAt: undefined, expiresAt: null, lastUsedAt: null },
        );
        assert.ok(created.createdAt instanceof Date);
        assert.deepEqual(await store.getAgentSecret('r-1'), created);
        assert.equal(await store.getAgentSecret('r-missing'), undefined);
        const expiresAt = new Date(Date.now() + 3_600_000);
        await store.createAgentSecret(credential('a-1', { description: 'edge agent', expiresAt }));
        await store.createAgentSecret(credential('a-2', { clusterId: 'prod' }));
        const names = async (filter: Parameters<Store['listAgentSecrets']>[0]): Promise<string[]> =>
          (await store.listAgentSecrets(filter)).map((secret) => secret.name).sort();
        assert.deepEqual(await names({}), ['a-1', 'a-2', 'r-1']);
        assert.deepEqual(await names({ clusterId: 'edge' }), ['a-1', 'r-1']);
        assert.deepEqual(await names({ kind: 'agent' }), ['a-1', 'a-2']);
        assert.deepEqual(await names({ clusterId: 'edge', kind: 'registration' }), ['r-1']);
        assert.deepEqual((await store.getAgentSecret('a-1'))?.expiresAt, expiresAt);
        assert.equal((await store.getAgentSecret('a-1'))?.description, 'edge agent');
      });

      it('refuses a duplicate name or an unknown cluster with STORE_CONSTRAINT, bad content with BAD_REQUEST and caller bugs with a TypeError', async () => {
        await store.createAgentSecret(registration('r-1'));
        await rejectsWithCode(store.createAgentSecret(credential('r-1')), 'STORE_CONSTRAINT');
        await rejectsWithCode(store.createAgentSecret(registration('r-2', { clusterId: 'nowhere' })), 'STORE_CONSTRAINT');
        await rejectsWithCode(store.createAgentSecret(registration('r-\u0000')), 'BAD_REQUEST');
        await rejectsWithCode(store.createAgentSecret(registration('')), 'BAD_REQUEST');
        await assert.rejects(store.createAgentSecret(registration('r-3', { kind: 'password' as 'agent' })), TypeError);
        await assert.rejects(store.listAgentSecrets({ kind: 'password' as 'agent' }), TypeError);
        assert.deepEqual((await store.listAgentSecrets({})).map((secret) => secret.name), ['r-1']);
        assert.equal((await store.getAgentSecret('r-1'))?.kind, 'registration');
      });

      it('deletes an agent secret and reports whether it existed', async () => {
        await store.createAgentSecret(credential('a-1'));
        assert.equal(await store.deleteAgentSecret('a-1'), true);
        assert.equal(await store.deleteAgentSecret('a-1'), false);
        assert.equal(await store.getAgentSecret('a-1'), undefined);
      });

      it('exchanges a registration secret for an agent credential exactly once, even when several exchanges race, because a leaked manifest must not enrol two agents', async () => {
        await store.createAgentSecret(registration('r-1', { expiresAt: new Date(Date.now() + 60_000) }));
        const outcomes = await Promise.all(['a-1', 'a-2', 'a-3', 'a-4'].map((name) => store.exchangeRegistration('r-1', credential(name))));
        const winners = outcomes.filter((outcome) => outcome !== undefined);
        assert.equal(winners.length, 1);
        assert.equal(winners[0]!.kind, 'agent');
        assert.equal(winners[0]!.clusterId, 'edge');
        assert.equal(await store.getAgentSecret('r-1'), undefined);
        assert.deepEqual(await store.listAgentSecrets({ clusterId: 'edge' }), winners);
        assert.equal(await store.exchangeRegistration('r-1', credential('a-5')), undefined);
        assert.equal(await store.getAgentSecret('a-5'), undefined);
      });

      it('does not exchange an expired registration secret, an agent credential or a secret of another cluster, and leaves them in place', async () => {
        await store.createAgentSecret(registration('r-old', { expiresAt: new Date(Date.now() - 1000) }));
        await store.createAgentSecret(credential('a-1'));
        await store.createAgentSecret(registration('r-1'));
        assert.equal(await store.exchangeRegistration('r-old', credential('a-2')), undefined);
        assert.equal(await store.exchangeRegistration('a-1', credential('a-3')), undefined);
        await assert.rejects(store.exchangeRegistration('r-1', credential('a-4', { clusterId: 'prod' })), TypeError);
        await assert.rejects(store.exchangeRegistration('r-1', registration('r-2')), TypeError);
        assert.deepEqual((await store.listAgentSecrets({})).map((secret) => secret.name).sort(), ['a-1', 'r-1', 'r-old']);
      });

      it('records agent secret use without moving lastUsedAt backwards and without announcing it', async () => {
        await store.createAgentSecret(credential('a-1'));
        const heard: StoreChange[] = [];
        store.subscribe((change) => heard.push(change));
        const later = new Date('2030-01-01T00:00:10.000Z');
        await store.touchAgentSecret('a-1', later);
        await store.touchAgentSecret('a-1', new Date('2030-01-01T00:00:05.000Z'));
        await store.touchAgentSecret('a-missing', later);
        assert.deepEqual((await store.getAgentSecret('a-1'))?.lastUsedAt, later);
        assert.deepEqual(heard, []);
      });
    });

    describe('tunnels', () => {
      const tunnel = (agentId: string, extra: Partial<TunnelRecord> = {}): TunnelRecord => ({
        clusterId: 'edge',
        agentId,
        replicaId: 'replica-a',
        peerUrl: 'https://10.1.0.1:8443',
        agentVersion: '0.1.0',
        kubernetesVersion: 'v1.30.2',
        connectedAt: new Date('2030-01-01T00:00:00.000Z'),
        heartbeatAt: new Date('2030-01-01T00:00:00.000Z'),
        ...extra,
      });

      beforeEach(async () => {
        await store.createCluster({ id: 'edge', server: '', mode: 'agent' });
        await store.createCluster({ id: 'edge-2', server: '', mode: 'agent' });
      });

      it('creates, replaces, lists and deletes tunnels by (cluster, agent, replica)', async () => {
        const first = await store.putTunnel(tunnel('agent-0'));
        assert.deepEqual(first, tunnel('agent-0'));
        await store.putTunnel(tunnel('agent-0', { replicaId: 'replica-b', peerUrl: 'https://10.1.0.2:8443' }));
        await store.putTunnel(tunnel('agent-1', { clusterId: 'edge-2' }));
        const moved = await store.putTunnel(tunnel('agent-0', { agentVersion: '0.2.0', heartbeatAt: new Date('2030-01-01T00:01:00.000Z') }));
        assert.equal(moved.agentVersion, '0.2.0');
        const keys = async (filter?: Parameters<Store['listTunnels']>[0]): Promise<string[]> =>
          (await store.listTunnels(filter)).map((t) => `${t.clusterId}/${t.agentId}/${t.replicaId}`);
        assert.deepEqual(await keys(), ['edge/agent-0/replica-a', 'edge/agent-0/replica-b', 'edge-2/agent-1/replica-a']);
        assert.deepEqual(await keys({ clusterId: 'edge' }), ['edge/agent-0/replica-a', 'edge/agent-0/replica-b']);
        assert.deepEqual(await keys({ replicaId: 'replica-a' }), ['edge/agent-0/replica-a', 'edge-2/agent-1/replica-a']);
        assert.deepEqual(await keys({ clusterId: 'edge', replicaId: 'replica-b' }), ['edge/agent-0/replica-b']);
        assert.deepEqual((await store.listTunnels({ clusterId: 'edge', replicaId: 'replica-a' }))[0], moved);
        assert.equal(await store.deleteTunnel('edge', 'agent-0', 'replica-b'), true);
        assert.equal(await store.deleteTunnel('edge', 'agent-0', 'replica-b'), false);
        assert.deepEqual(await keys({ clusterId: 'edge' }), ['edge/agent-0/replica-a']);
      });

      it('deletes the tunnels whose heartbeat is older than a time and returns them, because a replica that died leaves its tunnels behind', async () => {
        const minute = (n: number): Date => new Date(Date.UTC(2030, 0, 1, 0, n));
        await store.putTunnel(tunnel('agent-0', { heartbeatAt: minute(1) }));
        await store.putTunnel(tunnel('agent-1', { heartbeatAt: minute(5) }));
        await store.putTunnel(tunnel('agent-2', { clusterId: 'edge-2', heartbeatAt: minute(2) }));
        const stale = await store.deleteStaleTunnels(minute(5));
        assert.deepEqual(
          stale.map((t) => `${t.clusterId}/${t.agentId}`),
          ['edge/agent-0', 'edge-2/agent-2'],
        );
        assert.deepEqual(stale[0], tunnel('agent-0', { heartbeatAt: minute(1) }));
        assert.deepEqual((await store.listTunnels()).map((t) => t.agentId), ['agent-1']);
        assert.deepEqual(await store.deleteStaleTunnels(minute(5)), []);
      });

      it('refuses a tunnel of an unknown cluster with STORE_CONSTRAINT and bad input with BAD_REQUEST or a TypeError', async () => {
        await rejectsWithCode(store.putTunnel(tunnel('agent-0', { clusterId: 'nowhere' })), 'STORE_CONSTRAINT');
        await rejectsWithCode(store.putTunnel(tunnel('')), 'BAD_REQUEST');
        await rejectsWithCode(store.putTunnel(tunnel('agent-0', { peerUrl: '' })), 'BAD_REQUEST');
        await assert.rejects(store.putTunnel(tunnel('agent-0', { heartbeatAt: 'now' as unknown as Date })), TypeError);
        await assert.rejects(store.deleteStaleTunnels(new Date(Number.NaN)), TypeError);
        assert.deepEqual(await store.listTunnels(), []);
      });

      it('announces a new or changed tunnel but not a heartbeat, because heartbeats every few seconds must not flood replicas', async () => {
        const heard: StoreChange[] = [];
        store.subscribe((change) => heard.push(change));
        const expect = async (write: () => Promise<unknown>, expected: string[]): Promise<void> => {
          heard.length = 0;
          await write();
          assert.deepEqual(sortedChanges(heard), expected);
        };
        await expect(() => store.putTunnel(tunnel('agent-0')), ['tunnel:edge']);
        await expect(() => store.putTunnel(tunnel('agent-0', { heartbeatAt: new Date('2030-01-01T00:00:05.000Z') })), []);
        await expect(() => store.putTunnel(tunnel('agent-0', { heartbeatAt: new Date('2030-01-01T00:00:10.000Z') })), []);
        await expect(() => store.putTunnel(tunnel('agent-0', { kubernetesVersion: 'v1.31.0' })), ['tunnel:edge']);
        await expect(() => store.putTunnel(tunnel('agent-0', { kubernetesVersion: 'v1.31.0', peerUrl: 'https://10.1.0.9:8443' })), ['tunnel:edge']);
        await expect(() => store.putTunnel(tunnel('agent-0', { kubernetesVersion: 'v1.31.0', peerUrl: 'https://10.1.0.9:8443', connectedAt: new Date() })), ['tunnel:edge']);
        await expect(() => store.deleteTunnel('edge', 'agent-0', 'replica-a'), ['tunnel:edge']);
        await expect(() => store.deleteTunnel('edge', 'agent-0', 'replica-a'), []);
        await store.putTunnel(tunnel('agent-1', { heartbeatAt: new Date(0) }));
        await store.putTunnel(tunnel('agent-2', { clusterId: 'edge-2', heartbeatAt: new Date(0) }));
        await expect(() => store.deleteStaleTunnels(new Date(1)), ['tunnel:edge', 'tunnel:edge-2']);
        await expect(() => store.deleteStaleTunnels(new Date(1)), []);
      });

      it('deleting a cluster removes its agent secrets and tunnels and announces them, and nothing of other clusters', async () => {
        await store.createAgentSecret({ name: 'r-1', kind: 'registration', clusterId: 'edge', secretHash: TOKEN_HASH });
        await store.createAgentSecret({ name: 'a-1', kind: 'agent', clusterId: 'edge', secretHash: TOKEN_HASH });
        await store.createAgentSecret({ name: 'a-2', kind: 'agent', clusterId: 'edge-2', secretHash: TOKEN_HASH });
        await store.putTunnel(tunnel('agent-0'));
        await store.putTunnel(tunnel('agent-1', { replicaId: 'replica-b' }));
        await store.putTunnel(tunnel('agent-2', { clusterId: 'edge-2' }));
        const heard: StoreChange[] = [];
        store.subscribe((change) => heard.push(change));
        assert.equal(await store.deleteCluster('edge'), true);
        assert.deepEqual(sortedChanges(heard), ['agent:a-1', 'agent:r-1', 'cluster:edge', 'tunnel:edge']);
        assert.deepEqual((await store.listAgentSecrets({})).map((secret) => secret.name), ['a-2']);
        assert.deepEqual((await store.listTunnels()).map((t) => t.agentId), ['agent-2']);
      });
    });

    describe('sealed secrets', () => {
      it('tells whether anything sealed is stored, because a lost key file may only be replaced when nothing would be lost', async () => {
        assert.equal(await store.hasSealedSecrets(), false);
        await store.createUser(newUser('alice'));
        await store.createCluster({ id: 'edge', server: '', mode: 'agent' });
        assert.equal(await store.hasSealedSecrets(), false);
        await store.createCluster(newCluster('prod'));
        assert.equal(await store.hasSealedSecrets(), true);
        await store.deleteCluster('prod');
        assert.equal(await store.hasSealedSecrets(), false);
        await store.putProviderConfig({ name: 'corp', type: 'ldap', enabled: true, settings: {} });
        assert.equal(await store.hasSealedSecrets(), true);
      });
    });

    describe('hostile strings', () => {
      it('round-trips quotes, SQL, unicode and very long values exactly, because all of them are parameters, never SQL', async () => {
        const nasty = `'; DROP TABLE users; -- "quoted" \\ back\\slash %_ wildcards \u202Eright-to-left\u202C 😀 𝔘𝔫𝔦 日本語 \n\t\r`;
        const long = 'ü😀x'.repeat(40_000);
        const id = `u-'"\\😀`;
        const user = await store.createUser({ id, username: nasty, displayName: long, passwordHash: nasty });
        assert.deepEqual(await store.getUser(id), user);
        assert.equal(user.username, nasty);
        assert.equal(user.displayName, long);
        assert.deepEqual(await store.getUserByUsername(nasty), user);
        assert.equal(await store.getUserByUsername(`${nasty.slice(0, 10)}%`), undefined);

        const identity = await store.linkIdentity({ provider: 'corp-ldap', providerUserId: `cn=${nasty},dc=example`, userId: id, loginName: long });
        assert.deepEqual(await store.findIdentity('corp-ldap', `cn=${nasty},dc=example`), identity);

        const cluster = await store.createCluster({
          id: `c-${nasty.slice(0, 40)}`,
          displayName: nasty,
          server: `https://example.org/${nasty}`,
          credentials: { kind: 'token', token: long },
          ace: { enabled: true, fqdn: nasty, caPem: long, nodes: [{ name: nasty, address: nasty }] },
        });
        assert.deepEqual(await store.getCluster(cluster.id), cluster);

        const token = await store.createToken(newToken(`t-${nasty.slice(0, 30)}`, id, { description: long, clusterId: cluster.id, provider: 'corp-ldap' }));
        assert.deepEqual(await store.getToken(token.name), token);
        assert.deepEqual(await store.listTokens({ userId: id, clusterId: cluster.id, provider: 'corp-ldap' }), [token]);

        const membership = await store.putMembership({ clusterId: cluster.id, subjectKind: 'Group', subjectName: `ldap:${nasty}`, role: 'viewer' });
        assert.deepEqual(await store.listMembershipsOf({ users: [id], groups: [`ldap:${nasty}`, nasty] }), [membership]);

        const config = await store.putProviderConfig({ name: `p-${nasty.slice(0, 20)}`, type: nasty, enabled: true, settings: { [nasty]: long, nested: [nasty] } });
        assert.deepEqual(await store.getProviderConfig(config.name), config);

        const refreshedAt = new Date();
        await store.putUserGroups({ userId: id, provider: 'corp-ldap', groups: [nasty, long, ''], refreshedAt });
        assert.deepEqual((await store.getUserGroups(id, 'corp-ldap'))?.groups, [nasty, long, '']);

        assert.equal(await store.deleteUser(id), true);
        assert.equal(await store.countUsers(), 0);
      });

      it('refuses NUL characters, lone surrogates, and empty or over-long keys with BAD_REQUEST and writes nothing, because the databases cannot hold them alike', async () => {
        await rejectsWithCode(store.createUser(newUser('nul\u0000name')), 'BAD_REQUEST');
        await rejectsWithCode(store.createUser({ id: 'u-long', username: 'x'.repeat(3000) }), 'BAD_REQUEST');
        await rejectsWithCode(store.createUser({ id: `u-${'x'.repeat(300)}`, username: 'long-id' }), 'BAD_REQUEST');
        await rejectsWithCode(store.createUser({ id: 'u-empty', username: '' }), 'BAD_REQUEST');
        await rejectsWithCode(store.createCluster(newCluster('prod', { displayName: 'a\u0000b' })), 'BAD_REQUEST');
        await rejectsWithCode(store.createUser(newUser('lone-\uD800-surrogate')), 'BAD_REQUEST');
        await rejectsWithCode(store.createUser(newUser('bob', { displayName: 'x\uDC00' })), 'BAD_REQUEST');
        assert.equal(await store.countUsers(), 0);
        assert.deepEqual(await store.listClusters(), []);
      });

      it('finds nothing, rather than failing, when looking up strings no stored value can equal, because lookups take untrusted input', async () => {
        await store.createUser(newUser('alice'));
        await store.createCluster(newCluster('prod'));
        await store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'ldap:ops', role: 'owner' });
        assert.equal(await store.getUserByUsername('alice\u0000'), undefined);
        assert.equal(await store.getUser('u-alice\u0000'), undefined);
        assert.equal(await store.getToken('t-\u0000'), undefined);
        assert.equal(await store.findIdentity('github', '\u0000'), undefined);
        assert.deepEqual(await store.listTokens({ userId: 'u-alice\u0000' }), []);
        assert.equal(await store.deleteUser('u-alice\u0000'), false);
        assert.deepEqual(
          (await store.listMembershipsOf({ users: ['\u0000'], groups: ['ldap:ops', 'ldap:ops\u0000'] })).map((m) => m.subjectName),
          ['ldap:ops'],
        );
        assert.equal(await store.getUserByUsername('x'.repeat(5000)), undefined);
        assert.equal(await store.countUsers(), 1);
      });
    });
  });
}

// --- SQLite ------------------------------------------------------------------------------------

describeStoreContract('sqlite', sqliteHarness);

describe('sqlite store specifics', () => {
  it('creates the database file private to its owner, because it holds token hashes and sealed secrets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubegate-sqlite-'));
    try {
      const path = join(dir, 'nested', 'store.db');
      const store = await openStore({ type: 'sqlite', path }, createSecretBox(randomBytes(32)));
      await store.createUser(newUser('alice'));
      await store.close();
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'nested')).mode & 0o077, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers STORE_UNAVAILABLE when the database file cannot be opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubegate-sqlite-'));
    try {
      // A directory where the file should be.
      await rejectsWithCode(openSqliteStore({ path: dir, secretBox: createSecretBox(randomBytes(32)) }), 'STORE_UNAVAILABLE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- PostgreSQL ----------------------------------------------------------------------------

let server: TestPostgres | undefined;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
});

describeStoreContract('postgres', () => postgresHarness(() => server!));

describe('postgres store across replicas', () => {
  const stores: Store[] = [];
  const openReplica = async (
    url: string,
    key: Buffer,
    onError?: (error: unknown) => void,
    extra: Partial<Parameters<typeof openPostgresStore>[0]> = {},
  ): Promise<Store> => {
    const store = await openPostgresStore({ connectionString: url, secretBox: createSecretBox(key), ...(onError === undefined ? {} : { onError }), ...extra });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  it('lets replica B hear replica A revoke a token, and A hear it exactly once, because every replica caches tokens', async () => {
    const url = await server!.createDatabase();
    const key = randomBytes(32);
    const a = await openReplica(url, key);
    const b = await openReplica(url, key);
    const heardByA: StoreChange[] = [];
    const heardByB: StoreChange[] = [];
    a.subscribe((change) => heardByA.push(change));
    b.subscribe((change) => heardByB.push(change));
    await a.createUser(newUser('alice'));
    await a.createToken(newToken('t-1', 'u-alice'));
    await eventually(() => heardByB.length === 2, 5000, 'replica B to hear the setup');
    heardByA.length = 0;
    heardByB.length = 0;

    await a.deleteToken('t-1');
    assert.deepEqual(sortedChanges(heardByA), ['token:t-1']);
    await eventually(() => heardByB.length > 0, 5000, 'replica B to hear the revocation');
    assert.deepEqual(sortedChanges(heardByB), ['token:t-1']);

    // A hears B's change through the same connection that would carry the echo of its own,
    // after it: once A has heard B, any echo of A's revocation would have arrived already.
    await b.updateUser('u-alice', { enabled: false });
    await eventually(() => heardByA.length > 1, 5000, 'replica A to hear B');
    assert.deepEqual(sortedChanges(heardByA), ['token:t-1', 'user:u-alice']);
    assert.deepEqual(sortedChanges(heardByB), ['token:t-1', 'user:u-alice']);
  });

  it('lets replica B hear agent secret and tunnel changes of replica A, because routing and agent logins are cached per replica', async () => {
    const url = await server!.createDatabase();
    const key = randomBytes(32);
    const a = await openReplica(url, key);
    const b = await openReplica(url, key);
    const heardByB: StoreChange[] = [];
    b.subscribe((change) => heardByB.push(change));
    await a.createCluster({ id: 'edge', server: '', mode: 'agent' });
    await eventually(() => heardByB.length === 1, 5000, 'replica B to hear the setup');
    heardByB.length = 0;
    await a.createAgentSecret({ name: 'r-1', kind: 'registration', clusterId: 'edge', secretHash: TOKEN_HASH });
    const at = new Date();
    await a.putTunnel({ clusterId: 'edge', agentId: 'agent-0', replicaId: 'a', peerUrl: 'https://a', agentVersion: '1', kubernetesVersion: 'v1.30.0', connectedAt: at, heartbeatAt: at });
    await eventually(() => heardByB.length === 2, 5000, 'replica B to hear both changes');
    assert.deepEqual(sortedChanges(heardByB), ['agent:r-1', 'tunnel:edge']);
  });

  it('does not let replicas hear a change that was rolled back', async () => {
    const url = await server!.createDatabase();
    const key = randomBytes(32);
    const a = await openReplica(url, key);
    const b = await openReplica(url, key);
    const heardByB: StoreChange[] = [];
    b.subscribe((change) => heardByB.push(change));
    await a.createUser(newUser('alice'));
    await eventually(() => heardByB.length === 1, 5000, 'replica B to hear the setup');
    heardByB.length = 0;
    await rawPostgresQuery(
      url,
      `CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
       CREATE TRIGGER refuse_user_delete BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION refuse_delete();`,
    );
    await assert.rejects(a.deleteUser('u-alice'));
    await a.createUser(newUser('bob'));
    await eventually(() => heardByB.length > 0, 5000, 'replica B to hear the next change');
    assert.deepEqual(sortedChanges(heardByB), ['user:u-bob']);
  });

  /** Backend PIDs of the notification connections on the database at `url` that have run LISTEN (health checks run only after it). */
  const listenerPids = async (url: string): Promise<number[]> =>
    (
      await rawPostgresQuery(
        url,
        `SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = '${CHANGE_LISTENER_APPLICATION_NAME}'
           AND state = 'idle' AND (query LIKE 'LISTEN%' OR query = 'SELECT 1')`,
      )
    ).map((row) => Number(row.pid));

  it('re-establishes a lost notification connection and reports the loss, because a replica that stops hearing would serve revoked tokens', async () => {
    const url = await server!.createDatabase();
    const key = randomBytes(32);
    const errorsOfB: unknown[] = [];
    const a = await openReplica(url, key);
    const b = await openReplica(url, key, (error) => errorsOfB.push(error));
    await a.createUser(newUser('alice'));
    const listeners = (): Promise<number[]> => listenerPids(url);
    const before = await listeners();
    assert.equal(before.length, 2);
    const heardAroundOutage: StoreChange[] = [];
    const stopHearing = b.subscribe((change) => heardAroundOutage.push(change));
    await rawPostgresQuery(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (${before.join(', ')})`);
    await eventually(async () => (await listeners()).filter((pid) => !before.includes(pid)).length === 2, 5000, 'both listeners to reconnect');
    assert.ok(errorsOfB.some((error) => isKubegateError(error, 'STORE_UNAVAILABLE')));
    // Changes committed during the outage were never heard: B must tell its caches to resync.
    await eventually(() => heardAroundOutage.some((change) => change.kind === 'resync'), 5000, 'replica B to announce a resync');
    stopHearing();

    const heardByB: StoreChange[] = [];
    b.subscribe((change) => heardByB.push(change));
    await a.updateUser('u-alice', { displayName: 'Alice' });
    await eventually(() => heardByB.length > 0, 5000, 'replica B to hear A after reconnecting');
    assert.deepEqual(sortedChanges(heardByB), ['user:u-alice']);
  });

  it('replaces a notification connection that silently stops answering, because a network partition sends no reset', async () => {
    const url = await server!.createDatabase();
    const key = randomBytes(32);
    const errorsOfB: unknown[] = [];
    const b = await openReplica(url, key, (error) => errorsOfB.push(error), { notificationCheckIntervalMs: 100, connectTimeoutMs: 1500 });
    const [frozen] = await listenerPids(url);
    assert.ok(frozen !== undefined);
    const a = await openReplica(url, key);
    process.kill(frozen, 'SIGSTOP');
    try {
      await eventually(async () => (await listenerPids(url)).filter((pid) => pid !== frozen).length === 2, 15_000, 'replica B to open a new notification connection');
      assert.ok(errorsOfB.some((error) => isKubegateError(error, 'STORE_UNAVAILABLE')));
      const heardByB: StoreChange[] = [];
      b.subscribe((change) => heardByB.push(change));
      await a.createUser(newUser('alice'));
      await eventually(() => heardByB.length > 0, 5000, 'replica B to hear A on its new connection');
      assert.deepEqual(sortedChanges(heardByB), ['user:u-alice']);
    } finally {
      process.kill(frozen, 'SIGCONT');
    }
  });

  it('migrates once when several replicas open a new database at the same moment', async () => {
    const url = await server!.createDatabase();
    const key = randomBytes(32);
    const replicas = await Promise.all([openReplica(url, key), openReplica(url, key), openReplica(url, key)]);
    await replicas[0]!.createUser(newUser('alice'));
    assert.equal(await replicas[2]!.countUsers(), 1);
    const versions = (await rawPostgresQuery(url, 'SELECT version FROM schema_migrations ORDER BY version')).map((row) => Number(row.version));
    assert.deepEqual(versions, postgresMigrations.map((migration) => migration.version));
  });

  it('answers STORE_UNAVAILABLE from ping and queries once the server is gone, and opening fails the same way', async () => {
    const doomed = await startPostgres();
    try {
      const store = await openReplica(doomed.url, randomBytes(32), () => {});
      await store.ping();
      await doomed.stop();
      await rejectsWithCode(store.ping(), 'STORE_UNAVAILABLE');
      await rejectsWithCode(store.getUser('u-alice'), 'STORE_UNAVAILABLE');
      await rejectsWithCode(store.createUser(newUser('alice')), 'STORE_UNAVAILABLE');
      await rejectsWithCode(
        openStore({ type: 'postgres', url: doomed.url }, createSecretBox(randomBytes(32)), { onError: () => {} }),
        'STORE_UNAVAILABLE',
      );
    } finally {
      await doomed.stop();
    }
  });
});

// --- upgrading a database made by schema version 1 -------------------------------------------

describe('upgrading a version 1 database', () => {
  const key = randomBytes(32);
  /** Rows of schema version 1: a cluster with a token, a membership and sealed credentials. */
  const v1Rows = (now: number | string): string => {
    const sealed = createSecretBox(key).seal(JSON.stringify({ kind: 'token', token: CLUSTER_TOKEN }));
    const sqlite = typeof now === 'number';
    const at = sqlite ? String(now) : `'${now}'`;
    const flag = (value: boolean): string => (sqlite ? String(Number(value)) : String(value));
    return `
      INSERT INTO users (id, username, display_name, global_role, enabled, password_hash, created_at, updated_at)
        VALUES ('u-alice', 'alice', 'alice', 'user', ${flag(true)}, NULL, ${at}, ${at});
      INSERT INTO clusters (id, display_name, server, ca_pem, credentials_sealed, insecure_skip_tls_verify, ace, created_at, updated_at)
        VALUES ('prod', 'prod', 'https://prod.example.org', NULL, '${sealed}', ${flag(false)}, '{"enabled":false,"fqdn":null,"caPem":null,"nodes":[]}', ${at}, ${at});
      INSERT INTO tokens (name, token_hash, user_id, kind, provider, cluster_id, description, expires_at, last_used_at, created_at)
        VALUES ('t-1', '${TOKEN_HASH}', 'u-alice', 'kubeconfig', 'local', 'prod', '', NULL, NULL, ${at});
      INSERT INTO memberships (cluster_id, subject_kind, subject_name, role, created_at) VALUES ('prod', 'User', 'u-alice', 'owner', ${at});`;
  };

  const expectUpgraded = async (store: Store): Promise<void> => {
    const cluster = await store.getCluster('prod');
    assert.equal(cluster?.mode, 'direct');
    // Users made before e-mail addresses (version 6) have none.
    assert.equal((await store.getUser('u-alice'))?.email, null);
    assert.deepEqual(cluster?.credentials, { kind: 'token', token: CLUSTER_TOKEN });
    assert.deepEqual((await store.listTokens({ clusterId: 'prod' })).map((token) => token.name), ['t-1']);
    assert.equal((await store.listMemberships('prod')).length, 1);
    // The rebuilt table is still the parent of its dependents: deleting the cluster cascades.
    await store.createAgentSecret({ name: 'a-1', kind: 'agent', clusterId: 'prod', secretHash: TOKEN_HASH });
    assert.equal(await store.deleteCluster('prod'), true);
    assert.deepEqual(await store.listTokens(), []);
    assert.deepEqual(await store.listAgentSecrets({}), []);
    await rejectsWithCode(store.createToken(newToken('t-2', 'u-alice', { clusterId: 'prod' })), 'STORE_CONSTRAINT');
  };

  it('sqlite: keeps clusters and everything that refers to them, and keeps foreign keys working', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubegate-upgrade-'));
    try {
      const path = join(dir, 'kubegate.db');
      const raw = new Database(path);
      raw.exec(`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`);
      raw.exec(sqliteMigrations[0]!.sql);
      raw.exec(`INSERT INTO schema_migrations VALUES (1, 'initial schema', 0)`);
      raw.exec(v1Rows(Date.now()));
      raw.close();
      const store = await openSqliteStore({ path, secretBox: createSecretBox(key) });
      try {
        await expectUpgraded(store);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('postgres: keeps clusters and everything that refers to them', async () => {
    const url = await server!.createDatabase();
    await rawPostgresQuery(
      url,
      `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL);
       ${postgresMigrations[0]!.sql}
       INSERT INTO schema_migrations VALUES (1, 'initial schema', now());
       ${v1Rows(new Date().toISOString())}`,
    );
    const store = await openPostgresStore({ connectionString: url, secretBox: createSecretBox(key) });
    try {
      await expectUpgraded(store);
    } finally {
      await store.close();
    }
  });
});
