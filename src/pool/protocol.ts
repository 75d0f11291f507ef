/**
 * Messages between the pool (parent) and a worker (thread or child process). Both sides batch:
 * one message carries many tasks or many results, which is what lifts throughput past one pool
 * call per task. A worker starts its tasks in the order it received them and keeps up to
 * `concurrency` of them in flight (an async task is in flight until its promise settles; a
 * synchronous one holds the thread until it returns).
 *
 * Parent → worker
 *   `run`    (parent) tasks to append to the worker's queue; each: `id` (attempt id), `key`,
 *            `attempt` (1-based), `ref` (a number naming a task reference; the first task that
 *            uses a number also carries `def`, the reference itself: module+name or source,
 *            so later messages stay small), `args`, `timed` (the worker
 *            must report the start, because a timeout clock is waiting for it), `encoded`
 *            (some arguments are encoded values to decode first: a cluster worker's pool).
 *   `abort`  (parent) abort attempt `id` with `reason`: a queued one is dropped and reported
 *            back as `aborted`; a running one has its AbortSignal fired.
 *   `steal`  (parent) give back the attempts `ids` that have not started (an idle worker will
 *            run them); each comes back as `stolen`, the others simply run here.
 * Worker → parent
 *   `ready`  (worker) the bootstrap has loaded; `pid` of the worker process.
 *   `batch`  (worker) `done`: results in completion order (value, error envelope, or aborted;
 *            for a cluster worker's pool the value's v8 bytes, in shared memory when large);
 *            `started`: ids of tasks that started and that the parent cannot infer: a timed task
 *            (sent right before it starts, since a timeout clock waits for it) and a task started
 *            while another is in flight. The parent infers the rest: the oldest task a worker
 *            holds is always running, since the worker starts tasks in the order it got them.
 *   `fatal`  (worker) an uncaught exception is about to end the worker; `error` is its envelope.
 */
import type { ErrorEnvelope } from '../core/errors.js';
import type { TaskRef } from '../core/runtime.js';

export interface WireTask {
  id: number;
  key: string;
  attempt: number;
  ref: number;
  def?: TaskRef;
  args: unknown[];
  timed: boolean;
  /** Some arguments are encoded values to decode first (a cluster worker's pool, encoded.ts). */
  encoded?: true;
}

export type WireResult =
  | { id: number; ok: true; value: unknown }
  /** A cluster worker's pool (`WorkerSetup.encoded`): the value's v8 bytes. */
  | { id: number; ok: true; encoded: Uint8Array }
  | { id: number; ok: false; error: ErrorEnvelope }
  | { id: number; ok: false; aborted: true }
  | { id: number; ok: false; stolen: true };

export type ToWorker =
  | { t: 'run'; tasks: WireTask[] }
  | { t: 'abort'; id: number; reason: ErrorEnvelope }
  | { t: 'steal'; ids: number[] };

export type FromWorker =
  | { t: 'ready'; pid: number }
  | { t: 'batch'; done: WireResult[]; started?: number[] }
  | { t: 'fatal'; error: ErrorEnvelope };

/** What the parent tells a worker when it starts (workerData for threads, env for processes). */
export interface WorkerSetup {
  name: string;
  boundary: 'thread' | 'process';
  /** Tasks the worker keeps in flight at once (threads: workerData; processes: WEFT_WORKER_CONCURRENCY). */
  concurrency: number;
  /**
   * For a cluster worker (threads: workerData; processes: WEFT_WORKER_ENCODED): results go back as
   * their v8 bytes (see encoded.ts).
   */
  encoded?: boolean;
}
