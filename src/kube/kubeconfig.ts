/**
 * Kubeconfig documents kubegate hands to users.
 *
 * A kubeconfig for cluster `<id>` has one context per way to reach the cluster: `<id>`
 * through the proxy (`https://<proxy>/k8s/clusters/<id>` with the proxy's CA), and, when the
 * authorized cluster endpoint is on, `<id>-fqdn` or one `<id>-<node>` per control-plane
 * node. Contexts share one user entry — a static token or an exec credential plugin
 * (`kubegate token …`) that fetches and caches one — unless a cluster entry names another
 * (the authorized endpoint in the `jwt` mode uses a plugin that fetches JWTs).
 */
import { stringify } from 'yaml';

export interface KubeconfigCluster {
  /** Context and cluster entry name. */
  readonly name: string;
  readonly server: string;
  /** PEM CA bundle, or null to rely on the system roots. */
  readonly caPem: string | null;
  /** The user entry of this cluster's context: one of `otherUsers`; default `user`. */
  readonly user?: string;
}

export type KubeconfigUser =
  | { readonly kind: 'token'; readonly name: string; readonly token: string }
  | {
      readonly kind: 'exec';
      readonly name: string;
      readonly command: string;
      readonly args: readonly string[];
      readonly env?: readonly { readonly name: string; readonly value: string }[];
    };

export interface KubeconfigOptions {
  readonly clusters: readonly KubeconfigCluster[];
  readonly user: KubeconfigUser;
  /** More user entries, for clusters that name them. */
  readonly otherUsers?: readonly KubeconfigUser[];
  /** Name of the context to make current; defaults to the first cluster's. */
  readonly currentContext?: string;
}

/** Builds the kubeconfig object (apiVersion v1, kind Config). */
export function buildKubeconfig(options: KubeconfigOptions): Record<string, unknown> {
  const first = options.clusters[0];
  if (!first) throw new TypeError('a kubeconfig needs at least one cluster');
  const current = options.currentContext ?? first.name;
  if (!options.clusters.some((cluster) => cluster.name === current)) {
    throw new TypeError(`current context ${JSON.stringify(current)} is not one of the clusters`);
  }
  const users = [options.user, ...(options.otherUsers ?? [])];
  for (const cluster of options.clusters) {
    if (cluster.user !== undefined && !users.some((user) => user.name === cluster.user)) {
      throw new TypeError(`cluster ${JSON.stringify(cluster.name)} names an unknown user ${JSON.stringify(cluster.user)}`);
    }
  }
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: options.clusters.map((cluster) => ({
      name: cluster.name,
      cluster: {
        server: cluster.server,
        ...(cluster.caPem === null ? {} : { 'certificate-authority-data': Buffer.from(cluster.caPem).toString('base64') }),
      },
    })),
    users: users.map((user) => ({ name: user.name, user: userEntry(user) })),
    contexts: options.clusters.map((cluster) => ({
      name: cluster.name,
      context: { cluster: cluster.name, user: cluster.user ?? options.user.name },
    })),
    'current-context': current,
  };
}

/** The kubeconfig as YAML text. */
export function renderKubeconfig(options: KubeconfigOptions): string {
  return stringify(buildKubeconfig(options), { lineWidth: 0 });
}

function userEntry(user: KubeconfigUser): Record<string, unknown> {
  if (user.kind === 'token') return { token: user.token };
  return {
    exec: {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: user.command,
      args: [...user.args],
      ...(user.env && user.env.length > 0 ? { env: user.env.map((entry) => ({ ...entry })) } : {}),
      interactiveMode: 'IfAvailable',
      provideClusterInfo: false,
    },
  };
}
