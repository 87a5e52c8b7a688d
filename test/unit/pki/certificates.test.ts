import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import {
  createCertificateAuthority,
  issueClientCertificate,
  issueServingCertificate,
  parseSubjectAlternativeNames,
} from '../../../src/pki/certificates.js';
import type { CertificateAndKey } from '../../../src/pki/certificates.js';

/** connected: the client accepted the server; clientAuthorized: the server accepted the client's certificate. */
type HandshakeResult =
  | { readonly connected: true; readonly clientAuthorized: boolean; readonly clientSubject?: tls.PeerCertificate['subject'] }
  | { readonly connected: false; readonly error: string };

/** Starts a TLS server on 127.0.0.1:0, connects one client, and reports the outcome. */
async function handshake(
  serving: CertificateAndKey,
  client: tls.ConnectionOptions,
  server: Partial<tls.TlsOptions> = {},
): Promise<HandshakeResult> {
  const tlsServer = tls.createServer({ cert: serving.certPem, key: serving.keyPem, ...server }, (socket) => {
    socket.end(JSON.stringify({ authorized: socket.authorized, subject: socket.getPeerCertificate().subject ?? null }));
  });
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  try {
    const { port } = tlsServer.address() as AddressInfo;
    return await new Promise<HandshakeResult>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ...client });
      let body = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (body += chunk));
      socket.on('end', () => {
        const reply = JSON.parse(body) as { authorized: boolean; subject: tls.PeerCertificate['subject'] | null };
        resolve({ connected: true, clientAuthorized: reply.authorized, ...(reply.subject ? { clientSubject: reply.subject } : {}) });
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve({ connected: false, error: error.code ?? error.message }));
    });
  } finally {
    tlsServer.close();
  }
}

describe('createCertificateAuthority', () => {
  it('creates a P-256 CA certificate with CA basic constraints, keyCertSign/cRLSign and a subject key id, because clients only chain to a certificate marked as a CA', async () => {
    const ca = await createCertificateAuthority({ commonName: 'test-ca', validityDays: 10 });
    const parsed = new x509.X509Certificate(ca.certPem);
    const basic = parsed.getExtension(x509.BasicConstraintsExtension);
    assert.equal(basic?.ca, true);
    assert.equal(basic?.critical, true);
    const usages = parsed.getExtension(x509.KeyUsagesExtension)?.usages ?? 0;
    assert.ok(usages & x509.KeyUsageFlags.keyCertSign);
    assert.ok(usages & x509.KeyUsageFlags.cRLSign);
    assert.ok(parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    const native = new X509Certificate(ca.certPem);
    assert.equal(native.subject, 'CN=test-ca');
    assert.equal(native.ca, true);
    assert.ok(native.verify(native.publicKey), 'self-signed');
    assert.equal(native.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const days = (Date.parse(native.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 9.9 && days <= 10, `validity ${days} days`);
  });

  it('puts a comma-laden common name into one CN attribute, because a built-up DN string would let a name inject an O=system:masters', async () => {
    const ca = await createCertificateAuthority({ commonName: 'x', validityDays: 1 });
    const client = await issueClientCertificate(ca, { commonName: 'eve, O=system:masters' });
    const subject = new x509.X509Certificate(client.certPem).subjectName;
    assert.deepEqual(subject.getField('CN'), ['eve, O=system:masters']);
    assert.deepEqual(subject.getField('O'), []);
  });

  it('rejects a non-positive validity as a programming error', async () => {
    await assert.rejects(createCertificateAuthority({ commonName: 'ca', validityDays: 0 }), TypeError);
  });
});

describe('issueServingCertificate', () => {
  it('serves TLS that a client trusting only the CA accepts by DNS name and by IP address, because kubeconfigs carry only the CA', async () => {
    const ca = await createCertificateAuthority({ commonName: 'test-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost', '127.0.0.1', '[::1]'], validityDays: 1 });
    assert.deepEqual(await handshake(serving, { ca: ca.certPem, servername: 'localhost' }), { connected: true, clientAuthorized: false });
    // No servername: node checks the certificate against the connected IP address.
    assert.deepEqual(await handshake(serving, { ca: ca.certPem }), { connected: true, clientAuthorized: false });
    const native = new X509Certificate(serving.certPem);
    assert.equal(native.checkIP('::1'), '::1');
    assert.deepEqual(native.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.ok(native.checkIssued(new X509Certificate(ca.certPem)));
  });

  it('fails the handshake for a name the certificate does not cover and for a client trusting another CA, so the test above can fail', async () => {
    const ca = await createCertificateAuthority({ commonName: 'test-ca', validityDays: 1 });
    const otherCa = await createCertificateAuthority({ commonName: 'other-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost'], validityDays: 1 });
    assert.deepEqual(await handshake(serving, { ca: ca.certPem, servername: 'example.com' }), { connected: false, error: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    assert.deepEqual(await handshake(serving, { ca: ca.certPem }), { connected: false, error: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    assert.deepEqual(await handshake(serving, { ca: otherCa.certPem, servername: 'localhost' }), {
      connected: false,
      error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  it('rejects an empty SAN list as a programming error', async () => {
    const ca = await createCertificateAuthority({ commonName: 'ca', validityDays: 1 });
    await assert.rejects(issueServingCertificate(ca, { commonName: 'x', sans: [], validityDays: 1 }), TypeError);
  });
});

describe('issueClientCertificate', () => {
  it('issues a client certificate a server requiring the CA accepts, with CN as user and one O per group as Kubernetes reads them', async () => {
    const ca = await createCertificateAuthority({ commonName: 'test-ca', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'localhost', sans: ['localhost'], validityDays: 1 });
    const client = await issueClientCertificate(ca, { commonName: 'alice', organizations: ['dev', 'ops'] });
    const result = await handshake(
      serving,
      { ca: ca.certPem, servername: 'localhost', cert: client.certPem, key: client.keyPem },
      { requestCert: true, rejectUnauthorized: true, ca: ca.certPem },
    );
    assert.ok(result.connected);
    assert.equal(result.clientAuthorized, true);
    assert.equal(result.clientSubject?.CN, 'alice');
    assert.deepEqual(result.clientSubject?.O, ['dev', 'ops']);
    assert.deepEqual(new X509Certificate(client.certPem).keyUsage, ['1.3.6.1.5.5.7.3.2']);
  });
});

describe('parseSubjectAlternativeNames', () => {
  it('tells IPv4, IPv6 (bare or bracketed) and DNS names apart and drops duplicates', () => {
    assert.deepEqual(parseSubjectAlternativeNames(['Kube.Example.com', '10.0.0.1', '::1', '[fe80::1]', '*.apps.example.com', 'kube.example.com']), {
      dnsNames: ['kube.example.com', '*.apps.example.com'],
      ipAddresses: ['10.0.0.1', '::1', 'fe80::1'],
    });
  });

  it('rejects entries that are neither, because a typo would otherwise become a useless certificate name', () => {
    for (const bad of ['', 'a b', 'https://x', 'x..y', '-x.com', 'a.*.com', '[not-ip]']) {
      assert.throws(() => parseSubjectAlternativeNames([bad]), TypeError, bad);
    }
  });
});
