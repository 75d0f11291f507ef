/**
 * The code that runs inside a pool worker (a worker thread or a child process). It finds each
 * task by module and name (importing the module, through tsx for TypeScript) or evaluates shipped
 * source, runs tasks one at a time in the order received, and reports results in batches.
 * Protocol: ../protocol.ts.
 */
import { createRequire } from 'node:module';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runInTaskContext } from '../../core/context.js';
import { importModule, isThenable } from '../../core/modules.js';
import { TaskDefinitionError, fromEnvelope, toEnvelope } from '../../core/errors.js';
import type { TaskRef } from '../../core/runtime.js';
import { displayModule, lookupTask, taskNamesIn } from '../../core/task.js';
import { assertCrossable, canCross } from '../../core/values.js';
import type { AnyFunction } from '../../core/types.js';
import type { FromWorker, ToWorker, WireResult, WireTask, WorkerSetup } from '../protocol.js';

const setup: WorkerSetup = isMainThread
  ? { name: process.env.WEFT_WORKER_NAME ?? `processes-${process.pid}`, boundary: 'process' }
  : (workerData as WorkerSetup);
const boundary = setup.boundary;

const send: (message: FromWorker) => void = isMainThread
  ? (message) => {
      process.send!(message);
    }
  : (message) => parentPort!.postMessage(message);

// ---- finding tasks -----------------------------------------------------------------------

const resolved = new Map<string, AnyFunction>();
/** Task references by the number the parent sends them by. */
const refs = new Map<number, TaskRef>();
const loading = new Map<string, Promise<unknown>>();

function refKey(ref: TaskRef): string {
  return ref.kind === 'module' ? `${ref.moduleUrl}#${ref.name}` : ref.source;
}

/** The task's function, synchronously when it was resolved before. */
function resolveTask(ref: TaskRef): AnyFunction | Promise<AnyFunction> {
  const key = refKey(ref);
  const known = resolved.get(key);
  if (known) return known;
  if (ref.kind === 'source') {
    const fn = evaluateSource(ref.source);
    resolved.set(key, fn);
    return fn;
  }
  return loadModule(ref.moduleUrl).then(() => {
    const definition = lookupTask(ref.moduleUrl, ref.name);
    if (!definition) {
      const known = taskNamesIn(ref.moduleUrl);
      throw new TaskDefinitionError(
        `Task '${ref.name}' was not found in ${displayModule(ref.moduleUrl)} after the worker loaded it (${known.length ? `it defines ${known.map((n) => `'${n}'`).join(', ')}` : 'it defines no task'}). Define the task with task() at the top level of that module, not inside a function, so that loading the module defines it.`,
      );
    }
    resolved.set(key, definition.fn);
    return definition.fn;
  });
}

/** Imports a task module once per worker. */
function loadModule(url: string): Promise<unknown> {
  let promise = loading.get(url);
  if (!promise) {
    promise = importModule(
      url,
      (cause) =>
        new TaskDefinitionError(
          `The task module ${displayModule(url)} is TypeScript, and workers load TypeScript through tsx, which is not installed. Install it (npm i -D tsx), or compile the module to JavaScript.`,
          { cause },
        ),
    );
    loading.set(url, promise);
    promise.catch(() => loading.delete(url));
  }
  return promise;
}

const sourceRequire = createRequire(`${process.cwd()}/`);
const keepName = (fn: unknown): unknown => fn;

function evaluateSource(source: string): AnyFunction {
  // The source was checked for free variables in the caller; `require` (resolved from the working
  // directory) and esbuild's `__name` helper are the only names provided here.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- evaluating shipped source is the feature
  const factory = new Function('__name', 'require', `return (${source});`) as (
    ...a: unknown[]
  ) => unknown;
  const fn = factory(keepName, sourceRequire);
  if (typeof fn !== 'function') {
    throw new TaskDefinitionError('The shipped source did not evaluate to a function.');
  }
  return fn as AnyFunction;
}

// ---- running tasks -----------------------------------------------------------------------

const queue: WireTask[] = [];
/** The running task; its AbortController is made on first use (most tasks never ask). */
let running: { task: WireTask; controller: AbortController | undefined } | undefined;
let draining = false;
let pending: WireResult[] = [];
let pendingSince = 0;
/** Results wait at most this long for company before they are sent. */
const flushAfterMs = 1;

