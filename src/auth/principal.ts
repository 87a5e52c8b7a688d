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
 *
 * Only the user *name* changes: the uid stays the user ID everywhere (Impersonate-Uid, the
 * TokenReview uid, the JWT `sub`), and inside kubegate (memberships, caches, audit) a user is
 * always its ID — `UserInfo.name`; `UserInfo.kubernetesName` carries this name when it differs.
 *
 * Provider names are end-user-free (configuration), login names are not: a name that would
 * fall into `system:` or kubegate's own `kubegate:` space (the sync's user) is refused, and
 * configuration refuses providers named `system` or `kubegate` in this mode.
 */
import { RESERVED_PROVIDER_PREFIXES } from '../config/identity.js';
import type { KubernetesUsernameFormat } from '../config/identity.js';
import { KubegateError, isKubegateError } from '../errors.js';
import { authenticated, unauthenticated } from './authenticator.js';
import type { AuthResult, TokenAuthenticator } from './authenticator.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, makeUserInfo } from './user.js';
import type { UserInfo } from './user.js';


export interface PrincipalInput {
  /** The kubegate user ID. */
  readonly id: string;
  /** The login name (unique among users). */
  readonly login: string;
  /** The provider the user logged in with. */
  readonly provider: string;
}

/** The Kubernetes user name for `format`; IDENTITY_NAME_RESERVED for a name in a reserved space. */
export function kubernetesUsername(format: KubernetesUsernameFormat, input: PrincipalInput): string {
  if (format === 'id') return input.id;
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
 * extras every kubegate authenticator sets. An identity without them, or whose name would be
 * reserved, is refused (fail closed): it never reaches a cluster under its ID instead.
 */
export function withKubernetesUsername(inner: TokenAuthenticator, format: KubernetesUsernameFormat): TokenAuthenticator {
  if (format === 'id') return inner;
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
        kubernetesName = kubernetesUsername(format, { id: user.name, login, provider });
      } catch (error) {
        return unauthenticated(isKubegateError(error) ? error.code : 'IDENTITY_NAME_INVALID');
      }
      return authenticated(makeUserInfo({ ...user, kubernetesName }), result.token);
    },
  };
}
