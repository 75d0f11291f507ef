/**
 * The pool runtime for worker threads and child processes.
 *
 * Why not piscina or tinypool underneath: both make one pool call per task, which measured here
 * caps no-op throughput at about 25k tasks/s (threads) and 9k/s (tinypool processes), a quarter
 * of weft's targets; batching several tasks into one pool call hides when each task starts (which
 * per-task timeouts need) and returns a batch's results together. Their crash reports also lack
 * the exit signal (piscina), the exit code (tinypool processes), or never settle (tinypool
 * threads on `process.exit`). So weft keeps one long-lived message channel per worker and does
 * what a pool library would do here itself: spawn, pipeline, watch exits, replace. The figures
 * against piscina, tinypool and workerpool are in the README's benchmark table.
 *
 * Pipelining: each worker gets up to `depth` tasks ahead, where depth adapts to measured task
 * durations (about 1 ms of queued work; one task at a time for long tasks), so tiny tasks travel
 * in batches while long ones stay balanced across workers and priorities keep their meaning.
 */
import {
  TaskCancelledError,
  WorkerCrashedError,
  fromEnvelope,
  toEnvelope,
  type ErrorEnvelope,
} from '../../core/errors.js';
import type { Attempt, Outcome, Runtime, RuntimeHost, TaskRef } from '../../core/runtime.js';
import type { Boundary } from '../../core/values.js';
import { canCross } from '../../core/values.js';
import type { FromWorker, WireTask } from '../protocol.js';
import {
  spawnWorker,
  type Scheduler,
  type SpawnOptions,
  type WorkerTransport,
} from '../transports.js';

export interface WorkerPoolOptions extends SpawnOptions {
  scheduler: Scheduler;
  workers: number;
  /** Tasks in flight per worker (default 1). */
  concurrency?: number;
}

interface PoolWorker {
  readonly name: string;
  transport: WorkerTransport;
  pid: number | undefined;
  state: 'starting' | 'ready' | 'dead';
  /** Sent and not yet reported, in the order the worker runs them: [0] is running or next. */
  queue: Attempt[];
  /** Whether queue[0] has been reported started to the scheduler. */
  headStarted: boolean;
  headSince: number;
  outbox: WireTask[];
  /** Task references this worker has been sent, by the number it knows them by. */
  refs: Map<TaskRef, number>;
  referenced: boolean;
  /** Set when weft stops the worker on purpose (a task ignored its abort signal, or close). */
  stopping: Error | undefined;
  fatal: ErrorEnvelope | undefined;
  lastError: NodeJS.ErrnoException | undefined;
  ready: Promise<void>;
  markReady: () => void;
  failStart: (error: Error) => void;
}

interface Slot {
  worker: PoolWorker;
  /** A steal request for it is on its way to the worker. */
  stealing: boolean;
  aborted: Error | undefined;
  graceTimer: NodeJS.Timeout | undefined;
}

/** After this many workers in a row die before becoming ready, the pool stops respawning. */
const maxBootstrapFailures = 3;
const startTimeoutMs = 60_000;