const crosses = (value: unknown): boolean => canCross(value, boundary);

function flush(started?: number): void {
  if (pending.length === 0 && started === undefined) return;
  const done = pending;
  pending = [];
  try {
    send(started === undefined ? { t: 'batch', done } : { t: 'batch', done, started });
  } catch (error) {
    // One value refused at send time (checked before, so rare): send results one by one.
    for (const result of done) {
      try {
        send({ t: 'batch', done: [result] });
      } catch (cause) {
        send({
          t: 'batch',
          done: [{ id: result.id, ok: false, error: toEnvelope(cause, crosses) }],
        });
      }
    }
    if (started !== undefined) send({ t: 'batch', done: [], started });
    void error;
  }
}

function finish(result: WireResult): void {
  if (pending.length === 0) pendingSince = performance.now();
  pending.push(result);
}

function failure(task: WireTask, error: unknown): WireResult {
  return { id: task.id, ok: false, error: toEnvelope(error, crosses) };
}

function success(task: WireTask, value: unknown): WireResult {
  try {
    assertCrossable(value, 'result', boundary);
  } catch (error) {
    (error as Error).message =
      `Task ${task.key} returned a value that cannot be sent back: ${(error as Error).message}`;
    return failure(task, error);
  }
  return { id: task.id, ok: true, value };
}

/** Runs queued tasks one at a time; synchronous ones back to back without yielding. */
async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    while (queue.length > 0) {
      const task = queue.shift()!;
      if (task.timed) flush(task.id);
      let fn = resolveTask(refs.get(task.ref)!);
      if (!(typeof fn === 'function')) {
        try {
          fn = await fn;
        } catch (error) {
          finish(failure(task, error));
          flush();
          continue;
        }
      }
      const current: NonNullable<typeof running> = { task, controller: undefined };
      running = current;
      const context = {
        get signal(): AbortSignal {
          return (current.controller ??= new AbortController()).signal;
        },
        attempt: task.attempt,
        key: task.key,
      };
      let result: unknown;
      let threw = false;
      try {
        result = runInTaskContext(context, () => fn(...task.args));
      } catch (error) {
        threw = true;
        result = error;
      }
      if (!threw && isThenable(result)) {
        flush(); // the task waits on something: report earlier results now
        try {
          finish(success(task, await result));
        } catch (error) {
          finish(failure(task, error));
        }
      } else {
        finish(threw ? failure(task, result) : success(task, result));
      }
      running = undefined;
      if (queue.length === 0) flush();
      else if (performance.now() - pendingSince > flushAfterMs) {
        flush();
        // Let abort and run messages in before going on.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    running = undefined;
    draining = false;
    flush();
  }
}

function onMessage(message: ToWorker): void {
  if (message.t === 'run') {
    // Learn references on arrival: a task carrying one may be stolen or aborted before it runs.
    for (const task of message.tasks) {
      if (task.def) refs.set(task.ref, task.def);
      queue.push(task);
    }
    void drain();
  } else if (message.t === 'steal') {
    const wanted = new Set(message.ids);
    for (let i = queue.length - 1; i >= 0; i--) {
      const task = queue[i]!;
      if (!wanted.has(task.id)) continue;
      queue.splice(i, 1);
      finish({ id: task.id, ok: false, stolen: true });
    }
    flush();
  } else if (message.t === 'abort') {
    if (running && running.task.id === message.id) {
      (running.controller ??= new AbortController()).abort(fromEnvelope(message.reason));
      return;
    }
    const index = queue.findIndex((t) => t.id === message.id);
    if (index >= 0) {
      queue.splice(index, 1);
      finish({ id: message.id, ok: false, aborted: true });
      flush();
    }
  }
}

function onFatal(error: unknown): void {
  try {
    flush();
    send({ t: 'fatal', error: toEnvelope(error, crosses) });
  } finally {
    process.exit(1);
  }
}

process.on('uncaughtException', onFatal);

if (isMainThread) {
  // A child process: leave when the parent goes away, even if it was killed.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message) => onMessage(message as ToWorker));
} else {
  parentPort!.on('message', onMessage);
}
send({ t: 'ready', pid: process.pid });
