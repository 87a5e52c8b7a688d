/**
 * The TLS options that make a connection verify an API server's certificate for `name`.
 *
 * A DNS name goes in `servername` (SNI, and what the certificate is checked against). An IP
 * address may not be sent as SNI (RFC 6066; Node warns with DEP0123 and will ignore it), so
 * for an IP the name is checked by `checkServerIdentity` alone, against the certificate's IP
 * SANs, whatever host the socket was dialled through (a tunnel stream has none).
 */
import net from 'node:net';
import tls from 'node:tls';

export function serverIdentityOptions(name: string): Pick<tls.ConnectionOptions, 'servername' | 'checkServerIdentity'> {
  if (name === '') return {};
  if (net.isIP(name) === 0) return { servername: name };
  return { checkServerIdentity: (_host, certificate) => tls.checkServerIdentity(name, certificate) };
}
