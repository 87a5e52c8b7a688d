/**
 * Who the client is, by network address: the socket's peer, or — when that peer is one of
 * the operator's `trustedProxies` — the address those proxies recorded in `X-Forwarded-For`.
 *
 * Design note (fail closed): `X-Forwarded-For` is read only from a trusted peer, since any
 * client can send one. The list is read from the right (each proxy appends the address it
 * saw): trusted proxies are skipped, and the first address that is not a trusted proxy is
 * the client. Entries left of it were written by the client and are never believed. An entry
 * that is not an IP address stops the walk at the trusted proxy that passed it on. The answer
 * keys the login rate limit and is recorded in the audit trail.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../config/cidr.js';

export type ClientAddressOf = (request: IncomingMessage) => string | undefined;

/** The client address resolver for a list of trusted proxy CIDRs (validated by the config). */
export function clientAddressResolver(trustedProxies: readonly string[]): ClientAddressOf {
  if (trustedProxies.length === 0) return (request) => request.socket.remoteAddress;
  const trusted = new BlockList();
  for (const entry of trustedProxies) {
    const parsed = parseCidr(entry);
    if (parsed === undefined) throw new TypeError(`trustedProxies: not an IP address or CIDR: ${entry}`);
    trusted.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  const isTrusted = (address: string): boolean => {
    const plain = unmapped(address);
    const family = isIP(plain);
    return family !== 0 && trusted.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  };
  return (request) => {
    const peer = request.socket.remoteAddress;
    if (peer === undefined || !isTrusted(peer)) return peer;
    const header = request.headers['x-forwarded-for'];
    if (header === undefined) return peer;
    const hops = (Array.isArray(header) ? header.join(',') : header).split(',');
    let nearest = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = (hops[i] as string).trim();
      if (isIP(hop) === 0) return nearest;
      if (!isTrusted(hop)) return hop;
      nearest = hop;
    }
    return nearest;
  };
}

/** `::ffff:192.0.2.1` → `192.0.2.1`. */
function unmapped(address: string): string {
  return /^::ffff:\d{1,3}(?:\.\d{1,3}){3}$/i.test(address) ? address.slice(7) : address;
}
