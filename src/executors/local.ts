/**
 * LocalExecutor: runs each task immediately in the caller, the default executor.
 */
import {
  checkOptionKeys,
  checkOptionsObject,
  optionDefaults,
  optionKeys,
  parseConcurrency,
} from '../core/options.js';
import { InlineRuntime } from '../pool/runtimes/inline.js';
import { BaseExecutor, type DashboardOption, type EngineSettings } from './base.js';

/** Options of `LocalExecutor`. */
export interface LocalExecutorOptions {
  /**
   * How many async tasks are in flight at once: a positive integer, or `Infinity` (the default:
   * no limit). When every slot is taken, a submitted task waits (its future is `'pending'`) and
   * starts when one frees, in priority and submission order. A synchronous task holds its slot
   * until it returns, so this only matters for tasks that await.
   * @example
   * new LocalExecutor({ concurrency: 10 }); // at most 10 fetches at a time
   */
  concurrency?: number;
  /** Serve a live dashboard on 127.0.0.1 while started; `{ port, host }` to choose where. */
  dashboard?: DashboardOption;
}

const localKeys = optionKeys<LocalExecutorOptions>({ concurrency: true, dashboard: true });

/**
 * Runs every task immediately, in the caller's thread: a synchronous task completes inside
 * `submit` (its future is already settled, errors captured in it); an async task starts inside
 * `submit` and interleaves with later ones at its awaits. Nothing is serialized, so closures work.
 * Resources are not limited here: there is no pool to share.
 * @example
 * const ex = await new LocalExecutor().start();
 * const f = ex.submit((a: number, b: number) => a + b, 1, 2); // f.status === 'finished'
 */
export class LocalExecutor extends BaseExecutor {
  readonly #concurrency: number;

  /**
   * Validates the options (throws `ConfigurationError` for an unknown key or a bad value);
   * acquires nothing until `start()`.
   */
  constructor(options: LocalExecutorOptions = {}) {
    checkOptionsObject(options, 'LocalExecutor');
    checkOptionKeys(options, localKeys, 'LocalExecutor');
    super(options, 'LocalExecutor');
    this.#concurrency =
      options.concurrency === undefined
        ? optionDefaults.localConcurrency
        : parseConcurrency(options.concurrency, 'LocalExecutor concurrency', true);
  }

  protected get label(): string {
    return 'LocalExecutor';
  }

  protected createEngine(): EngineSettings {
    return {
      runtime: new InlineRuntime({ concurrency: this.#concurrency, immediate: true }),
      resources: undefined,
      graceMs: optionDefaults.graceMs,
    };
  }
}
