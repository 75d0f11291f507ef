/**
 * `weft run <file>`: starts an executor, calls the module's default export with it, prints what
 * it returns, shuts the executor down, and shows progress meanwhile.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { ConfigurationError } from '../core/errors.js';
import { parseExecutorName, parseWorkers, readEnvironment } from '../core/config.js';
import type { Executor } from '../core/types.js';
import { LocalExecutor } from '../executors/local.js';
import { LocalPoolExecutor } from '../executors/pool.js';
import { DistributedExecutor } from '../executors/distributed.js';
import { defaultExecutor } from '../executors/default.js';
import type { DashboardOption } from '../executors/base.js';
import { progress } from '../progress/progress.js';

export interface RunOptions {
  executor?: string;
  address?: string;
  workers?: string;
  dashboard?: boolean;
  port?: string;
}

/** A user-facing failure: printed without a stack, exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export async function runCommand(file: string, options: RunOptions): Promise<void> {
  const path = resolve(process.cwd(), file);
  if (!existsSync(path)) {
    throw new CliError(`weft run: ${file}: no such file (looked for ${path}).`, 2);
  }
  const executor = makeExecutor(options);
  const module = (await importJob(path, file)) as { default?: unknown };
  const job = module.default;
  if (typeof job !== 'function') {
    throw new CliError(
      `weft run: ${file} has no default export function. Export the job: export default async function (executor) { ... }`,
      2,
    );
  }
  const stop = new AbortController();
  const result = await executor.start(async (ex) => {
    const bar = progress(ex, { signal: stop.signal });
    try {
      return await (job as (e: Executor) => unknown)(ex);
    } finally {
      stop.abort();
      await bar;
    }
  });
  if (result !== undefined) {
    process.stdout.write(
      `${typeof result === 'string' ? result : inspect(result, { depth: 6, colors: process.stdout.isTTY })}\n`,
    );
  }
}

function makeExecutor(options: RunOptions): Executor {
  const workers =
    options.workers === undefined ? undefined : parseWorkers(options.workers, '--workers');
  let dashboard: DashboardOption | undefined;
  if (options.dashboard) {
    const port = options.port === undefined ? undefined : Number(options.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new ConfigurationError(
        `--port must be a port number (0-65535), got ${JSON.stringify(options.port)}.`,
      );
    }
    dashboard = port === undefined ? true : { port };
  }
  const name =
    options.executor === undefined ? undefined : parseExecutorName(options.executor, '--executor');
  const env = readEnvironment();
  switch (name) {
    case undefined:
      if (workers === undefined && !dashboard && !options.address) return defaultExecutor();
      return fromName(env.executor ?? 'local', workers, dashboard, options.address ?? env.address);
    default:
      return fromName(name, workers, dashboard, options.address ?? env.address);
  }
}

function fromName(
  name: string,
  workers: number | undefined,
  dashboard: DashboardOption | undefined,
  address: string | undefined,
): Executor {
  const common = dashboard ? { dashboard } : {};
  switch (name) {
    case 'local':
      return new LocalExecutor(common);
    case 'synchronous':
    case 'threads':
    case 'processes':
      return new LocalPoolExecutor({ scheduler: name, ...(workers ? { workers } : {}), ...common });
    default:
      return new DistributedExecutor({
        ...(address ? { address } : {}),
        ...(workers ? { workers } : {}),
        ...common,
      });
  }
}

async function importJob(path: string, file: string): Promise<unknown> {
  const url = pathToFileURL(path).href;
  if (/\.[mc]?tsx?$/.test(path)) {
    let api: { tsImport: (specifier: string, parent: string) => Promise<unknown> };
    try {
      api = await import('tsx/esm/api');
    } catch {
      throw new CliError(
        `weft run: ${file} is TypeScript; install tsx to run it (npm i -D tsx).`,
        2,
      );
    }
    return api.tsImport(url, import.meta.url);
  }
  return import(url);
}
