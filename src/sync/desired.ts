/**
 * What one cluster should hold, computed from the store: a pure function, so that the
 * identity the webhook will derive can be checked without a cluster.
 *
 * - Per unexpired cluster-scoped token of an enabled user: a ClusterAuthToken (`userName` =
 *   user ID, `enabled`, `expiresAt`, annotation `kubegate.io/provider`) and a Secret of the
 *   same name whose `data.hash` is the token's stored `$3` hash (the secret itself never
 *   exists outside the one answer that issued it).
 * - Per user holding such a token: a ClusterUserAttribute named by the user ID with the
 *   provider groups exactly as the proxy's authenticator reads them
 *   (`getUserGroups(user, token.provider)`), per provider in the
 *   `kubegate.io/groups-by-provider` annotation, `groups` = those of the newest token's
 *   provider, and `extraByProvider` = the extras the proxy impersonates (login name,
 *   provider). The webhook adds the token name; the API server adds `system:authenticated`.
 * - Per membership: a ClusterRoleBinding of the subject to the role's ClusterRole
 *   (owner → cluster-admin, member → edit, viewer → view by default). A User subject is the
 *   user's Kubernetes user name (auth/principal.ts): its ID, or with `provider:login` one
 *   subject per provider the user logs in with (`memberNames`), or with `email` the user's
 *   address (one subject; without one, the `provider:login` names); a user with no name yet
 *   gets no binding.
 * - With `provider:login` or `email`, each ClusterAuthToken names the Kubernetes user name of its login
 *   in the annotation `kubegate.io/username`, which the webhook answers; a token whose name
 *   would be reserved is left out (the webhook then does not know it: fail closed).
 * Everything carries `app.kubernetes.io/managed-by: kubegate` and its owner's labels
 * (installation ID, cluster ID); binding names include the owner, so two installations (or
 * two cluster IDs on one API server) binding the same group never collide.
 */
import { createHash } from 'node:crypto';
import { kubernetesUsername } from '../auth/principal.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER } from '../auth/user.js';
import type { KubernetesUsernameFormat } from '../config/identity.js';
import type { ClusterAuthToken, ClusterRoleBinding, ClusterUserAttribute, KubeSecret } from '../kube/rancher.js';
import { ANNOTATION_GROUPS_BY_PROVIDER, ANNOTATION_MEMBERSHIP, ANNOTATION_PROVIDER, ANNOTATION_USERNAME, CATTLE_GROUP_VERSION, managedMeta } from '../kube/rancher.js';
import type { ObjectOwner } from '../kube/rancher.js';
import type { ClusterRole, Membership, Token, User } from '../store/store.js';

export type RoleNames = Readonly<Record<ClusterRole, string>>;

export const DEFAULT_ROLE_NAMES: RoleNames = Object.freeze({ owner: 'cluster-admin', member: 'edit', viewer: 'view' });

export interface DesiredInput {
  readonly namespace: string;
  /** The installation and cluster ID the objects are labelled with. */
  readonly owner: ObjectOwner;
  /** The cluster's tokens (any expiry; expired ones are left out here). */
  readonly tokens: readonly Token[];
  /** Users by ID (at least every token's user; missing = deleted). */
  readonly users: ReadonlyMap<string, User>;
  /** Provider groups by `${userId}\n${provider}`. */
  readonly groups: ReadonlyMap<string, readonly string[]>;
  readonly memberships: readonly Membership[];
  readonly roleNames: RoleNames;
  readonly now: Date;
  /** How users are named to Kubernetes; default `id`. */
  readonly kubernetesUsername?: KubernetesUsernameFormat;
  /** Kubernetes user names of User members by user ID (not needed with `id`). */
  readonly memberNames?: ReadonlyMap<string, readonly string[]>;
}

export interface DesiredState {
  readonly tokens: readonly ClusterAuthToken[];
  readonly secrets: readonly KubeSecret[];
  readonly attributes: readonly ClusterUserAttribute[];
  readonly bindings: readonly ClusterRoleBinding[];
  /** The earliest expiry among the synced tokens: when the next resync must remove one. */
  readonly nextExpiry: Date | null;
}

export function groupsKey(userId: string, provider: string): string {
  return `${userId}\n${provider}`;
}

