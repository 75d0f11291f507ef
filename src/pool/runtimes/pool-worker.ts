/**
 * One worker of a `WorkerPool`, as the pool sees it: its transport (a thread or a child process),
 * the tasks it holds in the order it starts them, the tasks to send it this turn, and the task
 * references it already knows (each is sent once, then named by number).
 */
import type { ErrorEnvelope } from '../../core/errors.js';
import type { TaskRef } from '../../core/runtime.js';
import type { WireTask } from '../protocol.js';
import type { WorkerTransport } from '../transports.js';
import type { PoolTask, Slot } from './pool-task.js';

export class PoolWorker<T extends PoolTask> {
  readonly name: string;
  readonly transport: WorkerTransport;
  /** Its OS process id (a thread's is its process's), once known. */
  pid: number | undefined;
  state: 'starting' | 'ready' | 'dead' = 'starting';
  /** Sent (or about to be) and not yet reported, in the order the worker starts them: [0] runs. */
  queue: Slot<T>[] = [];
  /** Set when weft stops the worker on purpose (a task ignored its abort signal, or close). */
  stopping: Error | undefined;
  /** What the worker reported before dying, and the transport's last error: for crash reports. */
  fatal: ErrorEnvelope | undefined;
  lastError: NodeJS.ErrnoException | undefined;
  /** Resolves once the worker is ready; rejects if it dies before. */
  readonly ready: Promise<void>;
  /** Tasks to send at the next flush (one message per worker per turn). */
  #outbox: WireTask[] = [];
  /** Task references this worker has been sent, by the number it knows them by. */
  readonly #refs = new Map<TaskRef, number>();
  /** Whether the transport keeps the event loop alive: only while the worker holds tasks. */
  #referenced = true;
  #markReady!: () => void;
  #failStart!: (error: Error) => void;

  /** `open` starts the transport; its events may name this worker. */
  constructor(name: string, open: (worker: PoolWorker<T>) => WorkerTransport) {
    this.name = name;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#markReady = resolve;
      this.#failStart = reject;
    });
    this.ready.catch(() => undefined);
    this.transport = open(this);
    this.pid = this.transport.pid;
  }

  /** The worker said it is ready (with its pid). */
  becameReady(pid: number | undefined): void {
    this.state = 'ready';
    this.pid = pid;
    this.#markReady();
    this.#holdLoop(this.queue.length > 0);
  }

  /** The worker died before it was ready. */
  failedToStart(error: Error): void {
    this.#failStart(error);
  }

  /** Takes `slot`'s task: it is sent at the next flush. */
  add(slot: Slot<T>): void {
    const task = slot.task;
    this.queue.push(slot);
    this.#outbox.push({
      id: task.id,
      key: task.key,
      attempt: task.number,
      ...this.#refFor(task.ref!),
      args: task.args,
      timed: slot.reportsStart,
      ...(task.encodedArgs ? { encoded: true as const } : {}),
    });
    this.#holdLoop(true);
  }

  /** Drops task `id` if it has not been sent yet; true when it was dropped. */
  unsend(id: number): boolean {
    const index = this.#outbox.findIndex((t) => t.id === id);
    if (index < 0) return false;
    this.#outbox.splice(index, 1);
    return true;
  }

  /** Sends what was queued this turn, in one message. */
  flush(): void {
    if (this.#outbox.length === 0 || this.state === 'dead') return;
    const tasks = this.#outbox;
    this.#outbox = [];
    this.transport.send({ t: 'run', tasks });
  }

  /** The worker holds nothing any more (it went idle): the process may exit without it. */
  idle(): void {
    if (this.queue.length === 0) this.#holdLoop(false);
  }

  /** Empties the worker (it is gone): what it held, for the pool to settle or requeue. */
  takeAll(): Slot<T>[] {
    const queue = this.queue;
    this.queue = [];
    this.#outbox = [];
    return queue;
  }

  /** For explain: where `slot`'s task is on this worker, and what runs ahead of it. */
  explain(slot: Slot<T>, concurrency: number, threads: boolean): string {
    const pid =
      this.pid === undefined
        ? ''
        : threads
          ? ` (a thread of pid ${process.pid})`
          : ` (pid ${this.pid})`;
    const worker = `worker ${this.name}${pid}`;
    if (slot.aborted)
      return `It was stopped (${slot.aborted.message}); ${worker} has not let go of it yet.`;
    if (slot.started) return `Worker ${this.name}${pid} runs it.`;
    const index = this.queue.indexOf(slot);
    if (index < concurrency) return `Worker ${this.name}${pid} is starting it.`;
    const ahead = this.queue
      .slice(0, Math.max(0, index))
      .map((s) => s.task.key)
      .slice(0, 5);
    return `It was sent ahead to ${worker}, where it waits behind ${index} task${index === 1 ? '' : 's'} (${ahead.join(', ')}${index > 5 ? ', ...' : ''}); the pool sends short tasks ahead so workers never idle.`;
  }

  /** The number this worker knows a task reference by, with the reference the first time. */
  #refFor(ref: TaskRef): { ref: number; def?: TaskRef } {
    let id = this.#refs.get(ref);
    if (id !== undefined) return { ref: id };
    id = this.#refs.size + 1;
    this.#refs.set(ref, id);
    return { ref: id, def: ref };
  }

  #holdLoop(hold: boolean): void {
    if (hold === this.#referenced) return;
    this.#referenced = hold;
    if (hold) this.transport.ref();
    else this.transport.unref();
  }
}
