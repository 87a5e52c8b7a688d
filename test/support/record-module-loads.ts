/**
 * Preloaded into a child process (`node --import tsx --import <this file> …`) by tests that
 * check what a kubegate process loads: every module URL the process resolves is appended to
 * the file named by KUBEGATE_TEST_MODULE_LOADS, one per line, before the import completes —
 * so once the process says it is serving, the file lists everything it has loaded.
 * The resolve hook runs on Node's loader thread, after tsx's, and sees ESM imports, dynamic
 * imports and the packages kubegate's own modules import (a CommonJS package's internal
 * `require`s are not listed, its entry point is).
 */
import { register } from 'node:module';

const file = process.env['KUBEGATE_TEST_MODULE_LOADS'];
if (file === undefined || file === '') throw new Error('record-module-loads needs KUBEGATE_TEST_MODULE_LOADS');

const hooks = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, resolved.url + '\\n');
  return resolved;
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { file } });

