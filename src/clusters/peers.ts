/**
 * Peer links: how a proxy replica reaches an agent whose tunnel another replica holds.
 *
 * Design note. An agent's tunnel lands on one replica; kubectl may reach any. Rather than
 * making every agent dial every replica (replicas are rarely addressable from downstream
 * networks: agents see one load-balanced URL), a replica without a local tunnel forwards the
 * *connection*: it looks up who holds one in the store (tunnel-presence.ts), asks that peer
 * for the agent's hello once (API server host, CA, service account token — kept in memory
 * only), and then opens each upstream connection as an upgraded HTTPS request to the peer,
 * which splices it onto a stream of its local tunnel. TLS to the API server runs inside, end
 * to end, so the peer relays ciphertext; admission, impersonation and audit stay on the
 * replica kubectl reached.
 *
 * Peers authenticate each other with an HMAC of the shared secret key (HKDF-derived, never
 * the key itself): the request carries `Kubegate-Peer: <replica>.<unix time>.<nonce>.<mac>`
 * over method, path, time and nonce (±60 s), and the answer proves knowledge of the same
 * key with `Kubegate-Peer-Proof` over the nonce and the answer's body, so neither side
 * trusts a mere TLS certificate. Peer TLS verifies the chain against the proxy's CA (or the
 * system roots for an operator certificate) but not the host name: replicas are addressed
 * by pod IP. A peer's own dial only ever uses its local tunnels (never another peer), so
 * links cannot loop.
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { KubegateError } from '../errors.js';
import { writeStatusToSocket } from '../kube/status.js';
import type { Logger } from '../log.js';
import type { Store, TunnelRecord } from '../store/store.js';
import { agentHelloSchema, type AgentHello } from '../tunnel/wire.js';
import type { RemoteTunnels, TunnelHub } from './tunnels.js';

export const PEER_PATH_PREFIX = '/v1/tunnel/peers/';
export const PEER_UPGRADE = 'kubegate-peer/1';
const PEER_HEADER = 'kubegate-peer';
const PROOF_HEADER = 'kubegate-peer-proof';
const MAX_SKEW_MS = 60_000;
const HELLO_MAX_AGE_MS = 60_000;
const REFRESH_MS = 10_000;
const MAX_HELLO_BYTES = 512 * 1024;
const CLUSTER_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The HMAC key of peer links, derived from the shared secret key. */
export function derivePeerKey(secretKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey, Buffer.from('kubegate'), Buffer.from('kubegate peer links v1'), 32));
}

export interface PeerLinksOptions {
  readonly store: Pick<Store, 'listTunnels' | 'subscribe'>;
  /** Local tunnels only: what this replica serves to its peers. */
  readonly hub: Pick<TunnelHub, 'isLocal' | 'credentials' | 'dialLocal'>;
  readonly replicaId: string;
  readonly key: Buffer;
  /** PEM CA that signed the replicas' serving certificates; undefined → system roots. */
  readonly caPem: string | undefined;
  readonly logger: Logger;
  /** Limit for a peer's answer. Default 5000. */
  readonly timeoutMs?: number;
}

