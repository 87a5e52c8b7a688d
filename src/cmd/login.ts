/**
 * `kubegate login [<proxy-url>] [--provider <name>] [--device]`: logs in (password prompt or
 * KUBEGATE_USERNAME/KUBEGATE_PASSWORD, browser, or device flow), caches the login token that
 * `kubegate token` and the admin commands then use, and remembers the proxy (URL, provider,
 * CA) so those commands need no `--server`. Without a URL: `--server`, KUBEGATE_SERVER, or
 * the proxy remembered last time.
 */
import { freshLogin } from '../cli/exec-credential.js';
import { loginOptionsFor, resolveConnection } from '../cli/admin-session.js';
import type { ConnectionDeps, ConnectionFlags } from '../cli/admin-session.js';

export async function runLogin(url: string | undefined, flags: ConnectionFlags, deps: ConnectionDeps): Promise<void> {
  const connection = await resolveConnection({ ...flags, server: url ?? flags.server }, deps);
  const options = loginOptionsFor(connection, flags, deps);
  const { provider, token } = await freshLogin({ ...options, cache: deps.cache });
  // The provider that answered, so later commands and the exec plugin use the same login.
  await deps.cache.writeCurrent({ server: options.client.server, provider: connection.provider ?? provider, caPem: connection.caPem });
  process.stderr.write(`Logged in to ${options.client.server}${token.expiresAt === null ? '' : ` until ${token.expiresAt}`}.\n`);
}
