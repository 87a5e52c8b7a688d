/**
 * The REST API's answers as the console reads them (README "REST API" is the contract;
 * src/proxy/api/ builds them). Only the fields the pages show are listed.
 */

export interface Me {
  readonly id: string;
  readonly username: string;
  readonly displayName: string;
  readonly globalRole: 'admin' | 'user';
  readonly groups: readonly string[];
  readonly provider: string;
  readonly tokenName: string;
}

export type ClusterRole = 'owner' | 'member' | 'viewer';

export interface ClusterSummary {
  readonly id: string;
  readonly displayName: string;
  /** `direct`: the proxy dials the API server; `agent`: an agent in the cluster holds a tunnel. */
  readonly mode?: 'direct' | 'agent';
  readonly server: string;
  readonly role: ClusterRole | null;
  readonly ace: { readonly enabled: boolean; readonly fqdn: string | null; readonly nodes: readonly { name: string; address: string }[] };
}

export interface ClusterDetail extends ClusterSummary {
  readonly status: {
    readonly reachable: boolean;
    /** Reachable and the proxy's credential accepted. */
    readonly healthy: boolean;
    readonly credential: 'accepted' | 'refused' | 'unknown';
    readonly version?: string;
    readonly checkedAt: string | null;
    readonly error?: string;
  };
  /** `deleting`: DELETE was answered 202, the sync is still removing kubegate's objects from the cluster. */
  readonly state: 'active' | 'deleting';
  /** Why the sync has not finished (a removal waiting on an unreachable cluster, say). */
  readonly sync?: { readonly error?: string };
  /** Agent-mode clusters: whether an agent holds a tunnel. */
  readonly agent?: { readonly state: 'connected' | 'disconnected'; readonly agents: readonly { readonly agentId: string }[] };
}

/** POST /v1/clusters {mode: agent} and GET /v1/clusters/:id/import: how to install the agent. */
export interface AgentImport {
  readonly clusterId: string;
  readonly expiresAt: string;
  /** `kubectl apply -f <url>`; the URL holds the one-time registration token. */
  readonly command: string;
  /** The same, trusting the proxy's generated CA; null without one. */
  readonly commandWithCa: string | null;
}

export interface TokenSummary {
  readonly name: string;
  readonly kind: 'login' | 'api' | 'kubeconfig';
  readonly description: string;
  readonly provider: string;
  readonly cluster: string | null;
  readonly expiresAt: string | null;
  readonly lastUsedAt: string | null;
  readonly createdAt: string;
}

export interface NewToken {
  readonly name: string;
  readonly token: string;
  readonly expiresAt: string | null;
  readonly cluster: string | null;
}

export interface UserSummary {
  readonly id: string;
  readonly username: string;
  readonly displayName: string;
  readonly globalRole: 'admin' | 'user';
  readonly enabled: boolean;
  readonly local: boolean;
  /** The verified e-mail address, or null. */
  readonly email: string | null;
  readonly createdAt: string;
}

export interface Member {
  readonly kind: 'User' | 'Group';
  readonly name: string;
  readonly role: ClusterRole;
  readonly createdAt: string;
}

export interface ProviderSummary {
  readonly name: string;
  readonly type: string;
  /** `password`: a form posted to POST /v1/login; `browser`: a login at the provider's site. */
  readonly login: 'password' | 'browser';
  /** The last background health check; only for an admin's token. */
  readonly health?: {
    readonly state: 'unknown' | 'healthy' | 'unhealthy';
    readonly checkedAt: string | null;
    readonly message: string | null;
  };
}
