/**
 * Where the agent keeps what it authenticates to the proxy with.
 *
 * The import manifest creates a Secret holding a one-time `registration-token`. The first
 * agent replica to start exchanges it with the proxy for a long-lived agent `credential`
 * (bound to this cluster only), writes that into the same Secret and drops the registration
 * token — a merge patch, so concurrent writers never clobber each other. Other replicas
 * that lose the race (the proxy accepts a registration token exactly once) simply read the
 * Secret again and find the credential. Outside a cluster the same two entries are files in
 * a directory (mode 0600). Neither is ever logged.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient, KubeObject } from '../kube/client.js';

export interface CredentialState {
  /** `name:secret` of the agent credential, once exchanged. */
  readonly credential?: string;
  /** `name:secret` of the one-time registration token, before the exchange. */
  readonly registrationToken?: string;
}

export interface CredentialStore {
  /** Where it lives, for logs (`secret kubegate-system/kubegate-agent`). */
  readonly description: string;
  read(): Promise<CredentialState>;
  /** Stores the credential and forgets the registration token. */
  saveCredential(credential: string): Promise<void>;
}

const CREDENTIAL_KEY = 'credential';
const REGISTRATION_KEY = 'registration-token';

interface SecretObject extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

export function secretCredentialStore(client: KubeClient, namespace: string, name: string): CredentialStore {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
  return {
    description: `secret ${namespace}/${name}`,
    async read() {
      const secret = await client.get<SecretObject>(path);
      return stateOf(decoded(secret?.data?.[CREDENTIAL_KEY]), decoded(secret?.data?.[REGISTRATION_KEY]));
    },
    async saveCredential(credential) {
      await client.mergePatch(path, { data: { [CREDENTIAL_KEY]: Buffer.from(credential, 'utf8').toString('base64'), [REGISTRATION_KEY]: null } });
    },
  };
}

export function directoryCredentialStore(directory: string): CredentialStore {
  return {
    description: `directory ${directory}`,
    async read() {
      return stateOf(readOptional(join(directory, CREDENTIAL_KEY)), readOptional(join(directory, REGISTRATION_KEY)));
    },
    async saveCredential(credential) {
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      const target = join(directory, CREDENTIAL_KEY);
      const temporary = `${target}.${process.pid}.tmp`;
      writeFileSync(temporary, `${credential}\n`, { mode: 0o600 });
      renameSync(temporary, target);
      rmSync(join(directory, REGISTRATION_KEY), { force: true });
    },
  };
}

function stateOf(credential: string | undefined, registrationToken: string | undefined): CredentialState {
  return {
    ...(credential === undefined ? {} : { credential }),
    ...(registrationToken === undefined ? {} : { registrationToken }),
  };
}

function decoded(base64: string | undefined): string | undefined {
  if (base64 === undefined) return undefined;
  const text = Buffer.from(base64, 'base64').toString('utf8').trim();
  return text === '' ? undefined : text;
}

function readOptional(path: string): string | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
