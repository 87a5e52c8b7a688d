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

  it('create the same tables and indexes in both dialects', () => {
    const objects = (list: typeof sqliteMigrations): string[] =>
      [...list.map((migration) => migration.sql).join('\n').matchAll(/CREATE (TABLE|INDEX) (\w+)/g)].map((match) => `${match[1]} ${match[2]}`).sort();
    assert.deepEqual(objects(sqliteMigrations), objects(postgresMigrations));
  });

  it('never store a plaintext secret column: secrets live only in *_sealed columns and tokens only as hashes', () => {
    for (const migration of [...sqliteMigrations, ...postgresMigrations]) {
      assert.doesNotMatch(migration.sql, /\b(password|secret|token|credentials|settings|key_pem)\s+(TEXT|JSONB)/i);
    }
  });
});
