/**
 * Rancher-shaped objects for tests: ClusterAuthTokens, ClusterUserAttributes and their
 * Secrets exactly as Rancher's controllers write them (Go field names, `enabled` booleans,
 * RFC 3339 times, base64 `data.hash`), with hashes made in the documented $1/$2/$3 layouts.
 */
import { hashSecretWith } from '../../src/tokens/hash.js';
import type { HashVersion } from '../../src/tokens/hash.js';
import type { FakeObject } from './kube-resources.js';

export const CATTLE_NAMESPACE = 'cattle-system';

export interface RancherTokenOptions {
  readonly name: string;
  readonly userName: string;
  readonly enabled?: boolean;
  readonly expiresAt?: string;
  /** Put the hash in the deprecated `hash` field instead of a Secret. */
  readonly deprecatedHash?: string;
  readonly namespace?: string;
  readonly annotations?: Record<string, string>;
}

export function rancherClusterAuthToken(options: RancherTokenOptions): FakeObject {
  return {
    apiVersion: 'cluster.cattle.io/v3',
    kind: 'ClusterAuthToken',
    metadata: { name: options.name, namespace: options.namespace ?? CATTLE_NAMESPACE, ...(options.annotations ? { annotations: options.annotations } : {}) },
    userName: options.userName,
    enabled: options.enabled ?? true,
    ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
    ...(options.deprecatedHash === undefined ? {} : { hash: options.deprecatedHash }),
  };
}

export function rancherTokenSecret(name: string, hash: string, namespace = CATTLE_NAMESPACE): FakeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data: { hash: Buffer.from(hash).toString('base64') } };
}

export interface RancherUserAttributeOptions {
  readonly userName: string;
  readonly groups?: readonly string[];
  readonly enabled?: boolean;
  readonly namespace?: string;
}

export function rancherClusterUserAttribute(options: RancherUserAttributeOptions): FakeObject {
  return {
    apiVersion: 'cluster.cattle.io/v3',
    kind: 'ClusterUserAttribute',
    metadata: { name: options.userName, namespace: options.namespace ?? CATTLE_NAMESPACE },
    groups: [...(options.groups ?? [])],
    enabled: options.enabled ?? true,
    lastRefresh: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    needsRefresh: false,
  };
}

/** A hash of `secret` as Rancher would have stored it with hasher version `version`. */
export function rancherHash(version: HashVersion, secret: string): Promise<string> {
  return hashSecretWith(version, secret);
}
