import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changePayload, parseChangePayload } from '../../../src/store/postgres-changes.js';

describe('change notification payloads', () => {
  const instanceId = '0123456789abcdef';

  it('round-trip a change whose key holds colons, spaces and newlines, because keys are split only at the first colon', () => {
    const change = { kind: 'membership', key: 'c:with spaces\nand:colons' } as const;
    assert.deepEqual(parseChangePayload(changePayload(instanceId, change)), { instanceId, change });
    assert.equal(changePayload(instanceId, { kind: 'token', key: 't-abc' }), '0123456789abcdef token:t-abc');
  });

  it('reject payloads that are not ours or name an unknown kind, so a stray NOTIFY cannot invent a change', () => {
    for (const payload of ['', 'token:t-abc', `${instanceId} secret:x`, `${instanceId}token:t`, `XYZ token:t`, `${instanceId.toUpperCase()} token:t`]) {
      assert.equal(parseChangePayload(payload), undefined, payload);
    }
  });
});
