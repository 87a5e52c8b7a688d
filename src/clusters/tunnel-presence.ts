/**
 * Tunnel presence: which replica holds which agent's tunnel, written to the store so that
 * every replica can route to it (peers.ts) and `GET /v1/clusters/:id` shows every agent.
 *
 * Design note. Each replica writes only its own rows (keyed by its `replicaId`, new at
 * every start): a row when a tunnel comes, its removal when it goes, and a heartbeat every
 * `heartbeatMs` (which the store does not announce). A replica that dies without cleaning
 * up leaves rows whose heartbeat stops; any replica deletes rows older than `staleAfterMs`,
 * so a cluster whose last tunnel died with its replica shows `disconnected` within a few
 * seconds. Changes for one cluster are applied in order (one chain per cluster), and store
 * failures are logged and repaired by the next heartbeat.
 */
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { TunnelHub } from './tunnels.js';

export interface TunnelPresenceOptions {
  readonly store: Pick<Store, 'putTunnel' | 'deleteTunnel' | 'listTunnels' | 'deleteStaleTunnels'>;
  readonly hub: Pick<TunnelHub, 'agents' | 'subscribe' | 'stats'>;
  readonly replicaId: string;
  /** Where other replicas reach this one (read when a row is written). */
  readonly peerUrl: () => string;
  readonly logger: Logger;
  /** Default 5000. */
  readonly heartbeatMs?: number;
  /** Rows without a heartbeat for this long are removed. Default 20000. */
  readonly staleAfterMs?: number;
  readonly now?: () => Date;
}

export interface TunnelPresence {
  /** Removes this replica's rows. */
  stop(): Promise<void>;
}

export function startTunnelPresence(options: TunnelPresenceOptions): TunnelPresence {
  const { store, hub, replicaId, logger } = options;
  const now = options.now ?? (() => new Date());
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const staleAfterMs = options.staleAfterMs ?? 20_000;
  const chains = new Map<string, Promise<void>>();
  let stopped = false;

  async function reconcile(clusterId: string): Promise<void> {
    const local = stopped ? [] : hub.agents(clusterId);
    const stored = await store.listTunnels({ clusterId, replicaId });
    const at = now();
    for (const agent of local) {
      await store.putTunnel({
        clusterId,
        agentId: agent.agentId,
        replicaId,
        peerUrl: options.peerUrl(),
        agentVersion: agent.agentVersion,
        kubernetesVersion: agent.kubernetesVersion,
        connectedAt: agent.connectedAt,
        heartbeatAt: at,
      });
    }
    const live = new Set(local.map((agent) => agent.agentId));
    for (const row of stored) if (!live.has(row.agentId)) await store.deleteTunnel(clusterId, row.agentId, replicaId);
  }

  function schedule(clusterId: string): Promise<void> {
    const next = (chains.get(clusterId) ?? Promise.resolve())
      .then(() => reconcile(clusterId))
      .catch((error: unknown) => logger.warn({ err: error, cluster: clusterId }, 'recording tunnel presence failed; retrying at the next heartbeat'));
    chains.set(clusterId, next);
    void next.then(() => {
      if (chains.get(clusterId) === next) chains.delete(clusterId);
    });
    return next;
  }

  const unsubscribe = hub.subscribe((clusterId) => void schedule(clusterId));
  const timer = setInterval(() => {
    for (const clusterId of hub.stats().tunnels.keys()) void schedule(clusterId);
    store.deleteStaleTunnels(new Date(now().getTime() - staleAfterMs)).catch((error: unknown) => logger.warn({ err: error }, 'pruning stale tunnel rows failed'));
  }, heartbeatMs);
  timer.unref();

  return {
    async stop() {
      stopped = true;
      unsubscribe();
      clearInterval(timer);
      await Promise.all([...chains.values()]);
      try {
        for (const row of await store.listTunnels({ replicaId })) await store.deleteTunnel(row.clusterId, row.agentId, replicaId);
      } catch (error) {
        logger.warn({ err: error }, 'removing this replica’s tunnel rows failed; they expire by themselves');
      }
    },
  };
}
