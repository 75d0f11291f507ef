/**
 * `taskContext()`: what a running task can learn about itself. Backed by one AsyncLocalStorage
 * shared through a global symbol, because a task module loaded through tsx in a worker may get
 * its own copy of weft's modules.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { WeftError } from './errors.js';

/** What `taskContext()` returns inside a running task. */
export interface TaskContext {
  /** Aborted by `cancel()`, a timeout or `shutdown({ cancelPending: true })`. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** The future's key; the same across attempts. */
  readonly key: string;
}

const storageSymbol = Symbol.for('weft.taskContext');
const globals = globalThis as unknown as Record<symbol, AsyncLocalStorage<TaskContext> | undefined>;
const storage: AsyncLocalStorage<TaskContext> = (globals[storageSymbol] ??=
  new AsyncLocalStorage<TaskContext>());

/**
 * Returns the running task's `{ signal, attempt, key }`. Throws `WeftError` outside a task.
 * @example
 * const fetchPage = task(async (url: string) => {
 *   const { signal } = taskContext();
 *   return (await fetch(url, { signal })).text();
 * });
 */
export function taskContext(): TaskContext {
  const context = storage.getStore();
  if (!context) {
    throw new WeftError(
      'taskContext() was called outside a running task. Call it from inside a function that an executor runs (submit or map).',
    );
  }
  return context;
}

/** Runs `fn` with `context` as the current task context. */
export function runInTaskContext<R>(context: TaskContext, fn: () => R): R {
  return storage.run(context, fn);
}
