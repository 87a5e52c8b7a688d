import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { postgresMigrations, sqliteMigrations } from '../../../src/store/migrations.js';

describe('store migrations', () => {
  it('number both dialects identically and strictly upwards, because a version must mean the same schema in both', () => {
    const versions = (list: typeof sqliteMigrations): number[] => list.map((migration) => migration.version);
    assert.deepEqual(versions(sqliteMigrations), versions(postgresMigrations));
    assert.deepEqual(versions(sqliteMigrations), [...versions(sqliteMigrations)].sort((a, b) => a - b));
    assert.equal(new Set(versions(sqliteMigrations)).size, sqliteMigrations.length);
    assert.deepEqual(
      sqliteMigrations.map((migration) => migration.name),
      postgresMigrations.map((migration) => migration.name),
    );
  });

  it('end with the same tables and indexes in both dialects, because one query must mean the same in both', () => {
    /** What exists after every migration: created, minus dropped, with renames followed. */
    const objects = (list: typeof sqliteMigrations): string[] => {
      const existing = new Set<string>();
      const statements = /CREATE (?:UNIQUE )?(TABLE|INDEX) (\w+)|DROP (TABLE|INDEX) (\w+)|ALTER TABLE (\w+) RENAME TO (\w+)/g;
      for (const match of list.map((migration) => migration.sql).join('\n').matchAll(statements)) {
        if (match[1] !== undefined) existing.add(`${match[1]} ${match[2]}`);
        else if (match[3] !== undefined) existing.delete(`${match[3]} ${match[4]}`);
        else if (existing.delete(`TABLE ${match[5]}`)) existing.add(`TABLE ${match[6]}`);
      }
      return [...existing].sort();
    };
    assert.deepEqual(objects(sqliteMigrations), objects(postgresMigrations));
    assert.ok(objects(postgresMigrations).includes('TABLE tunnels'));
  });

  it('never store a plaintext secret column: secrets live only in *_sealed columns and tokens only as hashes', () => {
    for (const migration of [...sqliteMigrations, ...postgresMigrations]) {
      assert.doesNotMatch(migration.sql, /\b(password|secret|token|credentials|settings|key_pem)\s+(TEXT|JSONB)/i);
    }
  });
});
