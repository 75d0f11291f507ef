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
 * Concurrency: a worker keeps up to `concurrency` tasks in flight (async tasks interleave at their
 * awaits); on top of those it gets tasks ahead (pipeline.ts).
 *
 * What the parent knows of a worker (pool-worker.ts): `queue`, the attempts sent and not yet
 * reported, in the order the worker starts them. The oldest is always running (the worker starts
 * tasks in order); the worker names any other it starts (protocol.ts), so `Slot.started` is exact
 * up to message lag. The pool's parts: pool-task.ts (what it is given and keeps per task),
 * pool-worker.ts (one worker), pipeline.ts (how far ahead, and stealing back); pool-runtime.ts
 * makes it the scheduler's `Runtime`.
 */
import {
  TaskCancelledError,
  WorkerCrashedError,
  fromEnvelope,
  toEnvelope,
} from '../../core/errors.js';
import { blame, crashError } from '../crash.js';
import type { Boundary } from '../../core/values.js';
import { canCross } from '../../core/values.js';
import type { FromWorker } from '../protocol.js';
import { EncodedResult, asBuffer } from '../encoded.js';
import { spawnWorker } from '../transports.js';
import { Pipeline } from './pipeline.js';
import type { PoolHost, PoolTask, Slot, WorkerPoolOptions } from './pool-task.js';
import { PoolWorker } from './pool-worker.js';

export type { PoolHost, PoolTask, WorkerPoolOptions } from './pool-task.js';

/** After this many workers in a row die before becoming ready, the pool stops respawning. */
const maxBootstrapFailures = 3;
const startTimeoutMs = 60_000;

/**
 * Worker threads or child processes that run `PoolTask`s of type `T`, reporting each to its
 * `PoolHost<T>`. Per-task state lives in `#slots`, typed, never on the task.
 */
