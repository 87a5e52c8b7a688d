/**
 * What a benchmark run starts on loopback: the TLS material (one CA, one serving
 * certificate for 127.0.0.1/localhost that every server uses), the fast upstream, and each
 * path in front of it — direct, nginx, the two bare Node forwarders, the Go peer (stdlib
 * ReverseProxy with token lookup and impersonation, bench/go-reverseproxy), kubegate in one
 * process and with N workers. Every target is reached at `<base>/k8s/clusters/bench/…`;
 * the upstream ignores that prefix, so the peers forward paths unchanged.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { createCertificateAuthority, issueServingCertificate } from '../src/pki/certificates.js';
import { createApiClient } from '../test/support/api-client.js';
import type { ApiClient } from '../test/support/api-client.js';
import { freePort, startChild } from './processes.js';
import { createSlowRequestLog, parseUpstreamRoundReading, SLOW_REQUEST_MS } from './round-waits.js';
import type { SlowRequestLog, UpstreamRoundReading } from './round-waits.js';
import type { Child } from './processes.js';

export const CLUSTER_PATH = '/k8s/clusters/bench';
const REPO = new URL('..', import.meta.url).pathname;
const NODE_ARGS = ['--import', 'tsx'];
const builtTrees = new Map<string, string>();

/**
 * The node flags of `<repo>/package.json`'s `start` script (`node <flags> <entry> proxy`), so
 * that each tree's proxy runs as that tree shipped it (an older tree capped V8's young
 * generation there; today's sets no flag).
 */
function startScriptNodeFlags(repo: string): string[] {
  const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
  const words = (manifest.scripts['start'] ?? '').split(/\s+/).filter((word) => word !== '');
  const entry = words.indexOf(manifest.bin['kubegate'] ?? '');
  if (words[0] !== 'node' || entry < 0) throw new Error(`the start script of ${repo} does not run node on the kubegate bin: ${manifest.scripts['start']}`);
  return words.slice(1, entry);
}

/**
 * Compiles a tsconfig of `repo` into `<repo>/dist-bench-<pid>-<label>/` — beside dist/, at its
 * depth, so that node_modules and `../package.json` resolve as from dist/ — once per harness
 * process, removed when it exits. Each harness gets its own output: two runs at once (the
 * test suite runs the bench smoke and the native-core tests side by side) never read each
 * other's half-written files, and dist/ is left alone.
 */
function compileForBench(repo: string, project: string, label: string): string {
  const key = `${repo}\0${project}`;
  const built = builtTrees.get(key);
  if (built !== undefined) return built;
  const outDir = join(repo, `dist-bench-${process.pid}-${label}`);
  rmSync(outDir, { recursive: true, force: true });
  process.once('exit', () => rmSync(outDir, { recursive: true, force: true }));
  const result = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', project, '--outDir', outDir], { cwd: repo, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`building ${project} in ${repo} failed: ${result.stdout}${result.stderr}`);
  builtTrees.set(key, outDir);
  return outDir;
}

/**
 * kubegate as it ships: the tree compiled as `npm run build` compiles it (tsconfig.build.json),
 * once per tree and run, not tsx's on-the-fly transpile, whose loader and source cache add
 * memory and whose helpers add CPU the product does not have. The harness itself and the
 * bare peers stay on tsx.
 */
export function kubegateEntry(repo: string = REPO): string {
  return join(compileForBench(repo, 'tsconfig.build.json', `kubegate-${builtTrees.size}`), 'cmd/main.js');
}

/** The native-core prototype's decider (bench/native-core/decider.ts), compiled like kubegate. */
export function nativeCoreDeciderEntry(): string {
  return join(compileForBench(REPO, 'bench/native-core/tsconfig.json', 'native-core'), 'bench/native-core/decider.js');
}

export interface Tls {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly caPem: string;
}

export type TargetKind = 'direct' | 'nginx' | 'bare' | 'go' | 'native-core' | 'kubegate';

export interface Target {
  readonly name: string;
  readonly kind: TargetKind;
  /** `https://127.0.0.1:PORT` */
  readonly origin: string;
  /** Headers every request through this target carries (kubegate: the bearer token). */
  readonly headers: Readonly<Record<string, string>>;
  /** The proxy's process (tree) for memory and CPU; undefined for direct. */
  readonly pid: number | undefined;
  readonly kubegate?: KubegateHandle;
  readonly nativeCore?: NativeCoreHandle;
  stop(): Promise<void>;
}

