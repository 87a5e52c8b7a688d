/**
 * The tunnel hub: every agent tunnel this proxy process holds, by cluster, and the one way
 * the rest of the proxy reaches an agent-mode cluster — `dial(clusterId)`.
 *
 * Design note. Several agents of one cluster may be connected at once (the agent Deployment
 * runs two replicas: the seed's fallback, so that one pod dying loses only the streams it
 * carried). New streams are spread over the live tunnels round-robin; a tunnel that is
 * closing takes none. When this process holds no tunnel of the cluster, `remote` (the peer
 * link to the replica that does, see peers.ts) is asked; when nobody holds one, the dial
 * fails with CLUSTER_DISCONNECTED, which reaches kubectl as a 503 Status naming the state.
 *
 * Credentials: an agent's hello carries its service account token (impersonate-only), kept
 * in memory only. `credentials(clusterId)` answers the hello of the newest live tunnel —
 * every connected agent's token is valid for the whole cluster, and a token is switched the
 * moment the agent it came from goes away (a bound token dies with its pod). The token is
 * read per request (the upstream's `authHeaders` is a getter), so a rotated token needs no
 * new upstream and cuts no stream.
 *
 * Revocation: `disconnect({clusterId?, agentSecretName?})` ends tunnels at once, e.g. when the
 * agent credential they were opened with is revoked or the cluster is deleted.
 */
import type { Duplex } from 'node:stream';
import { KubegateError } from '../errors.js';
import type { TunnelSession } from '../tunnel/proxy-end.js';
import type { AgentHello } from '../tunnel/wire.js';

export interface AgentConnection {
  readonly agentId: string;
  readonly agentVersion: string;
  readonly kubernetesVersion: string;
  readonly connectedAt: Date;
}

/** Tunnels held by other proxy replicas (peers.ts). */
export interface RemoteTunnels {
  /** The credentials a peer's tunnel reported, once fetched. */
  credentials(clusterId: string): AgentHello | undefined;
  /** A stream through a peer's tunnel; rejects with CLUSTER_DISCONNECTED when none is reachable. */
  dial(clusterId: string): Promise<Duplex>;
}

export interface TunnelHub {
  /** Registers an authenticated agent's session; it leaves the hub when it closes. */
  attach(clusterId: string, session: TunnelSession, agentSecretName: string): void;
  /** The hello whose API server details and token upstream requests use, or undefined. */
  credentials(clusterId: string): AgentHello | undefined;
  /** A byte stream to the cluster's API server: at once through a local tunnel, or through a peer. */
  dial(clusterId: string): Duplex | Promise<Duplex>;
  /** A stream through one of this process's own tunnels only; throws CLUSTER_DISCONNECTED. */
  dialLocal(clusterId: string): Duplex;
  /** Whether this process holds a live tunnel of the cluster. */
  isLocal(clusterId: string): boolean;
  /** The agents connected to this process for the cluster. */
  agents(clusterId: string): AgentConnection[];
  /** Ends the tunnels that match: of one cluster, or opened with one agent credential, or both. */
  disconnect(match: { readonly clusterId?: string; readonly agentSecretName?: string }): number;
  /** Called with the cluster ID whenever a tunnel comes, goes, or says a new hello. */
  subscribe(listener: (clusterId: string) => void): () => void;
  /** Tunnels, open streams and bytes moved, for /metrics. */
  stats(): TunnelStats;
  close(): void;
}

