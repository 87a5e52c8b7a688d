/**
 * `kubegate agent`'s loop: get a credential, dial the proxy, serve the tunnel, and when it
 * ends — proxy restart, network cut, revoked credential — dial again, with exponential
 * backoff and full jitter so that a restarted proxy is not hit by every agent at once.
 *
 * Design note. Nothing here accepts a connection: the agent only dials out (to the proxy,
 * and, when the proxy opens a stream, to its own API server). The proxy's certificate is
 * verified against the CA the import manifest embedded (or the system roots). A refusal
 * from the proxy is logged with its error code and retried like any failure: an admin may
 * re-issue a credential into the Secret, and the agent picks it up at its next attempt.
 * The backoff starts again from the beginning once a tunnel has been up for a while.
 *
 * Rotation: when the proxy refuses the stored credential (an admin revoked it) and the
 * store also holds a registration token (the admin re-applied a fresh import), the agent
 * registers again with that token and replaces its credential.
 */
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { KubegateError, isKubegateError, type ErrorCode, errorCatalog } from '../errors.js';
import { createKubeClient, type KubeObject } from '../kube/client.js';
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import { serveTunnel, type AgentTunnel } from '../tunnel/agent-end.js';
import { TUNNEL_PATH, TUNNEL_UPGRADE, type AgentHello } from '../tunnel/wire.js';
import type { ApiServerTarget } from './api-server.js';
import type { CredentialStore } from './credentials.js';

export interface AgentOptions {
  /** `https://…` of the proxy, without trailing slash (a path prefix is kept). */
  readonly proxyUrl: string;
  /** PEM CA of the proxy; undefined → system roots. */
  readonly proxyCaPem: string | undefined;
  readonly clusterId: string;
  readonly agentId: string;
  readonly version: string;
  readonly apiServer: ApiServerTarget;
  readonly credentials: CredentialStore;
  readonly logger: Logger;
  /** First and largest wait between attempts. Defaults 1000 and 60000. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly metrics?: AgentMetrics;
  /** Limit for the dial and the registration request. Default 15000. */
  readonly requestTimeoutMs?: number;
}

export interface RunningAgent {
  /** True while a tunnel is up. */
  connected(): boolean;
  /** Resolves the next time a tunnel comes up. */
  whenConnected(): Promise<void>;
  stop(): Promise<void>;
}

/** A tunnel that lived this long resets the backoff. */
const STABLE_AFTER_MS = 30_000;
const MAX_ANSWER_BYTES = 64 * 1024;