export interface NativeCoreOptions {
  readonly cluster?: { readonly caFile: string; readonly token: string };
  readonly decisionCache?: boolean;
}

export interface NativeCoreHandle {
  /** The public name of the token in the target's headers. */
  readonly tokenName: string;
  readonly auditFile: string;
  /** Deletes that token through the decider's store (as `DELETE /v1/tokens/:name` would). */
  revoke(): void;
}

export interface KubegateHandle {
  readonly api: ApiClient;
  readonly adminToken: string;
  readonly userToken: string;
  readonly workers: number;
  readonly auditFile: string;
  /** Its `/metrics` on the metrics listener (loop-stalls.ts reads the event-loop delay there). */
  readonly metricsUrl: string;
  /** Its `slow request` log lines (every kubegate here runs with log.slowRequestMs = SLOW_REQUEST_MS; round-waits.ts). */
  readonly slowRequests: SlowRequestLog;
  /** Agent-mode: the `kubegate agent` process holding the tunnel (its CPU is not in the proxy's tree). */
  readonly agentPid?: number | undefined;
}

export async function createTls(dir: string): Promise<Tls> {
  const ca = await createCertificateAuthority({ commonName: 'kubegate bench CA', validityDays: 2 });
  const serving = await issueServingCertificate(ca, { commonName: 'bench', sans: ['127.0.0.1', 'localhost'], validityDays: 2 });
  const tls = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caPem: ca.certPem };
  writeFileSync(tls.caFile, ca.certPem);
  writeFileSync(tls.certFile, serving.certPem);
  writeFileSync(tls.keyFile, serving.keyPem, { mode: 0o600 });
  return tls;
}

export interface Upstream {
  readonly child: Child;
  readonly origin: string;
  /** `client`: count only the watches labelled so (`X-Bench-Client`). */
  stats(client?: string): Promise<{ openWatches: number; openUpgrades: number; watchRequests: number }>;
  /** Its longest loop delay since the previous call (reset by it) and its connection counts (round-waits.ts). */
  round(): Promise<UpstreamRoundReading>;
}

export async function startUpstream(tls: Tls): Promise<Upstream> {
  const port = await freePort();
  const { child } = await startChild('upstream', process.execPath, [...NODE_ARGS, join(REPO, 'bench/upstream.ts'), tls.certFile, tls.keyFile, String(port)], { cwd: REPO });
  const origin = `https://127.0.0.1:${port}`;
  const agent = new https.Agent({ ca: tls.caPem, keepAlive: true });
  return {
    child,
    origin,
    stats: async (client) => JSON.parse(await fetchText(`${origin}/bench/stats${client === undefined ? '' : `?client=${encodeURIComponent(client)}`}`, agent)),
    round: async () => parseUpstreamRoundReading(await fetchText(`${origin}/bench/round`, agent)),
  };
}

