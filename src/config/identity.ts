/**
 * The values of `identity.kubernetesUsername`: how users are named to Kubernetes. The
 * naming itself is in auth/principal.ts; configuration only needs to know what is valid.
 */

export const KUBERNETES_USERNAME_FORMATS = ['id', 'provider:login', 'email'] as const;
export type KubernetesUsernameFormat = (typeof KUBERNETES_USERNAME_FORMATS)[number];

/** Provider names that `provider:login` (also the fallback of `email`) would turn into Kubernetes' or kubegate's own name space. */
export const RESERVED_PROVIDER_PREFIXES: readonly string[] = ['system', 'kubegate'];
