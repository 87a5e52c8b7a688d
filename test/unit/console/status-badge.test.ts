import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statusBadge } from '../../../src/console/pages/clusters.js';

describe('the console cluster status badge', () => {
  it("says a cluster that refuses the proxy's credential is unhealthy, with the reason in its title (issue #15)", () => {
    const error = "the API server refused the proxy's credential (HTTP 401)";
    const badge = String(statusBadge({ reachable: true, healthy: false, credential: 'refused', checkedAt: '2026-01-01T00:00:00.000Z', error }));
    assert.match(badge, /class="badge bad"/);
    assert.match(badge, />credential refused</);
    assert.match(badge, /title="the API server refused the proxy&#39;s credential \(HTTP 401\)"/);
  });

  it('shows a healthy cluster as reachable and an unreachable one as such', () => {
    assert.match(String(statusBadge({ reachable: true, healthy: true, credential: 'accepted', checkedAt: '2026-01-01T00:00:00.000Z' })), /badge ok">reachable</);
    assert.match(String(statusBadge({ reachable: false, healthy: false, credential: 'unknown', checkedAt: '2026-01-01T00:00:00.000Z', error: 'x' })), /badge bad" title="x">unreachable</);
  });
});
