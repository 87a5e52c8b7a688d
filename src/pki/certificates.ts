/**
 * Certificate issuance: a private CA and the leaf certificates it signs.
 *
 * Design note: every key is ECDSA P-256 signed with SHA-256 (small, fast, accepted by Go's
 * crypto/tls, i.e. kubectl, and by node:tls). Keys leave this module as unencrypted PKCS#8
 * PEM (`-----BEGIN PRIVATE KEY-----`), which node:tls and Go both read. The webcrypto
 * provider is passed to @peculiar/x509 on every call instead of being installed globally.
 * Subjects are built from structured names, never from concatenated strings, so a comma or
 * `=` in a common name cannot inject an RDN. Validity starts five minutes in the past to
 * absorb clock skew between the issuer and its clients.
 */
import { isIP } from 'node:net';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** A PEM certificate and its PKCS#8 PEM private key. */
export interface CertificateAndKey {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A CA able to sign: its certificate and private key. */
export type CertificateAuthority = CertificateAndKey;

export interface CertificateAuthorityOptions {
  readonly commonName: string;
  readonly validityDays: number;
}

export interface ServingCertificateOptions {
  readonly commonName: string;
  /** DNS names (wildcards allowed) and IP addresses (IPv4, IPv6, optionally `[bracketed]`). */
  readonly sans: readonly string[];
  readonly validityDays: number;
}

export interface ClientCertificateOptions {
  /** Kubernetes reads the user name from CN. */
  readonly commonName: string;
  /** Kubernetes reads groups from O. */
  readonly organizations?: readonly string[];
  /** Default 365. */
  readonly validityDays?: number;
}

export interface SubjectAlternativeNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

const crypto: webcrypto.Crypto = webcrypto;
const keyAlgorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const signingAlgorithm = { name: 'ECDSA', hash: 'SHA-256' } as const;
const clockSkewMs = 5 * 60 * 1000;
const dayMs = 24 * 60 * 60 * 1000;
const dnsNamePattern = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Splits SAN entries into DNS names and IP addresses. IPv6 addresses may be written in
 * brackets (`[::1]`). DNS names are lower-cased. Throws TypeError for an entry that is
 * neither, so configuration validation can call this to check its input.
 */
export function parseSubjectAlternativeNames(sans: readonly string[]): SubjectAlternativeNames {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const entry of sans) {
    if (typeof entry !== 'string') throw new TypeError('a subject alternative name must be a string');
    const unbracketed = entry.startsWith('[') && entry.endsWith(']') ? entry.slice(1, -1) : entry;
    if (isIP(unbracketed) !== 0) {
      if (!ipAddresses.includes(unbracketed)) ipAddresses.push(unbracketed);
      continue;
    }
    const dnsName = entry.toLowerCase();
    if (dnsName.length > 253 || !dnsNamePattern.test(dnsName)) {
      throw new TypeError(`subject alternative name ${JSON.stringify(entry)} is neither an IP address nor a DNS name`);
    }
    if (!dnsNames.includes(dnsName)) dnsNames.push(dnsName);
  }
  return { dnsNames, ipAddresses };
}

/** Creates a self-signed CA (basicConstraints CA, keyCertSign + cRLSign, subject key id). */
export async function createCertificateAuthority(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
  assertCommonName(options.commonName);
  const validity = validityPeriod(options.validityDays);
  const keys = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: newSerialNumber(),
      name: [{ CN: [options.commonName] }],
      ...validity,
      keys,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: certificate.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Issues a TLS server certificate (serverAuth) for the given DNS names and IPs. */
export async function issueServingCertificate(ca: CertificateAuthority, options: ServingCertificateOptions): Promise<CertificateAndKey> {
  assertCommonName(options.commonName);
  const { dnsNames, ipAddresses } = parseSubjectAlternativeNames(options.sans);
  if (dnsNames.length + ipAddresses.length === 0) throw new TypeError('a serving certificate needs at least one subject alternative name');
  const generalNames: x509.JsonGeneralName[] = [
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  return issueLeafCertificate(ca, {
    subject: [{ CN: [options.commonName] }],
    validityDays: options.validityDays,
    keyUsages: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    extendedKeyUsage: x509.ExtendedKeyUsage.serverAuth,
    extraExtensions: [new x509.SubjectAlternativeNameExtension(generalNames, false)],
  });
}

/** Issues a TLS client certificate (clientAuth): CN is the user, each O a group. */
export async function issueClientCertificate(ca: CertificateAuthority, options: ClientCertificateOptions): Promise<CertificateAndKey> {
  assertCommonName(options.commonName);
  const organizations = options.organizations ?? [];
  const subject: x509.JsonName = [{ CN: [options.commonName] }, ...organizations.map((organization) => ({ O: [organization] }))];
  return issueLeafCertificate(ca, {
    subject,
    validityDays: options.validityDays ?? 365,
    keyUsages: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    extendedKeyUsage: x509.ExtendedKeyUsage.clientAuth,
    extraExtensions: [],
  });
}

interface LeafOptions {
  readonly subject: x509.JsonName;
  readonly validityDays: number;
  readonly keyUsages: x509.KeyUsageFlags;
  readonly extendedKeyUsage: x509.ExtendedKeyUsage;
  readonly extraExtensions: readonly x509.Extension[];
}

async function issueLeafCertificate(ca: CertificateAuthority, options: LeafOptions): Promise<CertificateAndKey> {
  const validity = validityPeriod(options.validityDays);
  const caCertificate = new x509.X509Certificate(ca.certPem);
  const caSigningKey = await importPrivateKeyPem(ca.keyPem);
  const keys = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: newSerialNumber(),
      subject: options.subject,
      issuer: caCertificate.subjectName,
      ...validity,
      publicKey: keys.publicKey,
      signingKey: caSigningKey,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(options.keyUsages, true),
        new x509.ExtendedKeyUsageExtension([options.extendedKeyUsage], false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caCertificate.publicKey, false, crypto),
        ...options.extraExtensions,
      ],
    },
    crypto,
  );
  return { certPem: certificate.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

async function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function exportPrivateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Imports a PKCS#8 PEM P-256 key for signing. Throws whatever webcrypto throws on bad input. */
async function importPrivateKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return crypto.subtle.importKey('pkcs8', der, keyAlgorithm, false, ['sign']);
}

function validityPeriod(validityDays: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(validityDays) || validityDays <= 0) throw new TypeError('validityDays must be a positive number');
  const now = Date.now();
  return { notBefore: new Date(now - clockSkewMs), notAfter: new Date(now + validityDays * dayMs) };
}

/** 128 random bits, positive (high bit clear) and never zero-led, per RFC 5280 §4.1.2.2. */
function newSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function assertCommonName(commonName: string): void {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > 64) {
    throw new TypeError('commonName must be a string of 1 to 64 characters');
  }
}
