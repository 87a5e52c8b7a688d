/**
 * A small HTTPS client for kubegate's REST API in end-to-end tests: real TLS, verified
 * against the proxy's own CA (never `rejectUnauthorized: false`).
 */
import https from 'node:https';
import { isIP } from 'node:net';

export interface ApiResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  // Tests read fields of many shapes; a precise type per route would only restate the API.
  readonly json: any;
}

export interface ApiRequestOptions {
  readonly token?: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ApiClient {
  request(method: string, path: string, options?: ApiRequestOptions): Promise<ApiResponse>;
  /** Logs in and answers the token; fails the test unless the login answers 201. */
  login(username: string, password: string, provider?: string): Promise<string>;
}

export function createApiClient(baseUrl: string, caPem: string): ApiClient {
  const base = new URL(baseUrl);
  const agent = new https.Agent({ ca: caPem, keepAlive: false });

  function request(method: string, path: string, options: ApiRequestOptions = {}): Promise<ApiResponse> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          agent,
          hostname: base.hostname,
          port: base.port,
          ...(isIP(base.hostname) === 0 ? { servername: base.hostname } : {}),
          method,
          path,
          headers: {
            ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
            ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(body.length) }),
            ...options.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  return {
    request,
    async login(username, password, provider = 'local') {
      const response = await request('POST', '/v1/login', { body: { provider, username, password } });
      if (response.status !== 201) throw new Error(`login of ${username} answered ${response.status}: ${response.text}`);
      return response.json.token as string;
    },
  };
}

/** A direct cluster as `POST /v1/clusters` takes it: where it is, its CA and the proxy's token there. */
export interface DirectClusterInput {
  readonly id: string;
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
}

/** Registers a direct cluster (as an admin, through `api`) and gives `group` the member role in it; fails the test otherwise. */
export async function registerClusterWithMemberGroup(api: ApiClient, adminToken: string, cluster: DirectClusterInput, group: string, membersApi: ApiClient = api): Promise<void> {
  const created = await api.request('POST', '/v1/clusters', {
    token: adminToken,
    body: { id: cluster.id, server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64'), token: cluster.token },
  });
  if (created.status !== 201) throw new Error(`registering ${cluster.id} answered ${created.status}: ${created.text}`);
  const member = await membersApi.request('POST', `/v1/clusters/${cluster.id}/members`, { token: adminToken, body: { kind: 'Group', name: group, role: 'member' } });
  if (member.status !== 201) throw new Error(`adding ${group} to ${cluster.id} answered ${member.status}: ${member.text}`);
}
