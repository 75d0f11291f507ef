/**
 * The engine every executor shares: task records behind futures, the dependency graph, the ready
 * queue, resources, retries, timeouts, cancellation and shutdown. Where attempts run is the
 * runtime's business (runtime.ts); this file never touches a thread, process or socket.
 */
import {
  ExecutorStateError,
  ResourceUnavailableError,
  TaskCancelledError,
  withoutStack,
  TaskDefinitionError,
  TaskTimeoutError,
  UpstreamTaskError,
  describeError,
} from './errors.js';
import type { EventHub } from './events.js';
import {
  attemptHistoryLimit,
  endedAttempt,
  explanationText,
  formatDuration,
  type AttemptExplanation,
  type CancelledBy,
  type Explanation,
  type ResourceWait,
  type Situation,
} from './explain.js';
import { WeftFuture, sourceOf, type FutureSource } from './future.js';
import { ReadyQueue } from './ready-queue.js';
import { RemoteValue } from './remote.js';
import type { Attempt, Outcome, Runtime, RuntimeHost, TaskRef } from './runtime.js';
import { shippableSource } from './source.js';
import { describeValue } from './options.js';
import {
  formatResources,
  hasResources,
  noResources,
  ResourceLedger,
  type Resources,
} from './resources.js';
import { definitionOf, isTask, projectPathOf, type TaskDefinition } from './task.js';
import type { AnyFunction, FutureStatus } from './types.js';
import { assertCrossable, collectFutures, substituteFutures, type FutureLike } from './values.js';

export interface SchedulerOptions {
  runtime: Runtime;
  events: EventHub;
  /** Totals the executor offers; undefined: resources are not limited. */
  resources: Resources | undefined;
  /** Extra check at submit (e.g. a cluster: can any worker ever offer this?); throws to refuse. */
  checkTask?: ((definition: TaskDefinition) => void) | undefined;
  /** How long an aborted task may ignore its signal before its worker is stopped. */
  graceMs: number;
  /** Names the executor in messages, e.g. `LocalPoolExecutor (threads)`. */
  label: string;
}

const noArgs: unknown[] = [];
/** Stands for the ledger of a scheduler whose resources are not limited, in explain only. */
const nothingOffered = new ResourceLedger(noResources);

/** What a finished task's future resolves to: its value, loaded first if it stayed in the cluster. */
function loaded(value: unknown): unknown {
  return value instanceof RemoteValue ? value.load() : value;
}

/** Stands for `scatter`ed values in keys, events and messages. */
const scatterDefinition = definitionOf(function scatter(value: unknown): unknown {
  return value;
});
/** One reference object per task definition, shared by all its submissions. */
const moduleRefs = new WeakMap<TaskDefinition, TaskRef>();

type Where = 'waiting' | 'ready' | 'blocked' | 'delayed' | 'running' | 'done';

const keyPrefix = Math.floor(Math.random() * 0xffffffff)
  .toString(16)
  .padStart(8, '0');
let keyCounter = 0;

/** One submission: the state behind a future. */
class TaskRecord implements FutureSource<unknown> {
  /** Built on first use: 100,000 pending futures should not hold 100,000 key strings. */
  #key: string | undefined;
  readonly keyId: number;
  readonly seq: number;
  status: FutureStatus = 'pending';
  where: Where = 'waiting';
  value: unknown;
  /** Unresolved futures among the arguments. */
  pendingDeps = 0;
  /** Called once when this record settles (dependents, wait). */
  listeners: ((record: TaskRecord) => void)[] | undefined;
  attempts = 0;
  current: Attempt | undefined;
  timer: NodeJS.Timeout | undefined;
  startedAt = 0;
  /** The worker of the current attempt, once it started (reset when an attempt is handed out). */
  worker: string | undefined;
  /** Made on the first failed attempt, retry or cancel: a successful task never allocates one. */
  history: History | undefined;
  /** Values of futures from another copy of weft, once they resolved. */
  foreign: Map<FutureLike, unknown> | undefined;
  /** Some arguments are values stored in the cluster (`RemoteValue`s), fetched by the worker. */
  storedInputs = false;
  #promise: Promise<unknown> | undefined;
  #resolve: ((value: unknown) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;

