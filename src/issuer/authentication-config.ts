/**
 * What a cluster's API server needs to trust the proxy's JWTs (`GET
 * /v1/clusters/:id/authentication-config`): a structured `AuthenticationConfiguration`
 * (`--authentication-config`, Kubernetes 1.29 v1alpha1, 1.30+ v1beta1, 1.34+ v1) and the
 * classic `--oidc-*` flags for older API servers.
 *
 * Both map the claims (claims.ts) to exactly the identity the proxy impersonates:
 * - username = `sub` unprefixed (with `identity.kubernetesUsername: provider:login` or
 *   `email`, the claim `kubegate_username` instead: `usernameClaim`). Structured: `prefix: ""` (required with `claim`). Classic:
 *   `--oidc-username-prefix=-`, because without it every claim but `email` is prefixed with
 *   `<issuer>#`.
 * - groups = `groups` unprefixed (the provider prefix `ldap:`… is already in the value).
 *   Structured: `prefix: ""`; classic: `--oidc-groups-prefix=` (empty: none).
 * - uid = `sub` and the extras `kubegate.io/login-name`, `kubegate.io/provider`,
 *   `kubegate.io/token-name`: structured configuration only (CEL `claims.<name>`); the
 *   classic flags cannot map uid or extras, so an old API server sees username and groups.
 * - Structured configuration accepts every asymmetric JWS algorithm; the classic flags
 *   default to RS256 only, hence `--oidc-signing-algs=ES256`.
 * The CA is the proxy's own when it has one (its serving certificate's issuer): inline in
 * the structured configuration, a file for `--oidc-ca-file`.
 */
import { CLAIM_GROUPS, CLAIM_USER_ID, EXTRA_CLAIMS, SIGNING_ALGORITHM } from './claims.js';

export const AUTHENTICATION_CONFIG_VERSIONS = ['v1beta1', 'v1alpha1', 'v1'] as const;
export type AuthenticationConfigVersion = (typeof AUTHENTICATION_CONFIG_VERSIONS)[number];

/** Where the flags expect the CA file on the control-plane node (a suggestion; any path works). */
export const DEFAULT_CA_FILE = '/etc/kubernetes/pki/kubegate-issuer-ca.crt';

export interface AuthenticationConfigInput {
  readonly issuerUrl: string;
  readonly clusterId: string;
  /** PEM CA that verifies the proxy's serving certificate; null: the system roots do. */
  readonly caPem: string | null;
  readonly version: AuthenticationConfigVersion;
  /** The claim holding the Kubernetes user name (TokenIssuer.usernameClaim). */
  readonly usernameClaim: string;
}

/** The `AuthenticationConfiguration` document (JSON is valid YAML for `--authentication-config`). */
export function authenticationConfiguration(input: AuthenticationConfigInput): Record<string, unknown> {
  return {
    apiVersion: `apiserver.config.k8s.io/${input.version}`,
    kind: 'AuthenticationConfiguration',
    jwt: [
      {
        issuer: {
          url: input.issuerUrl,
          audiences: [input.clusterId],
          ...(input.caPem === null ? {} : { certificateAuthority: input.caPem }),
        },
        claimMappings: {
          username: { claim: input.usernameClaim, prefix: '' },
          groups: { claim: CLAIM_GROUPS, prefix: '' },
          uid: { claim: CLAIM_USER_ID },
          extra: EXTRA_CLAIMS.map(({ key, claim }) => ({ key, valueExpression: `claims.${claim}` })),
        },
      },
    ],
  };
}

/** The equivalent classic kube-apiserver flags (username and groups only). */
export function oidcFlags(input: Omit<AuthenticationConfigInput, 'version'>, caFile: string = DEFAULT_CA_FILE): string[] {
  return [
    `--oidc-issuer-url=${input.issuerUrl}`,
    `--oidc-client-id=${input.clusterId}`,
    `--oidc-username-claim=${input.usernameClaim}`,
    '--oidc-username-prefix=-',
    `--oidc-groups-claim=${CLAIM_GROUPS}`,
    '--oidc-groups-prefix=',
    `--oidc-signing-algs=${SIGNING_ALGORITHM}`,
    ...(input.caPem === null ? [] : [`--oidc-ca-file=${caFile}`]),
  ];
}
