/**
 * One small JSON request to a cluster's API server as the proxy's own identity, for the
 * background probe (status.ts) and the credential check at registration
 * (credential-check.ts) — never for forwarding, which streams.
 *
 * Design note: it goes through the upstream pool (the agent, CA and credentials forwarding
 * uses), bounded by the caller's signal and by MAX_BODY_BYTES. Answers of any status
 * resolve; only failing to get one rejects. `describeUnreachable` turns such a failure into
 * a short, fixed phrase plus a system error code (`ECONNREFUSED`, `CERT_HAS_EXPIRED`):
 * enough for an operator, nothing of the upstream's text.
 */
import type { IncomingMessage } from 'node:http';
import type { Upstream } from './upstreams.js';

export interface UpstreamJsonRequest {
  readonly method: 'GET' | 'POST';
  /** Path on the API server, e.g. `/version`. */
  readonly path: string;
  /** Sent as JSON. */
  readonly body?: unknown;
}

export interface UpstreamJsonAnswer {
  readonly status: number;
  /** The body parsed as JSON; undefined when it is not JSON. */
  readonly body: unknown;
}

const MAX_BODY_BYTES = 64 * 1024;

/** A failure whose message is ours and safe to show. */
export class UpstreamAnswerError extends Error {}

export function requestUpstreamJson(upstream: Upstream, request: UpstreamJsonRequest, signal: AbortSignal): Promise<UpstreamJsonAnswer> {
  const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), 'utf8');
  const headers: Record<string, string> = { Host: upstream.hostHeader, Accept: 'application/json' };
  if (payload !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) });
  for (let i = 0; i < upstream.authHeaders.length; i += 2) headers[upstream.authHeaders[i]!] = upstream.authHeaders[i + 1]!;
  return new Promise((resolve, reject) => {
    const outgoing = upstream.request({
      method: request.method,
      hostname: upstream.hostname,
      port: upstream.port,
      path: `${upstream.pathPrefix}${request.path}`,
      headers,
      agent: upstream.agent,
      signal,
    });
    outgoing.once('error', reject);
    outgoing.once('response', (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          response.destroy(new UpstreamAnswerError(`the ${request.path} answer is too large`));
          return;
        }
        chunks.push(chunk);
      });
      response.once('error', reject);
      response.once('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    outgoing.end(payload);
  });
}

/** Why no answer came, as a short phrase safe to show. */
export function describeUnreachable(error: unknown, signal: AbortSignal): string {
  if (error instanceof UpstreamAnswerError) return error.message;
  if (signal.aborted) return 'no answer in time';
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(code)) {
    return code === 'CONFIG_INVALID' ? 'the cluster settings cannot be used' : `the API server cannot be reached (${code})`;
  }
  return 'the API server cannot be reached';
}
