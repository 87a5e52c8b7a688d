/**
 * kube-apiserver's JWT (OIDC) token authenticator, for tests of the proxy's issuer: it is
 * configured only from what the proxy generates (`authenticationConfiguration` for
 * `--authentication-config`, or the classic `--oidc-*` flags) and verifies a token the way
 * the Kubernetes documentation describes, so a test compares the identity a real API server
 * would derive with the one the proxy impersonates.
 *
 * Design note — what it does as the real one:
 * - discovery: GET `<issuer.url>/.well-known/openid-configuration` over HTTPS verified with
 *   the configured CA (`certificateAuthority` PEM, or the file of `--oidc-ca-file`); the
 *   document's `issuer` must equal the configured URL; keys from its `jwks_uri`;
 * - verification: signature with a key of the JWKS, `iss` = the URL, `aud` contains one of
 *   the audiences (`--oidc-client-id`), `exp`/`nbf`/`iat` with no leeway beyond a few
 *   seconds; algorithms: every asymmetric one (structured), `--oidc-signing-algs` (default
 *   RS256) with flags;
 * - structured claim mappings: `username`/`groups` as `{claim, prefix}` (a prefix is
 *   required with a claim — the real API server refuses the configuration otherwise), `uid`
 *   as `{claim}`, `extra[]` as `{key, valueExpression}` whose value is dropped when empty.
 *   CEL is NOT evaluated: only the expression `claims.<name>` is understood, anything else
 *   throws, so a generated configuration that needs more fails the test;
 * - flags: username claim default `sub`; username prefix: absent → `<issuer>#` unless the
 *   claim is `email`, `-` → none; groups claim and prefix (default none); no uid, no extra;
 * - the authenticated group adder: `system:authenticated` is appended.
 */
import https from 'node:https';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import type { FakeUser } from './kube-identity.js';

const STRUCTURED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];

interface ClaimMapping {
  readonly claim?: string;
  readonly prefix?: string;
  readonly expression?: string;
}

interface JwtAuthenticatorSpec {
  readonly issuer: { readonly url: string; readonly audiences: readonly string[]; readonly certificateAuthority?: string };
  readonly claimMappings: {
    readonly username: ClaimMapping;
    readonly groups?: ClaimMapping;
    readonly uid?: ClaimMapping;
    readonly extra?: readonly { readonly key: string; readonly valueExpression: string }[];
  };
}

interface Mapping {
  readonly issuerUrl: string;
  readonly audiences: readonly string[];
  readonly caPem: string | undefined;
  readonly algorithms: readonly string[];
  readonly username: { readonly claim: string; readonly prefix: string };
  readonly groups: { readonly claim: string; readonly prefix: string } | undefined;
  readonly uidClaim: string | undefined;
  readonly extra: readonly { readonly key: string; readonly claim: string }[];
}

export interface FakeJwtAuthenticator {
  /** The identity for `token`; rejects when the token does not authenticate. */
  authenticate(token: string): Promise<FakeUser>;
}

/** From an `AuthenticationConfiguration` document (its first and only jwt authenticator). */
export function jwtAuthenticatorFromConfiguration(document: unknown): FakeJwtAuthenticator {
  const config = document as { apiVersion?: unknown; kind?: unknown; jwt?: unknown };
  if (config.kind !== 'AuthenticationConfiguration' || typeof config.apiVersion !== 'string' || !/^apiserver\.config\.k8s\.io\/v1(alpha1|beta1)?$/.test(config.apiVersion)) {
    throw new Error('not an AuthenticationConfiguration');
  }
  if (!Array.isArray(config.jwt) || config.jwt.length !== 1) throw new Error('expected exactly one jwt authenticator');
  const spec = config.jwt[0] as JwtAuthenticatorSpec;
  if (spec.issuer.audiences.length > 1) throw new Error('several audiences need audienceMatchPolicy: MatchAny');
  return createAuthenticator({
    issuerUrl: spec.issuer.url,
    audiences: spec.issuer.audiences,
    caPem: spec.issuer.certificateAuthority,
    algorithms: STRUCTURED_ALGORITHMS,
    username: prefixedClaim(spec.claimMappings.username, 'username'),
    groups: spec.claimMappings.groups === undefined ? undefined : prefixedClaim(spec.claimMappings.groups, 'groups'),
    uidClaim: spec.claimMappings.uid?.claim,
    extra: (spec.claimMappings.extra ?? []).map(({ key, valueExpression }) => ({ key, claim: celClaim(valueExpression) })),
  });
}