export interface TunnelStats {
  /** Live tunnels per cluster. */
  readonly tunnels: ReadonlyMap<string, number>;
  readonly streams: number;
  /** Bytes through every tunnel since start, closed ones included. */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface TunnelHubOptions {
  readonly remote?: RemoteTunnels;
  readonly onError?: (message: string, details: object) => void;
}

interface Entry {
  readonly session: TunnelSession;
  readonly agentSecretName: string;
}

export function createTunnelHub(options: TunnelHubOptions = {}): TunnelHub {
  const byCluster = new Map<string, Entry[]>();
  const cursor = new Map<string, number>();
  const listeners = new Set<(clusterId: string) => void>();
  let closedBytesIn = 0;
  let closedBytesOut = 0;

  function announce(clusterId: string): void {
    for (const listener of listeners) {
      try {
        listener(clusterId);
      } catch (error) {
        options.onError?.('a tunnel listener failed', { err: error, cluster: clusterId });
      }
    }
  }

  function live(clusterId: string): Entry[] {
    return (byCluster.get(clusterId) ?? []).filter((entry) => !entry.session.closing);
  }

  function attach(clusterId: string, session: TunnelSession, agentSecretName: string): void {
    const entries = byCluster.get(clusterId) ?? [];
    // The same agent reconnecting (its old connection half-dead) replaces its old tunnel.
    for (const entry of entries) if (entry.session.hello.agentId === session.hello.agentId) entry.session.close('replaced');
    const entry: Entry = { session, agentSecretName };
    byCluster.set(clusterId, [...entries, entry]);
    session.onHello(() => announce(clusterId));
    void session.closed.then(() => {
      const bytes = session.bytes();
      closedBytesIn += bytes.read;
      closedBytesOut += bytes.written;
      const remaining = (byCluster.get(clusterId) ?? []).filter((other) => other !== entry);
      if (remaining.length === 0) byCluster.delete(clusterId);
      else byCluster.set(clusterId, remaining);
      announce(clusterId);
    });
    announce(clusterId);
  }

  function credentials(clusterId: string): AgentHello | undefined {
    const entries = live(clusterId);
    let newest: Entry | undefined;
    for (const entry of entries) if (newest === undefined || entry.session.connectedAt >= newest.session.connectedAt) newest = entry;
    return newest?.session.hello ?? options.remote?.credentials(clusterId);
  }

  function dial(clusterId: string): Duplex | Promise<Duplex> {
    if (options.remote !== undefined && live(clusterId).length === 0) return options.remote.dial(clusterId);
    return dialLocal(clusterId);
  }

  function dialLocal(clusterId: string): Duplex {
    const entries = live(clusterId);
    if (entries.length === 0) throw new KubegateError('CLUSTER_DISCONNECTED');
    const next = (cursor.get(clusterId) ?? 0) % entries.length;
    cursor.set(clusterId, next + 1);
    return (entries[next] as Entry).session.dial();
  }

  return {
    attach,
    credentials,
    dial,
    dialLocal,
    isLocal: (clusterId) => live(clusterId).length > 0,
    agents(clusterId) {
      return live(clusterId).map(({ session }) => ({
        agentId: session.hello.agentId,
        agentVersion: session.hello.agentVersion,
        kubernetesVersion: session.hello.kubernetesVersion,
        connectedAt: session.connectedAt,
      }));
    },
    disconnect(match) {
      let ended = 0;
      for (const [clusterId, entries] of byCluster) {
        if (match.clusterId !== undefined && clusterId !== match.clusterId) continue;
        for (const entry of entries) {
          if (match.agentSecretName !== undefined && entry.agentSecretName !== match.agentSecretName) continue;
          entry.session.close('revoked');
          ended++;
        }
      }
      return ended;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stats() {
      const tunnels = new Map<string, number>();
      let streams = 0;
      let bytesIn = closedBytesIn;
      let bytesOut = closedBytesOut;
      for (const [clusterId, entries] of byCluster) {
        tunnels.set(clusterId, entries.length);
        for (const { session } of entries) {
          streams += session.openStreams();
          const bytes = session.bytes();
          bytesIn += bytes.read;
          bytesOut += bytes.written;
        }
      }
      return { tunnels, streams, bytesIn, bytesOut };
    },
    close() {
      for (const entries of byCluster.values()) for (const { session } of entries) session.close('shutdown');
      listeners.clear();
    },
  };
}
