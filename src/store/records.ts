/**
 * What both store dialects share about records: checking the values callers hand in, and
 * turning database rows into fresh entity objects.
 *
 * Checks happen before any SQL runs, so a bad call writes nothing. Calling code that
 * passes the wrong type or an unknown enum value gets a TypeError (a bug in the caller).
 * Content the database cannot hold the same way in both dialects gets BAD_REQUEST with the
 * field: NUL characters (PostgreSQL text cannot store them), lone UTF-16 surrogates (UTF-8
 * cannot encode them), and indexed strings longer
 * than a PostgreSQL index entry allows (keys 256 UTF-8 bytes, names 2048).
 *
 * Rows come back from SQLite with integer milliseconds and 0/1 flags, from PostgreSQL with
 * Date and boolean; the mappers accept both, and always build new objects, so nothing a
 * caller does to a returned entity reaches the store.
 */
import { parseEmailAddress } from '../auth/email.js';
import { KubegateError } from '../errors.js';
import type { SecretBox } from './secret-box.js';
import type {
  AceMode,
  AceNode,
  AceSettings,
  AgentSecret,
  AgentSecretFilter,
  AgentSecretKind,
  ChangeKind,
  Cluster,
  ClusterCredentials,
  ClusterMode,
  ClusterPatch,
  ClusterRole,
  GlobalRole,
  Identity,
  JobReport,
  Membership,
  NewAgentSecret,
  NewCluster,
  NewMembership,
  NewProviderConfig,
  NewToken,
  NewUser,
  ProviderConfig,
  NewSigningKey,
  ReportJob,
  SigningKey,
  StoreChange,
  SubjectKind,
  Token,
  TokenFilter,
  TokenKind,
  TunnelFilter,
  TunnelRecord,
  User,
  UserGroups,
  UserPatch,
} from './store.js';

export const MAX_KEY_BYTES = 256;
export const MAX_NAME_BYTES = 2048;

const GLOBAL_ROLES: readonly GlobalRole[] = ['admin', 'user'];
const TOKEN_KINDS: readonly TokenKind[] = ['login', 'api', 'kubeconfig'];
const SUBJECT_KINDS: readonly SubjectKind[] = ['User', 'Group'];
const CLUSTER_ROLES: readonly ClusterRole[] = ['owner', 'member', 'viewer'];
const CLUSTER_MODES: readonly ClusterMode[] = ['direct', 'agent'];
const AGENT_SECRET_KINDS: readonly AgentSecretKind[] = ['registration', 'agent'];
const ACE_MODES: readonly AceMode[] = ['webhook', 'jwt'];
const REPORT_JOBS: readonly ReportJob[] = ['cluster-probe', 'cluster-sync', 'provider-health'];
/** A job report is a small status object, not a place for payloads. */
const MAX_REPORT_BYTES = 16 * 1024;
/** Leases last from a moment (a test) to a day. */
const MAX_LEASE_MS = 86_400_000;

// --- rows ----------------------------------------------------------------------------------

/** SQLite: integer milliseconds; PostgreSQL: Date. */
export type Timestamp = number | Date;
/** SQLite: 0/1; PostgreSQL: boolean. */
export type Flag = number | boolean;
/** SQLite: JSON text; PostgreSQL jsonb: already parsed. */
export type JsonColumn = unknown;

