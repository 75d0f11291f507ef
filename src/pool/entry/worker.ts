/**
 * The code that runs inside a pool worker (a worker thread or a child process). It finds each
 * task by module and name (importing the module, through tsx for TypeScript) or evaluates shipped
 * source, starts tasks in the order received with up to `concurrency` in flight at once, and
 * reports results in batches.
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
import { decodeArguments, encodeResult } from '../encoded.js';

const setup: WorkerSetup = isMainThread
  ? {
      name: process.env.WEFT_WORKER_NAME ?? `processes-${process.pid}`,
      boundary: 'process',
      concurrency: Number(process.env.WEFT_WORKER_CONCURRENCY) || 1,
      encoded: process.env.WEFT_WORKER_ENCODED === '1',
    }
  : (workerData as WorkerSetup);
const boundary = setup.boundary;
const concurrency = setup.concurrency;
const encoded = setup.encoded === true;

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

interface Running {
  task: WireTask;
  /** Made on first use: most tasks never ask for their signal. */
  controller: AbortController | undefined;
}

const queue: WireTask[] = [];
/** Tasks started and not yet settled, by attempt id; async ones stay here across their awaits. */
const running = new Map<number, Running>();
let draining = false;
let pumpScheduled = false;
let pending: WireResult[] = [];
let pendingSince = 0;
/** Ids of started tasks the parent cannot infer (see protocol.ts), sent with the next batch. */
let startedIds: number[] = [];
/** Results wait at most this long for company before they are sent. */
const flushAfterMs = 1;

const crosses = (value: unknown): boolean => canCross(value, boundary);

function flush(): void {
  if (pending.length === 0 && startedIds.length === 0) return;
  const done = pending;
  const started = startedIds;
  pending = [];
  startedIds = [];
  try {
    send(started.length === 0 ? { t: 'batch', done } : { t: 'batch', done, started });
  } catch {
    // One value refused at send time (checked before, so rare): send results one by one.
    if (started.length > 0) send({ t: 'batch', done: [], started });
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
  if (!encoded) return { id: task.id, ok: true, value };
  try {
    return { id: task.id, ok: true, encoded: encodeResult(value, boundary === 'thread') };
  } catch (error) {
    return failure(task, error);
  }
}

/**
 * An async task settled: report it and start the next queued task. With one slot this runs in a
 * microtask, as a plain `await` would; with several it waits for the check phase, so that the
 * tasks whose timers or sockets fired in one loop turn report in one message.
 */
function settledAsync(task: WireTask, result: WireResult): void {
  running.delete(task.id);
  finish(result);
  if (pumpScheduled) return;
  pumpScheduled = true;
  if (concurrency === 1) queueMicrotask(pump);
  else setImmediate(pump);
}

function pump(): void {
  pumpScheduled = false;
  if (draining) flush();
  else void drain();
}

/**
 * Starts queued tasks while fewer than `concurrency` are in flight. Synchronous tasks run back to
 * back without yielding; an async one stays in flight while this goes on to the next.
 */
async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    while (queue.length > 0 && running.size < concurrency) {
      const task = queue.shift()!;
      if (task.timed) {
        startedIds.push(task.id);
        flush();
      } else if (running.size > 0) {
        startedIds.push(task.id);
      }
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
      const current: Running = { task, controller: undefined };
      running.set(task.id, current);
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
        const args = task.encoded ? decodeArguments(task.args) : task.args;
        result = runInTaskContext(context, () => fn(...args));
      } catch (error) {
        threw = true;
        result = error;
      }
      if (!threw && isThenable(result)) {
        // In flight: it reports when it settles. Tell the parent about what is done so far.
        result.then(
          (value) => settledAsync(task, success(task, value)),
          (error: unknown) => settledAsync(task, failure(task, error)),
        );
        if (running.size >= concurrency) break;
        continue;
      }
      running.delete(task.id);
      finish(threw ? failure(task, result) : success(task, result));
      if (queue.length > 0 && performance.now() - pendingSince > flushAfterMs) {
        flush();
        // Let abort and run messages in before going on.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } finally {
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
    const target = running.get(message.id);
    if (target) {
      (target.controller ??= new AbortController()).abort(fromEnvelope(message.reason));
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