  constructor(
    readonly scheduler: Scheduler,
    readonly definition: TaskDefinition,
    readonly ref: TaskRef | undefined,
    public args: unknown[],
    seq: number,
  ) {
    this.keyId = keyCounter++;
    this.seq = seq;
  }

  /** Unique per submission: the task's name, this process's random prefix, a counter. */
  get key(): string {
    return (this.#key ??= `${this.definition.options.name}-${keyPrefix}${this.keyId.toString(16)}`);
  }

  get name(): string {
    return this.definition.options.name;
  }

  get priority(): number {
    return this.definition.options.priority;
  }

  promise(): Promise<unknown> {
    if (!this.#promise) {
      if (this.status === 'finished') this.#promise = Promise.resolve(loaded(this.value));
      else if (this.status === 'error' || this.status === 'cancelled')
        this.#promise = Promise.reject(this.value);
      else {
        this.#promise = new Promise((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
    }
    return this.#promise;
  }

  cancel(): boolean {
    return this.scheduler.cancel(
      this,
      new TaskCancelledError(
        `Task '${this.name}' (key ${this.key}) was cancelled by Future.cancel().`,
      ),
      'cancel',
    );
  }

  /** Settles once; returns false when already settled. */
  settle(status: 'finished' | 'error' | 'cancelled', value: unknown): boolean {
    if (this.where === 'done') return false;
    this.where = 'done';
    this.status = status;
    this.value = value;
    this.args = noArgs;
    this.current = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (status === 'finished') this.#resolve?.(loaded(value));
    else this.#reject?.(value);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l(this);
    return true;
  }
}

/** What explain needs beyond a record's own fields; see TaskRecord.history. */
interface History {
  /** Ended attempts, oldest first, at most attemptHistoryLimit. */
  attempts: AttemptExplanation[];
  /** Older attempts dropped from `attempts`. */
  dropped: number;
  /** performance.now() when a delayed retry is due. */
  retryAt?: number;
  cancelledBy?: CancelledBy;
  cancelledWhile?: string;
}

function historyOf(record: TaskRecord): History {
  return (record.history ??= { attempts: [], dropped: 0 });
}

/** The scheduler behind a weft future, for `explain`. */
export function schedulerOf(future: unknown): Scheduler | undefined {
  const source = sourceOf(future);
  return source instanceof TaskRecord ? source.scheduler : undefined;
}

export class Scheduler implements RuntimeHost {
  readonly #runtime: Runtime;
  readonly #events: EventHub;
  /** What the executor offers and what is free; undefined when resources are not limited. */
  readonly #ledger: ResourceLedger | undefined;
  readonly #graceMs: number;
  readonly #label: string;
  readonly #checkTask: ((definition: TaskDefinition) => void) | undefined;
  readonly #ready = new ReadyQueue<TaskRecord>();
  /** Ready tasks whose resources are taken; they go back to the ready queue when some free up. */
  #blocked: TaskRecord[] = [];
  readonly #outstanding = new Set<TaskRecord>();
  #seq = 0;
  #attemptIds = 0;
  #pumpScheduled = false;
  #pumping = false;
  /** Depth of task settlements in progress (their dependents are queued, then pumped). */
  #settling = 0;
  #accepting = true;
  #idle: (() => void) | undefined;

  constructor(options: SchedulerOptions) {
    this.#runtime = options.runtime;
    this.#events = options.events;
    this.#ledger = options.resources ? new ResourceLedger(options.resources) : undefined;
    this.#graceMs = options.graceMs;
    this.#label = options.label;
    this.#checkTask = options.checkTask;
  }

  /** Number of tasks not yet settled. */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  // ---- submission -------------------------------------------------------------------------

  /**
   * A finished future holding `value`. A runtime with a store (a cluster) keeps the value there
   * once, and tasks that take the future get a reference their workers fetch.
   */
  scatter(value: unknown): WeftFuture<unknown> {
    if (!this.#accepting) {
      throw new ExecutorStateError(
        `${this.#label} is shutting down; scatter values before calling shutdown(), or start it again.`,
      );
    }
    const boundary = this.#runtime.boundary;
    if (boundary) assertCrossable(value, 'value', boundary);
    const record = new TaskRecord(this, scatterDefinition, undefined, noArgs, this.#seq++);
    const stored = this.#runtime.store ? this.#runtime.store(value, record.key) : value;
    record.settle('finished', stored);
    return new WeftFuture(record);
  }

  submit(fn: unknown, args: unknown[]): WeftFuture<unknown> {
    if (!this.#accepting) {
      throw new ExecutorStateError(
        `${this.#label} is shutting down; submit tasks before calling shutdown(), or start it again.`,
      );
    }
    if (typeof fn !== 'function') {
      throw new TaskDefinitionError(
        `submit() needs a function or a task() to run, but got ${describeValue(fn)}. Pass the function first, then its arguments: executor.submit(fn, ...args).`,
      );
    }
    const definition = definitionOf(fn as AnyFunction);
    const ref = this.#refFor(definition, fn as AnyFunction);
    const boundary = this.#runtime.boundary;
    if (boundary)
      for (let i = 0; i < args.length; i++) assertCrossable(args[i], `args[${i}]`, boundary);
    this.#checkFeasible(definition);
    this.#checkTask?.(definition);

    const record = new TaskRecord(this, definition, ref, args, this.#seq++);
    this.#outstanding.add(record);
    if (this.#events.active) this.#emitTask('submitted', record);

    const deps = new Set<FutureLike>();
    if (args.length > 0) for (const arg of args) collectFutures(arg, deps);
    for (const dep of deps) {
      const source = sourceOf(dep);
      if (source instanceof TaskRecord) {
        if (source.where === 'done') {
          if (source.status !== 'finished') {
            this.#failUpstream(record, source);
            break;
          }
          continue;
        }
        record.pendingDeps++;
        (source.listeners ??= []).push((upstream) => this.#onDependency(record, upstream));
      } else {
        // A future of another copy of weft: follow it through its promise.
        record.pendingDeps++;
        (dep as unknown as PromiseLike<unknown>).then(
          (value) => {
            (record.foreign ??= new Map()).set(dep, value);
            this.#onDependency(record, undefined);
          },
          (error: unknown) => this.#onForeignFailure(record, dep, error),
        );
      }
    }
    if (record.where === 'waiting' && record.pendingDeps === 0) this.#makeReady(record);
    return new WeftFuture(record);
  }

  #refFor(definition: TaskDefinition, fn: AnyFunction): TaskRef | undefined {
    if (!this.#runtime.boundary) return undefined;
    if (definition.moduleUrl) {
      let ref = moduleRefs.get(definition);
      if (!ref) {
        const projectPath = projectPathOf(definition.moduleUrl);
        ref = {
          kind: 'module',
          moduleUrl: definition.moduleUrl,
          name: definition.options.name,
          ...(projectPath ? { projectPath } : {}),
        };
        moduleRefs.set(definition, ref);
      }
      return ref;
    }
    const label = isTask(fn)
      ? `Task '${definition.options.name}'`
      : `Function '${definition.options.name || 'anonymous'}'`;
    const { source } = shippableSource(definition.fn, label);
    return { kind: 'source', source, name: definition.options.name };
  }

  #checkFeasible(definition: TaskDefinition): void {
    const short = this.#ledger?.shortfall(definition.options.resources);
    if (!short) return;
    const { resource: key, need, offered: have } = short;
    const offers = formatResources(this.#ledger!.totals, ', ') || 'no resources';
    throw new ResourceUnavailableError(
      `Task '${definition.options.name}' needs resource ${key}=${need}, but ${this.#label} offers ${have === undefined ? `no ${key}` : `${key}=${have}`} (it offers ${offers}), so it could never run. Pass resources: { ${key}: ${need} } to the executor, or lower the task's requirement.`,
    );
  }

  #onDependency(record: TaskRecord, upstream: TaskRecord | undefined): void {
    if (record.where !== 'waiting') return;
    if (upstream && upstream.status !== 'finished') {
      this.#failUpstream(record, upstream);
      return;
    }
    if (--record.pendingDeps === 0) this.#makeReady(record);
  }

  #onForeignFailure(record: TaskRecord, dep: FutureLike, error: unknown): void {
    if (record.where !== 'waiting') return;
    this.#finish(
      record,
      'error',
      new UpstreamTaskError(
        `Task '${record.name}' (key ${record.key}) did not run because upstream task ${dep.key} failed: ${describeError(error).message}`,
        dep.key,
        { cause: error },
      ),
    );
  }

  #failUpstream(record: TaskRecord, upstream: TaskRecord): void {
    const error = upstream.value;
    // Through a chain, report the root error and the task that failed first.
    const root = error instanceof UpstreamTaskError ? error.cause : error;
    const first = error instanceof UpstreamTaskError ? error.upstream : upstream.key;
    const why = upstream.status === 'cancelled' ? 'was cancelled' : 'failed';
    this.#finish(
      record,
      'error',
      new UpstreamTaskError(
        `Task '${record.name}' (key ${record.key}) did not run because upstream task ${first} ${why}: ${describeError(root).message}`,
        first,
        { cause: root },
      ),
    );
  }

  #makeReady(record: TaskRecord): void {
    if (record.args.length > 0) {
      record.args = substituteFutures(record.args, (f) => {
        const source = sourceOf(f);
        const value = source instanceof TaskRecord ? source.value : record.foreign?.get(f);
        // A value stored in the cluster goes as its reference: the task's worker fetches it.
        if (value instanceof RemoteValue) record.storedInputs = true;
        return value;
      }) as unknown[];
      record.foreign = undefined;
    }
    record.where = 'ready';
    if (
      this.#runtime.immediate &&
      !this.#pumping &&
      this.#settling === 0 &&
      this.#ready.size === 0 &&
      this.#runtime.capacity() > 0
    ) {
      // LocalExecutor: run inside submit, without touching the queue, while it has a free slot.
      if (this.#runtime.capacity() > 0 && this.#canRun(record)) {
        this.#startAttempt(record);
        return;
      }
    }
    this.#ready.push(record);
    if (this.#settling === 0) this.#schedulePump();
  }

  // ---- dispatch ---------------------------------------------------------------------------

  #schedulePump(): void {
    if (this.#runtime.immediate) {
      this.#pump();
      return;
    }
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#ready.size > 0 && this.#runtime.capacity() > 0) {
        const record = this.#ready.pop()!;
        if (!this.#canRun(record)) {
          record.where = 'blocked';
          this.#blocked.push(record);
          continue;
        }
        this.#startAttempt(record);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #canRun(record: TaskRecord): boolean {
    return this.#ledger === undefined || this.#ledger.fits(record.definition.options.resources);
  }

