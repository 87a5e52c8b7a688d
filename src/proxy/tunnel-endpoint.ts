/**
 * Where agents dial in: `GET /v1/tunnel` with `Upgrade: kubegate-tunnel/1`.
 *
 * Design note (fail closed). Before anything is switched, the request must be a well-formed
 * tunnel request and carry an agent credential (`Authorization: Bearer a-…:…`) that is
 * known, of kind `agent`, unexpired and whose hash matches (constant-time), issued for the
 * very cluster the agent names in `Kubegate-Cluster`, and that cluster must exist in agent
 * mode. A credential of cluster B can therefore never open a tunnel for cluster A, and a
 * user's token, a registration token or a credential of a deleted cluster opens nothing.
 * Every refusal is a Kubernetes Status on the raw socket (401/409/400, 503 while the store
 * is unreachable), counted by reason in `kubegate_tunnel_refused_total` and logged without
 * the credential. Only then is the 101 sent and the tunnel handed to the hub; a session that
 * fails its handshake (no hello, a malformed one, an HTTP/2 protocol error) is dropped and
 * counted as `handshake`; a tunnel that ends after its hello is counted in
 * `kubegate_tunnel_closes_total` by reason, a protocol error also logged as a warning.
 * The credential's use is recorded in the background, never awaited.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TunnelHub } from '../clusters/tunnels.js';
import { KubegateError, isKubegateError } from '../errors.js';
import { writeStatusToSocket } from '../kube/status.js';
import type { Logger } from '../log.js';
import type { TunnelMetrics, TunnelRefusalReason } from '../metrics.js';
import type { Cluster, Store } from '../store/store.js';
import { isExpired } from '../tokens/expiry.js';
import { tryParseToken } from '../tokens/format.js';
import { verifySecret } from '../tokens/hash.js';
import { openTunnelSession } from '../tunnel/proxy-end.js';
import { TUNNEL_PATH, TUNNEL_UPGRADE } from '../tunnel/wire.js';

export interface TunnelEndpointDeps {
  readonly store: Pick<Store, 'getAgentSecret' | 'touchAgentSecret'>;
  readonly getCluster: (clusterId: string) => Cluster | undefined;
  readonly hub: Pick<TunnelHub, 'attach'>;
  readonly logger: Logger;
  readonly metrics?: TunnelMetrics;
  readonly now?: () => Date;
  /** How long an agent has to send its hello after the 101. Default 10000. */
  readonly helloTimeoutMs?: number;
}

export interface TunnelEndpoint {
  /** True for the request target agents dial (query ignored). */
  matches(url: string): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

const CLUSTER_HEADER = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const BEARER = /^bearer +(\S+)$/i;

class Refusal extends Error {
  constructor(
    readonly reason: TunnelRefusalReason,
    readonly error: KubegateError,
  ) {
    super(error.message);
  }
}

export function createTunnelEndpoint(deps: TunnelEndpointDeps): TunnelEndpoint {
  const now = deps.now ?? (() => new Date());

  async function admit(req: IncomingMessage): Promise<{ clusterId: string; secretName: string }> {
    const upgrade = req.headers.upgrade;
    if (req.method !== 'GET' || typeof upgrade !== 'string' || upgrade.toLowerCase() !== TUNNEL_UPGRADE) {
      throw new Refusal('malformed', new KubegateError('TUNNEL_PROTOCOL_ERROR', `a tunnel request is GET with Upgrade: ${TUNNEL_UPGRADE}`));
    }
    const clusterId = req.headers['kubegate-cluster'];
    if (typeof clusterId !== 'string' || !CLUSTER_HEADER.test(clusterId)) {
      throw new Refusal('malformed', new KubegateError('TUNNEL_PROTOCOL_ERROR', 'the Kubegate-Cluster header must name the cluster (a DNS label)'));
    }
    const match = BEARER.exec(req.headers.authorization ?? '');
    const parsed = match?.[1] === undefined ? undefined : tryParseToken(match[1]);
    if (parsed === undefined) throw new Refusal('credential', new KubegateError('AGENT_CREDENTIAL_INVALID'));
    let secret;
    try {
      secret = await deps.store.getAgentSecret(parsed.name);
    } catch (cause) {
      throw new Refusal('unavailable', isKubegateError(cause) ? cause : new KubegateError('STORE_UNAVAILABLE', undefined, { cause }));
    }
    if (secret === undefined || secret.kind !== 'agent' || isExpired(secret.expiresAt, now()) || !(await verifySecret(parsed.secret, secret.secretHash))) {
      throw new Refusal('credential', new KubegateError('AGENT_CREDENTIAL_INVALID'));
    }
    if (secret.clusterId !== clusterId) throw new Refusal('wrong_cluster', new KubegateError('AGENT_CREDENTIAL_INVALID'));
    const cluster = deps.getCluster(clusterId);
    if (cluster === undefined) throw new Refusal('credential', new KubegateError('AGENT_CREDENTIAL_INVALID'));
    if (cluster.mode !== 'agent') {
      throw new Refusal('not_agent_cluster', new KubegateError('CLUSTER_MODE_MISMATCH', 'the cluster is registered for direct access, not for an agent'));
    }
    return { clusterId, secretName: secret.name };
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreError);
    admit(req).then(
      async ({ clusterId, secretName }) => {
        if (socket.destroyed) return;
        let session;
        try {
          session = await openTunnelSession(socket, head, { ...(deps.helloTimeoutMs === undefined ? {} : { helloTimeoutMs: deps.helloTimeoutMs }) });
        } catch (error) {
          deps.metrics?.refused.inc({ reason: 'handshake' });
          deps.logger.warn({ cluster: clusterId, code: isKubegateError(error) ? error.code : undefined, err: error }, 'agent tunnel handshake failed');
          socket.destroy();
          return;
        }
        deps.hub.attach(clusterId, session, secretName);
        deps.metrics?.connects.inc({ cluster: clusterId });
        deps.store.touchAgentSecret(secretName, now()).catch(() => undefined);
        deps.logger.info(
          { cluster: clusterId, agent: session.hello.agentId, agentVersion: session.hello.agentVersion, kubernetesVersion: session.hello.kubernetesVersion },
          'agent tunnel connected',
        );
        void session.closed.then(({ reason, error }) => {
          // The proxy's own stop is not counted: no scrape of this process would see it.
          if (reason !== 'shutdown') deps.metrics?.closes.inc({ cluster: clusterId, reason });
          const fields = { cluster: clusterId, agent: session.hello.agentId, reason, err: error };
          if (isKubegateError(error, 'TUNNEL_PROTOCOL_ERROR')) deps.logger.warn({ ...fields, code: error.code }, 'agent tunnel closed on a protocol error');
          else deps.logger.info(fields, 'agent tunnel closed');
        });
      },
      (error: unknown) => {
        const refusal = error instanceof Refusal ? error : new Refusal('unavailable', new KubegateError('INTERNAL', undefined, { cause: error }));
        deps.metrics?.refused.inc({ reason: refusal.reason });
        deps.logger.warn(
          { reason: refusal.reason, code: refusal.error.code, cluster: typeof req.headers['kubegate-cluster'] === 'string' ? req.headers['kubegate-cluster'].slice(0, 63) : undefined, remote: req.socket.remoteAddress },
          'agent tunnel refused',
        );
        writeStatusToSocket(socket, refusal.error);
      },
    );
  }

  return {
    matches(url) {
      const query = url.indexOf('?');
      return (query === -1 ? url : url.slice(0, query)) === TUNNEL_PATH;
    },
    handleUpgrade,
  };
}

function ignoreError(): void {}
