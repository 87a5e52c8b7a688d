/**
 * PROTOTYPE, NOT THE PRODUCT (issue #12; BENCHMARKS.md, "a native serving core, prototyped").
 *
 * The deciding half of bench/native-core: kubegate's TypeScript, called once per request head
 * by the Go serving core (main.go, whose header describes the protocol) over a Unix socket.
 * Everything that decides is kubegate's own, assembled as `kubegate proxy` assembles it
 * (src/cmd/proxy.ts): a real SQLite store, the cluster directory, the upstream pool (for each
 * cluster's Host, path prefix and credential header), the token chain with its cache,
 * `admit()` (path, header sanitizing, origin, token, membership, role, identity headers), the
 * Status bodies (kube/status.ts), upstream-culprit.ts for the answers kubegate replaces, the
 * audit trail and the proxy's metrics. Store changes invalidate the token cache as in the
 * proxy, and a deleted token's open long-running exchanges are cut (an `X` frame).
 *
 * Set-up (like the bench's kubegate target, through the store instead of the REST API): one
 * cluster `bench` at UPSTREAM_URL with UPSTREAM_TOKEN as the proxy's credential, one user who
 * is a member, one login token for that user — printed in the ready line for the load
 * generator. `revoke NAME` on standard input deletes token NAME through the store.
 *
 * Usage: node decider.js SOCKET DATA_DIR UPSTREAM_URL CA_FILE UPSTREAM_TOKEN AUDIT_FILE
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createTokenChain } from '../../src/auth/token-chain.js';
import { newUserId, type UserInfo } from '../../src/auth/user.js';
import { createClusterRegistry } from '../../src/clusters/registry.js';
import { createUpstreamPool } from '../../src/clusters/upstreams.js';
import { KubegateError, type ErrorCode } from '../../src/errors.js';
import { isDiscoveryRead, statusAnswer } from '../../src/kube/status.js';
import { createLogger } from '../../src/log.js';
import { createProxyMetrics } from '../../src/metrics.js';
import { admit, type Admission, type AdmissionDeps } from '../../src/proxy/admission.js';
import { issueToken } from '../../src/proxy/api/issue-token.js';
import { createAuditSink, forwardMetrics } from '../../src/proxy/audit-trail.js';
import { learn, type AdmissionFactsHolder, type AuditRecord } from '../../src/proxy/forward.js';
import { credentialRefusal, namingCluster, upstreamFailure } from '../../src/proxy/upstream-culprit.js';
import { openStore } from '../../src/store/open.js';
import { createSecretBox } from '../../src/store/secret-box.js';
import type { Cluster, ClusterRole } from '../../src/store/store.js';

const CLUSTER_ID = 'bench';
/** The token cache's success lifetime (the proxy's default `authCache.successTtl`): no decision is reused longer. */
const SUCCESS_TTL_MS = 10_000;
/** How long the facts of a reusable decision are kept for the audit of the exchanges it served. */
const DECISION_FACTS_MS = 10 * 60_000;
const MAX_AUDIT_PATH = 1024;
const NEWLINE = 0x0a;
const ANONYMOUS: UserInfo = Object.freeze({ name: '', uid: '', groups: Object.freeze([]), extra: Object.freeze({}) });

/** One exchange between its head and its end: what its audit record needs. */
class Exchange implements AdmissionFactsHolder {
  readonly time = Date.now();
  clusterId = '';
  path: string;
  user: UserInfo = ANONYMOUS;
  authenticated = false;
  tokenName = '';
  role: ClusterRole | null = null;
  impersonated: UserInfo | undefined;
  longRunning = false;
  via: 'direct' | 'agent' | null = null;
  code: ErrorCode | null = null;

  constructor(
    readonly method: string,
    url: string,
    readonly upgrade: boolean,
  ) {
    const queryStart = url.indexOf('?');
    this.path = (queryStart < 0 ? url : url.slice(0, queryStart)).slice(0, MAX_AUDIT_PATH);
  }

