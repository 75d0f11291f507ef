/**
 * What every executor facade shares: the start/shutdown state machine, argument checks, and
 * delegation to one `Scheduler` per started session. Subclasses only say which runtime to use.
 */
import { ExecutorStateError, WeftError } from '../core/errors.js';
import type { Explanation } from '../core/explain.js';
import { EventHub, type ExecutorEvents } from '../core/events.js';
import type { Runtime } from '../core/runtime.js';
import type { TaskDefinition } from '../core/task.js';
import { Scheduler, schedulerOf } from '../core/scheduler.js';
import type {
  AnyFunction,
  Executor,
  Future,
  Mappable,
  MaybeFutures,
  Resolved,
  ShutdownOptions,
  Task,
} from '../core/types.js';
import { waitFor, zipMapArguments } from '../core/wait.js';
import {
  parseDashboardOption,
  type DashboardHandle,
  type DashboardOption,
  type DashboardSettings,
} from '../dashboard/options.js';

export type { DashboardHandle, DashboardOption };

/**
 * Settled tasks a dashboard can still explain: the latest submitted, and apart from them the latest
 * that failed (the dashboard lists 50 errors), so that a long run does not push its failures out.
 * Unsettled tasks are always found through the scheduler.
 */
const explainableRecent = 2_000;
const explainableFailed = 100;

/** Futures by key, oldest first, at most `limit` (a Map keeps insertion order). */
class RecentFutures {
  readonly #futures = new Map<string, Future<unknown>>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  add(future: Future<unknown>): void {
    this.#futures.delete(future.key);
    this.#futures.set(future.key, future);
    if (this.#futures.size > this.#limit) {
      this.#futures.delete(this.#futures.keys().next().value!);
    }
  }

  get(key: string): Future<unknown> | undefined {
    return this.#futures.get(key);
  }
}

/** Settings a facade hands to the shared engine when it starts. */
export interface EngineSettings {
  runtime: Runtime;
  resources: Readonly<Record<string, number>> | undefined;
  graceMs: number;
  /** Extra check at submit; throws to refuse the task. */
  checkTask?: (definition: TaskDefinition) => void;
}

export abstract class BaseExecutor implements Executor {
  readonly #events = new EventHub();
  #scheduler: Scheduler | undefined;
  /** Every session's scheduler, so futures stay explainable after shutdown or a restart. */
  readonly #schedulers = new WeakSet<Scheduler>();
  #runtime: Runtime | undefined;
  #starting: Promise<unknown> | undefined;
  #shutdown: Promise<void> | undefined;
  readonly #dashboardSettings: Required<DashboardSettings> | undefined;
  #dashboard: DashboardHandle | undefined;
  /** Only while a dashboard runs: what it can explain besides unsettled tasks. */
  #recent: { submitted: RecentFutures; failed: RecentFutures } | undefined;

  /**
   * `dashboard`: serve a live view of the work while started (see `dashboardUrl`); validated here.
   * `owner` names the executor class in messages.
   */
  constructor(options: { dashboard?: DashboardOption } | undefined, owner: string) {
    this.#dashboardSettings = parseDashboardOption(options?.dashboard, owner);
  }

  /** Names the executor in messages, e.g. `LocalPoolExecutor (threads)`. */
  protected abstract get label(): string;
  /** Builds the runtime and settings for one session; acquires nothing yet. */
  protected abstract createEngine(): EngineSettings;

  /** Task and worker events; see `TaskEvent` and `WorkerEvent`. */
  get events(): ExecutorEvents {
    return this.#events;
  }

  /** URL of the live dashboard, when one is running. */
  get dashboardUrl(): string | undefined {
    return this.#dashboard?.url;
  }

  /** True between a successful `start()` and the end of `shutdown()`. */
  get isRunning(): boolean {
    return this.#scheduler !== undefined && this.#shutdown === undefined;
  }

  start(): Promise<this>;
  start<T>(body: (executor: this) => T | Promise<T>): Promise<T>;
  async start<T>(body?: (executor: this) => T | Promise<T>): Promise<this | T> {
    if (this.#starting || this.#scheduler) {
      throw new ExecutorStateError(
        `${this.label} is already started. Call shutdown() before starting it again, or create another executor.`,
      );
    }
    const starting = this.#startEngine();
    this.#starting = starting;
    try {
      await starting;
    } finally {
      this.#starting = undefined;
    }
    if (!body) return this;
    try {
      return await body(this);
    } finally {
      await this.shutdown();
    }
  }

