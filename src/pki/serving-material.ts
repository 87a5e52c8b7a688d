/**
 * The proxy's own TLS material, kept in one directory across restarts.
 *
 * Design note: the CA is the long-lived trust anchor — every kubeconfig kubegate hands out
 * embeds it — so it is created once and never replaced behind the operator's back: a CA file
 * that is missing its partner, unreadable, corrupt, not a CA or expired is a PKI_INVALID
 * error that names the file, and the operator decides. The serving (leaf) certificate is
 * derived material: when it is missing, does not cover every configured SAN, expires within
 * `renewBeforeDays`, is not signed by the CA or does not match its key, it is reissued from
 * the same CA so existing kubeconfigs stay valid. Files are written to a temporary name and
 * renamed, keys with mode 0600 in a 0700 directory. Call this once, from the primary
 * process, before starting workers: two processes racing to create a CA would each write
 * their own.
 */
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { KubegateError } from '../errors.js';
import { createCertificateAuthority, issueServingCertificate, parseSubjectAlternativeNames } from './certificates.js';
import type { CertificateAuthority } from './certificates.js';

export interface ServingMaterialOptions {
  /** DNS names and IP addresses the serving certificate must cover. */
  readonly sans: readonly string[];
  /** Default `kubegate-ca`. */
  readonly caCommonName?: string;
  /** Default: the first DNS SAN, else `kubegate`. */
  readonly servingCommonName?: string;
  /** Default 3650 (10 years). */
  readonly caValidityDays?: number;
  /** Default 365. */
  readonly servingValidityDays?: number;
  /** Reissue the serving certificate when it expires within this many days. Default 30. */
  readonly renewBeforeDays?: number;
}

export type ServingMaterialOutcome = 'created' | 'reissued' | 'reused';

export interface ServingMaterial {
  /** The CA certificate to put into kubeconfigs as `certificate-authority-data`. */
  readonly caCertPem: string;
  /** The serving certificate and key for node:tls / node:https. */
  readonly certPem: string;
  readonly keyPem: string;
  /** created: new CA and leaf; reissued: leaf renewed from the existing CA; reused: nothing written. */
  readonly outcome: ServingMaterialOutcome;
  readonly files: ServingMaterialFiles;
}

export interface ServingMaterialFiles {
  readonly caCert: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
}

const dayMs = 24 * 60 * 60 * 1000;

/** Loads the CA and serving certificate from `dir`, creating or reissuing what is needed. */
export async function loadOrCreateServingMaterial(dir: string, options: ServingMaterialOptions): Promise<ServingMaterial> {
  const sans = parseSubjectAlternativeNames(options.sans);
  if (sans.dnsNames.length + sans.ipAddresses.length === 0) throw new TypeError('sans must name at least one DNS name or IP address');
  const files: ServingMaterialFiles = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'tls.crt'),
    key: join(dir, 'tls.key'),
  };
  await ensureDirectory(dir);

  const servingOptions = {
    commonName: options.servingCommonName ?? sans.dnsNames[0] ?? 'kubegate',
    sans: [...sans.dnsNames, ...sans.ipAddresses],
    validityDays: options.servingValidityDays ?? 365,
  };

  const [caCertPem, caKeyPem] = await Promise.all([readOptional(files.caCert), readOptional(files.caKey)]);
  if (caCertPem === undefined && caKeyPem === undefined) {
    const ca = await createCertificateAuthority({ commonName: options.caCommonName ?? 'kubegate-ca', validityDays: options.caValidityDays ?? 3650 });
    const serving = await issueServingCertificate(ca, servingOptions);
    // Keys first: a certificate on disk means its key is already there.
    await writeAtomically(files.caKey, ca.keyPem, 0o600);
    await writeAtomically(files.caCert, ca.certPem, 0o644);
    await writeAtomically(files.key, serving.keyPem, 0o600);
    await writeAtomically(files.cert, serving.certPem, 0o644);
    return { caCertPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem, outcome: 'created', files };
  }
  if (caCertPem === undefined || caKeyPem === undefined) {
    const missing = caCertPem === undefined ? files.caCert : files.caKey;
    throw new KubegateError('PKI_INVALID', `${missing} is missing while its partner exists; restore it, or remove both CA files to create a new CA (existing kubeconfigs then stop trusting the server)`);
  }
  const ca = await loadCertificateAuthority(files, caCertPem, caKeyPem);
  await tightenKeyMode(files.caKey);

  const [certPem, keyPem] = await Promise.all([readOptional(files.cert), readOptional(files.key)]);
  if (certPem !== undefined && keyPem !== undefined) {
    const leaf = parseCertificate(files.cert, certPem);
    const key = parsePrivateKey(files.key, keyPem);
    const renewBeforeMs = (options.renewBeforeDays ?? 30) * dayMs;
    if (isLeafUsable(leaf, key, ca.certificate, sans, renewBeforeMs)) {
      await tightenKeyMode(files.key);
      return { caCertPem, certPem, keyPem, outcome: 'reused', files };
    }
  }
  const serving = await issueServingCertificate(ca.material, servingOptions);
  await writeAtomically(files.key, serving.keyPem, 0o600);
  await writeAtomically(files.cert, serving.certPem, 0o644);
  return { caCertPem, certPem: serving.certPem, keyPem: serving.keyPem, outcome: 'reissued', files };
}