/** From classic kube-apiserver flags; `readFile` reads the file `--oidc-ca-file` names. */
export function jwtAuthenticatorFromFlags(flags: readonly string[], readFile: (path: string) => string): FakeJwtAuthenticator {
  const values = new Map<string, string>();
  for (const flag of flags) {
    const match = /^--(oidc-[a-z-]+)=(.*)$/s.exec(flag);
    if (match === null) throw new Error(`not an --oidc-* flag: ${flag}`);
    values.set(match[1]!, match[2]!);
  }
  const issuerUrl = values.get('oidc-issuer-url');
  const clientId = values.get('oidc-client-id');
  if (issuerUrl === undefined || clientId === undefined) throw new Error('--oidc-issuer-url and --oidc-client-id are required');
  const usernameClaim = values.get('oidc-username-claim') ?? 'sub';
  const usernamePrefixFlag = values.get('oidc-username-prefix');
  const usernamePrefix = usernamePrefixFlag === undefined ? (usernameClaim === 'email' ? '' : `${issuerUrl}#`) : usernamePrefixFlag === '-' ? '' : usernamePrefixFlag;
  const groupsClaim = values.get('oidc-groups-claim');
  const caFile = values.get('oidc-ca-file');
  return createAuthenticator({
    issuerUrl,
    audiences: [clientId],
    caPem: caFile === undefined ? undefined : readFile(caFile),
    algorithms: (values.get('oidc-signing-algs') ?? 'RS256').split(','),
    username: { claim: usernameClaim, prefix: usernamePrefix },
    groups: groupsClaim === undefined ? undefined : { claim: groupsClaim, prefix: values.get('oidc-groups-prefix') ?? '' },
    uidClaim: undefined,
    extra: [],
  });
}

function prefixedClaim(mapping: ClaimMapping, what: string): { claim: string; prefix: string } {
  if (mapping.expression !== undefined) throw new Error(`${what}.expression: CEL is not evaluated by this fake`);
  if (mapping.claim === undefined) throw new Error(`${what}.claim is required`);
  if (mapping.prefix === undefined) throw new Error(`${what}.prefix is required when ${what}.claim is set`);
  return { claim: mapping.claim, prefix: mapping.prefix };
}

function celClaim(expression: string): string {
  const match = /^claims\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(expression);
  if (match === null) throw new Error(`unsupported CEL expression ${JSON.stringify(expression)}`);
  return match[1]!;
}

function createAuthenticator(mapping: Mapping): FakeJwtAuthenticator {
  let keys: Promise<ReturnType<typeof createLocalJWKSet>> | undefined;

  async function loadKeys(): Promise<ReturnType<typeof createLocalJWKSet>> {
    const discovery = (await getJson(`${mapping.issuerUrl}/.well-known/openid-configuration`, mapping.caPem)) as { issuer?: unknown; jwks_uri?: unknown };
    if (discovery.issuer !== mapping.issuerUrl) throw new Error('the discovery document names another issuer');
    if (typeof discovery.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri');
    return createLocalJWKSet((await getJson(discovery.jwks_uri, mapping.caPem)) as { keys: [] });
  }

  return {
    async authenticate(token) {
      // Like the real one, the keys are fetched again for a kid they do not hold.
      keys ??= loadKeys();
      let payload: JWTPayload;
      try {
        payload = (await jwtVerify(token, await keys, verifyOptions(mapping))).payload;
      } catch {
        keys = loadKeys();
        payload = (await jwtVerify(token, await keys, verifyOptions(mapping))).payload;
      }
      const username = payload[mapping.username.claim];
      if (typeof username !== 'string' || username === '') throw new Error(`claim ${mapping.username.claim} is not a non-empty string`);
      const groups: string[] = [];
      if (mapping.groups !== undefined) {
        const value = payload[mapping.groups.claim];
        const list = value === undefined ? [] : typeof value === 'string' ? [value] : value;
        if (!Array.isArray(list) || !list.every((group) => typeof group === 'string')) throw new Error('the groups claim is not a string or a list of strings');
        for (const group of list) groups.push(`${mapping.groups.prefix}${group}`);
      }
      groups.push('system:authenticated');
      const uid = mapping.uidClaim === undefined ? undefined : payload[mapping.uidClaim];
      const extra: Record<string, string[]> = {};
      for (const { key, claim } of mapping.extra) {
        const value = payload[claim];
        const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
        if (list.length > 0 && list.some((item) => item !== '')) extra[key] = list;
      }
      return { username: `${mapping.username.prefix}${username}`, ...(typeof uid === 'string' && uid !== '' ? { uid } : {}), groups, extra };
    },
  };
}

function verifyOptions(mapping: Mapping) {
  return { issuer: mapping.issuerUrl, audience: [...mapping.audiences], algorithms: [...mapping.algorithms], clockTolerance: 5 };
}

function getJson(url: string, caPem: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { agent: false, ...(caPem === undefined ? {} : { ca: caPem }), timeout: 5000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        if (response.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${response.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: timeout`)));
    request.on('error', reject);
  });
}