  async #startEngine(): Promise<void> {
    const engine = this.createEngine();
    const scheduler = new Scheduler({
      runtime: engine.runtime,
      events: this.#events,
      resources: engine.resources,
      graceMs: engine.graceMs,
      label: this.label,
      checkTask: engine.checkTask,
    });
    // The dashboard listens before the runtime starts, so it sees every worker join.
    const dashboard = this.#dashboardSettings;
    if (dashboard) {
      const { startDashboard } = await import('../dashboard/server.js');
      const recent = {
        submitted: new RecentFutures(explainableRecent),
        failed: new RecentFutures(explainableFailed),
      };
      const stopWatching = this.#events.on('failed', (event) => {
        const future = recent.submitted.get(event.key);
        if (future) recent.failed.add(future);
      });
      this.#recent = recent;
      const explain = (key: string): Promise<Explanation> | undefined => {
        const unsettled = scheduler.explainKey(key);
        if (unsettled) return unsettled;
        const future = recent.failed.get(key) ?? recent.submitted.get(key);
        return future && scheduler.explain(future);
      };
      try {
        const handle = await startDashboard(this.#events, {
          label: this.label,
          ...dashboard,
          explain,
        });
        this.#dashboard = {
          url: handle.url,
          close: async () => {
            stopWatching();
            if (this.#recent === recent) this.#recent = undefined;
            await handle.close();
          },
        };
      } catch (error) {
        stopWatching();
        this.#recent = undefined;
        throw error;
      }
    }
    try {
      await engine.runtime.start(scheduler);
    } catch (error) {
      await engine.runtime.close().catch(() => undefined);
      await this.#dashboard?.close();
      this.#dashboard = undefined;
      throw error;
    }
    this.#runtime = engine.runtime;
    this.#scheduler = scheduler;
    this.#schedulers.add(scheduler);
    this.#shutdown = undefined;
    if (this.#dashboard) process.stderr.write(`Dashboard: ${this.#dashboard.url}\n`);
  }

  /**
   * Waits for every submitted task (queued ones too) unless `cancelPending` is set, then releases
   * every thread, process and timer. Idempotent: a second call returns the first call's promise.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    if (this.#shutdown) return this.#shutdown;
    const scheduler = this.#scheduler;
    const runtime = this.#runtime;
    if (!scheduler || !runtime) return Promise.resolve();
    this.#shutdown = (async () => {
      try {
        runtime.beginShutdown?.(options.cancelPending === true);
        await scheduler.drain(options.cancelPending === true);
      } finally {
        await runtime.close();
        await this.#dashboard?.close();
        this.#dashboard = undefined;
        this.#scheduler = undefined;
        this.#runtime = undefined;
        this.#events.close();
      }
    })();
    const done = this.#shutdown;
    // After shutdown the executor may be started again.
    void done
      .finally(() => {
        if (this.#shutdown === done) this.#shutdown = undefined;
      })
      .catch(() => undefined);
    return done;
  }

  /** `await using executor = await new LocalPoolExecutor().start()` shuts it down at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /**
   * Submits `fn(...args)` and returns its future at once. Arguments may be futures, also nested in
   * arrays and plain objects: the task starts when they have finished and receives their values.
   * Throws (rather than rejecting) for what is wrong at call time.
   */
  submit<F extends AnyFunction>(
    fn: F | Task<F>,
    ...args: MaybeFutures<Parameters<F>>
  ): Future<Awaited<ReturnType<F>>> {
    const future = this.#active('submit').submit(fn, args as unknown[]) as Future<
      Awaited<ReturnType<F>>
    >;
    this.#remember(future);
    return future;
  }

  /**
   * Calls `fn(a[i], b[i], ...)` for every index i of the iterables, which must be equally long;
   * `unmapped(x)` passes `x` to every call. Elements may be futures. Returns one future per call.
   */
  map<F extends AnyFunction>(
    fn: F | Task<F>,
    ...iterables: Mappable<Parameters<F>>
  ): Future<Awaited<ReturnType<F>>>[] {
    const scheduler = this.#active('map');
    const name = typeof fn === 'function' ? fn.name || 'fn' : String(fn);
    const calls = zipMapArguments(name, iterables as unknown[]);
    if (calls.length === 0 && typeof fn !== 'function') scheduler.submit(fn, []);
    const futures = calls.map((args) => scheduler.submit(fn, args)) as Future<
      Awaited<ReturnType<F>>
    >[];
    if (this.#recent) for (const future of futures) this.#remember(future);
    return futures;
  }

  /** Resolves every future inside arrays, tuples and plain objects; rejects with the first task error. */
  wait<T>(value: T): Promise<Resolved<T>> {
    return waitFor(value);
  }

  /**
   * A finished future holding `value`. Pass it (or `unmapped(future)` in `map`) to many tasks: on a
   * cluster the value is stored once and each worker fetches it at most once while it keeps it,
   * instead of the value travelling with every task. Throws `SerializationError` for a value that
   * cannot reach this executor's workers.
   */
  scatter<T>(value: T): Future<T> {
    return this.#active('scatter').scatter(value) as Future<T>;
  }

  /**
   * Why a task is where it is: its status, the upstream keys it waits for, its attempts (worker,
   * times, outcome, error) and `text`, a few sentences saying what holds it up or how it failed.
   * Works during and after a session; costs nothing until called. Rejects with `WeftError` for
   * anything that is not a future of this executor.
   * @example console.log((await executor.explain(future)).text);
   */
  async explain(future: Future<unknown>): Promise<Explanation> {
    const scheduler = schedulerOf(future);
    if (!scheduler || !this.#schedulers.has(scheduler)) {
      const what =
        future !== null && typeof future === 'object' && 'key' in future
          ? `future ${String((future as { key: unknown }).key)}, which belongs to another executor`
          : `${typeof future === 'object' ? String(future) : typeof future}, which is not a future`;
      throw new WeftError(
        `explain() was called on ${this.label} with ${what}. Pass a future that this executor's submit() or map() returned.`,
      );
    }
    return scheduler.explain(future);
  }

  /** Keeps a future explainable for the dashboard, when one runs. */
  #remember(future: Future<unknown>): void {
    const recent = this.#recent;
    if (!recent) return;
    recent.submitted.add(future);
    // A task can fail before submit returns (in the caller's thread), before the watch sees it.
    if (future.status === 'error') recent.failed.add(future);
  }

  #active(method: string): Scheduler {
    const scheduler = this.#scheduler;
    if (!scheduler || this.#shutdown) {
      const why = this.#shutdown
        ? 'it is shutting down or was shut down'
        : 'it has not been started';
      throw new ExecutorStateError(
        `${method}() was called on ${this.label}, but ${why}. Call \`await executor.start()\` first (or use executor.start(async (ex) => ...)).`,
      );
    }
    return scheduler;
  }
}
