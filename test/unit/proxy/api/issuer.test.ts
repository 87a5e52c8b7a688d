import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import request from 'supertest';
import { parse } from 'yaml';
import { createTokenIssuer } from '../../../../src/issuer/issuer.js';
import { PUBLISH_AHEAD_MS } from '../../../../src/issuer/signing-keys.js';
import { PUBLIC_URL, bearer, errorOf, startHarness } from './harness.js';
import type { Harness, TestUser } from './harness.js';

const DAY_MS = 86_400_000;

describe('the token issuer routes', () => {
  let h: Harness;
  let alice: TestUser;
  let bob: TestUser;
  before(async () => {
    h = await startHarness();
    alice = await h.addUser('alice');
    bob = await h.addUser('bob');
    for (const id of ['prod', 'edge']) {
      await h.store.createCluster({
        id,
        server: `https://${id}.example.com:6443`,
        credentials: { kind: 'token', token: 'proxy-sa' },
        ace: { enabled: true, mode: 'jwt', fqdn: `${id}.example.com`, caPem: null, nodes: [{ name: 'cp-1', address: '10.0.1.5' }] },
      });
    }
    await h.store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: alice.user.id, role: 'member' });
    await h.store.putMembership({ clusterId: 'edge', subjectKind: 'Group', subjectName: 'local:ops', role: 'viewer' });
    await h.store.putUserGroups({ userId: alice.user.id, provider: 'local', groups: ['local:ops', 'local:dev'], refreshedAt: new Date(h.clock.ms) });
    await h.directory.refresh();
  });
  after(() => h.close());

  async function jwks() {
    const response = await request(h.app).get('/openid/v1/jwks').expect(200);
    return response.body as { keys: Array<{ kid: string; kty: string; d?: string }> };
  }

  async function jwtFor(user: TestUser, cluster: string): Promise<{ token: string; expiresAt: string; issuedAt: string }> {
    const response = await request(h.app).post(`/v1/clusters/${cluster}/jwt`).set(bearer(user.token)).expect(201);
    return response.body;
  }

  it('serves an OpenID discovery document naming the public URL as issuer and the JWKS, without authentication', async () => {
    const response = await request(h.app).get('/.well-known/openid-configuration').expect(200);
    assert.equal(response.body.issuer, PUBLIC_URL);
    assert.equal(response.body.jwks_uri, `${PUBLIC_URL}/openid/v1/jwks`);
    assert.deepEqual(response.body.id_token_signing_alg_values_supported, ['ES256']);
    await request(h.app).post('/.well-known/openid-configuration').expect(405);
  });

  it('issues a JWT that verifies against the served JWKS, for the cluster as audience, with the identity the proxy impersonates', async () => {
    const issued = await jwtFor(alice, 'prod');
    const { payload, protectedHeader } = await jwtVerify(issued.token, createLocalJWKSet(await jwks()), { issuer: PUBLIC_URL, audience: 'prod', currentDate: new Date(h.clock.ms) });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.sub, alice.user.id);
    assert.deepEqual(payload['groups'], ['local:ops', 'local:dev']);
    assert.equal(payload['preferred_username'], 'alice');
    assert.equal(payload['kubegate_provider'], 'local');
    assert.equal(payload['kubegate_token'], alice.token.split(':')[0]);
    assert.equal(payload.exp! - payload.iat!, 300, 'the default lifetime is five minutes');
    assert.equal(typeof payload.jti, 'string');
    assert.equal(Date.parse(issued.expiresAt), payload.exp! * 1000);
    assert.equal(Date.parse(issued.issuedAt), payload.iat! * 1000);
    const again = await jwtFor(alice, 'prod');
    assert.notEqual((await jwtVerify(again.token, createLocalJWKSet(await jwks()), { currentDate: new Date(h.clock.ms) })).payload.jti, payload.jti);
  });

  it('publishes public keys only, because the private half signs identities every cluster trusts', async () => {
    for (const key of (await jwks()).keys) {
      assert.equal(key.kty, 'EC');
      assert.equal(key.d, undefined);
    }
  });

  it('makes a JWT for cluster A fail an audience check for cluster B, because a JWT opens one cluster only', async () => {
    await request(h.app).post('/v1/clusters/edge/jwt').set(bearer(alice.token)).expect(201);
    const issued = await jwtFor(alice, 'prod');
    await assert.rejects(
      jwtVerify(issued.token, createLocalJWKSet(await jwks()), { issuer: PUBLIC_URL, audience: 'edge', currentDate: new Date(h.clock.ms) }),
      (error: unknown) => error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud',
    );
  });

  it('gives a non-member the same 404 as an unknown cluster, and an admin who is not a member 403, as the proxy path does', async () => {
    assert.equal(errorOf((await request(h.app).post('/v1/clusters/prod/jwt').set(bearer(bob.token)).expect(404)).body).code, 'NOT_FOUND');
    assert.equal(errorOf((await request(h.app).post('/v1/clusters/nowhere/jwt').set(bearer(alice.token)).expect(404)).body).code, 'NOT_FOUND');
    assert.equal(errorOf((await request(h.app).post('/v1/clusters/prod/jwt').set(bearer(h.admin.token)).expect(403)).body).code, 'FORBIDDEN');
    await request(h.app).post('/v1/clusters/prod/jwt').expect(401);
  });

  it('refuses a cluster-scoped token, so that a kubeconfig token cannot mint identities for itself', async () => {
    const scoped = await h.addToken(alice.user.id, { kind: 'kubeconfig', clusterId: 'prod' });
    assert.equal(errorOf((await request(h.app).post('/v1/clusters/prod/jwt').set(bearer(scoped)).expect(403)).body).code, 'FORBIDDEN');
  });

  it('issues no new JWT at once after the token is revoked or the user disabled, although earlier answers are cached', async () => {
    const carol = await h.addUser('carol');
    const dave = await h.addUser('dave');
    for (const user of [carol, dave]) await h.store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: user.user.id, role: 'member' });
    await h.directory.refresh();
    await jwtFor(carol, 'prod');
    await jwtFor(dave, 'prod');
    await request(h.app).delete(`/v1/tokens/${carol.token.split(':')[0]}`).set(bearer(carol.token)).expect(204);
    await request(h.app).post('/v1/clusters/prod/jwt').set(bearer(carol.token)).expect(401);
    await request(h.app).patch(`/v1/users/${dave.user.id}`).set(bearer(h.admin.token)).send({ enabled: false }).expect(200);
    await request(h.app).post('/v1/clusters/prod/jwt').set(bearer(dave.token)).expect(401);
  });

  it('answers the authentication configuration and the equivalent --oidc-* flags for a cluster, to members and admins', async () => {
    const response = await request(h.app).get('/v1/clusters/prod/authentication-config').set(bearer(alice.token)).expect(200);
    assert.equal(response.body.aceMode, 'jwt');
    assert.equal(response.body.issuer, PUBLIC_URL);
    assert.equal(response.body.tokenTtlSeconds, 300);
    assert.deepEqual(response.body.authenticationConfiguration, {
      apiVersion: 'apiserver.config.k8s.io/v1beta1',
      kind: 'AuthenticationConfiguration',
      jwt: [
        {
          issuer: { url: PUBLIC_URL, audiences: ['prod'], certificateAuthority: h.caPem },
          claimMappings: {
            username: { claim: 'sub', prefix: '' },
            groups: { claim: 'groups', prefix: '' },
            uid: { claim: 'sub' },
            extra: [
              { key: 'kubegate.io/login-name', valueExpression: 'claims.preferred_username' },
              { key: 'kubegate.io/provider', valueExpression: 'claims.kubegate_provider' },
              { key: 'kubegate.io/token-name', valueExpression: 'claims.kubegate_token' },
            ],
          },
        },
      ],
    });
    assert.deepEqual(response.body.oidcFlags, [
      `--oidc-issuer-url=${PUBLIC_URL}`,
      '--oidc-client-id=prod',
      '--oidc-username-claim=sub',
      '--oidc-username-prefix=-',
      '--oidc-groups-claim=groups',
      '--oidc-groups-prefix=',
      '--oidc-signing-algs=ES256',
      '--oidc-ca-file=/etc/kubernetes/pki/kubegate-issuer-ca.crt',
    ]);
    assert.equal(response.body.caPem, h.caPem);
    const alpha = await request(h.app).get('/v1/clusters/prod/authentication-config?version=v1alpha1').set(bearer(h.admin.token)).expect(200);
    assert.equal(alpha.body.authenticationConfiguration.apiVersion, 'apiserver.config.k8s.io/v1alpha1');
    assert.equal(errorOf((await request(h.app).get('/v1/clusters/prod/authentication-config?version=v2').set(bearer(alice.token)).expect(400)).body).field, 'version');
    await request(h.app).get('/v1/clusters/prod/authentication-config').set(bearer(bob.token)).expect(404);
  });

  it('gives the authorized-endpoint contexts of a jwt-mode cluster an exec user that fetches JWTs, and the proxy context its token', async () => {
    const response = await request(h.app).get('/v1/clusters/prod/kubeconfig?context=ace').set(bearer(alice.token)).expect(200);
    const config = parse(response.text) as {
      users: Array<{ name: string; user: { token?: string; exec?: { command: string; args: string[] } } }>;
      contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
      'current-context': string;
    };
    assert.equal(config['current-context'], 'prod-fqdn');
    assert.deepEqual(
      config.contexts.map((context) => [context.name, context.context.user]),
      [
        ['prod', 'kubegate-alice'],
        ['prod-fqdn', 'kubegate-alice-jwt'],
        ['prod-cp-1', 'kubegate-alice-jwt'],
      ],
    );
    assert.match(config.users[0]!.user.token ?? '', /^t-/);
    assert.deepEqual(config.users[1]!.user.exec?.args, ['token', '--server', PUBLIC_URL, '--cluster', 'prod', '--provider', 'local', '--jwt']);
  });
});