export interface UserRow {
  id: string;
  username: string;
  display_name: string;
  global_role: string;
  enabled: Flag;
  password_hash: string | null;
  email: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface IdentityRow {
  provider: string;
  provider_user_id: string;
  user_id: string;
  login_name: string;
  created_at: Timestamp;
}

export interface TokenRow {
  name: string;
  token_hash: string;
  user_id: string;
  kind: string;
  provider: string;
  cluster_id: string | null;
  description: string;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
  created_at: Timestamp;
}

export interface ClusterRow {
  id: string;
  display_name: string;
  server: string;
  mode: string;
  ca_pem: string | null;
  credentials_sealed: string | null;
  insecure_skip_tls_verify: Flag;
  ace: JsonColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleting_since: Timestamp | null;
  sync_holds_objects: Flag;
}

export interface MembershipRow {
  cluster_id: string;
  subject_kind: string;
  subject_name: string;
  role: string;
  created_at: Timestamp;
}

export interface ProviderConfigRow {
  name: string;
  type: string;
  enabled: Flag;
  settings_sealed: string;
  updated_at: Timestamp;
}

export interface AgentSecretRow {
  name: string;
  kind: string;
  cluster_id: string;
  secret_hash: string;
  description: string;
  created_at: Timestamp;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
}

export interface TunnelRow {
  cluster_id: string;
  agent_id: string;
  replica_id: string;
  peer_url: string;
  agent_version: string;
  kubernetes_version: string;
  connected_at: Timestamp;
  heartbeat_at: Timestamp;
}

export interface SigningKeyRow {
  kid: string;
  generation: number | string;
  algorithm: string;
  public_jwk: string;
  private_jwk_sealed: string;
  created_at: Timestamp;
}

export interface JobReportRow {
  job: string;
  subject: string;
  report: JsonColumn;
}

export interface UserGroupsRow {
  user_id: string;
  provider: string;
  group_names: JsonColumn;
  refreshed_at: Timestamp;
}

/** Column lists, named rather than `*`: a prepared statement keeps its result shape when a later migration adds a column. */
export const USER_COLUMNS = 'id, username, display_name, global_role, enabled, password_hash, email, created_at, updated_at';
export const IDENTITY_COLUMNS = 'provider, provider_user_id, user_id, login_name, created_at';
export const TOKEN_COLUMNS = 'name, token_hash, user_id, kind, provider, cluster_id, description, expires_at, last_used_at, created_at';
export const CLUSTER_COLUMNS = 'id, display_name, server, mode, ca_pem, credentials_sealed, insecure_skip_tls_verify, ace, created_at, updated_at, deleting_since, sync_holds_objects';
export const MEMBERSHIP_COLUMNS = 'cluster_id, subject_kind, subject_name, role, created_at';
export const PROVIDER_CONFIG_COLUMNS = 'name, type, enabled, settings_sealed, updated_at';
export const USER_GROUPS_COLUMNS = 'user_id, provider, group_names, refreshed_at';
export const AGENT_SECRET_COLUMNS = 'name, kind, cluster_id, secret_hash, description, created_at, expires_at, last_used_at';
export const SIGNING_KEY_COLUMNS = 'kid, generation, algorithm, public_jwk, private_jwk_sealed, created_at';
export const JOB_REPORT_COLUMNS = 'job, subject, report';
export const TUNNEL_COLUMNS = 'cluster_id, agent_id, replica_id, peer_url, agent_version, kubernetes_version, connected_at, heartbeat_at';

export function userFromRow(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    globalRole: row.global_role as GlobalRole,
    enabled: Boolean(row.enabled),
    passwordHash: row.password_hash,
    email: row.email,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export function identityFromRow(row: IdentityRow): Identity {
  return {
    provider: row.provider,
    providerUserId: row.provider_user_id,
    userId: row.user_id,
    loginName: row.login_name,
    createdAt: toDate(row.created_at),
  };
}

export function tokenFromRow(row: TokenRow): Token {
  return {
    name: row.name,
    tokenHash: row.token_hash,
    userId: row.user_id,
    kind: row.kind as TokenKind,
    provider: row.provider,
    clusterId: row.cluster_id,
    description: row.description,
    expiresAt: row.expires_at === null ? null : toDate(row.expires_at),
    lastUsedAt: row.last_used_at === null ? null : toDate(row.last_used_at),
    createdAt: toDate(row.created_at),
  };
}

export function clusterFromRow(row: ClusterRow, secretBox: SecretBox): Cluster {
  return {
    id: row.id,
    displayName: row.display_name,
    server: row.server,
    mode: row.mode as ClusterMode,
    caPem: row.ca_pem,
    credentials: row.credentials_sealed === null ? null : copyCredentials(JSON.parse(secretBox.open(row.credentials_sealed)) as ClusterCredentials),
    insecureSkipTlsVerify: Boolean(row.insecure_skip_tls_verify),
    ace: copyAce(parseJson(row.ace) as AceSettings),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    deletingSince: row.deleting_since === null ? null : toDate(row.deleting_since),
    syncHoldsObjects: Boolean(row.sync_holds_objects),
  };
}

export function membershipFromRow(row: MembershipRow): Membership {
  return {
    clusterId: row.cluster_id,
    subjectKind: row.subject_kind as SubjectKind,
    subjectName: row.subject_name,
    role: row.role as ClusterRole,
    createdAt: toDate(row.created_at),
  };
}

export function providerConfigFromRow(row: ProviderConfigRow, secretBox: SecretBox): ProviderConfig {
  return {
    name: row.name,
    type: row.type,
    enabled: Boolean(row.enabled),
    settings: JSON.parse(secretBox.open(row.settings_sealed)) as Record<string, unknown>,
    updatedAt: toDate(row.updated_at),
  };
}

export function userGroupsFromRow(row: UserGroupsRow): UserGroups {
  return {
    userId: row.user_id,
    provider: row.provider,
    groups: [...(parseJson(row.group_names) as string[])],
    refreshedAt: toDate(row.refreshed_at),
  };
}

export function agentSecretFromRow(row: AgentSecretRow): AgentSecret {
  return {
    name: row.name,
    kind: row.kind as AgentSecretKind,
    clusterId: row.cluster_id,
    secretHash: row.secret_hash,
    description: row.description,
    createdAt: toDate(row.created_at),
    expiresAt: row.expires_at === null ? null : toDate(row.expires_at),
    lastUsedAt: row.last_used_at === null ? null : toDate(row.last_used_at),
  };
}

export function tunnelFromRow(row: TunnelRow): TunnelRecord {
  return {
    clusterId: row.cluster_id,
    agentId: row.agent_id,
    replicaId: row.replica_id,
    peerUrl: row.peer_url,
    agentVersion: row.agent_version,
    kubernetesVersion: row.kubernetes_version,
    connectedAt: toDate(row.connected_at),
    heartbeatAt: toDate(row.heartbeat_at),
  };
}

export function signingKeyFromRow(row: SigningKeyRow, secretBox: SecretBox): SigningKey {
  return {
    kid: row.kid,
    generation: Number(row.generation),
    algorithm: row.algorithm,
    publicJwk: row.public_jwk,
    privateJwk: secretBox.open(row.private_jwk_sealed),
    createdAt: toDate(row.created_at),
  };
}

export function jobReportFromRow(row: JobReportRow): JobReport {
  return { job: row.job as ReportJob, subject: row.subject, report: parseJson(row.report) as Record<string, unknown> };
}

function toDate(value: Timestamp): Date {
  return new Date(typeof value === 'number' ? value : value.getTime());
}

function parseJson(value: JsonColumn): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

// --- checked values ------------------------------------------------------------------------

/** A new user's stored values: a User without the times the store sets. */
export type UserValues = Pick<User, 'id' | 'username' | 'displayName' | 'globalRole' | 'enabled' | 'passwordHash' | 'email'>;

export function checkNewUser(user: NewUser): UserValues {
  requireObject(user, 'user');
  const username = checkName(user.username, 'username');
  return {
    id: checkKey(user.id, 'id'),
    username,
    displayName: user.displayName === undefined ? username : checkText(user.displayName, 'displayName'),
    globalRole: user.globalRole === undefined ? 'user' : checkOneOf(user.globalRole, GLOBAL_ROLES, 'globalRole'),
    enabled: user.enabled === undefined ? true : checkBoolean(user.enabled, 'enabled'),
    passwordHash: user.passwordHash === undefined || user.passwordHash === null ? null : checkText(user.passwordHash, 'passwordHash'),
    email: user.email === undefined || user.email === null ? null : parseEmailAddress(user.email),
  };
}

/** The user after `patch`; fields the patch leaves undefined keep their value. */
export function patchUser(current: User, patch: UserPatch): UserValues {
  requireObject(patch, 'patch');
  return checkNewUser({ ...current, ...definedEntries(patch) });
}

export function checkIdentity(identity: Omit<Identity, 'createdAt'>): Omit<Identity, 'createdAt'> {
  requireObject(identity, 'identity');
  return {
    provider: checkKey(identity.provider, 'provider'),
    providerUserId: checkName(identity.providerUserId, 'providerUserId'),
    userId: checkKey(identity.userId, 'userId'),
    loginName: checkText(identity.loginName, 'loginName'),
  };
}

/** A new token's stored values: a Token before any use, without the times the store sets. */
export type TokenValues = Omit<Token, 'lastUsedAt' | 'createdAt'>;

export function checkNewToken(token: NewToken): TokenValues {
  requireObject(token, 'token');
  return {
    name: checkKey(token.name, 'name'),
    tokenHash: checkName(token.tokenHash, 'tokenHash'),
    userId: checkKey(token.userId, 'userId'),
    kind: checkOneOf(token.kind, TOKEN_KINDS, 'kind'),
    provider: checkKey(token.provider, 'provider'),
    clusterId: token.clusterId === undefined || token.clusterId === null ? null : checkKey(token.clusterId, 'clusterId'),
    description: token.description === undefined ? '' : checkText(token.description, 'description'),
    expiresAt: token.expiresAt === undefined || token.expiresAt === null ? null : checkDate(token.expiresAt, 'expiresAt'),
  };
}

/** A filter with only its defined fields. */
export function checkTokenFilter(filter: TokenFilter): TokenFilter {
  requireObject(filter, 'filter');
  const checked: { userId?: string; clusterId?: string; provider?: string } = {};
  for (const field of ['userId', 'clusterId', 'provider'] as const) {
    const value = filter[field];
    if (value !== undefined) checked[field] = checkString(value, field);
  }
  return checked;
}

/** A new cluster's stored values: a Cluster without what the store and the sync set. */
export type ClusterValues = Pick<Cluster, 'id' | 'displayName' | 'server' | 'mode' | 'caPem' | 'credentials' | 'insecureSkipTlsVerify' | 'ace'>;

export function checkNewCluster(cluster: NewCluster): ClusterValues {
  requireObject(cluster, 'cluster');
  const id = checkKey(cluster.id, 'id');
  const mode = cluster.mode === undefined ? 'direct' : checkOneOf(cluster.mode, CLUSTER_MODES, 'mode');
  const credentials = cluster.credentials ?? null;
  if (mode === 'direct' && credentials === null) {
    throw new KubegateError('BAD_REQUEST', 'a direct cluster needs credentials', { field: 'credentials' });
  }
  if (mode === 'agent' && credentials !== null) {
    throw new KubegateError('BAD_REQUEST', 'an agent cluster keeps no credentials: its agent connects to the proxy', { field: 'credentials' });
  }
  return {
    id,
    displayName: cluster.displayName === undefined ? id : checkText(cluster.displayName, 'displayName'),
    // An agent reports its API server; until then an agent cluster has none.
    server: mode === 'agent' && cluster.server === '' ? '' : checkName(cluster.server, 'server'),
    mode,
    caPem: cluster.caPem === undefined || cluster.caPem === null ? null : checkText(cluster.caPem, 'caPem'),
    credentials: credentials === null ? null : checkCredentials(credentials),
    insecureSkipTlsVerify: cluster.insecureSkipTlsVerify === undefined ? false : checkBoolean(cluster.insecureSkipTlsVerify, 'insecureSkipTlsVerify'),
    ace: cluster.ace === undefined ? { enabled: false, fqdn: null, caPem: null, nodes: [] } : checkAce(cluster.ace),
  };
}

/** The cluster after `patch`; fields the patch leaves undefined keep their value. */
export function patchCluster(current: Cluster, patch: ClusterPatch): ClusterValues {
  requireObject(patch, 'patch');
  return checkNewCluster({ ...current, ...definedEntries(patch), id: current.id });
}

/** The credentials as sealed JSON (only known fields are kept), or null for none. */
export function sealCredentials(secretBox: SecretBox, credentials: ClusterCredentials | null): string | null {
  return credentials === null ? null : secretBox.seal(JSON.stringify(copyCredentials(credentials)));
}

export function aceJson(ace: AceSettings): string {
  return JSON.stringify(copyAce(ace));
}

export function checkNewMembership(membership: NewMembership): NewMembership {
  requireObject(membership, 'membership');
  return {
    clusterId: checkKey(membership.clusterId, 'clusterId'),
    subjectKind: checkOneOf(membership.subjectKind, SUBJECT_KINDS, 'subjectKind'),
    subjectName: checkName(membership.subjectName, 'subjectName'),
    role: checkOneOf(membership.role, CLUSTER_ROLES, 'role'),
  };
}

export function checkSubjects(subjects: { readonly users: readonly string[]; readonly groups: readonly string[] }): { users: string[]; groups: string[] } {
  requireObject(subjects, 'subjects');
  if (!Array.isArray(subjects.users) || !Array.isArray(subjects.groups)) {
    throw new TypeError('subjects.users and subjects.groups must be arrays');
  }
  return {
    users: [...new Set(subjects.users.map((user) => checkString(user, 'users')))],
    groups: [...new Set(subjects.groups.map((group) => checkString(group, 'groups')))],
  };
}

export function checkNewProviderConfig(config: NewProviderConfig): NewProviderConfig {
  requireObject(config, 'config');
  if (typeof config.settings !== 'object' || config.settings === null || Array.isArray(config.settings)) {
    throw new TypeError('settings must be an object');
  }
  return {
    name: checkKey(config.name, 'name'),
    type: checkName(config.type, 'type'),
    enabled: checkBoolean(config.enabled, 'enabled'),
    settings: config.settings,
  };
}

/** The settings as sealed JSON. */
export function sealSettings(secretBox: SecretBox, settings: Readonly<Record<string, unknown>>): string {
  return secretBox.seal(JSON.stringify(settings));
}

export function checkUserGroups(groups: UserGroups): UserGroups {
  requireObject(groups, 'groups');
  if (!Array.isArray(groups.groups)) throw new TypeError('groups.groups must be an array');
  return {
    userId: checkKey(groups.userId, 'userId'),
    provider: checkKey(groups.provider, 'provider'),
    groups: groups.groups.map((group) => checkText(group, 'groups')),
    refreshedAt: checkDate(groups.refreshedAt, 'refreshedAt'),
  };
}

export function checkNewAgentSecret(secret: NewAgentSecret): Required<NewAgentSecret> {
  requireObject(secret, 'secret');
  return {
    name: checkKey(secret.name, 'name'),
    kind: checkOneOf(secret.kind, AGENT_SECRET_KINDS, 'kind'),
    clusterId: checkKey(secret.clusterId, 'clusterId'),
    secretHash: checkName(secret.secretHash, 'secretHash'),
    description: secret.description === undefined ? '' : checkText(secret.description, 'description'),
    expiresAt: secret.expiresAt === undefined || secret.expiresAt === null ? null : checkDate(secret.expiresAt, 'expiresAt'),
  };
}

/** A filter with only its defined fields. */
export function checkAgentSecretFilter(filter: AgentSecretFilter): AgentSecretFilter {
  requireObject(filter, 'filter');
  return {
    ...(filter.clusterId === undefined ? {} : { clusterId: checkString(filter.clusterId, 'clusterId') }),
    ...(filter.kind === undefined ? {} : { kind: checkOneOf(filter.kind, AGENT_SECRET_KINDS, 'kind') }),
  };
}

export function checkNewSigningKey(key: NewSigningKey): NewSigningKey {
  requireObject(key, 'key');
  if (!Number.isSafeInteger(key.generation) || key.generation < 1) throw new TypeError('generation must be a positive integer');
  for (const field of ['publicJwk', 'privateJwk'] as const) {
    try {
      const parsed: unknown = JSON.parse(checkString(key[field], field));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError();
    } catch {
      throw new TypeError(`${field} must be a JSON object`);
    }
  }
  return {
    kid: checkKey(key.kid, 'kid'),
    generation: key.generation,
    algorithm: checkKey(key.algorithm, 'algorithm'),
    publicJwk: key.publicJwk,
    privateJwk: key.privateJwk,
    createdAt: checkDate(key.createdAt, 'createdAt'),
  };
}

export function checkTunnel(tunnel: TunnelRecord): TunnelRecord {
  requireObject(tunnel, 'tunnel');
  return {
    clusterId: checkKey(tunnel.clusterId, 'clusterId'),
    agentId: checkKey(tunnel.agentId, 'agentId'),
    replicaId: checkKey(tunnel.replicaId, 'replicaId'),
    peerUrl: checkName(tunnel.peerUrl, 'peerUrl'),
    agentVersion: checkText(tunnel.agentVersion, 'agentVersion'),
    kubernetesVersion: checkText(tunnel.kubernetesVersion, 'kubernetesVersion'),
    connectedAt: checkDate(tunnel.connectedAt, 'connectedAt'),
    heartbeatAt: checkDate(tunnel.heartbeatAt, 'heartbeatAt'),
  };
}

/** A filter with only its defined fields. */
export function checkTunnelFilter(filter: TunnelFilter): TunnelFilter {
  requireObject(filter, 'filter');
  return {
    ...(filter.clusterId === undefined ? {} : { clusterId: checkString(filter.clusterId, 'clusterId') }),
    ...(filter.replicaId === undefined ? {} : { replicaId: checkString(filter.replicaId, 'replicaId') }),
  };
}

/** Whether `next` differs from `current` in more than its heartbeat. */
export function tunnelChanged(current: TunnelRecord, next: TunnelRecord): boolean {
  return (
    current.peerUrl !== next.peerUrl ||
    current.agentVersion !== next.agentVersion ||
    current.kubernetesVersion !== next.kubernetesVersion ||
    current.connectedAt.getTime() !== next.connectedAt.getTime()
  );
}

export function checkReportJob(job: unknown): ReportJob {
  return checkOneOf(job, REPORT_JOBS, 'job');
}

/** A job report as stored: a JSON object (plain data) of at most MAX_REPORT_BYTES, as text. */
export function checkJobReport(job: unknown, subject: unknown, report: unknown): { job: ReportJob; subject: string; json: string } {
  requireObject(report, 'report');
  if (Array.isArray(report)) throw new TypeError('report must be a JSON object');
  const json = JSON.stringify(report);
  if (Buffer.byteLength(json, 'utf8') > MAX_REPORT_BYTES) throw new TypeError(`report must be at most ${MAX_REPORT_BYTES} bytes of JSON`);
  // PostgreSQL's jsonb cannot hold a NUL character even escaped; SQLite could: refuse it in both.
  if (json.includes('\\u0000')) throw new TypeError('report must not contain NUL characters');
  return { job: checkReportJob(job), subject: checkKey(subject, 'subject'), json };
}

/** A lease request: name, holder (keys) and a whole number of milliseconds. */
export function checkLease(name: unknown, holder: unknown, durationMs: unknown): { name: string; holder: string; durationMs: number } {
  if (!Number.isSafeInteger(durationMs) || (durationMs as number) < 1 || (durationMs as number) > MAX_LEASE_MS) {
    throw new TypeError(`durationMs must be a whole number of milliseconds from 1 to ${MAX_LEASE_MS}`);
  }
  return { name: checkKey(name, 'name'), holder: checkKey(holder, 'holder'), durationMs: durationMs as number };
}

export function checkDate(value: unknown, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new TypeError(`${field} must be a valid Date`);
  }
  return new Date(value.getTime());
}

export function checkString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string`);
  return value;
}

// --- changes -------------------------------------------------------------------------------

/** The distinct changes of one write, in first-seen order. */
export function distinctChanges(changes: Iterable<StoreChange>): StoreChange[] {
  const seen = new Map<string, StoreChange>();
  for (const change of changes) seen.set(`${change.kind}:${change.key}`, change);
  return [...seen.values()];
}

export function change(kind: ChangeKind, key: string): StoreChange {
  return { kind, key };
}

// --- field checks --------------------------------------------------------------------------

function requireObject(value: unknown, what: string): void {
  if (typeof value !== 'object' || value === null) throw new TypeError(`${what} must be an object`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(value: unknown, field: string): string {
  const text = checkString(value, field);
  if (text.includes('\u0000')) {
    throw new KubegateError('BAD_REQUEST', `${field} must not contain NUL characters`, { field });
  }
  // UTF-8 cannot encode a lone surrogate: drivers would silently store U+FFFD instead, and jsonb refuses it.
  if (LONE_SURROGATE.test(text)) {
    throw new KubegateError('BAD_REQUEST', `${field} must be well-formed Unicode`, { field });
  }
  return text;
}

/** A non-empty, indexed name (username, provider user ID, subject): at most 2048 bytes. */
function checkName(value: unknown, field: string): string {
  return checkBounded(value, field, MAX_NAME_BYTES);
}

/** A non-empty object key (ID, token name, provider name): at most 256 bytes. */
function checkKey(value: unknown, field: string): string {
  return checkBounded(value, field, MAX_KEY_BYTES);
}

function checkBounded(value: unknown, field: string, maxBytes: number): string {
  const text = checkText(value, field);
  if (text.length === 0) throw new KubegateError('BAD_REQUEST', `${field} must not be empty`, { field });
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new KubegateError('BAD_REQUEST', `${field} must be at most ${maxBytes} bytes long`, { field });
  }
  return text;
}

function checkBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${field} must be a boolean`);
  return value;
}

