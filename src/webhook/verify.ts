/**
 * The webhook's token authenticator: Rancher kube-api-auth's lookup, answered from the
 * objects a source holds in memory (no I/O per review).
 *
 * `[ext/]name:secret` → ClusterAuthToken `name` → its Secret's `data.hash` (else the
 * deprecated `hash` field) → constant-time hash check → `enabled`, `expiresAt` →
 * ClusterUserAttribute `userName` → `enabled` → UserInfo.
 *
 * Nothing is cached here but the hash check of a `$1` (scrypt) secret that matched
 * (slow-hashes.ts): the answers are cached by request body (answers.ts), and every
 * verification reads the token, its expiry and its user from the objects held now.
 *
 * Outcome per failure kind — `unauthenticated` is cached (here and by kube-apiserver, as
 * `authenticated:false`), `error` is not (`authenticated:false` plus `status.error`):
 *
 * | failure                                   | outcome         | why |
 * |-------------------------------------------|-----------------|-----|
 * | not `name:secret`                         | unauthenticated | can never become valid |
 * | objects not listed yet (just started)     | error NOT_READY | we cannot know yet |
 * | no ClusterAuthToken of that name          | error           | the proxy's sync may deliver it a moment later; a cached "no" would lock a fresh kubeconfig out for the API server's whole cache TTL. A miss costs one map lookup. |
 * | no hash (Secret not there yet)            | error           | same: Rancher and the sync write the Secret separately |
 * | stored hash malformed / unsupported       | error           | corrupt data is not the client's fault |
 * | token deleted or its hash changed while a `$1` check ran | error | the check was against what is gone; the token as it is now decides the rest |
 * | wrong secret                              | unauthenticated | a name's hash never changes |
 * | token disabled, expired, unparsable expiry| unauthenticated | |
 * | no ClusterUserAttribute for the user      | error           | may be synced a moment later |
 * | user disabled                             | unauthenticated | |
 *
 * Identity: username = `userName`, or for kubegate's tokens the annotation
 * `kubegate.io/username` when the installation names users other than by ID (uid stays
 * `userName`; a reserved `system:`/`kubegate:` name is refused); groups = the attribute's groups for the token's provider
 * (kubegate's `kubegate.io/groups-by-provider` annotation, when the token carries
 * `kubegate.io/provider`), else the attribute's `groups`. Objects kubegate synced also give
 * uid = userName and extra (login name, provider, token name), so that the identity equals
 * the proxy's impersonated one. Rancher's objects give no uid; their extras are the login
 * name and principal Rancher keeps per provider in `extraByProvider` (`username`,
 * `principalid` — the keys Rancher's own proxy impersonates), when the attribute names
 * exactly one provider (a Rancher token does not say which provider it came from, so with
 * several none is guessed). kube-api-auth itself sends no extra.
 * `system:` groups are dropped: the API server adds `system:authenticated` itself, and no
 * synced object may grant another system group.
 */
import { authenticated, unauthenticated, undecided } from '../auth/authenticator.js';
import type { AuthResult, TokenAuthenticator } from '../auth/authenticator.js';
import { EXTRA_TOKEN_NAME, assertProviderName, makeUserInfo } from '../auth/user.js';
import { RESERVED_PROVIDER_PREFIXES } from '../config/identity.js';
import { KubegateError, isKubegateError } from '../errors.js';
import type { ClusterAuthToken, ClusterUserAttribute } from '../kube/rancher.js';
import { ANNOTATION_PROVIDER, ANNOTATION_USERNAME, groupsByProvider } from '../kube/rancher.js';
import { tryParseToken } from '../tokens/format.js';
import { prepareHash } from '../tokens/hash.js';
import type { PreparedHash } from '../tokens/hash.js';
import { createSecretChecker } from './slow-hashes.js';

/** What the verifier reads; kept in memory by sources/kubernetes.ts. */
export interface WebhookSource {
  /** Whether every resource has been listed once (before that, "not found" means nothing). */
  readonly ready: boolean;
  clusterAuthToken(name: string): ClusterAuthToken | undefined;
  clusterUserAttribute(userName: string): ClusterUserAttribute | undefined;
  /**
   * The hash from the Secret named like the token, parsed when the Secret was read
   * (tokens/hash.ts prepareHash: a malformed one keeps its error); undefined when none.
   */
  secretHash(name: string): PreparedHash | undefined;
}

export interface WebhookVerifierOptions {
  readonly source: WebhookSource;
  /** Wall clock; Date.now by default. */
  readonly now?: () => number;
}

