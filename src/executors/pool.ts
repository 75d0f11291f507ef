/**
 * LocalPoolExecutor: a pool on this machine, serial in the caller, on worker threads, or on child
 * processes.
 */
import { ConfigurationError } from '../core/errors.js';
import { defaultWorkers, parseResources, parseWorkers } from '../core/config.js';
import { InlineRuntime } from '../pool/runtimes/inline.js';
import { WorkerPoolRuntime } from '../pool/runtimes/workers.js';
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
   * Pool-wide resource totals, e.g. `{ GPU: 1 }`: tasks needing resources run only while the pool
   * has them free. A task needing a resource the pool lacks fails at `submit` with
   * `ResourceUnavailableError`. Default: no resources (tasks that need none run freely).
   */
  resources?: Record<string, number>;
  /** Milliseconds a cancelled or timed-out task may ignore its AbortSignal before its worker is stopped (default 1000). */
  graceMs?: number;
  /** Per-worker memory limits; a worker that exceeds them dies and its task fails with `WorkerCrashedError`. */
  resourceLimits?: {
    maxOldGenerationSizeMb?: number;
    maxYoungGenerationSizeMb?: number;
    stackSizeMb?: number;
  };
  /** Serve a live dashboard on 127.0.0.1 while started; `{ port, host }` to choose where. */
  dashboard?: DashboardOption;
}

const schedulers = ['synchronous', 'threads', 'processes'] as const;

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
  readonly #resources: Record<string, number> | undefined;
  readonly #graceMs: number;
  readonly #limits: LocalPoolExecutorOptions['resourceLimits'];

  /** Validates the options (throws `ConfigurationError`); acquires nothing until `start()`. */
  constructor(options: LocalPoolExecutorOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigurationError(
        `LocalPoolExecutor options must be an object, got ${String(options)}.`,
      );
    }
    super(options);
    const scheduler = options.scheduler ?? 'threads';
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
    this.#resources = parseResources(options.resources, 'LocalPoolExecutor resources');
    const graceMs = options.graceMs ?? 1000;
    if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0) {
      throw new ConfigurationError(
        `LocalPoolExecutor graceMs must be a non-negative number of milliseconds, got ${String(graceMs)}.`,
      );
    }
    this.#graceMs = graceMs;
    const limits = options.resourceLimits;
    if (limits !== undefined) {
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
            ...this.#limits,
          });
    return { runtime, resources: this.#resources ?? {}, graceMs: this.#graceMs };
  }
}
