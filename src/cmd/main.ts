#!/usr/bin/env node
/**
 * The `kubegate` command line: one binary, one subcommand per process or tool. Each
 * subcommand's wiring lives in its own file here; this file only parses arguments.
 *
 * A subcommand's module is imported when that subcommand runs, not before: a process loads
 * only its own graph (a proxy never loads the agent, the webhook or the CLI's login flow;
 * `kubegate token`, run by kubectl for every credential, never loads express or SQLite).
 * Memory and start-up time are what that saves (BENCHMARKS.md, "kubegate's memory").
 */
import { Command, CommanderError, Option } from 'commander';
import { KubegateError, isKubegateError } from '../errors.js';
import type { ConnectionDeps, ConnectionFlags } from '../cli/admin-session.js';
import { EXIT_CODES, exitCodeFor } from '../cli/exit-codes.js';
import { openBrowser, terminalPrompter } from '../cli/terminal.js';
import { createTokenCache, tokenCacheDir } from '../cli/token-cache.js';
import { addAdminCommands, withConnection } from './admin.js';
import { KUBEGATE_VERSION } from '../version.js';
import { bashCompletion } from './completion.js';
import { DEFAULT_WEBHOOK_URL, runWebhookConfig } from './webhook-config.js';

const program = new Command();
program
  .name('kubegate')
  .description('One identity for many Kubernetes clusters: authentication proxy, TokenReview webhook, cluster agent and admin CLI.')
  .version(KUBEGATE_VERSION)
  .showHelpAfterError()
  // Usage errors and --help end up in the catch below (exit 2 and 0), not in process.exit.
  .exitOverride();

program
  .command('proxy')
  .description('Run the central authentication proxy (REST API and /k8s/clusters/<id> forwarding).')
  .option('--config <file>', 'YAML configuration file')
  .option('--listen <host:port>', 'address to serve HTTPS on (default 0.0.0.0:8443)')
  .option('--data-dir <dir>', 'directory for the SQLite store, TLS material and the secret key (default ./data)')
  .option('--store-url <url>', 'postgres:// URL of a shared PostgreSQL store (default: SQLite in the data dir)')
  .option('--external-url <url>', 'https URL users reach the proxy at, put in kubeconfigs')
  .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
  .option('--workers <n>', 'worker processes sharing the listening socket (default 1)')
  .option('--metrics-listen <host:port>', 'address of the separate /metrics listener, or none (default 127.0.0.1:9464)')
  .action(async (flags: Record<string, string | undefined>) => {
    const { config, ...settings } = flags;
    const { runProxy } = await import('./proxy.js');
    await runProxy({ file: config, env: process.env, flags: settings });
  });

program
  .command('webhook')
  .description("Run the in-cluster TokenReview webhook (drop-in for Rancher's kube-api-auth).")
  .option('--config <file>', 'YAML configuration file')
  .option('--listen <host:port>', 'address to serve on (default 127.0.0.1:6440)')
  .option('--kubeconfig <file>', 'kubeconfig for the local API server (default: in-cluster)')
  .option('--namespace <name>', 'namespace of the ClusterAuthTokens (default cattle-system)')
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key for --tls-cert')
  .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
  .action(async (flags: Record<string, string | undefined>) => {
    const { config, ...settings } = flags;
    const { runWebhook } = await import('./webhook.js');
    await runWebhook({ file: config, env: process.env, flags: settings });
  });

