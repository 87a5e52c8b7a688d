/**
 * Background refresh of provider groups, and revocation of what a provider no longer vouches
 * for.
 *
 * A login stores the provider's groups (store.putUserGroups); tokens live for days, groups
 * change in the meantime. Every `intervalSeconds`, for each linked identity whose cached
 * groups are older than `maxAgeSeconds`, the refresher asks the provider again
 * (`refreshIdentity`; providers without it, such as local, are skipped):
 * - found, enabled, still allowed by the access mode → the new groups are stored (the store
 *   announces the change, so token caches drop the old answer on every replica) and
 *   `onUserChanged` is called when they differ; the address the provider vouches for now is
 *   recorded by the login's own rules (verified-email.ts: only from the provider the user's
 *   address comes from, never one another user holds, none removes it), so a directory's
 *   changed `mail` renames an `email`-named user without waiting for a login (the store's
 *   `user` change drops cached identities and re-syncs the bindings);
 * - gone, disabled, or no longer allowed → every token the user got through THAT provider
 *   is deleted (store.deleteTokens({ userId, provider })), the cached groups are emptied,
 *   `onUserChanged` is called. Tokens of the user's other providers stay;
 * - error → the old groups stay, the failure is logged, the next round asks again. After a
 *   PROVIDER_UNAVAILABLE the provider's other identities wait for the next round too, so an
 *   outage costs one timeout per round, not one per user.
 * Rounds never overlap; `stop()` waits for the running one. Identities are listed through
 * store.listUsers + listIdentities (fine for thousands of users).
 *
 * `revokeDisabledProviders` runs once at start: tokens issued through a provider that is no
 * longer enabled (disabled or removed from the configuration) are deleted at once, since
 * nothing would ever refresh or revoke them otherwise.
 */
