/**
 * The client-side token cache of `kubegate login` / `kubegate token`.
 *
 * Where: `$XDG_CACHE_HOME/kubegate`, else `~/.kube/cache/kubegate`. The directory is 0700
 * and every file 0600 (written to a temp file, then renamed, so a reader never sees half a
 * token and a crash never leaves a world-readable one). One file per proxy + provider (the
 * login token) and per proxy + provider + cluster (the cluster-scoped token the exec plugin
 * hands kubectl, and, apart, the cluster's JWT in the `jwt` authorized-endpoint mode); file
 * names are a hash of those, so no URL ends up in a path.
 *
 * A cached token is used only while it has more than `refreshBeforeMs` left; then it is
 * replaced before it expires. An unreadable or malformed file counts as "nothing cached".
 *
 * Beside the tokens, `current.json` remembers the proxy `kubegate login` last logged in to
 * (URL, provider, the proxy's CA when one was given; nothing secret), so the admin commands
 * (`kubegate cluster …`) need no `--server` on every call.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CachedToken {
  readonly token: string;
  /** ISO time the token expires, or null when it never does. */
  readonly expiresAt: string | null;
  /** ISO time the proxy last confirmed the token, when it was checked. */
  readonly checkedAt?: string;
  /** ISO time the token was issued, when the proxy said (JWTs). */
  readonly issuedAt?: string;
}

export interface TokenCacheKey {
  /** The proxy's base URL. */
  readonly server: string;
  readonly provider: string;
  /** Absent for the login token. */
  readonly cluster?: string;
  /** `jwt`: the cluster's JWT rather than its cluster-scoped kubegate token. */
  readonly kind?: 'jwt';
}

/** `$XDG_CACHE_HOME/kubegate` or `~/.kube/cache/kubegate`. */
export function tokenCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'kubegate');
  return join(env['HOME'] ?? homedir(), '.kube', 'cache', 'kubegate');
}

/** The proxy `kubegate login` last logged in to. */
export interface CurrentProxy {
  readonly server: string;
  readonly provider?: string | undefined;
  /** PEM of the proxy's CA, when the login was given one. */
  readonly caPem?: string | undefined;
}

export interface TokenCache {
  /** The cached token if it still has more than `refreshBeforeMs` to live. */
  read(key: TokenCacheKey, refreshBeforeMs: number): Promise<CachedToken | undefined>;
  write(key: TokenCacheKey, token: CachedToken): Promise<void>;
  remove(key: TokenCacheKey): Promise<void>;
  readCurrent(): Promise<CurrentProxy | undefined>;
  writeCurrent(current: CurrentProxy): Promise<void>;
}

export function createTokenCache(dir: string, now: () => number = Date.now): TokenCache {
  function fileOf(key: TokenCacheKey): string {
    const parts = [key.server, key.provider, key.cluster ?? null, ...(key.kind === undefined ? [] : [key.kind])];
    const digest = createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
    return join(dir, `${key.kind ?? (key.cluster === undefined ? 'login' : 'cluster')}-${digest}.json`);
  }

  return {
    async read(key, refreshBeforeMs) {
      const parsed = await readJson(fileOf(key));
      const { token, expiresAt, checkedAt, issuedAt } = (parsed ?? {}) as { token?: unknown; expiresAt?: unknown; checkedAt?: unknown; issuedAt?: unknown };
      if (typeof token !== 'string' || token.length === 0) return undefined;
      const checked = {
        ...(typeof checkedAt === 'string' && !Number.isNaN(Date.parse(checkedAt)) ? { checkedAt } : {}),
        ...(typeof issuedAt === 'string' && !Number.isNaN(Date.parse(issuedAt)) ? { issuedAt } : {}),
      };
      if (expiresAt === null) return { token, expiresAt: null, ...checked };
      if (typeof expiresAt !== 'string' || Number.isNaN(Date.parse(expiresAt))) return undefined;
      if (Date.parse(expiresAt) - now() <= refreshBeforeMs) return undefined;
      return { token, expiresAt, ...checked };
    },
    async write(key, token) {
      const record = {
        token: token.token,
        expiresAt: token.expiresAt,
        ...(token.checkedAt === undefined ? {} : { checkedAt: token.checkedAt }),
        ...(token.issuedAt === undefined ? {} : { issuedAt: token.issuedAt }),
      };
      await writePrivateJson(fileOf(key), record);
    },
    async remove(key) {
      await rm(fileOf(key), { force: true });
    },
    async readCurrent() {
      const parsed = await readJson(join(dir, CURRENT_FILE));
      const { server, provider, caPem } = (parsed ?? {}) as Record<string, unknown>;
      if (typeof server !== 'string' || server === '') return undefined;
      return { server, provider: typeof provider === 'string' ? provider : undefined, caPem: typeof caPem === 'string' ? caPem : undefined };
    },
    async writeCurrent(current) {
      await writePrivateJson(join(dir, CURRENT_FILE), current);
    },
  };

  /** Writes `record` as a 0600 file in the 0700 directory: temp file, then rename. */
  async function writePrivateJson(file: string, record: unknown): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(record), { mode: 0o600, flag: 'wx' });
    await rename(temp, file);
  }
}

const CURRENT_FILE = 'current.json';

/** The file's JSON; undefined when it cannot be read or parsed (counts as nothing cached). */
async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}
