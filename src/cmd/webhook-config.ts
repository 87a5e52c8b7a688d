/**
 * `kubegate webhook-config`: prints the file kube-apiserver's
 * `--authentication-token-webhook-config-file` points at — a kubeconfig whose one cluster's
 * `server` is the full URL of the webhook's `/v1/authenticate` (the API server POSTs to it
 * as is), with a CA when the webhook serves HTTPS, and an empty user (the webhook on
 * loopback needs no client credentials).
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { KubegateError } from '../errors.js';

export const DEFAULT_WEBHOOK_URL = 'http://127.0.0.1:6440/v1/authenticate';

export interface WebhookConfigFileOptions {
  /** Full URL of the webhook's authenticate endpoint. */
  readonly url: string;
  /** PEM CA that signed an https webhook's certificate. */
  readonly caPem?: string | undefined;
}

/** The webhook config file as YAML. Throws CONFIG_INVALID for a URL kube-apiserver cannot use. */
export function renderWebhookConfigFile(options: WebhookConfigFileOptions): string {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (cause) {
    throw new KubegateError('CONFIG_INVALID', 'url: not a URL', { field: 'url', cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new KubegateError('CONFIG_INVALID', 'url: must be http:// or https://', { field: 'url' });
  if (url.username !== '' || url.password !== '' || url.hash !== '') {
    throw new KubegateError('CONFIG_INVALID', 'url: must not carry credentials or a fragment', { field: 'url' });
  }
  if (options.caPem !== undefined && url.protocol !== 'https:') {
    throw new KubegateError('CONFIG_INVALID', 'ca-file: a CA only makes sense with an https:// URL', { field: 'caFile' });
  }
  const cluster: Record<string, unknown> = { server: url.toString() };
  if (options.caPem !== undefined) cluster['certificate-authority-data'] = Buffer.from(options.caPem).toString('base64');
  const document = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kubegate-webhook', cluster }],
    users: [{ name: 'kube-apiserver', user: {} }],
    contexts: [{ name: 'kubegate-webhook', context: { cluster: 'kubegate-webhook', user: 'kube-apiserver' } }],
    'current-context': 'kubegate-webhook',
  };
  return (
    '# kube-apiserver flags:\n' +
    '#   --authentication-token-webhook-config-file=<this file>\n' +
    '#   --authentication-token-webhook-version=v1\n' +
    '#   --authentication-token-webhook-cache-ttl=10s   (revocation reaches the cluster within this TTL)\n' +
    stringify(document, { lineWidth: 0 })
  );
}

export interface WebhookConfigCommandFlags {
  readonly url?: string | undefined;
  readonly caFile?: string | undefined;
}

/** The command: writes the file to `write` (standard output by default). */
export function runWebhookConfig(flags: WebhookConfigCommandFlags, write: (text: string) => void = (text) => process.stdout.write(text)): void {
  let caPem: string | undefined;
  if (flags.caFile !== undefined) {
    try {
      caPem = readFileSync(flags.caFile, 'utf8');
    } catch (cause) {
      throw new KubegateError('CONFIG_INVALID', 'ca-file: cannot be read', { field: 'caFile', cause });
    }
  }
  write(renderWebhookConfigFile({ url: flags.url ?? DEFAULT_WEBHOOK_URL, caPem }));
}
