/**
 * How the admin commands print what the REST API answered: `-o table` (default; columns for
 * people), `-o json` or `-o yaml` (the API's objects as they are, for scripts), like kubectl.
 * Tables are plain text with columns padded to the widest cell; a missing value is `-`.
 */
import { stringify } from 'yaml';
import { KubegateError } from '../errors.js';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => unknown;
}

export function parseOutputFormat(value: string | undefined): OutputFormat {
  const format = value ?? 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new KubegateError('BAD_REQUEST', `--output must be one of ${OUTPUT_FORMATS.join(', ')}`, { field: 'output' });
  }
  return format as OutputFormat;
}

function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(String).join(',');
  return String(value).replace(/\s+/g, ' ');
}

/** `rows` as a table; `data` (the API's answer) for json and yaml. */
export function formatOutput<T>(format: OutputFormat, data: unknown, rows: readonly T[], columns: readonly Column<T>[]): string {
  if (format === 'json') return `${JSON.stringify(data, null, 2)}\n`;
  if (format === 'yaml') return stringify(data);
  const lines = [columns.map((column) => column.header), ...rows.map((row) => columns.map((column) => cell(column.value(row))))];
  const widths = columns.map((_, index) => Math.max(...lines.map((line) => line[index]!.length)));
  return `${lines.map((line) => line.map((text, index) => (index === line.length - 1 ? text : text.padEnd(widths[index]!))).join('   ')).join('\n')}\n`;
}
