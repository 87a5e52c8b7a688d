/**
 * Makes one cluster hold exactly the desired objects (desired.ts), touching only objects
 * labelled `app.kubernetes.io/managed-by: kubegate` — Rancher's own objects, and anything
 * else in the namespace, are never changed.
 *
 * list managed objects → create the missing, merge-patch the differing (only the fields
 * kubegate owns: `lastUsedAt`, which the webhook stamps, is never drift), delete the
 * unwanted. Order keeps the webhook from ever seeing a token without its hash or user:
 * user attributes and Secrets are written before tokens, tokens are deleted before their
 * Secrets and attributes. A binding whose role changed is re-created (roleRef is immutable).
 * A 404 on a collection means the CRDs are not installed: KUBE_API_FAILED saying so.
 */
import { KubegateError } from '../errors.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { kubeStatusCode } from '../kube/client.js';
import type { ClusterAuthToken, ClusterRoleBinding, ClusterUserAttribute, KubeSecret } from '../kube/rancher.js';
import {
  ANNOTATION_GROUPS_BY_PROVIDER,
  ANNOTATION_MEMBERSHIP,
  ANNOTATION_PROVIDER,
  MANAGED_SELECTOR,
  clusterAuthTokensPath,   clusterRoleBindingsPath,
  clusterUserAttributesPath,
  isManaged,
  secretsPath,
} from '../kube/rancher.js';
import type { DesiredState } from './desired.js';

export interface ReconcileCounts {
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
}

interface Kind<T extends KubeObject> {
  readonly resource: string;
  readonly path: (name?: string) => string;
  /** The fields kubegate owns, for comparison and as the merge patch. */
  readonly owned: (object: T) => Record<string, unknown>;
  /** Changes that need a delete + create instead of a patch. */
  readonly immutableChanged?: (desired: T, actual: T) => boolean;
}

export async function reconcileCluster(client: KubeClient, namespace: string, desired: DesiredState): Promise<ReconcileCounts> {
  const counts = { created: 0, updated: 0, deleted: 0 };
  const tokenKind: Kind<ClusterAuthToken> = {
    resource: 'clusterauthtokens',
    path: (name) => clusterAuthTokensPath(namespace, name),
    owned: (o) => ({ userName: o.userName, enabled: o.enabled, expiresAt: o.expiresAt ?? null, metadata: { annotations: ownAnnotation(o, ANNOTATION_PROVIDER) } }),
  };
  const secretKind: Kind<KubeSecret> = {
    resource: 'secrets',
    path: (name) => secretsPath(namespace, name),
    owned: (o) => ({ data: { hash: o.data?.['hash'] ?? null } }),
  };
  const attributeKind: Kind<ClusterUserAttribute> = {
    resource: 'clusteruserattributes',
    path: (name) => clusterUserAttributesPath(namespace, name),
    owned: (o) => ({ groups: o.groups ?? [], enabled: o.enabled, extraByProvider: o.extraByProvider ?? null, metadata: { annotations: ownAnnotation(o, ANNOTATION_GROUPS_BY_PROVIDER) } }),
  };
  const bindingKind: Kind<ClusterRoleBinding> = {
    resource: 'clusterrolebindings',
    path: (name) => clusterRoleBindingsPath(name),
    owned: (o) => ({ subjects: o.subjects ?? [], metadata: { annotations: ownAnnotation(o, ANNOTATION_MEMBERSHIP) } }),
    immutableChanged: (d, a) => JSON.stringify(d.roleRef) !== JSON.stringify(a.roleRef),
  };

  const [tokens, secrets, attributes, bindings] = await Promise.all([
    listManaged(client, tokenKind),
    listManaged(client, secretKind),
    listManaged(client, attributeKind),
    listManaged(client, bindingKind),
  ]);
  // Writes first, in dependency order; then deletions in reverse order.
  await upsertAll(client, attributeKind, desired.attributes, attributes, counts);
  await upsertAll(client, secretKind, desired.secrets, secrets, counts);
  await upsertAll(client, tokenKind, desired.tokens, tokens, counts);
  await upsertAll(client, bindingKind, desired.bindings, bindings, counts);
  await deleteUnwanted(client, tokenKind, desired.tokens, tokens, counts);
  await deleteUnwanted(client, secretKind, desired.secrets, secrets, counts);
  await deleteUnwanted(client, attributeKind, desired.attributes, attributes, counts);
  await deleteUnwanted(client, bindingKind, desired.bindings, bindings, counts);
  return counts;
}

async function listManaged<T extends KubeObject>(client: KubeClient, kind: Kind<T>): Promise<Map<string, T>> {
  try {
    const list = await client.list<T>(kind.path(), { labelSelector: MANAGED_SELECTOR });
    return new Map(list.items.filter(isManaged).map((item) => [item.metadata.name, item]));
  } catch (error) {
    if (kubeStatusCode(error) === 404) {
      throw new KubegateError('KUBE_API_FAILED', `${kind.resource} cannot be listed (404): apply deploy/crds/ and create the namespace`, { cause: error });
    }
    throw error;
  }
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

async function upsertAll<T extends KubeObject>(client: KubeClient, kind: Kind<T>, desired: readonly T[], actual: Map<string, T>, counts: { created: number; updated: number }): Promise<void> {
  for (const object of desired) {
    const name = object.metadata.name;
    const existing = actual.get(name);
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

async function deleteUnwanted<T extends KubeObject>(client: KubeClient, kind: Kind<T>, desired: readonly T[], actual: Map<string, T>, counts: { deleted: number }): Promise<void> {
  const wanted = new Set(desired.map((object) => object.metadata.name));
  for (const name of actual.keys()) {
    if (wanted.has(name)) continue;
    if (await client.delete(kind.path(name))) counts.deleted++;
  }
}
