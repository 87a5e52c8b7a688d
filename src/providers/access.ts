/**
 * Provider access modes, as in Rancher: who may log in through a provider beyond having a
 * correct password there.
 *
 * - `unrestricted`: anyone the provider authenticates.
 * - `restricted`: the allowed principals, plus anyone who is a member of at least one
 *   cluster (directly as a user, or through one of the groups the provider reports).
 * - `required`: the allowed principals only.
 *
 * Principals, as written in a provider's `settings.allowedPrincipals`:
 * - `user:<providerUserId>`: one person, by the provider's stable ID (LDAP: the user's DN);
 * - `group:<provider>:<group>`: everyone in a group, written exactly as kubegate names the
 *   group (the provider-prefixed name, e.g. `group:corp-ldap:cn=ops,ou=groups,dc=example,dc=org`);
 * - Rancher's forms, for migrations: `<type>_user://<id>` (`openldap_user://<dn>`,
 *   `activedirectory_user://<dn>`) and `<type>_group://<id>`, read as the two above for
 *   THIS provider (the `<type>` part is not checked against it).
 * A provider may pass a normaliser (LDAP: DN spelling, src/providers/ldap/dn.ts) so that
 * principals match its IDs however the admin spelled them. Principals are parsed when the
 * provider is created, so a typo fails the start-up rather than silently locking people out;
 * `required` with no principal at all is refused for the same reason.
 *
 * The decision is made at login and again by the background group refresh
 * (src/providers/group-refresh.ts), which revokes the tokens of someone no longer allowed.
 */
import * as z from 'zod';
import { KubegateError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { ProviderIdentity } from './identity.js';

const ACCESS_MODES = ['unrestricted', 'restricted', 'required'] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

export interface AccessPolicy {
  readonly mode: AccessMode;
  /** Canonical principals: `user:<providerUserId>` and `group:<provider-prefixed group>`. */
  readonly allowedPrincipals: readonly string[];
}

export type AccessDecision = { readonly allowed: true } | { readonly allowed: false; readonly error: KubegateError };

export const UNRESTRICTED_ACCESS: AccessPolicy = Object.freeze({ mode: 'unrestricted', allowedPrincipals: Object.freeze([]) });

const ALLOWED: AccessDecision = Object.freeze({ allowed: true });
const MAX_PRINCIPALS = 10_000;
const MAX_PRINCIPAL_LENGTH = 2048;

/** The zod fields every provider's settings schema spreads in: `accessMode`, `allowedPrincipals`. */
export const accessSettingsShape = {
  accessMode: z.enum(ACCESS_MODES).default('unrestricted'),
  allowedPrincipals: z.array(z.string().min(1).max(MAX_PRINCIPAL_LENGTH)).max(MAX_PRINCIPALS).default([]),
};

export interface AccessPolicyOptions {
  /** The provider's name: the prefix of its groups. */
  readonly providerName: string;
  /** Brings a user ID into the provider's canonical spelling; default: unchanged. */
  readonly normaliseUserId?: (id: string) => string;
  /** Brings a group name (without the provider prefix) into canonical spelling; default: unchanged. */
  readonly normaliseGroup?: (group: string) => string;
}

const RANCHER_PRINCIPAL = /^[a-z][a-z0-9]*_(user|group):\/\/(.+)$/s;

/**
 * Builds the policy from decoded settings. Throws CONFIG_INVALID naming the field relative to
 * the provider (`settings.allowedPrincipals[2]`), never quoting the value.
 */
export function createAccessPolicy(
  settings: { readonly accessMode: AccessMode; readonly allowedPrincipals: readonly string[] },
  options: AccessPolicyOptions,
): AccessPolicy {
  const normaliseUserId = options.normaliseUserId ?? ((id: string) => id);
  const normaliseGroup = options.normaliseGroup ?? ((group: string) => group);
  const groupPrefix = `${options.providerName}:`;
  const principals = settings.allowedPrincipals.map((principal, index) => {
    const field = `settings.allowedPrincipals[${index}]`;
    const rancher = RANCHER_PRINCIPAL.exec(principal);
    if (rancher !== null) {
      const [, kind, id = ''] = rancher;
      return kind === 'user' ? userPrincipal(normaliseUserId(id)) : groupPrincipal(`${groupPrefix}${normaliseGroup(id)}`);
    }
    if (principal.startsWith('user:') && principal.length > 'user:'.length) return userPrincipal(normaliseUserId(principal.slice('user:'.length)));
    if (principal.startsWith('group:')) {
      const group = principal.slice('group:'.length);
      if (!group.startsWith(groupPrefix) || group.length === groupPrefix.length) {
        throw new KubegateError('CONFIG_INVALID', `${field}: must name a group of this provider: group:${groupPrefix}<group>`, { field });
      }
      return groupPrincipal(`${groupPrefix}${normaliseGroup(group.slice(groupPrefix.length))}`);
    }
    throw new KubegateError(
      'CONFIG_INVALID',
      `${field}: must be user:<id>, group:<provider>:<group>, <type>_user://<id> or <type>_group://<id>`,
      { field },
    );
  });
  if (settings.accessMode === 'required' && principals.length === 0) {
    throw new KubegateError('CONFIG_INVALID', 'settings.allowedPrincipals: must name at least one principal when accessMode is required', {
      field: 'settings.allowedPrincipals',
    });
  }
  return Object.freeze({ mode: settings.accessMode, allowedPrincipals: Object.freeze([...new Set(principals)]) });
}

function userPrincipal(providerUserId: string): string {
  return `user:${providerUserId}`;
}

/** `group` is the provider-prefixed group name. */
function groupPrincipal(group: string): string {
  return `group:${group}`;
}

/** The principals an identity holds: its user principal and one per group. */
export function principalsOf(identity: ProviderIdentity): string[] {
  return [userPrincipal(identity.providerUserId), ...identity.groups.map(groupPrincipal)];
}

/**
 * The decision for one identity. `isMemberOfAnyCluster` matters only in `restricted` mode
 * (see decideAccess, which looks it up only then).
 */
export function checkAccess(policy: AccessPolicy, identity: ProviderIdentity, facts: { readonly isMemberOfAnyCluster: boolean }): AccessDecision {
  if (policy.mode === 'unrestricted') return ALLOWED;
  if (principalsOf(identity).some((principal) => policy.allowedPrincipals.includes(principal))) return ALLOWED;
  if (policy.mode === 'restricted' && facts.isMemberOfAnyCluster) return ALLOWED;
  return { allowed: false, error: new KubegateError('FORBIDDEN', 'the provider does not allow this user') };
}

/**
 * checkAccess with the cluster-membership fact looked up in the store, only when the mode
 * needs it. `userId` is the kubegate user, or undefined on a first login (no user yet: only
 * group memberships can count). Store failures propagate (STORE_UNAVAILABLE).
 */
export async function decideAccess(
  store: Pick<Store, 'listMembershipsOf'>,
  policy: AccessPolicy,
  identity: ProviderIdentity,
  userId: string | undefined,
): Promise<AccessDecision> {
  const first = checkAccess(policy, identity, { isMemberOfAnyCluster: false });
  if (first.allowed || policy.mode !== 'restricted') return first;
  const memberships = await store.listMembershipsOf({ users: userId === undefined ? [] : [userId], groups: identity.groups });
  return checkAccess(policy, identity, { isMemberOfAnyCluster: memberships.length > 0 });
}
