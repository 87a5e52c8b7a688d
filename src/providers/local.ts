/**
 * The local identity provider: kubegate's own users, kept in the store with a scrypt
 * password hash (src/auth/password.ts). A local account IS a kubegate user, so the identity
 * it answers carries `userId` and the login links nothing.
 *
 * Design notes:
 * - Same work whatever the answer: an unknown user, or one without a local password, is
 *   checked against a dummy hash made once per provider, so response time does not reveal
 *   which usernames exist. An empty password is refused before any lookup: there is nothing
 *   it could match, and refusing it early is the classic guard against "empty password
 *   means anonymous" bugs in other providers.
 * - Groups: none. Local users get access through User memberships (or groups of another
 *   provider they also log in with).
 * - A store outage or a corrupt stored hash is `error`, never "wrong password".
 * - Settings: `minPasswordLength` (8–1024, default 12), enforced whenever a local password
 *   is set (`hashNewPassword`), never at login, so raising it does not lock anyone out.
 */
import { randomBytes } from 'node:crypto';
import type { ProviderConfig } from '../config/proxy.js';
import { KubegateError, toKubegateError } from '../errors.js';
import { MAX_PASSWORD_BYTES, hashPassword, verifyPassword } from '../auth/password.js';
import type { Store } from '../store/store.js';
import type { LocalProvider, ProviderLoginResult } from './provider.js';

export interface LocalProviderDeps {
  readonly store: Store;
}

const DEFAULT_MIN_PASSWORD_LENGTH = 12;
const MIN_PASSWORD_LENGTH_FLOOR = 8;
const KNOWN_SETTINGS = new Set(['minPasswordLength']);

/** Creates the local provider. Throws CONFIG_INVALID (field relative to the provider, e.g. `settings.minPasswordLength`). */
export function createLocalProvider(config: ProviderConfig, deps: LocalProviderDeps): LocalProvider {
  if (config.type !== 'local') throw new TypeError('createLocalProvider needs a provider of type local');
  const minPasswordLength = readMinPasswordLength(config.settings);
  const { store } = deps;
  let dummyHash: Promise<string> | undefined;

  function dummy(): Promise<string> {
    dummyHash ??= hashPassword(randomBytes(24).toString('base64url'));
    return dummyHash;
  }

  async function authenticatePassword(username: string, password: string): Promise<ProviderLoginResult> {
    if (typeof username !== 'string' || typeof password !== 'string') throw new TypeError('username and password must be strings');
    if (username.length === 0 || password.length === 0) return { outcome: 'unauthenticated' };
    try {
      const user = await store.getUserByUsername(username);
      const stored = user?.passwordHash ?? (await dummy());
      const matches = await verifyPassword(password, stored);
      if (user === undefined || user.passwordHash === null || !matches) return { outcome: 'unauthenticated' };
      return {
        outcome: 'authenticated',
        identity: { providerUserId: user.id, userId: user.id, loginName: user.username, displayName: user.displayName, groups: [] },
      };
    } catch (error) {
      return { outcome: 'error', error: toKubegateError(error) };
    }
  }

  async function hashNewPassword(password: string, field: string): Promise<string> {
    if (typeof password !== 'string') throw new TypeError('the password must be a string');
    const normalised = password.normalize('NFC');
    if ([...normalised].length < minPasswordLength) {
      throw new KubegateError('BAD_REQUEST', `${field} must be at least ${minPasswordLength} characters long`, { field });
    }
    if (Buffer.byteLength(normalised, 'utf8') > MAX_PASSWORD_BYTES) {
      throw new KubegateError('BAD_REQUEST', `${field} must be at most ${MAX_PASSWORD_BYTES} bytes long`, { field });
    }
    return hashPassword(password);
  }

  return Object.freeze({ name: config.name, type: 'local' as const, minPasswordLength, authenticatePassword, hashNewPassword });
}

function readMinPasswordLength(settings: Readonly<Record<string, unknown>>): number {
  for (const key of Object.keys(settings)) {
    if (!KNOWN_SETTINGS.has(key)) {
      throw new KubegateError('CONFIG_INVALID', `settings.${key} is not a setting of the local provider`, { field: `settings.${key}` });
    }
  }
  const value = settings['minPasswordLength'];
  if (value === undefined) return DEFAULT_MIN_PASSWORD_LENGTH;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_PASSWORD_LENGTH_FLOOR || value > MAX_PASSWORD_BYTES) {
    throw new KubegateError(
      'CONFIG_INVALID',
      `settings.minPasswordLength must be a whole number from ${MIN_PASSWORD_LENGTH_FLOOR} to ${MAX_PASSWORD_BYTES}`,
      { field: 'settings.minPasswordLength' },
    );
  }
  return value;
}
