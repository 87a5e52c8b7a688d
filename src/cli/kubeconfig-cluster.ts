/**
 * `kubegate cluster add <id> --kubeconfig <file> [--context <name>]`: the registration body
 * (POST /v1/clusters) from a context of a kubeconfig, read with @kubernetes/client-node's
 * KubeConfig (the same reading kubectl's files get everywhere else), so nobody base64-encodes
 * a CA by hand.
 *
 * Taken: the cluster's `server`, its CA (`certificate-authority-data`, or the file named by
 * `certificate-authority`, relative to the kubeconfig), `insecure-skip-tls-verify`; the
 * user's static `token`, or `client-certificate(-data)` with `client-key(-data)`. Refused with
 * a message naming what is wrong (BAD_REQUEST, field `kubeconfig`): an unreadable file, an
 * unknown context, a user that authenticates with an exec plugin, an auth provider or a
 * password — the proxy needs a credential it can present on its own, every time.
 */
import { readFileSync } from 'node:fs';
import { KubegateError } from '../errors.js';

function refused(message: string, cause?: unknown): KubegateError {
  return new KubegateError('BAD_REQUEST', `--kubeconfig: ${message}`, { field: 'kubeconfig', ...(cause === undefined ? {} : { cause }) });
}

/** Base64 of inline data, or of the file it names. */
function base64Of(data: string | undefined, file: string | undefined, what: string): string | undefined {
  if (data !== undefined && data !== '') return data;
  if (file === undefined || file === '') return undefined;
  try {
    return readFileSync(file).toString('base64');
  } catch (error) {
    throw refused(`the ${what} file cannot be read`, error);
  }
}

export async function clusterFromKubeconfig(path: string, contextName: string | undefined): Promise<Record<string, unknown>> {
  // Loaded only here: the exec plugin and the other commands start without it.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const config = new KubeConfig();
  try {
    config.loadFromFile(path);
  } catch (error) {
    throw refused('the file cannot be read as a kubeconfig', error);
  }
  const name = contextName ?? config.getCurrentContext();
  const context = name === undefined || name === '' ? null : config.getContextObject(name);
  if (context === null) throw refused(contextName === undefined ? 'it has no current context; choose one with --context' : 'it has no context of that name');
  const cluster = config.getCluster(context.cluster);
  const user = config.getUser(context.user);
  if (cluster === null) throw refused("the context's cluster is not in the file");
  if (user === null) throw refused("the context's user is not in the file");
  if (user.exec !== undefined || user.authProvider !== undefined) {
    throw refused('its user logs in through an exec plugin or auth provider; the proxy needs a static token or a client certificate');
  }
  const body: Record<string, unknown> = { server: cluster.server };
  const caData = base64Of(cluster.caData, cluster.caFile, 'certificate-authority');
  if (caData !== undefined) body['caData'] = caData;
  if (cluster.skipTLSVerify) body['insecureSkipTLSVerify'] = true;
  const clientCert = base64Of(user.certData, user.certFile, 'client-certificate');
  const clientKey = base64Of(user.keyData, user.keyFile, 'client-key');
  if (user.token !== undefined && user.token !== '') body['token'] = user.token;
  else if (clientCert !== undefined && clientKey !== undefined) Object.assign(body, { clientCert, clientKey });
  else throw refused('its user has neither a token nor a client certificate with its key');
  return body;
}
