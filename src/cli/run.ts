/**
 * `weft run <file>`: starts an executor, calls the module's default export with it, prints what
 * it returns, shuts the executor down, and shows progress meanwhile.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { ConfigurationError } from '../core/errors.js';
import { importModule } from '../core/modules.js';
import { parseExecutorName, parseWorkers, readEnvironment } from '../core/config.js';
import { parseConcurrencyText } from '../core/options.js';
import type { ExecutorName } from '../core/config.js';
import type { Executor } from '../core/types.js';
import { LocalExecutor } from '../executors/local.js';
import { LocalPoolExecutor } from '../executors/pool.js';
import { DistributedExecutor } from '../executors/distributed.js';
import { defaultExecutor } from '../executors/default.js';
import type { DashboardOption } from '../executors/base.js';
import { progress } from '../progress/progress.js';
import { describeFailure, formatError } from './report.js';

/** Options of `weft run`, as commander hands them over (strings, unvalidated). */
export interface RunOptions {
  executor?: string;
  address?: string;
  workers?: string;
  concurrency?: string;
  dashboard?: boolean;
  port?: string;
}

/** A failure `main` prints as it is (the full error too with WEFT_DEBUG), then exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

type Job = (executor: Executor) => unknown;

/** Exit code of a run stopped by Ctrl-C, as shells report a SIGINT death. */
const interruptedExitCode = 130;

export async function runCommand(file: string, options: RunOptions): Promise<void> {
  const path = resolve(process.cwd(), file);
  if (!existsSync(path)) {
    throw new CliError(`weft run: ${file}: no such file (looked for ${path}).`, 2);
  }
  if (statSync(path).isDirectory()) {
    throw new CliError(`weft run: ${file} is a directory; give the job's module file.`, 2);
  }
  const { executor, name } = makeExecutor(options);
  const job = await loadJob(path, file);

  try {
    await executor.start();
  } catch (error) {
    throw new CliError(
      `weft run: could not start the ${name} executor: ${formatError(error)}`,
      error instanceof ConfigurationError ? 2 : 1,
      { cause: error },
    );
  }

  // First Ctrl-C: cancel what is queued and abort what runs; the second one quits at once. Not
  // for executors that run tasks in this thread: a listener would only delay Ctrl-C until a
  // CPU-bound task yields, while Node's default handling ends the process at once.
  const inCaller = name === 'local' || name === 'synchronous';
  let interrupted = false;
  const onInterrupt = (): void => {
    if (interrupted) process.exit(interruptedExitCode);
    interrupted = true;
    process.stderr.write(
      '\nweft run: interrupted; cancelling tasks (press Ctrl-C again to quit at once)\n',
    );
    void executor.shutdown({ cancelPending: true }).catch(() => undefined);
  };
  if (!inCaller) process.on('SIGINT', onInterrupt);

  const stopBar = new AbortController();
  // The bar follows the executor until shutdown, so tasks the job left running are counted too.
  const bar = progress(executor, { signal: stopBar.signal });
  let result: unknown;
  let failure: { error: unknown } | undefined;
  try {
    result = await job(executor);
  } catch (error) {
    failure = { error };
  }
  try {
    // A failed job's remaining tasks have nobody to report to: cancel them rather than wait.
    await executor.shutdown({ cancelPending: failure !== undefined });
  } catch (error) {
    failure ??= { error };
  } finally {
    stopBar.abort();
    await bar;
    process.off('SIGINT', onInterrupt);
  }

  if (interrupted) {
    throw new CliError(`weft run: ${file} interrupted.`, interruptedExitCode);
  }
  if (failure) {
    const described = await describeFailure(failure.error, path);
    throw new CliError(`weft run: ${file} failed: ${described}`, 1, {
      cause: failure.error,
    });
  }
  if (result !== undefined) {
    const text =
      typeof result === 'string'
        ? result
        : inspect(result, { depth: 6, colors: process.stdout.isTTY === true });
    process.stdout.write(`${text}\n`);
  }
}

function makeExecutor(options: RunOptions): { executor: Executor; name: ExecutorName } {
  const workers =
    options.workers === undefined ? undefined : parseWorkers(options.workers, '--workers');
  const dashboard = parseDashboard(options);
  const env = readEnvironment();
  let name: ExecutorName;
  if (options.executor !== undefined) {
    name = parseExecutorName(options.executor, '--executor');
  } else if (options.address !== undefined && env.executor === undefined) {
    name = 'distributed'; // an address names a cluster: nothing else could use it
  } else {
    name = env.executor ?? 'local';
    const flags = [workers, options.concurrency, dashboard, options.address];
    if (flags.every((flag) => flag === undefined)) return { executor: defaultExecutor(), name };
  }
  const concurrency = concurrencyFor(name, options.concurrency, env.concurrency);
  if (options.address !== undefined && name !== 'distributed') {
    throw new ConfigurationError(
      `--address is for --executor distributed, but the executor is ${name}. Drop --address or add --executor distributed.`,
    );
  }
  if (workers !== undefined && (name === 'local' || name === 'synchronous')) {
    process.stderr.write(
      `weft run: --workers has no effect on the ${name} executor, which runs tasks in this thread; use --executor threads or processes to run them in parallel.\n`,
    );
  }
  const address = options.address ?? env.address;
  if (name === 'distributed' && address !== undefined) {
    for (const [flag, given] of [
      ['--workers', options.workers],
      ['--concurrency', options.concurrency],
    ] as const) {
      if (given === undefined) continue;
      process.stderr.write(
        `weft run: ${flag} has no effect on a running cluster (${address === options.address ? '--address' : 'WEFT_ADDRESS'}), whose workers were started with their own; pass it to weft worker, or drop the address to start a local cluster.\n`,
      );
    }
  }
  return { executor: construct(name, { workers, concurrency, dashboard, address }), name };
}

