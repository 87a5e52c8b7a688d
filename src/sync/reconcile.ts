/**
 * Makes one cluster hold exactly the desired objects (desired.ts), touching only objects
 * labelled `app.kubernetes.io/managed-by: kubegate` and owned by this installation and
 * cluster ID — Rancher's own objects, another installation's or another cluster ID's
 * (labels `kubegate.io/installation`, `kubegate.io/cluster`), and anything else in the
 * namespace are never changed. Managed objects without owner labels (written before they
 * existed) are adopted: labelled when wanted, deleted when not. A wanted name held by
 * someone else's object is skipped and counted as a conflict.
 *
 * list managed objects → create the missing, merge-patch the differing (only the fields
 * kubegate owns: `lastUsedAt`, which the webhook stamps, is never drift — it is handed back
 * as `tokenUses`, for the sync to copy into the store), delete the
 * unwanted. Order keeps the webhook from ever seeing a token without its hash or user:
 * user attributes and Secrets are written before tokens, tokens are deleted before their
 * Secrets and attributes. A binding whose role changed is re-created (roleRef is immutable).
 * Role bindings are reconciled in every cluster; the authorized endpoint's kinds
 * (ClusterAuthTokens, Secrets, ClusterUserAttributes) only as `aceObjects` says: `sync`
 * (the endpoint is on in mode `webhook`), `remove` (it is not, but some may be there: they are
 * deleted) or `skip` (none can be there: those kinds are not even listed, as a cluster
 * without the endpoint may lack their CRDs or the Role to read them).
 * A 404 on a collection means the CRDs are not installed: KUBE_API_FAILED saying so — except
 * when removing, where a missing kind holds nothing to remove.
 */
import { KubegateError } from '../errors.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { kubeStatusCode } from '../kube/client.js';
import type { ClusterAuthToken, ClusterRoleBinding, ClusterUserAttribute, KubeSecret } from '../kube/rancher.js';
import {
  ANNOTATION_GROUPS_BY_PROVIDER,
  ANNOTATION_MEMBERSHIP,
  ANNOTATION_PROVIDER,
  ANNOTATION_USERNAME,
  MANAGED_SELECTOR,
  clusterAuthTokensPath,   clusterRoleBindingsPath,
  clusterUserAttributesPath,
  INSTALLATION_LABEL,
  CLUSTER_LABEL,
  isManaged,
  ownershipOf,
  secretsPath,
} from '../kube/rancher.js';
import type { ObjectOwner } from '../kube/rancher.js';
import type { DesiredState } from './desired.js';

export interface ReconcileCounts {
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
  /** Wanted objects not written because another installation or cluster ID holds the name. */
  readonly conflicts: number;
  /** Managed objects of other installations or cluster IDs seen (and left alone). */
  readonly foreign: number;
}

export interface ReconcileResult {
  readonly counts: ReconcileCounts;
  /**
   * The `lastUsedAt` the webhook stamped on this installation's ClusterAuthTokens in the
   * cluster, by token name (as listed before the writes; tokens without a stamp are absent).
   */
  readonly tokenUses: ReadonlyMap<string, Date>;
}

export type AceObjects = 'sync' | 'remove' | 'skip';

export interface ReconcileOptions {
  readonly owner: ObjectOwner;
  /** What to do with the endpoint's kinds (tokens, Secrets, user attributes); see above. */
  readonly aceObjects: AceObjects;
}

interface ListOptions {
  readonly owner: ObjectOwner;
  /** A collection that does not exist (404: CRDs missing) holds nothing: for cleanups. */
  readonly missingIsEmpty: boolean;
}

interface Counts {
  created: number;
  updated: number;
  deleted: number;
  conflicts: number;
  foreign: number;
}

/** The managed objects of one kind: ours (and adopted legacy ones) by name, and others' names. */
interface Listed<T extends KubeObject> {
  readonly ours: Map<string, T>;
  readonly others: Set<string>;
}

interface Kind<T extends KubeObject> {
  readonly resource: string;
  readonly path: (name?: string) => string;
  /** The fields kubegate owns, for comparison and as the merge patch. */
  readonly owned: (object: T) => Record<string, unknown>;
  /** Changes that need a delete + create instead of a patch. */
  readonly immutableChanged?: (desired: T, actual: T) => boolean;
}