export class WorkerPoolRuntime implements Runtime {
  readonly boundary: Boundary;
  readonly immediate = false;
  readonly #options: WorkerPoolOptions;
  readonly #maxDepth: number;
  #host: RuntimeHost | undefined;
  #workers: PoolWorker[] = [];
  #count = 0;
  #closing = false;
  #broken: Error | undefined;
  #bootstrapFailures = 0;
  /** Moving average of task durations in ms; undefined until the first result. */
  #avgMs: number | undefined;
  #flushScheduled = false;
  /** The longest grace period an abort asked for; close() waits that long for aborted tasks. */
  #graceMs = 0;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.boundary = options.scheduler === 'threads' ? 'thread' : 'process';
    this.#maxDepth = options.scheduler === 'threads' ? 64 : 128;
  }

  async start(host: RuntimeHost): Promise<void> {
    this.#host = host;
    this.#closing = false;
    for (let i = 0; i < this.#options.workers; i++) this.#spawn();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new WorkerCrashedError(
              `The ${this.#options.scheduler} pool's workers did not start within ${startTimeoutMs / 1000} s.`,
              {},
            ),
          ),
        startTimeoutMs,
      );
    });
    try {
      await Promise.race([Promise.all(this.#workers.map((w) => w.ready)), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  capacity(): number {
    if (this.#broken) return Number.MAX_SAFE_INTEGER;
    const depth = this.#depth();
    let free = 0;
    for (const w of this.#workers)
      if (w.state !== 'dead') free += Math.max(0, this.#depthFor(w, depth) - w.queue.length);
    return free;
  }

  #depth(): number {
    const avg = this.#avgMs;
    if (avg === undefined) return 1;
    return Math.max(1, Math.min(this.#maxDepth, Math.ceil(1 / Math.max(avg, 0.001))));
  }

  /** A worker stuck in a long task takes nothing more ahead of it. */
  #depthFor(worker: PoolWorker, depth: number): number {
    if (worker.headStarted && performance.now() - worker.headSince > 2) return 1;
    return depth;
  }

  run(attempt: Attempt): void {
    if (this.#broken) {
      this.#host!.settled(attempt, { ok: false, error: this.#broken });
      return;
    }
    let target: PoolWorker | undefined;
    for (const w of this.#workers) {
      if (w.state === 'dead') continue;
      if (!target || w.queue.length < target.queue.length) target = w;
    }
    if (!target) {
      // Every worker is being replaced right now; one will be back shortly.
      target = this.#spawn();
    }
    const slot: Slot = {
      worker: target,
      stealing: false,
      aborted: undefined,
      graceTimer: undefined,
    };
    attempt.slot = slot;
    target.queue.push(attempt);
    target.outbox.push({
      id: attempt.id,
      key: attempt.key,
      attempt: attempt.number,
      ...this.#refFor(target, attempt.ref!),
      args: attempt.args,
      timed: attempt.timeoutMs !== undefined,
    });
    if (!target.referenced) {
      target.referenced = true;
      target.transport.ref();
    }
    if (target.queue.length === 1) this.#headChanged(target);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** The number `worker` knows a task reference by, with the reference the first time. */
  #refFor(worker: PoolWorker, ref: TaskRef): { ref: number; def?: TaskRef } {
    let id = worker.refs.get(ref);
    if (id !== undefined) return { ref: id };
    id = worker.refs.size + 1;
    worker.refs.set(ref, id);
    return { ref: id, def: ref };
  }

  #flush(): void {
    this.#flushScheduled = false;
    for (const w of this.#workers) {
      if (w.outbox.length === 0 || w.state === 'dead') continue;
      const tasks = w.outbox;
      w.outbox = [];
      w.transport.send({ t: 'run', tasks });
    }
  }

  abort(attempt: Attempt, reason: Error, graceMs: number): void {
    const slot = attempt.slot as Slot | undefined;
    if (!slot) return;
    const worker = slot.worker;
    const index = worker.queue.indexOf(attempt);
    if (index < 0 || slot.aborted) return;
    slot.aborted = reason;
    this.#graceMs = Math.max(this.#graceMs, graceMs);
    const unsent = worker.outbox.findIndex((t) => t.id === attempt.id);
    if (unsent >= 0) {
      worker.outbox.splice(unsent, 1);
      worker.queue.splice(index, 1);
      this.#host!.settled(attempt, { ok: false, error: reason });
      if (index === 0) this.#headChanged(worker);
      return;
    }
    worker.transport.send({
      t: 'abort',
      id: attempt.id,
      reason: toEnvelope(reason, (v) => canCross(v, this.boundary)),
    });
    if (index === 0) {
      slot.graceTimer = setTimeout(() => {
        if (worker.queue[0] === attempt && worker.state !== 'dead') {
          worker.stopping = reason;
          void worker.transport.terminate();
        }
      }, graceMs);
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    // Aborted tasks still running get their grace period to see the signal and stop by themselves;
    // their grace timers stop the workers of those that do not.
    const deadline = performance.now() + this.#graceMs + 100;
    while (
      this.#workers.some((w) => w.state !== 'dead' && w.queue.length > 0) &&
      performance.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const workers = this.#workers;
    for (const w of workers) {
      w.stopping ??= new TaskCancelledError('The pool was shut down.');
      for (const attempt of w.queue) {
        const slot = attempt.slot as Slot;
        if (slot.graceTimer) clearTimeout(slot.graceTimer);
      }
    }
    await Promise.all(
      workers.map((w) => w.transport.terminate(w.queue.length === 0).catch(() => undefined)),
    );
    // Exit handlers have settled what was left; clear anything that raced them.
    for (const w of workers) this.#release(w, null, null);
    this.#workers = [];
  }

  // ---- workers ----------------------------------------------------------------------------

  #spawn(): PoolWorker {
    const name = `${this.#options.scheduler}-${++this.#count}`;
    let markReady!: () => void;
    let failStart!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    ready.catch(() => undefined);
    const worker: PoolWorker = {
      name,
      transport: undefined as unknown as WorkerTransport,
      pid: undefined,
      state: 'starting',
      queue: [],
      headStarted: false,
      headSince: 0,
      outbox: [],
      refs: new Map(),
      referenced: true,
      stopping: undefined,
      fatal: undefined,
      lastError: undefined,
      ready,
      markReady,
      failStart,
    };
    worker.transport = spawnWorker(
      this.#options.scheduler,
      { name, boundary: this.boundary },
      this.#options,
      {
        message: (m) => this.#onMessage(worker, m),
        error: (e) => (worker.lastError = e),
        exit: (code, signal) => this.#onExit(worker, code, signal),
      },
    );
    worker.pid = worker.transport.pid;
    this.#workers.push(worker);
    return worker;
  }

  #onMessage(worker: PoolWorker, message: FromWorker): void {
    switch (message.t) {
      case 'ready':
        worker.state = 'ready';
        worker.pid = message.pid;
        this.#bootstrapFailures = 0;
        worker.markReady();
        if (worker.queue.length === 0) {
          worker.referenced = false;
          worker.transport.unref();
        }
        this.#host?.workerEvent({
          type: 'joined',
          worker: worker.name,
          time: Date.now(),
          pid: message.pid,
        });
        this.#host?.capacityAvailable();
        return;
      case 'fatal':
        worker.fatal = message.error;
        return;
      case 'batch':
        this.#onBatch(worker, message);
        return;
    }
  }

  #onBatch(worker: PoolWorker, message: FromWorker & { t: 'batch' }): void {
    const host = this.#host!;
    for (const result of message.done) {
      const queue = worker.queue;
      const index = queue[0]?.id === result.id ? 0 : queue.findIndex((a) => a.id === result.id);
      if (index < 0) continue;
      const attempt = queue[index]!;
      queue.splice(index, 1);
      const slot = attempt.slot as Slot;
      if (slot.graceTimer) clearTimeout(slot.graceTimer);
      if ('stolen' in result) {
        // Given back unstarted for an idle worker: run it again without counting an attempt.
        if (slot.aborted) host.settled(attempt, { ok: false, error: slot.aborted });
        else host.requeue(attempt);
        if (index === 0) this.#headChanged(worker);
        continue;
      }
      let outcome: Outcome;
      if (result.ok) outcome = { ok: true, value: result.value };
      else if ('aborted' in result)
        outcome = {
          ok: false,
          error: slot.aborted ?? new TaskCancelledError('The task was aborted.'),
        };
      else outcome = { ok: false, error: fromEnvelope(result.error) };
      if (index === 0) {
        const now = performance.now();
        const sample = worker.headStarted ? now - worker.headSince : 0;
        this.#avgMs = this.#avgMs === undefined ? sample : this.#avgMs * 0.8 + sample * 0.2;
        worker.headStarted = false;
        worker.headSince = now;
        host.settled(attempt, outcome);
        this.#headChanged(worker);
      } else {
        host.settled(attempt, outcome);
      }
    }
    if (
      message.started !== undefined &&
      worker.queue[0]?.id === message.started &&
      !worker.headStarted
    ) {
      worker.headStarted = true;
      worker.headSince = performance.now();
      host.started(worker.queue[0], worker.name);
    }
    if (worker.queue.length === 0) {
      this.#steal(worker);
      if (worker.referenced && worker.queue.length === 0) {
        worker.referenced = false;
        worker.transport.unref();
      }
    }
  }

  /**
   * `idle` has nothing to do: take back the unstarted half of the longest queue behind a running
   * task (pipelining sent it ahead before anyone knew that task would be long). The scheduler
   * dispatches what comes back to whoever is free.
   */
  #steal(idle: PoolWorker): void {
    if (idle.state === 'dead') return;
    let victim: PoolWorker | undefined;
    let spare = 0;
    for (const w of this.#workers) {
      if (w === idle || w.state === 'dead' || !w.headStarted) continue;
      let n = 0;
      for (let i = 1; i < w.queue.length; i++) if (!(w.queue[i]!.slot as Slot).stealing) n++;
      if (n > spare) {
        spare = n;
        victim = w;
      }
    }
    if (!victim) return;
    const ids: number[] = [];
    for (let i = victim.queue.length - 1; i >= 1 && ids.length < Math.ceil(spare / 2); i--) {
      const slot = victim.queue[i]!.slot as Slot;
      if (slot.stealing || slot.aborted) continue;
      slot.stealing = true;
      ids.push(victim.queue[i]!.id);
    }
    if (ids.length > 0) victim.transport.send({ t: 'steal', ids });
  }

  /** queue[0] changed: report it started unless the worker will say so itself (timed tasks). */
  #headChanged(worker: PoolWorker): void {
    const head = worker.queue[0];
    worker.headStarted = false;
    if (!head || head.timeoutMs !== undefined) return;
    worker.headStarted = true;
    worker.headSince = performance.now();
    this.#host!.started(head, worker.name);
  }

  #onExit(worker: PoolWorker, code: number | null, signal: NodeJS.Signals | null): void {
    const wasReady = worker.state === 'ready';
    worker.state = 'dead';
    this.#workers = this.#workers.filter((w) => w !== worker);
    const host = this.#host!;
    const intentional = worker.stopping;
    const crash = intentional ? undefined : this.#crashError(worker, code, signal);
    if (!wasReady) {
      const error =
        crash ??
        new WorkerCrashedError(`Worker ${worker.name} stopped before it was ready.`, {
          exitCode: code,
          signal,
          worker: worker.name,
        });
      worker.failStart(error);
      if (!intentional && ++this.#bootstrapFailures >= maxBootstrapFailures) {
        this.#broken = new WorkerCrashedError(
          `The ${this.#options.scheduler} pool stopped replacing workers: ${maxBootstrapFailures} in a row died before they were ready (last: ${error.message}).`,
          { exitCode: code, signal, worker: worker.name },
          { cause: error },
        );
      }
    }
    if (intentional) {
      host.workerEvent({
        type: 'left',
        worker: worker.name,
        time: Date.now(),
        pid: worker.pid,
        exitCode: code,
        signal,
        reason: intentional.message,
      });
    } else {
      host.workerEvent({
        type: 'crashed',
        worker: worker.name,
        time: Date.now(),
        pid: worker.pid,
        exitCode: code,
        signal,
        reason: crash!.message,
      });
    }
    this.#release(worker, crash, intentional);
    if (!this.#closing) {
      if (this.#broken) {
        // Nothing will run again: fail what the scheduler still holds by letting it dispatch.
        host.capacityAvailable();
      } else if (this.#workers.length < this.#options.workers) {
        this.#spawn();
      }
    }
  }

  /** Settles or requeues everything a gone worker held. */
  #release(
    worker: PoolWorker,
    crash: WorkerCrashedError | null | undefined,
    intentional: Error | null | undefined,
  ): void {
    const host = this.#host!;
    const queue = worker.queue;
    worker.queue = [];
    worker.outbox = [];
    queue.forEach((attempt, index) => {
      const slot = attempt.slot as Slot;
      if (slot.graceTimer) clearTimeout(slot.graceTimer);
      if (slot.aborted) {
        host.settled(attempt, { ok: false, error: slot.aborted });
      } else if (index === 0 && worker.headStarted && crash) {
        host.settled(attempt, { ok: false, error: this.#blame(crash, attempt) });
      } else if (index === 0 && worker.headStarted && intentional && this.#closing) {
        host.settled(attempt, { ok: false, error: intentional });
      } else {
        host.requeue(attempt);
      }
    });
  }

  #crashError(
    worker: PoolWorker,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): WorkerCrashedError {
    const how = signal ? `was killed by signal ${signal}` : `exited with code ${code}`;
    const pid = this.#options.scheduler === 'processes' && worker.pid ? ` (pid ${worker.pid})` : '';
    let why = '';
    let cause: unknown;
    const limit = this.#options.maxOldGenerationSizeMb;
    if (worker.lastError?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      why = ` because it ran out of memory (resourceLimits.maxOldGenerationSizeMb ${limit ?? 'default'}); raise the limit or make the task use less memory`;
      cause = worker.lastError;
    } else if (limit && (signal === 'SIGABRT' || code === 134)) {
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
      { exitCode: code, signal, worker: worker.name },
      cause === undefined ? undefined : { cause },
    );
  }

  #blame(crash: WorkerCrashedError, attempt: Attempt): WorkerCrashedError {
    const message = `${crash.message.slice(0, -1)} while running task '${attempt.name}' (key ${attempt.key}, attempt ${attempt.number}). The pool replaced the worker; other tasks were not affected. If the task exits the process or crashes natively, fix it; give it retries to run it again.`;
    return new WorkerCrashedError(
      message,
      { exitCode: crash.exitCode, signal: crash.signal, worker: crash.worker },
      crash.cause === undefined ? undefined : { cause: crash.cause },
    );
  }
}
