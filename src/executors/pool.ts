/**
 * LocalPoolExecutor: a pool on this machine, serial in the caller, on worker threads, or on child
 * processes.
 */
import { ConfigurationError } from '../core/errors.js';
import { defaultWorkers, parseWorkers } from '../core/config.js';
import { parseResources } from '../core/resources.js';
import {
  checkOptionKeys,
  checkOptionsObject,
  describeOption,
  optionDefaults,
  optionKeys,
  parseConcurrency,
} from '../core/options.js';
import { InlineRuntime } from '../pool/runtimes/inline.js';
import { WorkerPoolRuntime } from '../pool/runtimes/pool-runtime.js';
import { BaseExecutor, type DashboardOption, type EngineSettings } from './base.js';

/** Options of `LocalPoolExecutor`. */
export interface LocalPoolExecutorOptions {
  /**
   * Where tasks run: `'synchronous'` (one at a time in the caller's thread, in submission and
   * dependency order: the deterministic choice for debugging), `'threads'` (worker threads, the
   * default) or `'processes'` (child processes).
   */
  scheduler?: 'synchronous' | 'threads' | 'processes';
  /** Number of workers (default `WEFT_WORKERS`, else `os.availableParallelism()`); ignored by `'synchronous'`. */
  workers?: number;
  /**
   * Tasks in flight per worker, a positive integer (default 1). Tasks on one worker interleave at
   * their awaits, so CPU-bound work scales with `workers` and I/O-bound work with
   * `workers x concurrency`. The `'synchronous'` scheduler runs one task at a time: any other
   * value there is a `ConfigurationError`.
   * @example
   * new LocalPoolExecutor({ workers: 2, concurrency: 50 }); // up to 100 fetches at once
   */
  concurrency?: number;
  /**
   * Pool-wide resource totals, e.g. `{ GPU: 1 }`: tasks needing resources run only while the pool
   * has them free. A task needing a resource the pool lacks fails at `submit` with
   * `ResourceUnavailableError`. Default: no resources (tasks that need none run freely).
   */
  resources?: Record<string, number>;
  /** Milliseconds a cancelled or timed-out task may ignore its AbortSignal before its worker is stopped (default 1000). */
  graceMs?: number;
  /** Per-worker memory limits; a worker that exceeds them dies and its task fails with `WorkerCrashedError`. */
  resourceLimits?: PoolResourceLimits;
  /** Serve a live dashboard on 127.0.0.1 while started; `{ port, host }` to choose where. */
  dashboard?: DashboardOption;
}

/** Per-worker memory limits of `LocalPoolExecutor`, in MiB (Node's `resourceLimits`; threads and processes alike). */
export interface PoolResourceLimits {
  /** Old-generation heap; past it the worker dies out of memory. */
  maxOldGenerationSizeMb?: number;
  /** Young-generation heap. */
  maxYoungGenerationSizeMb?: number;
  /** Stack size of the worker's main thread. */
  stackSizeMb?: number;
}

const schedulers = ['synchronous', 'threads', 'processes'] as const;
const poolKeys = optionKeys<LocalPoolExecutorOptions>({
  scheduler: true,
  workers: true,
  concurrency: true,
  resources: true,
  graceMs: true,
  resourceLimits: true,
  dashboard: true,
});
const limitKeys = optionKeys<PoolResourceLimits>({
  maxOldGenerationSizeMb: true,
  maxYoungGenerationSizeMb: true,
  stackSizeMb: true,
});

/**
 * Runs tasks on a pool on this machine. Tasks defined with `task()` at the top level of a module
 * run in workers by loading their module (TypeScript too, through tsx); plain functions travel by
 * source and must not use variables from outside. A worker that dies mid-task fails that task
 * with `WorkerCrashedError` (or retries it) and is replaced.
 * @example
 * await using pool = await new LocalPoolExecutor({ scheduler: 'processes', workers: 4 }).start();
 * const sizes = await pool.wait(pool.map(compress, files));
 */
export class LocalPoolExecutor extends BaseExecutor {
  readonly #scheduler: 'synchronous' | 'threads' | 'processes';
  readonly #workers: number | undefined;
  readonly #concurrency: number;
  readonly #resources: Record<string, number> | undefined;
  readonly #graceMs: number;
  readonly #limits: LocalPoolExecutorOptions['resourceLimits'];

  /**
   * Validates the options (throws `ConfigurationError` for an unknown key or a bad value);
   * acquires nothing until `start()`.
   */
  constructor(options: LocalPoolExecutorOptions = {}) {
    checkOptionsObject(options, 'LocalPoolExecutor');
    checkOptionKeys(options, poolKeys, 'LocalPoolExecutor');
    super(options, 'LocalPoolExecutor');
    const scheduler = options.scheduler ?? optionDefaults.scheduler;
    if (!(schedulers as readonly string[]).includes(scheduler)) {
      throw new ConfigurationError(
        `LocalPoolExecutor scheduler ${JSON.stringify(scheduler)} is not one weft knows. Use one of: ${schedulers.join(', ')}.`,
      );
    }
    this.#scheduler = scheduler;
    this.#workers =
      options.workers === undefined
        ? undefined
        : parseWorkers(options.workers, 'LocalPoolExecutor workers');
    this.#concurrency =
      options.concurrency === undefined
        ? optionDefaults.poolConcurrency
        : parseConcurrency(options.concurrency, 'LocalPoolExecutor concurrency', false);
    if (scheduler === 'synchronous' && this.#concurrency !== 1) {
      throw new ConfigurationError(
        `LocalPoolExecutor concurrency is ${this.#concurrency}, but the 'synchronous' scheduler runs one task at a time. Leave concurrency out (or 1), or use scheduler 'threads' or 'processes'.`,
      );
    }
    this.#resources = parseResources(options.resources, 'LocalPoolExecutor resources');
    const graceMs = options.graceMs ?? optionDefaults.graceMs;
    if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0) {
      throw new ConfigurationError(
        `LocalPoolExecutor graceMs must be a non-negative number of milliseconds, got ${String(graceMs)}.`,
      );
    }
    this.#graceMs = graceMs;
    const limits = options.resourceLimits;
    if (limits !== undefined) {
      if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
        throw new ConfigurationError(
          `LocalPoolExecutor resourceLimits must be an object like { maxOldGenerationSizeMb: 512 }, got ${describeOption(limits)}.`,
        );
      }
      checkOptionKeys(limits, limitKeys, 'LocalPoolExecutor resourceLimits');
      for (const [key, value] of Object.entries(limits)) {
        if (value !== undefined && (typeof value !== 'number' || !(value > 0))) {
          throw new ConfigurationError(
            `LocalPoolExecutor resourceLimits.${key} must be a positive number of MiB, got ${String(value)}.`,
          );
        }
      }
    }
    this.#limits = limits;
  }

  /** The scheduler this pool uses. */
  get scheduler(): 'synchronous' | 'threads' | 'processes' {
    return this.#scheduler;
  }

  protected get label(): string {
    return `LocalPoolExecutor (${this.#scheduler})`;
  }

  protected createEngine(): EngineSettings {
    const runtime =
      this.#scheduler === 'synchronous'
        ? new InlineRuntime({ concurrency: 1, immediate: false })
        : new WorkerPoolRuntime({
            scheduler: this.#scheduler,
            workers: this.#workers ?? defaultWorkers(),
            concurrency: this.#concurrency,
            ...this.#limits,
          });
    return { runtime, resources: this.#resources ?? {}, graceMs: this.#graceMs };
  }
}
