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
 * awaits). Pipelining: on top of those, each worker gets tasks ahead, as many as adapt to measured
 * task durations (about 1 ms of queued work; none for long tasks), so tiny tasks travel in batches
 * while long ones stay balanced across workers and priorities keep their meaning.
 *
 * What the parent knows of a worker: `queue`, the attempts sent and not yet reported, in the order
 * the worker starts them. The oldest is always running (the worker starts tasks in order); the
 * worker names any other it starts (protocol.ts), so `Slot.started` is exact up to message lag.
 */
import {
  TaskCancelledError,
  WorkerCrashedError,
  fromEnvelope,
  toEnvelope,
  type ErrorEnvelope,
} from '../../core/errors.js';
import { blame, crashError } from '../crash.js';
import type { WorkerEvent } from '../../core/events.js';
import type { Attempt, Outcome, Runtime, RuntimeHost, TaskRef } from '../../core/runtime.js';
import type { Boundary } from '../../core/values.js';
import { canCross } from '../../core/values.js';
import type { FromWorker, WireTask } from '../protocol.js';
import { EncodedResult, asBuffer } from '../encoded.js';
import {
  spawnWorker,
  type Scheduler,
  type SpawnOptions,
  type WorkerTransport,
} from '../transports.js';

/**
 * What the pool reads of a task it runs. The scheduler's `Attempt` is one (through
 * `WorkerPoolRuntime`); a cluster worker's job is another (it drives `WorkerPool` directly).
 */
export interface PoolTask {
  /** Unique among the tasks this pool holds at once; results come back by it. */
  readonly id: number;
  readonly key: string;
  readonly name: string;
  /** Attempt number, 1 for the first. */
  readonly number: number;
  /** How a pool worker finds the task; required here (a pool never runs in the caller's realm). */
  readonly ref: TaskRef | undefined;
  readonly args: unknown[];
  /** Some arguments are `encodedArgument`s, which the pool worker decodes (pool/encoded.ts). */
  readonly encodedArgs?: boolean;
}

/** The callbacks a `WorkerPool` makes about the tasks it was given (a `RuntimeHost` is one). */
export interface PoolHost<T extends PoolTask> {
  /** The task began running on `worker`: inferred, or reported by the worker (`reportsStart`). */
  started(task: T, worker: string): void;
  settled(task: T, outcome: Outcome): void;
  /** The task never started (its worker went away, or gave it back idle): run it again. */
  requeue(task: T): void;
  capacityAvailable(): void;
  workerEvent(event: WorkerEvent): void;
}

export interface WorkerPoolOptions extends SpawnOptions {
  scheduler: Scheduler;
  workers: number;
  /** Tasks in flight per worker (default 1). */
  concurrency?: number;
  /**
   * For a cluster worker: results settle as `EncodedResult`s (their v8 bytes, made in the pool
   * worker; see encoded.ts). Arguments to decode are flagged per task (`PoolTask.encodedArgs`).
   */
  encoded?: boolean;
}

interface PoolWorker<T extends PoolTask> {
  readonly name: string;
  transport: WorkerTransport;
  pid: number | undefined;
  state: 'starting' | 'ready' | 'dead';
  /** Sent and not yet reported, in the order the worker starts them: [0] is running. */
  queue: Slot<T>[];
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

/** What the pool knows of one task it holds: in `#slots` and its worker's queue until it ends. */
interface Slot<T extends PoolTask> {
  readonly task: T;
  readonly worker: PoolWorker<T>;
  /** The worker reports the start itself, when it happens (a timeout clock waits for it). */
  readonly reportsStart: boolean;
  /** Reported started to the scheduler; `startedAt` is when (performance.now()). */
  started: boolean;
  startedAt: number;
  /** A steal request for it is on its way to the worker. */
  stealing: boolean;
  aborted: Error | undefined;
  /** Grace period of an abort sent before the attempt was known to run; armed once it is. */
  graceMs: number | undefined;
  graceTimer: NodeJS.Timeout | undefined;
}

/** After this many workers in a row die before becoming ready, the pool stops respawning. */
const maxBootstrapFailures = 3;
const startTimeoutMs = 60_000;

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

/**
 * Worker threads or child processes that run `PoolTask`s of type `T`, reporting each to its
 * `PoolHost<T>`. Per-task state lives in `#slots`, typed, never on the task.
 */
export class WorkerPool<T extends PoolTask> {
  readonly boundary: Boundary;
  readonly #options: WorkerPoolOptions;
  readonly #maxDepth: number;
  readonly #concurrency: number;
  #host: PoolHost<T> | undefined;
  #workers: PoolWorker<T>[] = [];
  /** Every task handed out and not yet settled or requeued, by id; also in its worker's queue. */
  readonly #slots = new Map<number, Slot<T>>();
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
    this.#concurrency = options.concurrency ?? 1;
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

