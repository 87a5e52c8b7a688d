/**
 * `kubegate token --server <proxy> --cluster <id>`, the kubeconfig exec credential plugin
 * (`?auth=exec` kubeconfigs run it): prints an ExecCredential. It takes the proxy URL, an
 * optional provider, `--device` for OIDC device logins, and the proxy's CA from
 * `--certificate-authority <file>` or `KUBEGATE_CA_DATA` (base64 PEM, as `?auth=exec`
 * kubeconfigs set it); without either the system roots verify the proxy. The same command
 * name also holds `kubegate token create|list|revoke` (src/cmd/admin.ts).
 */
import { KubegateError } from '../errors.js';
import { loginOptionsFor, proxyCaFrom } from '../cli/admin-session.js';
import type { ConnectionDeps, ConnectionFlags } from '../cli/admin-session.js';
import { clusterCredential, clusterJwt, execCredential, refreshAt } from '../cli/exec-credential.js';

/**
 * Prints the ExecCredential for `--cluster`: its cluster-scoped kubegate token, or with
 * `--jwt` its short-lived JWT (authorized endpoint in the `jwt` mode). Both `--server` and
 * `--cluster` are required.
 */
export async function runToken(flags: ConnectionFlags & { readonly cluster?: string | undefined; readonly jwt?: boolean | undefined }, deps: ConnectionDeps): Promise<void> {
  if (flags.server === undefined || flags.cluster === undefined) {
    throw new KubegateError('BAD_REQUEST', 'kubegate token needs --server and --cluster (or a subcommand: create, list, revoke)', { field: flags.server === undefined ? 'server' : 'cluster' });
  }
  const connection = { server: flags.server, provider: flags.provider, caPem: proxyCaFrom(flags, deps.env) };
  const options = { ...loginOptionsFor(connection, flags, deps), cache: deps.cache, cluster: flags.cluster };
  if (flags.jwt === true) {
    const jwt = await clusterJwt(options);
    process.stdout.write(`${JSON.stringify(execCredential(jwt, refreshAt(jwt)))}\n`);
    return;
  }
  const token = await clusterCredential(options);
  process.stdout.write(`${JSON.stringify(execCredential(token))}\n`);
}