export async function reconcileCluster(client: KubeClient, namespace: string, desired: DesiredState, options: ReconcileOptions): Promise<ReconcileResult> {
  const counts: Counts = { created: 0, updated: 0, deleted: 0, conflicts: 0, foreign: 0 };
  const { owner } = options;
  const tokenKind: Kind<ClusterAuthToken> = {
    resource: 'clusterauthtokens',
    path: (name) => clusterAuthTokensPath(namespace, name),
    owned: (o) => ({
      userName: o.userName,
      enabled: o.enabled,
      expiresAt: o.expiresAt ?? null,
      metadata: { labels: ownerLabelsOf(o), annotations: { ...ownAnnotation(o, ANNOTATION_PROVIDER), ...ownAnnotation(o, ANNOTATION_USERNAME) } },
    }),
  };
  const secretKind: Kind<KubeSecret> = {
    resource: 'secrets',
    path: (name) => secretsPath(namespace, name),
    owned: (o) => ({ data: { hash: o.data?.['hash'] ?? null }, metadata: { labels: ownerLabelsOf(o) } }),
  };
  const attributeKind: Kind<ClusterUserAttribute> = {
    resource: 'clusteruserattributes',
    path: (name) => clusterUserAttributesPath(namespace, name),
    owned: (o) => ({ groups: o.groups ?? [], enabled: o.enabled, extraByProvider: o.extraByProvider ?? null, metadata: { labels: ownerLabelsOf(o), annotations: ownAnnotation(o, ANNOTATION_GROUPS_BY_PROVIDER) } }),
  };
  const bindingKind: Kind<ClusterRoleBinding> = {
    resource: 'clusterrolebindings',
    path: (name) => clusterRoleBindingsPath(name),
    owned: (o) => ({ subjects: o.subjects ?? [], metadata: { labels: ownerLabelsOf(o), annotations: ownAnnotation(o, ANNOTATION_MEMBERSHIP) } }),
    immutableChanged: (d, a) => JSON.stringify(d.roleRef) !== JSON.stringify(a.roleRef),
  };

  const nothing = <T extends KubeObject>(): Promise<Listed<T>> => Promise.resolve({ ours: new Map<string, T>(), others: new Set<string>() });
  const listAce = <T extends KubeObject>(kind: Kind<T>): Promise<Listed<T>> =>
    options.aceObjects === 'skip' ? nothing<T>() : listManaged(client, kind, { owner, missingIsEmpty: options.aceObjects === 'remove' }, counts);
  const [tokens, secrets, attributes, bindings] = await Promise.all([
    listAce(tokenKind),
    listAce(secretKind),
    listAce(attributeKind),
    listManaged(client, bindingKind, { owner, missingIsEmpty: false }, counts),
  ]);
  // Writes first, in dependency order; then deletions in reverse order.
  await upsertAll(client, attributeKind, desired.attributes, attributes, counts, owner);
  await upsertAll(client, secretKind, desired.secrets, secrets, counts, owner);
  await upsertAll(client, tokenKind, desired.tokens, tokens, counts, owner);
  await upsertAll(client, bindingKind, desired.bindings, bindings, counts, owner);
  await deleteUnwanted(client, tokenKind, desired.tokens, tokens, counts);
  await deleteUnwanted(client, secretKind, desired.secrets, secrets, counts);
  await deleteUnwanted(client, attributeKind, desired.attributes, attributes, counts);
  await deleteUnwanted(client, bindingKind, desired.bindings, bindings, counts);
  return { counts, tokenUses: usesOf(tokens.ours.values()) };
}

function usesOf(tokens: Iterable<ClusterAuthToken>): Map<string, Date> {
  const uses = new Map<string, Date>();
  for (const token of tokens) {
    const at = token.lastUsedAt === undefined ? Number.NaN : Date.parse(token.lastUsedAt);
    if (!Number.isNaN(at)) uses.set(token.metadata.name, new Date(at));
  }
  return uses;
}

