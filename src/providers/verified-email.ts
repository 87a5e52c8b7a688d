/**
 * Recording the e-mail address a provider vouches for on the kubegate user, at each login
 * (proxy/api/login.ts), for each new OIDC bearer token (oidc/bearer.ts) and at each
 * background refresh of the user's identity (group-refresh.ts), so that the `email`
 * Kubernetes user name (auth/principal.ts) follows the provider.
 *
 * Design note: a user linked to several providers takes its address from ONE of them, the
 * first linked (the oldest identity; equal times: the provider name first in order), so it
 * never flips between the addresses of two providers as they log in or are refreshed in
 * turn. What the other providers vouch for (an address, or none) changes nothing.
 *
 * Design note: an address is one person's. One that another user already holds (in any
 * case: two providers, or a directory that reassigned it) is NOT recorded for the second
 * user, who then has none and falls back to `provider:login`; the first keeps it. That is
 * logged as a warning with both user IDs and never the address (personal data, and the
 * logs are read by more people than the user list). A race between two logins claiming
 * the same address is settled by the store's unique index (STORE_CONSTRAINT), the same way.
 * Nothing is written when the address did not change, so a login costs no store change
 * (and no re-sync) unless the provider's answer did.
 */
import { isKubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Identity, Store, User } from '../store/store.js';

export type EmailStore = Pick<Store, 'getUser' | 'getUserByEmail' | 'updateUser' | 'listIdentities'>;

/**
 * Makes `email` (normalised, auth/email.ts; undefined: the provider vouches for none), as
 * `provider` vouches for it, the user's recorded address — when `provider` is the one the
 * user's address comes from (addressProviderOf) and no other user holds it. Answers the user
 * as stored after.
 */
export async function recordVerifiedEmail(store: EmailStore, logger: Logger, userId: string, provider: string, email: string | undefined): Promise<User | undefined> {
  const user = await store.getUser(userId);
  if (user === undefined) return undefined;
  const wanted = email ?? null;
  if (user.email === wanted) return user;
  if ((await addressProviderOf(store, userId)) !== provider) return user;
  if (wanted !== null) {
    const holder = await store.getUserByEmail(wanted);
    if (holder === undefined || holder.id === userId) {
      try {
        return await store.updateUser(userId, { email: wanted });
      } catch (error) {
        if (!isKubegateError(error, 'STORE_CONSTRAINT')) throw error;
      }
    }
    const other = holder ?? (await store.getUserByEmail(wanted));
    logger.warn(
      { user: userId, holder: other?.id },
      'the e-mail address the provider vouches for belongs to another kubegate user; it is not recorded for this one, who is named without it',
    );
  }
  return user.email === null ? user : store.updateUser(userId, { email: null });
}

/** The provider a linked user's address comes from: its first linked identity's; undefined without any. */
async function addressProviderOf(store: Pick<Store, 'listIdentities'>, userId: string): Promise<string | undefined> {
  const [first] = (await store.listIdentities(userId)).toSorted(olderFirst);
  return first?.provider;
}

function olderFirst(a: Identity, b: Identity): number {
  return a.createdAt.getTime() - b.createdAt.getTime() || (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0);
}
