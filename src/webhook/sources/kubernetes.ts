/**
 * The webhook's data, from the cluster's own API server: ClusterAuthTokens,
 * ClusterUserAttributes and Secrets of one namespace, each held in memory by an informer
 * (list + watch, re-list on 410, reconnect with backoff; kube/informer.ts).
 *
 * Design note:
 * - Secrets are reduced to their name and `data.hash` as they arrive: the namespace may hold
 *   other secrets (TLS keys, registry credentials) that this process must not keep. The hash
 *   is parsed then, once (tokens/hash.ts prepareHash), not on every review of its token.
 * - Changes are announced (`onTokenChanged`, `onUserChanged`) only when a field the
 *   verification reads changed — not for `lastUsedAt`, which this process itself stamps
 *   once a minute on busy tokens and which must not flush the verification cache.
 * - Side effects are best effort and never on a review's critical path: `recordUse` stamps
 *   `lastUsedAt` at most once per `touchIntervalMs` (a minute, as the proxy does) per token,
 *   within a budget of PATCHes per second, the rest waiting in a bounded queue (stamps.ts),
 *   so a burst of first uses (a morning's logins, a benchmark) neither slows reviews nor
 *   floods the API server and etcd with writes. The stamps' own watch events change no
 *   verification input, so they invalidate no cached answer. A token still carrying the
 *   deprecated `hash` field gets it moved into its Secret (created or patched) and the field
 *   cleared, as Rancher's kube-api-auth does.
 */
import type { Logger } from '../../log.js';
import type { WebhookMetrics } from '../../metrics.js';
import type { KubeClient, KubeObject } from '../../kube/client.js';
import { kubeStatusCode } from '../../kube/client.js';
import { createInformer } from '../../kube/informer.js';
import type { Informer, InformerEventType } from '../../kube/informer.js';
import type { ClusterAuthToken, ClusterUserAttribute, KubeSecret } from '../../kube/rancher.js';
import { clusterAuthTokensPath, clusterUserAttributesPath, secretHash, secretsPath } from '../../kube/rancher.js';
import { prepareHash } from '../../tokens/hash.js';
import type { PreparedHash } from '../../tokens/hash.js';
import type { WebhookSource } from '../verify.js';
import { createStampQueue } from './stamps.js';
import type { StampStats } from './stamps.js';

export interface KubernetesSourceOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly logger: Logger;
  readonly metrics?: WebhookMetrics;
  /** A token's verification inputs (token object or its Secret) changed or went away. */
  readonly onTokenChanged?: (name: string) => void;
  /** A user attribute changed or went away; `tokenNames` are the user's tokens held now. */
  readonly onUserChanged?: (userName: string, tokenNames: readonly string[]) => void;
  /** Least time between two `lastUsedAt` stamps of one token. Default 60000. */
  readonly touchIntervalMs?: number;
  /** The stamp budget (config `stamps`): PATCHes per second (0 = never stamp), tokens queued at most. */
  readonly stamps?: { readonly perSecond: number; readonly maxQueued: number };
  /** Informer tuning, for tests. */
  readonly minWatchTimeoutSeconds?: number;
  readonly initialBackoffMs?: number;
}

export interface KubernetesSource extends WebhookSource {
  start(): void;
  /** Stops watching and stamping (for good: queued stamps are forgotten). */
  stop(): void;
  /** Resolves once every resource was listed. */
  synced(): Promise<void>;
  /** Records a successful use of token `name` (background, rate-limited). */
  recordUse(name: string, at: Date): void;
  /** `lastUsedAt` stamps sent, failed, dropped (queue full) since start, and queued now. */
  stampStats(): StampStats;
  /** Objects held, by resource. */
  counts(): { clusterauthtokens: number; clusteruserattributes: number; secrets: number };
}

/** A Secret as kept: its name, its hash as written (compared on change) and as parsed (verified against). */
type StoredSecret = KubeObject & { readonly hash: string | undefined; readonly prepared: PreparedHash | undefined };

const DEFAULT_TOUCH_INTERVAL_MS = 60_000;
/** As config `stamps`' defaults. */
const DEFAULT_STAMPS = { perSecond: 20, maxQueued: 10_000 };

