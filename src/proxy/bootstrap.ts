/**
 * The first administrator. On a store without any user, creates a local user with the
 * global role `admin`, so that a fresh installation can be used at all.
 *
 * Design note: when no password is configured, a random one (24 characters, 144 bits) is
 * generated and written to `passwordFile` (`<dataDir>/bootstrap-password`, mode 0600), never
 * to the log: logs are shipped and kept where a password must not be. The log says where the
 * file is. The file is written under a temporary name first and renamed once the user exists,
 * so that a failed or lost attempt never leaves a password that does not work. The configured
 * password, when there is one, is never written anywhere. Two replicas starting at once on one
 * PostgreSQL database may both see an empty store; the username is unique, so exactly one
 * creates the user and the other answers false.
 *
 * Recovery (`bootstrap.resetPassword` with `bootstrap.password`): on a store that has users,
 * the bootstrap user's password is set to the configured one at start, the user is enabled
 * and made admin again (or re-created when it was deleted), and its tokens are revoked. It
 * touches that one user only, needs the server's own configuration or environment (whoever
 * has that already holds the store), happens at every start while the setting stays, and
 * says so with a warning each time, so that it is not left on.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hashPassword } from '../auth/password.js';
import { newUserId } from '../auth/user.js';
import { KubegateError, isKubegateError } from '../errors.js';
import type { ProxyConfig } from '../config/proxy.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export interface BootstrapAdminOptions {
  readonly store: Store;
  readonly username: string;
  /** The configured password; undefined → a random one, written to `passwordFile`. */
  readonly password?: string | undefined;
  /** Where a generated password is written (mode 0600), e.g. `<dataDir>/bootstrap-password`. */
  readonly passwordFile: string;
  readonly logger: Logger;
}

const GENERATED_PASSWORD_BYTES = 18;
/** The name of the generated password's file in the data dir. */
const BOOTSTRAP_PASSWORD_FILE = 'bootstrap-password';

/** bootstrapAdmin with the proxy's settings: `bootstrap.*`, a generated password in the data dir. */
export async function bootstrapConfiguredAdmin(store: Store, config: Pick<ProxyConfig, 'bootstrap' | 'dataDir'>, logger: Logger): Promise<boolean> {
  const { username, password, resetPassword } = config.bootstrap;
  if (resetPassword) {
    if (password === undefined) throw new KubegateError('CONFIG_INVALID', 'bootstrap.resetPassword needs bootstrap.password', { field: 'bootstrap.resetPassword' });
    if ((await store.countUsers()) > 0) {
      await resetBootstrapPassword({ store, username, password, logger });
      return false;
    }
  }
  return bootstrapAdmin({
    store,
    username: config.bootstrap.username,
    password: config.bootstrap.password,
    passwordFile: join(config.dataDir, BOOTSTRAP_PASSWORD_FILE),
    logger,
  });
}

/** Creates the bootstrap admin on an empty store; answers whether it did. */
export async function bootstrapAdmin(options: BootstrapAdminOptions): Promise<boolean> {
  const { store, username, logger } = options;
  if (typeof username !== 'string' || username.length === 0) throw new TypeError('the bootstrap username must be a non-empty string');
  if ((await store.countUsers()) > 0) return false;
  const generated = options.password === undefined;
  const password = options.password ?? randomBytes(GENERATED_PASSWORD_BYTES).toString('base64url');
  const pendingFile = generated ? await writePending(options.passwordFile, password) : undefined;
  try {
    await store.createUser({
      id: newUserId(),
      username,
      displayName: username,
      globalRole: 'admin',
      enabled: true,
      passwordHash: await hashPassword(password),
    });
  } catch (error) {
    if (pendingFile !== undefined) await rm(pendingFile, { force: true });
    // Another replica created it between our count and our insert.
    if (isKubegateError(error, 'STORE_CONSTRAINT')) return false;
    throw error;
  }
  if (pendingFile !== undefined) {
    await rename(pendingFile, options.passwordFile);
    logger.warn(
      { username, passwordFile: options.passwordFile },
      'bootstrap admin created with a generated password: read it from passwordFile, log in, change it (kubegate password, or POST /v1/me/password), then delete the file',
    );
  } else {
    logger.info({ username }, 'bootstrap admin created with the configured password');
  }
  return true;
}

export interface ResetBootstrapPasswordOptions {
  readonly store: Store;
  readonly username: string;
  readonly password: string;
  readonly logger: Logger;
}

/** Recovery: the bootstrap user gets `password`, is enabled and admin, and loses its tokens. */
export async function resetBootstrapPassword(options: ResetBootstrapPasswordOptions): Promise<void> {
  const { store, username, logger } = options;
  const passwordHash = await hashPassword(options.password);
  const user = await store.getUserByUsername(username);
  if (user === undefined) {
    await store.createUser({ id: newUserId(), username, displayName: username, globalRole: 'admin', enabled: true, passwordHash });
  } else {
    await store.updateUser(user.id, { passwordHash, enabled: true, globalRole: 'admin' });
    await store.deleteTokens({ userId: user.id });
  }
  logger.warn(
    { username },
    'bootstrap.resetPassword: the bootstrap user has the configured password, is an enabled admin and its previous tokens are revoked; remove bootstrap.resetPassword (KUBEGATE_BOOTSTRAP_RESET_PASSWORD) now, or this happens at every start',
  );
}

/** Writes the password beside `file` under a temporary name, readable by the owner only. */
async function writePending(file: string, password: string): Promise<string> {
  const pending = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(pending, `${password}\n`, { mode: 0o600, flag: 'wx' });
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', `cannot write the bootstrap password file ${file}`, { field: 'dataDir', cause });
  }
  return pending;
}
