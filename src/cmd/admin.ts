/**
 * The admin commands: thin clients of the REST API, one call (or two) each, for operators
 * who would otherwise use curl.
 *
 *   kubegate whoami                                   GET /v1/me
 *   kubegate password                                 POST /v1/me/password
 *   kubegate cluster add|list|get|rm                  POST|GET /v1/clusters, GET|DELETE /v1/clusters/:id
 *                                                     (add --agent: an agent-mode cluster and its import command)
 *   kubegate user add|list|update|disable|enable      POST|GET /v1/users, PATCH /v1/users/:id
 *   kubegate member add|list|rm <cluster>             /v1/clusters/:id/members
 *   kubegate token create|list|revoke                 POST|GET /v1/tokens, DELETE /v1/tokens/:name
 *   kubegate provider list                            GET /v1/providers (with each provider's health: admins)
 *   kubegate kubeconfig <cluster> [--exec]            GET /v1/clusters/:id/kubeconfig (to stdout)
 *
 * Each takes the connection flags (`--server`, `--certificate-authority`, `--provider`;
 * default: what `kubegate login` remembered) and lists take `-o table|json|yaml`. Users are
 * named by username or ID (a username is looked up in GET /v1/users). Nothing secret is
 * printed except the token `token create` exists to show and the kubeconfig asked for; no
 * password is ever taken as a flag (it would show in the process list).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { KubegateError } from '../errors.js';
import { openAdminSession } from '../cli/admin-session.js';
import type { AdminSession, ConnectionDeps, ConnectionFlags } from '../cli/admin-session.js';
import { clusterFromKubeconfig } from '../cli/kubeconfig-cluster.js';
import { OUTPUT_FORMATS, formatOutput, parseOutputFormat } from '../cli/output.js';
import type { Column } from '../cli/output.js';

type Flags = ConnectionFlags & Record<string, unknown>;

interface Row {
  readonly [key: string]: unknown;
}

/** Adds the connection flags every admin command takes. */
export function withConnection(command: Command): Command {
  return command
    .option('--server <url>', 'https URL of the kubegate proxy (default: KUBEGATE_SERVER, else the one `kubegate login` used)')
    .option('--provider <name>', 'identity provider to log in with when a login is needed')
    .option('--device', 'OIDC: log in with the device flow instead of a browser')
    .option('--certificate-authority <file>', 'PEM CA of the proxy (default: KUBEGATE_CA_DATA, else the one `kubegate login` was given, else the system roots)');
}

function withOutput(command: Command): Command {
  return command.addOption(new Option('-o, --output <format>', 'output format').choices([...OUTPUT_FORMATS]).default('table'));
}

const USER_ID = /^u-[a-z2-7]{12}$/;

function itemsOf(body: unknown): Row[] {
  const items = (body as { items?: unknown } | undefined)?.items;
  return Array.isArray(items) ? (items as Row[]) : [];
}

/** One path segment, percent-encoded (group names may hold `/`). */
function path(segment: string): string {
  return encodeURIComponent(segment);
}

/** A user's ID from a username or ID (GET /v1/users: admins only). */
async function userIdOf(session: AdminSession, nameOrId: string): Promise<string> {
  if (USER_ID.test(nameOrId)) return nameOrId;
  const users = itemsOf((await session.call('GET', '/v1/users')).body);
  const user = users.find((candidate) => candidate['username'] === nameOrId);
  if (user === undefined) throw new KubegateError('NOT_FOUND', `no user is called ${JSON.stringify(nameOrId)}`);
  return String(user['id']);
}

