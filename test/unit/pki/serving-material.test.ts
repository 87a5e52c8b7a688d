import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKubegateError } from '../../../src/errors.js';
import { createCertificateAuthority } from '../../../src/pki/certificates.js';
import { loadOrCreateServingMaterial } from '../../../src/pki/serving-material.js';

let root: string;
let dir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kubegate-pki-'));
  dir = join(root, 'tls');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function fileMode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

function assertPkiInvalid(pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isKubegateError(error, 'PKI_INVALID'), `expected PKI_INVALID, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('loadOrCreateServingMaterial', () => {
  it('creates CA and serving files on first start, keys 0600 in a 0700 directory, because the CA key signs every future serving certificate', async () => {
    const material = await loadOrCreateServingMaterial(dir, { sans: ['localhost', '127.0.0.1'] });
    assert.equal(material.outcome, 'created');
    assert.equal(await fileMode(dir), 0o700);
    assert.equal(await fileMode(join(dir, 'ca.key')), 0o600);
    assert.equal(await fileMode(join(dir, 'tls.key')), 0o600);
    assert.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), material.caCertPem);
    assert.equal(await readFile(join(dir, 'tls.crt'), 'utf8'), material.certPem);
    assert.equal(await readFile(join(dir, 'tls.key'), 'utf8'), material.keyPem);
    const leaf = new X509Certificate(material.certPem);
    assert.ok(leaf.checkIssued(new X509Certificate(material.caCertPem)));
    assert.equal(leaf.checkHost('localhost'), 'localhost');
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  });

  it('reuses the files after a restart, because a new CA would invalidate every kubeconfig handed out', async () => {
    const first = await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    const second = await loadOrCreateServingMaterial(dir, { sans: ['LOCALHOST'] });
    assert.equal(second.outcome, 'reused');
    assert.equal(second.caCertPem, first.caCertPem);
    assert.equal(second.certPem, first.certPem);
    assert.equal(second.keyPem, first.keyPem);
  });

  it('reissues only the serving certificate from the same CA when a configured SAN is not covered, so existing kubeconfigs keep trusting the server', async () => {
    const first = await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    const caKeyBefore = await readFile(join(dir, 'ca.key'), 'utf8');
    const second = await loadOrCreateServingMaterial(dir, { sans: ['localhost', 'kube.example.com', '::1'] });
    assert.equal(second.outcome, 'reissued');
    assert.equal(second.caCertPem, first.caCertPem);
    assert.equal(await readFile(join(dir, 'ca.key'), 'utf8'), caKeyBefore);
    assert.notEqual(second.certPem, first.certPem);
    assert.notEqual(second.keyPem, first.keyPem);
    const leaf = new X509Certificate(await readFile(join(dir, 'tls.crt'), 'utf8'));
    assert.ok(leaf.checkIssued(new X509Certificate(first.caCertPem)));
    assert.equal(leaf.checkHost('kube.example.com'), 'kube.example.com');
    assert.equal(leaf.checkIP('::1'), '::1');
    assert.equal((await loadOrCreateServingMaterial(dir, { sans: ['kube.example.com'] })).outcome, 'reused', 'a subset stays covered');
  });

  it('reissues a serving certificate that expires within renewBeforeDays, because a proxy restarted rarely must not serve an expired one', async () => {
    await loadOrCreateServingMaterial(dir, { sans: ['localhost'], servingValidityDays: 1 });
    assert.equal((await loadOrCreateServingMaterial(dir, { sans: ['localhost'], renewBeforeDays: 0.5 })).outcome, 'reused');
    assert.equal((await loadOrCreateServingMaterial(dir, { sans: ['localhost'] })).outcome, 'reissued');
  });

  it('reissues a serving certificate signed by another CA or paired with the wrong key', async () => {
    const first = await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    const strangerDir = join(root, 'stranger');
    const stranger = await loadOrCreateServingMaterial(strangerDir, { sans: ['localhost'] });
    await writeFile(join(dir, 'tls.crt'), stranger.certPem);
    await writeFile(join(dir, 'tls.key'), stranger.keyPem);
    const afterForeign = await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    assert.equal(afterForeign.outcome, 'reissued');
    assert.equal(afterForeign.caCertPem, first.caCertPem);
    await writeFile(join(dir, 'tls.key'), first.keyPem);
    assert.equal((await loadOrCreateServingMaterial(dir, { sans: ['localhost'] })).outcome, 'reissued');
  });

  it('issues a missing serving certificate from the existing CA', async () => {
    const first = await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    await unlink(join(dir, 'tls.crt'));
    const second = await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    assert.equal(second.outcome, 'reissued');
    assert.equal(second.caCertPem, first.caCertPem);
  });

  it('tightens a key file that became group- or world-readable back to 0600', async () => {
    await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    await chmod(join(dir, 'ca.key'), 0o644);
    await chmod(join(dir, 'tls.key'), 0o640);
    await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    assert.equal(await fileMode(join(dir, 'ca.key')), 0o600);
    assert.equal(await fileMode(join(dir, 'tls.key')), 0o600);
  });

  it('fails with PKI_INVALID naming the file when the CA certificate is corrupt, rather than silently replacing the trust anchor', async () => {
    await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    await writeFile(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    await assert.rejects(loadOrCreateServingMaterial(dir, { sans: ['localhost'] }), assertPkiInvalid(/ca\.crt is not a readable PEM certificate/));
  });

  it('fails with PKI_INVALID when one CA file is missing, because creating a new CA would orphan the kubeconfigs', async () => {
    await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    await unlink(join(dir, 'ca.key'));
    await assert.rejects(loadOrCreateServingMaterial(dir, { sans: ['localhost'] }), assertPkiInvalid(/ca\.key is missing/));
  });

  it('fails with PKI_INVALID when the CA key is garbage, belongs to another CA, or the CA file holds a leaf', async () => {
    const material = await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    const caKey = await readFile(join(dir, 'ca.key'), 'utf8');
    await writeFile(join(dir, 'ca.key'), 'garbage');
    await assert.rejects(loadOrCreateServingMaterial(dir, { sans: ['localhost'] }), assertPkiInvalid(/ca\.key is not a readable/));
    const other = await createCertificateAuthority({ commonName: 'other', validityDays: 1 });
    await writeFile(join(dir, 'ca.key'), other.keyPem);
    await assert.rejects(loadOrCreateServingMaterial(dir, { sans: ['localhost'] }), assertPkiInvalid(/ca\.key does not belong to/));
    await writeFile(join(dir, 'ca.key'), caKey);
    await writeFile(join(dir, 'ca.crt'), material.certPem);
    await assert.rejects(loadOrCreateServingMaterial(dir, { sans: ['localhost'] }), assertPkiInvalid(/ca\.crt is not a CA certificate/));
  });

  it('fails with PKI_INVALID when the serving key file is corrupt, instead of overwriting what an operator may have put there', async () => {
    await loadOrCreateServingMaterial(dir, { sans: ['localhost'] });
    await writeFile(join(dir, 'tls.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    await assert.rejects(loadOrCreateServingMaterial(dir, { sans: ['localhost'] }), assertPkiInvalid(/tls\.key is not a readable/));
  });

  it('fails with PKI_INVALID when the directory cannot be created', async () => {
    await writeFile(join(root, 'file'), '');
    await assert.rejects(loadOrCreateServingMaterial(join(root, 'file', 'tls'), { sans: ['localhost'] }), assertPkiInvalid(/cannot be created/));
  });
});
