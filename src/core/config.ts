/**
 * Configuration from the environment. Options given in code win; else `WEFT_*` variables; else
 * the defaults.
 */
import { availableParallelism } from 'node:os';
import { ConfigurationError } from './errors.js';
import { parseConcurrencyText, parseFlag } from './options.js';

/** Executor names `WEFT_EXECUTOR` and `weft run --executor` accept. */
export const executorNames = [
  'local',
  'synchronous',
  'threads',
  'processes',
  'distributed',
] as const;
export type ExecutorName = (typeof executorNames)[number];

export interface EnvironmentConfig {
  executor: ExecutorName | undefined;
  address: string | undefined;
  workers: number | undefined;
  /** `WEFT_CONCURRENCY`: a positive integer, or `Infinity` (which only `LocalExecutor` takes). */
  concurrency: number | undefined;
  debug: boolean;
}

/**
 * Reads `WEFT_EXECUTOR`, `WEFT_ADDRESS`, `WEFT_WORKERS`, `WEFT_CONCURRENCY` and `WEFT_DEBUG`;
 * throws `ConfigurationError` on bad values. `WEFT_DEBUG` is on for 1, true, yes, on; off for
 * 0, false, no, off or empty; anything else is an error (see `parseFlag`).
 */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentConfig {
  const executor = env.WEFT_EXECUTOR?.trim() || undefined;
  if (executor !== undefined) parseExecutorName(executor, 'WEFT_EXECUTOR');
  const workers = env.WEFT_WORKERS?.trim()
    ? parseWorkers(env.WEFT_WORKERS.trim(), 'WEFT_WORKERS')
    : undefined;
  const concurrency = env.WEFT_CONCURRENCY?.trim()
    ? parseConcurrencyText(env.WEFT_CONCURRENCY, 'WEFT_CONCURRENCY', true)
    : undefined;
  return {
    executor: executor as ExecutorName | undefined,
    address: env.WEFT_ADDRESS?.trim() || undefined,
    workers,
    concurrency,
    debug: parseFlag(env.WEFT_DEBUG, 'WEFT_DEBUG'),
  };
}

export function parseExecutorName(value: string, source: string): ExecutorName {
  if (!(executorNames as readonly string[]).includes(value)) {
    throw new ConfigurationError(
      `${source} is ${JSON.stringify(value)}, which is not an executor weft knows. Use one of: ${executorNames.join(', ')}.`,
    );
  }
  return value as ExecutorName;
}

/** Validates a worker count (a positive integer). */
export function parseWorkers(value: unknown, source: string): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new ConfigurationError(
      `${source} must be a positive integer (the number of workers), got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}.`,
    );
  }
  return n;
}

export function defaultWorkers(): number {
  return readEnvironment().workers ?? availableParallelism();
}
