/**
 * OIDC claims → a kubegate provider identity, shared by the web/device login
 * (src/providers/oidc/oidc.ts) and the ID-token bearer authenticator
 * (bearer.ts), so both paths see the same person the same way.
 *
 * - The stable ID is `sub` (never the name or e-mail, which people can change).
 * - The login name is the configured username claim, falling back to `sub`; a reserved
 *   (`system:…`) or otherwise unusable one refuses the login (IDENTITY_NAME_RESERVED /
 *   IDENTITY_NAME_INVALID) rather than being silently replaced.
 * - Groups come from the configured claim (an array of strings, or one string), each
 *   prefixed with the provider name; entries that are not usable names (`system:…`, control
 *   characters, not a string) are dropped: provider data never becomes a `system:` group.
 * - The e-mail address is the configured claim (default `email`), taken only when the token
 *   says `email_verified: true` (a boolean, as Kubernetes' own OIDC authenticator requires),
 *   or, with `assumeEmailVerified` (an issuer that never sends `email_verified` and whose
 *   addresses are trusted), when `email_verified` is absent — never when it is false. An
 *   address kubegate does not accept (auth/email.ts) is no address: the identity says it
 *   was refused (`emailRefused`), and the login goes on without one.
 */
import { normalisedEmailAddress, vouchedEmail } from '../../auth/email.js';
import { assertProviderName, providerGroup } from '../../auth/user.js';
import { KubegateError, isKubegateError } from '../../errors.js';
import type { ProviderIdentity } from '../provider.js';

/** Longest `sub` kept (OIDC Core allows 255 ASCII characters). */
const MAX_SUBJECT_LENGTH = 255;
/** Most groups taken from one token: a bound on what a provider can make us store. */
export const MAX_GROUPS = 1000;

export interface ClaimNames {
  readonly usernameClaim: string;
  readonly groupsClaim: string;
  readonly emailClaim: string;
  /** Take the address when `email_verified` is absent (never when it is false). */
  readonly assumeEmailVerified: boolean;
}

/** The verified e-mail address in `claims`, normalised; undefined when there is none to trust. */
export function verifiedEmailOf(claims: Readonly<Record<string, unknown>>, names: Pick<ClaimNames, 'emailClaim' | 'assumeEmailVerified'>): string | undefined {
  return isEmailVerified(claims, names) ? normalisedEmailAddress(claims[names.emailClaim]) : undefined;
}

function isEmailVerified(claims: Readonly<Record<string, unknown>>, names: Pick<ClaimNames, 'assumeEmailVerified'>): boolean {
  const verified = claims['email_verified'];
  return verified === true || (verified === undefined && names.assumeEmailVerified);
}

/** `sub`, or IDENTITY_NAME_INVALID when it is missing, empty or too long. */
export function subjectOf(claims: Readonly<Record<string, unknown>>): string {
  const sub = claims['sub'];
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) {
    throw new KubegateError('IDENTITY_NAME_INVALID', 'the ID token has no usable sub claim');
  }
  return sub;
}

/** The provider-prefixed groups in `claims[groupsClaim]`; unusable entries dropped. */
export function groupsFromClaims(providerName: string, claims: Readonly<Record<string, unknown>>, groupsClaim: string): string[] {
  const value = claims[groupsClaim];
  const raw = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  const groups: string[] = [];
  for (const entry of raw.slice(0, MAX_GROUPS)) {
    if (typeof entry !== 'string') continue;
    try {
      groups.push(providerGroup(providerName, entry));
    } catch (error) {
      if (!isKubegateError(error)) throw error;
    }
  }
  return [...new Set(groups)];
}

/**
 * The identity in ID token claims. `groups` replaces the token's groups when they come from
 * elsewhere (the userinfo endpoint).
 */
export function identityFromClaims(
  providerName: string,
  claims: Readonly<Record<string, unknown>>,
  names: ClaimNames,
  groups?: readonly string[],
): ProviderIdentity {
  const sub = subjectOf(claims);
  const claimed = claims[names.usernameClaim];
  const loginName = assertProviderName(typeof claimed === 'string' && claimed.length > 0 ? claimed : sub, 'the login name');
  const name = claims['name'];
  return {
    providerUserId: sub,
    loginName,
    displayName: typeof name === 'string' && name.length > 0 && name.length <= 256 ? name : loginName,
    groups: groups === undefined ? groupsFromClaims(providerName, claims, names.groupsClaim) : [...groups],
    ...(isEmailVerified(claims, names) ? vouchedEmail([claims[names.emailClaim]]) : {}),
  };
}
