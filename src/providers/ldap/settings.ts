/**
 * Settings of the `ldap` (OpenLDAP and friends) and `activedirectory` providers, named as in
 * Rancher's LDAP/AD configuration so that an admin can copy them over. Decoded once, when the
 * provider is created; any problem is CONFIG_INVALID naming the field relative to the provider
 * (`settings.servers[1]`; src/providers/index.ts prefixes `providers[i].`), never quoting the
 * value (it may be a password).
 *
 * | setting | default (ldap / activedirectory) | meaning |
 * |---|---|---|
 * | servers | required | hosts (`ldap1.corp`, `10.0.0.5:1389`, `[::1]`) or URLs (`ldaps://ldap1.corp:636`), tried in order |
 * | port | 389, 636 with tls ldaps | port for servers that do not name one |
 * | tls | starttls | `none` (passwords in clear: test setups only), `starttls`, `ldaps` |
 * | caCertificate | system roots | PEM bundle that verifies the servers (starttls / ldaps) |
 * | connectionTimeoutSeconds | 10 | bound on connecting + TLS + service bind, and on each operation |
 * | serviceAccountDn, serviceAccountPassword | required | the account that searches |
 * | userSearchBase | required | where users are searched (subtree) |
 * | userLoginAttribute | uid / sAMAccountName | what the login name is matched against |
 * | userObjectClass | inetOrgPerson / person | |
 * | userSearchFilter | none | an extra filter ANDed to the user search, e.g. `(department=ops)` |
 * | userNameAttribute | cn / displayName | display name |
 * | userEmailAttribute | mail | the user's e-mail address, directory-controlled (`""`: do not read) |
 * | userMemberAttribute | memberOf | attribute listing the user's group DNs (`""`: do not read) |
 * | userEnabledAttribute, userDisabledBitMask | none, 0 / userAccountControl, 2 | disabled when (value & mask) ≠ 0 |
 * | groupSearchBase | userSearchBase | where groups are searched (subtree) |
 * | groupObjectClass | groupOfNames / group | `posixGroup` for RFC 2307 groups |
 * | groupSearchFilter | none | extra filter ANDed to group searches |
 * | groupMemberMappingAttribute | member | the group attribute that lists members (`memberUid`) |
 * | groupMemberUserAttribute | dn | what it holds: the user's DN, or a user attribute (`uid`) |
 * | groupNameAttribute | cn | accepted for Rancher compatibility; kubegate names groups by DN |
 * | nestedGroupMembership | false | also groups of groups (AD: matching rule 1.2.840.113556.1.4.1941) |
 * | accessMode, allowedPrincipals | unrestricted, [] | src/providers/access.ts |
 *
 * A server URL's scheme must agree with `tls` (`ldaps://` only with `tls: ldaps`), so there
 * is one place that says whether a connection is encrypted.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { FilterParser } from 'ldapts';
import type { Filter } from 'ldapts';
import * as z from 'zod';
import { KubegateError } from '../../errors.js';
import { accessSettingsShape, createAccessPolicy } from '../access.js';
import type { AccessPolicy } from '../access.js';
import { parseProviderSettings } from '../settings.js';
import { isDistinguishedName, normaliseDn } from './dn.js';

export type LdapProviderType = 'ldap' | 'activedirectory';
export type LdapTlsMode = 'none' | 'starttls' | 'ldaps';

export interface LdapServer {
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** `ldap://host:port` or `ldaps://host:port`, for the client library and logs. */
  readonly url: string;
}

export interface LdapSettings {
  readonly servers: readonly LdapServer[];
  readonly tls: LdapTlsMode;
  readonly caCertificate: string | undefined;
  readonly connectionTimeoutMs: number;
  readonly serviceAccountDn: string;
  readonly serviceAccountPassword: string;
  readonly userSearchBase: string;
  readonly userLoginAttribute: string;
  readonly userObjectClass: string;
  readonly userSearchFilter: Filter | undefined;
  readonly userNameAttribute: string;
  /** undefined: not read. */
  readonly userEmailAttribute: string | undefined;
  /** undefined: not read. */
  readonly userMemberAttribute: string | undefined;
  /** undefined: every account is enabled. */
  readonly userEnabledAttribute: string | undefined;
  readonly userDisabledBitMask: bigint;
  readonly groupSearchBase: string;
  readonly groupObjectClass: string;
  readonly groupSearchFilter: Filter | undefined;
  readonly groupMemberMappingAttribute: string;
  /** `dn`, or the name of a user attribute. */
  readonly groupMemberUserAttribute: string;
  readonly nestedGroupMembership: boolean;
  readonly access: AccessPolicy;
}

