/**
 * One LDAP session: a connection to the first server that answers, secured as configured and
 * bound as the service account, closed by its user when done. Each login and each refresh
 * opens its own session and closes it in `finally`; nothing is pooled, so nothing idles,
 * nothing is shared between people, and no state (the bound identity) leaks between logins.
 *
 * Design notes:
 * - Failover: servers are tried in configuration order; a server that refuses, times out,
 *   fails the TLS handshake or refuses the service account is logged and skipped. Only when
 *   every server failed is the session an error: PROVIDER_UNAVAILABLE, never a wrong
 *   password, whatever the cause (a bad CA and a bad service password are outages too).
 * - Timeouts: `connectionTimeoutMs` bounds connecting + StartTLS + service bind per server
 *   (a deadline of our own, because ldapts does not time the StartTLS handshake), and each
 *   later operation (ldapts' operation timeout).
 * - Sockets: every socket ldapts opens goes through our `createConnection` hooks and is
 *   recorded, so a deadline or `close()` destroys exactly those, even half-upgraded ones.
 * - TLS: the CA bundle (or the system roots) verifies the server certificate against the
 *   configured host name; an IP address is matched against IP SANs and never sent as SNI.
 *   `tlsOptions` go to the Client only for LDAPS (ldapts switches to LDAPS when it sees
 *   them); for StartTLS they go to `startTLS()`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Client, ResultCodeError } from 'ldapts';
import type { Filter } from 'ldapts';
import { KubegateError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { LdapServer, LdapSettings } from './settings.js';

export type LdapConnectionSettings = Pick<
  LdapSettings,
  'servers' | 'tls' | 'caCertificate' | 'connectionTimeoutMs' | 'serviceAccountDn' | 'serviceAccountPassword'
>;

export interface LdapEntry {
  readonly dn: string;
  /** Values by lower-cased attribute name; binary values decoded as UTF-8. */
  readonly attributes: ReadonlyMap<string, readonly string[]>;
}

export interface LdapSearchOptions {
  readonly scope: 'base' | 'sub';
  readonly filter: Filter;
  /** Attributes to return; `['1.1']` for none. */
  readonly attributes: readonly string[];
  /** Stop after this many entries (the directory answers sizeLimitExceeded, which is fine). */
  readonly sizeLimit?: number;
  /** Page through large answers (RFC 2696), for group searches. */
  readonly paged?: boolean;
}

export interface LdapSession {
  readonly server: LdapServer;
  /**
   * Binds as `dn` with `password`: true when the directory accepts them, false when it
   * refuses the credentials (invalidCredentials, inappropriateAuthentication). Any other
   * failure throws. After a `true`, the session acts as that user until rebound.
   */
  bindAs(dn: string, password: string): Promise<boolean>;
  /** Binds as the service account again (after bindAs). */
  bindServiceAccount(): Promise<void>;
  search(base: string, options: LdapSearchOptions): Promise<LdapEntry[]>;
  /** Unbinds and destroys every socket of the session. Never throws; idempotent. */
  close(): Promise<void>;
}

/** LDAP result codes that mean "these credentials are refused", not "the directory failed". */
const REFUSED_CREDENTIALS = new Set([48, 49]);
const UNBIND_GRACE_MS = 200;

export function valuesOf(entry: LdapEntry, attribute: string): readonly string[] {
  return entry.attributes.get(attribute.toLowerCase()) ?? [];
}

export function isNoSuchObject(error: unknown): boolean {
  return error instanceof ResultCodeError && error.code === 32;
}

/** Opens a session on the first server that works. Throws PROVIDER_UNAVAILABLE when none does. */
export async function openLdapSession(settings: LdapConnectionSettings, logger?: Logger): Promise<LdapSession> {
  const failures: unknown[] = [];
  for (const server of settings.servers) {
    try {
      return await openOn(server, settings);
    } catch (error) {
      failures.push(error);
      logger?.warn({ server: server.url, err: error }, 'LDAP server unusable; trying the next one');
    }
  }
  throw new KubegateError('PROVIDER_UNAVAILABLE', undefined, {
    cause: new AggregateError(failures, 'every LDAP server failed'),
  });
}

async function openOn(server: LdapServer, settings: LdapConnectionSettings): Promise<LdapSession> {
  const sockets = new Set<net.Socket>();
  const track = <S extends net.Socket>(socket: S): S => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return socket;
  };
  const destroySockets = (): void => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  const tlsOptions = (): tls.ConnectionOptions => ({
    host: server.host,
    ...(net.isIP(server.host) === 0 ? { servername: server.host } : {}),
    ...(settings.caCertificate === undefined ? {} : { ca: settings.caCertificate }),
    minVersion: 'TLSv1.2',
  });
  const client = new Client({
    url: server.url,
    connectTimeout: settings.connectionTimeoutMs,
    timeout: settings.connectionTimeoutMs,
    ...(settings.tls === 'ldaps' ? { tlsOptions: tlsOptions() } : {}),
    createConnection: ((...args: unknown[]) => track(Reflect.apply(net.connect, net, args) as net.Socket)) as typeof net.connect,
    createSecureConnection: ((...args: unknown[]) => track(Reflect.apply(tls.connect, tls, args) as tls.TLSSocket)) as typeof tls.connect,
  });
  const bindServiceAccount = (): Promise<void> => client.bind(settings.serviceAccountDn, settings.serviceAccountPassword);

  try {
    await withDeadline(settings.connectionTimeoutMs, destroySockets, async () => {
      if (settings.tls === 'starttls') await client.startTLS(tlsOptions());
      await bindServiceAccount();
    });
  } catch (error) {
    destroySockets();
    throw error;
  }

  let closed = false;
  return {
    server,
    async bindAs(dn, password) {
      try {
        await client.bind(dn, password);
        return true;
      } catch (error) {
        if (error instanceof ResultCodeError && REFUSED_CREDENTIALS.has(error.code)) return false;
        throw error;
      }
    },
    bindServiceAccount,
    async search(base, options) {
      const result = await client.search(base, {
        scope: options.scope,
        filter: options.filter,
        attributes: [...options.attributes],
        ...(options.sizeLimit === undefined ? {} : { sizeLimit: options.sizeLimit }),
        ...(options.paged === true ? { paged: { pageSize: 500 } } : {}),
        timeLimit: Math.ceil(settings.connectionTimeoutMs / 1000),
      });
      return result.searchEntries.map(toLdapEntry);
    },
    async close() {
      if (closed) return;
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([client.unbind(), new Promise((resolve) => (timer = setTimeout(resolve, UNBIND_GRACE_MS)))]);
      } catch {
        // The connection is going away either way.
      } finally {
        clearTimeout(timer);
        destroySockets();
      }
    },
  };
}

/** Runs `work`; if it has not settled after `ms`, calls `onTimeout` and rejects. */
async function withDeadline<T>(ms: number, onTimeout: () => void, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`no usable LDAP connection within ${ms} ms`));
    }, ms);
  });
  const running = work();
  // The work rejects too once its sockets are destroyed; that rejection is expected.
  running.catch(() => undefined);
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function toLdapEntry(entry: Record<string, unknown> & { dn: string }): LdapEntry {
  const attributes = new Map<string, string[]>();
  for (const [name, raw] of Object.entries(entry)) {
    if (name === 'dn') continue;
    const values = (Array.isArray(raw) ? raw : [raw]).map((value: unknown) => (Buffer.isBuffer(value) ? value.toString('utf8') : String(value)));
    const key = name.toLowerCase();
    attributes.set(key, [...(attributes.get(key) ?? []), ...values]);
  }
  return { dn: entry.dn, attributes };
}