export class WorkerPool<T extends PoolTask> {
  readonly boundary: Boundary;
  readonly #options: WorkerPoolOptions;
  readonly #concurrency: number;
  readonly #pipeline: Pipeline;
  #host: PoolHost<T> | undefined;
  #workers: PoolWorker<T>[] = [];
  /** Every task handed out and not yet settled or requeued, by id; also in its worker's queue. */
  readonly #slots = new Map<number, Slot<T>>();
  #count = 0;
  #closing = false;
  #broken: Error | undefined;
  #bootstrapFailures = 0;
  #flushScheduled = false;
  /** The longest grace period an abort asked for; close() waits that long for aborted tasks. */
  #graceMs = 0;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.boundary = options.scheduler === 'threads' ? 'thread' : 'process';
    this.#concurrency = options.concurrency ?? 1;
    this.#pipeline = new Pipeline(options.scheduler === 'threads' ? 64 : 128, this.#concurrency);
  }

  async start(host: PoolHost<T>): Promise<void> {
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
    return this.#pipeline.room(this.#workers);
  }

  /**
   * Runs `task` on the least busy worker. `reportsStart`: the worker says when the task starts
   * (for a timeout clock); otherwise the start is inferred, which costs no message.
   */
  run(task: T, reportsStart: boolean): void {
    if (this.#broken) {
      this.#host!.settled(task, { ok: false, error: this.#broken });
      return;
    }
    let target: PoolWorker<T> | undefined;
    for (const w of this.#workers) {
      if (w.state === 'dead') continue;
      if (!target || w.queue.length < target.queue.length) target = w;
    }
    if (!target) {
      // Every worker is being replaced right now; one will be back shortly.
      target = this.#spawn();
    }
    const slot: Slot<T> = {
      task,
      worker: target,
      reportsStart,
      started: false,
      startedAt: 0,
      stealing: false,
      aborted: undefined,
      graceMs: undefined,
      graceTimer: undefined,
    };
    this.#slots.set(task.id, slot);
    target.add(slot);
    if (target.queue.length === 1) this.#inferStart(target);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** For explain: which worker holds the attempt, its pid, and what runs ahead of it there. */
  explain(task: T): string | undefined {
    const slot = this.#slots.get(task.id);
    return slot?.worker.explain(slot, this.#concurrency, this.#options.scheduler === 'threads');
  }

  #flush(): void {
    this.#flushScheduled = false;
    for (const w of this.#workers) w.flush();
  }

  /**
   * Stops `task`: a queued one is dropped, a running one has its signal aborted with `reason`
   * and its worker stopped if it still runs after `graceMs`.
   */
  abort(task: T, reason: Error, graceMs: number): void {
    const slot = this.#slots.get(task.id);
    if (!slot) return;
    const worker = slot.worker;
    const index = worker.queue.indexOf(slot);
    if (index < 0 || slot.aborted) return;
    slot.aborted = reason;
    this.#graceMs = Math.max(this.#graceMs, graceMs);
    if (worker.unsend(task.id)) {
      worker.queue.splice(index, 1);
      this.#slots.delete(task.id);
      this.#host!.settled(task, { ok: false, error: reason });
      if (index === 0) this.#inferStart(worker);
      return;
    }
    worker.transport.send({
      t: 'abort',
      id: task.id,
      reason: toEnvelope(reason, (v) => canCross(v, this.boundary)),
    });
    // A queued one comes back as `aborted`; a running one must stop within the grace period.
    if (slot.started) this.#armGrace(slot, graceMs);
    else slot.graceMs = graceMs;
  }

  /** Stops the worker of an aborted, running task that is still running after `graceMs`. */
  #armGrace(slot: Slot<T>, graceMs: number): void {
    const worker = slot.worker;
    slot.graceTimer = setTimeout(() => {
      if (worker.state !== 'dead' && worker.queue.includes(slot)) {
        worker.stopping = slot.aborted;
        void worker.transport.terminate();
      }
    }, graceMs);
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
      for (const slot of w.queue) if (slot.graceTimer) clearTimeout(slot.graceTimer);
    }
    await Promise.all(
      workers.map((w) => w.transport.terminate(w.queue.length === 0).catch(() => undefined)),
    );
    // Exit handlers have settled what was left; clear anything that raced them.
    for (const w of workers) this.#release(w, null, null);
    this.#workers = [];
  }

  // ---- workers ----------------------------------------------------------------------------

  #spawn(): PoolWorker<T> {
    const name = `${this.#options.scheduler}-${++this.#count}`;
    const worker = new PoolWorker<T>(name, (self) =>
      spawnWorker(
        this.#options.scheduler,
        {
          name,
          boundary: this.boundary,
          concurrency: this.#concurrency,
          ...(this.#options.encoded ? { encoded: true } : {}),
        },
        this.#options,
        {
          message: (m) => this.#onMessage(self, m),
          error: (e) => (self.lastError = e),
          exit: (code, signal) => this.#onExit(self, code, signal),
        },
      ),
    );
    this.#workers.push(worker);
    return worker;
  }

  #onMessage(worker: PoolWorker<T>, message: FromWorker): void {
    switch (message.t) {
      case 'ready':
        worker.becameReady(message.pid);
        this.#bootstrapFailures = 0;
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

  #onBatch(worker: PoolWorker<T>, message: FromWorker & { t: 'batch' }): void {
    const host = this.#host!;
    if (message.started) {
      for (const id of message.started) {
        const slot = worker.queue.find((s) => s.task.id === id);
        if (slot) this.#markStarted(slot);
      }
    }
    for (const result of message.done) {
      const queue = worker.queue;
      const index =
        queue[0]?.task.id === result.id ? 0 : queue.findIndex((s) => s.task.id === result.id);
      if (index < 0) continue;
      const slot = queue[index]!;
      const attempt = slot.task;
      queue.splice(index, 1);
      // Before the host hears of it: a requeue runs the same task (same id) again at once.
      this.#slots.delete(attempt.id);
      if (slot.graceTimer) clearTimeout(slot.graceTimer);
      if ('stolen' in result || 'aborted' in result) {
        // Given back unstarted: for an idle worker (run it again without counting an attempt), or
        // because it was aborted while queued.
        if (slot.aborted) host.settled(attempt, { ok: false, error: slot.aborted });
        else if ('stolen' in result) host.requeue(attempt);
        else
          host.settled(attempt, {
            ok: false,
            error: new TaskCancelledError('The task was aborted.'),
          });
        if (index === 0) this.#inferStart(worker);
        continue;
      }
      // A task that ran and ended before the parent knew it started.
      if (!slot.started) this.#markStarted(slot);
      this.#pipeline.record(performance.now() - slot.startedAt);
      host.settled(
        attempt,
        result.ok
          ? {
              ok: true,
              value:
                'encoded' in result ? new EncodedResult(asBuffer(result.encoded)) : result.value,
            }
          : { ok: false, error: fromEnvelope(result.error) },
      );
      if (index === 0) this.#inferStart(worker);
    }
    if (worker.queue.length === 0) {
      // Idle: take back tasks sent ahead behind a long one elsewhere; the scheduler dispatches
      // what comes back to whoever is free.
      const stolen = this.#pipeline.steal(worker, this.#workers);
      if (stolen) stolen.from.transport.send({ t: 'steal', ids: stolen.ids });
      worker.idle();
    }
  }

  /**
   * queue[0] changed: the worker runs it now, so report it started, unless the worker will say so
   * itself (`reportsStart`: a timed task, whose timeout clock must start when it really does).
   */
  #inferStart(worker: PoolWorker<T>): void {
    const head = worker.queue[0];
    if (head && !head.reportsStart) this.#markStarted(head);
  }

  #markStarted(slot: Slot<T>): void {
    if (slot.started) return;
    slot.started = true;
    slot.startedAt = performance.now();
    if (slot.aborted) {
      if (slot.graceMs !== undefined && !slot.graceTimer) this.#armGrace(slot, slot.graceMs);
      return;
    }
    this.#host!.started(slot.task, slot.worker.name);
  }

  #onExit(worker: PoolWorker<T>, code: number | null, signal: NodeJS.Signals | null): void {
    const wasReady = worker.state === 'ready';
    worker.state = 'dead';
    this.#workers = this.#workers.filter((w) => w !== worker);
    const host = this.#host!;
    const intentional = worker.stopping;
    const crash = intentional ? undefined : crashError(worker, code, signal, this.#options);
    if (!wasReady) {
      const error =
        crash ??
        new WorkerCrashedError(`Worker ${worker.name} stopped before it was ready.`, {
          exitCode: code,
          signal,
          worker: worker.name,
        });
      worker.failedToStart(error);
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
    worker: PoolWorker<T>,
    crash: WorkerCrashedError | null | undefined,
    intentional: Error | null | undefined,
  ): void {
    const host = this.#host!;
    const queue = worker.takeAll();
    let sharing = 0;
    // Forgotten first: a requeue runs the same task (same id) again at once.
    for (const slot of queue) {
      if (slot.started) sharing++;
      this.#slots.delete(slot.task.id);
    }
    for (const slot of queue) {
      const attempt = slot.task;
      if (slot.graceTimer) clearTimeout(slot.graceTimer);
      if (slot.aborted) {
        host.settled(attempt, { ok: false, error: slot.aborted });
      } else if (slot.started && crash) {
        host.settled(attempt, {
          ok: false,
          error: blame(crash, attempt, sharing, this.#concurrency),
        });
      } else if (slot.started && intentional && this.#closing) {
        host.settled(attempt, { ok: false, error: intentional });
      } else {
        // Never started, or a neighbour of a task that ignored its abort: run it again elsewhere,
        // without counting an attempt.
        host.requeue(attempt);
      }
    }
  }
}
