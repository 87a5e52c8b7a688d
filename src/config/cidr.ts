/**
 * Address ranges written `IP[/PREFIX]` (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`), as
 * `trustedProxies` lists them. Config validates them with this parser; the proxy builds its
 * matcher from it.
 */
import { isIP } from 'node:net';

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** Parses `IP[/PREFIX]`; a bare address is its own /32 or /128. Undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return undefined;
  return { address, prefix: Number(prefixText), family: family === 4 ? 'ipv4' : 'ipv6' };
}
