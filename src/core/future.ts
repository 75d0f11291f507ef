/**
 * The public `Future` handle. All state lives in the scheduler's task record; a future is one
 * reference to it, so 100,000 pending futures stay small. Its promise is made only when someone
 * awaits, so a failed task nobody awaits does not raise an unhandled rejection.
 */
import type { Future, FutureStatus } from './types.js';
import { futureSymbol } from './values.js';

/** What a future needs from its task record. */
export interface FutureSource<T> {
  readonly key: string;
  readonly status: FutureStatus;
  promise(): Promise<T>;
  cancel(): boolean;
}

/** The task record behind a weft future (undefined for foreign thenables). */

export let sourceOf: (future: unknown) => FutureSource<unknown> | undefined;

export class WeftFuture<T> implements Future<T> {
  readonly #source: FutureSource<T>;
  static {
    sourceOf = (future) => (future instanceof WeftFuture ? future.#source : undefined);
  }

  constructor(source: FutureSource<T>) {
    this.#source = source;
  }

  /** Unique per submission; starts with the task's name. */
  get key(): string {
    return this.#source.key;
  }

  /** `pending`, `running`, `finished`, `error` or `cancelled`. */
  get status(): FutureStatus {
    return this.#source.status;
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#source.promise().then(onfulfilled, onrejected);
  }

  /** Like `Promise.prototype.catch`: the task's value, or what `onrejected` makes of its error. */
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.#source.promise().catch(onrejected);
  }

  /** Like `Promise.prototype.finally`: `onfinally` runs once the task settles, either way. */
  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.#source.promise().finally(onfinally);
  }

  /** The task's value; rejects with its error. */
  result(): Promise<T> {
    return this.#source.promise();
  }

  /**
   * Cancels the task: a pending one never runs; a running one has its AbortSignal fired (and its
   * worker stopped if it ignores the signal past the grace period). Resolves `true` when this call
   * cancelled the task, `false` when it had already ended.
   */
  cancel(): Promise<boolean> {
    return Promise.resolve(this.#source.cancel());
  }

  get [Symbol.toStringTag](): string {
    return `Future ${this.key} (${this.status})`;
  }
}

Object.defineProperty(WeftFuture.prototype, futureSymbol, { value: true });
