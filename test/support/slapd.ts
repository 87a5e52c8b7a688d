/**
 * A real, throwaway OpenLDAP server for tests, seeded with a small directory.
 *
 * `slapd` (installed by scripts/setup-slapd.sh) runs in the foreground (`-d none`: quiet, but
 * startup errors still reach stderr, which is kept for the error message) with its own
 * old-style slapd.conf in a temporary directory: back_mdb, the memberof overlay (so users
 * carry `memberOf` for their groupOfNames groups, as in Active Directory), the core, cosine,
 * inetorgperson and nis schemas, and a tiny test schema that defines Active Directory's
 * `userAccountControl` (so the disabled-bit logic runs against a real directory). ACLs let
 * only bound clients read, as production directories do, so the provider must bind its
 * service account. Listeners: `ldap://127.0.0.1:<port>` always (StartTLS when `tls`), and
 * `ldaps://127.0.0.1:<port>` with `tls`, serving a certificate from a fresh CA (src/pki).
 * Ports are picked free and retried if slapd cannot bind them. Running as root is fine.
 *
 * The seeded directory (SEED) under dc=example,dc=org:
 * - ou=services: cn=kubegate, the service account;
 * - ou=people: alice (ops, devs), bob (no groups, userAccountControl 512), carol (disabled:
 *   userAccountControl 514), dave (chain-a), two entries with uid `twin` (ambiguous), and
 *   `special` whose uid is full of filter syntax (`o*brien(x)\y`);
 * - ou=groups: groupOfNames ops {alice}; posixGroup devs {memberUid alice}; groupOfNames
 *   chain-a {dave, chain-c}, chain-b {chain-a}, chain-c {chain-b}: a nesting chain that is
 *   also a cycle.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Attribute, Change, Client } from 'ldapts';
import { createCertificateAuthority, issueServingCertificate } from '../../src/pki/certificates.js';

const SLAPD = '/usr/sbin/slapd';
const BASE_DN = 'dc=example,dc=org';
const STARTUP_TIMEOUT_MS = 10_000;

export const SEED = {
  baseDn: BASE_DN,
  peopleDn: `ou=people,${BASE_DN}`,
  groupsDn: `ou=groups,${BASE_DN}`,
  servicesDn: `ou=services,${BASE_DN}`,
  service: { dn: `cn=kubegate,ou=services,${BASE_DN}`, password: 'service-password-1' },
  users: {
    alice: { uid: 'alice', dn: `uid=alice,ou=people,${BASE_DN}`, password: 'alice-password-1', cn: 'Alice Liddell' },
    bob: { uid: 'bob', dn: `uid=bob,ou=people,${BASE_DN}`, password: 'bob-password-1', cn: 'Bob Builder' },
    carol: { uid: 'carol', dn: `uid=carol,ou=people,${BASE_DN}`, password: 'carol-password-1', cn: 'Carol Disabled' },
    dave: { uid: 'dave', dn: `uid=dave,ou=people,${BASE_DN}`, password: 'dave-password-1', cn: 'Dave Nested' },
    twin1: { uid: 'twin', dn: `cn=twin1,ou=people,${BASE_DN}`, password: 'twin-password-1', cn: 'twin1' },
    twin2: { uid: 'twin', dn: `cn=twin2,ou=people,${BASE_DN}`, password: 'twin-password-1', cn: 'twin2' },
    special: { uid: 'o*brien(x)\\y', dn: `cn=special,ou=people,${BASE_DN}`, password: 'special-password-1', cn: 'special' },
  },
  groups: {
    ops: `cn=ops,ou=groups,${BASE_DN}`,
    devs: `cn=devs,ou=groups,${BASE_DN}`,
    chainA: `cn=chain-a,ou=groups,${BASE_DN}`,
    chainB: `cn=chain-b,ou=groups,${BASE_DN}`,
    chainC: `cn=chain-c,ou=groups,${BASE_DN}`,
  },
} as const;

export interface StartSlapdOptions {
  /** Also serve LDAPS and StartTLS with a certificate from a fresh CA. */
  readonly tls?: boolean;
}