export interface PeerLinks extends RemoteTunnels {
  /** True for the paths peer links use (request or upgrade). */
  matches(url: string): boolean;
  /** `GET /v1/tunnel/peers/<cluster>/hello`. */
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  /** `GET /v1/tunnel/peers/<cluster>` with `Upgrade: kubegate-peer/1`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

interface CachedHello {
  readonly hello: AgentHello;
  readonly fetchedAt: number;
  readonly peerUrl: string;
}

export function createPeerLinks(options: PeerLinksOptions): PeerLinks {
  const { key, replicaId, logger } = options;
  const timeoutMs = options.timeoutMs ?? 5000;
  const agent = new https.Agent({ keepAlive: true, ...(options.caPem === undefined ? {} : { ca: options.caPem }), checkServerIdentity: () => undefined });
  const upgradeAgent = new https.Agent({ keepAlive: false, ...(options.caPem === undefined ? {} : { ca: options.caPem }), checkServerIdentity: () => undefined });
  let remote = new Map<string, TunnelRecord[]>();
  const hellos = new Map<string, CachedHello>();
  const fetching = new Map<string, Promise<void>>();
  const cursor = new Map<string, number>();
  let closed = false;

  // --- where the other replicas' tunnels are ------------------------------------------------

  async function reload(): Promise<void> {
    const rows = await options.store.listTunnels();
    const next = new Map<string, TunnelRecord[]>();
    for (const row of rows) {
      if (row.replicaId === replicaId) continue;
      next.set(row.clusterId, [...(next.get(row.clusterId) ?? []), row]);
    }
    remote = next;
    for (const clusterId of hellos.keys()) if (!next.has(clusterId)) hellos.delete(clusterId);
    for (const clusterId of next.keys()) if (!options.hub.isLocal(clusterId)) void fetchHello(clusterId);
  }
  const reloadQuietly = (): void => {
    reload().catch((error: unknown) => logger.warn({ err: error }, 'reading tunnel locations failed'));
  };
  const unsubscribe = options.store.subscribe((change) => {
    if (change.kind === 'tunnel' || change.kind === 'resync') reloadQuietly();
  });
  const timer = setInterval(reloadQuietly, REFRESH_MS);
  timer.unref();
  reloadQuietly();

  function peersOf(clusterId: string): TunnelRecord[] {
    return remote.get(clusterId) ?? [];
  }

  function pick(clusterId: string): TunnelRecord | undefined {
    const peers = peersOf(clusterId);
    if (peers.length === 0) return undefined;
    const index = (cursor.get(clusterId) ?? 0) % peers.length;
    cursor.set(clusterId, index + 1);
    return peers[index];
  }

  function fetchHello(clusterId: string): Promise<void> {
    const running = fetching.get(clusterId);
    if (running !== undefined) return running;
    const peer = pick(clusterId);
    if (peer === undefined) return Promise.resolve();
    const promise = requestHello(peer)
      .then((hello) => {
        if (!closed) hellos.set(clusterId, { hello, fetchedAt: Date.now(), peerUrl: peer.peerUrl });
      })
      .catch((error: unknown) => logger.warn({ err: error, cluster: clusterId, peer: peer.replicaId }, "fetching an agent's hello from a peer failed"))
      .finally(() => fetching.delete(clusterId));
    fetching.set(clusterId, promise);
    return promise;
  }

  // --- asking a peer ----------------------------------------------------------------------

  function signedHeaders(method: string, path: string): { headers: Record<string, string>; nonce: string } {
    const nonce = randomBytes(16).toString('base64url');
    const time = String(Math.floor(Date.now() / 1000));
    const mac = macOf(key, ['request', method, path, time, nonce, replicaId]);
    return { headers: { 'Kubegate-Peer': `${replicaId}.${time}.${nonce}.${mac}` }, nonce };
  }

  function requestHello(peer: TunnelRecord): Promise<AgentHello> {
    const url = new URL(`${PEER_PATH_PREFIX}${peer.clusterId}/hello`, peer.peerUrl);
    const { headers, nonce } = signedHeaders('GET', url.pathname);
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method: 'GET', agent, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_HELLO_BYTES) req.destroy(new Error('the peer answer is too large'));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (res.statusCode !== 200) return reject(new KubegateError('CLUSTER_DISCONNECTED', `the peer answered HTTP ${res.statusCode ?? 0}`));
          if (!proofMatches(res.headers[PROOF_HEADER], nonce, body)) return reject(new KubegateError('CLUSTER_DISCONNECTED', 'the peer could not prove it shares the secret key'));
          const parsed = agentHelloSchema.safeParse(JSON.parse(body.toString('utf8')));
          if (!parsed.success) return reject(new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the peer sent a malformed hello'));
          resolve(parsed.data);
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('the peer did not answer in time')));
      req.on('error', reject);
      req.end();
    });
  }

  function proofMatches(header: string | string[] | undefined, nonce: string, body: Buffer): boolean {
    if (typeof header !== 'string') return false;
    return equalText(header, macOf(key, ['answer', nonce, sha256(body)]));
  }

  function dial(clusterId: string): Promise<Duplex> {
    const peer = pick(clusterId);
    if (peer === undefined) return Promise.reject(new KubegateError('CLUSTER_DISCONNECTED'));
    const url = new URL(`${PEER_PATH_PREFIX}${clusterId}`, peer.peerUrl);
    const { headers, nonce } = signedHeaders('GET', url.pathname);
    return new Promise((resolve, reject) => {
      const req = https.request(url, {
        method: 'GET',
        agent: upgradeAgent,
        timeout: timeoutMs,
        headers: { ...headers, Connection: 'Upgrade', Upgrade: PEER_UPGRADE },
      });
      req.on('timeout', () => req.destroy(new KubegateError('UPSTREAM_TIMEOUT', 'the peer holding the tunnel did not answer in time')));
      req.on('error', (error) => reject(new KubegateError('CLUSTER_DISCONNECTED', 'the peer holding the tunnel cannot be reached', { cause: error })));
      req.on('response', (res) => {
        res.resume();
        reject(new KubegateError('CLUSTER_DISCONNECTED', `the peer holding the tunnel answered HTTP ${res.statusCode ?? 0}`));
      });
      req.on('upgrade', (res, socket: Duplex, head: Buffer) => {
        if (!proofMatches(res.headers[PROOF_HEADER], nonce, Buffer.alloc(0))) {
          socket.destroy();
          reject(new KubegateError('CLUSTER_DISCONNECTED', 'the peer could not prove it shares the secret key'));
          return;
        }
        req.setTimeout(0);
        (socket as Duplex & { setTimeout?: (ms: number) => void }).setTimeout?.(0);
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.end();
    });
  }

  // --- answering a peer ---------------------------------------------------------------------

  /** The cluster a valid, signed peer request names; undefined (after answering) otherwise. */
  function authenticated(req: IncomingMessage, suffix: '' | '/hello'): { clusterId: string; nonce: string } | undefined {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const clusterId = path.slice(PEER_PATH_PREFIX.length, path.length - suffix.length);
    if (!path.endsWith(suffix) || !CLUSTER_ID.test(clusterId)) return undefined;
    const header = req.headers[PEER_HEADER];
    if (typeof header !== 'string') return undefined;
    const [peer, time, nonce, mac] = header.split('.');
    if (peer === undefined || time === undefined || nonce === undefined || mac === undefined || nonce.length > 64 || peer.length > 128) return undefined;
    const seconds = Number(time);
    if (!Number.isInteger(seconds) || Math.abs(seconds * 1000 - Date.now()) > MAX_SKEW_MS) return undefined;
    if (!equalText(mac, macOf(key, ['request', req.method ?? '', path, time, nonce, peer]))) return undefined;
    return { clusterId, nonce };
  }