/**
 * `--concurrency`, else `WEFT_CONCURRENCY`, checked against the executor it is for: `Infinity`
 * only on `local`, nothing but 1 on `synchronous`.
 */
function concurrencyFor(
  name: ExecutorName,
  flag: string | undefined,
  fromEnvironment: number | undefined,
): number | undefined {
  const source = flag === undefined ? 'WEFT_CONCURRENCY' : '--concurrency';
  const value =
    flag === undefined ? fromEnvironment : parseConcurrencyText(flag, source, name === 'local');
  if (value === undefined) return undefined;
  if (value === Number.POSITIVE_INFINITY && name !== 'local') {
    throw new ConfigurationError(
      `${source} is Infinity, which only the local executor takes; the ${name} executor needs a positive integer (tasks in flight per worker).`,
    );
  }
  if (name === 'synchronous' && value !== 1) {
    throw new ConfigurationError(
      `${source} is ${value}, but the synchronous executor runs one task at a time. Leave it out (or 1), or use --executor threads or processes.`,
    );
  }
  return value;
}

interface ExecutorSettings {
  workers: number | undefined;
  concurrency: number | undefined;
  dashboard: DashboardOption | undefined;
  address: string | undefined;
}

function construct(
  name: ExecutorName,
  { workers, concurrency, dashboard, address }: ExecutorSettings,
): Executor {
  const common = {
    ...(dashboard === undefined ? {} : { dashboard }),
    ...(concurrency === undefined ? {} : { concurrency }),
  };
  switch (name) {
    case 'local':
      return new LocalExecutor(common);
    case 'synchronous':
    case 'threads':
    case 'processes':
      return new LocalPoolExecutor({
        scheduler: name,
        ...(workers === undefined ? {} : { workers }),
        ...common,
      });
    case 'distributed':
      return new DistributedExecutor({
        ...(address === undefined ? {} : { address }),
        ...(workers === undefined ? {} : { workers }),
        ...common,
      });
  }
}

function parseDashboard(options: RunOptions): DashboardOption | undefined {
  if (!options.dashboard) {
    if (options.port !== undefined) {
      throw new ConfigurationError('--port is the dashboard port: add --dashboard to serve one.');
    }
    return undefined;
  }
  if (options.port === undefined) return true;
  const port = /^\d+$/.test(options.port) ? Number(options.port) : NaN;
  if (!Number.isInteger(port) || port > 65535) {
    throw new ConfigurationError(
      `--port must be a port number (0-65535), got ${JSON.stringify(options.port)}.`,
    );
  }
  return { port };
}

/** Imports the job module and returns its default export, or explains what is missing. */
async function loadJob(path: string, file: string): Promise<Job> {
  let module: Record<string, unknown>;
  try {
    module = (await importJob(path, file)) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof CliError) throw error;
    ignoreDuplicateRejection(error);
    const described = await describeFailure(error, path);
    throw new CliError(`weft run: ${file} could not be loaded: ${described}`, 1, {
      cause: error,
    });
  }
  let job = module.default;
  // A CommonJS build of `export default` (what tsx makes of a .ts file outside a
  // "type": "module" package) arrives as { default: { default: fn } }.
  if (typeof job === 'object' && job !== null && typeof (job as Job & object) !== 'function') {
    const inner = (job as Record<string, unknown>).default;
    if (typeof inner === 'function') job = inner;
  }
  if (typeof job !== 'function') {
    const found =
      job === undefined
        ? `it has no default export${namedExports(module)}`
        : `its default export is ${describeValue(job)}`;
    throw new CliError(
      `weft run: ${file} has no default export function (${found}). Export the job: export default async function (executor) { ... }`,
      2,
    );
  }
  return job as Job;
}

/**
 * When an ES module imports a CommonJS module that does not compile, Node 20 rejects the
 * `import()` and, with the same error, a promise of its own that nobody handles, which would
 * print the error a second time as a crash. The process is about to report `error` and exit.
 */
function ignoreDuplicateRejection(error: unknown): void {
  process.on('unhandledRejection', (reason) => {
    if (reason !== error) throw reason;
  });
}

function namedExports(module: Record<string, unknown>): string {
  const names = Object.keys(module).filter((k) => k !== 'default');
  if (names.length === 0) return '';
  const shown = names.slice(0, 5).join(', ');
  return `, only ${shown}${names.length > 5 ? ', ...' : ''}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${inspect(value, { depth: 0 })})`;
  return `a ${typeof value} (${inspect(value)})`;
}

function importJob(path: string, file: string): Promise<unknown> {
  return importModule(
    pathToFileURL(path).href,
    (cause) =>
      new CliError(
        `weft run: ${file} is TypeScript, which weft runs through tsx, and tsx is not installed. Install it next to weft (npm i -D tsx), or compile ${file} to JavaScript and run that.`,
        2,
        { cause },
      ),
  );
}
