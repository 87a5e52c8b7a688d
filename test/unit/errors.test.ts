import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { KubegateError, errorCatalog, isKubegateError, toKubegateError } from '../../src/errors.js';

interface DocumentedCode {
  readonly code: string;
  readonly status: number;
  readonly meaning: string;
}

/** The rows of the table under README.md's "## Error codes" heading. */
function readDocumentedCodes(): DocumentedCode[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## Error codes\n');
  assert.notEqual(start, -1, 'README.md has an "## Error codes" section');
  const nextSection = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, nextSection === -1 ? undefined : nextSection);
  const rows: DocumentedCode[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    // `| code | HTTP | meaning |` → ['', code, HTTP, meaning, '']
    if (cells.length !== 5 || cells[1] === 'code' || /^-+$/.test(cells[1] ?? '')) continue;
    const code = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    assert.ok(code !== undefined, `error table row without a \`CODE\`: ${line}`);
    rows.push({ code, status: Number(cells[2]), meaning: cells[3] ?? '' });
  }
  return rows;
}

const catalogCodes = Object.keys(errorCatalog) as Array<keyof typeof errorCatalog>;

describe('the error catalog', () => {
  it('is documented code for code in README.md, in the same order and with the same status', () => {
    const documented = readDocumentedCodes();
    const documentedCodes = documented.map((row) => row.code);
    const undocumented = catalogCodes.filter((code) => !documentedCodes.includes(code));
    const unknown = documentedCodes.filter((code) => !(code in errorCatalog));
    assert.deepEqual(undocumented, [], 'codes in src/errors.ts missing from the README table');
    assert.deepEqual(unknown, [], 'codes in the README table that src/errors.ts does not declare');
    assert.deepEqual(documentedCodes, catalogCodes, 'the README table lists codes in catalog order');
    for (const row of documented) {
      assert.equal(row.status, errorCatalog[row.code as keyof typeof errorCatalog].status, `HTTP status of ${row.code}`);
      assert.ok(row.meaning.length > 0, `${row.code} has a meaning`);
    }
  });

  it('uses SCREAMING_SNAKE codes, because clients match on them', () => {
    for (const code of catalogCodes) assert.match(code, /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/);
  });

  it('maps every code to an HTTP error status that exists', () => {
    for (const [code, { status }] of Object.entries(errorCatalog)) {
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status} is not an error status`);
      assert.ok(STATUS_CODES[status] !== undefined, `${code}: ${status} is not a known HTTP status`);
    }
  });

  it('gives every code a non-empty message without a trailing period or placeholder', () => {
    for (const [code, { message }] of Object.entries(errorCatalog)) {
      assert.ok(message.length > 0, code);
      assert.doesNotMatch(message, /\.$|%s|\$\{|\{\}/, code);
    }
  });
});

describe('KubegateError', () => {
  it('carries code, status, field and a caller-safe JSON body', () => {
    const error = new KubegateError('CONFIG_INVALID', 'workers: must be a whole number', { field: 'workers' });
    assert.equal(error.status, 500);
    assert.deepEqual(error.toJSON(), { error: { code: 'CONFIG_INVALID', message: 'workers: must be a whole number', field: 'workers' } });
    assert.ok(isKubegateError(error, 'CONFIG_INVALID'));
    assert.ok(!isKubegateError(error, 'CONFIG_UNREADABLE'));
  });

  it('turns an unknown error into INTERNAL with the catalog message, so that its content never reaches a client', () => {
    const original = new Error('connect ECONNREFUSED 10.0.0.7:5432 password=hunter2');
    const wrapped = toKubegateError(original);
    assert.equal(wrapped.code, 'INTERNAL');
    assert.equal(wrapped.message, errorCatalog.INTERNAL.message);
    assert.equal(wrapped.cause, original);
    assert.doesNotMatch(JSON.stringify(wrapped.toJSON()), /hunter2/);
  });
});
