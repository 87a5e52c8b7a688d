/**
 * What an admin may send to register or change a cluster, checked before anything is
 * stored: a bad CA or a key that does not match its certificate is a 400 naming the field
 * now, not a failed connection later.
 *
 * Decisions:
 * - `server` must be `https://`: the proxy sends its impersonation-capable credentials to
 *   it, and those must never cross the network in clear text. (The upstream pool can allow
 *   plain HTTP for tests; the API never registers such a cluster.)
 * - PEM material arrives base64-encoded, as in kubeconfigs (`caData` like
 *   `certificate-authority-data`, `clientCert`/`clientKey` like `client-*-data`), is
 *   decoded strictly and must parse: `caData` one or more certificates, `clientKey` an
 *   unencrypted private key that matches `clientCert`.
 * - Exactly one kind of credential: `token`, or `clientCert` with `clientKey`.
 * - `insecureSkipTLSVerify` together with `caData` is refused, as kubectl refuses it: one of
 *   the two is a mistake.
 * - `mode: "agent"` registers a cluster whose agent dials in: it takes no server, CA or
 *   credentials at all (createAgentClusterBody), so none can be stored by mistake.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import * as z from 'zod';
import type { AceSettings, ClusterCredentials } from '../../store/store.js';
import { decodeBase64Strict } from '../../tokens/base64.js';
import { CLUSTER_ID_PATTERN } from '../cluster-path.js';
import { text } from './validation.js';

const MAX_PEM_BASE64_LENGTH = 48 * 1024;
const MAX_CERTIFICATES = 32;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+-----END \1-----/g;

export const clusterId = z.string().regex(CLUSTER_ID_PATTERN, {
  error: 'must be a DNS label: 1–63 lower-case letters, digits or "-", starting and ending with a letter or digit',
});

const server = z
  .string()
  .max(2048)
  .refine(isHttpsServerUrl, { error: 'must be an https:// URL without user, query or fragment' })
  .transform((url) => url.replace(/\/+$/, ''));

/** Base64 of PEM text, decoded. */
function base64Pem(what: string) {
  return z
    .string()
    .min(1)
    .max(MAX_PEM_BASE64_LENGTH)
    .transform((value, context) => {
      const bytes = decodeBase64Strict(value.replace(/\s+/g, ''));
      if (bytes === undefined) {
        context.addIssue({ code: 'custom', message: `must be base64-encoded ${what}` });
        return z.NEVER;
      }
      return bytes.toString('utf8');
    });
}

/** One or more PEM certificates, each of which parses. */
const certificates = base64Pem('PEM certificates').refine(isCertificateBundle, {
  error: 'must be base64-encoded PEM certificates that parse',
});

const privateKey = base64Pem('a PEM private key').refine((pem) => loadPrivateKey(pem) !== undefined, {
  error: 'must be a base64-encoded, unencrypted PEM private key',
});

const bearerToken = z
  .string()
  .min(1)
  .max(8192)
  .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' });

const host = z.string().max(253).refine((value) => isIP(value) !== 0 || DNS_NAME.test(value), { error: 'must be a DNS name or an IP address' });
const hostWithPort = z
  .string()
  .max(260)
  .refine(isHostWithOptionalPort, { error: 'must be a DNS name, optionally with :port' });

const aceInput = z.strictObject({
  enabled: z.boolean(),
  /** `webhook` (default): synced tokens + kubegate webhook; `jwt`: the API server trusts the proxy's issuer. */
  mode: z.enum(['webhook', 'jwt']).optional(),
  fqdn: hostWithPort.optional(),
  caData: certificates.optional(),
  nodes: z
    .array(z.strictObject({ name: clusterId, address: host }))
    .max(32)
    .optional(),
});

const credentialFields = {
  token: bearerToken.optional(),
  clientCert: certificates.optional(),
  clientKey: privateKey.optional(),
};

export const createClusterBody = z
  .strictObject({
    id: clusterId,
    mode: z.literal('direct').optional(),
    displayName: text(256).optional(),
    server,
    caData: certificates.optional(),
    ...credentialFields,
    insecureSkipTLSVerify: z.boolean().optional(),
    ace: aceInput.optional(),
  })
  .superRefine((body, context) => {
    checkCredentials(body, context, true);
    if (contradictsTlsChoice(body.caData ?? null, body.insecureSkipTLSVerify ?? false)) {
      context.addIssue({ code: 'custom', path: ['insecureSkipTLSVerify'], message: TLS_CHOICE_PROBLEM });
    }
  });

/** An agent-mode cluster: its agent reports the API server; the proxy stores no credentials. */
export const createAgentClusterBody = z.strictObject({
  id: clusterId,
  mode: z.literal('agent'),
  displayName: text(256).optional(),
  ace: aceInput.optional(),
});

