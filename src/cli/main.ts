#!/usr/bin/env node
/**
 * The `weft` command: `run` a job on an executor, join a cluster as a `worker`, or watch one on a
 * `dashboard`.
 */
import { Command, InvalidArgumentError } from 'commander';
import { executorNames } from '../core/config.js';
import { WeftError } from '../core/errors.js';
import { CliError, runCommand } from './run.js';
import { workerCommand } from './worker-command.js';
import { dashboardCommand } from './dashboard-command.js';

const program = new Command();
program
  .name('weft')
  .description(
    'Run tasks on pluggable executors: in the caller, on worker threads, child processes, or a cluster.',
  )
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

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
    (value) => {
      if (!(executorNames as readonly string[]).includes(value)) {
        throw new InvalidArgumentError(
          `unknown executor '${value}'. Valid executors: ${executorNames.join(', ')}.`,
        );
      }
      return value;
    },
  )
  .option(
    '--address <url>',
    'redis:// URL of a cluster, for --executor distributed (default: WEFT_ADDRESS, else a local cluster)',
  )
  .option('--workers <n>', 'number of workers (pools and local clusters)')
  .option('--dashboard', 'serve a live dashboard on 127.0.0.1 while the job runs')
  .option('--port <n>', 'dashboard port (default: a free one)')
  .action((file: string, options: Parameters<typeof runCommand>[1]) => runCommand(file, options));

program
  .command('worker')
  .description(
    'join a cluster and run its tasks until SIGINT/SIGTERM, then finish running tasks and leave',
  )
  .option('--address <url>', 'redis:// or rediss:// URL of the cluster (default: WEFT_ADDRESS)')
  .option('--concurrency <n>', 'tasks run at once (default 1)')
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
  .action((options: Parameters<typeof workerCommand>[0]) => workerCommand(options));

program
  .command('dashboard')
  .description('serve a live dashboard of a running cluster on 127.0.0.1')
  .requiredOption('--address <url>', 'redis:// or rediss:// URL of the cluster')
  .option('--port <n>', 'port (default: a free one)')
  .option('--prefix <prefix>', 'Redis key prefix of the cluster (default weft)')
  .action((options: Parameters<typeof dashboardCommand>[0]) => dashboardCommand(options));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CliError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    const file = program.args[0] === 'run' ? program.args[1] : undefined;
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const prefix = file ? `weft run: ${file} failed: ` : `weft ${program.args[0] ?? ''}: `;
    process.stderr.write(`${prefix}${what}\n`);
    if (process.env.WEFT_DEBUG && error instanceof Error && error.stack)
      process.stderr.write(`${error.stack}\n`);
    process.exitCode = error instanceof WeftError && error.code === 'CONFIGURATION' ? 2 : 1;
  }
}
