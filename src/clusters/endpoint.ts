/**
 * A KubeEndpoint (kube/client.ts) from the proxy's upstream pool, for the sync: the same
 * agent, CA and impersonate-only credentials as the forwarding path, impersonating the sync's
 * own user.
 */
import type { KubeEndpoint } from '../kube/client.js';
import type { Upstream } from './upstreams.js';

export interface UpstreamEndpointOptions {
  /**
   * Act as this Kubernetes user (`Impersonate-User`). The sync writes as a user that exists
   * only through impersonation, so the proxy's own identity keeps no rights but impersonate.
   */
  readonly impersonateUser?: string;
}

export function endpointFromUpstream(upstream: Upstream, options: UpstreamEndpointOptions = {}): KubeEndpoint {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < upstream.authHeaders.length; i += 2) headers[upstream.authHeaders[i]!] = upstream.authHeaders[i + 1]!;
  if (options.impersonateUser !== undefined) headers['Impersonate-User'] = options.impersonateUser;
  Object.freeze(headers);
  return {
    request: upstream.request,
    agent: upstream.agent,
    hostname: upstream.hostname,
    port: upstream.port,
    hostHeader: upstream.hostHeader,
    pathPrefix: upstream.pathPrefix,
    headers: () => headers,
  };
}

