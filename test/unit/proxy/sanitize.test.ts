import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKubegateError, type ErrorCode } from '../../../src/errors.js';
import { filterResponseHeaders, MAX_REQUEST_HEADER_LINES, sanitizeRequest } from '../../../src/proxy/sanitize.js';

function refusedWith(raw: string[], upgrade = false): ErrorCode {
  try {
    sanitizeRequest(raw, upgrade);
  } catch (err) {
    assert.ok(isKubegateError(err));
    return err.code;
  }
  assert.fail(`${JSON.stringify(raw)} was accepted`);
}

describe('sanitizeRequest', () => {
  it('keeps ordinary headers in order and drops credentials, cookies, Host and hop-by-hop headers', () => {
    const clean = sanitizeRequest(
      [
        'Host', 'proxy.example.com',
        'Accept', 'application/json',
        'Authorization', 'Bearer t-1:secret',
        'Cookie', 'session=abc',
        'Proxy-Authorization', 'Basic x',
        'Keep-Alive', 'timeout=5',
        'Proxy-Connection', 'keep-alive',
        'TE', 'trailers',
        'Trailer', 'X-Sum',
        'Expect', '100-continue',
        'X-Remote-User', 'admin',
        'x-remote-group', 'system:masters',
        'Content-Length', '2',
        'User-Agent', 'kubectl/v1.30',
        'accept', 'text/plain',
      ],
      false,
    );
    assert.deepEqual(clean.headers, ['Accept', 'application/json', 'Content-Length', '2', 'User-Agent', 'kubectl/v1.30', 'accept', 'text/plain']);
    assert.equal(clean.authorization, 'Bearer t-1:secret');
    assert.deepEqual(clean.impersonation, []);
  });

  it('hands over Impersonate-* lines in any spelling and never forwards them, so the caller decides on `kubectl --as`', () => {
    for (const name of ['Impersonate-User', 'impersonate-user', 'IMPERSONATE-GROUP', 'Impersonate-Extra-x', 'Impersonate-Uid', 'iMpErSoNaTe-extra-Scopes']) {
      const clean = sanitizeRequest(['Accept', '*/*', name, 'system:admin'], false);
      assert.deepEqual(clean.impersonation, [name, 'system:admin'], name);
      assert.deepEqual(clean.headers, ['Accept', '*/*'], name);
    }
  });

  it('refuses a Connection header naming a protected header, because a later hop would strip our identity (CVE-2021-31999)', () => {
    for (const value of ['Impersonate-User', 'authorization', 'cookie', 'close, Impersonate-Extra-foo', 'keep-alive,IMPERSONATE-GROUP', 'host', 'content-length', 'Transfer-Encoding', 'x-remote-user']) {
      assert.equal(refusedWith(['Connection', value]), 'CONNECTION_HEADER_REFUSED', value);
    }
    assert.equal(refusedWith(['Connection', 'keep-alive', 'Connection', 'Impersonate-User']), 'CONNECTION_HEADER_REFUSED');
  });

  it('drops every header a Connection header names, in any case, across repeated Connection headers', () => {
    const clean = sanitizeRequest(
      ['X-Custom', '1', 'Connection', 'keep-alive, x-custom', 'X-Other', '2', 'connection', ' X-Third ', 'x-third', '3', 'X-CUSTOM', '4'],
      false,
    );
    assert.deepEqual(clean.headers, ['X-Other', '2']);
  });

  it('refuses two Authorization headers, because which one counts would be ambiguous', () => {
    assert.equal(refusedWith(['Authorization', 'Bearer a', 'authorization', 'Bearer b']), 'BAD_REQUEST');
  });

  it('refuses more header lines than a server behind it keeps, because one that drops the rest would drop the identity the proxy adds last', () => {
    const lines = (count: number): string[] => Array.from({ length: count }, (_, i) => ['X-Junk', String(i)]).flat();
    assert.equal(sanitizeRequest(lines(MAX_REQUEST_HEADER_LINES), false).headers.length, 2 * MAX_REQUEST_HEADER_LINES);
    assert.equal(refusedWith(lines(MAX_REQUEST_HEADER_LINES + 1)), 'BAD_REQUEST');
  });

  it('reports a chunked body for the forwarding client to re-frame and refuses other transfer codings or chunked with Content-Length', () => {
    const chunked = sanitizeRequest(['Transfer-Encoding', 'chunked'], false);
    assert.deepEqual(chunked.headers, []);
    assert.equal(chunked.hasBody, true);
    assert.equal(sanitizeRequest(['Content-Length', '0'], false).hasBody, false);
    assert.equal(sanitizeRequest(['Content-Length', '3'], false).hasBody, true);
    assert.equal(refusedWith(['Transfer-Encoding', 'gzip, chunked']), 'BAD_REQUEST');
    assert.equal(refusedWith(['Transfer-Encoding', 'chunked', 'Content-Length', '3']), 'BAD_REQUEST');
  });

  it('keeps upgrade headers for WebSocket and SPDY upgrades and sets Connection: Upgrade itself', () => {
    const clean = sanitizeRequest(
      ['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13', 'Sec-WebSocket-Protocol', 'v5.channel.k8s.io'],
      true,
    );
    assert.deepEqual(clean.headers, ['Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13', 'Sec-WebSocket-Protocol', 'v5.channel.k8s.io', 'Connection', 'Upgrade', 'Upgrade', 'websocket']);
    const spdy = sanitizeRequest(['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1', 'X-Stream-Protocol-Version', 'v4.channel.k8s.io', 'X-Stream-Protocol-Version', 'v3.channel.k8s.io'], true);
    assert.deepEqual(spdy.headers, ['X-Stream-Protocol-Version', 'v4.channel.k8s.io', 'X-Stream-Protocol-Version', 'v3.channel.k8s.io', 'Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1']);
  });

  it('drops the Upgrade header from ordinary requests', () => {
    assert.deepEqual(sanitizeRequest(['Upgrade', 'websocket', 'Accept', '*/*'], false).headers, ['Accept', '*/*']);
  });

  it('refuses upgrades to other protocols and upgrades with a body', () => {
    assert.equal(refusedWith(['Connection', 'Upgrade', 'Upgrade', 'h2c'], true), 'BAD_REQUEST');
    assert.equal(refusedWith(['Connection', 'Upgrade'], true), 'BAD_REQUEST');
    assert.equal(refusedWith(['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Content-Length', '5'], true), 'BAD_REQUEST');
    assert.equal(refusedWith(['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Transfer-Encoding', 'chunked'], true), 'BAD_REQUEST');
  });

  it('removes a bearer token passed as a WebSocket subprotocol, because client credentials never go upstream', () => {
    const clean = sanitizeRequest(
      ['Upgrade', 'websocket', 'Sec-WebSocket-Protocol', 'base64url.bearer.authorization.k8s.io.dC0xOnNlY3JldA, v5.channel.k8s.io'],
      true,
    );
    assert.deepEqual(clean.headers.slice(0, 2), ['Sec-WebSocket-Protocol', 'v5.channel.k8s.io']);
    const only = sanitizeRequest(['Upgrade', 'websocket', 'Sec-WebSocket-Protocol', 'base64url.bearer.authorization.k8s.io.abc'], true);
    assert.ok(!only.headers.includes('Sec-WebSocket-Protocol'));
  });

  it('reports the Origin header and forwards it', () => {
    const clean = sanitizeRequest(['Origin', 'https://evil.example'], false);
    assert.equal(clean.origin, 'https://evil.example');
    assert.deepEqual(clean.headers, ['Origin', 'https://evil.example']);
  });
});

describe('filterResponseHeaders', () => {
  it('drops hop-by-hop headers, headers named in Connection and Set-Cookie', () => {
    assert.deepEqual(
      filterResponseHeaders([
        'Content-Type', 'application/json',
        'Connection', 'keep-alive, X-Hop',
        'X-Hop', '1',
        'Keep-Alive', 'timeout=5',
        'Transfer-Encoding', 'chunked',
        'Set-Cookie', 'a=b',
        'set-cookie', 'c=d',
        'Audit-Id', '42',
        'Content-Length', '10',
      ]),
      ['Content-Type', 'application/json', 'Audit-Id', '42', 'Content-Length', '10'],
    );
  });
});
