/**
 * The background job lease and the job reports (migration 7), against both real databases:
 * SQLite in a temporary file and a throwaway PostgreSQL server. First the store's SQL
 * (takeLease, releaseLease, putJobReport…), then the two pieces built on it: holdLease (who
 * runs the jobs, with real stores and real timers) and loadJobReports (every process's copy
 * of what the jobs found).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createLogger } from '../../src/log.js';
import { loadJobReports } from '../../src/store/job-reports.js';
import { holdLease, type HeldLease } from '../../src/store/lease.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { createSecretBox } from '../../src/store/secret-box.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store, StoreChange } from '../../src/store/store.js';
import { eventually } from '../support/eventually.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

interface LeaseDatabase {
  /** Opens one more store on the database (another process, as far as the lease goes). */
  open(): Promise<Store>;
  /** The lease's lapse time in epoch milliseconds, read with the raw driver. */
  expiresAt(name: string): Promise<number>;
  /**
   * Gives the lease to `holder` for a minute in one raw statement, as another process's
   * takeover after a lapse looks to the holder: no moment in which the holder's renewal
   * could find the lease free and take it back.
   */
  takeOver(name: string, holder: string): Promise<void>;
}

let server: TestPostgres;
const dir = mkdtempSync(join(tmpdir(), 'kubegate-lease-'));
const opened: Store[] = [];
let databases = 0;

before(async () => {
  server = await startPostgres();
});
after(async () => {
  for (const store of opened.splice(0)) await store.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});

async function sqliteDatabase(): Promise<LeaseDatabase> {
  const path = join(dir, `store-${(databases += 1)}.db`);
  const key = randomBytes(32);
  return {
    async open() {
      const store = await openSqliteStore({ path, secretBox: createSecretBox(key) });
      opened.push(store);
      return store;
    },
    async expiresAt(name) {
      const db = new Database(path, { readonly: true });
      try {
        return (db.prepare('SELECT expires_at FROM leases WHERE name = ?').get(name) as { expires_at: number }).expires_at;
      } finally {
        db.close();
      }
    },
    async takeOver(name, holder) {
      const db = new Database(path);
      try {
        db.prepare('UPDATE leases SET holder = ?, expires_at = ? WHERE name = ?').run(holder, Date.now() + 60_000, name);
      } finally {
        db.close();
      }
    },
  };
}

async function postgresDatabase(): Promise<LeaseDatabase> {
  const url = await server.createDatabase();
  const key = randomBytes(32);
  return {
    async open() {
      const store = await openPostgresStore({ connectionString: url, secretBox: createSecretBox(key) });
      opened.push(store);
      return store;
    },
    async expiresAt(name) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return ((await client.query('SELECT expires_at FROM leases WHERE name = $1', [name])).rows[0] as { expires_at: Date }).expires_at.getTime();
      } finally {
        await client.end();
      }
    },
    async takeOver(name, holder) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query("UPDATE leases SET holder = $1, expires_at = now() + interval '1 minute' WHERE name = $2", [holder, name]);
      } finally {
        await client.end();
      }
    },
  };
}

const silent = createLogger({ level: 'silent', name: 'proxy' });