interface LoadedCertificateAuthority {
  readonly certificate: X509Certificate;
  /** The CA with its key normalised to PKCS#8 PEM for signing. */
  readonly material: CertificateAuthority;
}

async function loadCertificateAuthority(files: ServingMaterialFiles, certPem: string, keyPem: string): Promise<LoadedCertificateAuthority> {
  const certificate = parseCertificate(files.caCert, certPem);
  if (!certificate.ca) throw new KubegateError('PKI_INVALID', `${files.caCert} is not a CA certificate`);
  if (Date.parse(certificate.validTo) <= Date.now()) {
    throw new KubegateError('PKI_INVALID', `${files.caCert} has expired; remove the CA files to create a new CA and hand out new kubeconfigs`);
  }
  const key = parsePrivateKey(files.caKey, keyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KubegateError('PKI_INVALID', `${files.caKey} must be an ECDSA P-256 key`);
  }
  if (!certificate.checkPrivateKey(key)) throw new KubegateError('PKI_INVALID', `${files.caKey} does not belong to ${files.caCert}`);
  const pkcs8Pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certificate, material: { certPem, keyPem: pkcs8Pem } };
}

function isLeafUsable(
  leaf: X509Certificate,
  key: KeyObject,
  caCertificate: X509Certificate,
  sans: ReturnType<typeof parseSubjectAlternativeNames>,
  renewBeforeMs: number,
): boolean {
  if (!leaf.checkPrivateKey(key)) return false;
  if (!leaf.checkIssued(caCertificate) || !leaf.verify(caCertificate.publicKey)) return false;
  if (Date.parse(leaf.validTo) - Date.now() <= renewBeforeMs) return false;
  const leafDnsNames = readDnsNames(leaf);
  for (const dnsName of sans.dnsNames) {
    const covered = dnsName.startsWith('*.') ? leafDnsNames.includes(dnsName) : leaf.checkHost(dnsName, { subject: 'never' }) !== undefined;
    if (!covered) return false;
  }
  return sans.ipAddresses.every((ip) => leaf.checkIP(ip) !== undefined);
}

function readDnsNames(certificate: X509Certificate): string[] {
  const extension = new x509.X509Certificate(certificate.raw).getExtension(x509.SubjectAlternativeNameExtension);
  if (extension === null) return [];
  return extension.names.items.filter((name) => name.type === 'dns').map((name) => name.value.toLowerCase());
}

function parseCertificate(path: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new KubegateError('PKI_INVALID', `${path} is not a readable PEM certificate`, { cause: error });
  }
}

function parsePrivateKey(path: string, pem: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new KubegateError('PKI_INVALID', `${path} is not a readable, unencrypted PEM private key`, { cause: error });
  }
}

async function ensureDirectory(dir: string): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new KubegateError('PKI_INVALID', `the TLS directory ${dir} cannot be created`, { cause: error });
  }
  if (created !== undefined) await chmod(dir, 0o700);
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KubegateError('PKI_INVALID', `${path} cannot be read`, { cause: error });
  }
}

async function tightenKeyMode(path: string): Promise<void> {
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) await chmod(path, 0o600);
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, content, { mode, flag: 'wx' });
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new KubegateError('PKI_INVALID', `${path} cannot be written`, { cause: error });
  }
}
