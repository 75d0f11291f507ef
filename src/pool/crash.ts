/**
 * The errors a pool reports when one of its workers dies: what happened to the worker (exit code
 * or signal, out of memory, an uncaught exception) and, for each task it was running, which task
 * and how many shared the worker.
 */
import { WorkerCrashedError, fromEnvelope, type ErrorEnvelope } from '../core/errors.js';
import type { Scheduler, SpawnOptions } from './transports.js';

/** What is known of a worker that died. */
export interface DeadWorker {
  readonly name: string;
  readonly pid: number | undefined;
  /** The envelope of the uncaught exception it reported before it ended. */
  readonly fatal: ErrorEnvelope | undefined;
  /** The last error its thread or process emitted. */
  readonly lastError: NodeJS.ErrnoException | undefined;
}

/** Why `worker` ended with `code` or `signal`, as one error for the tasks it held. */
export function crashError(
  worker: DeadWorker,
  code: number | null,
  signal: NodeJS.Signals | null,
  options: SpawnOptions & { scheduler: Scheduler },
): WorkerCrashedError {
  const how = signal ? `was killed by signal ${signal}` : `exited with code ${code}`;
  const pid = options.scheduler === 'processes' && worker.pid ? ` (pid ${worker.pid})` : '';
  let why = '';
  let cause: unknown;
  let outOfMemory = false;
  const limit = options.maxOldGenerationSizeMb;
  if (worker.lastError?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    outOfMemory = true;
    why = ` because it ran out of memory (resourceLimits.maxOldGenerationSizeMb ${limit ?? 'default'}); raise the limit or make the task use less memory`;
    cause = worker.lastError;
  } else if (limit && (signal === 'SIGABRT' || code === 134)) {
    outOfMemory = true;
    why = `, most likely out of memory (heap limit ${limit} MiB); raise resourceLimits.maxOldGenerationSizeMb or make the task use less memory`;
  } else if (worker.fatal) {
    cause = fromEnvelope(worker.fatal);
    why = ` after an uncaught exception (${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}), e.g. one thrown in a timer or callback the task left behind`;
  } else if (worker.lastError) {
    cause = worker.lastError;
    why = ` after an error (${worker.lastError.message})`;
  }
  return new WorkerCrashedError(
    `Worker ${worker.name}${pid} ${how}${why}.`,
    { exitCode: code, signal, worker: worker.name, outOfMemory },
    cause === undefined ? undefined : { cause },
  );
}

/**
 * `crash` as the error of one task that was running on the worker; `sharing`: how many tasks
 * were running on it when it died (this one included), `concurrency`: its tasks in flight.
 */
export function blame(
  crash: WorkerCrashedError,
  task: { readonly name: string; readonly key: string; readonly number: number },
  sharing: number,
  concurrency: number,
): WorkerCrashedError {
  const running = `while running task '${task.name}' (key ${task.key}, attempt ${task.number})`;
  const message =
    sharing > 1
      ? `${crash.message.slice(0, -1)} ${running}, one of ${sharing} tasks in flight on that worker (concurrency ${concurrency}); each of them failed with this error. Any of them may have caused it: run them with concurrency 1 to find which. The pool replaced the worker; tasks on other workers were not affected. Give tasks retries to run them again.`
      : `${crash.message.slice(0, -1)} ${running}. The pool replaced the worker; other tasks were not affected. If the task exits the process or crashes natively, fix it; give it retries to run it again.`;
  return new WorkerCrashedError(
    message,
    {
      exitCode: crash.exitCode,
      signal: crash.signal,
      worker: crash.worker,
      outOfMemory: crash.outOfMemory,
    },
    crash.cause === undefined ? undefined : { cause: crash.cause },
  );
}
