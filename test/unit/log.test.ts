import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { REDACTED, censorSecrets, createLogger, isSecretFieldName } from '../../src/log.js';
import type { Logger } from '../../src/log.js';

const TOKEN_NAME = 't-abcdefghijkl';
const TOKEN_SECRET = 'q7x2k4m9p3r8s6t5v1w0y2z3a4b5c6d7e8f9g0h1j2k3l4m5n6o7p8';
const TOKEN = `${TOKEN_NAME}:${TOKEN_SECRET}`;
const RANCHER_TOKEN = 'token-ab1cd:zx8wv7ut6sr5qp4on3ml2kj1ih0gf9ed8cb7a6zz5yy4xx3ww2vv1uu';
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

function captureLogger(level: 'info' | 'warn' = 'info'): { logger: Logger; lines: () => string[] } {
  const chunks: string[] = [];
  const logger = createLogger({ level, name: 'test', destination: { write: (chunk: string) => void chunks.push(chunk) } });
  return { logger, lines: () => chunks.join('').split('\n').filter((line) => line !== '') };
}

function assertNoSecret(output: string, secrets: readonly string[]): void {
  for (const secret of secrets) assert.ok(!output.includes(secret), `${secret} leaked into: ${output}`);
}

describe('createLogger', () => {
  it('writes one JSON object per line with level, time, name and message', () => {
    const { logger, lines } = captureLogger('warn');
    logger.info('not at this level');
    logger.warn({ cluster: 'c-1' }, 'upstream slow');
    const [line, ...rest] = lines();
    assert.equal(rest.length, 0);
    const entry = JSON.parse(line ?? '') as Record<string, unknown>;
    assert.equal(entry.level, 40);
    assert.equal(entry.name, 'test');
    assert.equal(entry.msg, 'upstream slow');
    assert.equal(entry.cluster, 'c-1');
    assert.match(String(entry.time), /^\d{4}-\d\d-\d\dT/);
  });

  it('redacts secret-named fields at any depth and in arrays, whatever they hold', () => {
    const { logger, lines } = captureLogger();
    logger.info(
      {
        password: 'pw-top',
        user: { name: 'alice', password: 'pw-nested', deeper: { bindPassword: 'pw-deep', list: [{ clientSecret: 'cs-in-array' }] } },
        secretKey: 'sk-value',
        kubeconfig: { users: [{ user: { token: 'kc-token' } }] },
        provider: { client_secret: 'cs-snake', 'access-token': 'at-kebab', privateKey: 'pk-value', clientKeyData: 'ckd' },
        cookies: { cookie: 'session=abc' },
        tokenName: TOKEN_NAME,
      },
      'login',
    );
    const output = lines().join('\n');
    assertNoSecret(output, ['pw-top', 'pw-nested', 'pw-deep', 'cs-in-array', 'sk-value', 'kc-token', 'cs-snake', 'at-kebab', 'pk-value', 'ckd', 'session=abc']);
    const entry = JSON.parse(output) as { user: { name: string; password: string }; kubeconfig: string; tokenName: string };
    assert.equal(entry.user.name, 'alice', 'fields that are not secret stay readable');
    assert.equal(entry.user.password, REDACTED);
    assert.equal(entry.kubeconfig, REDACTED, 'a kubeconfig body is redacted whole');
    assert.equal(entry.tokenName, TOKEN_NAME, 'a token name identifies a token without granting anything');
  });

  it('redacts every value under a secret name that can carry a secret: strings (even "true" or a path), numbers, buffers, arrays', () => {
    const { logger, lines } = captureLogger();
    logger.info(
      {
        password: 'true',
        bindPassword: 123456789,
        token: Buffer.from('buffer-secret-abc'),
        clientSecret: ['array-secret-def'],
        apiKey: '/looks/like/a/path-but-is-a-key',
        kubeconfig: 'apiVersion: v1\nusers:\n- name: u\n  user: {token: kc-yaml-secret}\n',
        nested: { kubeconfig: '{"apiVersion":"v1","users":[{"user":{"token":"kc-json-secret"}}]}' },
        encoded: { KUBECONFIG: Buffer.from('apiVersion: v1\n').toString('base64') },
      },
      'secrets of every type',
    );
    const output = lines().join('\n');
    assertNoSecret(output, ['123456789', 'buffer-secret-abc', 'YnVmZmVy', 'array-secret-def', 'path-but-is-a-key', 'kc-yaml-secret', 'kc-json-secret', Buffer.from('apiVersion: v1\n').toString('base64')]);
    const entry = JSON.parse(output) as Record<string, unknown> & { nested: Record<string, unknown>; encoded: Record<string, unknown> };
    for (const value of [entry['password'], entry['bindPassword'], entry['token'], entry['clientSecret'], entry['apiKey'], entry['kubeconfig'], entry.nested['kubeconfig'], entry.encoded['KUBECONFIG']]) {
      assert.equal(value, REDACTED);
    }
  });

  it('keeps flags and a kubeconfig file path under secret names, because they carry no secret and operators need them', () => {
    const { logger, lines } = captureLogger();
    logger.info(
      {
        bootstrap: { resetPassword: true, password: null },
        tokenRequired: false,
        kubeconfig: '/etc/kubernetes/kubegate webhook/kubeconfig.yaml',
        webhook: { kubeconfig: '/var/lib/kubegate/kubeconfig' },
      },
      'flags and paths',
    );
    const entry = JSON.parse(lines().join('\n')) as { bootstrap: Record<string, unknown>; tokenRequired: unknown; kubeconfig: unknown; webhook: Record<string, unknown> };
    assert.deepEqual(entry.bootstrap, { resetPassword: true, password: null });
    assert.equal(entry.tokenRequired, false);
    assert.equal(entry.kubeconfig, '/etc/kubernetes/kubegate webhook/kubeconfig.yaml');
    assert.equal(entry.webhook['kubeconfig'], '/var/lib/kubegate/kubeconfig');
    // Only an absolute path on one line passes: a relative name or two lines are redacted.
    logger.info({ kubeconfig: 'kubeconfig.yaml' }, 'relative');
    logger.info({ kubeconfig: '/etc/kubeconfig\ntoken: multi-line-secret' }, 'two lines');
    const [, relative, twoLines] = lines().map((line) => JSON.parse(line) as { kubeconfig: unknown });
    assert.equal(relative?.kubeconfig, REDACTED);
    assert.equal(twoLines?.kubeconfig, REDACTED);
  });

  it('does not modify the objects it logs, because callers keep using them', () => {
    const { logger } = captureLogger();
    const headers = { authorization: `Bearer ${TOKEN}` };
    const object = { headers, nested: [{ password: 'kept' }] };
    logger.info(object, 'request');
    assert.equal(object.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(object.nested[0]?.password, 'kept');
  });

  it('redacts Authorization and Cookie headers of a real request and Set-Cookie of its response', async () => {
    const { logger, lines } = captureLogger();
    const server = createServer((request: IncomingMessage, response) => {
      response.setHeader('set-cookie', 'kubegate_session=session-secret-123');
      logger.info({ req: request, res: response }, 'served');
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve, reject) => {
        const request = httpRequest(
          {
            port,
            host: '127.0.0.1',
            path: `/k8s/clusters/c-1/api?watch=1&access_token=${TOKEN_SECRET}`,
            headers: { authorization: `Bearer ${TOKEN}`, cookie: 'kubegate_session=cookie-secret-456', 'x-request-id': 'r-1' },
          },
          (response) => response.resume().on('end', resolve),
        );
        request.on('error', reject).end();
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const output = lines().join('\n');
    assertNoSecret(output, [TOKEN_SECRET, 'cookie-secret-456', 'session-secret-123']);
    const entry = JSON.parse(output) as { req: { method: string; url: string; headers: Record<string, string> } };
    assert.equal(entry.req.method, 'GET');
    assert.equal(entry.req.headers.authorization, REDACTED);
    assert.equal(entry.req.headers['x-request-id'], 'r-1');
    assert.match(entry.req.url, /^\/k8s\/clusters\/c-1\/api\?watch=1&access_token=/);
  });

  it('censors tokens, bearer credentials, JWTs and URL passwords inside message strings', () => {
    const { logger, lines } = captureLogger();
    logger.info(`client sent Bearer ${JWT} then ${TOKEN} and ext/${RANCHER_TOKEN}`);
    logger.info({ detail: `Authorization: Basic ${Buffer.from('alice:pw-basic-999').toString('base64')}` }, 'header seen');
    logger.info({ dsn: 'postgres://kubegate:db-pass-777@db:5432/kubegate' }, 'store');
    logger.info({ url: '/callback?code=oauth-code-555&state=s1' }, 'oidc callback');
    const output = lines().join('\n');
    assertNoSecret(output, [TOKEN_SECRET, RANCHER_TOKEN.split(':')[1] ?? '', JWT, 'cGFzcy', 'db-pass-777', 'oauth-code-555']);
    assert.ok(output.includes(`${TOKEN_NAME}:${REDACTED}`), 'the token name is kept');
    assert.ok(output.includes('postgres://kubegate:[REDACTED]@db:5432/kubegate'));
  });

  it('censors secrets in error messages, stacks, causes and extra error properties', () => {
    const { logger, lines } = captureLogger();
    const cause = new Error(`upstream rejected Bearer ${TOKEN}`);
    const error = Object.assign(new Error(`login failed for ${TOKEN}`, { cause }), { password: 'pw-on-error', status: 401 });
    logger.error(error);
    logger.error({ err: error }, 'with context');
    logger.error({ err: new Error(`token ${JWT}`) });
    const output = lines().join('\n');
    assertNoSecret(output, [TOKEN_SECRET, 'pw-on-error', JWT]);
    const first = JSON.parse(lines()[0] ?? '') as { msg: string; err: { stack: string; status: number } };
    assert.equal(first.msg, `login failed for ${TOKEN_NAME}:${REDACTED}`);
    assert.match(first.err.stack, /^Error: login failed for t-abcdefghijkl:\[REDACTED\]/);
    assert.equal(first.err.status, 401);
  });

  it('redacts secrets in child-logger bindings, because a request logger may carry them for its lifetime', () => {
    const { logger, lines } = captureLogger();
    logger.child({ token: TOKEN, cluster: 'c-9', auth: { password: 'pw-binding' } }).info('bound');
    const output = lines().join('\n');
    assertNoSecret(output, [TOKEN_SECRET, 'pw-binding']);
    assert.match(output, /"cluster":"c-9"/);
  });
});

describe('isSecretFieldName', () => {
  it('matches secret names in any case and separator style, and leaves identifiers alone', () => {
    for (const name of ['Authorization', 'set-cookie', 'password', 'bindPassword', 'CLIENT_SECRET', 'id_token', 'secret-key', 'apiKey', 'client-key-data', 'kubeconfig']) {
      assert.ok(isSecretFieldName(name), name);
    }
    for (const name of ['tokenName', 'tokens', 'user', 'cluster', 'keyId', 'passwordChangedAt', 'kind']) {
      assert.ok(!isSecretFieldName(name), name);
    }
  });
});

describe('censorSecrets', () => {
  it('is idempotent and leaves ordinary log text alone', () => {
    const line = `{"msg":"GET /k8s/clusters/c-1/api/v1/pods 200","time":"2025-01-01T12:34:56.789Z","url":"https://kubegate.example.com:8443/x?limit=500","user":"u-abcdefghijkl"}`;
    assert.equal(censorSecrets(line), line);
    const once = censorSecrets(`Bearer ${TOKEN} ${TOKEN}`);
    assert.equal(censorSecrets(once), once);
    assert.equal(once, `Bearer ${REDACTED} ${TOKEN_NAME}:${REDACTED}`);
  });
});
