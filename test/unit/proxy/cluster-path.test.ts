import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isKubegateError } from '../../../src/errors.js';
import { isClusterPath, isLongRunning, parseClusterPath } from '../../../src/proxy/cluster-path.js';

function refusedWith(url: string): string {
  try {
    parseClusterPath(url);
  } catch (err) {
    assert.ok(isKubegateError(err), `expected a KubegateError for ${url}`);
    return err.code;
  }
  assert.fail(`${url} was accepted`);
}

describe('parseClusterPath', () => {
  it('splits the cluster ID, the forwarded path and the raw query', () => {
    assert.deepEqual(parseClusterPath('/k8s/clusters/prod-1/api/v1/namespaces/default/pods?labelSelector=a%3Db&limit=500'), {
      clusterId: 'prod-1',
      path: '/api/v1/namespaces/default/pods',
      query: '?labelSelector=a%3Db&limit=500',
      longRunning: false,
    });
  });

  it('keeps the query byte for byte, because selectors and field paths must reach the API server unchanged', () => {
    const query = '?fieldSelector=metadata.name%3D..%2Fx&x=%2e%2e/../&&empty=&%ZZ';
    assert.equal(parseClusterPath(`/k8s/clusters/a/api${query}`).query, query);
  });

  it('forwards "/" when the URL stops at the cluster ID, with or without a slash or query', () => {
    assert.equal(parseClusterPath('/k8s/clusters/a').path, '/');
    assert.equal(parseClusterPath('/k8s/clusters/a/').path, '/');
    assert.deepEqual(parseClusterPath('/k8s/clusters/a?timeout=32s'), { clusterId: 'a', path: '/', query: '?timeout=32s', longRunning: false });
  });

  it('allows a trailing slash and names that merely contain dots', () => {
    assert.equal(parseClusterPath('/k8s/clusters/a/apis/').path, '/apis/');
    assert.equal(parseClusterPath('/k8s/clusters/a/apis/apps.example.com/v1/foo..bar/...').path, '/apis/apps.example.com/v1/foo..bar/...');
  });

  it('refuses dot segments so that /k8s/clusters/a/../b can never reach cluster b', () => {
    for (const url of [
      '/k8s/clusters/a/../b/api',
      '/k8s/clusters/a/./api',
      '/k8s/clusters/a/api/..',
      '/k8s/clusters/a/%2e%2e/b/api',
      '/k8s/clusters/a/%2E%2E/b/api',
      '/k8s/clusters/a/.%2e/b/api',
      '/k8s/clusters/a/%2e/api',
      '/k8s/clusters/a/%252e%252e/b/api',
    ]) {
      assert.equal(refusedWith(url), 'BAD_REQUEST', url);
    }
  });

  it('refuses encoded separators, backslashes, NUL, fragments and empty segments', () => {
    for (const url of [
      '/k8s/clusters/a/api%2f..%2f..%2fb',
      '/k8s/clusters/a/api%2Fv1',
      '/k8s/clusters/a/api%252fv1',
      '/k8s/clusters/a/api%5cv1',
      '/k8s/clusters/a/api\\..\\b',
      '/k8s/clusters/a/api%00',
      '/k8s/clusters/a/api#frag',
      '/k8s/clusters/a//api',
      '/k8s/clusters/a/api//v1',
      '/k8s/clusters//b/api',
    ]) {
      assert.equal(refusedWith(url), 'BAD_REQUEST', url);
    }
  });

  it('refuses every spelling of a dot segment, decoding repeatedly, because a server behind a path prefix may decode twice (issue #16)', () => {
    for (const segment of [
      '%2e', '%2E', '%2e%2e', '%2E%2e', '.%2E', '%2e.',
      '%252e', '%252E%252e', '%25%32%65', '%25%32%45%25%32%65', '%25%32%65%25%32%65', '%2525%32%65',
      '%25252e%25252e', '%252%65', '%25%32e', '..;', '%2e%2e;x',
    ]) {
      assert.equal(refusedWith(`/k8s/clusters/a/${segment}/tenant-b/api`), 'BAD_REQUEST', segment);
      assert.equal(refusedWith(`/k8s/clusters/a/api/${segment}`), 'BAD_REQUEST', segment);
    }
  });

  it('refuses every spelling of an encoded slash or backslash, and overlong UTF-8 forms of them, which kube-apiserver never produces', () => {
    for (const segment of [
      '..%2f', '..%2F', '%2f', '%2F', '%5c', '%5C', '%255c', '%252F', '%25%32%66', '%25%35%63', '%25%35%43', '%2525%35%63',
      'x%00', 'x%2500', '%c0%ae%c0%ae', '%c0%af', '%e0%80%ae', '%25c0%25ae',
    ]) {
      assert.equal(refusedWith(`/k8s/clusters/a/api/${segment}/x`), 'BAD_REQUEST', segment);
    }
  });

  it('keeps legitimate encoded characters that kubectl sends in paths (%3A, %40, %20, UTF-8 letters)', () => {
    for (const path of [
      '/api/v1/namespaces/d/services/https:web:8443/proxy/',
      '/api/v1/namespaces/d/services/https%3Aweb%3A8443/proxy/metrics',
      '/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Acontroller%3Ajob-controller',
      '/api/v1/namespaces/d/pods/web/proxy/user%40example.com/a%20b',
      '/api/v1/namespaces/d/configmaps/caf%C3%A9',
      '/api/v1/namespaces/d/pods/web/proxy/100%25',
      '/apis/apps.example.com/v1/foo..bar/...',
    ]) {
      assert.equal(parseClusterPath(`/k8s/clusters/a${path}`).path, path);
    }
  });

  it('refuses IDs that are not DNS labels, without decoding them', () => {
    assert.equal(refusedWith('/k8s/clusters/../clusters/b/api'), 'BAD_REQUEST');
    assert.equal(refusedWith('/k8s/clusters/a%2f..%2fb/api'), 'BAD_REQUEST');
    assert.equal(refusedWith('/k8s/clusters/%61/api'), 'BAD_REQUEST');
    assert.equal(refusedWith('/k8s/clusters/Prod/api'), 'NOT_FOUND');
    assert.equal(refusedWith('/k8s/clusters/-a/api'), 'NOT_FOUND');
    assert.equal(refusedWith(`/k8s/clusters/${'a'.repeat(64)}/api`), 'NOT_FOUND');
    assert.equal(refusedWith('/k8s/clusters/a_b/api'), 'NOT_FOUND');
    assert.equal(refusedWith('/k8s/other/a/api'), 'NOT_FOUND');
  });

  it('never yields a path that a server decoding it any number of times could resolve outside the cluster, whatever the input', () => {
    /** `text` percent-encoded `layers` times, each character of each layer encoded or not, in either case. */
    const encoded = (text: string) =>
      fc.array(fc.array(fc.tuple(fc.boolean(), fc.boolean()), { minLength: 40, maxLength: 40 }), { minLength: 0, maxLength: 3 }).map((layers) =>
        layers.reduce(
          (current, choices) =>
            [...current]
              .map((char, i) => {
                const [encode, upper] = choices[i % choices.length]!;
                if (!encode) return char;
                const hex = char.charCodeAt(0).toString(16).padStart(2, '0');
                return `%${upper ? hex.toUpperCase() : hex}`;
              })
              .join(''),
          text,
        ),
      );
    const segment = fc.oneof(
      fc.constantFrom('api', 'v1', '', 'a.b', 'watch', 'system%3Anode', '100%'),
      fc.constantFrom('.', '..', '../b', 'x/..', '..\\b', '.;', 'a.b').chain(encoded),
    );
    /** What a server that decodes again and again until nothing changes would see. */
    const decodeFully = (text: string): string => {
      let current = text;
      for (let round = 0; round < 10; round++) {
        const next = decodeURIComponent(current.replace(/%(?![0-9a-f]{2})/gi, '%25'));
        if (next === current) break;
        current = next;
      }
      return current;
    };
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
        const url = `/k8s/clusters/a/${segments.join('/')}`;
        let parsed;
        try {
          parsed = parseClusterPath(url);
        } catch {
          return;
        }
        const decoded = decodeFully(parsed.path);
        const normalised = new URL(`http://host/k8s/clusters/a${decoded}`).pathname;
        assert.ok(normalised.startsWith('/k8s/clusters/a/') || normalised === '/k8s/clusters/a', url);
        assert.ok(!decoded.includes('\\'), url);
      }),
    );
  });
});

