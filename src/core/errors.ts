/**
 * weft's error classes and the envelope that carries any error across a thread, a process or
 * Redis field by field (name, message, stack, code, cause chain, own properties).
 */

/** Base class of every error weft raises. `code` is stable; match on it rather than on messages. */
export class WeftError extends Error {
  /** Stable machine-readable code, e.g. `WORKER_CRASHED`. */
  readonly code: string = 'WEFT_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
  override get name(): string {
    return this.constructor.name;
  }
}

/** Builds an error without capturing a stack trace (for errors made in bulk, such as cancels). */
export function withoutStack<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** `submit`/`map` before `start()` or after `shutdown()`, or `start()` twice. */
export class ExecutorStateError extends WeftError {
  override readonly code = 'EXECUTOR_STATE';
}

/** A malformed task definition: not a function, bad resource tag, duplicate name, a closure that cannot be shipped. */
export class TaskDefinitionError extends WeftError {
  override readonly code = 'TASK_DEFINITION';
}

/** A value that cannot cross a thread, process or network boundary; `path` names it (`args[1].handler`). */
export class SerializationError extends WeftError {
  override readonly code = 'SERIALIZATION';
  /** Where the value sits, e.g. `args[1].handler`. */
  readonly path: string;
  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
  }
}

/** A task did not run because a task it depends on failed or was cancelled; `cause` is the root error. */
export class UpstreamTaskError extends WeftError {
  override readonly code = 'UPSTREAM_TASK';
  /** Key of the task that failed first. */
  readonly upstream: string;
  constructor(message: string, upstream: string, options: { cause: unknown }) {
    super(message, options);
    this.upstream = upstream;
  }
}

/** An attempt ran longer than its `timeoutMs`. */
export class TaskTimeoutError extends WeftError {
  override readonly code = 'TASK_TIMEOUT';
}

/** The task was cancelled by `cancel()` or `shutdown({ cancelPending: true })`. */
export class TaskCancelledError extends WeftError {
  override readonly code = 'TASK_CANCELLED';
}

/** Invalid options, addresses, configuration or CLI arguments. */
export class ConfigurationError extends WeftError {
  override readonly code = 'CONFIGURATION';
}

/** A worker died while running the task; the message gives its exit code or signal. */
export class WorkerCrashedError extends WeftError {
  override readonly code = 'WORKER_CRASHED';
  /** Exit code of the worker, when it exited with one. */
  readonly exitCode: number | null;
  /** Signal that killed the worker, when one did. */
  readonly signal: string | null;
  /** The worker's name, e.g. `threads-2`. */
  readonly worker: string | undefined;
  /** True when the worker ran out of memory (its heap limit, or most likely so). */
  readonly outOfMemory: boolean;
  constructor(
    message: string,
    details: {
      exitCode?: number | null;
      signal?: string | null;
      worker?: string;
      outOfMemory?: boolean;
    },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.exitCode = details.exitCode ?? null;
    this.signal = details.signal ?? null;
    this.worker = details.worker;
    this.outOfMemory = details.outOfMemory ?? false;
  }
}

/** No worker can ever satisfy the task's resources. */
export class ResourceUnavailableError extends WeftError {
  override readonly code = 'RESOURCE_UNAVAILABLE';
}

/**
 * A job or result on a cluster was unsigned or wrongly signed, or the client's and the workers'
 * secrets do not match (one side has none, or they differ). The message says which; it never
 * shows a secret.
 */
export class SignatureError extends WeftError {
  override readonly code = 'SIGNATURE';
}

/**
 * A value stored in the cluster is gone before a task or a caller could read it: evicted under
 * Redis's `maxmemory`, lost in a restart without persistence, or deleted at `shutdown()`.
 * `task` is the key of the future whose value it was.
 */
export class ValueLostError extends WeftError {
  override readonly code = 'VALUE_LOST';
  /** Key of the future whose value was lost. */
  readonly task: string;
  constructor(message: string, task: string, options?: { cause?: unknown }) {
    super(message, options);
    this.task = task;
  }
}

