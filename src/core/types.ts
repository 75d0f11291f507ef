/**
 * Public types shared by every executor. The names and shapes here are fixed by API.md.
 */
import type { TaskEvent, WorkerEvent, ExecutorEvents } from './events.js';
import type { Explanation } from './explain.js';

/** What a task's options may say. Every field is optional. */
export interface TaskOptions {
  /** Task name; defaults to the function's name. Unique within its module. */
  name?: string;
  /** Extra attempts after a failure (default 0). */
  retries?: number;
  /** Milliseconds to wait between attempts (default 0). */
  retryDelayMs?: number;
  /** An attempt running longer than this many milliseconds fails with `TaskTimeoutError`. The clock starts when the attempt starts, not when it is queued. */
  timeoutMs?: number;
  /** Free labels; tags of the form `resource:KEY=NUM` become resources. */
  tags?: string[];
  /** Abstract resources one run of the task holds, e.g. `{ GPU: 1, memoryGB: 4 }`. */
  resources?: Record<string, number>;
  /** Higher runs first among tasks that are ready at the same time (default 0); ties keep submission order. */
  priority?: number;
}

/** Any function a task can wrap. */
export type AnyFunction = (...args: any[]) => any;

declare const taskBrand: unique symbol;

/** A function wrapped by `task()`: callable like the function it wraps (calling it runs it inline). */
export type Task<F extends AnyFunction = AnyFunction> = F & {
  /** The task's name, unique within its module. */
  readonly taskName: string;
  /** The options it was defined with, resources merged from tags. */
  readonly options: Readonly<ResolvedTaskOptions>;
  readonly [taskBrand]: true;
};

/** Task options after defaults and `resource:` tags were applied. */
export interface ResolvedTaskOptions {
  name: string;
  retries: number;
  retryDelayMs: number;
  timeoutMs: number | undefined;
  tags: readonly string[];
  resources: Readonly<Record<string, number>>;
  priority: number;
}

/** The states a future goes through. */
export type FutureStatus = 'pending' | 'running' | 'finished' | 'error' | 'cancelled';

/**
 * The handle `submit` returns: a thenable with a key, a status, `result()` and `cancel()`, and
 * `catch()` and `finally()` like a Promise.
 */
export interface Future<T> extends PromiseLike<T> {
  /** Like `Promise.prototype.then`: a new promise of what the callbacks return. */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2>;
  /**
   * Like `Promise.prototype.catch`: a promise of the task's value, or of what `onrejected`
   * returns for its error. Handling the error here marks it handled (no unhandled rejection).
   */
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R>;
  /** Like `Promise.prototype.finally`: runs `onfinally` once the task settles, either way. */
  finally(onfinally?: (() => void) | null): Promise<T>;
  /** Unique per submission; starts with the task's name (`resize-3f2a...`). */
  readonly key: string;
  /** Where the task is now. */
  readonly status: FutureStatus;
  /** The task's value, or its error. */
  result(): Promise<T>;
  /**
   * Cancels the task. Pending: it is removed and never runs. Running: its AbortSignal fires and,
   * if it ignores the signal past the grace period, its worker is stopped. Resolves `true` when
   * this call cancelled it, `false` when it had already ended.
   */
  cancel(): Promise<boolean>;
}

/** A value or a future of it, also nested inside arrays and plain objects. */
export type MaybeFuture<T> =
  | T
  | Future<T>
  | (T extends readonly unknown[]
      ? { [K in keyof T]: MaybeFuture<T[K]> }
      : T extends Builtin
        ? never
        : T extends object
          ? { [K in keyof T]: MaybeFuture<T[K]> }
          : never);

/** Task arguments where each may be a future (nested too). */
export type MaybeFutures<P extends readonly unknown[]> = { [K in keyof P]: MaybeFuture<P[K]> };

declare const unmappedBrand: unique symbol;
/** A value that `map` passes unchanged to every call; made by `unmapped()`. */
export interface Unmapped<T> {
  readonly value: T;
  readonly [unmappedBrand]: true;
}

/** `map` arguments: an iterable per parameter (elements may be futures) or an `unmapped` value. */
export type Mappable<P extends readonly unknown[]> = {
  [K in keyof P]: Iterable<P[K] | Future<P[K]>> | Unmapped<MaybeFuture<P[K]>>;
};

type Builtin =
  | Date
  | RegExp
  | Map<unknown, unknown>
  | Set<unknown>
  | WeakMap<object, unknown>
  | WeakSet<object>
  | Error
  | ArrayBuffer
  | ArrayBufferView
  | PromiseLike<unknown>
  | AnyFunction;

/** The type `wait(value)` resolves to: every future in arrays, tuples and plain objects replaced by its value. */
export type Resolved<T> =
  T extends Future<infer U>
    ? U
    : T extends Builtin
      ? T
      : T extends object
        ? { [K in keyof T]: Resolved<T[K]> }
        : T;

/** Options of `shutdown()`. */
export interface ShutdownOptions {
  /** Cancel queued tasks (`TaskCancelledError`) and abort running ones instead of waiting for them. */
  cancelPending?: boolean;
}

/** The interface every executor implements. */
export interface Executor {
  /** Acquires threads, processes or connections. Throws `ExecutorStateError` when already started. */
  start(): Promise<this>;
  /** Starts, runs `body` with the executor, and always shuts down, returning what `body` returns. */
  start<T>(body: (executor: this) => T | Promise<T>): Promise<T>;
  /** Waits for submitted tasks (or cancels them with `cancelPending`), then releases everything. Idempotent. */
  shutdown(options?: ShutdownOptions): Promise<void>;
  /** `await using ex = await executor.start()` shuts down at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
  /** Submits one call; returns its future at once. */
  submit<F extends AnyFunction>(
    fn: F | Task<F>,
    ...args: MaybeFutures<Parameters<F>>
  ): Future<Awaited<ReturnType<F>>>;
  /** Calls `fn(a[i], b[i], ...)` for each index; `unmapped(x)` passes `x` to every call. */
  map<F extends AnyFunction>(
    fn: F | Task<F>,
    ...iterables: Mappable<Parameters<F>>
  ): Future<Awaited<ReturnType<F>>>[];
  /** Resolves every future inside arrays and plain objects; rejects with the first task error. */
  wait<T>(value: T): Promise<Resolved<T>>;
  /**
   * A finished future holding `value`, to pass to many tasks (`unmapped(future)` in `map`). On a
   * cluster the value is stored there once and each worker fetches it at most once while cached.
   */
  scatter<T>(value: T): Future<T>;
  /** Why a task is where it is: status, upstream keys, attempts and a few sentences of `text`. */
  explain(future: Future<unknown>): Promise<Explanation>;
  /** Task and worker events. */
  readonly events: ExecutorEvents;
  /** URL of the live dashboard, when one is running. */
  readonly dashboardUrl: string | undefined;
}

export type { TaskEvent, WorkerEvent };
