import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bindingName, DEFAULT_ROLE_NAMES, desiredState, groupsKey } from '../../../src/sync/desired.js';
import type { Token, User } from '../../../src/store/store.js';

const NOW = new Date('2025-06-01T12:00:00Z');
const OWNER = { installationId: 'i-prod', clusterId: 'edge' };

function user(id: string, enabled = true): User {
  return { id, username: `${id}-login`, displayName: id, globalRole: 'user', enabled, passwordHash: null, email: null, createdAt: NOW, updatedAt: NOW };
}

function token(name: string, userId: string, fields: Partial<Token> = {}): Token {
  return { name, tokenHash: '$3:1:c2FsdA:aGFzaA', userId, kind: 'kubeconfig', provider: 'corp', clusterId: 'edge', description: '', expiresAt: new Date('2025-07-01T00:00:00.900Z'), lastUsedAt: null, createdAt: NOW, ...fields };
}

describe('sync: desired cluster state', () => {
  it('syncs unexpired tokens of enabled users only, because revoked, expired and disabled must disappear', () => {
    const state = desiredState({
      namespace: 'cattle-system',
      owner: OWNER,
      tokens: [token('t-ok', 'u-a'), token('t-expired', 'u-a', { expiresAt: NOW }), token('t-disabled', 'u-b')],
      users: new Map([['u-a', user('u-a')], ['u-b', user('u-b', false)]]),
      groups: new Map([[groupsKey('u-a', 'corp'), ['corp:ops']]]),
      memberships: [],
      roleNames: DEFAULT_ROLE_NAMES,
      now: NOW,
    });
    assert.deepEqual(state.tokens.map((t) => t.metadata.name), ['t-ok']);
    assert.equal(state.tokens[0]?.expiresAt, '2025-07-01T00:00:00Z', 'whole seconds, truncated: never later than the real expiry');
    assert.equal(Buffer.from(state.secrets[0]?.data?.['hash'] ?? '', 'base64').toString(), '$3:1:c2FsdA:aGFzaA');
    assert.deepEqual(state.attributes.map((a) => [a.metadata.name, a.groups]), [['u-a', ['corp:ops']]]);
    assert.deepEqual(state.attributes[0]?.extraByProvider, { corp: { 'kubegate.io/login-name': ['u-a-login'], 'kubegate.io/provider': ['corp'] } });
    assert.equal(state.nextExpiry?.toISOString(), '2025-07-01T00:00:00.900Z');
  });

  it('turns each membership into a binding of the mapped ClusterRole, with a name that does not leak the subject', () => {
    const state = desiredState({
      namespace: 'cattle-system',
      owner: OWNER,
      tokens: [],
      users: new Map(),
      groups: new Map(),
      memberships: [
        { clusterId: 'edge', subjectKind: 'User', subjectName: 'u-a', role: 'owner', createdAt: NOW },
        { clusterId: 'edge', subjectKind: 'Group', subjectName: 'ldap:cn=ops,dc=example', role: 'viewer', createdAt: NOW },
      ],
      roleNames: { ...DEFAULT_ROLE_NAMES, viewer: 'kubegate-view' },
      now: NOW,
    });
    const byRole = Object.fromEntries(state.bindings.map((b) => [b.roleRef.name, b.subjects?.[0]]));
    assert.deepEqual(byRole['cluster-admin'], { kind: 'User', name: 'u-a', apiGroup: 'rbac.authorization.k8s.io' });
    assert.deepEqual(byRole['kubegate-view'], { kind: 'Group', name: 'ldap:cn=ops,dc=example', apiGroup: 'rbac.authorization.k8s.io' });
    const group = { subjectKind: 'Group', subjectName: 'ldap:cn=ops,dc=example' } as const;
    assert.match(bindingName(group, OWNER), /^kubegate-group-[0-9a-f]{20}$/);
  });

  it('labels every object with its owner and names bindings per owner, because staging and prod may bind the same group on one cluster', () => {
    const input = {
      namespace: 'cattle-system',
      tokens: [token('t-ok', 'u-a')],
      users: new Map([['u-a', user('u-a')]]),
      groups: new Map(),
      memberships: [{ clusterId: 'edge', subjectKind: 'Group' as const, subjectName: 'ldap:cn=ops', role: 'member' as const, createdAt: NOW }],
      roleNames: DEFAULT_ROLE_NAMES,
      now: NOW,
    };
    const prod = desiredState({ ...input, owner: OWNER });
    const staging = desiredState({ ...input, owner: { installationId: 'i-staging', clusterId: 'edge' } });
    const other = desiredState({ ...input, owner: { installationId: 'i-prod', clusterId: 'edge-2' } });
    for (const object of [...prod.tokens, ...prod.secrets, ...prod.attributes, ...prod.bindings]) {
      assert.deepEqual(object.metadata.labels, { 'app.kubernetes.io/managed-by': 'kubegate', 'kubegate.io/installation': 'i-prod', 'kubegate.io/cluster': 'edge' });
    }
    const names = new Set([prod, staging, other].map((state) => state.bindings[0]?.metadata.name));
    assert.equal(names.size, 3);
  });
});
