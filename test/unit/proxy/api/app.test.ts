import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { KubegateError } from '../../../../src/errors.js';
import type { ProviderRegistry } from '../../../../src/providers/provider.js';
import { createProviders } from '../../../../src/providers/index.js';
import { bearer, errorOf, startHarness } from './harness.js';
import type { Harness } from './harness.js';

describe('REST API: shared behaviour', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('serves the proxy CA at /v1/cacerts without authentication, because clients need it before they can trust anything', async () => {
    const response = await request(h.app).get('/v1/cacerts').expect(200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    assert.equal(response.text, h.caPem);
  });

  it('answers an unknown route with a 404 JSON error, not express HTML', async () => {
    for (const path of ['/nope', '/v1/nope', '/v2/clusters', '/']) {
      const response = await request(h.app).get(path).expect(404);
      assert.equal(errorOf(response.body).code, 'NOT_FOUND');
      assert.match(String(response.headers['content-type']), /application\/json/);
    }
  });

  it('answers a known path with the wrong method 405 and names the allowed ones', async () => {
    const response = await request(h.app).put('/v1/tokens').set(bearer(h.admin.token)).send({}).expect(405);
    assert.equal(errorOf(response.body).code, 'METHOD_NOT_ALLOWED');
    assert.equal(response.headers['allow'], 'GET, POST, HEAD');
  });

  it('sets Cache-Control: no-store and nosniff on every answer, because answers carry tokens and per-user data', async () => {
    for (const response of [
      await request(h.app).get('/v1/me').set(bearer(h.admin.token)),
      await request(h.app).get('/v1/missing'),
      await request(h.app).post('/v1/tokens').set(bearer(h.admin.token)).send({}),
    ]) {
      assert.equal(response.headers['cache-control'], 'no-store');
      assert.equal(response.headers['x-content-type-options'], 'nosniff');
    }
  });

  it('refuses malformed JSON with 400 BAD_REQUEST instead of a 500 or an HTML page', async () => {
    const response = await request(h.app).post('/v1/login').set('Content-Type', 'application/json').send('{"provider": "local",').expect(400);
    assert.equal(errorOf(response.body).code, 'BAD_REQUEST');
  });

  it('refuses a JSON body that is not an object (strict JSON), because every route takes an object', async () => {
    const scalar = await request(h.app).post('/v1/login').set('Content-Type', 'application/json').send('"text"').expect(400);
    assert.equal(errorOf(scalar.body).code, 'BAD_REQUEST');
    const array = await request(h.app).post('/v1/login').set('Content-Type', 'application/json').send('[1,2]').expect(400);
    assert.equal(errorOf(array.body).message, 'the request body must be a JSON object');
  });

  it('refuses a body that is not JSON with 415 before reading it', async () => {
    const form = await request(h.app).post('/v1/login').type('form').send('provider=local&username=a&password=b').expect(415);
    assert.equal(errorOf(form.body).code, 'UNSUPPORTED_MEDIA_TYPE');
    const plain = await request(h.app).patch(`/v1/users/${h.admin.user.id}`).set(bearer(h.admin.token)).set('Content-Type', 'text/plain').send('{}').expect(415);
    assert.equal(errorOf(plain.body).code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('accepts application/*+json and a POST without any body (validated as {})', async () => {
    await request(h.app).post('/v1/tokens').set(bearer(h.admin.token)).set('Content-Type', 'application/merge-patch+json').send('{}').expect(201);
    await request(h.app).post('/v1/tokens').set(bearer(h.admin.token)).expect(201);
  });

  it('refuses a body over 64 KiB with 413, so that a client cannot make the proxy buffer large bodies', async () => {
    const response = await request(h.app)
      .post('/v1/login')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ provider: 'local', username: 'a', password: 'x'.repeat(70 * 1024) }))
      .expect(413);
    assert.equal(errorOf(response.body).code, 'PAYLOAD_TOO_LARGE');
  });

  it('names an unknown field instead of ignoring it, because a typo must not silently change the meaning', async () => {
    const response = await request(h.app).post('/v1/tokens').set(bearer(h.admin.token)).send({ descripton: 'typo' }).expect(400);
    assert.deepEqual(errorOf(response.body), { code: 'BAD_REQUEST', message: 'descripton is not a known field', field: 'descripton' });
  });

  it('names the field of a wrongly typed or over-long value', async () => {
    const typed = await request(h.app).post('/v1/login').send({ provider: 'local', username: 7, password: 'x' }).expect(400);
    assert.deepEqual(errorOf(typed.body), { code: 'BAD_REQUEST', message: 'username must be a string', field: 'username' });
    const missing = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'a' }).expect(400);
    assert.deepEqual(errorOf(missing.body), { code: 'BAD_REQUEST', message: 'password is required', field: 'password' });
    const long = await request(h.app).post('/v1/tokens').set(bearer(h.admin.token)).send({ description: 'd'.repeat(257) }).expect(400);
    assert.equal(errorOf(long.body).field, 'description');
  });

  it('refuses a path parameter that is not valid percent-encoding with 400, not 500', async () => {
    const response = await request(h.app).get('/v1/clusters/%E0%A4%A').set(bearer(h.admin.token)).expect(400);
    assert.equal(errorOf(response.body).code, 'BAD_REQUEST');
  });

  it('requires a Bearer token on every /v1 route but cacerts, login and providers', async () => {
    for (const [method, path] of [
      ['get', '/v1/me'],
      ['get', '/v1/users'],
      ['post', '/v1/tokens'],
      ['get', '/v1/clusters'],
      ['get', '/v1/clusters/x/kubeconfig'],
    ] as const) {
      const response = await request(h.app)[method](path).expect(401);
      assert.equal(errorOf(response.body).code, 'UNAUTHENTICATED');
      assert.equal(response.headers['www-authenticate'], 'Bearer');
    }
    await request(h.app).get('/v1/providers').expect(200);
  });

  it('answers 401 for a malformed, unknown or wrong-secret token without saying which', async () => {
    const [name] = h.admin.token.split(':');
    for (const header of ['Bearer', 'Bearer a b', 'Basic abc', 'Bearer nocolon', 'Bearer t-unknown00000:secret', `Bearer ${name}:wrongsecret`]) {
      const response = await request(h.app).get('/v1/me').set('Authorization', header).expect(401);
      assert.equal(errorOf(response.body).code, 'UNAUTHENTICATED');
    }
  });

  it('answers 401 once a token has expired, because the cache never outlives a token', async () => {
    const token = await h.addToken(h.admin.user.id, { expiresAt: new Date(h.clock.ms + 60_000) });
    await request(h.app).get('/v1/me').set(bearer(token)).expect(200);
    h.clock.advance(61_000);
    await request(h.app).get('/v1/me').set(bearer(token)).expect(401);
  });

  it('lists the providers that take logins, with how each takes them', async () => {
    const response = await request(h.app).get('/v1/providers').expect(200);
    assert.deepEqual(response.body, { items: [{ name: 'local', type: 'local', login: 'password' }] });
  });
});