  return {
    credentials(clusterId) {
      const cached = hellos.get(clusterId);
      if (peersOf(clusterId).length === 0) return undefined;
      if (cached === undefined || Date.now() - cached.fetchedAt > HELLO_MAX_AGE_MS) void fetchHello(clusterId);
      return cached?.hello;
    },
    dial,
    matches: (url) => url.startsWith(PEER_PATH_PREFIX),
    handleRequest(req, res) {
      const auth = req.method === 'GET' ? authenticated(req, '/hello') : undefined;
      if (auth === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      const hello = options.hub.isLocal(auth.clusterId) ? options.hub.credentials(auth.clusterId) : undefined;
      if (hello === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no local tunnel\n');
        return;
      }
      const body = Buffer.from(JSON.stringify(hello), 'utf8');
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', [PROOF_HEADER]: macOf(key, ['answer', auth.nonce, sha256(body)]) });
      res.end(body);
    },
    handleUpgrade(req, socket, head) {
      socket.on('error', () => undefined);
      const auth = req.method === 'GET' && String(req.headers.upgrade).toLowerCase() === PEER_UPGRADE ? authenticated(req, '') : undefined;
      if (auth === undefined) {
        writeStatusToSocket(socket, new KubegateError('NOT_FOUND'));
        return;
      }
      let stream: Duplex;
      try {
        stream = options.hub.dialLocal(auth.clusterId);
      } catch (error) {
        writeStatusToSocket(socket, error instanceof KubegateError ? error : new KubegateError('CLUSTER_DISCONNECTED'));
        return;
      }
      stream.on('error', () => socket.destroy());
      const proof = macOf(key, ['answer', auth.nonce, sha256(Buffer.alloc(0))]);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${PEER_UPGRADE}\r\nKubegate-Peer-Proof: ${proof}\r\n\r\n`);
      if (head.length > 0) stream.write(head);
      stream.pipe(socket);
      socket.pipe(stream);
      socket.once('close', () => stream.destroy());
      stream.once('close', () => socket.destroy());
    },
    close() {
      closed = true;
      unsubscribe();
      clearInterval(timer);
      agent.destroy();
      upgradeAgent.destroy();
    },
  };
}

function macOf(key: Buffer, parts: readonly string[]): string {
  return createHmac('sha256', key).update(parts.join('\n')).digest('base64url');
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('base64url');
}

function equalText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
