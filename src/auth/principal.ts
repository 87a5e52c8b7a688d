/**
 * The Kubernetes user name of a kubegate user: what downstream audit logs and RBAC see, per
 * installation (`identity.kubernetesUsername`).
 *
 * - `id` (default): the stable user ID, `u-` + 12 base32 characters. Never changes, even on
 *   a rename; unreadable in an audit log.
 * - `provider:login`: the provider of the login and the login name, `ldap:alice`,
 *   `local:admin`: readable, and unique, since login names are unique among kubegate users
 *   and the provider tells same-named people of two directories apart. It changes when a
 *   login name does; a user who logs in through two providers has one name per provider
 *   (role bindings name both).
 * - `email`: the user's recorded, verified e-mail address (`alice@example.org`; store
 *   `User.email`: from the provider at each login, or set by an admin for local users). A
 *   user without one falls back to `provider:login`. The two cannot collide: an address
 *   never contains `:` (auth/email.ts), a `provider:login` name always does. The name
 *   follows the address: when the provider changes it, the next login records the new one
 *   (the store announces a user change: caches drop the user, the sync re-binds).
 *
 * Only the user *name* changes: the uid stays the user ID everywhere (Impersonate-Uid, the
 * TokenReview uid, the JWT `sub`), and inside kubegate (memberships, caches, audit) a user is
 * always its ID — `UserInfo.name`; `UserInfo.kubernetesName` carries this name when it differs.
 *
 * Provider names are end-user-free (configuration), login names are not: a name that would
 * fall into `system:` or kubegate's own `kubegate:` space (the sync's user) is refused, and
 * configuration refuses providers named `system` or `kubegate` in these modes.
 */
import { RESERVED_PROVIDER_PREFIXES } from '../config/identity.js';
import type { KubernetesUsernameFormat } from '../config/identity.js';
import { KubegateError, isKubegateError, toKubegateError } from '../errors.js';
import { authenticated, unauthenticated, undecided } from './authenticator.js';
import type { AuthResult, TokenAuthenticator } from './authenticator.js';
import { normalisedEmailAddress } from './email.js';
import type { AuthLookups } from './lookups.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, makeUserInfo } from './user.js';
import type { UserInfo } from './user.js';


export interface PrincipalInput {
  /** The kubegate user ID. */
  readonly id: string;
  /** The login name (unique among users). */
  readonly login: string;
  /** The provider the user logged in with. */
  readonly provider: string;
  /** The user's recorded verified e-mail address (`email` format only). */
  readonly email?: string | null | undefined;
}

/** The Kubernetes user name for `format`; IDENTITY_NAME_RESERVED for a name in a reserved space. */
export function kubernetesUsername(format: KubernetesUsernameFormat, input: PrincipalInput): string {
  if (format === 'id') return input.id;
  if (format === 'email' && input.email !== undefined && input.email !== null) {
    const address = normalisedEmailAddress(input.email);
    if (address === undefined) throw new KubegateError('IDENTITY_NAME_INVALID', 'the recorded e-mail address is not one kubegate accepts');
    return address;
  }
  const name = `${input.provider}:${input.login}`;
  const prefix = name.slice(0, name.indexOf(':')).toLowerCase();
  if (RESERVED_PROVIDER_PREFIXES.includes(prefix)) {
    throw new KubegateError('IDENTITY_NAME_RESERVED', `the Kubernetes user name must not start with "${prefix}:"`);
  }
  return name;
}

/** The name Kubernetes sees for `user` (its ID unless the installation names users otherwise). */
export function kubernetesNameOf(user: UserInfo): string {
  return user.kubernetesName ?? user.name;
}

/**
 * Names every user `inner` authenticates for `format`, from the login-name and provider
 * extras every kubegate authenticator sets, and (format `email`) the user's recorded address,
 * read through `lookups` (on a miss of the cache in front: the answer is cached with the
 * name). An identity without them, or whose name would be reserved, is refused (fail
 * closed): it never reaches a cluster under its ID instead; a store that cannot answer is
 * `error`, as for any lookup.
 */
export function withKubernetesUsername(inner: TokenAuthenticator, format: KubernetesUsernameFormat, lookups?: Pick<AuthLookups, 'getUser'>): TokenAuthenticator {
  if (format === 'id') return inner;
  if (format === 'email' && lookups === undefined) throw new TypeError('the email format needs the user lookup');
  return {
    async authenticateToken(token, options): Promise<AuthResult> {
      const result = await inner.authenticateToken(token, options);
      if (result.outcome !== 'authenticated') return result;
      const { user } = result;
      const login = user.extra[EXTRA_LOGIN_NAME]?.[0];
      const provider = user.extra[EXTRA_PROVIDER]?.[0];
      if (login === undefined || provider === undefined) return unauthenticated('IDENTITY_NAME_INVALID');
      let kubernetesName: string;
      try {
        const email = format === 'email' ? ((await lookups!.getUser(user.name))?.email ?? null) : null;
        kubernetesName = kubernetesUsername(format, { id: user.name, login, provider, email });
      } catch (error) {
        if (isKubegateError(error) && (error.code === 'IDENTITY_NAME_INVALID' || error.code === 'IDENTITY_NAME_RESERVED')) return unauthenticated(error.code);
        return undecided(isKubegateError(error) ? error : new KubegateError('AUTH_UNDECIDED', undefined, { cause: toKubegateError(error) }));
      }
      return authenticated(makeUserInfo({ ...user, kubernetesName }), result.token);
    },
  };
}
