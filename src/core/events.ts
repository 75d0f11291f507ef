/**
 * One typed event stream per executor: task events (`submitted` ... one terminal event per task),
 * worker events, and warnings. Emitting costs one boolean check when nobody listens.
 */

/** Task lifecycle events. Every submitted task yields exactly one of `finished`, `failed`, `cancelled`. */
export type TaskEventType =
  'submitted' | 'started' | 'retried' | 'finished' | 'failed' | 'cancelled';
/** Worker lifecycle events (pools and clusters). */
export type WorkerEventType = 'joined' | 'left' | 'crashed';

/** An error as events carry it: plain data, safe to print or send to a browser. */
export interface EventError {
  name: string;
  message: string;
  stack?: string;
}

/** Something that happened to one task. */
export interface TaskEvent {
  type: TaskEventType;
  /** The future's key. */
  key: string;
  /** The task's name. */
  name: string;
  /** Wall-clock time in milliseconds since the epoch. */
  time: number;
  /** The attempt this event belongs to (1 for the first), where there is one. */
  attempt?: number;
  /** The worker that took the task (`started`, and terminal events after a start). */
  worker?: string;
  /** Time the attempt ran, for `finished` and `failed` after a start. */
  durationMs?: number;
  /** For `failed`, `retried` and `cancelled`: what went wrong. */
  error?: EventError;
}

/** Something that happened to one worker. */
export interface WorkerEvent {
  type: WorkerEventType;
  /** The worker's name, as task events give it. */
  worker: string;
  time: number;
  pid?: number;
  /** For `crashed` and `left`. */
  exitCode?: number | null;
  signal?: string | null;
  /** What the worker offers, where it says. */
  resources?: Record<string, number>;
  /** For `crashed`: why. */
  reason?: string;
}

/**
 * Something the user should know that is not about one task, e.g. that a cluster's Redis has been
 * unreachable for 5 s, and that it is back. Also printed on stderr.
 */
export interface WarningEvent {
  type: 'warning';
  /** What happened and what it means for the tasks, in a sentence or two. */
  message: string;
  /** Wall-clock time in milliseconds since the epoch. */
  timestamp: number;
}

export type WeftEvent = TaskEvent | WorkerEvent | WarningEvent;
export type WeftEventType = TaskEventType | WorkerEventType | 'warning';

type EventOf<K extends WeftEventType | '*'> = K extends '*'
  ? WeftEvent
  : K extends TaskEventType
    ? TaskEvent & { type: K }
    : K extends 'warning'
      ? WarningEvent
      : WorkerEvent & { type: K };

/** An executor's event stream: iterate it, or subscribe to one type (or `'*'`). */
export interface ExecutorEvents extends AsyncIterable<WeftEvent> {
  /** Calls `listener` for every event of `type` (`'*'`: all); returns a function that unsubscribes. */
  on<K extends WeftEventType | '*'>(type: K, listener: (event: EventOf<K>) => void): () => void;
}

type Listener = (event: WeftEvent) => void;

/** The executor-side hub. `active` is the cheap check emitters make before building an event. */
export class EventHub implements ExecutorEvents {
  active = false;
  #listeners = new Map<string, Set<Listener>>();
  #iterators = new Set<{ push(e: WeftEvent | null): void }>();

  on<K extends WeftEventType | '*'>(type: K, listener: (event: EventOf<K>) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    const l = listener as Listener;
    set.add(l);
    this.active = true;
    return () => {
      set.delete(l);
      this.#refresh();
    };
  }

  emit(event: WeftEvent): void {
    const typed = this.#listeners.get(event.type);
    if (typed) for (const l of typed) this.#call(l, event);
    const all = this.#listeners.get('*');
    if (all) for (const l of all) this.#call(l, event);
    for (const it of this.#iterators) it.push(event);
  }

  /** Ends every open iterator (the executor shut down). */
  close(): void {
    for (const it of this.#iterators) it.push(null);
    this.#iterators.clear();
    this.#refresh();
  }

  [Symbol.asyncIterator](): AsyncIterator<WeftEvent> {
    const buffer: (WeftEvent | null)[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const sink = {
      push: (e: WeftEvent | null) => {
        buffer.push(e);
        wake?.();
      },
    };
    this.#iterators.add(sink);
    this.active = true;
    const finish = (): IteratorReturnResult<undefined> => {
      done = true;
      this.#iterators.delete(sink);
      this.#refresh();
      return { done: true, value: undefined };
    };
    return {
      next: async (): Promise<IteratorResult<WeftEvent>> => {
        while (!done) {
          const e = buffer.shift();
          if (e === null) return finish();
          if (e) return { done: false, value: e };
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
        return { done: true, value: undefined };
      },
      return: () => Promise.resolve(finish()),
    };
  }

  #call(listener: Listener, event: WeftEvent): void {
    try {
      listener(event);
    } catch (err) {
      // A listener's bug must not break the executor; report it the way Node reports listener errors.
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  #refresh(): void {
    let any = this.#iterators.size > 0;
    for (const set of this.#listeners.values()) if (set.size > 0) any = true;
    this.active = any;
  }
}
