/**
 * Validation: run a zod schema over the layered input, turn every issue into one
 * `where: problem` line, and throw them all at once as CONFIG_INVALID, so that an operator
 * fixes a config in one round. `where` is the field path (`store.url`, with the file line
 * when the file spells it out), or the environment variable or flag that set the value
 * (`env KUBEGATE_WORKERS`). Problems never quote the offending value: a misplaced secret
 * must not end up in a log line.
 */
import * as z from 'zod';
import { KubegateError } from '../errors.js';
import { originOf } from './source.js';
import type { ConfigPath, LayeredConfig } from './source.js';

export interface ConfigIssue {
  readonly path: ConfigPath;
  readonly problem: string;
}

/**
 * Checks that involve several settings. It sees the top-level settings that are valid on
 * their own (`invalid` names the others, which are absent from `valid`), so that its
 * problems are reported alongside the per-field ones.
 */
export type CrossCheck<Output> = (valid: Partial<Output>, invalid: ReadonlySet<string>) => ConfigIssue[];

/**
 * Parses `layered.data` with `schema` and runs `crossCheck`; throws CONFIG_INVALID listing
 * every issue.
 */
export function parseLayeredConfig<S extends z.ZodObject>(
  schema: S,
  layered: LayeredConfig,
  crossCheck: CrossCheck<z.output<S>> = () => [],
): z.output<S> {
  const result = schema.safeParse(layered.data, { error: describeIssue });
  if (result.success) {
    const crossIssues = crossCheck(result.data, new Set());
    if (crossIssues.length === 0) return result.data;
    throw configInvalid(layered, crossIssues);
  }
  const valid: Record<string, unknown> = {};
  const invalid = new Set<string>();
  for (const [key, field] of Object.entries(schema.shape)) {
    const part = (field as z.ZodType).safeParse(layered.data[key], { error: describeIssue });
    if (part.success) valid[key] = part.data;
    else invalid.add(key);
  }
  const issues = [...result.error.issues.flatMap(toConfigIssues), ...crossCheck(valid as Partial<z.output<S>>, invalid)];
  throw configInvalid(layered, issues);
}

/** One CONFIG_INVALID error for all issues; `field` is the first issue's path. */
function configInvalid(layered: LayeredConfig, issues: readonly ConfigIssue[]): KubegateError {
  const lines = issues.map((issue) => `${whereOf(layered, issue.path)}: ${issue.problem}`);
  return new KubegateError('CONFIG_INVALID', lines.join('; '), { field: formatConfigPath(issues[0]?.path ?? []) });
}

/** `['providers', 0, 'name']` → `providers[0].name`. */
function formatConfigPath(path: ConfigPath): string {
  let text = '';
  for (const segment of path) {
    text += typeof segment === 'number' ? `[${segment}]` : `${text === '' ? '' : '.'}${String(segment)}`;
  }
  return text === '' ? '(root)' : text;
}

function whereOf(layered: LayeredConfig, path: ConfigPath): string {
  const origin = originOf(layered, path);
  if (origin !== undefined) return origin;
  const line = layered.file?.lineOf(path);
  const field = formatConfigPath(path);
  return line === undefined ? field : `${field} (${layered.file?.path}:${line})`;
}

function toConfigIssues(issue: z.core.$ZodIssue): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: [...issue.path, key], problem: 'unknown setting (check the spelling)' }));
  }
  return [{ path: issue.path, problem: issue.message }];
}

/** A zod error map that words problems for operators and never echoes the input. */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      if (issue.expected === 'object') return 'must be a mapping';
      if (issue.expected === 'array') return 'must be a list';
      return `must be a ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((value) => String(value)).join(', ')}`;
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      return Array.isArray(options) ? `must be one of ${options.map(String).join(', ')}` : 'has an invalid form';
    }
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
      if (issue.origin === 'array') return `must have at least ${issue.minimum} entries`;
      if (issue.origin === 'string') return `must be at least ${issue.minimum} characters long`;
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} entries`;
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters long`;
      return `must be at most ${issue.maximum}`;
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    default:
      return 'is invalid';
  }
}

/** Freezes an object graph in place (config is shared by every part of a process). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
