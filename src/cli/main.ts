#!/usr/bin/env node
/**
 * The `weft` command: `run` a job on an executor, join a cluster as a `worker`, or watch one on a
 * `dashboard`.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { Command, CommanderError } from 'commander';
import { executorNames } from '../core/config.js';
import { ConfigurationError } from '../core/errors.js';
import { CliError, runCommand } from './run.js';
import { formatError } from './report.js';
import type { WorkerCommandOptions } from './worker-command.js';

// dist/cli/main.js -> the package's own package.json.
const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

const program = new Command();
program
  .name('weft')
  .version(version, '-v, --version')
  .description(
    'Run tasks on pluggable executors: in the caller, on worker threads, child processes, or a cluster.',
  )
  // Usage errors (an unknown flag or command, a missing argument) throw instead of exiting, so
  // that they exit 2 like every other bad argument; see the catch at the end.
  .exitOverride()
  .showSuggestionAfterError();

program
  .command('run')
  .description(
    "start an executor, call the file's default export (executor) => ... with it, print what it returns",
  )
  .argument(
    '<file>',
    'module whose default export is the job (.js, .mjs, or .ts with tsx installed)',
  )
  .option(
    '--executor <name>',
    `one of ${executorNames.join(', ')} (default: WEFT_EXECUTOR, else local)`,
  )
  .option(
    '--address <url>',
    'redis:// URL of a cluster; implies --executor distributed (default: WEFT_ADDRESS, else a local cluster)',
  )
  .option(
    '--workers <n>',
    'number of workers for threads, processes and local clusters (default: WEFT_WORKERS, else one per CPU)',
  )
  .option(
    '--concurrency <n>',
    'tasks in flight per worker; on local, in all (default: WEFT_CONCURRENCY, else 1; local: no limit)',
  )
  .option('--dashboard', 'serve a live dashboard on 127.0.0.1 while the job runs')
  .option('--port <n>', 'dashboard port (default: a free one)')
  .addHelpText(
    'after',
    `
Examples:
  weft run job.js --executor threads --workers 4
  weft run crawl.js --executor threads --workers 2 --concurrency 100   async tasks share a worker
  weft run job.ts --executor processes        TypeScript jobs and tasks load through tsx
  WEFT_EXECUTOR=distributed WEFT_ADDRESS=redis://10.0.0.5:6379 weft run job.js

The job module: export default async function (executor) { return executor.wait(...); }
Exit codes: 0 done, 1 the job failed, 2 bad arguments or configuration, 130 interrupted.`,
  )
  .action((file: string, options: Parameters<typeof runCommand>[1]) => runCommand(file, options));

program
  .command('worker')
  .description(
    'join a cluster and run its tasks until SIGINT/SIGTERM, then finish running tasks and leave',
  )
  .option(
    '--address <url>',
    'redis://, rediss:// or redis+cluster:// address of the cluster (default: WEFT_ADDRESS)',
  )
  .option(
    '--concurrency <n>',
    'tasks in flight at once; async tasks share pool workers at their awaits (default 1)',
  )
  .option(
    '--pool-size <n>',
    'threads or processes that run them (default: the smaller of --concurrency and the cores)',
  )
  .option('--resources <list>', 'what this worker offers, e.g. GPU=2,mem=16')
  .option(
    '--import <module...>',
    'modules that define tasks, loaded at start (relative to the working directory)',
  )
  .option('--name <name>', 'worker name shown in events and the dashboard (default host-pid)')
  .option(
    '--no-source',
    'run only task()s from this project, refuse plain functions shipped by source',
  )
  .option('--pool <kind>', 'run tasks on threads (default) or processes')
  .option('--prefix <prefix>', 'Redis key prefix of the cluster (default weft)')
  .option(
    '--secret-file <path>',
    'run only jobs signed with a secret in this file (one per line; default: WEFT_SECRET)',
  )
  .option('--tls-ca <path>', 'CA certificate to trust for rediss:// (default: WEFT_TLS_CA)')
  .option('--tls-cert <path>', 'client certificate for mutual TLS (default: WEFT_TLS_CERT)')
  .option('--tls-key <path>', 'private key of --tls-cert (default: WEFT_TLS_KEY)')
  .option(
    '--connect-timeout-ms <ms>',
    'give up (exit 2) when Redis does not answer within this long at start (default 15000)',
  )
  // Loaded on demand: `weft run` should not pay for the cluster worker's modules.
  .action(async (options: WorkerCommandOptions) =>
    (await import('./worker-command.js')).workerCommand(options),
  );

program
  .command('dashboard')
  .description('serve a live dashboard of a running cluster on 127.0.0.1')
  .option('--address <url>', 'redis:// or rediss:// URL of the cluster (default: WEFT_ADDRESS)')
  .option('--port <n>', 'port (default: a free one)')
  .option('--prefix <prefix>', 'Redis key prefix of the cluster (default weft)')
  .option(
    '--secret-file <path>',
    'accept only task explanations signed with a secret in this file (default: WEFT_SECRET)',
  )
  .action(
    async (options: { address?: string; port?: string; prefix?: string; secretFile?: string }) =>
      (await import('./dashboard-command.js')).dashboardCommand(options),
  );

program
  .command('explain')
  .description(
    'say why a task of a live cluster is where it is: what it waits for, where it runs, how it failed',
  )
  .argument('<key>', 'the task key (Future.key, the key field of task events, the dashboard)')
  .option(
    '--address <url>',
    'redis://, rediss:// or redis+cluster:// address of the cluster (default: WEFT_ADDRESS)',
  )
  .option('--prefix <prefix>', 'Redis key prefix of the cluster (default weft)')
  .option(
    '--secret-file <path>',
    'accept only explanations signed with a secret in this file (default: WEFT_SECRET)',
  )
  .option('--json', 'print the whole explanation as JSON')
  .addHelpText(
    'after',
    `
Exit codes: 0 found (whatever the task's state), 1 unknown key, 2 bad arguments.
A task is known while the client that submitted it runs, and a failed one for a day after.`,
  )
  // Bad arguments exit 2 (commander's own default is 1).
  .exitOverride((error) => {
    if (error.exitCode === 0) process.exit(0);
    throw new CliError(error.message.replace(/^error: /, 'weft explain: '), 2);
  })
  .action(async (key: string, options: import('./explain-command.js').ExplainCommandOptions) =>
    (await import('./explain-command.js')).explainCommand(key, options),
  );

// Every command says what went wrong in its own name and points at its own help, rather than
// printing the whole help after the error.
for (const command of [program, ...program.commands]) {
  const name = command === program ? 'weft' : `weft ${command.name()}`;
  command.showHelpAfterError(`Run \`${name} --help\` for its options.`).configureOutput({
    outputError: (text, write) => write(text.replace(/^error: /, `${name}: `)),
  });
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const command = program.args[0] ?? '';
  if (error instanceof CommanderError) {
    // Commander has printed the message (or the help, or the version): 0 for those, 2 for usage.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof CliError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(`weft ${command}: ${formatError(error)}\n`);
    // Bad arguments or configuration exit 2, like a usage error; anything else 1.
    process.exitCode = error instanceof ConfigurationError ? 2 : 1;
  }
  const cause =
    error instanceof CommanderError ? undefined : error instanceof CliError ? error.cause : error;
  // Same test as readEnvironment(), which may itself be what failed.
  const debug = /^(1|true|yes|on)$/i.test(process.env.WEFT_DEBUG?.trim() ?? '');
  if (debug && cause !== undefined) {
    process.stderr.write(`WEFT_DEBUG: the error in full:\n${inspect(cause, { depth: 8 })}\n`);
  }
}