  /** A fresh exchange with the same facts: one served from a cached decision that kubegate must answer itself. */
  copy(): Exchange {
    return Object.assign(new Exchange(this.method, this.path, this.upgrade), { ...this, time: Date.now(), code: null });
  }

  /** `time`: when the exchange started (an exchange served from a cached decision is not this one). */
  record(status: number, bytesIn: number, bytesOut: number, durationMs: number, time: number = this.time): AuditRecord {
    const impersonated = this.impersonated;
    return {
      time,
      user: this.authenticated ? this.user.name : null,
      groups: this.user.groups,
      impersonated: impersonated === undefined ? null : { user: impersonated.name, uid: impersonated.uid, groups: impersonated.groups, extra: impersonated.extra },
      tokenName: this.authenticated ? this.tokenName : null,
      cluster: this.clusterId === '' ? null : this.clusterId,
      role: this.role,
      method: this.method,
      path: this.path,
      status,
      code: this.code,
      durationMs,
      bytesIn,
      bytesOut,
      upgrade: this.upgrade,
      longRunning: this.longRunning,
      via: this.via,
    };
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length !== 6) throw new TypeError('usage: decider SOCKET DATA_DIR UPSTREAM_URL CA_FILE UPSTREAM_TOKEN AUDIT_FILE');
  const [socketPath, dataDir, upstreamUrl, caFile, upstreamToken, auditFile] = args as [string, string, string, string, string, string];
  const logger = createLogger({ level: 'warn', name: 'native-core-decider', destination: pino.destination({ dest: 2, sync: false }) });

  const store = await openStore({ type: 'sqlite', path: join(dataDir, 'kubegate.db') }, createSecretBox(randomBytes(32)), { onError: (error) => logger.warn({ err: error }, 'store error') });
  const user = await store.createUser({ id: newUserId(), username: 'bench', displayName: 'bench', globalRole: 'user', enabled: true });
  await store.createCluster({ id: CLUSTER_ID, server: upstreamUrl, caPem: readFileSync(caFile, 'utf8'), credentials: { kind: 'token', token: upstreamToken } });
  await store.putMembership({ clusterId: CLUSTER_ID, subjectKind: 'User', subjectName: user.id, role: 'member' });
  const issued = await issueToken({ store, now: () => new Date() }, { userId: user.id, provider: 'local', kind: 'login', ttlSeconds: 86_400, maxTtlSeconds: 86_400 });

  // As `kubegate proxy` builds them with its default configuration (src/cmd/proxy.ts).
  const directory = await createClusterRegistry(store);
  const upstreams = createUpstreamPool();
  const tokenCache = createTokenChain({ lookups: store, successTtlMs: SUCCESS_TTL_MS, failureTtlMs: 5_000, maxEntries: 10_000 });
  const audit = createAuditSink({ enabled: true, file: auditFile });
  const metrics = forwardMetrics(createProxyMetrics(new Registry(), { authCache: () => tokenCache.stats() }), (clusterId) => directory.getCluster(clusterId) !== undefined);
  const deps: AdmissionDeps = { authenticator: tokenCache, getCluster: directory.getCluster, authorize: directory.roleOf, upstreams, allowedOrigins: [] };

  const exchanges = new Map<string, Exchange>();
  /** Decisions the core may reuse (variant 2), by the id of the exchange that made them, oldest first. */
  const decisions = new Map<string, { readonly facts: Exchange; readonly at: number }>();
  setInterval(() => {
    const horizon = Date.now() - DECISION_FACTS_MS;
    for (const [id, decision] of decisions) {
      if (decision.at > horizon) break;
      decisions.delete(id);
    }
  }, 30_000).unref();
  /** Each Cluster object (the directory hands out a new one after a reload) gets a key of its own. */
  const clusterKeys = new WeakMap<Cluster, string>();
  let clusterCount = 0;
  let core: Socket | undefined;

