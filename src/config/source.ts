/**
 * Where configuration comes from, later sources winning: defaults (in the schemas) < a YAML
 * file < `KUBEGATE_*` environment variables < command-line flags.
 *
 * The file is size-capped and parsed with the `yaml` package's core schema (no custom tags,
 * aliases capped), and keeps its line counter so that a validation error can point at the
 * line. Environment variables and flags become overrides that remember their origin, so an
 * error about a value set by `KUBEGATE_WORKERS` names that variable, not a file path.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { KubegateError } from '../errors.js';

/** Configuration files larger than this are refused: a config file is a few kilobytes. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export type ConfigPath = readonly PropertyKey[];

export interface ConfigFile {
  readonly path: string;
  readonly data: Record<string, unknown>;
  /** The 1-based line of the deepest part of `path` that the file spells out, if any. */
  lineOf(path: ConfigPath): number | undefined;
}

/** One value set by an environment variable or a flag, replacing whatever was at `path`. */
export interface ConfigOverride {
  readonly path: readonly string[];
  readonly value: unknown;
  /** How the user wrote it: `env KUBEGATE_WORKERS`, `flag --workers`. */
  readonly origin: string;
}

/** The merged input before validation, with the origin of every overridden subtree. */
export interface LayeredConfig {
  readonly data: Record<string, unknown>;
  readonly file: ConfigFile | undefined;
  /** Path key (`a.b`) → origin of the override that set that subtree. */
  readonly origins: ReadonlyMap<string, string>;
}

/** Reads and parses a YAML configuration file. Throws CONFIG_UNREADABLE naming the file. */
export function readConfigFile(path: string): ConfigFile {
  const text = readCappedText(path);
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const [firstError] = document.errors;
  if (firstError !== undefined) {
    const { line, col } = lineCounter.linePos(firstError.pos[0]);
    throw new KubegateError('CONFIG_UNREADABLE', `${path}:${line}:${col}: ${firstError.message}`, { cause: firstError });
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new KubegateError('CONFIG_UNREADABLE', `${path}: too many YAML aliases`, { cause: error });
  }
  if (value === null || value === undefined) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new KubegateError('CONFIG_INVALID', `${path}: must be a mapping of settings, not a list or a single value`);
  }
  return {
    path,
    data: value as Record<string, unknown>,
    lineOf: (configPath) => lineOfPath(document, lineCounter, configPath),
  };
}

function readCappedText(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new KubegateError('CONFIG_UNREADABLE', `${path}: cannot be opened (${errorCode(error)})`, { cause: error });
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      throw new KubegateError('CONFIG_UNREADABLE', `${path}: is not a regular file`);
    }
    if (stats.size > MAX_CONFIG_FILE_BYTES) {
      throw new KubegateError('CONFIG_UNREADABLE', `${path}: is larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
    }
    // Read at most one byte past the cap, in case the file grew after fstat.
    const buffer = Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length > MAX_CONFIG_FILE_BYTES) {
        throw new KubegateError('CONFIG_UNREADABLE', `${path}: is larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
      }
    }
    return buffer.toString('utf8', 0, length);
  } catch (error) {
    if (error instanceof KubegateError) throw error;
    throw new KubegateError('CONFIG_UNREADABLE', `${path}: cannot be read (${errorCode(error)})`, { cause: error });
  } finally {
    closeSync(fd);
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'I/O error';
}

function lineOfPath(document: Document, lineCounter: LineCounter, path: ConfigPath): number | undefined {
  let node: unknown = document.contents;
  let offset: number | undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === segment);
      if (pair === undefined || !isScalar(pair.key)) break;
      offset = pair.key.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (item === undefined) break;
      offset = (item as { range?: [number, number, number] }).range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lineCounter.linePos(offset).line;
}

/** Applies overrides (in order, later wins) on top of the file's data. */
export function layerConfig(file: ConfigFile | undefined, overrides: readonly ConfigOverride[]): LayeredConfig {
  const data: Record<string, unknown> = structuredClone(file?.data ?? {});
  const origins = new Map<string, string>();
  for (const { path, value, origin } of overrides) {
    let target = data;
    for (const segment of path.slice(0, -1)) {
      const next = target[segment];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[segment] = {};
      target = target[segment] as Record<string, unknown>;
    }
    target[path[path.length - 1] as string] = value;
    origins.set(path.join('.'), origin);
  }
  return { data, file, origins };
}

/** The origin of the override that set `path` or one of its ancestors, if any. */
export function originOf(layered: LayeredConfig, path: ConfigPath): string | undefined {
  for (let length = path.length; length > 0; length -= 1) {
    const origin = layered.origins.get(path.slice(0, length).map(String).join('.'));
    if (origin !== undefined) return origin;
  }
  return undefined;
}

/** An environment variable and/or flag that sets one setting. */
export interface OverrideSpec {
  /** The setting it replaces (a whole subtree, e.g. `store`, when `toValue` builds one). */
  readonly path: readonly string[];
  readonly env?: string;
  /** Key in the caller's flags object, camelCase; shown to users as `--kebab-case`. */
  readonly flag?: string;
  /** Turns the text into the setting's value; default: the text itself. */
  readonly toValue?: (text: string) => unknown;
}

export type ConfigEnvironment = Readonly<Record<string, string | undefined>>;

/** What loadProxyConfig / loadWebhookConfig read, later winning: defaults < file < env < flags. */
export interface LoadConfigOptions<Flags> {
  /** A YAML file (`--config FILE`). */
  readonly file?: string | undefined;
  /** Default: `process.env`. */
  readonly env?: ConfigEnvironment | undefined;
  /** Values of the command-line flags the caller parsed; unset ones undefined. */
  readonly flags?: Flags | undefined;
}

/**
 * The overrides that `env` and `flags` make, environment first so that flags win. Empty
 * environment variables count as unset (manifests often template them to "").
 */
export function collectOverrides(specs: readonly OverrideSpec[], env: ConfigEnvironment, flags: object): ConfigOverride[] {
  const known = new Set(specs.flatMap((spec) => (spec.flag === undefined ? [] : [spec.flag])));
  for (const key of Object.keys(flags)) {
    if (!known.has(key)) throw new TypeError(`unknown configuration flag ${JSON.stringify(key)}`);
  }
  const overrides: ConfigOverride[] = [];
  for (const spec of specs) {
    const text = spec.env === undefined ? undefined : env[spec.env];
    if (text !== undefined && text !== '') {
      overrides.push({ path: spec.path, value: (spec.toValue ?? identity)(text), origin: `env ${spec.env}` });
    }
  }
  for (const spec of specs) {
    const value: unknown = spec.flag === undefined ? undefined : (flags as Record<string, unknown>)[spec.flag];
    if (value !== undefined) {
      overrides.push({
        path: spec.path,
        value: typeof value === 'string' ? (spec.toValue ?? identity)(value) : value,
        origin: `flag --${spec.flag?.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`,
      });
    }
  }
  return overrides;
}

function identity(text: string): unknown {
  return text;
}
