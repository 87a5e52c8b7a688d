/**
 * The CLI's HTTPS client for the proxy's REST API: JSON in, JSON out, the proxy's CA when
 * one is given (else the system roots), never `rejectUnauthorized: false`. Errors of the
 * API come back as KubegateErrors with the proxy's code and message; an unreachable proxy is
 * PROVIDER_UNAVAILABLE.
 */
import https from 'node:https';
import { isIP } from 'node:net';
import { KubegateError, errorFromApiBody } from '../errors.js';
import { KUBEGATE_VERSION } from '../version.js';

export interface ProxyResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body parsed as JSON; undefined when it is not JSON. */
  readonly body: unknown;
  /** The body as text (a kubeconfig is YAML). */
  readonly text: string;
}

export interface ProxyClient {
  /** The proxy's base URL, without a trailing slash. */
  readonly server: string;
  /** Sends one request; resolves whatever the status. */
  send(method: string, path: string, options?: { token?: string; body?: unknown }): Promise<ProxyResponse>;
  /** Like send, but a non-2xx answer throws its KubegateError. */
  call(method: string, path: string, options?: { token?: string; body?: unknown }): Promise<ProxyResponse>;
}

const TIMEOUT_MS = 30_000;

export function createProxyClient(server: string, caPem: string | undefined): ProxyClient {
  const base = new URL(server);
  if (base.protocol !== 'https:') throw new KubegateError('BAD_REQUEST', '--server must be an https:// URL', { field: 'server' });
  const prefix = base.pathname.replace(/\/+$/, '');
  // The server URL of a kubeconfig, pasted where the proxy's address belongs: its REST API is not under a cluster's path.
  const cluster = /\/k8s\/clusters(\/|$)/.exec(prefix);
  if (cluster !== null) {
    throw new KubegateError('BAD_REQUEST', `--server is the proxy's address, not a cluster's URL: use ${base.origin}${prefix.slice(0, cluster.index)}`, { field: 'server' });
  }
  const agent = new https.Agent({ keepAlive: false, ...(caPem === undefined ? {} : { ca: caPem }) });

  function send(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<ProxyResponse> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    return new Promise((resolve, reject) => {
      const request = https.request(
        {
          agent,
          hostname: base.hostname.replace(/^\[|\]$/g, ''),
          port: base.port === '' ? 443 : Number(base.port),
          ...(isIP(base.hostname) === 0 ? { servername: base.hostname } : {}),
          method,
          path: `${prefix}${path}`,
          timeout: TIMEOUT_MS,
          headers: {
            accept: 'application/json, application/yaml',
            // The audit trail records it for every administrative action and login.
            'user-agent': `kubegate/${KUBEGATE_VERSION}`,
            ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
            ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(body.length) }),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body: parsed, text });
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error('the proxy did not answer in time')));
      request.on('error', (error) => reject(connectionFailure(`${base.origin}${prefix}`, caPem !== undefined, error)));
      request.end(body);
    });
  }

  return {
    server: `${base.origin}${prefix}`,
    send,
    async call(method, path, options) {
      const response = await send(method, path, options);
      if (response.status >= 200 && response.status < 300) return response;
      throw apiError(response);
    },
  };
}

/** Node's codes for a server certificate that does not verify. */
const UNTRUSTED_CERTIFICATE = /^(?:SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/**
 * Why the proxy could not be talked to. An untrusted certificate is not "could not be
 * reached": it says so, why (node's code) and how to pass the CA.
 */
function connectionFailure(origin: string, caGiven: boolean, error: Error): KubegateError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === undefined || !UNTRUSTED_CERTIFICATE.test(code)) {
    return new KubegateError('PROVIDER_UNAVAILABLE', `the proxy at ${origin} could not be reached${code === undefined ? '' : ` (${code})`}`, { cause: error });
  }
  const why =
    code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? `is not valid for the host name in ${origin}`
      : code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID'
        ? 'is outside its validity period'
        : caGiven
          ? 'is not signed by the CA given'
          : 'is not signed by a CA this machine trusts';
  return new KubegateError(
    'PROXY_CERTIFICATE_UNTRUSTED',
    `the TLS certificate of the proxy at ${origin} ${why} (${code}): pass the proxy's CA with --certificate-authority <file> (or KUBEGATE_CA_DATA); ` +
      `the proxy serves it at ${origin}/v1/cacerts — check it out of band before trusting it`,
    { cause: error },
  );
}

/** The API's `{"error":{code,message}}` as a KubegateError (INTERNAL when it is not one). */
export function apiError(response: ProxyResponse): KubegateError {
  return errorFromApiBody(response.status, response.body);
}
