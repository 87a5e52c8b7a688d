/**
 * A KubeEndpoint (kube/client.ts) from a kubeconfig file, or the in-cluster service account
 * when no file is given (the webhook, the agent): loaded by @kubernetes/client-node's
 * KubeConfig, which knows every credential form (token, token file, client certificate, exec
 * plugin) and re-reads a projected service account token when it rotates. Its request
 * options are asked for per request, so rotated credentials are used at once; the TLS
 * settings become one keep-alive agent. The package takes over a second to import, so it is
 * imported only here, on demand.
 */
import http from 'node:http';
import https from 'node:https';
import { KubegateError } from '../errors.js';
import type { KubeEndpoint } from './client.js';

interface HttpsOptionsOut {
  ca?: unknown;
  cert?: unknown;
  key?: unknown;
  rejectUnauthorized?: boolean;
  servername?: string;
  headers?: Record<string, unknown>;
  auth?: string;
  agent?: unknown;
}

/**
 * An endpoint for the current context of `kubeconfigPath`, or the in-cluster service account
 * when it is undefined. Throws CONFIG_INVALID when the file or the in-cluster environment is
 * unusable.
 */
export async function loadKubeEndpoint(kubeconfigPath: string | undefined): Promise<KubeEndpoint> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const config = new KubeConfig();
  try {
    if (kubeconfigPath === undefined) {
      if (process.env['KUBERNETES_SERVICE_HOST'] === undefined) throw new Error('KUBERNETES_SERVICE_HOST is not set');
      config.loadFromCluster();
    } else {
      config.loadFromFile(kubeconfigPath);
    }
  } catch (cause) {
    throw new KubegateError(
      'CONFIG_INVALID',
      kubeconfigPath === undefined ? 'kubeconfig: not running in a cluster; give --kubeconfig' : 'kubeconfig: the file cannot be read or parsed',
      { field: 'kubeconfig', cause },
    );
  }
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new KubegateError('CONFIG_INVALID', 'kubeconfig: the current context names no cluster', { field: 'kubeconfig' });
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', "kubeconfig: the cluster's server is not a URL", { field: 'kubeconfig', cause });
  }
  const secure = url.protocol === 'https:';

  async function requestOptions(): Promise<HttpsOptionsOut> {
    const options: HttpsOptionsOut = {};
    await config.applyToHTTPSOptions(options as never);
    return options;
  }

  let first: HttpsOptionsOut;
  try {
    first = await requestOptions();
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', 'kubeconfig: the credentials cannot be loaded', { field: 'kubeconfig', cause });
  }
  const agentOptions: https.AgentOptions = {
    keepAlive: true,
    ...(first.ca === undefined ? {} : { ca: first.ca as string }),
    ...(first.cert === undefined ? {} : { cert: first.cert as string }),
    ...(first.key === undefined ? {} : { key: first.key as string }),
    ...(first.servername === undefined ? {} : { servername: first.servername }),
    rejectUnauthorized: first.rejectUnauthorized ?? !(cluster.skipTLSVerify ?? false),
  };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent({ keepAlive: true });

  return {
    request: secure ? https.request : http.request,
    agent,
    hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    hostHeader: url.host,
    pathPrefix: url.pathname.replace(/\/+$/, ''),
    async headers() {
      const options = await requestOptions();
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(options.headers ?? {})) if (typeof value === 'string') headers[name] = value;
      if (options.auth !== undefined) headers['Authorization'] = `Basic ${Buffer.from(options.auth).toString('base64')}`;
      return headers;
    },
  };
}
