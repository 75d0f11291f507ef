/** The worker pool as the scheduler's `Runtime` (LocalPoolExecutor's threads and processes). */
import type { Attempt, Runtime, RuntimeHost } from '../../core/runtime.js';
import type { Boundary } from '../../core/values.js';
import type { WorkerPoolOptions } from './pool-task.js';
import { WorkerPool } from './workers.js';

/**
 * The pool as the scheduler's `Runtime`: attempts are its tasks, and a timed attempt has its
 * start reported by the worker (its timeout clock starts then) rather than inferred.
 */
export class WorkerPoolRuntime implements Runtime {
  readonly boundary: Boundary;
  readonly immediate = false;
  readonly #pool: WorkerPool<Attempt>;

  constructor(options: WorkerPoolOptions) {
    this.#pool = new WorkerPool(options);
    this.boundary = this.#pool.boundary;
  }

  start(host: RuntimeHost): Promise<void> {
    return this.#pool.start(host);
  }

  capacity(): number {
    return this.#pool.capacity();
  }

  run(attempt: Attempt): void {
    this.#pool.run(attempt, attempt.timeoutMs !== undefined);
  }

  abort(attempt: Attempt, reason: Error, graceMs: number): void {
    this.#pool.abort(attempt, reason, graceMs);
  }

  explain(attempt: Attempt): string | undefined {
    return this.#pool.explain(attempt);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
