/**
 * The end-to-end fixture: the real `kubegate proxy` wiring (startProxy) with its own data
 * dir and CA, a strict fake API server registered as one cluster, an admin logged in
 * through the REST API, and helpers to add users, grant membership and download
 * kubeconfigs the way an operator and a user would. Tests add what is particular to them
 * (providers, a webhook, kubectl runs) through the options.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startProxy } from '../../src/cmd/proxy.js';
import type { RunningProxy } from '../../src/cmd/proxy.js';
import { loadProxyConfig } from '../../src/config/proxy.js';
import { createLogger } from '../../src/log.js';
import type { Logger } from '../../src/log.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer, FakeKubeApiServerOptions } from '../fakes/kube-apiserver.js';
import { createApiClient } from './api-client.js';
import type { ApiClient } from './api-client.js';

export const FIXTURE_ADMIN_PASSWORD = 'bootstrap-Pa55word-e2e';
export const FIXTURE_CLUSTER_TOKEN = 'proxy-sa-token-e2e-0123456789abcdef';

export interface ProxyFixtureOptions {
  /** Prefix of the temporary directory's name. */
  readonly name: string;
  /** Proxy configuration next to listen, dataDir, tls, `audit: {enabled: false}` and `metrics: {listen: 127.0.0.1:0}`. */
  readonly config?: (dir: string) => Record<string, unknown>;
  /** The proxy's logger; silent by default. */
  readonly logger?: (dir: string) => Logger;
  /** Options of the fake API server besides its token. */
  readonly fake?: Omit<FakeKubeApiServerOptions, 'token'>;
  /** Runs before the proxy starts (a webhook the fake cluster asks, say). */
  readonly beforeProxy?: (fake: FakeKubeApiServer, dir: string) => Promise<void>;
  /** The cluster's ID; `dev` by default. */
  readonly clusterId?: string;
  /** Fields of the cluster registration besides id, server, CA and token (e.g. `ace`). */
  readonly cluster?: (fake: FakeKubeApiServer) => Record<string, unknown>;
  /** The proxy's StartProxyDeps.bodyTimeoutMs; its default when unset. */
  readonly bodyTimeoutMs?: number;
}

export interface FixtureUser {
  readonly id: string;
  readonly username: string;
  readonly password: string;
  /** A login token of the user. */
  readonly token: string;
}

export interface DownloadedKubeconfig {
  readonly path: string;
  readonly text: string;
  /** The token in the kubeconfig's first user, when it has one. */
  readonly token: string | undefined;
  // A parsed kubeconfig: tests read the fields they need.
  readonly document: any;
}

export interface ProxyFixture {
  readonly dir: string;
  readonly fake: FakeKubeApiServer;
  readonly proxy: RunningProxy;
  readonly api: ApiClient;
  readonly clusterId: string;
  readonly adminToken: string;
  /**
   * A local user with `password` (default `<username>-Secret-pass-42`), a member of the
   * cluster with `role` (default `member`; null for none), logged in once.
   */
  addUser(username: string, options?: { password?: string; role?: 'owner' | 'member' | 'viewer' | null }): Promise<FixtureUser>;
  /** Grants `kind` `name` the `role` in the cluster. */
  grant(kind: 'User' | 'Group', name: string, role: 'owner' | 'member' | 'viewer'): Promise<void>;
  /** Downloads the cluster's kubeconfig with `token` (`query` e.g. `?auth=exec`) into the fixture dir. */
  kubeconfig(token: string, query?: string): Promise<DownloadedKubeconfig>;
  /** Stops the proxy (once; `close` then leaves it alone). */
  stopProxy(): Promise<void>;
  /** Stops everything and removes the directory. */
  close(): Promise<void>;
}

export async function startProxyFixture(options: ProxyFixtureOptions): Promise<ProxyFixture> {
  const dir = await mkdtemp(join(tmpdir(), `kubegate-${options.name}-`));
  const clusterId = options.clusterId ?? 'dev';
  let fake: FakeKubeApiServer | undefined;
  let proxy: RunningProxy | undefined;
  let proxyStopping: Promise<void> | undefined;
  const stopProxy = (): Promise<void> => (proxyStopping ??= proxy?.stop() ?? Promise.resolve());
  const close = async (): Promise<void> => {
    await stopProxy();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    fake = await startFakeKubeApiServer({ ...options.fake, token: FIXTURE_CLUSTER_TOKEN });
    await options.beforeProxy?.(fake, dir);
    const configFile = join(dir, 'kubegate.yaml');
    await writeFile(
      configFile,
      JSON.stringify({
        listen: '127.0.0.1:0',
        dataDir: join(dir, 'data'),
        tls: { sans: ['127.0.0.1', 'localhost'] },
        audit: { enabled: false },
        // Never the default port: test files run side by side.
        metrics: { listen: '127.0.0.1:0' },
        ...options.config?.(dir),
      }),
    );
    const config = loadProxyConfig({ file: configFile, env: { KUBEGATE_BOOTSTRAP_PASSWORD: FIXTURE_ADMIN_PASSWORD } });
    const logger = options.logger?.(dir) ?? createLogger({ level: 'silent', name: 'proxy' });
    const started = await startProxy(config, { logger, ...(options.bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs: options.bodyTimeoutMs }) });
    proxy = started;
    assert.ok(started.caPem, 'the proxy generated its own CA');
    const api = createApiClient(started.url, started.caPem);
    const adminToken = await api.login('admin', FIXTURE_ADMIN_PASSWORD);
    const cluster = await api.request('POST', '/v1/clusters', {
      token: adminToken,
      body: {
        id: clusterId,
        server: fake.url,
        caData: Buffer.from(fake.caPem).toString('base64'),
        token: FIXTURE_CLUSTER_TOKEN,
        ...options.cluster?.(fake),
      },
    });
    assert.equal(cluster.status, 201, cluster.text);
    assert.ok(!cluster.text.includes(FIXTURE_CLUSTER_TOKEN), 'cluster views never carry credentials');

    async function grant(kind: 'User' | 'Group', name: string, role: 'owner' | 'member' | 'viewer'): Promise<void> {
      const member = await api.request('POST', `/v1/clusters/${clusterId}/members`, { token: adminToken, body: { kind, name, role } });
      assert.equal(member.status, 201, member.text);
    }

    let kubeconfigs = 0;
    return {
      dir,
      fake,
      proxy: started,
      api,
      clusterId,
      adminToken,
      grant,
      async addUser(username, userOptions = {}) {
        const password = userOptions.password ?? `${username}-Secret-pass-42`;
        const created = await api.request('POST', '/v1/users', { token: adminToken, body: { username, password } });
        assert.equal(created.status, 201, created.text);
        const id = created.json.id as string;
        const role = userOptions.role === undefined ? 'member' : userOptions.role;
        if (role !== null) await grant('User', id, role);
        return { id, username, password, token: await api.login(username, password) };
      },
      async kubeconfig(token, query = '') {
        const answer = await api.request('GET', `/v1/clusters/${clusterId}/kubeconfig${query}`, { token });
        assert.equal(answer.status, 200, answer.text);
        assert.match(String(answer.headers['content-type']), /yaml/);
        const document = parse(answer.text);
        const path = join(dir, `kubeconfig-${++kubeconfigs}`);
        await writeFile(path, answer.text, { mode: 0o600 });
        return { path, text: answer.text, token: document.users?.[0]?.user?.token, document };
      },
      stopProxy,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
