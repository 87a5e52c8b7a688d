/**
 * The GitHub identity provider (github.com, or GitHub Enterprise Server by `hostname`):
 * browser logins with GitHub's OAuth web flow, through the proxy
 * (src/proxy/api/browser-login.ts).
 *
 * Flow: the browser goes to `<oauth base>/login/oauth/authorize` with the client ID, the
 * proxy's callback, the scopes `read:user user:email read:org`, the sealed `state` and a PKCE S256
 * challenge (GitHub checks it since 2025; servers that predate PKCE ignore it). The callback's
 * code is exchanged at `<oauth base>/login/oauth/access_token`; then the REST API answers who
 * the person is: `GET /user`, `/user/emails` (needs `user:email`), `/user/orgs`,
 * `/user/teams` (paginated, see api.ts).
 *
 * Identity:
 * - providerUserId: the numeric GitHub user ID (as a string), which never changes: a renamed
 *   account is still the same kubegate user. loginName: the GitHub login; displayName: the
 *   profile name, else the login. email: the primary address if GitHub marks it verified
 *   (and kubegate accepts it, auth/email.ts), else none — never the public profile address,
 *   which anyone can type.
 * - groups: `<provider>:<org>` for each organization and `<provider>:<org>/<team-slug>` for
 *   each team, lower case (GitHub names are case-insensitive, so access rules written in any
 *   case match). A name that is not a usable group (`system:…`, control characters) is
 *   dropped: GitHub data never becomes a `system:` group. Organizations that restrict OAuth
 *   app access and have not approved this app are not visible, as on GitHub itself.
 * - access: src/providers/access.ts, principals `group:<provider>:<org>`,
 *   `group:<provider>:<org>/<team>` and `user:<numeric id>`.
 *
 * No background group refresh: it would need each person's GitHub access token kept at rest,
 * and the token is dropped as soon as the login is done. GitHub groups are refreshed at each
 * login (as in Rancher); the tokens a login issued keep the groups it found until they expire.
 *
 * Errors follow the WebLoginProvider contract: declined at GitHub → LOGIN_DENIED; a refused
 * or missing code → LOGIN_CALLBACK_INVALID; GitHub unreachable or misconfigured →
 * PROVIDER_UNAVAILABLE. Settings: see settings.ts.
 */
