/**
 * What went wrong when the PostgreSQL store could not be opened, told so an operator can
 * fix it (issue #16.4): the cause in words, the setting to change (`store.url`, set by
 * KUBEGATE_STORE_URL or --store-url), and never the password — messages are composed here
 * from the user, database and host of the URL, never copied from the driver.
 *
 * Mistakes in the URL (wrong password, unknown role or database, TLS asked for but not
 * offered or not trusted, no right to create tables) are CONFIG_INVALID: retrying will not
 * help. A server that cannot be reached (refused, unknown host, no route, timeout, no
 * socket) is STORE_UNAVAILABLE: it may come up. Anything else keeps the store's own
 * mapping.
 */
import { KubegateError } from '../errors.js';

const FIELD = 'store.url';
const WHERE = `${FIELD} (KUBEGATE_STORE_URL or --store-url)`;

interface Target {
  readonly user: string;
  readonly database: string;
  readonly host: string;
}

/** A start-up error of the PostgreSQL store with a clear message, or undefined when it is not a connection problem we know. */
export function describeStartupError(error: unknown, connectionString: string): KubegateError | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const message = error instanceof Error ? error.message : '';
  const { user, database, host } = targetOf(connectionString);
  const invalid = (text: string): KubegateError => new KubegateError('CONFIG_INVALID', `${FIELD}: ${text}`, { field: FIELD, cause: error });
  const unreachable = (text: string): KubegateError => new KubegateError('STORE_UNAVAILABLE', `${FIELD}: ${text}`, { field: FIELD, cause: error });

  switch (code) {
    case '28P01':
      return invalid(`PostgreSQL refused the password of user ${user}: fix the user or password in ${WHERE}`);
    case '28000':
      return /SSL off/i.test(message)
        ? invalid(`PostgreSQL at ${host} accepts user ${user} only over TLS: add sslmode=require (or verify-full) to ${WHERE}`)
        : invalid(`PostgreSQL at ${host} does not let user ${user} connect to database ${database} (no such role, or pg_hba.conf refuses it): fix ${WHERE} or the server's pg_hba.conf`);
    case '3D000':
      return invalid(`database ${database} does not exist on ${host}: create it (CREATE DATABASE) or fix the database name in ${WHERE}`);
    case '42501':
      return invalid(`user ${user} may not create kubegate's tables in database ${database}: grant it CREATE on the schema, or use another user in ${WHERE}`);
    case 'ECONNREFUSED':
      return unreachable(`nothing accepts connections at ${host} (connection refused): is PostgreSQL running there, and are host and port in ${WHERE} right?`);
    case 'ENOENT':
      return unreachable(`there is no PostgreSQL socket at ${host}: is PostgreSQL running, and is the host in ${WHERE} right?`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachable(`the host ${host} cannot be resolved: fix the host in ${WHERE}`);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return unreachable(`${host} cannot be reached (${code}): check the host in ${WHERE} and the network between them`);
    default:
      break;
  }
  if (message.includes('timeout exceeded when trying to connect') || message.includes('Connection terminated due to connection timeout')) {
    return unreachable(`${host} did not answer in time: check the host in ${WHERE} and the network between them`);
  }
  if (message.includes('does not support SSL')) {
    return invalid(`PostgreSQL at ${host} does not offer TLS, but ${FIELD} asks for it: remove sslmode (or set sslmode=disable) in ${WHERE}, or enable TLS on the server`);
  }
  if (typeof code === 'string' && (code.includes('CERT') || code.startsWith('ERR_TLS') || code.startsWith('UNABLE_TO'))) {
    return invalid(`the TLS certificate of PostgreSQL at ${host} is not trusted (${code}): give its CA with sslrootcert in ${WHERE}`);
  }
  return undefined;
}

/** User, database and host named in the URL, for messages (the password is never read). */
function targetOf(connectionString: string): Target {
  let url: URL | undefined;
  try {
    url = new URL(connectionString);
  } catch {
    url = undefined;
  }
  const param = (name: string): string | undefined => url?.searchParams.get(name) || undefined;
  const hostName = url?.hostname ? `${url.hostname}${url.port === '' ? '' : `:${url.port}`}` : param('host');
  return {
    user: quoted(decode(url?.username) || param('user') || process.env.PGUSER),
    database: quoted(decode(url?.pathname.slice(1)) || param('dbname') || process.env.PGDATABASE),
    host: hostName === undefined ? 'the default host' : quoted(hostName),
  };
}

function decode(text: string | undefined): string | undefined {
  if (text === undefined || text === '') return undefined;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function quoted(text: string | undefined): string {
  return text === undefined ? '(default)' : JSON.stringify(text);
}
