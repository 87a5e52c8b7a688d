/**
 * The readable principal (`identity.kubernetesUsername`): one name on every path — the proxy's
 * Impersonate-User, the webhook's TokenReview username (from the synced token), the issued
 * JWT's username claim and the API server configuration that maps it, and the role binding
 * subjects the sync writes — while the uid stays the user ID. Each refusal has a row.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { authenticated, type TokenAuthenticator } from '../../../src/auth/authenticator.js';
import { kubernetesNameOf, kubernetesUsername, withKubernetesUsername } from '../../../src/auth/principal.js';
import { EXTRA_LOGIN_NAME, EXTRA_PROVIDER, EXTRA_TOKEN_NAME, makeUserInfo, type UserInfo } from '../../../src/auth/user.js';
import { loadProxyConfig } from '../../../src/config/proxy.js';
import { KubegateError } from '../../../src/errors.js';
import { authenticationConfiguration, oidcFlags } from '../../../src/issuer/authentication-config.js';
import { usernameClaimFor } from '../../../src/issuer/claims.js';
import { ANNOTATION_PROVIDER, ANNOTATION_USERNAME } from '../../../src/kube/rancher.js';
import type { ClusterAuthToken } from '../../../src/kube/rancher.js';
import { impersonationHeaders } from '../../../src/proxy/impersonate.js';
import type { Token, User } from '../../../src/store/store.js';
import { DEFAULT_ROLE_NAMES, desiredState } from '../../../src/sync/desired.js';
import { hashSecretWith, prepareHash } from '../../../src/tokens/hash.js';
import { createWebhookVerifier } from '../../../src/webhook/verify.js';
import { tokenReviewReply, parseTokenReview } from '../../../src/webhook/token-review.js';

const alice = makeUserInfo({
  name: 'u-aaaaaaaaaaaa',
  groups: ['ldap:cn=ops'],
  extra: { [EXTRA_LOGIN_NAME]: ['alice'], [EXTRA_PROVIDER]: ['ldap'], [EXTRA_TOKEN_NAME]: ['t-1'] },
});
const fixed = (user: UserInfo): TokenAuthenticator => ({ authenticateToken: async () => authenticated(user, { name: 't-1', expiresAt: null, clusterId: null }) });

describe('the Kubernetes user name', () => {
  it('is the ID with `id`, and provider:login with `provider:login`', () => {
    assert.equal(kubernetesUsername('id', { id: 'u-aaaaaaaaaaaa', login: 'alice', provider: 'ldap' }), 'u-aaaaaaaaaaaa');
    assert.equal(kubernetesUsername('provider:login', { id: 'u-aaaaaaaaaaaa', login: 'alice', provider: 'ldap' }), 'ldap:alice');
  });

  it('is the recorded address with `email`, and provider:login for a user without one', () => {
    const input = { id: 'u-aaaaaaaaaaaa', login: 'alice', provider: 'ldap' };
    assert.equal(kubernetesUsername('email', { ...input, email: 'alice@example.org' }), 'alice@example.org');
    assert.equal(kubernetesUsername('email', { ...input, email: null }), 'ldap:alice');
    assert.equal(kubernetesUsername('email', input), 'ldap:alice');
    // The address is the name in every format but `email`.
    assert.equal(kubernetesUsername('provider:login', { ...input, email: 'alice@example.org' }), 'ldap:alice');
    // The fallback is refused in a reserved space as with provider:login.
    assert.throws(() => kubernetesUsername('email', { id: 'u-x', login: 'sync', provider: 'kubegate', email: null }), (error: unknown) => error instanceof KubegateError && error.code === 'IDENTITY_NAME_RESERVED');
    // What is not an address kubegate accepts never becomes a name (the store refuses it first).
    assert.throws(() => kubernetesUsername('email', { ...input, email: 'system:masters@x' }), (error: unknown) => error instanceof KubegateError && error.code === 'IDENTITY_NAME_INVALID');
  });

  it('with `email`, reads the address through the lookup at authentication: the name follows a changed address', async () => {
    const users = new Map<string, { id: string; username: string; enabled: boolean; email: string | null }>([[alice.name, { id: alice.name, username: 'alice', enabled: true, email: 'alice@example.org' }]]);
    const named = withKubernetesUsername(fixed(alice), 'email', { getUser: async (id) => users.get(id) });
    const nameOf = async (): Promise<string | false> => named.authenticateToken('x').then((r) => r.outcome === 'authenticated' && kubernetesNameOf(r.user));
    assert.equal(await nameOf(), 'alice@example.org');
    users.set(alice.name, { ...users.get(alice.name)!, email: 'alice.smith@example.org' });
    assert.equal(await nameOf(), 'alice.smith@example.org');
    users.set(alice.name, { ...users.get(alice.name)!, email: null });
    assert.equal(await nameOf(), 'ldap:alice');
    // A store that cannot answer: undecided, never a name without the address.
    const down = withKubernetesUsername(fixed(alice), 'email', { getUser: async () => Promise.reject(new KubegateError('STORE_UNAVAILABLE')) });
    const result = await down.authenticateToken('x');
    assert.equal(result.outcome, 'error');
    assert.equal(result.outcome === 'error' && result.error.code, 'STORE_UNAVAILABLE');
  });

  it('refuses names in Kubernetes’ or kubegate’s own space (kubegate:sync is the sync’s user)', () => {
    for (const provider of ['system', 'kubegate', 'System']) {
      assert.throws(() => kubernetesUsername('provider:login', { id: 'u-x', login: 'sync', provider }), (error: unknown) => error instanceof KubegateError && error.code === 'IDENTITY_NAME_RESERVED');
    }
  });

  it('is added by the authenticator decorator, which leaves the ID as the name kubegate keys on', async () => {
    const result = await withKubernetesUsername(fixed(alice), 'provider:login').authenticateToken('x');
    assert.equal(result.outcome, 'authenticated');
    if (result.outcome !== 'authenticated') return;
    assert.equal(result.user.name, 'u-aaaaaaaaaaaa');
    assert.equal(result.user.uid, 'u-aaaaaaaaaaaa');
    assert.equal(kubernetesNameOf(result.user), 'ldap:alice');
    assert.equal(await withKubernetesUsername(fixed(alice), 'id').authenticateToken('x').then((r) => r.outcome === 'authenticated' && kubernetesNameOf(r.user)), 'u-aaaaaaaaaaaa');
  });

  it('refuses to authenticate an identity it cannot name, instead of sending its ID', async () => {
    const noLogin = makeUserInfo({ name: 'u-bbbbbbbbbbbb', extra: { [EXTRA_PROVIDER]: ['ldap'] } });
    assert.deepEqual(await withKubernetesUsername(fixed(noLogin), 'provider:login').authenticateToken('x'), { outcome: 'unauthenticated', code: 'IDENTITY_NAME_INVALID' });
    const reserved = makeUserInfo({ name: 'u-cccccccccccc', extra: { [EXTRA_LOGIN_NAME]: ['sync'], [EXTRA_PROVIDER]: ['kubegate'] } });
    assert.deepEqual(await withKubernetesUsername(fixed(reserved), 'provider:login').authenticateToken('x'), { outcome: 'unauthenticated', code: 'IDENTITY_NAME_RESERVED' });
  });
});

describe('the proxy path', () => {
  it('impersonates the readable name, with the ID as uid', () => {
    const named = makeUserInfo({ ...alice, kubernetesName: 'ldap:alice' });
    const headers = impersonationHeaders(named);
    assert.deepEqual(headers.slice(0, 4), ['Impersonate-User', 'ldap:alice', 'Impersonate-Uid', 'u-aaaaaaaaaaaa']);
    assert.deepEqual(impersonationHeaders(alice).slice(0, 2), ['Impersonate-User', 'u-aaaaaaaaaaaa']);
  });
});

describe('the webhook path', () => {
  async function review(annotations: Record<string, string>): Promise<unknown> {
    const token: ClusterAuthToken = { metadata: { name: 't-1', namespace: 'cattle-system', annotations: { [ANNOTATION_PROVIDER]: 'ldap', ...annotations } }, userName: 'u-aaaaaaaaaaaa', enabled: true };
    const source = {
      ready: true,
      clusterAuthToken: () => token,
      clusterUserAttribute: () => ({ metadata: { name: 'u-aaaaaaaaaaaa' }, groups: ['ldap:cn=ops'], enabled: true, extraByProvider: { ldap: { [EXTRA_LOGIN_NAME]: ['alice'], [EXTRA_PROVIDER]: ['ldap'] } } }),
      secretHash: () => prepareHash(hash),
    };
    const result = await createWebhookVerifier({ source }).authenticateToken('t-1:se:cret');
    return tokenReviewReply(parseTokenReview({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 't-1:se:cret' } }), result).status;
  }
  let hash = '';

  it('answers the name the sync stamped on the token, with the ID as uid', async () => {
    hash = await hashSecretWith(3, 'se:cret');
    const status = (await review({ [ANNOTATION_USERNAME]: 'ldap:alice' })) as { authenticated: boolean; user: { username: string; uid: string } };
    assert.equal(status.authenticated, true);
    assert.equal(status.user.username, 'ldap:alice');
    assert.equal(status.user.uid, 'u-aaaaaaaaaaaa');
    assert.equal(((await review({})) as { user: { username: string } }).user.username, 'u-aaaaaaaaaaaa', 'no annotation: the ID');
  });

  it('refuses a stamped name in a reserved space, whoever wrote it', async () => {
    for (const name of ['system:masters', 'kubegate:sync', 'System:admin', '']) {
      const status = (await review({ [ANNOTATION_USERNAME]: name })) as { authenticated: boolean };
      assert.equal(status.authenticated, false, name);
    }
  });
});

describe('issued JWTs', () => {
  it('map the username from kubegate_username (provider:login, email) or sub (id), the uid always from sub', () => {
    for (const [format, claim] of [['id', 'sub'], ['provider:login', 'kubegate_username'], ['email', 'kubegate_username']] as const) {
      const input = { issuerUrl: 'https://kubegate.example.com', clusterId: 'edge', caPem: null, usernameClaim: usernameClaimFor(format) };
      const config = authenticationConfiguration({ ...input, version: 'v1beta1' }) as { jwt: Array<{ claimMappings: { username: { claim: string }; uid: { claim: string } } }> };
      assert.equal(config.jwt[0]!.claimMappings.username.claim, claim);
      assert.equal(config.jwt[0]!.claimMappings.uid.claim, 'sub');
      assert.ok(oidcFlags(input).includes(`--oidc-username-claim=${claim}`));
    }
  });
});

describe('role bindings the sync writes', () => {
  const NOW = new Date('2025-06-01T12:00:00Z');
  const user: User = { id: 'u-aaaaaaaaaaaa', username: 'alice', displayName: 'Alice', globalRole: 'user', enabled: true, passwordHash: null, email: null, createdAt: NOW, updatedAt: NOW };
  const token: Token = { name: 't-1', tokenHash: '$3:1:c2FsdA:aGFzaA', userId: user.id, kind: 'kubeconfig', provider: 'ldap', clusterId: 'edge', description: '', expiresAt: null, lastUsedAt: null, createdAt: NOW };
  const base = {
    namespace: 'cattle-system',
    owner: { installationId: 'i-1', clusterId: 'edge' },
    tokens: [token],
    users: new Map([[user.id, user]]),
    groups: new Map<string, readonly string[]>(),
    memberships: [
      { clusterId: 'edge', subjectKind: 'User' as const, subjectName: user.id, role: 'viewer' as const, createdAt: NOW },
      { clusterId: 'edge', subjectKind: 'User' as const, subjectName: 'u-nevernamed0', role: 'member' as const, createdAt: NOW },
      { clusterId: 'edge', subjectKind: 'Group' as const, subjectName: 'ldap:cn=ops', role: 'member' as const, createdAt: NOW },
    ],
    roleNames: DEFAULT_ROLE_NAMES,
    now: NOW,
  };

  it('name the user as Kubernetes sees it: every provider’s name with provider:login, the ID with id; groups as they are', () => {
    const readable = desiredState({ ...base, kubernetesUsername: 'provider:login', memberNames: new Map([[user.id, ['ldap:alice', 'local:alice']], ['u-nevernamed0', []]]) });
    const subjects = readable.bindings.map((binding) => (binding.subjects ?? []).map((subject) => `${subject.kind}/${subject.name}`).join(','));
    assert.deepEqual(subjects.sort(), ['Group/ldap:cn=ops', 'User/ldap:alice,User/local:alice'], 'a user without a name yet gets no binding');
    assert.equal(readable.tokens[0]?.metadata.annotations?.[ANNOTATION_USERNAME], 'ldap:alice');
    assert.equal(readable.tokens[0]?.userName, user.id, 'userName stays the ID: it names the attribute and is the uid');
    const byId = desiredState(base);
    assert.deepEqual(byId.bindings.map((binding) => binding.subjects![0]!.name).sort(), ['ldap:cn=ops', 'u-aaaaaaaaaaaa', 'u-nevernamed0']);
    assert.equal(byId.tokens[0]?.metadata.annotations?.[ANNOTATION_USERNAME], undefined);
    // The binding names do not change with the format: switching re-writes subjects in place.
    assert.deepEqual(readable.bindings.map((b) => b.metadata.name).filter((name) => byId.bindings.some((b) => b.metadata.name === name)).length, 2);
  });

  it('with `email`, stamp the address on the token of a user that has one, and provider:login on that of one without', () => {
    const withAddress = desiredState({ ...base, users: new Map([[user.id, { ...user, email: 'alice@example.org' }]]), kubernetesUsername: 'email', memberNames: new Map([[user.id, ['alice@example.org']]]) });
    assert.equal(withAddress.tokens[0]?.metadata.annotations?.[ANNOTATION_USERNAME], 'alice@example.org');
    assert.ok(withAddress.bindings.some((binding) => JSON.stringify(binding.subjects) === JSON.stringify([{ kind: 'User', name: 'alice@example.org', apiGroup: 'rbac.authorization.k8s.io' }])));
    const without = desiredState({ ...base, kubernetesUsername: 'email', memberNames: new Map([[user.id, ['ldap:alice']]]) });
    assert.equal(without.tokens[0]?.metadata.annotations?.[ANNOTATION_USERNAME], 'ldap:alice');
  });

  it('leave out a token whose name would be reserved (the webhook then does not know it)', () => {
    const state = desiredState({ ...base, tokens: [{ ...token, provider: 'kubegate' }], kubernetesUsername: 'provider:login', memberNames: new Map() });
    assert.deepEqual(state.tokens, []);
  });
});

describe('configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubegate-principal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (text: string): unknown => {
    const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    return loadProxyConfig({ env: {}, file });
  };
  const refusal = (text: string): string => {
    try {
      load(text);
    } catch (error) {
      assert.ok(error instanceof KubegateError && error.code === 'CONFIG_INVALID', String(error));
      return error.message;
    }
    return assert.fail('accepted');
  };

  it('defaults to id and accepts provider:login and email', () => {
    assert.deepEqual((load('{}') as { identity: unknown }).identity, { kubernetesUsername: 'id', forwardedExtras: undefined });
    assert.deepEqual((load('identity: { kubernetesUsername: "provider:login" }') as { identity: unknown }).identity, { kubernetesUsername: 'provider:login', forwardedExtras: undefined });
    assert.deepEqual((load('identity: { kubernetesUsername: email }') as { identity: unknown }).identity, { kubernetesUsername: 'email', forwardedExtras: undefined });
  });

  it('names the field of a bad value, and of a provider whose users would get a reserved name', () => {
    assert.match(refusal('identity: { kubernetesUsername: mail }'), /identity\.kubernetesUsername.*must be one of id, provider:login, email/);
    assert.match(refusal('identity: { kubernetesUsername: "provider:login" }\nproviders: [{ name: local, type: local }, { name: system, type: local }]'), /providers\.1\.name|providers\[1\]\.name/);
    // `email` falls back to provider:login, so the same providers are refused.
    assert.match(refusal('identity: { kubernetesUsername: email }\nproviders: [{ name: local, type: local }, { name: kubegate, type: local }]'), /providers\.1\.name|providers\[1\]\.name/);
    load('providers: [{ name: system, type: local }]');
  });
});