/**
 * On a cluster: tasks that were sent could not be finished because of Redis. `reason` says how:
 * `state-lost` (Redis came back without the cluster's state: restarted without persistence, or
 * flushed), `server-exited` (the local cluster's own redis-server died), `session-expired` (this
 * client was cut off from Redis longer than its heartbeat lasts, so workers dropped its tasks),
 * `unreachable` (`shutdown()` gave up waiting for Redis). The message says what was lost and why.
 */
export class RedisLostError extends WeftError {
  override readonly code = 'REDIS_LOST';
  readonly reason: 'state-lost' | 'server-exited' | 'session-expired' | 'unreachable';
  constructor(
    message: string,
    reason: RedisLostError['reason'] = 'state-lost',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.reason = reason;
  }
}

const weftErrorClasses: Record<string, new (message: string, ...rest: any[]) => Error> = {
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
};

const standardErrorClasses: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * An error as plain, structured-cloneable data.
 * Fields: `name`, `message`, `stack` (from the thrower), `cause` (an envelope, or any cloneable
 * value under `causeValue`), `props` (own enumerable properties that could be cloned).
 * A thrown non-Error is carried as `{ thrown: value }`.
 */
export type ErrorEnvelope =
  | {
      kind: 'error';
      name: string;
      message: string;
      stack: string | undefined;
      cause?: ErrorEnvelope;
      props?: Record<string, unknown>;
    }
  | { kind: 'value'; value: unknown };

/** Turns anything thrown into an envelope; `clone` tells whether a value can cross. */
export function toEnvelope(
  thrown: unknown,
  canCross: (value: unknown) => boolean,
  depth = 0,
): ErrorEnvelope {
  if (!(thrown instanceof Error) || depth > 16) {
    return { kind: 'value', value: canCross(thrown) ? thrown : String(thrown) };
  }
  const envelope: ErrorEnvelope & { kind: 'error' } = {
    kind: 'error',
    name: thrown.name,
    message: thrown.message,
    stack: thrown.stack,
  };
  if ('cause' in thrown && thrown.cause !== undefined) {
    envelope.cause = toEnvelope(thrown.cause, canCross, depth + 1);
  }
  const props: Record<string, unknown> = {};
  let hasProps = false;
  for (const key of Object.keys(thrown)) {
    if (key === 'cause' || key === 'message' || key === 'stack' || key === 'name') continue;
    const value = (thrown as unknown as Record<string, unknown>)[key];
    if (canCross(value)) {
      props[key] = value;
      hasProps = true;
    }
  }
  // WeftError.code lives on the instance as a class field, so Object.keys already caught it.
  if (hasProps) envelope.props = props;
  return envelope;
}

/** Rebuilds an error from its envelope with its name, message, stack, cause and own properties. */
export function fromEnvelope(envelope: ErrorEnvelope): unknown {
  if (envelope.kind === 'value') return envelope.value;
  const cause = envelope.cause ? fromEnvelope(envelope.cause) : undefined;
  const options = envelope.cause ? { cause } : undefined;
  let error: Error;
  const weft = weftErrorClasses[envelope.name];
  const standard = standardErrorClasses[envelope.name];
  if (weft) {
    error = Object.create(weft.prototype) as Error;
    Object.defineProperty(error, 'message', {
      value: envelope.message,
      writable: true,
      configurable: true,
    });
    if (options) {
      Object.defineProperty(error, 'cause', { value: cause, writable: true, configurable: true });
    }
  } else if (standard) {
    error = new standard(envelope.message, options);
  } else {
    error = new Error(envelope.message, options);
    // A user's class does not exist on this side of the boundary; keep its name as an own property.
    Object.defineProperty(error, 'name', {
      value: envelope.name,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  Object.defineProperty(error, 'stack', {
    value: envelope.stack,
    writable: true,
    configurable: true,
  });
  if (envelope.props) {
    for (const [key, value] of Object.entries(envelope.props)) {
      Object.defineProperty(error, key, {
        value,
        writable: true,
        configurable: true,
        enumerable: true,
      });
    }
  }
  return error;
}

/** A short plain description of an error for events and logs. */
export function describeError(error: unknown): { name: string; message: string; stack?: string } {
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      ...(error.stack ? { stack: error.stack } : {}),
    };
  }
  return { name: typeof error, message: String(error) };
}
