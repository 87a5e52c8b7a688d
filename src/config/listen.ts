/**
 * Listen addresses are written `HOST:PORT` (`0.0.0.0:8443`, `127.0.0.1:6440`, `[::]:8443`).
 * Config validates them with this parser; the server uses it to bind.
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  /** A host name or an IP address, without brackets. */
  readonly host: string;
  /** 0 lets the operating system choose a free port. */
  readonly port: number;
}

const HOST_NAME_PATTERN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Parses `HOST:PORT`; returns undefined when the text is not one. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (match === null) return undefined;
  const bracketed = match[1];
  const host = bracketed ?? match[2] ?? '';
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  if (bracketed !== undefined) return isIP(host) === 6 ? { host, port } : undefined;
  return isIP(host) === 4 || HOST_NAME_PATTERN.test(host) ? { host, port } : undefined;
}

/** `::1` → `[::1]`: a host as it appears in a URL authority. */
export function formatHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** `('::', 1)` → `[::]:1`, the inverse of parseListenAddress. */
export function formatHostPort(host: string, port: number): string {
  return `${formatHost(host)}:${port}`;
}