export const patchClusterBody = z
  .strictObject({
    displayName: text(256).optional(),
    server: server.optional(),
    caData: z.union([certificates, z.null()]).optional(),
    ...credentialFields,
    insecureSkipTLSVerify: z.boolean().optional(),
    ace: aceInput.optional(),
  })
  .superRefine((body, context) => checkCredentials(body, context, false));

export type CreateClusterBody = z.output<typeof createClusterBody>;
export type PatchClusterBody = z.output<typeof patchClusterBody>;

type CredentialInput = { token?: string | undefined; clientCert?: string | undefined; clientKey?: string | undefined };

function checkCredentials(body: CredentialInput, context: z.core.$RefinementCtx, required: boolean): void {
  const hasToken = body.token !== undefined;
  const hasCert = body.clientCert !== undefined || body.clientKey !== undefined;
  if (hasToken && hasCert) {
    context.addIssue({ code: 'custom', path: ['token'], message: 'must not be given together with clientCert/clientKey: use exactly one kind of credential' });
    return;
  }
  if (!hasToken && !hasCert) {
    if (required) context.addIssue({ code: 'custom', path: ['token'], message: 'is required, unless clientCert and clientKey are given' });
    return;
  }
  if (!hasCert) return;
  if (body.clientCert === undefined) {
    context.addIssue({ code: 'custom', path: ['clientCert'], message: 'is required with clientKey' });
    return;
  }
  if (body.clientKey === undefined) {
    context.addIssue({ code: 'custom', path: ['clientKey'], message: 'is required with clientCert' });
    return;
  }
  if (!certificateMatchesKey(body.clientCert, body.clientKey)) {
    context.addIssue({ code: 'custom', path: ['clientKey'], message: 'does not belong to clientCert' });
  }
}

/** kubectl's rule: a CA and "skip verification" together are a contradiction. */
export function contradictsTlsChoice(caPem: string | null, insecureSkipTlsVerify: boolean): boolean {
  return insecureSkipTlsVerify && caPem !== null;
}

export const TLS_CHOICE_PROBLEM = 'must not be true when caData is given';

/** The credentials a valid body names, or undefined when it names none (a patch). */
export function credentialsOf(body: CredentialInput): ClusterCredentials | undefined {
  if (body.token !== undefined) return { kind: 'token', token: body.token };
  if (body.clientCert !== undefined && body.clientKey !== undefined) {
    return { kind: 'clientCertificate', certPem: body.clientCert, keyPem: body.clientKey };
  }
  return undefined;
}

export function aceOf(ace: z.output<typeof aceInput>): AceSettings {
  return {
    enabled: ace.enabled,
    ...(ace.mode === undefined ? {} : { mode: ace.mode }),
    fqdn: ace.fqdn ?? null,
    caPem: ace.caData ?? null,
    nodes: (ace.nodes ?? []).map((node) => ({ name: node.name, address: node.address })),
  };
}

function isHttpsServerUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return url.protocol === 'https:' && url.hostname !== '' && url.username === '' && url.password === '' && url.search === '' && url.hash === '' && !value.includes('?') && !value.includes('#');
}

function isHostWithOptionalPort(value: string): boolean {
  const match = /^([^:]+)(?::([0-9]{1,5}))?$/.exec(value);
  if (match === null || !DNS_NAME.test(match[1]!)) return false;
  const port = match[2] === undefined ? 443 : Number(match[2]);
  return port >= 1 && port <= 65_535;
}

function pemBlocks(pem: string): Array<{ label: string; text: string }> {
  return [...pem.matchAll(PEM_BLOCK)].map((match) => ({ label: match[1]!, text: match[0] }));
}

function isCertificateBundle(pem: string): boolean {
  const blocks = pemBlocks(pem);
  if (blocks.length === 0 || blocks.length > MAX_CERTIFICATES) return false;
  // Nothing but certificates and whitespace.
  if (pem.replace(PEM_BLOCK, '').trim() !== '') return false;
  return blocks.every((block) => {
    if (block.label !== 'CERTIFICATE') return false;
    try {
      new X509Certificate(block.text);
      return true;
    } catch {
      return false;
    }
  });
}

function loadPrivateKey(pem: string): KeyObject | undefined {
  const blocks = pemBlocks(pem);
  if (blocks.length !== 1 || !/^(?:RSA |EC )?PRIVATE KEY$/.test(blocks[0]!.label)) return undefined;
  try {
    return createPrivateKey({ key: blocks[0]!.text, format: 'pem' });
  } catch {
    return undefined;
  }
}

function certificateMatchesKey(certPem: string, keyPem: string): boolean {
  const key = loadPrivateKey(keyPem);
  const first = pemBlocks(certPem)[0];
  if (key === undefined || first === undefined) return false;
  try {
    return new X509Certificate(first.text).checkPrivateKey(key);
  } catch {
    return false;
  }
}