  #release(attempt: Attempt): void {
    if (this.#ledger === undefined) return;
    const need = attempt.definition.options.resources;
    this.#ledger.release(need);
    // Only a release of some resource can unblock a task: blocked tasks wait for nothing else.
    if (this.#blocked.length > 0 && hasResources(need)) {
      const blocked = this.#blocked;
      this.#blocked = [];
      for (const record of blocked) {
        if (record.where !== 'blocked') continue;
        record.where = 'ready';
        this.#ready.push(record);
      }
      this.#schedulePump();
    }
  }

  #startAttempt(record: TaskRecord): void {
    record.attempts++;
    record.worker = undefined;
    record.where = 'running';
    record.status = 'running';
    const attempt: Attempt & { record: TaskRecord; reported: boolean } = {
      id: ++this.#attemptIds,
      key: record.key,
      name: record.name,
      number: record.attempts,
      definition: record.definition,
      ref: record.ref,
      args: record.args,
      storedInputs: record.storedInputs,
      timeoutMs: record.definition.options.timeoutMs,
      record,
      reported: false,
    };
    record.current = attempt;
    this.#ledger?.take(record.definition.options.resources);
    this.#runtime.run(attempt);
  }

  // ---- RuntimeHost ------------------------------------------------------------------------

  get hasListeners(): boolean {
    return this.#events.active;
  }

  started(attempt: Attempt, worker: string): void {
    const record = (attempt as AttemptOf).record;
    if (record.current !== attempt) return;
    record.startedAt = performance.now();
    record.worker = worker;
    const timeoutMs = attempt.timeoutMs;
    if (timeoutMs !== undefined) {
      record.timer = setTimeout(() => this.#timeout(record, attempt), timeoutMs);
    }
    if (this.#events.active) this.#emitTask('started', record, { worker, attempt: attempt.number });
  }

  ranOn(attempt: Attempt, worker: string): void {
    const record = (attempt as AttemptOf).record;
    if (record.current === attempt && record.worker !== undefined) record.worker = worker;
  }

  settled(attempt: Attempt, outcome: Outcome): void {
    const record = this.#report(attempt);
    if (record) {
      if (record.timer) clearTimeout(record.timer);
      record.timer = undefined;
      const timeoutMs = attempt.timeoutMs;
      if (outcome.ok) {
        // A synchronous task in the caller's thread blocks the timer: judge it by its duration.
        if (timeoutMs !== undefined && performance.now() - record.startedAt > timeoutMs) {
          this.#attemptFailed(record, attempt, this.#timeoutError(record, attempt));
        } else {
          this.#finish(record, 'finished', outcome.value);
        }
      } else {
        this.#attemptFailed(record, attempt, outcome.error);
      }
    }
    this.#schedulePump();
  }

  requeue(attempt: Attempt): void {
    const record = this.#report(attempt);
    if (record) {
      record.attempts--;
      record.status = 'pending';
      record.where = 'ready';
      this.#ready.push(record);
    }
    this.#schedulePump();
  }

  /**
   * Takes a runtime's one report for an attempt: frees its resources and returns its record if
   * the attempt is still the record's current one (else the scheduler already gave up on it).
   */
  #report(attempt: Attempt): TaskRecord | undefined {
    const a = attempt as AttemptOf;
    if (a.reported) return undefined;
    a.reported = true;
    this.#release(attempt);
    if (a.record.current !== attempt) return undefined;
    a.record.current = undefined;
    return a.record;
  }

  capacityAvailable(): void {
    this.#schedulePump();
  }

  workerEvent(event: Parameters<RuntimeHost['workerEvent']>[0]): void {
    if (this.#events.active) this.#events.emit(event);
  }

  warning(message: string): void {
    process.stderr.write(`weft: ${message}\n`);
    if (this.#events.active) this.#events.emit({ type: 'warning', message, timestamp: Date.now() });
  }

  // ---- failures, retries, timeouts, cancellation -----------------------------------------

  #timeoutError(record: TaskRecord, attempt: Attempt): TaskTimeoutError {
    return new TaskTimeoutError(
      `Task '${record.name}' (key ${record.key}) attempt ${attempt.number} ran longer than its timeoutMs of ${attempt.timeoutMs} ms and was stopped. Raise timeoutMs, or make the task stop sooner (check taskContext().signal).`,
    );
  }

  #timeout(record: TaskRecord, attempt: Attempt): void {
    if (record.current !== attempt) return;
    record.timer = undefined;
    record.current = undefined;
    const error = this.#timeoutError(record, attempt);
    this.#runtime.abort(attempt, error, this.#graceMs);
    this.#attemptFailed(record, attempt, error);
    this.#schedulePump();
  }

  #attemptFailed(record: TaskRecord, attempt: Attempt, error: unknown): void {
    const options = record.definition.options;
    this.#remember(record, attempt.number, error, attempt.timeoutMs);
    if (record.attempts <= options.retries && !(error instanceof TaskCancelledError)) {
      record.status = 'pending';
      record.where = 'delayed';
      if (options.retryDelayMs > 0)
        historyOf(record).retryAt = performance.now() + options.retryDelayMs;
      if (this.#events.active) {
        this.#emitTask('retried', record, { attempt: attempt.number, error: describeError(error) });
      }
      const again = (): void => {
        record.timer = undefined;
        if (record.where !== 'delayed') return;
        record.where = 'ready';
        this.#ready.push(record);
        this.#schedulePump();
      };
      if (options.retryDelayMs > 0) record.timer = setTimeout(again, options.retryDelayMs);
      else again();
      return;
    }
    this.#finish(record, 'error', error);
  }

  /** Adds an ended attempt to the record's bounded history. */
  #remember(
    record: TaskRecord,
    number: number,
    error: unknown,
    timeoutMs: number | undefined,
  ): void {
    const history = historyOf(record);
    const started = record.worker === undefined ? undefined : epochOf(record.startedAt);
    history.attempts.push(endedAttempt(number, record.worker, started, error, timeoutMs));
    if (history.attempts.length > attemptHistoryLimit) {
      history.attempts.shift();
      history.dropped++;
    }
  }

  /** Cancels a record; returns false when it had already ended. */
  cancel(record: TaskRecord, reason: TaskCancelledError, by: CancelledBy): boolean {
    if (record.where === 'done') return false;
    const history = historyOf(record);
    history.cancelledBy = by;
    history.cancelledWhile = this.#whereNow(record);
    if (record.where === 'running' && record.current)
      this.#remember(record, record.current.number, reason, undefined);
    switch (record.where) {
      case 'ready':
        this.#ready.remove(record);
        break;
      case 'blocked':
        // Left in #blocked: the next release skips records that are no longer blocked (filtering
        // here made cancelling many blocked tasks quadratic).
        break;
      case 'running': {
        // Detach first: a runtime may report the aborted attempt synchronously.
        const attempt = record.current;
        record.current = undefined;
        if (attempt) this.#runtime.abort(attempt, reason, this.#graceMs);
        break;
      }
      default:
        break; // waiting and delayed tasks simply never start
    }
    this.#finish(record, 'cancelled', reason);
    this.#schedulePump();
    return true;
  }

  #finish(record: TaskRecord, status: 'finished' | 'error' | 'cancelled', value: unknown): void {
    const worker = record.worker;
    const startedAt = record.startedAt;
    const attempt = record.attempts;
    // Dependents that become ready together here start in priority order, also on LocalExecutor.
    this.#settling++;
    let settled: boolean;
    try {
      settled = record.settle(status, value);
    } finally {
      this.#settling--;
    }
    if (!settled) return;
    if (status === 'error' && attempt > 0 && this.#runtime.taskFailed)
      this.#runtime.taskFailed(record.key, () => this.#explain(record));
    if (this.#settling === 0 && this.#ready.size > 0) this.#schedulePump();
    this.#outstanding.delete(record);
    if (this.#events.active) {
      const type = status === 'finished' ? 'finished' : status === 'error' ? 'failed' : 'cancelled';
      this.#emitTask(type, record, {
        ...(worker ? { worker, durationMs: performance.now() - startedAt } : {}),
        ...(attempt > 0 ? { attempt } : {}),
        ...(status === 'finished' ? {} : { error: describeError(value) }),
      });
    }
    if (this.#outstanding.size === 0 && this.#idle) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
  }

  #emitTask(
    type: Parameters<EventHub['emit']>[0]['type'],
    record: TaskRecord,
    extra: object = {},
  ): void {
    this.#events.emit({
      type,
      key: record.key,
      name: record.name,
      time: Date.now(),
      ...extra,
    } as never);
  }

  // ---- explain ----------------------------------------------------------------------------

  /**
   * Why a task of this scheduler is where it is. Reads what the scheduler keeps anyway (the
   * record, the ready queue, resources) plus the record's attempt history; scans the outstanding
   * tasks, so it costs O(tasks) per call and nothing when never called.
   */
  explain(future: unknown): Promise<Explanation> {
    return this.#explain(sourceOf(future) as TaskRecord);
  }

  /**
   * Explains an unsettled task of this scheduler by its key (for `weft explain` from another
   * process); undefined when it has none such. Parses the key rather than indexing records:
   * an index would cost every task something, and this is rare.
   */
  explainKey(key: string): Promise<Explanation> | undefined {
    const dash = key.lastIndexOf('-');
    const tail = key.slice(dash + 1);
    if (dash < 0 || !tail.startsWith(keyPrefix)) return undefined;
    const id = Number.parseInt(tail.slice(keyPrefix.length), 16);
    if (!Number.isSafeInteger(id)) return undefined;
    for (const record of this.#outstanding)
      if (record.keyId === id && record.key === key) return this.#explain(record);
    return undefined;
  }

  async #explain(record: TaskRecord): Promise<Explanation> {
    const history = record.history;
    const attempts: AttemptExplanation[] = history ? [...history.attempts] : [];
    const situation: Situation = {
      key: record.key,
      name: record.name,
      status: record.status,
      label: this.#label,
      priority: record.priority,
      retries: record.definition.options.retries,
      waitingOn: [],
      attempts,
      droppedAttempts: history?.dropped ?? 0,
    };
    switch (record.where) {
      case 'waiting':
        situation.waitingOn = this.#upstreamOf(record);
        break;
      case 'ready': {
        const rank = this.#ready.rank(record);
        if (rank)
          situation.queue = {
            ...rank,
            running: this.#runningKeys(),
            hasCapacity: this.#runtime.capacity() > 0,
          };
        // Only a ledger gates a ready task; without one (LocalExecutor, a cluster's client) its
        // resources are not what it waits for.
        const short = this.#ledger ? this.#resourceWaits(record) : [];
        if (short.length > 0) situation.blocked = short;
        break;
      }
      case 'blocked':
        situation.blocked = this.#resourceWaits(record);
        break;
      case 'delayed':
        situation.retryInMs = Math.max(
          0,
          (history?.retryAt ?? performance.now()) - performance.now(),
        );
        break;
      case 'running': {
        const current = record.current;
        const started = record.worker === undefined ? undefined : epochOf(record.startedAt);
        const detail = current ? await this.#runtime.explain?.(current, record.worker) : undefined;
        situation.current = {
          number: record.attempts,
          ...(record.worker === undefined ? {} : { worker: record.worker }),
          ...(started === undefined ? {} : { startedAt: started }),
          ...(detail ? { detail } : {}),
        };
        attempts.push({
          number: record.attempts,
          ...(record.worker === undefined ? {} : { worker: record.worker, startedAt: started }),
          outcome: 'running',
        });
        break;
      }
      case 'done':
        if (record.status === 'finished' && record.attempts > 0) {
          attempts.push({
            number: record.attempts,
            // No end time: taking one per task would cost every task (W1) for a rare question.
            ...(record.worker === undefined
              ? {}
              : { worker: record.worker, startedAt: epochOf(record.startedAt) }),
            outcome: 'finished',
          });
        } else if (record.status !== 'finished') {
          situation.error = record.value;
          if (history?.cancelledBy) situation.cancelledBy = history.cancelledBy;
          if (history?.cancelledWhile) situation.cancelledWhile = history.cancelledWhile;
        }
        break;
    }
    return {
      key: situation.key,
      name: situation.name,
      status: situation.status,
      text: explanationText(situation),
      waitingFor: situation.waitingOn.map((u) => u.key),
      attempts,
    };
  }

  /** The unfinished upstream futures of a waiting record, with their state in a phrase. */
  #upstreamOf(record: TaskRecord): { key: string; state: string }[] {
    const deps = new Set<FutureLike>();
    for (const arg of record.args) collectFutures(arg, deps);
    const out: { key: string; state: string }[] = [];
    for (const dep of deps) {
      const source = sourceOf(dep);
      if (source instanceof TaskRecord) {
        if (source.where === 'done') continue;
        out.push({ key: source.key, state: this.#stateOf(source) });
      } else if (!record.foreign?.has(dep)) {
        out.push({ key: dep.key, state: 'a future of another copy of weft, not settled yet' });
      }
    }
    return out;
  }

  /** A record's state in a short phrase, for the tasks that wait for it. */
  #stateOf(record: TaskRecord): string {
    switch (record.where) {
      case 'waiting':
        return `pending, itself waiting for ${record.pendingDeps} upstream task${record.pendingDeps === 1 ? '' : 's'}`;
      case 'ready':
        return 'pending in the ready queue';
      case 'blocked':
        return 'pending, waiting for resources';
      case 'delayed':
        return `pending, to be retried after ${record.attempts} failed attempt${record.attempts === 1 ? '' : 's'}`;
      case 'running':
        return record.worker === undefined
          ? 'handed to a worker, not started yet'
          : `running on ${record.worker} for ${formatDuration(performance.now() - record.startedAt)}`;
      default:
        return record.status;
    }
  }

  /** Where a record is right now, for the sentence about its cancel. */
  #whereNow(record: TaskRecord): string {
    switch (record.where) {
      case 'waiting':
        return 'while it waited for upstream tasks';
      case 'ready':
        return 'while it waited in the ready queue';
      case 'blocked':
        return 'while it waited for resources';
      case 'delayed':
        return 'while it waited to be retried';
      case 'running':
        return record.worker === undefined
          ? 'after it was handed to a worker, before it started'
          : `while it was running on ${record.worker}, after ${formatDuration(performance.now() - record.startedAt)}`;
      default:
        return '';
    }
  }

  #runningKeys(): string[] {
    const keys: string[] = [];
    for (const r of this.#outstanding) if (r.where === 'running') keys.push(r.key);
    return keys;
  }

  #resourceWaits(record: TaskRecord): ResourceWait[] {
    // Without a ledger (LocalExecutor, a cluster) nothing is free here, so every resource the
    // task needs is listed, with no total (explain.ts: `offered` undefined).
    const ledger = this.#ledger ?? nothingOffered;
    return ledger.shortages(record.definition.options.resources).map((short) => {
      const holders: ResourceWait['holders'] = [];
      for (const r of this.#outstanding) {
        const amount = r.definition.options.resources[short.resource];
        if (r.where === 'running' && amount) holders.push({ key: r.key, amount });
      }
      return { ...short, holders };
    });
  }

  // ---- shutdown ---------------------------------------------------------------------------

  /** Stops accepting tasks; cancels outstanding ones when asked; resolves when none is left. */
  async drain(cancelPending: boolean): Promise<void> {
    this.#accepting = false;
    if (cancelPending) {
      // Queued tasks first, so cancelling a running one cannot let a queued one start.
      const all = [...this.#outstanding];
      const running = all.filter((record) => record.where === 'running');
      const cancel = (record: TaskRecord): void => {
        // Where a shutdown was called from says nothing about a task; capturing 200,000 stacks
        // would take seconds.
        const error = withoutStack(
          () =>
            new TaskCancelledError(
              `Task '${record.name}' (key ${record.key}) was cancelled because ${this.#label} shut down with cancelPending.`,
            ),
        );
        this.cancel(record, error, 'shutdown');
      };
      for (const record of all) if (record.where !== 'running') cancel(record);
      for (const record of running) cancel(record);
    }
    if (this.#outstanding.size === 0) return;
    await new Promise<void>((resolve) => (this.#idle = resolve));
  }
}

type AttemptOf = Attempt & { record: TaskRecord; reported: boolean };

/** A performance.now() time as milliseconds since the epoch. */
function epochOf(time: number): number {
  return Math.round(performance.timeOrigin + time);
}
