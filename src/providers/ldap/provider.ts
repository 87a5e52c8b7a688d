/**
 * The `ldap` and `activedirectory` password providers (settings: ./settings.ts).
 *
 * A login, on one session (./connection.ts) bound as the service account:
 * 1. Inputs are checked BEFORE any network I/O: an empty password would be an
 *    "unauthenticated bind", which many directories answer with success — the classic LDAP
 *    login hole; empty, over-long or control-character usernames cannot be anyone.
 * 2. The user is searched by login name (filter objects, no string escaping: ./filters.ts);
 *    exactly one entry must match. None or several → `unauthenticated` (several is logged:
 *    the directory or the filters need fixing).
 * 3. The password is checked by binding as the entry's DN. Refused → `unauthenticated`.
 *    When no entry matched, the provider binds to a DN that does not exist with the same
 *    password instead, so both answers cost the same round trips (provider.ts contract).
 * 4. Disabled account (userEnabledAttribute & userDisabledBitMask) → `disabled`, reported
 *    only now that the password is proven. (Active Directory refuses the bind of a disabled
 *    account itself, so an AD user sees `unauthenticated` at step 3.)
 * 5. Rebound as the service account, the groups are read (./directory.ts).
 * Any connection problem, timeout or unexpected directory answer is `error`
 * PROVIDER_UNAVAILABLE, never `unauthenticated`.
 *
 * Identity: `providerUserId` is the user's DN normalised (./dn.ts: lower case, no spaces
 * around separators), so a change in how the directory spells it does not create a second
 * kubegate user; groups are `providerGroup(name, normalised group DN)`, e.g.
 * `corp-ldap:cn=ops,ou=groups,dc=example,dc=org`. `loginName` and `displayName` are the
 * entry's values (userLoginAttribute, userNameAttribute), not what was typed. `email` is the
 * first value of userEmailAttribute (default `mail`) that kubegate accepts as an address
 * (auth/email.ts): the directory controls it, so it counts as verified.
 *
 * `refreshIdentity(dn)` reads the same facts without a password, for the background group
 * refresh: `gone` when the entry was deleted, moved out of userSearchBase, or no longer
 * matches userObjectClass / userSearchFilter.
 *
 * `checkHealth()` (the background health check): a session bound as the service account
 * (every configured server tried in order, as for a login) reads userSearchBase itself.
 */
