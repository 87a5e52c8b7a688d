import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isKubegateError } from '../../../src/errors.js';
import { UNRESTRICTED_ACCESS, checkAccess, createAccessPolicy, decideAccess, principalsOf } from '../../../src/providers/access.js';
import type { AccessPolicy } from '../../../src/providers/access.js';
import type { ProviderIdentity } from '../../../src/providers/provider.js';
import { createSecretBox } from '../../../src/store/secret-box.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';

const alice: ProviderIdentity = { providerUserId: 'uid=alice,dc=org', loginName: 'alice', displayName: 'Alice', groups: ['corp:cn=ops,dc=org'] };
const bob: ProviderIdentity = { providerUserId: 'uid=bob,dc=org', loginName: 'bob', displayName: 'Bob', groups: [] };
const lower = (text: string): string => text.toLowerCase();

function policy(mode: AccessPolicy['mode'], allowedPrincipals: string[]): AccessPolicy {
  return createAccessPolicy({ accessMode: mode, allowedPrincipals }, { providerName: 'corp', normaliseUserId: lower, normaliseGroup: lower });
}

function assertForbidden(decision: ReturnType<typeof checkAccess>): void {
  assert.equal(decision.allowed, false);
  if (!decision.allowed) {
    assert.ok(isKubegateError(decision.error, 'FORBIDDEN'));
    assert.equal(decision.error.message, 'the provider does not allow this user');
  }
}

describe('createAccessPolicy', () => {
  it('reads user:, group: and Rancher principals into one canonical, normalised form', () => {
    const parsed = policy('required', ['user:UID=Alice,dc=org', 'group:corp:CN=Ops,dc=org', 'openldap_user://UID=Bob,dc=org', 'activedirectory_group://CN=Dev,dc=org', 'user:uid=alice,dc=org']);
    assert.deepEqual(parsed.allowedPrincipals, ['user:uid=alice,dc=org', 'group:corp:cn=ops,dc=org', 'user:uid=bob,dc=org', 'group:corp:cn=dev,dc=org']);
  });

  it("refuses principals it cannot read and groups of another provider, naming the entry (they could never match)", () => {
    for (const principal of ['alice', 'user:', 'group:other:cn=ops', 'group:corp:', 'group:cn=ops', 'github_org://1']) {
      assert.throws(
        () => policy('restricted', ['user:ok', principal]),
        (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && error.field === 'settings.allowedPrincipals[1]',
        principal,
      );
    }
  });

  it('refuses required mode with no principal, which would lock everyone out', () => {
    assert.throws(() => policy('required', []), (error: unknown) => isKubegateError(error, 'CONFIG_INVALID') && error.field === 'settings.allowedPrincipals');
    assert.equal(policy('restricted', []).mode, 'restricted');
  });
});

describe('checkAccess', () => {
  it('lets anyone through in unrestricted mode', () => {
    assert.deepEqual(checkAccess(UNRESTRICTED_ACCESS, bob, { isMemberOfAnyCluster: false }), { allowed: true });
  });

  it('requires an allowed principal (the user or one of their groups) in required mode, cluster membership or not', () => {
    const byGroup = policy('required', ['group:corp:cn=ops,dc=org']);
    assert.equal(checkAccess(byGroup, alice, { isMemberOfAnyCluster: false }).allowed, true);
    assertForbidden(checkAccess(byGroup, bob, { isMemberOfAnyCluster: true }));
    const byUser = policy('required', ['user:uid=bob,dc=org']);
    assert.equal(checkAccess(byUser, bob, { isMemberOfAnyCluster: false }).allowed, true);
  });

  it('also lets cluster members through in restricted mode', () => {
    const restricted = policy('restricted', ['user:uid=alice,dc=org']);
    assert.equal(checkAccess(restricted, alice, { isMemberOfAnyCluster: false }).allowed, true);
    assert.equal(checkAccess(restricted, bob, { isMemberOfAnyCluster: true }).allowed, true);
    assertForbidden(checkAccess(restricted, bob, { isMemberOfAnyCluster: false }));
  });

  it('lists the principals an identity holds', () => {
    assert.deepEqual(principalsOf(alice), ['user:uid=alice,dc=org', 'group:corp:cn=ops,dc=org']);
  });
});

describe('decideAccess', () => {
  it('looks up cluster memberships of the user and their groups, and only when restricted mode needs them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegate-access-'));
    const store = await openSqliteStore({ path: join(dir, 'kubegate.db'), secretBox: createSecretBox(randomBytes(32)) });
    try {
      await store.createUser({ id: 'u-aaaaaaaaaaaa', username: 'alice' });
      await store.createUser({ id: 'u-bbbbbbbbbbbb', username: 'bob' });
      await store.createCluster({ id: 'prod', server: 'https://prod.example:6443', credentials: { kind: 'token', token: 'x' } });
      await store.putMembership({ clusterId: 'prod', subjectKind: 'Group', subjectName: 'corp:cn=ops,dc=org', role: 'viewer' });
      await store.putMembership({ clusterId: 'prod', subjectKind: 'User', subjectName: 'u-bbbbbbbbbbbb', role: 'viewer' });
      const restricted = policy('restricted', []);
      assert.equal((await decideAccess(store, restricted, alice, undefined)).allowed, true, 'through a group, even on a first login');
      assert.equal((await decideAccess(store, restricted, bob, 'u-bbbbbbbbbbbb')).allowed, true, 'as a user');
      assert.equal((await decideAccess(store, restricted, bob, undefined)).allowed, false, 'a first login has no user memberships yet');
    } finally {
      await store.close();
    }
    try {
      // A closed store fails every query: the decisions below prove none was made.
      assert.equal((await decideAccess(store, policy('required', ['user:uid=x']), alice, 'u-aaaaaaaaaaaa')).allowed, false);
      assert.equal((await decideAccess(store, UNRESTRICTED_ACCESS, alice, 'u-aaaaaaaaaaaa')).allowed, true);
      assert.equal((await decideAccess(store, policy('restricted', ['user:uid=alice,dc=org']), alice, 'u-aaaaaaaaaaaa')).allowed, true);
      await assert.rejects(decideAccess(store, policy('restricted', []), bob, 'u-bbbbbbbbbbbb'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