import { isKubegateError, toKubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { UNRESTRICTED_ACCESS, decideAccess } from './access.js';
import type { PasswordProvider, ProviderRefreshResult, ProviderRegistry } from './provider.js';
import { recordVerifiedEmail } from './verified-email.js';

const DEFAULT_GROUP_MAX_AGE_SECONDS = 3600;
const DEFAULT_GROUP_REFRESH_INTERVAL_SECONDS = 300;

export interface GroupRefresherOptions {
  readonly store: Store;
  readonly providers: Pick<ProviderRegistry, 'get'>;
  readonly logger: Logger;
  /** Cached groups older than this are refreshed. Default 3600. */
  readonly maxAgeSeconds?: number;
  /** Time between rounds. Default 300. */
  readonly intervalSeconds?: number;
  /** Called with the kubegate user ID whenever a user's groups, tokens or recorded address changed. */
  readonly onUserChanged?: (userId: string) => void;
  readonly now?: () => Date;
}

export interface GroupRefreshSummary {
  /** Identities asked. */
  readonly checked: number;
  /** Identities whose stored groups changed. */
  readonly changed: number;
  /** Identities whose provider's address changed the user's recorded one. */
  readonly addressesChanged: number;
  /** Identities whose tokens were revoked (gone, disabled, not allowed). */
  readonly revoked: number;
  /** Identities the provider could not answer for (kept, retried next round). */
  readonly failed: number;
}

export interface GroupRefresher {
  /** Starts the periodic rounds (the first one at once). Idempotent. */
  start(): void;
  /** Stops the rounds and waits for a running one to end. */
  stop(): Promise<void>;
  /** One round now (waits for a running one instead of overlapping it). */
  refreshOnce(): Promise<GroupRefreshSummary>;
}

type RevokeReason = 'gone' | 'disabled' | 'not allowed';

export function createGroupRefresher(options: GroupRefresherOptions): GroupRefresher {
  const { store, providers, logger, onUserChanged } = options;
  const maxAgeMs = (options.maxAgeSeconds ?? DEFAULT_GROUP_MAX_AGE_SECONDS) * 1000;
  const intervalMs = (options.intervalSeconds ?? DEFAULT_GROUP_REFRESH_INTERVAL_SECONDS) * 1000;
  const now = options.now ?? (() => new Date());
  if (!(maxAgeMs >= 0) || !(intervalMs > 0)) throw new TypeError('maxAgeSeconds must be ≥ 0 and intervalSeconds > 0');

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<GroupRefreshSummary> | undefined;
  let stopping = false;

  function refreshOnce(): Promise<GroupRefreshSummary> {
    running ??= runRound().finally(() => {
      running = undefined;
    });
    return running;
  }

  async function runRound(): Promise<GroupRefreshSummary> {
    const counts = { checked: 0, changed: 0, addressesChanged: 0, revoked: 0, failed: 0 };
    const unavailable = new Set<string>();
    for (const user of await store.listUsers()) {
      let recordedEmail = user.email;
      for (const identity of await store.listIdentities(user.id)) {
        if (stopping) return counts;
        const provider = providers.get(identity.provider);
        const refresh = provider?.refreshIdentity;
        if (provider === undefined || refresh === undefined || unavailable.has(provider.name)) continue;
        try {
          const cached = await store.getUserGroups(user.id, provider.name);
          if (cached !== undefined && now().getTime() - cached.refreshedAt.getTime() < maxAgeMs) continue;
          counts.checked += 1;
          const result = await askProvider(() => refresh.call(provider, identity.providerUserId));
          if (result.outcome === 'error') {
            counts.failed += 1;
            if (isKubegateError(result.error, 'PROVIDER_UNAVAILABLE')) unavailable.add(provider.name);
            logger.warn({ provider: provider.name, userId: user.id, err: result.error }, 'group refresh failed; keeping the groups for now');
            continue;
          }
          const reason = await revokeReason(provider, result, user.id);
          if (reason !== undefined) {
            await revoke(user.id, provider.name, reason);
            counts.revoked += 1;
            continue;
          }
          if (result.outcome !== 'found') continue;
          const groups = [...result.identity.groups];
          await store.putUserGroups({ userId: user.id, provider: provider.name, groups, refreshedAt: now() });
          const groupsChanged = cached === undefined || !sameGroups(cached.groups, groups);
          if (groupsChanged) counts.changed += 1;
          const recorded = await recordVerifiedEmail(store, logger, user.id, provider.name, result.identity.email);
          const addressChanged = recorded !== undefined && recorded.email !== recordedEmail;
          if (addressChanged) {
            counts.addressesChanged += 1;
            recordedEmail = recorded.email;
          }
          if (groupsChanged || addressChanged) onUserChanged?.(user.id);
        } catch (error) {
          counts.failed += 1;
          logger.warn({ provider: provider.name, userId: user.id, err: error }, 'group refresh failed; keeping the groups for now');
        }
      }
    }
    if (counts.checked > 0) logger.info(counts, 'provider groups refreshed');
    return counts;
  }

  async function revokeReason(provider: PasswordProvider, result: ProviderRefreshResult, userId: string): Promise<RevokeReason | undefined> {
    if (result.outcome === 'gone') return 'gone';
    if (result.outcome !== 'found') return undefined;
    if (!result.enabled) return 'disabled';
    const decision = await decideAccess(store, provider.access ?? UNRESTRICTED_ACCESS, result.identity, userId);
    return decision.allowed ? undefined : 'not allowed';
  }

  async function revoke(userId: string, provider: string, reason: RevokeReason): Promise<void> {
    const deleted = await store.deleteTokens({ userId, provider });
    await store.putUserGroups({ userId, provider, groups: [], refreshedAt: now() });
    logger.info({ provider, userId, reason, tokens: deleted.length }, 'provider no longer vouches for the user; tokens revoked');
    onUserChanged?.(userId);
  }

  return {
    start() {
      if (timer !== undefined) return;
      stopping = false;
      const round = (): void => {
        refreshOnce().catch((error: unknown) => logger.error({ err: error }, 'group refresh round failed'));
      };
      timer = setInterval(round, intervalMs);
      timer.unref();
      round();
    },
    async stop() {
      stopping = true;
      clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
    refreshOnce,
  };
}

export interface RevokeDisabledProvidersOptions {
  readonly store: Store;
  /** Both lookups: password providers (`get`) and browser-login providers (`webLogin`). */
  readonly providers: Pick<ProviderRegistry, 'get' | 'webLogin'>;
  readonly logger: Logger;
  readonly onUserChanged?: (userId: string) => void;
}

/**
 * Deletes every token issued through a provider that is not enabled now (disabled in the
 * configuration, or no longer configured). A provider is enabled when the registry knows it
 * under either lookup: OIDC and GitHub log people in through the browser, not by password.
 * Returns the names of the deleted tokens.
 */
export async function revokeDisabledProviders(options: RevokeDisabledProvidersOptions): Promise<string[]> {
  const { store, providers, logger, onUserChanged } = options;
  const tokens = await store.listTokens();
  const enabled = (name: string): boolean => providers.get(name) !== undefined || providers.webLogin?.(name) !== undefined;
  const orphaned = [...new Set(tokens.map((token) => token.provider))].filter((name) => !enabled(name));
  const deleted: string[] = [];
  for (const provider of orphaned) {
    const names = await store.deleteTokens({ provider });
    deleted.push(...names);
    logger.warn({ provider, tokens: names.length }, 'provider is not enabled; its tokens were revoked');
  }
  const removed = new Set(deleted);
  for (const userId of new Set(tokens.filter((token) => removed.has(token.name)).map((token) => token.userId))) onUserChanged?.(userId);
  return deleted;
}

/** The provider's answer; a throw (a provider bug) is an `error`, which keeps the groups. */
async function askProvider(refresh: () => Promise<ProviderRefreshResult>): Promise<ProviderRefreshResult> {
  try {
    return await refresh();
  } catch (error) {
    return { outcome: 'error', error: toKubegateError(error) };
  }
}

function sameGroups(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((group, index) => group === b[index]);
}