export function desiredState(input: DesiredInput): DesiredState {
  const { namespace, owner } = input;
  const tokens: ClusterAuthToken[] = [];
  const secrets: KubeSecret[] = [];
  const byUser = new Map<string, Token[]>();
  let nextExpiry: Date | null = null;

  const live = input.tokens
    .filter((token) => token.expiresAt === null || token.expiresAt.getTime() > input.now.getTime())
    .filter((token) => input.users.get(token.userId)?.enabled === true)
    .sort((a, b) => a.name.localeCompare(b.name));
  const format = input.kubernetesUsername ?? 'id';
  for (const token of live) {
    let annotations: Record<string, string> = { [ANNOTATION_PROVIDER]: token.provider };
    if (format !== 'id') {
      const user = input.users.get(token.userId)!;
      try {
        annotations = { ...annotations, [ANNOTATION_USERNAME]: kubernetesUsername(format, { id: user.id, login: user.username, provider: token.provider, email: user.email }) };
      } catch {
        continue;
      }
    }
    tokens.push({
      apiVersion: CATTLE_GROUP_VERSION,
      kind: 'ClusterAuthToken',
      metadata: managedMeta(token.name, namespace, owner, annotations),
      userName: token.userId,
      enabled: true,
      ...(token.expiresAt === null ? {} : { expiresAt: rfc3339(token.expiresAt) }),
    });
    secrets.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: managedMeta(token.name, namespace, owner),
      type: 'Opaque',
      data: { hash: Buffer.from(token.tokenHash, 'utf8').toString('base64') },
    });
    if (token.expiresAt !== null && (nextExpiry === null || token.expiresAt < nextExpiry)) nextExpiry = token.expiresAt;
    byUser.set(token.userId, [...(byUser.get(token.userId) ?? []), token]);
  }

  const attributes: ClusterUserAttribute[] = [];
  for (const [userId, userTokens] of [...byUser].sort(([a], [b]) => a.localeCompare(b))) {
    const user = input.users.get(userId)!;
    const providers = [...new Set(userTokens.map((token) => token.provider))].sort();
    const groupsByProvider: Record<string, readonly string[]> = {};
    const extraByProvider: Record<string, Record<string, readonly string[]>> = {};
    for (const provider of providers) {
      groupsByProvider[provider] = [...(input.groups.get(groupsKey(userId, provider)) ?? [])];
      extraByProvider[provider] = { [EXTRA_LOGIN_NAME]: [user.username], [EXTRA_PROVIDER]: [provider] };
    }
    const newest = [...userTokens].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0]!;
    attributes.push({
      apiVersion: CATTLE_GROUP_VERSION,
      kind: 'ClusterUserAttribute',
      metadata: managedMeta(userId, namespace, owner, { [ANNOTATION_GROUPS_BY_PROVIDER]: JSON.stringify(groupsByProvider) }),
      groups: groupsByProvider[newest.provider] ?? [],
      enabled: true,
      extraByProvider,
      needsRefresh: false,
    });
  }

  const subjectNames = (membership: Membership): readonly string[] =>
    membership.subjectKind === 'User' && format !== 'id' ? (input.memberNames?.get(membership.subjectName) ?? []) : [membership.subjectName];
  const bindings: ClusterRoleBinding[] = input.memberships
    .filter((membership) => subjectNames(membership).length > 0)
    .map((membership) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: managedMeta(bindingName(membership, owner), undefined, owner, {
        [ANNOTATION_MEMBERSHIP]: JSON.stringify({ kind: membership.subjectKind, name: membership.subjectName, role: membership.role }),
      }),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io' as const, kind: 'ClusterRole' as const, name: input.roleNames[membership.role] },
      subjects: subjectNames(membership).map((name) => ({ kind: membership.subjectKind, name, apiGroup: 'rbac.authorization.k8s.io' as const })),
    }))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));

  return { tokens, secrets, attributes, bindings, nextExpiry };
}

/** `kubegate-user-<digest>` / `kubegate-group-<digest>`: one binding per subject and owner (a subject has one role). */
export function bindingName(membership: Pick<Membership, 'subjectKind' | 'subjectName'>, owner: ObjectOwner): string {
  const digest = createHash('sha256').update(`${owner.installationId}\0${owner.clusterId}\0${membership.subjectName}`).digest('hex').slice(0, 20);
  return `kubegate-${membership.subjectKind.toLowerCase()}-${digest}`;
}

/** RFC 3339 in UTC with whole seconds, as Go's time.RFC3339 writes it. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
