/**
 * Recording the e-mail address a provider vouches for on the kubegate user, at each login
 * (proxy/api/login.ts) and for each new OIDC bearer token (oidc/bearer.ts), so that the
 * `email` Kubernetes user name (auth/principal.ts) follows the provider.
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
import type { Store, User } from '../store/store.js';

export type EmailStore = Pick<Store, 'getUser' | 'getUserByEmail' | 'updateUser'>;

/**
 * Makes `email` (normalised, auth/email.ts; undefined: the provider vouches for none) the
 * user's recorded address, unless another user holds it. Answers the user as stored after.
 */
export async function recordVerifiedEmail(store: EmailStore, logger: Logger, userId: string, email: string | undefined): Promise<User | undefined> {
  const user = await store.getUser(userId);
  if (user === undefined) return undefined;
  const wanted = email ?? null;
  if (user.email === wanted) return user;
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