  const send = (frame: string): void => {
    core?.write(frame, 'latin1');
  };

  function answer(id: string, ex: Exchange, error: KubegateError, code: ErrorCode = error.code): void {
    ex.code = code;
    const reply = statusAnswer(error, isDiscoveryRead(ex.method, ex.path) ? 'discovery' : 'status');
    send(`R\0${id}\0${reply.status}\0${reply.contentType}\0${reply.body.toString('base64')}\n`);
  }

  /** The upstream's address and CA, once per Cluster object; undefined for what the prototype cannot reach. */
  function clusterKey(cluster: Cluster): string | undefined {
    let key = clusterKeys.get(cluster);
    if (key !== undefined) return key;
    if (cluster.mode !== 'direct' || cluster.credentials?.kind === 'clientCertificate') return undefined;
    key = `${cluster.id}.${++clusterCount}`;
    clusterKeys.set(cluster, key);
    const ca = cluster.caPem === null ? '' : Buffer.from(cluster.caPem).toString('base64');
    send(`C\0${key}\0${new URL(cluster.server).origin}\0${ca}\0${cluster.insecureSkipTlsVerify ? '1' : '0'}\n`);
    return key;
  }

  function settle(id: string, ex: Exchange, admission: Admission): void {
    learn(ex, admission);
    if (!admission.admitted) {
      answer(id, ex, namingCluster(admission.error, ex.clusterId), admission.code);
      return;
    }
    const cluster = deps.getCluster(admission.target.clusterId);
    const key = cluster === undefined ? undefined : clusterKey(cluster);
    if (key === undefined) {
      answer(id, ex, new KubegateError('UPSTREAM_UNREACHABLE', 'the native-core prototype reaches direct clusters with a bearer token only'));
      return;
    }
    const { upstream, target, headers, token } = admission;
    // Reusable for an identical head while the token cache would answer the same (variant 2); never a stream or an upgrade.
    let reusableMs = 0;
    if (!admission.longRunning && !ex.upgrade) {
      reusableMs = Math.max(0, Math.min(SUCCESS_TTL_MS, token.expiresAt === null ? Infinity : token.expiresAt.getTime() - Date.now()));
      if (reusableMs > 0) decisions.set(id, { facts: ex, at: Date.now() });
    }
    const flags = `${admission.longRunning ? '1' : '0'}\0${admission.hasBody ? '1' : '0'}\0${reusableMs}`;
    send(`A\0${id}\0${key}\0${upstream.pathPrefix}${target.path}${target.query}\0${flags}\0${headers.join('\0')}\n`);
  }

  function head(fields: string[]): void {
    const [, id = '', method = '', url = '', upgrade] = fields;
    const ex = new Exchange(method, url, upgrade === '1');
    exchanges.set(id, ex);
    metrics.requestStarted();
    const admission = admit({ method, url, rawHeaders: fields.slice(5), upgrade: ex.upgrade }, deps);
    if (!(admission instanceof Promise)) {
      settle(id, ex, admission);
      return;
    }
    admission.then(
      (result) => settle(id, ex, result),
      (error: unknown) => answer(id, ex, new KubegateError('INTERNAL', undefined, { cause: error })),
    );
  }

  /** An answer kubegate replaces, or a cluster that could not be reached: kubegate's Status instead. */
  function problem(fields: string[]): void {
    const [, id = '', upstreamStatus = '0', reason = '', reusedFrom = '0'] = fields;
    let ex = exchanges.get(id);
    if (ex === undefined) {
      // Served from a cached decision: from now on an exchange of its own, with a D frame.
      ex = decisions.get(reusedFrom)?.facts.copy();
      if (ex === undefined) {
        logger.warn({ reusedFrom }, 'a problem with an exchange the decider does not know');
        return;
      }
      exchanges.set(id, ex);
      metrics.requestStarted();
    }
    const status = Number(upstreamStatus);
    let error: KubegateError;
    if (status === 401) error = credentialRefusal(ex.clusterId, ex.via ?? 'direct', status) as KubegateError;
    else if (status >= 300 && status < 400) error = new KubegateError('UPSTREAM_REDIRECT_REFUSED');
    else if (reason === 'TIMEOUT') error = namingCluster(new KubegateError('UPSTREAM_TIMEOUT'), ex.clusterId);
    else error = upstreamFailure(ex.clusterId, Object.assign(new Error('upstream failure'), { code: reason }));
    if (error.status >= 500) logger.warn({ cluster: ex.clusterId, code: error.code, reason }, 'request failed upstream');
    answer(id, ex, error);
  }