export function createKubernetesSource(options: KubernetesSourceOptions): KubernetesSource {
  const { client, namespace, logger, metrics } = options;
  const stamps = createStampQueue({
    ...(options.stamps ?? DEFAULT_STAMPS),
    touchIntervalMs: options.touchIntervalMs ?? DEFAULT_TOUCH_INTERVAL_MS,
    send: (name, at) => client.mergePatch(clusterAuthTokensPath(namespace, name), { lastUsedAt: at.toISOString().replace(/\.\d{3}Z$/, 'Z') }),
    stampable: (name) => tokens.get(name) !== undefined,
    onFailed: (name, error) => logger.debug({ err: error, tokenName: name }, 'stamping lastUsedAt failed'),
  });
  const migrating = new Set<string>();
  const tuning = {
    ...(options.minWatchTimeoutSeconds === undefined ? {} : { minWatchTimeoutSeconds: options.minWatchTimeoutSeconds }),
    ...(options.initialBackoffMs === undefined ? {} : { initialBackoffMs: options.initialBackoffMs }),
  };

  function hooks(resource: 'clusterauthtokens' | 'clusteruserattributes' | 'secrets') {
    return {
      onRestart: () => metrics?.watchRestarts.inc({ resource }),
      onError: (error: unknown) => logger.warn({ err: error, resource }, 'watching the Kubernetes API failed; retrying'),
    };
  }

  const tokens: Informer<ClusterAuthToken> = createInformer<ClusterAuthToken>(client, {
    path: clusterAuthTokensPath(namespace),
    ...tuning,
    ...hooks('clusterauthtokens'),
    onChange(type, object, previous) {
      metrics?.objects.set({ resource: 'clusterauthtokens' }, tokens.size);
      const token = object as ClusterAuthToken;
      if (type === 'deleted' || tokenInputsChanged(token, previous as ClusterAuthToken | undefined)) options.onTokenChanged?.(token.metadata.name);
      if (type !== 'deleted' && typeof token.hash === 'string' && token.hash !== '') migrateHash(token);
    },
  });
  const attributes: Informer<ClusterUserAttribute> = createInformer<ClusterUserAttribute>(client, {
    path: clusterUserAttributesPath(namespace),
    ...tuning,
    ...hooks('clusteruserattributes'),
    onChange(type, object, previous) {
      metrics?.objects.set({ resource: 'clusteruserattributes' }, attributes.size);
      if (type === 'deleted' || attributeChanged(object as ClusterUserAttribute, previous as ClusterUserAttribute | undefined)) {
        const userName = object.metadata.name;
        options.onUserChanged?.(userName, tokens.list().filter((token) => token.userName === userName).map((token) => token.metadata.name));
      }
    },
  });
  const secrets: Informer<StoredSecret> = createInformer<StoredSecret>(client, {
    path: secretsPath(namespace),
    ...tuning,
    ...hooks('secrets'),
    transform: (object) => {
      const hash = secretHash(object as KubeSecret);
      const metadata = { name: object.metadata.name, ...(object.metadata.resourceVersion === undefined ? {} : { resourceVersion: object.metadata.resourceVersion }) };
      return { metadata, hash, prepared: hash === undefined ? undefined : prepareHash(hash) };
    },
    onChange(type: InformerEventType, object, previous) {
      metrics?.objects.set({ resource: 'secrets' }, secrets.size);
      const stored = object as StoredSecret;
      if (type === 'deleted' || stored.hash !== (previous as StoredSecret | undefined)?.hash) options.onTokenChanged?.(stored.metadata.name);
    },
  });

  /** Moves a deprecated `hash` field into the token's Secret, then clears the field. */
  function migrateHash(token: ClusterAuthToken): void {
    const name = token.metadata.name;
    if (!secrets.hasSynced || migrating.has(name)) return;
    migrating.add(name);
    const hash = token.hash as string;
    void (async () => {
      const existing = secrets.get(name);
      const data = { hash: Buffer.from(hash, 'utf8').toString('base64') };
      if (existing === undefined) {
        try {
          await client.create<KubeSecret>(secretsPath(namespace), { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data });
        } catch (error) {
          if (kubeStatusCode(error) !== 409) throw error;
          await client.mergePatch(secretsPath(namespace, name), { data });
        }
      } else if (existing.hash === undefined) {
        await client.mergePatch(secretsPath(namespace, name), { data });
      }
      await client.mergePatch(clusterAuthTokensPath(namespace, name), { hash: null });
      logger.info({ tokenName: name }, 'moved a deprecated token hash into its Secret');
    })()
      .catch((error: unknown) => logger.warn({ err: error, tokenName: name }, 'moving a deprecated token hash into its Secret failed; will retry on the next change'))
      .finally(() => migrating.delete(name));
  }

  const informers = [tokens, attributes, secrets] as const;
  return {
    get ready() {
      return tokens.hasSynced && attributes.hasSynced && secrets.hasSynced;
    },
    clusterAuthToken: (name) => tokens.get(name),
    clusterUserAttribute: (userName) => attributes.get(userName),
    secretHash: (name) => secrets.get(name)?.prepared,
    start() {
      for (const informer of informers) informer.start();
    },
    stop() {
      stamps.stop();
      for (const informer of informers) informer.stop();
    },
    async synced() {
      await Promise.all(informers.map((informer) => informer.synced()));
    },
    recordUse: (name, at) => stamps.record(name, at),
    stampStats: () => stamps.stats(),
    counts: () => ({ clusterauthtokens: tokens.size, clusteruserattributes: attributes.size, secrets: secrets.size }),
  };
}

function tokenInputsChanged(token: ClusterAuthToken, previous: ClusterAuthToken | undefined): boolean {
  if (previous === undefined) return true;
  return (
    token.userName !== previous.userName ||
    token.enabled !== previous.enabled ||
    token.expiresAt !== previous.expiresAt ||
    token.hash !== previous.hash ||
    JSON.stringify(token.metadata.annotations ?? {}) !== JSON.stringify(previous.metadata.annotations ?? {})
  );
}

function attributeChanged(attribute: ClusterUserAttribute, previous: ClusterUserAttribute | undefined): boolean {
  if (previous === undefined) return true;
  return (
    attribute.enabled !== previous.enabled ||
    JSON.stringify(attribute.groups ?? []) !== JSON.stringify(previous.groups ?? []) ||
    JSON.stringify(attribute.extraByProvider ?? {}) !== JSON.stringify(previous.extraByProvider ?? {}) ||
    JSON.stringify(attribute.metadata.annotations ?? {}) !== JSON.stringify(previous.metadata.annotations ?? {})
  );
}