export interface TestSlapd {
  /** `ldap://127.0.0.1:<port>`. */
  readonly url: string;
  /** `ldaps://127.0.0.1:<port>` when started with `tls`. */
  readonly ldapsUrl: string | undefined;
  /** The CA that signed the serving certificate (PEM), when started with `tls`. */
  readonly caPem: string | undefined;
  readonly baseDn: string;
  readonly adminDn: string;
  readonly adminPassword: string;
  /** Runs `change` with a client bound as the admin (rootdn), then unbinds. */
  asAdmin<T>(change: (client: Client) => Promise<T>): Promise<T>;
  /** Stops the server process but keeps its data and ports, for `resume` (an outage mid-test). */
  pause(): Promise<void>;
  /** Starts the server again after `pause`, on the same ports with the same data. */
  resume(): Promise<void>;
  /** Stops the server and removes its files. Idempotent. */
  stop(): Promise<void>;
}

export async function startSlapd(options: StartSlapdOptions = {}): Promise<TestSlapd> {
  if (!existsSync(SLAPD)) throw new Error(`${SLAPD} not found: run scripts/setup-slapd.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'kubegate-slapd-'));
  const adminDn = `cn=admin,${BASE_DN}`;
  const adminPassword = randomBytes(12).toString('hex');
  let caPem: string | undefined;
  if (options.tls === true) {
    const ca = await createCertificateAuthority({ commonName: 'kubegate test LDAP CA', validityDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'slapd', sans: ['127.0.0.1', 'localhost'], validityDays: 1 });
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'server.pem'), serving.certPem);
    writeFileSync(join(dir, 'server.key'), serving.keyPem, { mode: 0o600 });
    caPem = ca.certPem;
  }
  writeFileSync(join(dir, 'kubegate-test.schema'), TEST_SCHEMA);
  writeFileSync(join(dir, 'slapd.conf'), slapdConf(dir, adminDn, adminPassword, options.tls === true));
  mkdirSync(join(dir, 'data'));

  let child: ChildProcess | undefined;
  const killNow = (): void => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killNow);

  try {
    let started: { child: ChildProcess; port: number; ldapsPort: number | undefined } | undefined;
    let lastError: unknown;
    for (let attempt = 0; attempt < 5 && started === undefined; attempt += 1) {
      try {
        started = await launch(dir, options.tls === true, adminDn, adminPassword);
      } catch (error) {
        lastError = error;
      }
    }
    if (started === undefined) throw lastError;
    child = started.child;
    const ports = { port: started.port, ldapsPort: started.ldapsPort };
    const url = `ldap://127.0.0.1:${started.port}`;
    const server: TestSlapd = {
      url,
      ldapsUrl: started.ldapsPort === undefined ? undefined : `ldaps://127.0.0.1:${started.ldapsPort}`,
      caPem,
      baseDn: BASE_DN,
      adminDn,
      adminPassword,
      async asAdmin(change) {
        const client = new Client({ url, timeout: 5000, connectTimeout: 5000 });
        try {
          await client.bind(adminDn, adminPassword);
          return await change(client);
        } finally {
          await client.unbind();
        }
      },
      async pause() {
        const running = child;
        child = undefined;
        await terminate(running);
      },
      async resume() {
        if (child !== undefined) throw new Error('slapd is running: pause it first');
        child = (await launch(dir, options.tls === true, adminDn, adminPassword, ports)).child;
      },
      async stop() {
        process.removeListener('exit', killNow);
        const running = child;
        child = undefined;
        await terminate(running);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    await server.asAdmin(seed);
    return server;
  } catch (error) {
    process.removeListener('exit', killNow);
    killNow();
    throw error;
  }
}

/** SIGTERM (SIGKILL after 5 s) and waits for the exit. */
async function terminate(running: ChildProcess | undefined): Promise<void> {
  if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
  const exited = new Promise((resolve) => running.once('exit', resolve));
  running.kill('SIGTERM');
  const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts slapd on `ports` (default: fresh free ones) and waits until the admin can bind. */
async function launch(
  dir: string,
  tls: boolean,
  adminDn: string,
  adminPassword: string,
  ports?: { readonly port: number; readonly ldapsPort: number | undefined },
): Promise<{ child: ChildProcess; port: number; ldapsPort: number | undefined }> {
  const port = ports?.port ?? (await freePort());
  const ldapsPort = ports !== undefined ? ports.ldapsPort : tls ? await freePort() : undefined;
  const listeners = [`ldap://127.0.0.1:${port}/`, ...(ldapsPort === undefined ? [] : [`ldaps://127.0.0.1:${ldapsPort}/`])];
  const child = spawn(SLAPD, ['-f', join(dir, 'slapd.conf'), '-h', listeners.join(' '), '-d', 'none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`slapd exited during startup (${code ?? signal}):\n${stderr}`)));
    child.once('error', reject);
  });
  exited.catch(() => undefined);
  const deadline = performance.now() + STARTUP_TIMEOUT_MS;
  try {
    for (;;) {
      const ready = await Promise.race([canBind(`ldap://127.0.0.1:${port}`, adminDn, adminPassword), exited]);
      if (ready) return { child, port, ldapsPort };
      if (performance.now() > deadline) throw new Error(`slapd did not accept a bind within ${STARTUP_TIMEOUT_MS} ms:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

async function canBind(url: string, dn: string, password: string): Promise<boolean> {
  const client = new Client({ url, connectTimeout: 1000, timeout: 1000 });
  try {
    await client.bind(dn, password);
    return true;
  } catch {
    return false;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function slapdConf(dir: string, adminDn: string, adminPassword: string, tls: boolean): string {
  return [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    'include /etc/ldap/schema/nis.schema',
    `include ${join(dir, 'kubegate-test.schema')}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'moduleload memberof',
    ...(tls
      ? [
          `TLSCACertificateFile ${join(dir, 'ca.pem')}`,
          `TLSCertificateFile ${join(dir, 'server.pem')}`,
          `TLSCertificateKeyFile ${join(dir, 'server.key')}`,
        ]
      : []),
    'database mdb',
    `suffix "${BASE_DN}"`,
    `rootdn "${adminDn}"`,
    `rootpw ${adminPassword}`,
    `directory ${join(dir, 'data')}`,
    'maxsize 16777216',
    'overlay memberof',
    'memberof-group-oc groupOfNames',
    'memberof-member-ad member',
    'memberof-memberof-ad memberOf',
    'memberof-refint TRUE',
    'access to attrs=userPassword by self =xw by anonymous auth by * none',
    'access to * by users read by * none',
    '',
  ].join('\n');
}

/** Active Directory's account-control attribute, for the disabled-bit logic. */
const TEST_SCHEMA = `attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.1 NAME 'kubegateTestAccount' AUXILIARY
  MAY ( userAccountControl ) )
`;

async function seed(client: Client): Promise<void> {
  await client.add(BASE_DN, { objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example' });
  for (const ou of ['people', 'groups', 'services']) await client.add(`ou=${ou},${BASE_DN}`, { objectClass: 'organizationalUnit', ou });
  await client.add(SEED.service.dn, { objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'kubegate', userPassword: SEED.service.password });
  const control: Record<string, string> = { bob: '512', carol: '514' };
  for (const [key, user] of Object.entries(SEED.users)) {
    await client.add(user.dn, {
      objectClass: ['inetOrgPerson', 'kubegateTestAccount'],
      uid: user.uid,
      cn: user.cn,
      sn: user.cn,
      mail: `${key}@example.org`,
      userPassword: user.password,
      ...(control[key] === undefined ? {} : { userAccountControl: control[key] }),
    });
  }
  const { groups, users } = SEED;
  await addGroupOfNames(client, groups.ops, [users.alice.dn]);
  await client.add(groups.devs, { objectClass: 'posixGroup', cn: 'devs', gidNumber: '5000', memberUid: users.alice.uid });
  await addGroupOfNames(client, groups.chainA, [users.dave.dn]);
  await addGroupOfNames(client, groups.chainB, [groups.chainA]);
  await addGroupOfNames(client, groups.chainC, [groups.chainB]);
  await addMember(client, groups.chainA, groups.chainC);
}

export async function addGroupOfNames(client: Client, dn: string, members: readonly string[]): Promise<void> {
  const cn = /^cn=([^,]+)/.exec(dn)?.[1] ?? 'group';
  await client.add(dn, { objectClass: 'groupOfNames', cn, member: [...members] });
}

export async function addMember(client: Client, groupDn: string, memberDn: string): Promise<void> {
  await client.modify(groupDn, new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [memberDn] }) }));
}

export async function replaceAttribute(client: Client, dn: string, type: string, values: readonly string[]): Promise<void> {
  await client.modify(dn, new Change({ operation: 'replace', modification: new Attribute({ type, values: [...values] }) }));
}

/** The settings of an `ldap` provider on `slapd` as seeded: plain LDAP, the seeded service account and bases. */
export function ldapProviderSettings(slapd: Pick<TestSlapd, 'url'>): Record<string, unknown> {
  return {
    servers: [slapd.url],
    tls: 'none',
    connectionTimeoutSeconds: 2,
    serviceAccountDn: SEED.service.dn,
    serviceAccountPassword: SEED.service.password,
    userSearchBase: SEED.peopleDn,
    groupSearchBase: SEED.groupsDn,
  };
}
