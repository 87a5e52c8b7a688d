import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, parseListenAddress } from '../../../src/config/listen.js';

describe('parseListenAddress', () => {
  it('accepts IPv4, host names and bracketed IPv6 with a port from 0 to 65535', () => {
    assert.deepEqual(parseListenAddress('0.0.0.0:8443'), { host: '0.0.0.0', port: 8443 });
    assert.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseListenAddress('[::]:65535'), { host: '::', port: 65535 });
    assert.deepEqual(parseListenAddress('[fe80::1]:1'), { host: 'fe80::1', port: 1 });
  });

  it('rejects what a server cannot bind, so that config catches it before start-up', () => {
    for (const text of ['8443', ':8443', 'localhost', '::1:8443', '[::1]', '[localhost]:1', '1.2.3.4:65536', 'a b:1', 'host:-1', 'host:1x']) {
      assert.equal(parseListenAddress(text), undefined, text);
    }
  });

  it('formats back what it parses', () => {
    for (const text of ['0.0.0.0:8443', '[::1]:6440', 'kubegate.example.com:443']) {
      const parsed = parseListenAddress(text);
      assert.ok(parsed);
      assert.equal(formatHostPort(parsed.host, parsed.port), text);
    }
  });
});
