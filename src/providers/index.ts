/**
 * Builds the identity providers from configuration: the ONLY switch on provider type.
 *
 * The local provider always exists: when the configuration names none, one called `local`
 * is added (enabled), so that the bootstrap admin can log in and local passwords have a
 * policy. At most one provider may be of type `local` (they would share the same users),
 * and the name `local` belongs to it. Disabled providers are built (so their settings are
 * still checked at start-up) but are not offered for logins.
 *
 * A provider kind's module (and its library: ldapts, openid-client) is imported only when
 * the configuration has a provider of that kind, so a proxy with local users only never
 * holds them in memory (BENCHMARKS.md, "kubegate's memory"; a test checks it).
 */
import type { ProviderConfig } from '../config/proxy.js';
import { KubegateError, isKubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { createLocalProvider } from './local.js';
import type { LocalProvider, PasswordProvider, ProviderRegistry } from './provider.js';
import type { WebLoginProvider } from './web-login.js';

export type { LocalProvider, PasswordProvider, ProviderIdentity, ProviderLoginResult, ProviderRegistry } from './provider.js';

export interface ProviderDeps {
  readonly store: Store;
  /** For providers that report directory trouble (LDAP failover, ambiguous entries). */
  readonly logger?: Logger | undefined;
}

const DEFAULT_LOCAL: ProviderConfig = Object.freeze({ name: 'local', type: 'local', enabled: true, settings: Object.freeze({}) });

/** Throws CONFIG_INVALID naming the field (`providers[1].type`) when a provider cannot be built. */
export async function createProviders(configs: readonly ProviderConfig[], deps: ProviderDeps): Promise<ProviderRegistry> {
  const enabled = new Map<string, PasswordProvider>();
  const enabledWeb = new Map<string, WebLoginProvider>();
  const names = new Set<string>();
  let local: LocalProvider | undefined;

  for (const [index, config] of configs.entries()) {
    const at = `providers[${index}]`;
    if (names.has(config.name)) {
      throw new KubegateError('CONFIG_INVALID', `${at}.name is used by another provider`, { field: `${at}.name` });
    }
    if (config.name === DEFAULT_LOCAL.name && config.type !== 'local') {
      throw new KubegateError('CONFIG_INVALID', `${at}.name: the name local is reserved for the local provider`, { field: `${at}.name` });
    }
    names.add(config.name);
    let provider: PasswordProvider | undefined;
    let webProvider: WebLoginProvider | undefined;
    try {
      switch (config.type) {
        case 'local':
          if (local !== undefined) {
            throw new KubegateError('CONFIG_INVALID', `${at}.type: only one provider may be of type local`, { field: `${at}.type` });
          }
          local = createLocalProvider(config, deps);
          provider = local;
          break;
        case 'ldap':
        case 'activedirectory': {
          const { createLdapProvider } = await import('./ldap/provider.js');
          provider = createLdapProvider(config, deps);
          break;
        }
        case 'oidc': {
          const { createOidcProvider } = await import('./oidc/oidc.js');
          webProvider = createOidcProvider(config);
          break;
        }
        case 'github': {
          const { createGithubProvider } = await import('./github/github.js');
          webProvider = createGithubProvider(config, deps);
          break;
        }
        default:
          throw new KubegateError('CONFIG_INVALID', `${at}.type is not a known provider type (known: local, ldap, activedirectory, oidc, github)`, { field: `${at}.type` });
      }
    } catch (error) {
      throw withFieldPrefix(error, at);
    }
    if (config.enabled && provider !== undefined) enabled.set(config.name, provider);
    if (config.enabled && webProvider !== undefined) enabledWeb.set(config.name, webProvider);
  }

  if (local === undefined) {
    local = createLocalProvider(DEFAULT_LOCAL, deps);
    enabled.set(local.name, local);
  }

  const list = Object.freeze([...enabled.values()]);
  const webList = Object.freeze([...enabledWeb.values()]);
  const localProvider = local;
  return Object.freeze({
    get: (name: string) => enabled.get(name),
    list: () => list,
    webLogin: (name: string) => enabledWeb.get(name),
    listWebLogin: () => webList,
    local: localProvider,
  });
}

/** A provider's own CONFIG_INVALID (`settings.x`) re-addressed from the top (`providers[0].settings.x`). */
function withFieldPrefix(error: unknown, at: string): unknown {
  if (!isKubegateError(error, 'CONFIG_INVALID') || error.field === undefined || error.field.startsWith('providers[')) return error;
  return new KubegateError('CONFIG_INVALID', `${at}.${error.message}`, { field: `${at}.${error.field}`, cause: error.cause });
}
