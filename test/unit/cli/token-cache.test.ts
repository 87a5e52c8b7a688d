import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execCredential, REFRESH_BEFORE_EXPIRY_MS } from '../../../src/cli/exec-credential.js';
import { createTokenCache, tokenCacheDir } from '../../../src/cli/token-cache.js';

describe('CLI token cache', () => {
  let dir: string;
  const now = Date.parse('2030-01-01T00:00:00Z');
  const key = { server: 'https://proxy.example', provider: 'local', cluster: 'dev' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubegate-cache-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('lives under XDG_CACHE_HOME, else ~/.kube/cache', () => {
    assert.equal(tokenCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/a' }), '/x/cache/kubegate');
    assert.equal(tokenCacheDir({ HOME: '/home/a' }), '/home/a/.kube/cache/kubegate');
  });

  it('writes 0600 files in a 0700 directory, because they hold tokens', async () => {
    const cache = createTokenCache(join(dir, 'a'), () => now);
    await cache.write(key, { token: 't-a:secret', expiresAt: new Date(now + 3_600_000).toISOString() });
    assert.equal((await stat(join(dir, 'a'))).mode & 0o777, 0o700);
    for (const file of await readdir(join(dir, 'a'))) assert.equal((await stat(join(dir, 'a', file))).mode & 0o777, 0o600);
    assert.equal((await cache.read(key, REFRESH_BEFORE_EXPIRY_MS))?.token, 't-a:secret');
  });

  it('stops handing out a token shortly before it expires, so that it is refreshed in time', async () => {
    const cache = createTokenCache(join(dir, 'b'), () => now);
    await cache.write(key, { token: 't-b:secret', expiresAt: new Date(now + REFRESH_BEFORE_EXPIRY_MS).toISOString() });
    assert.equal(await cache.read(key, REFRESH_BEFORE_EXPIRY_MS), undefined);
  });

  it('treats a corrupt file as nothing cached', async () => {
    const cache = createTokenCache(join(dir, 'c'), () => now);
    await cache.write(key, { token: 't-c:secret', expiresAt: null });
    const [file] = await readdir(join(dir, 'c'));
    await writeFile(join(dir, 'c', file!), '{not json');
    assert.equal(await cache.read(key, 0), undefined);
  });

  it('keeps tokens of different clusters and providers apart', async () => {
    const cache = createTokenCache(join(dir, 'd'), () => now);
    await cache.write(key, { token: 't-d:secret', expiresAt: null });
    assert.equal(await cache.read({ ...key, cluster: 'prod' }, 0), undefined);
    assert.equal(await cache.read({ ...key, provider: 'corp' }, 0), undefined);
  });
});

describe('ExecCredential', () => {
  it('expires before the token does, so that kubectl asks for a fresh one in time', () => {
    const credential = execCredential({ token: 't-x:secret', expiresAt: '2030-01-01T01:00:00.000Z' }) as { status: { expirationTimestamp: string } };
    assert.equal(credential.status.expirationTimestamp, '2030-01-01T00:55:00Z');
  });
});