describe('isLongRunning', () => {
  it('recognises watches, log streams, exec, attach, port-forward and proxy, because they must not time out', () => {
    assert.equal(parseClusterPath('/k8s/clusters/a/api/v1/pods?watch=true').longRunning, true);
    assert.equal(parseClusterPath('/k8s/clusters/a/api/v1/pods?resourceVersion=1&watch=1').longRunning, true);
    assert.equal(parseClusterPath('/k8s/clusters/a/api/v1/namespaces/d/pods/p/log?follow=true').longRunning, true);
    assert.equal(isLongRunning('/api/v1/watch/pods', ''), true);
    assert.equal(isLongRunning('/api/v1/namespaces/d/pods/p/exec', '?command=sh'), true);
    assert.equal(isLongRunning('/api/v1/namespaces/d/pods/p/attach', ''), true);
    assert.equal(isLongRunning('/api/v1/namespaces/d/pods/p/portforward', ''), true);
    assert.equal(isLongRunning('/api/v1/namespaces/d/services/s/proxy/metrics', ''), true);
    assert.equal(isLongRunning('/api/v1/namespaces/d/pods/p/log', ''), true);
  });

  it('treats ordinary requests as bounded', () => {
    assert.equal(isLongRunning('/api/v1/pods', '?watch=false'), false);
    assert.equal(isLongRunning('/api/v1/pods', '?watchx=true'), false);
    assert.equal(isLongRunning('/api/v1/namespaces/watchers/pods', ''), false);
    assert.equal(isLongRunning('/apis/apps/v1/deployments', '?limit=500'), false);
  });
});

describe('isClusterPath', () => {
  it('matches only the /k8s/clusters/ prefix', () => {
    assert.equal(isClusterPath('/k8s/clusters/a/api'), true);
    assert.equal(isClusterPath('/k8s/clusters'), false);
    assert.equal(isClusterPath('/v1/clusters'), false);
  });
});
