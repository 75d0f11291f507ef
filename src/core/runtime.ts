/**
 * The one interface between the scheduler (futures, dependencies, retries, timeouts, resources)
 * and where attempts actually run: the caller's thread, worker threads, child processes, or a
 * cluster. The scheduler decides what runs and when; a runtime only runs attempts.
 */
import type { Boundary } from './values.js';
import type { TaskDefinition } from './task.js';
import type { WorkerEvent } from './events.js';
import type { Explanation } from './explain.js';

/** How a task reaches a worker: by module and name, or by source. */
export type TaskRef =
  | {
      kind: 'module';
      moduleUrl: string;
      name: string;
      /** The module's path relative to its project (nearest package.json), for remote workers. */
      projectPath?: string;
    }
  | { kind: 'source'; source: string; name: string };

/** One attempt of one task, as handed to a runtime. */
export interface Attempt {
  /** Unique among all attempts of this scheduler. */
  readonly id: number;
  readonly key: string;
  readonly name: string;
  /** 1 for the first attempt. */
  readonly number: number;
  readonly definition: TaskDefinition;
  /** How a worker finds the task; absent for runtimes in the caller's realm. */
  readonly ref: TaskRef | undefined;
  /** Arguments with every future replaced by its value. */
  readonly args: unknown[];
  /** Some arguments are `RemoteValue`s (values stored in a cluster), which the worker fetches. */
  readonly storedInputs?: boolean;
  /** Milliseconds; the runtime reports the start so the scheduler can time it. */
  readonly timeoutMs: number | undefined;
}

/** What ended an attempt. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Callbacks a runtime makes into the scheduler. */
export interface RuntimeHost {
  /** The attempt began running on `worker`. */
  started(attempt: Attempt, worker: string): void;
  /**
   * Optional: the runtime learned only at the end which worker ran the attempt (a cluster whose
   * workers were not asked to report starts); call before `settled`.
   */
  ranOn?(attempt: Attempt, worker: string): void;
  /** The attempt ended. Calls for attempts the scheduler gave up on are ignored. */
  settled(attempt: Attempt, outcome: Outcome): void;
  /** The attempt never started (its worker went away first): run it again without counting it. */
  requeue(attempt: Attempt): void;
  /** The runtime can take more attempts now. */
  capacityAvailable(): void;
  /** A worker joined, left or crashed. */
  workerEvent(event: WorkerEvent): void;
  /** Something the user must know (Redis unreachable, back): stderr and a `warning` event. */
  warning(message: string): void;
  /**
   * Optional: true while someone listens to the executor's events, so that a runtime can report
   * what it otherwise leaves out (a cluster then has its workers report every start).
   */
  readonly hasListeners?: boolean;
  /** Explains an unsettled task by key (for `weft explain`); undefined when it is not here. */
  explainKey?(key: string): Promise<Explanation> | undefined;
}

export interface Runtime {
  /** Where values must be able to go (checked at submit); undefined: the caller's realm. */
  readonly boundary: Boundary | undefined;
  /** True when attempts run inside `submit` itself (LocalExecutor). */
  readonly immediate: boolean;
  /** Acquires workers. */
  start(host: RuntimeHost): Promise<void>;
  /** How many more attempts it accepts right now. */
  capacity(): number;
  /** Runs an attempt: reports `started`, then `settled` (or `requeue`). */
  run(attempt: Attempt): void;
  /**
   * Stops an attempt: aborts its signal with `reason`; if it is still running after `graceMs`,
   * stops its worker. The scheduler has already settled the task; later reports are ignored.
   */
  abort(attempt: Attempt, reason: Error, graceMs: number): void;
  /**
   * Keeps `value` where workers read it (a cluster's Redis) and returns what stands for it (a
   * `RemoteValue`); `key` names it in messages. Absent: values stay in the caller. Throws
   * `SerializationError` for a value that cannot be stored.
   */
  store?(value: unknown, key: string): unknown;
  /**
   * `shutdown()` was called (`cancelPending`: and everything will be cancelled): from now on the runtime may settle what it can no longer finish
   * (a cluster whose Redis stays unreachable past a grace period), so that the drain ends.
   */
  beginShutdown?(cancelPending: boolean): void;
  /**
   * Optional, for `explain`: a sentence or two on where a handed-out attempt is (its worker's
   * pid, its place in a worker's queue, a cluster worker's last heartbeat). Only called on demand.
   */
  explain?(
    attempt: Attempt,
    worker: string | undefined,
  ): string | undefined | Promise<string | undefined>;
  /**
   * Optional: a task failed for good after at least one attempt; `explain` builds its explanation
   * (a cluster stores it so that `weft explain` finds it after the client is gone).
   */
  taskFailed?(key: string, explain: () => Promise<Explanation>): void;
  /** Releases every worker, handle and timer. Attempts still running are stopped. */
  close(): Promise<void>;
}