export function fetchText(url: string, agent: https.Agent, method = 'GET', headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { agent, method, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${method} ${url}: ${res.statusCode} ${text.slice(0, 200)}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

export function directTarget(upstream: Upstream): Target {
  return { name: 'direct', kind: 'direct', origin: upstream.origin, headers: {}, pid: undefined, stop: async () => undefined };
}

/** `cpuProfileDir`: the forwarder runs under `node --cpu-prof` and leaves its profile there when stopped. */
export async function startBareForwarder(kind: 'node-http' | 'http-proxy-3' | 'undici', upstream: Upstream, tls: Tls, cpuProfileDir?: string): Promise<Target> {
  const port = await freePort();
  const profile = cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir];
  const { child } = await startChild(kind, process.execPath, [...profile, ...NODE_ARGS, join(REPO, 'bench/forwarder.ts'), kind, String(port), upstream.origin, tls.caFile, tls.certFile, tls.keyFile], {
    cwd: REPO,
  });
  return { name: kind, kind: 'bare', origin: `https://127.0.0.1:${port}`, headers: {}, pid: child.pid, stop: () => child.stop() };
}

/** The identity the Go peer maps its one token to, and the credential it sends upstream. */
const GO_PEER = { token: 'bench-go-reverseproxy-token', user: 'bench', group: 'kubegate:members', upstreamToken: 'bench-upstream-credential' };

/**
 * Builds bench/<program> with Debian's Go (standard library only, so offline: no module proxy
 * is asked) into the run's directory; returns the binary.
 */
function buildGoProgram(program: 'go-reverseproxy' | 'native-core', dir: string): string {
  const binary = join(dir, program);
  const build = spawnSync('go', ['build', '-o', binary, '.'], {
    cwd: join(REPO, 'bench', program),
    env: {
      ...process.env,
      GOPROXY: 'off',
      GOFLAGS: '-mod=mod',
      CGO_ENABLED: '0',
      // Go refuses to build without a cache directory; a CI user may have no HOME.
      ...(process.env['GOCACHE'] === undefined && process.env['HOME'] === undefined && process.env['XDG_CACHE_HOME'] === undefined ? { GOCACHE: join(dir, 'go-cache') } : {}),
    },
    encoding: 'utf8',
  });
  if (build.error !== undefined || build.status !== 0) {
    throw new Error(`building bench/${program} failed (Debian's golang-go: scripts/setup-bench.sh): ${build.error?.message ?? ''}${build.stderr ?? ''}`);
  }
  return binary;
}

/** The Go peer, built into the run's directory and started. */
export async function startGoReverseProxy(upstream: Upstream, tls: Tls, dir: string): Promise<Target> {
  const binary = buildGoProgram('go-reverseproxy', dir);
  const port = await freePort();
  const { child } = await startChild('go-reverseproxy', binary, [
    String(port),
    upstream.origin,
    tls.caFile,
    tls.certFile,
    tls.keyFile,
    GO_PEER.token,
    GO_PEER.user,
    GO_PEER.group,
    GO_PEER.upstreamToken,
  ]);
  return { name: 'go-reverseproxy', kind: 'go', origin: `https://127.0.0.1:${port}`, headers: { authorization: `Bearer ${GO_PEER.token}` }, pid: child.pid, stop: () => child.stop() };
}

/**
 * The native-core prototype (bench/native-core, BENCHMARKS.md): the Go serving core, which
 * starts kubegate's decider (compiled like kubegate, nativeCoreDeciderEntry, not run under
 * tsx) as its child, so that the target's process tree — memory and CPU — holds both. The
 * decider sets up its store like the kubegate target (a `bench` cluster, a member user) and
 * names the user's token in its ready line. `cluster`: another API server than the bench's
 * upstream (tests: the fake kube-apiserver), its CA file and the proxy's credential there.
 * `decisionCache`: variant 2, the core reuses a decision for an identical head (row
 * `native-core-cached`).
 */
export async function startNativeCore(upstream: Pick<Upstream, 'origin'>, tls: Tls, dir: string, options: NativeCoreOptions = {}): Promise<Target> {
  const { cluster = { caFile: tls.caFile, token: GO_PEER.upstreamToken }, decisionCache = false } = options;
  const name = decisionCache ? 'native-core-cached' : 'native-core';
  const binary = buildGoProgram('native-core', dir);
  const home = join(dir, `${name}-data`);
  mkdirSync(home, { recursive: true });
  const socket = join(home, 'decider.sock');
  const auditFile = join(home, 'audit.log');
  const port = await freePort();
  const decider = [process.execPath, nativeCoreDeciderEntry(), socket, home, upstream.origin, cluster.caFile, cluster.token, auditFile];
  const env = { ...process.env, NATIVE_CORE_DECISION_CACHE: decisionCache ? '1' : '0' };
  const { child, readyLine } = await startChild(name, binary, [String(port), tls.certFile, tls.keyFile, socket, ...decider], { cwd: REPO, env });
  const ready = JSON.parse(readyLine) as { decider: { token: string; tokenName: string } };
  return {
    name,
    kind: 'native-core',
    origin: `https://127.0.0.1:${port}`,
    headers: { authorization: `Bearer ${ready.decider.token}` },
    pid: child.pid,
    nativeCore: { tokenName: ready.decider.tokenName, auditFile, revoke: () => child.send(`revoke ${ready.decider.tokenName}`) },
    stop: () => child.stop(),
  };
}

export async function startNginx(upstream: Upstream, tls: Tls, dir: string): Promise<Target> {
  const port = await freePort();
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'temp'), { recursive: true });
  const upstreamPort = new URL(upstream.origin).port;
  const config = `
${process.getuid?.() === 0 ? 'user root root;' : ''}
worker_processes auto;
worker_rlimit_nofile 20000;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${prefix}/temp/body;
  proxy_temp_path ${prefix}/temp/proxy;
  fastcgi_temp_path ${prefix}/temp/fastcgi;
  uwsgi_temp_path ${prefix}/temp/uwsgi;
  scgi_temp_path ${prefix}/temp/scgi;
  upstream kube { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    location / {
      proxy_pass https://kube;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_ssl_trusted_certificate ${tls.caFile};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
      proxy_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 4 64k;
      proxy_busy_buffers_size 128k;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`;
  const file = join(prefix, 'nginx.conf');
  writeFileSync(file, config);
  const { child } = await startChild('nginx', '/usr/sbin/nginx', ['-p', prefix, '-c', file], { ready: 'at-once' });
  const origin = `https://127.0.0.1:${port}`;
  await waitForHttps(`${origin}${CLUSTER_PATH}/api/v1/namespaces/default/pods`, tls.caPem, child);
  return { name: 'nginx', kind: 'nginx', origin, headers: {}, pid: child.pid, stop: () => child.stop() };
}

