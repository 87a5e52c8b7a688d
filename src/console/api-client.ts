/**
 * How the web console talks to the proxy: through the REST API itself, in process. Each
 * console action is one or more REST calls into the API's own request handler, with
 * `Authorization: Bearer <session token>`. So the REST API stays the one contract — its
 * validation, authorization (admin, owner, member), rate limits and error catalog apply to
 * the console exactly as to curl or the CLI — and the console holds no store handle and no
 * rule of its own about who may do what.
 *
 * Design note: a call is real HTTP/1.1 over an in-memory stream pair (node:stream
 * duplexPair), served by an `http.Server` that never listens: Node parses and writes both
 * sides as it does on a socket, so the API's handler sees an ordinary IncomingMessage and
 * ServerResponse (no mock objects, no second listener, no TLS to itself). The server side
 * of the pair reports the browser's address as its `remoteAddress`, so the API's
 * per-address login limits count console logins like any other. Answers are small JSON or
 * a kubeconfig, read whole.
 */
import http from 'node:http';
import type { RequestListener } from 'node:http';
import { duplexPair } from 'node:stream';
import { errorFromApiBody } from '../errors.js';

export interface ApiCallOptions {
  /** The session's token; omitted for the public routes (login, providers). */
  readonly token?: string | undefined;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** The browser's address, for the API's login limits. */
  readonly remoteAddress?: string | undefined;
}

export interface ApiAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw body (a kubeconfig is YAML). */
  readonly text: string;
  /** The body as JSON; undefined when it is not JSON. */
  readonly json: unknown;
}

export interface ConsoleApi {
  /** One REST call; resolves whatever the status. */
  send(method: string, path: string, options?: ApiCallOptions): Promise<ApiAnswer>;
  /** Like send, but a non-2xx answer throws its KubegateError (code, message and field). */
  call(method: string, path: string, options?: ApiCallOptions): Promise<ApiAnswer>;
}

/** Longest answer read (a kubeconfig with many authorized-endpoint contexts is far smaller). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** A client for the REST API whose request handler is `dispatch` (createProxyApp's app). */
export function inProcessApi(dispatch: RequestListener): ConsoleApi {
  const server = http.createServer(dispatch);

  function send(method: string, path: string, options: ApiCallOptions = {}): Promise<ApiAnswer> {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const [clientSide, serverSide] = duplexPair();
    Object.defineProperty(serverSide, 'remoteAddress', { value: options.remoteAddress ?? '127.0.0.1' });
    server.emit('connection', serverSide);
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          createConnection: () => clientSide,
          method,
          path,
          headers: {
            host: 'kubegate.console.internal',
            accept: 'application/json',
            connection: 'close',
            ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
            ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(payload.length) }),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) response.destroy(new Error('the REST API answer is too large'));
            else chunks.push(chunk);
          });
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            clientSide.destroy();
            resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
          });
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  }

  return {
    send,
    async call(method, path, options) {
      const answer = await send(method, path, options);
      if (answer.status >= 200 && answer.status < 300) return answer;
      throw errorFromApiBody(answer.status, answer.json);
    },
  };
}

/** `items` of a list answer. */
export function itemsOf<T>(answer: ApiAnswer): T[] {
  const items = (answer.json as { items?: unknown } | undefined)?.items;
  return Array.isArray(items) ? (items as T[]) : [];
}