program
  .command('agent')
  .description('Run the cluster agent: dial out to the proxy and hold a tunnel, so the proxy reaches this cluster without an inbound route.')
  .option('--config <file>', 'YAML configuration file')
  .option('--proxy-url <url>', 'https URL of the kubegate proxy (KUBEGATE_PROXY_URL)')
  .option('--proxy-ca-file <file>', "PEM CA of the proxy's certificate (default: the system roots)")
  .option('--cluster <id>', 'the cluster ID this agent serves (KUBEGATE_CLUSTER_ID)')
  .option('--agent-id <id>', 'this agent instance (default: POD_NAME, else the host name)')
  .option('--credential-secret <name>', 'Secret holding the registration token and credential (default kubegate-agent)')
  .option('--namespace <name>', "that Secret's namespace (default: POD_NAMESPACE, else kubegate-system)")
  .option('--credential-dir <dir>', 'keep the registration token and credential as files here instead of a Secret')
  .option('--api-server <url>', "this cluster's API server (default: from KUBERNETES_SERVICE_HOST/PORT)")
  .option('--api-ca-file <file>', "PEM CA of the API server (default: the service account's ca.crt)")
  .option('--api-token-file <file>', "service account token file (default: the service account's token)")
  .option('--api-server-name <name>', "TLS name to verify on the API server's certificate (default kubernetes.default.svc in a pod)")
  .option('--health-listen <host:port>', 'plain HTTP for the probes /healthz and /readyz (default 0.0.0.0:8081)')
  .option('--metrics-listen <host:port>', 'address of the separate /metrics listener, or none (default 127.0.0.1:9464)')
  .option('--metrics-bearer-token-file <file>', 'every /metrics scrape must present this token; /metrics is then on --health-listen too')
  .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
  .action(async (flags: Record<string, string | undefined>) => {
    const { config, ...settings } = flags;
    const { runAgent } = await import('./agent.js');
    await runAgent({ file: config, env: process.env, flags: settings });
  });

program
  .command('webhook-config')
  .description("Print the file for kube-apiserver's --authentication-token-webhook-config-file.")
  .option('--url <url>', 'URL of the webhook', DEFAULT_WEBHOOK_URL)
  .option('--ca-file <file>', 'PEM CA of an https webhook')
  .action((flags: { url?: string; caFile?: string }) => {
    runWebhookConfig(flags);
  });

/** What the client commands need from this process: environment, token cache, terminal. */
const clientDeps = (): ConnectionDeps => ({
  env: process.env,
  cache: createTokenCache(tokenCacheDir(process.env)),
  prompter: terminalPrompter(),
  openBrowser,
  say: (line) => process.stderr.write(`${line}\n`),
});

withConnection(program.command('login [proxy-url]'))
  .description('Log in to a kubegate proxy, cache the login token and remember the proxy (password: KUBEGATE_USERNAME/KUBEGATE_PASSWORD or a prompt).')
  .action(async (url: string | undefined, flags: ConnectionFlags) => {
    const { runLogin } = await import('./login.js');
    await runLogin(url, flags, clientDeps());
  });

// `kubegate token --server … --cluster …` is the exec credential plugin; `kubegate token
// create|list|revoke` manage API tokens (src/cmd/admin.ts).
const token = withConnection(program.command('token'))
  .description('Print an ExecCredential for a cluster (the kubeconfig exec credential plugin), or manage API tokens: create, list, revoke.')
  .option('--cluster <id>', 'the cluster the ExecCredential is for')
  .option('--jwt', "a short-lived JWT the cluster's API server verifies itself (authorized endpoint in the jwt mode)")
  .action(async (flags: ConnectionFlags & { cluster?: string; jwt?: boolean }) => {
    const { runToken } = await import('./token.js');
    await runToken(flags, clientDeps());
  });

addAdminCommands(program, token, clientDeps);

program
  .command('completion')
  .description('Print a shell completion script: source <(kubegate completion bash)')
  .argument('<shell>', 'bash')
  .action((shell: string) => {
    if (shell !== 'bash') throw new KubegateError('BAD_REQUEST', 'only bash completion is available', { field: 'shell' });
    process.stdout.write(bashCompletion(program));
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // Commander printed the usage problem (or the help) itself.
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_CODES.badInput;
    return;
  }
  if (isKubegateError(error)) {
    process.stderr.write(`kubegate: ${error.code}: ${error.message}\n`);
    process.exitCode = exitCodeFor(error);
  } else {
    process.stderr.write(`kubegate: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT_CODES.failed;
  }
});