function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (!allowed.includes(value as T)) throw new TypeError(`${field} must be one of ${allowed.join(', ')}`);
  return value as T;
}

function checkCredentials(credentials: unknown): ClusterCredentials {
  requireObject(credentials, 'credentials');
  const value = credentials as Partial<Record<string, unknown>>;
  if (value.kind === 'token') return { kind: 'token', token: checkBounded(value.token, 'credentials.token', Infinity) };
  if (value.kind === 'clientCertificate') {
    return {
      kind: 'clientCertificate',
      certPem: checkBounded(value.certPem, 'credentials.certPem', Infinity),
      keyPem: checkBounded(value.keyPem, 'credentials.keyPem', Infinity),
    };
  }
  throw new TypeError('credentials.kind must be token or clientCertificate');
}

function checkAce(ace: unknown): AceSettings {
  requireObject(ace, 'ace');
  const value = ace as Partial<Record<string, unknown>>;
  if (!Array.isArray(value.nodes)) throw new TypeError('ace.nodes must be an array');
  return {
    enabled: checkBoolean(value.enabled, 'ace.enabled'),
    ...(value.mode === undefined ? {} : { mode: checkOneOf(value.mode, ACE_MODES, 'ace.mode') }),
    fqdn: value.fqdn === null || value.fqdn === undefined ? null : checkText(value.fqdn, 'ace.fqdn'),
    caPem: value.caPem === null || value.caPem === undefined ? null : checkText(value.caPem, 'ace.caPem'),
    nodes: value.nodes.map((node: unknown): AceNode => {
      requireObject(node, 'ace.nodes[]');
      const { name, address } = node as Partial<Record<string, unknown>>;
      return { name: checkText(name, 'ace.nodes[].name'), address: checkText(address, 'ace.nodes[].address') };
    }),
  };
}

function copyCredentials(credentials: ClusterCredentials): ClusterCredentials {
  return credentials.kind === 'token'
    ? { kind: 'token', token: credentials.token }
    : { kind: 'clientCertificate', certPem: credentials.certPem, keyPem: credentials.keyPem };
}

function copyAce(ace: AceSettings): AceSettings {
  return {
    enabled: ace.enabled,
    ...(ace.mode === undefined ? {} : { mode: ace.mode }),
    fqdn: ace.fqdn,
    caPem: ace.caPem,
    nodes: ace.nodes.map((node) => ({ name: node.name, address: node.address })),
  };
}

function definedEntries<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as Partial<T>;
}