import { vouchedEmail } from '../../auth/email.js';
import { assertProviderName, providerGroup } from '../../auth/user.js';
import type { ProviderConfig } from '../../config/proxy.js';
import { KubegateError, isKubegateError, toKubegateError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { createAccessPolicy } from '../access.js';
import type { ProviderIdentity, ProviderLoginResult } from '../provider.js';
import { parseProviderSettings } from '../settings.js';
import type { WebLoginProvider, WebLoginRequest } from '../web-login.js';
import { pkceChallenge } from '../web-login.js';
import { createGithubClient, isRecord } from './api.js';
import { githubEndpoints, githubSettingsSchema } from './settings.js';

const GITHUB_SCOPES = 'read:user user:email read:org';
const MAX_DISPLAY_NAME_LENGTH = 256;

export interface GithubProviderDeps {
  /** Told when GitHub lists more organizations or teams than are read. */
  readonly logger?: Logger | undefined;
}

export interface GithubProvider extends WebLoginProvider {
  readonly type: 'github';
}

/** Creates the provider; nothing is fetched until a login. Throws CONFIG_INVALID (`settings.x`). */
export function createGithubProvider(config: ProviderConfig, deps: GithubProviderDeps = {}): GithubProvider {
  if (config.type !== 'github') throw new TypeError('createGithubProvider needs a provider of type github');
  const settings = parseProviderSettings(githubSettingsSchema, config.settings);
  const endpoints = githubEndpoints(settings);
  const access = createAccessPolicy(settings, { providerName: config.name, normaliseGroup: (group) => group.toLowerCase() });
  const client = createGithubClient({ endpoints, clientId: settings.clientId, clientSecret: settings.clientSecret, timeoutSeconds: settings.timeoutSeconds });

  async function authorizationUrl(request: WebLoginRequest): Promise<URL> {
    const url = new URL(endpoints.authorize);
    url.searchParams.set('client_id', settings.clientId);
    url.searchParams.set('redirect_uri', request.redirectUri);
    url.searchParams.set('scope', GITHUB_SCOPES);
    url.searchParams.set('state', request.state);
    url.searchParams.set('code_challenge', await pkceChallenge(request.codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('allow_signup', 'false');
    return url;
  }

  async function completeWebLogin(request: WebLoginRequest, callbackUrl: URL): Promise<ProviderLoginResult> {
    try {
      const query = callbackUrl.searchParams;
      const error = query.get('error');
      if (error !== null) {
        throw new KubegateError(error === 'access_denied' ? 'LOGIN_DENIED' : 'LOGIN_CALLBACK_INVALID', error === 'access_denied' ? 'the login was declined at GitHub' : 'GitHub reported an error on the callback');
      }
      const code = query.get('code');
      if (query.get('state') !== request.state || code === null || code.length === 0 || code.length > 512) {
        throw new KubegateError('LOGIN_CALLBACK_INVALID', 'the callback has no usable code');
      }
      const accessToken = await client.exchangeCode(code, request.redirectUri, request.codeVerifier);
      return { outcome: 'authenticated', identity: await identityFor(accessToken) };
    } catch (error) {
      const wrapped = toKubegateError(error);
      return { outcome: 'error', error: wrapped.code === 'INTERNAL' ? new KubegateError('PROVIDER_UNAVAILABLE', undefined, { cause: error }) : wrapped };
    }
  }

  async function identityFor(accessToken: string): Promise<ProviderIdentity> {
    const [user, emails, orgs, teams] = await Promise.all([
      client.getObject('user', accessToken),
      client.getList('user/emails', accessToken),
      client.getList('user/orgs', accessToken),
      client.getList('user/teams', accessToken),
    ]);
    if (orgs.truncated || teams.truncated) {
      deps.logger?.warn({ provider: config.name }, 'GitHub lists more organizations or teams than kubegate reads; the rest are not groups');
    }
    return identityFromGithub(config.name, user, orgs.items, teams.items, emails.items);
  }

  return Object.freeze({ name: config.name, type: 'github' as const, access, authorizationUrl, completeWebLogin, checkHealth: () => client.checkApi() });
}

/**
 * The identity in GitHub's answers to `/user`, `/user/orgs`, `/user/teams` and `/user/emails`.
 * PROVIDER_UNAVAILABLE when `/user` has no usable ID or login (GitHub is misbehaving);
 * IDENTITY_NAME_RESERVED / IDENTITY_NAME_INVALID for an unusable login.
 */
export function identityFromGithub(
  provider: string,
  user: Readonly<Record<string, unknown>>,
  orgs: readonly unknown[],
  teams: readonly unknown[],
  emails: readonly unknown[] = [],
): ProviderIdentity {
  const { id, login, name } = user;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0 || typeof login !== 'string' || login.length === 0) {
    throw new KubegateError('PROVIDER_UNAVAILABLE', 'the GitHub API answered /user without a usable id and login');
  }
  const loginName = assertProviderName(login, 'the login name');
  const groups: string[] = [];
  const add = (group: string): void => {
    try {
      groups.push(providerGroup(provider, group.toLowerCase()));
    } catch (error) {
      if (!isKubegateError(error)) throw error;
    }
  };
  for (const org of orgs) {
    const orgLogin = isRecord(org) ? org['login'] : undefined;
    if (isNamePart(orgLogin)) add(orgLogin);
  }
  for (const team of teams) {
    if (!isRecord(team)) continue;
    const slug = team['slug'];
    const organization = team['organization'];
    const orgLogin = isRecord(organization) ? organization['login'] : undefined;
    if (isNamePart(orgLogin) && isNamePart(slug)) add(`${orgLogin}/${slug}`);
  }
  const usableName = typeof name === 'string' && name.length > 0 && name.length <= MAX_DISPLAY_NAME_LENGTH && !/[\u0000-\u001f\u007f]/.test(name);
  const primary = emails.find((entry) => isRecord(entry) && entry['primary'] === true && entry['verified'] === true);
  return {
    providerUserId: String(id),
    loginName,
    displayName: usableName ? name : loginName,
    groups: [...new Set(groups)],
    ...(isRecord(primary) ? vouchedEmail([primary['email']]) : {}),
  };
}

/**
 * A non-empty org login or team slug without `/`: an org named `acme/sre` must not pass for
 * the team `sre` of `acme`. (providerGroup checks the rest: `system:…`, control characters.)
 */
function isNamePart(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 256 && !value.includes('/');
}
