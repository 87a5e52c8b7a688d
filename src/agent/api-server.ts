/**
 * The agent's own API server: the one address the agent ever dials for the proxy, and the
 * service account credentials it reports in its hello and uses itself (to read and write its
 * credential Secret, and to learn the Kubernetes version).
 *
 * The CA and token are files (in a pod, the projected service account volume: the kubelet
 * replaces the token before it expires). They are re-read every `refreshIntervalMs`; when
 * either changed, `onChange` fires so the agent sends a new hello and the proxy uses the new
 * token from its next request on. The agent's own calls (kube/client.ts) read the current
 * token per request and verify TLS against the current CA.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { KubegateError } from '../errors.js';
import type { KubeEndpoint } from '../kube/client.js';
import { serverIdentityOptions } from '../kube/tls-name.js';

export interface ApiServerSettings {
  readonly url: string;
  readonly caFile: string;
  readonly tokenFile: string;
  readonly serverName: string;
}

export interface ApiServerCredentials {
  readonly caPem: string;
  readonly token: string;
}

export interface ApiServerTarget {
  /** `host:port` as the `Host` header and in the hello. */
  readonly host: string;
  readonly serverName: string;
  /** A new TCP connection to the API server (TLS is the proxy's business), Nagle's algorithm off. */
  dial(): net.Socket;
  /** The CA and token as last read. */
  credentials(): ApiServerCredentials;
  /** The agent's own client endpoint (service account token, CA verified). */
  readonly endpoint: KubeEndpoint;
  /** Re-reads the files now; true when something changed. */
  refresh(): boolean;
  /** Calls `onChange` whenever a periodic re-read finds new content; returns a stopper. */
  watch(onChange: () => void, refreshIntervalMs?: number): () => void;
}

const DEFAULT_REFRESH_MS = 30_000;

/** Reads the CA and token once (throws CONFIG_INVALID naming the file when unreadable). */
export function createApiServerTarget(settings: ApiServerSettings): ApiServerTarget {
  const url = new URL(settings.url);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 443 : Number(url.port);
  let current = readCredentials(settings);
  let agent = newAgent(current.caPem, settings.serverName);

  function refresh(): boolean {
    let next: ApiServerCredentials;
    try {
      next = readCredentials(settings);
    } catch {
      return false; // keep what works; the next round tries again
    }
    if (next.caPem === current.caPem && next.token === current.token) return false;
    if (next.caPem !== current.caPem) {
      agent.destroy();
      agent = newAgent(next.caPem, settings.serverName);
    }
    current = next;
    return true;
  }

  const endpoint: KubeEndpoint = {
    request: https.request,
    get agent() {
      return agent;
    },
    hostname,
    port,
    hostHeader: url.host,
    pathPrefix: '',
    headers: () => ({ Authorization: `Bearer ${current.token}` }),
  };

  return {
    host: url.host,
    serverName: settings.serverName,
    // Nagle off: the proxy's TLS records are relayed as they come, and a request whose body
    // follows its headers in a second record must not wait for the API server's delayed ACK
    // (about 40 ms a request, measured through the tunnel; exec keystrokes alike).
    dial: () => net.connect({ host: hostname, port, noDelay: true }),
    credentials: () => current,
    endpoint,
    refresh,
    watch(onChange, refreshIntervalMs = DEFAULT_REFRESH_MS) {
      const timer = setInterval(() => {
        if (refresh()) onChange();
      }, refreshIntervalMs).unref();
      return () => clearInterval(timer);
    },
  };
}

function newAgent(caPem: string, servername: string): https.Agent {
  return new https.Agent({ keepAlive: true, ca: caPem, ...serverIdentityOptions(servername), rejectUnauthorized: true });
}

function readCredentials(settings: ApiServerSettings): ApiServerCredentials {
  return { caPem: readText(settings.caFile, 'apiServer.caFile'), token: readText(settings.tokenFile, 'apiServer.tokenFile').trim() };
}

function readText(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', `${field}: cannot read ${path}`, { field, cause });
  }
}