  /** Its `concurrency` slots plus the pipeline; a worker stuck in a long task takes nothing ahead. */
  #depthFor(worker: PoolWorker<T>, depth: number): number {
    const head = worker.queue[0];
    if (head?.started && performance.now() - head.startedAt > 2) return this.#concurrency;
    return this.#concurrency + depth - 1;
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
    target.queue.push(slot);
    target.outbox.push({
      id: task.id,
      key: task.key,
      attempt: task.number,
      ...this.#refFor(target, task.ref!),
      args: task.args,
      timed: reportsStart,
      ...(task.encodedArgs ? { encoded: true as const } : {}),
    });
    if (!target.referenced) {
      target.referenced = true;
      target.transport.ref();
    }
    if (target.queue.length === 1) this.#inferStart(target);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** For explain: which worker holds the attempt, its pid, and what runs ahead of it there. */
  explain(task: T): string | undefined {
    const slot = this.#slots.get(task.id);
    if (!slot) return undefined;
    const worker = slot.worker;
    const pid =
      worker.pid === undefined
        ? ''
        : this.#options.scheduler === 'processes'
          ? ` (pid ${worker.pid})`
          : ` (a thread of pid ${process.pid})`;
    if (slot.aborted)
      return `It was stopped (${slot.aborted.message}); worker ${worker.name}${pid} has not let go of it yet.`;
    if (slot.started) return `Worker ${worker.name}${pid} runs it.`;
    const index = worker.queue.indexOf(slot);
    if (index < this.#concurrency) return `Worker ${worker.name}${pid} is starting it.`;
    const ahead = worker.queue
      .slice(0, Math.max(0, index))
      .map((s) => `${s.task.key}`)
      .slice(0, 5);
    return `It was sent ahead to worker ${worker.name}${pid}, where it waits behind ${index} task${index === 1 ? '' : 's'} (${ahead.join(', ')}${index > 5 ? ', ...' : ''}); the pool sends short tasks ahead so workers never idle.`;
  }

  /** The number `worker` knows a task reference by, with the reference the first time. */
  #refFor(worker: PoolWorker<T>, ref: TaskRef): { ref: number; def?: TaskRef } {
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
    const unsent = worker.outbox.findIndex((t) => t.id === task.id);
    if (unsent >= 0) {
      worker.outbox.splice(unsent, 1);
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
    let markReady!: () => void;
    let failStart!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    ready.catch(() => undefined);
    const worker: PoolWorker<T> = {
      name,
      transport: undefined as unknown as WorkerTransport,
      pid: undefined,
      state: 'starting',
      queue: [],
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
      {
        name,
        boundary: this.boundary,
        concurrency: this.#concurrency,
        ...(this.#options.encoded ? { encoded: true } : {}),
      },
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

  #onMessage(worker: PoolWorker<T>, message: FromWorker): void {
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
      const sample = performance.now() - slot.startedAt;
      this.#avgMs = this.#avgMs === undefined ? sample : this.#avgMs * 0.8 + sample * 0.2;
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
  #steal(idle: PoolWorker<T>): void {
    if (idle.state === 'dead') return;
    let victim: PoolWorker<T> | undefined;
    let spare = 0;
    for (const w of this.#workers) {
      if (w === idle || w.state === 'dead' || !w.queue[0]?.started) continue;
      let n = 0;
      for (let i = 1; i < w.queue.length; i++) {
        const slot = w.queue[i]!;
        if (!slot.started && !slot.stealing && !slot.aborted) n++;
      }
      if (n > spare) {
        spare = n;
        victim = w;
      }
    }
    if (!victim) return;
    const ids: number[] = [];
    for (let i = victim.queue.length - 1; i >= 1 && ids.length < Math.ceil(spare / 2); i--) {
      const slot = victim.queue[i]!;
      if (slot.started || slot.stealing || slot.aborted) continue;
      slot.stealing = true;
      ids.push(slot.task.id);
    }
    if (ids.length > 0) victim.transport.send({ t: 'steal', ids });
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
    worker: PoolWorker<T>,
    crash: WorkerCrashedError | null | undefined,
    intentional: Error | null | undefined,
  ): void {
    const host = this.#host!;
    const queue = worker.queue;
    worker.queue = [];
    worker.outbox = [];
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