const DEFAULTS: Record<LdapProviderType, {
  userLoginAttribute: string;
  userObjectClass: string;
  userNameAttribute: string;
  userEnabledAttribute: string;
  userDisabledBitMask: number;
  groupObjectClass: string;
}> = {
  ldap: {
    userLoginAttribute: 'uid',
    userObjectClass: 'inetOrgPerson',
    userNameAttribute: 'cn',
    userEnabledAttribute: '',
    userDisabledBitMask: 0,
    groupObjectClass: 'groupOfNames',
  },
  activedirectory: {
    userLoginAttribute: 'sAMAccountName',
    userObjectClass: 'person',
    userNameAttribute: 'displayName',
    userEnabledAttribute: 'userAccountControl',
    userDisabledBitMask: 2,
    groupObjectClass: 'group',
  },
};

const MAX_DN_LENGTH = 1024;
const MAX_FILTER_LENGTH = 4096;
const MAX_SERVERS = 16;
/** An attribute description: a name (`sAMAccountName`) or an OID. */
const ATTRIBUTE_PATTERN = /^([A-Za-z][A-Za-z0-9-]{0,127}|[0-9]+(\.[0-9]+)+)$/;

const attributeName = z.string().regex(ATTRIBUTE_PATTERN, { error: 'must be an attribute name such as uid or memberOf' });
const optionalAttributeName = z.union([z.literal(''), attributeName], { error: 'must be an attribute name, or empty for none' });
const distinguishedName = z
  .string()
  .min(1)
  .max(MAX_DN_LENGTH)
  .refine(isDistinguishedName, { error: 'must be a distinguished name such as ou=people,dc=example,dc=org' });
const filterText = z.string().min(1).max(MAX_FILTER_LENGTH).refine(isFilter, { error: 'must be an LDAP filter in parentheses, e.g. (department=ops)' });

const settingsSchema = z.strictObject({
  servers: z.array(z.string().min(1).max(300)).min(1).max(MAX_SERVERS),
  port: z.int().min(1).max(65535).optional(),
  tls: z.enum(['none', 'starttls', 'ldaps']).default('starttls'),
  caCertificate: z.string().max(1_000_000).refine(isCertificateBundle, { error: 'must be one or more PEM certificates' }).optional(),
  connectionTimeoutSeconds: z.number().min(1).max(300).default(10),
  serviceAccountDn: distinguishedName,
  serviceAccountPassword: z.string().min(1).max(4096),
  userSearchBase: distinguishedName,
  userLoginAttribute: attributeName.optional(),
  userObjectClass: attributeName.optional(),
  userSearchFilter: filterText.optional(),
  userNameAttribute: attributeName.optional(),
  userEmailAttribute: optionalAttributeName.default('mail'),
  userMemberAttribute: optionalAttributeName.default('memberOf'),
  userEnabledAttribute: optionalAttributeName.optional(),
  userDisabledBitMask: z.int().min(0).max(0xffffffff).optional(),
  groupSearchBase: distinguishedName.optional(),
  groupObjectClass: attributeName.optional(),
  groupSearchFilter: filterText.optional(),
  groupMemberMappingAttribute: attributeName.default('member'),
  groupMemberUserAttribute: z.union([z.literal('dn'), attributeName], { error: 'must be dn or an attribute name such as uid' }).default('dn'),
  /** Accepted (and checked) for Rancher compatibility, not used: kubegate names groups by DN. */
  groupNameAttribute: attributeName.optional(),
  nestedGroupMembership: z.boolean().default(false),
  ...accessSettingsShape,
});

