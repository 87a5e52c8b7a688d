/**
 * The Rancher-compatible objects the authorized cluster endpoint runs on, and the other
 * Kubernetes objects the sync writes, with their API paths.
 *
 * `ClusterAuthToken` and `ClusterUserAttribute` (`cluster.cattle.io/v3`, namespaced) are
 * laid out exactly as Rancher writes them, so kubegate's webhook reads Rancher's objects and
 * Rancher's kube-api-auth reads kubegate's. kubegate adds, in annotations only (never new
 * fields, which a Rancher-installed CRD schema would prune):
 * - on a ClusterAuthToken, `kubegate.io/provider`: the provider the token was issued for;
 * - on a ClusterUserAttribute, `kubegate.io/groups-by-provider`: JSON `{provider: [groups]}`,
 *   because kubegate's groups depend on the provider a token was issued for, while Rancher
 *   keeps one group list per user. `groups` holds the list for the most recent token.
 * Objects kubegate manages carry the label `app.kubernetes.io/managed-by: kubegate`; the sync
 * never touches an object without it. They also name their owner: `kubegate.io/installation`
 * (the installation ID, one per store) and `kubegate.io/cluster` (the kubegate cluster ID),
 * so that several installations, or several cluster IDs of one installation, sharing one
 * API server each prune only their own objects.
 */
import type { KubeObject, KubeObjectMeta } from './client.js';

export const CATTLE_GROUP_VERSION = 'cluster.cattle.io/v3';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
const MANAGED_BY_VALUE = 'kubegate';
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
export const ANNOTATION_PROVIDER = 'kubegate.io/provider';
export const ANNOTATION_GROUPS_BY_PROVIDER = 'kubegate.io/groups-by-provider';
/**
 * On ClusterAuthTokens: the Kubernetes user name the webhook answers for the token, when the
 * installation names users other than by ID (`userName` stays the user ID: it names the
 * ClusterUserAttribute, and it is the uid).
 */
export const ANNOTATION_USERNAME = 'kubegate.io/username';
export const INSTALLATION_LABEL = 'kubegate.io/installation';
export const CLUSTER_LABEL = 'kubegate.io/cluster';
/** On role bindings: the membership subject and role they implement. */
export const ANNOTATION_MEMBERSHIP = 'kubegate.io/membership';

export interface ClusterAuthToken extends KubeObject {
  readonly userName: string;
  readonly enabled?: boolean;
  /** RFC 3339; absent or empty = never expires. */
  readonly expiresAt?: string;
  readonly lastUsedAt?: string;
  /** Deprecated: the hash used to live here; migrated into the Secret of the same name. */
  readonly hash?: string;
}

export interface ClusterUserAttribute extends KubeObject {
  readonly groups?: readonly string[];
  readonly enabled?: boolean;
  readonly lastRefresh?: string;
  readonly needsRefresh?: boolean;
  readonly extraByProvider?: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
}

export interface KubeSecret extends KubeObject {
  readonly type?: string;
  /** base64 values. */
  readonly data?: Readonly<Record<string, string>>;
}

export interface RbacSubject {
  readonly kind: 'User' | 'Group';
  readonly name: string;
  readonly apiGroup: 'rbac.authorization.k8s.io';
}

export interface ClusterRoleBinding extends KubeObject {
  readonly roleRef: { readonly apiGroup: 'rbac.authorization.k8s.io'; readonly kind: 'ClusterRole'; readonly name: string };
  readonly subjects?: readonly RbacSubject[];
}

export function clusterAuthTokensPath(namespace: string, name?: string): string {
  return `/apis/cluster.cattle.io/v3/namespaces/${encodeURIComponent(namespace)}/clusterauthtokens${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

export function clusterUserAttributesPath(namespace: string, name?: string): string {
  return `/apis/cluster.cattle.io/v3/namespaces/${encodeURIComponent(namespace)}/clusteruserattributes${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

export function secretsPath(namespace: string, name?: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

export function clusterRoleBindingsPath(name?: string): string {
  return `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

/** Which kubegate wrote an object: the installation and its cluster ID. */
export interface ObjectOwner {
  readonly installationId: string;
  readonly clusterId: string;
}

/** Metadata of an object kubegate manages for `owner`. */
export function managedMeta(name: string, namespace: string | undefined, owner: ObjectOwner, annotations?: Readonly<Record<string, string>>): KubeObjectMeta {
  return {
    name,
    ...(namespace === undefined ? {} : { namespace }),
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [INSTALLATION_LABEL]: owner.installationId, [CLUSTER_LABEL]: owner.clusterId },
    ...(annotations === undefined || Object.keys(annotations).length === 0 ? {} : { annotations }),
  };
}

export function isManaged(object: KubeObject): boolean {
  return object.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

/**
 * Whose a managed object is: `own`; `legacy` (written before objects named their owner:
 * adopted by the first installation that syncs the cluster, as kubegate treated every
 * managed object as its own then); or `foreign` (another installation or cluster ID).
 */
export function ownershipOf(object: KubeObject, owner: ObjectOwner): 'own' | 'legacy' | 'foreign' {
  const labels = object.metadata.labels ?? {};
  const installation = labels[INSTALLATION_LABEL];
  if (installation === undefined) return 'legacy';
  return installation === owner.installationId && labels[CLUSTER_LABEL] === owner.clusterId ? 'own' : 'foreign';
}

export function configMapsPath(namespace: string, name?: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

/** The `data.hash` of a Secret, decoded; undefined when missing or not valid base64 text. */
export function secretHash(secret: KubeSecret | undefined): string | undefined {
  const encoded = secret?.data?.['hash'];
  if (typeof encoded !== 'string' || encoded.length === 0) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  return decoded.length === 0 ? undefined : decoded;
}

/** `{provider: groups}` from the annotation; undefined when absent or unusable. */
export function groupsByProvider(attribute: ClusterUserAttribute): Readonly<Record<string, readonly string[]>> | undefined {
  const text = attribute.metadata.annotations?.[ANNOTATION_GROUPS_BY_PROVIDER];
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    const result: Record<string, readonly string[]> = {};
    for (const [provider, groups] of Object.entries(parsed as Record<string, unknown>)) {
      if (!Array.isArray(groups) || !groups.every((group) => typeof group === 'string')) return undefined;
      result[provider] = groups as string[];
    }
    return result;
  } catch {
    return undefined;
  }
}
