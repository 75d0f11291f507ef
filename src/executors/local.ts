/**
 * LocalExecutor: runs each task immediately in the caller, the default executor.
 */
import { InlineRuntime } from '../pool/runtimes/inline.js';
import { BaseExecutor, type DashboardOption, type EngineSettings } from './base.js';

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
  /** Acquires nothing until `start()`. `dashboard`: serve a live view of the work while started. */
  constructor(options: { dashboard?: DashboardOption } = {}) {
    super(options);
  }

  protected get label(): string {
    return 'LocalExecutor';
  }

  protected createEngine(): EngineSettings {
    return {
      runtime: new InlineRuntime({ concurrency: Infinity, immediate: true }),
      resources: undefined,
      graceMs: 1000,
    };
  }
}
