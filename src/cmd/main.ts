#!/usr/bin/env node
/**
 * The `kubegate` command line: one binary, one subcommand per process or tool. Each
 * subcommand's wiring lives in its own file here; this file only parses arguments.
 */
import { Command, Option } from 'commander';
import { isKubegateError } from '../errors.js';
import { runProxy } from './proxy.js';

const program = new Command();
program
  .name('kubegate')
  .description('One identity for many Kubernetes clusters: authentication proxy and TokenReview webhook.')
  .showHelpAfterError();

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
  .action(async (flags: Record<string, string | undefined>) => {
    const { config, ...settings } = flags;
    await runProxy({ file: config, env: process.env, flags: settings });
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (isKubegateError(error)) {
    process.stderr.write(`kubegate: ${error.code}: ${error.message}\n`);
  } else {
    process.stderr.write(`kubegate: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exitCode = 1;
});