/** Exactly one of --user and --group, as a membership subject. */
async function subjectOf(session: AdminSession, flags: Flags): Promise<{ kind: 'User' | 'Group'; name: string }> {
  const user = flags['user'] as string | undefined;
  const group = flags['group'] as string | undefined;
  if ((user === undefined) === (group === undefined)) throw new KubegateError('BAD_REQUEST', 'give exactly one of --user and --group', { field: 'user' });
  return user !== undefined ? { kind: 'User', name: await userIdOf(session, user) } : { kind: 'Group', name: group! };
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A password from the environment variable `variable`, else a prompt; never a flag. */
async function secretFrom(deps: ConnectionDeps, variable: string, question: string, field: string, alternatives = ''): Promise<string> {
  const fromEnv = deps.env[variable];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (deps.prompter === undefined) throw new KubegateError('BAD_REQUEST', `no password: use ${alternatives}${variable} (no terminal to ask on)`, { field });
  return deps.prompter.readSecret(question);
}

/** A new password: --password-stdin, else KUBEGATE_NEW_PASSWORD, else a prompt. */
async function newPassword(flags: Flags, deps: ConnectionDeps, question = 'Password for the new user: '): Promise<string> {
  if (flags['passwordStdin'] === true) return (await readAllStdin()).replace(/\r?\n$/, '');
  return secretFrom(deps, 'KUBEGATE_NEW_PASSWORD', question, 'password', '--password-stdin or ');
}

/** A cluster's state as the table shows it: being deleted, else from the agent for agent-mode clusters, else from the probe. */
function clusterState(row: Row): string | undefined {
  if (row['state'] === 'deleting') return 'deleting';
  const agent = row['agent'] as { state?: string } | undefined;
  if (agent?.state !== undefined) return `agent ${agent.state}`;
  const status = row['status'] as { reachable?: boolean; credential?: string; checkedAt?: string | null } | undefined;
  if (status === undefined) return undefined;
  if (status.checkedAt === null) return 'not checked';
  if (status.reachable !== true) return 'unreachable';
  return status.credential === 'refused' ? 'credential refused' : 'reachable';
}

const CLUSTER_COLUMNS: readonly Column<Row>[] = [
  { header: 'ID', value: (row) => row['id'] },
  { header: 'SERVER', value: (row) => row['server'] },
  { header: 'ROLE', value: (row) => row['role'] },
  { header: 'STATE', value: clusterState },
  { header: 'VERSION', value: (row) => (row['status'] as { version?: string } | undefined)?.version },
];

/** Columns that show one field each: [header, field]. */
function fieldColumns(pairs: readonly (readonly [string, string])[]): Column<Row>[] {
  return pairs.map(([header, field]) => ({ header, value: (row: Row) => row[field] }));
}

const USER_COLUMNS = fieldColumns([['ID', 'id'], ['USERNAME', 'username'], ['EMAIL', 'email'], ['ROLE', 'globalRole'], ['ENABLED', 'enabled'], ['LOCAL', 'local']]);
const MEMBER_COLUMNS = fieldColumns([['KIND', 'kind'], ['NAME', 'name'], ['ROLE', 'role']]);
const TOKEN_COLUMNS = fieldColumns([['NAME', 'name'], ['KIND', 'kind'], ['CLUSTER', 'cluster'], ['EXPIRES', 'expiresAt'], ['LAST USED', 'lastUsedAt'], ['DESCRIPTION', 'description']]);
const WHOAMI_COLUMNS = fieldColumns([['USERNAME', 'username'], ['ID', 'id'], ['ROLE', 'globalRole'], ['PROVIDER', 'provider'], ['GROUPS', 'groups']]);
/** A provider's health field, as the table shows it. */
function providerHealth(row: Row): Partial<Record<'state' | 'checkedAt' | 'message', string | null>> {
  return (row['health'] as Partial<Record<'state' | 'checkedAt' | 'message', string | null>> | undefined) ?? {};
}
const PROVIDER_COLUMNS: readonly Column<Row>[] = [
  ...fieldColumns([['NAME', 'name'], ['TYPE', 'type'], ['LOGIN', 'login']]),
  { header: 'HEALTH', value: (row) => providerHealth(row).state },
  { header: 'CHECKED', value: (row) => providerHealth(row).checkedAt },
  { header: 'PROBLEM', value: (row) => providerHealth(row).message },
];
const NEW_TOKEN_COLUMNS = fieldColumns([['NAME', 'name'], ['EXPIRES', 'expiresAt'], ['CLUSTER', 'cluster'], ['TOKEN', 'token']]);

/** Registers the admin commands on `program`; `deps` is made per run (terminal, cache). */
export function addAdminCommands(program: Command, tokenCommand: Command, deps: () => ConnectionDeps): void {
  const out = (text: string): void => void process.stdout.write(text);
  const err = (text: string): void => void process.stderr.write(text);
  /** The action, with a session opened from the command's own and its parents' flags. */
  const run =
    (action: (session: AdminSession, flags: Flags, args: string[]) => Promise<void>) =>
    async (...received: unknown[]): Promise<void> => {
      const command = received[received.length - 1] as Command;
      const flags = command.optsWithGlobals<Flags>();
      parseOutputFormat(flags['output'] as string | undefined);
      const session = await openAdminSession(flags, deps());
      await action(session, flags, command.args);
    };
  const format = (flags: Flags) => parseOutputFormat(flags['output'] as string | undefined);

  withOutput(withConnection(program.command('whoami')))
    .description('Show who the cached login is (GET /v1/me).')
    .action(
      run(async (session, flags) => {
        const me = (await session.call('GET', '/v1/me')).body as Row;
        out(formatOutput(format(flags), me, [me], WHOAMI_COLUMNS));
      }),
    );

  withConnection(program.command('password'))
    .description("Change your own local password (POST /v1/me/password): the current one from KUBEGATE_PASSWORD or a prompt, the new one from --password-stdin, KUBEGATE_NEW_PASSWORD or a prompt.")
    .option('--password-stdin', 'read the new password from standard input')
    .action(
      run(async (session, flags) => {
        const currentPassword = await secretFrom(deps(), 'KUBEGATE_PASSWORD', 'Current password: ', 'currentPassword');
        const replacement = await newPassword(flags, deps(), 'New password: ');
        await session.call('POST', '/v1/me/password', { currentPassword, newPassword: replacement });
        err('Password changed.\n');
      }),
    );

  const cluster = program.command('cluster').description('Register, list, show and remove clusters (admins register and remove).');
  withOutput(withConnection(cluster.command('add <id>')))
    .description('Register a cluster (POST /v1/clusters): directly reachable, from a kubeconfig context; or through an agent, printing its import command.')
    .option('--kubeconfig <file>', "kubeconfig whose context gives the API server, its CA and the proxy's credentials")
    .option('--context <name>', 'context to use (default: the current context of the file)')
    .option('--agent', 'an agent-mode cluster: print the command that installs its agent (holds a one-time registration token)')
    .option('--display-name <name>', 'name shown in lists (default: the id)')
    .action(
      run(async (session, flags, [id]) => {
        const kubeconfig = flags['kubeconfig'] as string | undefined;
        if ((kubeconfig === undefined) === (flags['agent'] !== true)) {
          throw new KubegateError('BAD_REQUEST', 'give exactly one of --kubeconfig (a directly reachable cluster) and --agent', { field: 'kubeconfig' });
        }
        const displayName = flags['displayName'] as string | undefined;
        const named = displayName === undefined ? {} : { displayName };
        if (kubeconfig === undefined) {
          const created = (await session.call('POST', '/v1/clusters', { id, mode: 'agent', ...named })).body as Row & { import: Row };
          const fmt = format(flags);
          if (fmt !== 'table') {
            out(formatOutput(fmt, created, [], []));
            return;
          }
          err(`Cluster ${id} registered. Install its agent with (valid until ${String(created.import['expiresAt'])}):\n`);
          out(`${String(created.import['commandWithCa'] ?? created.import['command'])}\n`);
          return;
        }
        const body = await clusterFromKubeconfig(kubeconfig, flags['context'] as string | undefined);
        const created = (await session.call('POST', '/v1/clusters', { id, ...body, ...named })).body as Row;
        out(formatOutput(format(flags), created, [created], CLUSTER_COLUMNS));
        const check = created['credentialCheck'] as { ok?: unknown; error?: unknown } | undefined;
        if (check !== undefined && check.ok !== true) err(`Warning: cluster ${id} is registered, but its credential check failed: ${String(check.error)}\n`);
      }),
    );
  withOutput(withConnection(cluster.command('list').alias('ls')))
    .description('List the clusters you may use (admins: all) with their state (GET /v1/clusters).')
    .action(
      run(async (session, flags) => {
        const list = itemsOf((await session.call('GET', '/v1/clusters')).body);
        const detailed = await Promise.all(list.map(async (row) => (await session.call('GET', `/v1/clusters/${path(String(row['id']))}`)).body as Row));
        out(formatOutput(format(flags), { items: detailed }, detailed, CLUSTER_COLUMNS));
      }),
    );
  withOutput(withConnection(cluster.command('get <id>')))
    .description('Show one cluster with its state (GET /v1/clusters/:id).')
    .action(
      run(async (session, flags, [id]) => {
        const found = (await session.call('GET', `/v1/clusters/${path(id!)}`)).body as Row;
        out(formatOutput(format(flags), found, [found], CLUSTER_COLUMNS));
      }),
    );
  withConnection(cluster.command('rm <id>').alias('delete'))
    .description('Remove a cluster, its memberships and the tokens scoped to it (DELETE /v1/clusters/:id), once kubegate\'s objects are removed from it.')
    .option('--force', 'forget the cluster at once without cleaning it (?force=true): only for a cluster that no longer exists')
    .action(
      run(async (session, flags, [id]) => {
        const answer = await session.call('DELETE', `/v1/clusters/${path(id!)}${flags['force'] === true ? '?force=true' : ''}`);
        if (answer.status !== 202) return err(`Cluster ${id} removed.\n`);
        const why = ((answer.body as Row | undefined)?.['sync'] as { error?: string } | undefined)?.error;
        err(
          `Cluster ${id} is being removed: nobody can use it any more, and it goes once kubegate's objects are removed from it` +
            `${why === undefined ? '' : ` (not yet: ${why})`}; the sync retries until it can. \`kubegate cluster get ${id}\` shows its state; ` +
            `for a cluster that no longer exists, \`kubegate cluster rm ${id} --force\` forgets it at once.\n`,
        );
      }),
    );

  const user = program.command('user').description('Add, list, update, disable and enable users (admins).');
  withOutput(withConnection(user.command('add <username>')))
    .description('Add a local user (POST /v1/users); the password comes from --password-stdin, KUBEGATE_NEW_PASSWORD or a prompt.')
    .option('--display-name <name>', 'display name (default: the username)')
    .option('--email <address>', 'the verified e-mail address you vouch for (the Kubernetes user name with identity.kubernetesUsername: email)')
    .option('--admin', 'give the global role admin')
    .option('--password-stdin', 'read the password from standard input')
    .action(
      run(async (session, flags, [username]) => {
        const password = await newPassword(flags, deps());
        const displayName = flags['displayName'] as string | undefined;
        const email = flags['email'] as string | undefined;
        const created = (
          await session.call('POST', '/v1/users', {
            username,
            password,
            globalRole: flags['admin'] === true ? 'admin' : 'user',
            ...(displayName === undefined ? {} : { displayName }),
            ...(email === undefined ? {} : { email }),
          })
        ).body as Row;
        out(formatOutput(format(flags), created, [created], fieldColumns([['ID', 'id'], ['USERNAME', 'username']])));
      }),
    );
  withOutput(withConnection(user.command('list').alias('ls')))
    .description('List users (GET /v1/users).')
    .action(
      run(async (session, flags) => {
        const body = (await session.call('GET', '/v1/users')).body;
        out(formatOutput(format(flags), body, itemsOf(body), USER_COLUMNS));
      }),
    );
  withOutput(withConnection(user.command('update <user>')))
    .description("Change a user's display name or e-mail address, by username or ID (PATCH /v1/users/:id).")
    .option('--display-name <name>', 'the new display name')
    .option('--email <address>', 'the verified e-mail address you vouch for')
    .option('--no-email', 'remove the recorded e-mail address')
    .action(
      run(async (session, flags, [nameOrId]) => {
        const displayName = flags['displayName'] as string | undefined;
        const email = flags['email'] as string | false | undefined;
        if (displayName === undefined && email === undefined) throw new KubegateError('BAD_REQUEST', 'give --display-name, --email or --no-email', { field: 'email' });
        const id = await userIdOf(session, nameOrId!);
        const updated = (
          await session.call('PATCH', `/v1/users/${path(id)}`, {
            ...(displayName === undefined ? {} : { displayName }),
            ...(email === undefined ? {} : { email: email === false ? null : email }),
          })
        ).body as Row;
        out(formatOutput(format(flags), updated, [updated], USER_COLUMNS));
      }),
    );
  for (const [name, enabled] of [['disable', false], ['enable', true]] as const) {
    withConnection(user.command(`${name} <user>`))
      .description(`${enabled ? 'Enable' : 'Disable'} a user by username or ID (PATCH /v1/users/:id)${enabled ? '' : '; their tokens stop working at once'}.`)
      .action(
        run(async (session, _flags, [nameOrId]) => {
          const id = await userIdOf(session, nameOrId!);
          await session.call('PATCH', `/v1/users/${path(id)}`, { enabled });
          err(`User ${nameOrId} ${name}d.\n`);
        }),
      );
  }

  const member = program.command('member').description("Manage a cluster's members (admins and the cluster's owners).");
  withOutput(withConnection(member.command('add <cluster>')))
    .description('Add or change a member (POST /v1/clusters/:id/members).')
    .option('--user <user>', 'a user, by username (admins) or ID')
    .option('--group <group>', 'a group as identities carry it, e.g. ldap:cn=ops,ou=groups,dc=example')
    .addOption(new Option('--role <role>', 'role in the cluster').choices(['owner', 'member', 'viewer']).default('member'))
    .action(
      run(async (session, flags, [clusterId]) => {
        const subject = await subjectOf(session, flags);
        const created = (await session.call('POST', `/v1/clusters/${path(clusterId!)}/members`, { ...subject, role: flags['role'] })).body as Row;
        out(formatOutput(format(flags), created, [created], MEMBER_COLUMNS));
      }),
    );
  withOutput(withConnection(member.command('list <cluster>').alias('ls')))
    .description('List the members of a cluster (GET /v1/clusters/:id/members).')
    .action(
      run(async (session, flags, [clusterId]) => {
        const body = (await session.call('GET', `/v1/clusters/${path(clusterId!)}/members`)).body;
        out(formatOutput(format(flags), body, itemsOf(body), MEMBER_COLUMNS));
      }),
    );
  withConnection(member.command('rm <cluster>').alias('delete'))
    .description('Remove a member (DELETE /v1/clusters/:id/members/:kind/:name).')
    .option('--user <user>', 'a user, by username (admins) or ID')
    .option('--group <group>', 'a group as identities carry it')
    .action(
      run(async (session, flags, [clusterId]) => {
        const subject = await subjectOf(session, flags);
        await session.call('DELETE', `/v1/clusters/${path(clusterId!)}/members/${path(subject.kind)}/${path(subject.name)}`);
        err(`${subject.kind} ${subject.name} removed from ${clusterId}.\n`);
      }),
    );

  withOutput(withConnection(tokenCommand.command('create')))
    .description('Create an API token (POST /v1/tokens); its secret is printed this once.')
    .option('--ttl <duration>', 'lifetime, e.g. 12h or 30d (default: the proxy default)')
    .option('--cluster <id>', 'valid on this cluster only')
    .option('--description <text>', 'what it is for')
    .action(
      run(async (session, flags) => {
        const body: Record<string, unknown> = {};
        for (const key of ['ttl', 'cluster', 'description'] as const) if (typeof flags[key] === 'string') body[key] = flags[key];
        const created = (await session.call('POST', '/v1/tokens', body)).body as Row;
        out(formatOutput(format(flags), created, [created], NEW_TOKEN_COLUMNS));
      }),
    );
  withOutput(withConnection(tokenCommand.command('list').alias('ls')))
    .description('List your tokens (GET /v1/tokens), never their secrets.')
    .option('--user <user>', "admins: another user's tokens, by username or ID")
    .action(
      run(async (session, flags) => {
        const userFlag = flags['user'] as string | undefined;
        const query = userFlag === undefined ? '' : `?userId=${encodeURIComponent(await userIdOf(session, userFlag))}`;
        const body = (await session.call('GET', `/v1/tokens${query}`)).body;
        out(formatOutput(format(flags), body, itemsOf(body), TOKEN_COLUMNS));
      }),
    );
  withConnection(tokenCommand.command('revoke <name>'))
    .description('Revoke a token by name (DELETE /v1/tokens/:name); effective on the next request.')
    .action(
      run(async (session, _flags, [name]) => {
        await session.call('DELETE', `/v1/tokens/${path(name!)}`);
        err(`Token ${name} revoked.\n`);
      }),
    );

  const provider = program.command('provider').description('Identity providers and their health (admins).');
  withOutput(withConnection(provider.command('list').alias('ls')))
    .description("List the identity providers with their last background health check (GET /v1/providers; health needs the global role admin).")
    .action(
      run(async (session, flags) => {
        const body = (await session.call('GET', '/v1/providers')).body;
        const items = itemsOf(body);
        if (items.some((row) => row['health'] === undefined)) throw new KubegateError('FORBIDDEN', 'provider health is shown to admins only');
        out(formatOutput(format(flags), body, items, PROVIDER_COLUMNS));
      }),
    );

  withConnection(program.command('kubeconfig <cluster>'))
    .description('Print a kubeconfig for a cluster (GET /v1/clusters/:id/kubeconfig): kubegate kubeconfig dev > dev.yaml')
    .option('--exec', 'use the kubegate exec plugin instead of embedding a token')
    .option('--ttl <duration>', 'lifetime of the embedded token (default: the proxy default)')
    .option('--ace', 'make the authorized cluster endpoint the current context')
    .action(
      run(async (session, flags, [clusterId]) => {
        const query = new URLSearchParams();
        if (flags['exec'] === true) query.set('auth', 'exec');
        if (typeof flags['ttl'] === 'string') query.set('ttl', flags['ttl']);
        if (flags['ace'] === true) query.set('context', 'ace');
        const response = await session.call('GET', `/v1/clusters/${path(clusterId!)}/kubeconfig${query.size === 0 ? '' : `?${query.toString()}`}`);
        out(String(response.text));
      }),
    );
}
