/**
 * The refusal of a SQLite proxy whose better-sqlite3 was not built says what building it
 * takes, including what a fresh clone on a machine without access to nodejs.org lacks:
 * npm ci drops a failed optional dependency silently, so this message is all the user sees.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sqliteModuleMissing } from '../../../src/store/native-sqlite.js';

test('the missing-module refusal names the field, the build tools, the Node headers and how to see the build failure', () => {
  const error = sqliteModuleMissing(new Error("Cannot find module 'better-sqlite3'"));
  assert.equal(error.code, 'CONFIG_INVALID');
  assert.equal(error.field, 'store.type');
  assert.match(error.message, /python3, make, g\+\+ and Node's headers/);
  assert.match(error.message, /npm_config_nodedir/);
  assert.match(error.message, /npm ci --foreground-scripts/);
  assert.match(error.message, /use PostgreSQL \(store\.url\)/);
});