  function done(fields: string[]): void {
    const [, id = '', status = '0', bytesIn = '0', bytesOut = '0', micros = '0'] = fields;
    const ex = exchanges.get(id);
    if (ex === undefined) return;
    exchanges.delete(id);
    const record = ex.record(Number(status), Number(bytesIn), Number(bytesOut), Number(micros) / 1000);
    try {
      audit.write(record);
      metrics.requestFinished(record);
    } catch (error) {
      logger.warn({ err: error }, 'audit or metrics hook failed');
    }
  }

  /** An exchange served from a cached decision ended: its audit line, from the deciding exchange's facts. */
  function doneReused(fields: string[]): void {
    const [, from = '', status = '0', bytesIn = '0', bytesOut = '0', micros = '0'] = fields;
    const facts = decisions.get(from)?.facts;
    if (facts === undefined) {
      logger.warn({ from }, 'an exchange served from a decision the decider no longer knows: not audited');
      return;
    }
    const durationMs = Number(micros) / 1000;
    const record = facts.record(Number(status), Number(bytesIn), Number(bytesOut), durationMs, Date.now() - durationMs);
    try {
      metrics.requestStarted();
      audit.write(record);
      metrics.requestFinished(record);
    } catch (error) {
      logger.warn({ err: error }, 'audit or metrics hook failed');
    }
  }

  function frame(line: string): void {
    const fields = line.split('\0');
    switch (fields[0]) {
      case 'Q':
        head(fields);
        break;
      case 'D':
        done(fields);
        break;
      case 'E':
        doneReused(fields);
        break;
      case 'P':
        problem(fields);
        break;
      default:
        logger.warn({ kind: fields[0] }, 'unknown frame from the serving core');
    }
  }

  // A deleted token: no cached answer, and its open long-running exchanges end (as in src/cmd/proxy.ts).
  store.subscribe((change) => {
    // Whatever an admission depends on changed: no cached decision of the core may be reused.
    if (['token', 'user', 'groups', 'membership', 'cluster', 'resync'].includes(change.kind)) send('F\n');
    if (change.kind !== 'token') return;
    tokenCache.invalidateToken(change.key);
    void store.getToken(change.key).then((token) => {
      if (token !== undefined) return;
      for (const [id, ex] of exchanges) if (ex.longRunning && ex.tokenName === change.key) send(`X\0${id}\n`);
    }, () => undefined);
  });
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, name] = line.trim().split(/\s+/);
    if (command === 'revoke' && name !== undefined) void store.deleteToken(name);
  });

  rmSync(socketPath, { force: true });
  const server = createServer((socket) => {
    core = socket;
    let rest: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      const data = rest === undefined ? chunk : Buffer.concat([rest, chunk]);
      socket.cork();
      let start = 0;
      for (let end = data.indexOf(NEWLINE); end >= 0; end = data.indexOf(NEWLINE, start)) {
        frame(data.toString('latin1', start, end));
        start = end + 1;
      }
      socket.uncork();
      rest = start < data.length ? data.subarray(start) : undefined;
    });
    socket.on('error', (error) => logger.warn({ err: error }, 'serving core connection failed'));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const stop = (): void => {
    audit.close();
    server.close();
    void store.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ ready: true, token: issued.token, tokenName: issued.stored.name })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`decider failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