export function startAgent(options: AgentOptions): RunningAgent {
  const { logger } = options;
  const initialMs = options.backoff?.initialMs ?? 1000;
  const maxMs = options.backoff?.maxMs ?? 60_000;
  const timeoutMs = options.requestTimeoutMs ?? 15_000;
  const kube = createKubeClient(options.apiServer.endpoint, { timeoutMs: 5000 });
  const proxy = new URL(options.proxyUrl);
  const basePath = proxy.pathname.replace(/\/+$/, '');
  const proxyAgent = new https.Agent({ keepAlive: false, ...(options.proxyCaPem === undefined ? {} : { ca: options.proxyCaPem }) });

  let stopped = false;
  let refusedCredential: string | undefined;
  let tunnel: AgentTunnel | undefined;
  let kubernetesVersion = '';
  let wake: (() => void) | undefined;
  let connectedWaiters: (() => void)[] = [];
  const stopWatching = options.apiServer.watch(() => tunnel?.helloChanged());

  function hello(): AgentHello {
    const { caPem, token } = options.apiServer.credentials();
    return {
      agentId: options.agentId,
      agentVersion: options.version,
      kubernetesVersion,
      apiServer: { host: options.apiServer.host, servername: options.apiServer.serverName, caPem },
      token,
    };
  }

  async function learnVersion(): Promise<void> {
    try {
      const version = await kube.get<KubeObject & { readonly gitVersion?: unknown }>('/version');
      if (typeof version?.gitVersion === 'string') kubernetesVersion = version.gitVersion.slice(0, 64);
    } catch (error) {
      logger.warn({ err: error }, "the agent cannot read its API server's version; check the API server settings and the service account");
    }
  }

  async function obtainCredential(): Promise<string> {
    const state = await options.credentials.read();
    // A credential the proxy refused (revoked) gives way to a registration token put in
    // after it: re-importing the cluster and revoking the old credential rotates it.
    if (state.credential !== undefined && !(state.credential === refusedCredential && state.registrationToken !== undefined)) return state.credential;
    if (state.registrationToken === undefined) {
      throw new KubegateError('AGENT_CREDENTIAL_INVALID', `no agent credential and no registration token in ${options.credentials.description}; re-import the cluster`);
    }
    try {
      const credential = await register(state.registrationToken);
      await options.credentials.saveCredential(credential);
      logger.info({ store: options.credentials.description }, 'registered with the proxy; the agent credential is stored');
      return credential;
    } catch (error) {
      if (!isKubegateError(error, 'REGISTRATION_TOKEN_INVALID')) throw error;
      // Another replica may have won the exchange: its credential is in the store by now.
      const again = await options.credentials.read();
      if (again.credential !== undefined) return again.credential;
      throw error;
    }
  }

  async function register(registrationToken: string): Promise<string> {
    const body = JSON.stringify({ clusterId: options.clusterId, agentId: options.agentId });
    const answer = await send('POST', '/v1/agent/register', registrationToken, body);
    if (answer.status !== 201) throw refusal(answer, 'the proxy refused the registration');
    const parsed = JSON.parse(answer.body) as { credential?: unknown };
    if (typeof parsed.credential !== 'string') throw new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the proxy answered the registration without a credential');
    return parsed.credential;
  }

  function send(method: string, path: string, bearer: string, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: proxy.hostname.startsWith('[') ? proxy.hostname.slice(1, -1) : proxy.hostname,
          port: proxy.port === '' ? 443 : Number(proxy.port),
          servername: proxy.hostname.startsWith('[') ? undefined : proxy.hostname,
          method,
          path: basePath + path,
          agent: proxyAgent,
          timeout: timeoutMs,
          headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          readBounded(res).then((text) => resolve({ status: res.statusCode ?? 0, body: text }), reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('the proxy did not answer in time')));
      req.on('error', reject);
      req.end(body);
    });
  }

  function dialProxy(credential: string): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: proxy.hostname.startsWith('[') ? proxy.hostname.slice(1, -1) : proxy.hostname,
        port: proxy.port === '' ? 443 : Number(proxy.port),
        servername: proxy.hostname.startsWith('[') ? undefined : proxy.hostname,
        method: 'GET',
        path: basePath + TUNNEL_PATH,
        agent: proxyAgent,
        timeout: timeoutMs,
        headers: {
          Connection: 'Upgrade',
          Upgrade: TUNNEL_UPGRADE,
          Authorization: `Bearer ${credential}`,
          'Kubegate-Cluster': options.clusterId,
          'Kubegate-Agent': options.agentId,
        },
      });
      req.on('timeout', () => req.destroy(new Error('the proxy did not answer the tunnel request in time')));
      req.on('error', reject);
      req.on('upgrade', (_res, socket: TLSSocket, head: Buffer) => {
        req.setTimeout(0);
        socket.setTimeout(0);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on('response', (res) => {
        readBounded(res).then(
          (text) => reject(refusal({ status: res.statusCode ?? 0, body: text }, 'the proxy refused the tunnel')),
          reject,
        );
      });
      req.end();
    });
  }

  async function connectOnce(): Promise<number> {
    const credential = await obtainCredential();
    await learnVersion();
    let socket: TLSSocket;
    try {
      socket = await dialProxy(credential);
    } catch (error) {
      if (isKubegateError(error, 'AGENT_CREDENTIAL_INVALID')) refusedCredential = credential;
      throw error;
    }
    const started = Date.now();
    const current = serveTunnel(socket, {
      dialApiServer: () => options.apiServer.dial(),
      hello,
      onFault: (message, cause) => logger.warn({ err: cause }, message),
    });
    tunnel = current;
    options.metrics?.connects.inc();
    logger.info({ proxy: options.proxyUrl, cluster: options.clusterId, agent: options.agentId }, 'tunnel to the proxy is up');
    for (const waiter of connectedWaiters) waiter();
    connectedWaiters = [];
    const reason = await current.closed;
    tunnel = undefined;
    if (reason !== 'stopped') options.metrics?.closes.inc({ reason });
    if (!stopped) logger.warn({ proxy: options.proxyUrl, reason }, 'tunnel to the proxy closed; dialling again');
    return Date.now() - started;
  }

  const loop = (async () => {
    let attempt = 0;
    while (!stopped) {
      try {
        const lived = await connectOnce();
        if (lived >= STABLE_AFTER_MS) attempt = 0;
      } catch (error) {
        if (stopped) break;
        options.metrics?.connectFailures.inc();
        logger.warn({ err: error, code: isKubegateError(error) ? error.code : undefined, attempt }, 'cannot open the tunnel to the proxy');
      }
      if (stopped) break;
      const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
      attempt++;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.round(Math.random() * ceiling));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  })();

  return {
    connected: () => tunnel !== undefined,
    whenConnected() {
      if (tunnel !== undefined) return Promise.resolve();
      return new Promise((resolve) => connectedWaiters.push(resolve));
    },
    async stop() {
      stopped = true;
      stopWatching();
      wake?.();
      tunnel?.close();
      await loop;
      proxyAgent.destroy();
    },
  };
}

/** A KubegateError from the proxy's answer: a REST `{error:{code,message}}` or a Kubernetes Status. */
function refusal(answer: { status: number; body: string }, what: string): KubegateError {
  let code: ErrorCode = 'CLUSTER_DISCONNECTED';
  let message = `${what}: HTTP ${answer.status}`;
  try {
    const parsed = JSON.parse(answer.body) as {
      error?: { code?: unknown; message?: unknown };
      kind?: unknown;
      message?: unknown;
      details?: { causes?: { reason?: unknown }[] };
    };
    const reported = parsed.error?.code ?? parsed.details?.causes?.[0]?.reason;
    const text = parsed.error?.message ?? (parsed.kind === 'Status' ? parsed.message : undefined);
    if (typeof reported === 'string' && reported in errorCatalog) code = reported as ErrorCode;
    if (typeof text === 'string') message = `${what}: ${text.slice(0, 300)}`;
  } catch {
    // not JSON: the status says enough
  }
  return new KubegateError(code, message);
}

function readBounded(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      if (text.length < MAX_ANSWER_BYTES) text += chunk;
    });
    stream.on('end', () => resolve(text.slice(0, MAX_ANSWER_BYTES)));
    stream.on('error', reject);
  });
}
