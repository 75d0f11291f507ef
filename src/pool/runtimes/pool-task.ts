/**
 * What a `WorkerPool` is given and what it says back: the tasks it runs, the host it reports to,
 * its options, and the state it keeps for each task it holds.
 */
import type { WorkerEvent } from '../../core/events.js';
import type { Outcome, TaskRef } from '../../core/runtime.js';
import type { Scheduler, SpawnOptions } from '../transports.js';
import type { PoolWorker } from './pool-worker.js';

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

/** What the pool knows of one task it holds: in its slots and its worker's queue until it ends. */
export interface Slot<T extends PoolTask> {
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