import { randomBytes } from 'node:crypto';
import { PresenceFilter } from 'ldapts';
import type { ProviderConfig } from '../../config/proxy.js';
import { KubegateError, isKubegateError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { vouchedEmail } from '../../auth/email.js';
import { providerGroup } from '../../auth/user.js';
import { MAX_PASSWORD_BYTES } from '../../auth/password.js';
import type { PasswordProvider, ProviderIdentity, ProviderLoginResult, ProviderRefreshResult } from '../provider.js';
import { openLdapSession, valuesOf } from './connection.js';
import type { LdapEntry, LdapSession } from './connection.js';
import { accountStateOf, findUserByLogin, lookUpGroupDns, readUserByDn } from './queries.js';
import { isDnWithin, normaliseDn } from './dn.js';
import { parseLdapSettings } from './settings.js';
import type { LdapProviderType } from './settings.js';

export interface LdapProviderDeps {
  readonly logger?: Logger | undefined;
}

export interface LdapProvider extends PasswordProvider {
  readonly type: LdapProviderType;
  refreshIdentity(providerUserId: string): Promise<ProviderRefreshResult>;
}

/** Longest login name looked up (AD's sAMAccountName is at most 20; uids are short too). */
const MAX_LOGIN_NAME_LENGTH = 256;

/** Creates the provider; throws CONFIG_INVALID naming `settings.<field>` for bad settings. */
export function createLdapProvider(config: ProviderConfig, deps: LdapProviderDeps = {}): LdapProvider {
  if (config.type !== 'ldap' && config.type !== 'activedirectory') {
    throw new TypeError('createLdapProvider needs a provider of type ldap or activedirectory');
  }
  const type: LdapProviderType = config.type;
  const name = config.name;
  const settings = parseLdapSettings(type, name, config.settings);
  const logger = deps.logger?.child({ provider: name });
  if (settings.tls === 'none') logger?.warn('LDAP provider without TLS: passwords cross the network in clear text');
  /** A DN under the search base that no entry has: the target of the equal-work bind. */
  const absentDn = `cn=kubegate-absent-${randomBytes(12).toString('hex')},${settings.userSearchBase}`;

  async function authenticatePassword(username: string, password: string): Promise<ProviderLoginResult> {
    if (typeof username !== 'string' || typeof password !== 'string') throw new TypeError('username and password must be strings');
    if (!isAcceptableLogin(username) || !isAcceptablePassword(password)) return { outcome: 'unauthenticated' };
    return withSession(async (session): Promise<ProviderLoginResult> => {
      const found = await findUserByLogin(session, settings, username);
      if (found.kind !== 'found') {
        if (found.kind === 'ambiguous') logger?.warn({ loginName: username, matches: found.count }, 'login name matches several LDAP entries; refusing it');
        // Whatever the directory answers to this bind, nobody of that name can log in.
        await session.bindAs(absentDn, password).catch(() => false);
        return { outcome: 'unauthenticated' };
      }
      const { entry } = found;
      if (!(await session.bindAs(entry.dn, password))) return { outcome: 'unauthenticated' };
      if (!isEnabled(entry)) return { outcome: 'disabled' };
      await session.bindServiceAccount();
      return { outcome: 'authenticated', identity: await identityOf(session, entry, username) };
    });
  }

  async function refreshIdentity(providerUserId: string): Promise<ProviderRefreshResult> {
    if (typeof providerUserId !== 'string') throw new TypeError('providerUserId must be a string');
    if (providerUserId === '' || !isDnWithin(providerUserId, settings.userSearchBase)) return { outcome: 'gone' };
    return withSession(async (session): Promise<ProviderRefreshResult> => {
      const entry = await readUserByDn(session, settings, providerUserId);
      if (entry === undefined) return { outcome: 'gone' };
      // A disabled account's groups do not matter: its tokens are about to go.
      const enabled = isEnabled(entry);
      return { outcome: 'found', enabled, identity: await identityOf(session, entry, undefined, enabled) };
    });
  }

  /** Runs `work` on a fresh session; every failure becomes an `error` outcome. */
  async function withSession<T>(work: (session: LdapSession) => Promise<T>): Promise<T | { outcome: 'error'; error: KubegateError }> {
    let session: LdapSession | undefined;
    try {
      session = await openLdapSession(settings, logger);
      return await work(session);
    } catch (error) {
      if (isKubegateError(error)) return { outcome: 'error', error };
      logger?.warn({ server: session?.server.url, err: error }, 'LDAP operation failed');
      return { outcome: 'error', error: new KubegateError('PROVIDER_UNAVAILABLE', undefined, { cause: error }) };
    } finally {
      await session?.close();
    }
  }

  /** Binds as the service account and reads the user search base itself (no entries listed). */
  async function checkHealth(): Promise<void> {
    const session = await openLdapSession(settings);
    try {
      await session.search(settings.userSearchBase, { scope: 'base', filter: new PresenceFilter({ attribute: 'objectClass' }), attributes: ['1.1'] });
    } finally {
      await session.close();
    }
  }

  function isEnabled(entry: LdapEntry): boolean {
    const state = accountStateOf(settings, entry);
    if (state === 'unreadable') {
      logger?.warn({ user: entry.dn, attribute: settings.userEnabledAttribute }, 'account state attribute is not a number; treating the account as disabled');
    }
    return state === 'enabled';
  }

  async function identityOf(session: LdapSession, entry: LdapEntry, typedLogin: string | undefined, withGroups = true): Promise<ProviderIdentity> {
    const loginName = valuesOf(entry, settings.userLoginAttribute)[0] ?? typedLogin ?? entry.dn;
    const displayName = valuesOf(entry, settings.userNameAttribute)[0] ?? loginName;
    const groupDns = withGroups ? await lookUpGroupDns(session, settings, type, entry, logger) : [];
    const email = settings.userEmailAttribute === undefined ? {} : vouchedEmail(valuesOf(entry, settings.userEmailAttribute));
    return { providerUserId: normaliseDn(entry.dn), loginName, displayName, groups: groupNames(groupDns), ...email };
  }

  function groupNames(dns: readonly string[]): string[] {
    const names: string[] = [];
    for (const dn of dns) {
      try {
        names.push(providerGroup(name, normaliseDn(dn)));
      } catch (error) {
        logger?.warn({ group: dn, err: error }, 'LDAP group DN cannot be a group name; ignoring it');
      }
    }
    return names;
  }

  return Object.freeze({ name, type, access: settings.access, authenticatePassword, refreshIdentity, canonicalGroupName: normaliseDn, checkHealth });
}

function isAcceptableLogin(username: string): boolean {
  return username.length > 0 && username.length <= MAX_LOGIN_NAME_LENGTH && !/[\u0000-\u001f\u007f]/.test(username) && username.trim() !== '';
}

function isAcceptablePassword(password: string): boolean {
  return password.length > 0 && Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES;
}