export function createWebhookVerifier(options: WebhookVerifierOptions): TokenAuthenticator {
  const { source } = options;
  const now = options.now ?? Date.now;
  // `$1` matches remembered per hash (slow-hashes.ts); deprecated hash fields parsed once per token object.
  const secrets = createSecretChecker();
  const deprecatedHashes = new WeakMap<ClusterAuthToken, PreparedHash>();

  /** The deprecated `hash` field, parsed once per version of the token (the source moves it into a Secret). */
  function deprecatedHash(token: ClusterAuthToken): PreparedHash | undefined {
    if (typeof token.hash !== 'string' || token.hash === '') return undefined;
    let prepared = deprecatedHashes.get(token);
    if (prepared === undefined) {
      prepared = prepareHash(token.hash);
      deprecatedHashes.set(token, prepared);
    }
    return prepared;
  }

  async function authenticateToken(raw: string): Promise<AuthResult> {
    const parsed = tryParseToken(raw);
    if (parsed === undefined) return unauthenticated('TOKEN_MALFORMED');
    if (!source.ready) return undecided(new KubegateError('NOT_READY', 'the webhook has not loaded its tokens yet'));
    const listed = source.clusterAuthToken(parsed.name);
    if (listed === undefined) return undecided(new KubegateError('TOKEN_INVALID', 'the token is not known in this cluster (yet)'));
    const hash = source.secretHash(parsed.name) ?? deprecatedHash(listed);
    if (hash === undefined) return undecided(new KubegateError('TOKEN_INVALID', 'the token has no hash in this cluster (yet)'));
    let matches: boolean;
    try {
      matches = await secrets.check(parsed.secret, hash);
    } catch (error) {
      return undecided(isKubegateError(error) ? error : new KubegateError('INTERNAL', undefined, { cause: error }));
    }
    // A `$1` check may wait on the thread pool while the objects change: decide on them as they are now.
    const token = hash.version === 1 ? source.clusterAuthToken(parsed.name) : listed;
    if (token === undefined || (hash.version === 1 && (source.secretHash(parsed.name) ?? deprecatedHash(token)) !== hash)) {
      return undecided(new KubegateError('TOKEN_INVALID', 'the token changed while its secret was checked'));
    }
    if (!matches) return unauthenticated('TOKEN_INVALID');
    if (token.enabled !== true) return unauthenticated('TOKEN_DISABLED');
    const expiresAt = parseExpiry(token.expiresAt);
    if (expiresAt !== null && !(now() < expiresAt.getTime())) return unauthenticated('TOKEN_EXPIRED');
    if (typeof token.userName !== 'string' || token.userName === '') return unauthenticated('TOKEN_INVALID');
    const attribute = source.clusterUserAttribute(token.userName);
    if (attribute === undefined) return undecided(new KubegateError('TOKEN_INVALID', "the token's user is not known in this cluster (yet)"));
    if (attribute.enabled !== true) return unauthenticated('USER_DISABLED');
    try {
      return authenticated(identityOf(parsed.name, token, attribute), { name: parsed.name, expiresAt, clusterId: null });
    } catch (error) {
      if (isKubegateError(error, 'IDENTITY_NAME_RESERVED') || isKubegateError(error, 'IDENTITY_NAME_INVALID')) return unauthenticated(error.code);
      return undecided(isKubegateError(error) ? error : new KubegateError('INTERNAL', undefined, { cause: error }));
    }
  }

  return { authenticateToken };
}

/** RFC 3339 expiry; null = never (absent or empty); an invalid Date when unparsable (= expired). */
function parseExpiry(value: unknown): Date | null {
  if (value === undefined || value === null || value === '') return null;
  return new Date(typeof value === 'string' ? value : Number.NaN);
}

function identityOf(tokenName: string, token: ClusterAuthToken, attribute: ClusterUserAttribute) {
  const provider = token.metadata.annotations?.[ANNOTATION_PROVIDER];
  const byProvider = provider === undefined ? undefined : groupsByProvider(attribute)?.[provider];
  const groups = (byProvider ?? attribute.groups ?? []).filter((group) => typeof group === 'string' && group !== '' && !group.toLowerCase().startsWith('system:'));
  if (provider === undefined) return makeUserInfo({ name: token.userName, uid: '', groups, extra: rancherExtras(attribute) });
  const extra: Record<string, readonly string[]> = {};
  for (const [key, values] of Object.entries(attribute.extraByProvider?.[provider] ?? {})) {
    if (Array.isArray(values)) extra[key] = values.filter((value) => typeof value === 'string');
  }
  extra[EXTRA_TOKEN_NAME] = [tokenName];
  return makeUserInfo({ name: token.userName, kubernetesName: kubernetesNameAnnotation(token), uid: token.userName, groups, extra });
}

/**
 * The Kubernetes user name the sync stamped on the token (`identity.kubernetesUsername` other
 * than `id`), or undefined for the user ID. A name in Kubernetes' or kubegate's own name space
 * (`system:…`, `kubegate:…`) is refused: whoever can write ClusterAuthTokens must not gain a
 * system identity through the webhook.
 */
function kubernetesNameAnnotation(token: ClusterAuthToken): string | undefined {
  const name = token.metadata.annotations?.[ANNOTATION_USERNAME];
  if (name === undefined) return undefined;
  const prefix = name.includes(':') ? name.slice(0, name.indexOf(':')).trim().toLowerCase() : '';
  if (name === '' || RESERVED_PROVIDER_PREFIXES.includes(prefix)) throw new KubegateError('IDENTITY_NAME_RESERVED', 'the token names a reserved Kubernetes user name');
  return assertProviderName(name, 'the Kubernetes user name');
}

/** Rancher's extra keys for the login name and the principal ID. */
export const RANCHER_EXTRA_KEYS = ['username', 'principalid'] as const;

/** `username` and `principalid` of the attribute's one provider; none when it has several or none. */
function rancherExtras(attribute: ClusterUserAttribute): Record<string, readonly string[]> {
  const providers = Object.values(attribute.extraByProvider ?? {});
  const only = providers.length === 1 ? providers[0] : undefined;
  const extra: Record<string, readonly string[]> = {};
  if (only === undefined || only === null || typeof only !== 'object') return extra;
  for (const key of RANCHER_EXTRA_KEYS) {
    const values = only[key];
    if (!Array.isArray(values)) continue;
    const strings = values.filter((value): value is string => typeof value === 'string' && value !== '');
    if (strings.length > 0) extra[key] = strings;
  }
  return extra;
}