for (const [dialect, createDatabase] of [
  ['sqlite', sqliteDatabase],
  ['postgres', postgresDatabase],
] as const) {
  describe(`${dialect}: the lease's SQL`, () => {
    it('gives a free lease to the first holder and leaves it with them while it runs, because two processes must never both run the jobs', async () => {
      const db = await createDatabase();
      const [a, b] = [await db.open(), await db.open()];
      assert.equal(await a.takeLease('jobs', 'holder-a', 60_000), 'holder-a');
      assert.equal(await b.takeLease('jobs', 'holder-b', 60_000), 'holder-a', 'no steal before the lease lapses');
      assert.equal(await a.takeLease('jobs', 'holder-a', 60_000), 'holder-a');
      // Leases are independent by name.
      assert.equal(await b.takeLease('other', 'holder-b', 60_000), 'holder-b');
    });

    it('lets the holder renew, moving the lapse time forward by the database clock, because a live holder keeps its lease', async () => {
      const db = await createDatabase();
      const a = await db.open();
      await a.takeLease('jobs', 'holder-a', 1_000);
      const first = await db.expiresAt('jobs');
      assert.equal(await a.takeLease('jobs', 'holder-a', 3_600_000), 'holder-a');
      const renewed = await db.expiresAt('jobs');
      assert.ok(renewed - first > 3_000_000, `the renewal moved the lapse from ${first} to ${renewed}`);
      assert.ok(Math.abs(renewed - 3_600_000 - Date.now()) < 60_000, 'the lapse is an hour from now');
    });

    it('lets another holder take a lapsed lease, because a holder that died must be replaced', async () => {
      const db = await createDatabase();
      const [a, b] = [await db.open(), await db.open()];
      assert.equal(await a.takeLease('jobs', 'holder-a', 20), 'holder-a');
      await eventually(async () => (await b.takeLease('jobs', 'holder-b', 60_000)) === 'holder-b', 5000, 'b takes the lapsed lease');
      assert.equal(await a.takeLease('jobs', 'holder-a', 60_000), 'holder-b', 'the old holder cannot renew what it lost');
    });

    it('releases only for its holder, and a released lease is free at once, because a graceful stop hands over without waiting', async () => {
      const db = await createDatabase();
      const [a, b] = [await db.open(), await db.open()];
      await a.takeLease('jobs', 'holder-a', 60_000);
      assert.equal(await b.releaseLease('jobs', 'holder-b'), false);
      assert.equal(await b.takeLease('jobs', 'holder-b', 60_000), 'holder-a');
      assert.equal(await a.releaseLease('jobs', 'holder-a'), true);
      assert.equal(await b.takeLease('jobs', 'holder-b', 60_000), 'holder-b');
      assert.equal(await a.releaseLease('jobs', 'holder-a'), false);
    });

    it('refuses a lease of no time, of more than a day, or without a holder, as a caller bug', async () => {
      const store = await (await createDatabase()).open();
      await assert.rejects(store.takeLease('jobs', 'holder-a', 0), TypeError);
      await assert.rejects(store.takeLease('jobs', 'holder-a', 1.5), TypeError);
      await assert.rejects(store.takeLease('jobs', 'holder-a', 86_400_001), TypeError);
      await assert.rejects(store.takeLease('jobs', '', 1000), /holder must not be empty/);
    });
  });

  describe(`${dialect}: job reports`, () => {
    it('stores one report per job and subject, replaces it, and announces each write, because every replica serves the last one', async () => {
      const store = await (await createDatabase()).open();
      await store.createCluster({ id: 'edge', server: 'https://edge.example.org:6443', credentials: { kind: 'token', token: 'cluster-token' } });
      const heard: StoreChange[] = [];
      store.subscribe((change) => heard.push(change));
      await store.putJobReport('cluster-probe', 'edge', { reachable: false, checkedAt: '2026-01-01T00:00:00.000Z' });
      await store.putJobReport('cluster-probe', 'edge', { reachable: true, version: 'v1.31.0' });
      await store.putJobReport('provider-health', 'corp-ldap', { state: 'healthy', nested: { list: [1, 2] } });
      assert.deepEqual(await store.getJobReport('cluster-probe', 'edge'), { job: 'cluster-probe', subject: 'edge', report: { reachable: true, version: 'v1.31.0' } });
      assert.deepEqual(
        (await store.listJobReports()).map((report) => `${report.job}/${report.subject}`),
        ['cluster-probe/edge', 'provider-health/corp-ldap'],
      );
      assert.deepEqual((await store.getJobReport('provider-health', 'corp-ldap'))?.report, { state: 'healthy', nested: { list: [1, 2] } });
      assert.equal(await store.getJobReport('cluster-sync', 'edge'), undefined);
      assert.deepEqual(heard.map((change) => `${change.kind}:${change.key}`), ['report:cluster-probe/edge', 'report:cluster-probe/edge', 'report:provider-health/corp-ldap']);
    });

    it('writes no report about a cluster the store does not have, because a probe may end after its cluster was deleted', async () => {
      const store = await (await createDatabase()).open();
      await store.putJobReport('cluster-sync', 'gone', { ok: true });
      assert.deepEqual(await store.listJobReports(), []);
    });

    it("deletes a cluster's reports with the cluster and announces it, but not a provider's of the same name", async () => {
      const store = await (await createDatabase()).open();
      await store.createCluster({ id: 'edge', server: 'https://edge.example.org:6443', credentials: { kind: 'token', token: 'cluster-token' } });
      await store.putJobReport('cluster-probe', 'edge', { reachable: true });
      await store.putJobReport('cluster-sync', 'edge', { ok: true });
      await store.putJobReport('provider-health', 'edge', { state: 'healthy' });
      const heard: StoreChange[] = [];
      store.subscribe((change) => heard.push(change));
      assert.equal(await store.deleteCluster('edge'), true);
      assert.deepEqual((await store.listJobReports()).map((report) => `${report.job}/${report.subject}`), ['provider-health/edge']);
      assert.ok(heard.some((change) => change.kind === 'report' && change.key === 'cluster-probe/edge'));
      assert.ok(heard.some((change) => change.kind === 'report' && change.key === 'cluster-sync/edge'));
    });

    it('refuses what is not a small JSON object, an unknown job or NUL characters, writing nothing', async () => {
      const store = await (await createDatabase()).open();
      await assert.rejects(store.putJobReport('cluster-probe', 'edge', [] as unknown as Record<string, unknown>), TypeError);
      await assert.rejects(store.putJobReport('cluster-probe', 'edge', { text: 'x'.repeat(17_000) }), TypeError);
      await assert.rejects(store.putJobReport('nightly' as 'cluster-probe', 'edge', {}), TypeError);
      await assert.rejects(store.putJobReport('cluster-probe', 'edge', { error: 'a\u0000b' }), TypeError);
      assert.deepEqual(await store.listJobReports(), []);
    });
  });

  describe(`${dialect}: holdLease`, () => {
    const leases: HeldLease[] = [];
    afterEach(async () => {
      for (const lease of leases.splice(0)) await lease.stop();
    });

    function hold(store: Store, holder: string, events: string[]): HeldLease {
      const lease = holdLease({
        store,
        name: 'background-jobs',
        holder,
        durationMs: 600,
        renewIntervalMs: 100,
        logger: silent,
        onAcquired: () => void events.push(`${holder} started`),
        onLost: () => void events.push(`${holder} stopped`),
      });
      leases.push(lease);
      return lease;
    }

    it('runs the work in one of two processes, and in the other once the first stops, because the jobs must run once per installation', async () => {
      const db = await createDatabase();
      const events: string[] = [];
      const a = hold(await db.open(), 'process-a', events);
      await a.ready;
      const b = hold(await db.open(), 'process-b', events);
      await b.ready;
      assert.equal(a.held(), true);
      assert.equal(b.held(), false);
      assert.deepEqual(events, ['process-a started']);
      await a.stop();
      assert.equal(a.held(), false);
      await eventually(() => b.held(), 5000, 'b takes over after a gave the lease up');
      assert.deepEqual(events, ['process-a started', 'process-a stopped', 'process-b started']);
    });

    it('stops the work when the store cannot be reached, logging that once, because nobody may run the jobs without the lease', async () => {
      const store = await (await createDatabase()).open();
      let attempts = 0;
      const counted = {
        takeLease: (...args: Parameters<Store['takeLease']>) => {
          attempts += 1;
          return store.takeLease(...args);
        },
        releaseLease: (...args: Parameters<Store['releaseLease']>) => store.releaseLease(...args),
      };
      const events: string[] = [];
      const lines: Array<Record<string, unknown>> = [];
      const logger = createLogger({ level: 'info', name: 'proxy', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
      const lease = holdLease({
        store: counted,
        name: 'background-jobs',
        holder: 'process-a',
        durationMs: 600,
        renewIntervalMs: 100,
        logger,
        onAcquired: () => void events.push('started'),
        onLost: () => void events.push('stopped'),
      });
      leases.push(lease);
      await lease.ready;
      assert.equal(lease.held(), true);
      await store.close();
      await eventually(() => !lease.held(), 5000, 'the work stops');
      assert.deepEqual(events, ['started', 'stopped']);
      const failedFrom = attempts;
      await eventually(() => attempts >= failedFrom + 3, 5000, 'three more failed attempts');
      const warnings = lines.filter((line) => String(line['msg']).startsWith('the store cannot be asked for the background job lease'));
      assert.equal(warnings.length, 1, 'one warning for the whole outage');
      assert.equal(warnings[0]!['holder'], 'process-a', 'the line names this process');
      assert.equal(lease.held(), false);
    });

    it('stops the work of a holder whose lease another process took after it lapsed', async () => {
      const db = await createDatabase();
      const store = await db.open();
      const events: string[] = [];
      const a = hold(store, 'process-a', events);
      await a.ready;
      // Another process takes the lease as if a's had lapsed (a paused process, a partition).
      const other = await db.open();
      await db.takeOver('background-jobs', 'process-b');
      assert.equal(await other.takeLease('background-jobs', 'process-c', 60_000), 'process-b', 'b holds it');
      await eventually(() => !a.held(), 5000, 'a notices at its next renewal');
      assert.deepEqual(events, ['process-a started', 'process-a stopped']);
    });
  });

  describe(`${dialect}: loadJobReports`, () => {
    it("gives another process the report one process wrote, and forgets a deleted cluster's, because every replica answers the same", async () => {
      const db = await createDatabase();
      const [a, b] = [await db.open(), await db.open()];
      await a.createCluster({ id: 'edge', server: 'https://edge.example.org:6443', credentials: { kind: 'token', token: 'cluster-token' } });
      await a.putJobReport('provider-health', 'corp-ldap', { state: 'unhealthy' });
      const mirrorA = await loadJobReports(a, { onError: (error) => assert.fail(String(error)) });
      const mirrorB = await loadJobReports(b, { onError: (error) => assert.fail(String(error)) });
      try {
        assert.deepEqual(mirrorB.get('provider-health', 'corp-ldap'), { state: 'unhealthy' }, 'loaded at start');
        const written = mirrorA.put('cluster-probe', 'edge', { reachable: true, version: 'v1.31.0' });
        assert.deepEqual(mirrorA.get('cluster-probe', 'edge'), { reachable: true, version: 'v1.31.0' }, 'the writer sees its report at once');
        await written;
        if (dialect === 'postgres') {
          await eventually(() => mirrorB.get('cluster-probe', 'edge')?.['version'] === 'v1.31.0', 5000, 'b hears the report');
        } else {
          // SQLite tells no other process (the workers' relay does): b has not heard of it.
          assert.equal(mirrorB.get('cluster-probe', 'edge'), undefined);
        }
        await a.deleteCluster('edge');
        await eventually(() => mirrorA.get('cluster-probe', 'edge') === undefined, 5000, 'a forgets the deleted cluster');
        if (dialect === 'postgres') await eventually(() => mirrorB.get('cluster-probe', 'edge') === undefined, 5000, 'b forgets the deleted cluster');
      } finally {
        mirrorA.close();
        mirrorB.close();
      }
    });
  });
}