describe('signing key rotation', () => {
  let h: Harness;
  let alice: TestUser;
  before(async () => {
    h = await startHarness();
    alice = await h.addUser('alice');
    await h.store.createCluster({ id: 'prod', server: 'https://prod.example.com:6443', credentials: { kind: 'token', token: 'proxy-sa' } });
    await h.store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: alice.user.id, role: 'member' });
    await h.directory.refresh();
  });
  after(() => h.close());

  async function issue(): Promise<string> {
    const fresh = await h.addToken(alice.user.id, { expiresAt: new Date(h.clock.ms + 30 * DAY_MS) });
    return (await request(h.app).post('/v1/clusters/prod/jwt').set(bearer(fresh)).expect(201)).body.token;
  }

  async function kids(): Promise<string[]> {
    return ((await request(h.app).get('/openid/v1/jwks').expect(200)).body.keys as Array<{ kid: string }>).map((key) => key.kid);
  }

  async function verifies(token: string): Promise<boolean> {
    const keys = createLocalJWKSet((await request(h.app).get('/openid/v1/jwks').expect(200)).body);
    try {
      await jwtVerify(token, keys, { issuer: PUBLIC_URL, audience: 'prod', currentDate: new Date(h.clock.ms) });
      return true;
    } catch {
      return false;
    }
  }

  it('publishes the next key before it signs, keeps the old one until its tokens have expired, then drops it', async () => {
    const old = await issue();
    const oldKid = decodeProtectedHeader(old).kid!;
    assert.deepEqual(await kids(), [oldKid]);

    h.clock.advance(7 * DAY_MS);
    const stillOld = await issue();
    assert.equal(decodeProtectedHeader(stillOld).kid, oldKid, 'the new key is not used before every replica can publish it');
    const published = await kids();
    assert.equal(published.length, 2, 'both keys are published in the overlap');
    const newKid = published[1]!;

    h.clock.advance(PUBLISH_AHEAD_MS - 1000);
    const lastOld = await issue();
    assert.equal(decodeProtectedHeader(lastOld).kid, oldKid);
    h.clock.advance(2000);
    const fresh = await issue();
    assert.equal(decodeProtectedHeader(fresh).kid, newKid, 'the new key signs once it has been published long enough');
    assert.ok(await verifies(lastOld), 'a token of the old key still verifies while it lives');
    assert.ok(await verifies(fresh));

    h.clock.advance(300_000 + 60_000);
    assert.deepEqual(await kids(), [newKid], 'the old key is gone once every token it signed has expired');
    assert.deepEqual((await h.store.listSigningKeys()).map((key) => key.kid), [newKid]);
    assert.ok(await verifies(fresh) === false, 'by then the new key’s first token has expired too');
  });

  it('lets two proxies on one store (replicas) rotate at the same moment into one shared key set', async () => {
    const other = createTokenIssuer({ store: h.store, issuerUrl: () => PUBLIC_URL, tokenTtlSeconds: 300, keyRotationSeconds: 7 * 86_400, now: h.clock.now });
    h.clock.advance(7 * DAY_MS);
    const [mine, theirs] = await Promise.all([request(h.app).get('/openid/v1/jwks').expect(200), other.jwks()]);
    assert.deepEqual((mine.body.keys as Array<{ kid: string }>).map((key) => key.kid), theirs.keys.map((key) => key.kid));
    assert.equal(theirs.keys.length, 2);
    assert.equal((await h.store.listSigningKeys()).length, 2);
  });
});