/** Polls until the URL answers 200 (bounded: 30 s). */
export async function waitForHttps(url: string, caPem: string, child: Child, headers: Record<string, string> = {}): Promise<void> {
  const agent = new https.Agent({ ca: caPem, keepAlive: false });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await fetchText(url, agent, 'GET', headers);
      return;
    } catch (error) {
      if (Date.now() > deadline || child.process.exitCode !== null) {
        throw new Error(`${child.name} does not answer ${url}: ${String(error)} ${child.stderrTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const ADMIN_PASSWORD = 'bench-Admin-pass-1';
const USER_PASSWORD = 'bench-User-pass-1';

export interface KubegateOptions {
  readonly workers: number;
  /** Run kubegate under --cpu-prof (one .cpuprofile per process, written at stop). */
  readonly cpuProfileDir?: string | undefined;
  /** With `via: 'agent'`: run the `kubegate agent` process under --cpu-prof too, into this directory. */
  readonly agentCpuProfileDir?: string | undefined;
  /** 'agent': the cluster is agent-mode, and a real `kubegate agent` process holds the tunnel. */
  readonly via?: 'direct' | 'agent';
  /** The source tree to run (default this one): paired runs compare two trees. */
  readonly repo?: string;
  /** The row's name (default kubegate, kubegate-wN or kubegate-agent). */
  readonly name?: string;
  /** Options for node itself, before the entry point (V8 flags such as `--single-threaded-gc`; paired.ts `--node-args`). */
  readonly nodeArgs?: readonly string[] | undefined;
}

/**
 * kubegate proxy as a real process (`kubegate proxy --config …`), set up through its REST API.
 * With `via: 'agent'` every request reaches the upstream through the tunnel of a real
 * `kubegate agent` process (the `kubegate-agent` row).
 */
export async function startKubegate(upstream: Upstream, tls: Tls, dir: string, options: KubegateOptions): Promise<Target> {
  const { workers, cpuProfileDir, via = 'direct', repo = REPO } = options;
  const name = options.name ?? (via === 'agent' ? 'kubegate-agent' : workers > 1 ? `kubegate-w${workers}` : 'kubegate');
  const port = await freePort();
  const metricsPort = await freePort();
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  const auditFile = join(home, 'audit.log');
  const configFile = join(home, 'kubegate.yaml');
  writeFileSync(
    configFile,
    [
      `listen: 127.0.0.1:${port}`,
      `dataDir: ${join(home, 'data')}`,
      'tls:',
      `  certFile: ${tls.certFile}`,
      `  keyFile: ${tls.keyFile}`,
      '  sans: ["127.0.0.1", "localhost"]',
      'audit:',
      '  enabled: true',
      `  file: ${auditFile}`,
      'log:',
      '  level: info',
      'metrics:',
      `  listen: 127.0.0.1:${metricsPort}`,
      `workers: ${workers}`,
      '',
    ].join('\n'),
  );
  const readyMessage = workers > 1 ? '"msg":"kubegate proxy workers are serving"' : '"msg":"kubegate proxy is serving"';
  const profile = cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir];
  // The node flags the tree ships with, if any (its `npm start`); `nodeArgs` come after and win.
  const shipped = startScriptNodeFlags(repo);
  const { child } = await startChild(via === 'agent' ? `${name}-proxy` : name, process.execPath, [...profile, ...shipped, ...(options.nodeArgs ?? []), kubegateEntry(repo), 'proxy', '--config', configFile], {
    cwd: repo,
    env: { ...process.env, KUBEGATE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD, KUBEGATE_LOG_SLOW_REQUEST_MS: String(SLOW_REQUEST_MS) },
    ready: (line) => line.includes(readyMessage),
  });
  const slowRequests = createSlowRequestLog();
  child.onLine(slowRequests.onLine);
  const origin = `https://127.0.0.1:${port}`;
  let agent: Child | undefined;
  try {
    const api = createApiClient(origin, tls.caPem);
    const adminToken = await api.login('admin', ADMIN_PASSWORD);
    const cluster = await api.request('POST', '/v1/clusters', {
      token: adminToken,
      body:
        via === 'agent'
          ? { id: 'bench', mode: 'agent' }
          : { id: 'bench', server: upstream.origin, caData: Buffer.from(tls.caPem).toString('base64'), token: 'bench-upstream-credential' },
    });
    if (cluster.status !== 201) throw new Error(`creating the cluster answered ${cluster.status}: ${cluster.text}`);
    if (via === 'agent') agent = await startAgent(repo, origin, upstream, tls, home, cluster.json.import.url as string, options.agentCpuProfileDir);
    const user = await api.request('POST', '/v1/users', { token: adminToken, body: { username: 'bench', password: USER_PASSWORD } });
    if (user.status !== 201) throw new Error(`creating the user answered ${user.status}: ${user.text}`);
    const member = await api.request('POST', '/v1/clusters/bench/members', {
      token: adminToken,
      body: { kind: 'User', name: user.json.id, role: 'member' },
    });
    if (member.status !== 201) throw new Error(`adding the member answered ${member.status}: ${member.text}`);
    const userToken = await api.login('bench', USER_PASSWORD);
    const headers = { authorization: `Bearer ${userToken}` };
    await waitForHttps(`${origin}${CLUSTER_PATH}/api/v1/namespaces/default/pods`, tls.caPem, child, headers);
    return {
      name,
      kind: 'kubegate',
      origin,
      headers,
      pid: child.pid,
      kubegate: { api, adminToken, userToken, workers, auditFile, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, slowRequests, agentPid: agent?.pid },
      stop: async () => {
        await agent?.stop();
        await child.stop();
      },
    };
  } catch (error) {
    await agent?.stop();
    await child.stop();
    throw error;
  }
}

/** `kubegate agent` for the bench cluster: registers with the import's token and dials the proxy. */
async function startAgent(repo: string, proxyOrigin: string, upstream: Upstream, tls: Tls, home: string, importUrl: string, cpuProfileDir: string | undefined): Promise<Child> {
  const credentialDir = join(home, 'agent');
  mkdirSync(credentialDir, { recursive: true, mode: 0o700 });
  const registration = new URL(importUrl).pathname.replace(/^\/v1\/import\//, '').replace(/\.yaml$/, '');
  writeFileSync(join(credentialDir, 'registration-token'), registration, { mode: 0o600 });
  writeFileSync(join(home, 'api-token'), 'bench-upstream-credential', { mode: 0o600 });
  const { child } = await startChild(
    'kubegate-agent',
    process.execPath,
    [
      ...(cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir]),
      kubegateEntry(repo),
      'agent',
      '--proxy-url',
      proxyOrigin,
      '--proxy-ca-file',
      tls.caFile,
      '--cluster',
      'bench',
      '--agent-id',
      'bench-agent',
      '--credential-dir',
      credentialDir,
      '--api-server',
      upstream.origin,
      '--api-ca-file',
      tls.caFile,
      '--api-token-file',
      join(home, 'api-token'),
      '--api-server-name',
      'localhost',
      '--health-listen',
      '127.0.0.1:0',
      '--metrics-listen',
      'none',
    ],
    { cwd: repo, ready: (line) => line.includes('"msg":"tunnel to the proxy is up"') },
  );
  return child;
}

/** A new API token of the benchmark user (POST /v1/tokens). */
export async function createUserToken(handle: KubegateHandle): Promise<{ name: string; token: string }> {
  const response = await handle.api.request('POST', '/v1/tokens', { token: handle.userToken, body: { description: 'bench' } });
  if (response.status !== 201) throw new Error(`POST /v1/tokens answered ${response.status}: ${response.text}`);
  return { name: response.json.name as string, token: response.json.token as string };
}
