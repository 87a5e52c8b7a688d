import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { clientAddressResolver } from '../../../src/proxy/client-address.js';
import { parseCidr } from '../../../src/config/cidr.js';

function requestFrom(peer: string | undefined, forwardedFor?: string | string[]): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } } as unknown as IncomingMessage;
}

describe('clientAddressResolver', () => {
  const resolve = clientAddressResolver(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);

  it('answers the socket peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    assert.equal(clientAddressResolver([])(requestFrom('198.51.100.1', '203.0.113.9')), '198.51.100.1');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy, because any client can send one', () => {
    assert.equal(resolve(requestFrom('198.51.100.1', '203.0.113.9')), '198.51.100.1');
    assert.equal(resolve(requestFrom('192.0.2.8', '203.0.113.9')), '192.0.2.8');
  });

  it('reads the client from a trusted peer, skipping trusted hops from the right and never believing entries before the first untrusted one', () => {
    assert.equal(resolve(requestFrom('10.1.1.1', '203.0.113.9')), '203.0.113.9');
    assert.equal(resolve(requestFrom('10.1.1.1', 'forged, 203.0.113.9, 10.2.2.2')), '203.0.113.9');
    assert.equal(resolve(requestFrom('10.1.1.1', ['1.1.1.1, 203.0.113.9', '10.2.2.2'])), '203.0.113.9', 'several header lines are one list');
    assert.equal(resolve(requestFrom('::ffff:10.1.1.1', '2001:db8::5, 198.51.100.3')), '198.51.100.3', 'an IPv4-mapped peer is its IPv4 address');
    assert.equal(resolve(requestFrom('2001:db8::1', '2001:db9::5')), '2001:db9::5');
  });

  it('stops at the trusted hop that passed on an entry that is not an address, and answers the peer without the header', () => {
    assert.equal(resolve(requestFrom('10.1.1.1', '203.0.113.9, garbage, 10.2.2.2')), '10.2.2.2');
    assert.equal(resolve(requestFrom('10.1.1.1', '203.0.113.9:4711')), '10.1.1.1');
    assert.equal(resolve(requestFrom('10.1.1.1')), '10.1.1.1');
    assert.equal(resolve(requestFrom('10.1.1.1', '10.3.3.3, 10.2.2.2')), '10.3.3.3', 'all trusted: the farthest hop');
  });

  it('refuses an entry that is not an IP address or CIDR as a programming error (the config validates them)', () => {
    assert.throws(() => clientAddressResolver(['10.0.0.0/33']), TypeError);
  });
});

describe('parseCidr', () => {
  it('parses addresses and CIDRs of both families and refuses anything else', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('192.0.2.7'), { address: '192.0.2.7', prefix: 32, family: 'ipv4' });
    assert.deepEqual(parseCidr('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 'ipv6' });
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', 'example.com', '10.0.0/8', '', '10.0.0.0/8/8']) {
      assert.equal(parseCidr(bad), undefined, bad);
    }
  });
});