async function listManaged<T extends KubeObject>(client: KubeClient, kind: Kind<T>, options: ListOptions, counts: Counts): Promise<Listed<T>> {
  const ours = new Map<string, T>();
  const others = new Set<string>();
  try {
    const list = await client.list<T>(kind.path(), { labelSelector: MANAGED_SELECTOR });
    for (const item of list.items.filter(isManaged)) {
      if (ownershipOf(item, options.owner) === 'foreign') others.add(item.metadata.name);
      else ours.set(item.metadata.name, item);
    }
    counts.foreign += others.size;
    return { ours, others };
  } catch (error) {
    if (kubeStatusCode(error) === 404) {
      if (options.missingIsEmpty) return { ours, others };
      throw new KubegateError('KUBE_API_FAILED', `${kind.resource} cannot be listed (404): apply deploy/crds/ and create the namespace`, { cause: error });
    }
    throw error;
  }
}

/** The owner labels: compared and patched (adopting a legacy object labels it); other labels stay. */
function ownerLabelsOf(object: KubeObject): Record<string, string | null> {
  return { [INSTALLATION_LABEL]: object.metadata.labels?.[INSTALLATION_LABEL] ?? null, [CLUSTER_LABEL]: object.metadata.labels?.[CLUSTER_LABEL] ?? null };
}

/** Only kubegate's own annotation is compared and patched; others' annotations stay. */
function ownAnnotation(object: KubeObject, key: string): Record<string, string | null> {
  return { [key]: object.metadata.annotations?.[key] ?? null };
}

/** The RFC 7386 merge patch that turns the owned fields of `actual` into those of `desired`; undefined when equal. */
function patchFor<T extends KubeObject>(kind: Kind<T>, desired: T, actual: T): unknown {
  return mergePatchBetween(kind.owned(actual), kind.owned(desired));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function mergePatchBetween(from: unknown, to: unknown): unknown {
  if (isPlainObject(from) && isPlainObject(to)) {
    const patch: Record<string, unknown> = {};
    for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
    for (const [key, value] of Object.entries(to)) {
      if (value === null) {
        if (from[key] !== undefined && from[key] !== null) patch[key] = null;
        continue;
      }
      const sub = mergePatchBetween(from[key], value);
      if (sub !== undefined) patch[key] = sub;
    }
    return Object.keys(patch).length === 0 ? undefined : patch;
  }
  return JSON.stringify(from) === JSON.stringify(to) ? undefined : to;
}

async function upsertAll<T extends KubeObject>(client: KubeClient, kind: Kind<T>, desired: readonly T[], listed: Listed<T>, counts: Counts, owner: ObjectOwner): Promise<void> {
  for (const object of desired) {
    const name = object.metadata.name;
    if (listed.others.has(name)) {
      counts.conflicts++;
      continue;
    }
    const existing = listed.ours.get(name);
    if (existing === undefined) {
      try {
        await client.create(kind.path(), object);
        counts.created++;
      } catch (error) {
        if (kubeStatusCode(error) !== 409) throw error;
        // Created meanwhile (another replica), or a same-named object kubegate does not own.
        const current = await client.get<T>(kind.path(name));
        if (current === undefined || !isManaged(current)) {
          throw new KubegateError('KUBE_API_FAILED', `${kind.resource}: an object of the same name exists and is not managed by kubegate`, { cause: error });
        }
        if (ownershipOf(current, owner) === 'foreign') {
          counts.conflicts++;
          continue;
        }
        const patch = patchFor(kind, object, current);
        if (patch !== undefined) {
          await client.mergePatch(kind.path(name), patch);
          counts.updated++;
        }
      }
      continue;
    }
    if (kind.immutableChanged?.(object, existing) === true) {
      await client.delete(kind.path(name));
      await client.create(kind.path(), object);
      counts.updated++;
      continue;
    }
    const patch = patchFor(kind, object, existing);
    if (patch !== undefined) {
      await client.mergePatch(kind.path(name), patch);
      counts.updated++;
    }
  }
}

async function deleteUnwanted<T extends KubeObject>(client: KubeClient, kind: Kind<T>, desired: readonly T[], listed: Listed<T>, counts: Counts): Promise<void> {
  const wanted = new Set(desired.map((object) => object.metadata.name));
  for (const name of listed.ours.keys()) {
    if (wanted.has(name)) continue;
    if (await client.delete(kind.path(name))) counts.deleted++;
  }
}