describe('REST API: errors that are not ours', () => {
  it('become a generic 500 INTERNAL whose detail is only in the log', async () => {
    const h = await startHarness({
      providers: async (store): Promise<ProviderRegistry> => {
        const real = await createProviders([], { store });
        const broken = {
          name: 'broken',
          type: 'test',
          authenticatePassword: () => Promise.reject(new Error('secret detail: db at 10.0.0.7')),
        };
        return { get: (name) => (name === 'broken' ? broken : real.get(name)), list: () => [...real.list(), broken], local: real.local };
      },
    });
    try {
      const response = await request(h.app).post('/v1/login').send({ provider: 'broken', username: 'a', password: 'b' }).expect(500);
      assert.deepEqual(response.body, { error: { code: 'INTERNAL', message: 'internal error' } });
      assert.ok(h.logs.some((line) => line.includes('secret detail: db at 10.0.0.7') && line.includes('"level":50')));
    } finally {
      await h.close();
    }
  });

  it('keep their catalog status when they are KubegateErrors from a provider (an outage is 503, not 401)', async () => {
    const h = await startHarness({
      providers: async (store): Promise<ProviderRegistry> => {
        const real = await createProviders([], { store });
        const down = {
          name: 'corp',
          type: 'test',
          authenticatePassword: async () => ({ outcome: 'error' as const, error: new KubegateError('PROVIDER_UNAVAILABLE') }),
        };
        return { get: (name) => (name === 'corp' ? down : real.get(name)), list: () => [down], local: real.local };
      },
    });
    try {
      const response = await request(h.app).post('/v1/login').send({ provider: 'corp', username: 'a', password: 'b' }).expect(503);
      assert.equal(errorOf(response.body).code, 'PROVIDER_UNAVAILABLE');
    } finally {
      await h.close();
    }
  });
});

describe('REST API without a proxy CA', () => {
  it('answers /v1/cacerts with 404, because an operator-supplied certificate is verified with the system roots', async () => {
    const h = await startHarness({ withoutCa: true });
    try {
      const response = await request(h.app).get('/v1/cacerts').expect(404);
      assert.equal(errorOf(response.body).code, 'NOT_FOUND');
    } finally {
      await h.close();
    }
  });
});
