/**
 * weft: run tasks on pluggable executors (in the caller, on worker threads or child processes)
 * with one API. Explicit named exports only.
 */
export { task } from './core/task.js';
export { taskContext } from './core/context.js';
export type { TaskContext } from './core/context.js';
export { unmapped, asCompleted } from './core/wait.js';
export { LocalExecutor } from './executors/local.js';
export type { LocalExecutorOptions } from './executors/local.js';
export { LocalPoolExecutor } from './executors/pool.js';
export type { LocalPoolExecutorOptions, PoolResourceLimits } from './executors/pool.js';
export type { DashboardOption, DashboardSettings } from './dashboard/options.js';
export { DistributedExecutor } from './executors/distributed.js';
export type { DistributedExecutorOptions } from './executors/distributed.js';
export { startClusterWorker } from './distributed/start-worker.js';
export type { ClusterWorkerOptions, ClusterWorkerHandle } from './distributed/worker.js';
export { defaultExecutor } from './executors/default.js';
export { progress } from './progress/progress.js';
export type { ProgressOptions } from './progress/progress.js';
export {
  WeftError,
  ExecutorStateError,
  TaskDefinitionError,
  SerializationError,
  UpstreamTaskError,
  TaskTimeoutError,
  TaskCancelledError,
  ConfigurationError,
  WorkerCrashedError,
  ResourceUnavailableError,
  SignatureError,
  ValueLostError,
  RedisLostError,
} from './core/errors.js';
export type {
  Executor,
  Future,
  FutureStatus,
  Task,
  TaskOptions,
  ResolvedTaskOptions,
  MaybeFuture,
  MaybeFutures,
  Mappable,
  Unmapped,
  Resolved,
  ShutdownOptions,
  AnyFunction,
} from './core/types.js';
export type { Explanation, AttemptExplanation, AttemptOutcome } from './core/explain.js';
export type {
  TaskEvent,
  WorkerEvent,
  WarningEvent,
  TaskEventType,
  WorkerEventType,
  WeftEvent,
  ExecutorEvents,
  EventError,
} from './core/events.js';