/** Decodes and checks the settings of provider `providerName` of `type`. Throws CONFIG_INVALID. */
export function parseLdapSettings(type: LdapProviderType, providerName: string, settings: Readonly<Record<string, unknown>>): LdapSettings {
  const input = parseProviderSettings(settingsSchema, settings);
  const defaults = DEFAULTS[type];
  const tls = input.tls;
  if (input.caCertificate !== undefined && tls === 'none') {
    throw invalid('settings.caCertificate', 'is only used with tls starttls or ldaps');
  }
  const servers = input.servers.map((entry, index) => parseServer(entry, index, tls, input.port));
  const userEnabledAttribute = (input.userEnabledAttribute ?? defaults.userEnabledAttribute) || undefined;
  const userDisabledBitMask = input.userDisabledBitMask ?? defaults.userDisabledBitMask;
  if (userEnabledAttribute !== undefined && userDisabledBitMask === 0) {
    throw invalid('settings.userDisabledBitMask', 'must be set (non-zero) when userEnabledAttribute is set');
  }
  const access = createAccessPolicy(input, { providerName, normaliseUserId: normaliseDn, normaliseGroup: normaliseDn });

  return Object.freeze({
    servers: Object.freeze(servers),
    tls,
    caCertificate: input.caCertificate,
    connectionTimeoutMs: Math.round(input.connectionTimeoutSeconds * 1000),
    serviceAccountDn: input.serviceAccountDn,
    serviceAccountPassword: input.serviceAccountPassword,
    userSearchBase: input.userSearchBase,
    userLoginAttribute: input.userLoginAttribute ?? defaults.userLoginAttribute,
    userObjectClass: input.userObjectClass ?? defaults.userObjectClass,
    userSearchFilter: input.userSearchFilter === undefined ? undefined : FilterParser.parseString(input.userSearchFilter),
    userNameAttribute: input.userNameAttribute ?? defaults.userNameAttribute,
    userEmailAttribute: input.userEmailAttribute || undefined,
    userMemberAttribute: input.userMemberAttribute || undefined,
    userEnabledAttribute,
    userDisabledBitMask: BigInt(userDisabledBitMask),
    groupSearchBase: input.groupSearchBase ?? input.userSearchBase,
    groupObjectClass: input.groupObjectClass ?? defaults.groupObjectClass,
    groupSearchFilter: input.groupSearchFilter === undefined ? undefined : FilterParser.parseString(input.groupSearchFilter),
    groupMemberMappingAttribute: input.groupMemberMappingAttribute,
    groupMemberUserAttribute: input.groupMemberUserAttribute,
    nestedGroupMembership: input.nestedGroupMembership,
    access,
  });
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, `ldap://host[:port]` or `ldaps://host[:port]`. */
function parseServer(entry: string, index: number, tls: LdapTlsMode, defaultPort: number | undefined): LdapServer {
  const field = `settings.servers[${index}]`;
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry);
  let url: URL;
  try {
    url = new URL(hasScheme ? entry : `ldap://${entry}`);
  } catch {
    throw invalid(field, 'must be a host name, host:port, or an ldap:// or ldaps:// URL');
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'ldap' && scheme !== 'ldaps') throw invalid(field, 'must use the ldap:// or ldaps:// scheme');
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || (url.pathname !== '' && url.pathname !== '/')) {
    throw invalid(field, 'must name only a host and a port (no user, path or query)');
  }
  if (!hasScheme && /[/?#@]/.test(entry)) throw invalid(field, 'must be a host name or host:port');
  if (hasScheme && (scheme === 'ldaps') !== (tls === 'ldaps')) {
    throw invalid(field, scheme === 'ldaps' ? 'uses ldaps:// but tls is not ldaps' : 'uses ldap:// but tls is ldaps');
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw invalid(field, 'must name a host');
  const port = url.port === '' ? (defaultPort ?? (tls === 'ldaps' ? 636 : 389)) : Number(url.port);
  const urlScheme = tls === 'ldaps' ? 'ldaps' : 'ldap';
  return Object.freeze({ host, port, url: `${urlScheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}` });
}

function isFilter(text: string): boolean {
  if (!text.startsWith('(') || !text.endsWith(')') || !hasBalancedParentheses(text)) return false;
  try {
    FilterParser.parseString(text);
    return true;
  } catch {
    return false;
  }
}

/** RFC 4515 escapes parentheses inside values (`\28`, `\29`), so every literal one is structure. */
function hasBalancedParentheses(text: string): boolean {
  let depth = 0;
  for (const character of text) {
    if (character === '(') depth += 1;
    else if (character === ')') depth -= 1;
    if (depth < 0) return false;
  }
  return depth === 0;
}

function isCertificateBundle(pem: string): boolean {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) return false;
  try {
    for (const block of blocks) new X509Certificate(block);
    return true;
  } catch {
    return false;
  }
}

function invalid(field: string, problem: string): KubegateError {
  return new KubegateError('CONFIG_INVALID', `${field}: ${problem}`, { field });
}
