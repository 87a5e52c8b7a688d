/**
 * The first administrator. On a store without any user, creates a local user with the
 * global role `admin`, so that a fresh installation can be used at all.
 *
 * Design note: when no password is configured, a random one (24 characters, 144 bits) is
 * generated and written ONCE to the log at warn level, in a line of its own that starts with
 * `bootstrap admin password:`. This is the single sanctioned exception to "never log a
 * password": the secret exists nowhere else, and the operator is told to change it. The
 * configured password, when there is one, is never logged. Two replicas starting at once on
 * one PostgreSQL database may both see an empty store; the username is unique, so exactly
 * one creates the user and the other answers false.
 */
import { randomBytes } from 'node:crypto';
import { hashPassword } from '../auth/password.js';
import { newUserId } from '../auth/user.js';
import { isKubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export interface BootstrapAdminOptions {
  readonly store: Store;
  readonly username: string;
  /** The configured password; undefined → a random one, logged once. */
  readonly password?: string | undefined;
  readonly logger: Logger;
}

const GENERATED_PASSWORD_BYTES = 18;

/** Creates the bootstrap admin on an empty store; answers whether it did. */
export async function bootstrapAdmin(options: BootstrapAdminOptions): Promise<boolean> {
  const { store, username, logger } = options;
  if (typeof username !== 'string' || username.length === 0) throw new TypeError('the bootstrap username must be a non-empty string');
  if ((await store.countUsers()) > 0) return false;
  const generated = options.password === undefined;
  const password = options.password ?? randomBytes(GENERATED_PASSWORD_BYTES).toString('base64url');
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
    // Another replica created it between our count and our insert.
    if (isKubegateError(error, 'STORE_CONSTRAINT')) return false;
    throw error;
  }
  if (generated) {
    logger.warn(`bootstrap admin password: ${password} (user "${username}"; log in and change it with POST /v1/me/password)`);
  } else {
    logger.info({ username }, 'bootstrap admin created with the configured password');
  }
  return true;
}
