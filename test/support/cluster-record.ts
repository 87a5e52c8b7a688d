/**
 * A stored direct cluster as the directory hands it out, for tests that need a Cluster
 * without a store: token credentials, no ACE, active.
 */
import type { Cluster } from '../../src/store/store.js';

export function clusterRecord(id: string, server: string, fields: Partial<Cluster> = {}): Cluster {
  return {
    id,
    displayName: id,
    server,
    mode: 'direct',
    caPem: null,
    credentials: { kind: 'token', token: `proxy-token-${id}` },
    insecureSkipTlsVerify: false,
    ace: { enabled: false, fqdn: null, caPem: null, nodes: [] },
    createdAt: new Date(0),
    updatedAt: new Date(0),
    deletingSince: null,
    syncHoldsObjects: false,
    ...fields,
  };
}
